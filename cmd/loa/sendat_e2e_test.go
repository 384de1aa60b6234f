package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/loa-hub/loa/api"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
)

// proc is one `loa <role>` run through run, stoppable and restartable.
type proc struct {
	role   string
	env    map[string]string
	base   string
	logs   *lockedBuffer
	cancel context.CancelFunc
	done   chan error
}

func startProc(t *testing.T, role string, env map[string]string) *proc {
	t.Helper()
	p := &proc{role: role, env: env, logs: &lockedBuffer{}, done: make(chan error, 1)}
	pr, pw := io.Pipe()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.logs.Write([]byte(sc.Text() + "\n"))
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() {
		p.done <- run(ctx, []string{"loa", role}, func(k string) string { return env[k] }, pw)
		pw.Close()
	}()
	t.Cleanup(func() { p.stop(t) })
	if role == "dispatcher" {
		waitFor(t, "the dispatcher to start", func() bool { return strings.Contains(p.logs.String(), "dispatcher") })
		return p
	}
	select {
	case p.base = <-found:
	case err := <-p.done:
		t.Fatalf("loa %s exited: %v\n%s", role, err, p.logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("loa %s did not start:\n%s", role, p.logs.String())
	}
	waitFor(t, "healthz", func() bool {
		resp, err := http.Get(p.base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return p
}

func (p *proc) stop(t *testing.T) {
	if p.cancel == nil {
		return
	}
	p.cancel()
	p.cancel = nil
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("loa %s: %v", p.role, err)
		}
	case <-time.After(60 * time.Second):
		t.Errorf("loa %s did not stop within 60s", p.role)
	}
	if t.Failed() {
		t.Logf("loa %s output:\n%s", p.role, p.logs.String())
	}
}

func (p *proc) api(key string) *instance { return &instance{base: p.base, key: key, logs: p.logs} }

// scheduleTwo posts a reminder due in 2 s and one due in 1 s, and cancels
// the second; it returns their ids.
func scheduleTwo(t *testing.T, in *instance) (sent, cancelled string) {
	t.Helper()
	post := func(key string, in2 time.Duration) string {
		code, out := in.call(t, "POST", "/v1/notifications", fmt.Sprintf(`{"to":{"phone":"0912345678"},"title":"Nhắc hạn","body":"Hạn nộp báo cáo quý IV",
			"channels":["sms"],"send_at":%q,"idempotency_key":%q}`, time.Now().Add(in2).UTC().Format(time.RFC3339Nano), key))
		if code != 202 {
			t.Fatalf("POST %s: %d %v", key, code, out)
		}
		return out["id"].(string)
	}
	sent, cancelled = post("remind-sent", 2*time.Second), post("remind-cancelled", time.Second)
	if code, out := in.call(t, "DELETE", "/v1/notifications/"+cancelled, ""); code != 200 || out["status"] != "cancelled" {
		t.Fatalf("DELETE: %d %v", code, out)
	}
	if code, out := in.call(t, "GET", "/v1/notifications/"+sent, ""); code != 200 || out["status"] != "scheduled" {
		t.Fatalf("GET scheduled: %d %v", code, out)
	}
	return sent, cancelled
}

// checkSent waits for the scheduled one to be sent (the ledger says so)
// and checks that the cancelled one, due earlier, got nothing.
func checkSent(t *testing.T, in *instance, sent, cancelled string) {
	t.Helper()
	waitFor(t, "the scheduled notification to be sent", func() bool {
		_, out := in.call(t, "GET", "/v1/notifications/"+sent, "")
		return out["status"] == "sent"
	})
	_, out := in.call(t, "GET", "/v1/notifications/"+sent, "")
	oc := out["outcomes"].([]any)
	if len(oc) != 1 || oc[0].(map[string]any)["targets"] != float64(1) {
		t.Errorf("outcomes of the sent one: %v", oc)
	}
	_, out = in.call(t, "GET", "/v1/notifications/"+cancelled, "")
	if out["status"] != "cancelled" || len(out["outcomes"].([]any)) != 1 || out["outcomes"].([]any)[0].(map[string]any)["updated_at"] != nil {
		t.Errorf("the cancelled one, past its send_at: %v", out)
	}
	if code, out := in.call(t, "DELETE", "/v1/notifications/"+sent, ""); code != 409 {
		t.Errorf("cancel after sending: %d %v", code, out)
	}
}

// TestSendAtSurvivesRestarts: a scheduled notification posted to loa dev
// is sent after loa dev restarts (the schedule is a row, not a timer);
// one cancelled is not; on the embedded defaults (the SQLite file
// persists) and on the real services.
func TestSendAtSurvivesRestarts(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			env := backendEnv(t, b.Name)
			env["LOA_HTTP_ADDR"], env["LOA_DATA_DIR"] = "127.0.0.1:0", t.TempDir()
			first := startProc(t, "dev", env)
			sent, cancelled := scheduleTwo(t, first.api("loa-dev-key"))
			first.stop(t)
			second := startProc(t, "dev", env)
			checkSent(t, second.api("loa-dev-key"), sent, cancelled)
			if items := second.api("loa-dev-key").outbox(t, sent); len(items) > 1 {
				t.Errorf("sent %d times", len(items))
			}
		})
	}
}

// TestSendAtSurvivesADispatcherRestart: loa api and loa dispatcher on the
// real services; the dispatcher is stopped while reminders wait and
// started again after they fall due: the scheduled one is sent once, the
// cancelled one never.
func TestSendAtSurvivesADispatcherRestart(t *testing.T) {
	env := backendEnv(t, "real")
	env["LOA_HTTP_ADDR"], env["LOA_DATA_DIR"] = "127.0.0.1:0", t.TempDir()
	env["LOA_SECRET_KEY_FILE"] = secretKeyFile(t)
	// loa api and loa dispatcher keep the SMS night (22:00-06:00 in
	// Vietnam) by default, and a normal-priority SMS waits for its end:
	// the test must pass at any hour.
	env["LOA_SMS_QUIET_HOURS"] = "off"
	if err := run(context.Background(), []string{"loa", "migrate"}, func(k string) string { return env[k] }, io.Discard); err != nil {
		t.Fatal(err)
	}
	key := apiKey(t, env, "notify:direct")
	api := startProc(t, "api", env)
	disp := startProc(t, "dispatcher", env)
	disp.stop(t)
	sent, cancelled := scheduleTwo(t, api.api(key))
	startProc(t, "dispatcher", env)
	checkSent(t, api.api(key), sent, cancelled)
}

func secretKeyFile(t *testing.T) string {
	t.Helper()
	f := t.TempDir() + "/secret.key"
	if err := os.WriteFile(f, []byte(strings.Repeat("ab", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// apiKey stores a key with scopes in the environment's database.
func apiKey(t *testing.T, env map[string]string, scopes ...string) string {
	t.Helper()
	db := testenv.OpenStore(t, env["LOA_DATABASE_URL"])
	key, hash, err := api.NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAPIKey(context.Background(), sqlstore.APIKey{ID: testenv.ID(), Name: "e2e", Hash: hash, Scopes: scopes, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return key
}
