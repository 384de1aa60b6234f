package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-hub/loa/internal/testenv"
)

// instance is a `loa dev` started through run, on port 0.
type instance struct {
	base string
	key  string
	logs *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var listening = regexp.MustCompile(`loa: listening on (http://[0-9.:]+)`)

// startDev runs `loa dev` with env on top of a clean environment and
// waits until /healthz answers. It is stopped when t ends.
func startDev(t *testing.T, env map[string]string) *instance {
	t.Helper()
	env["LOA_HTTP_ADDR"] = "127.0.0.1:0"
	if env["LOA_DATA_DIR"] == "" {
		env["LOA_DATA_DIR"] = t.TempDir()
	}
	getenv := func(k string) string { return env[k] }
	pr, pw := io.Pipe()
	logs := &lockedBuffer{}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			logs.Write([]byte(line + "\n"))
			if m := listening.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"loa", "dev"}, getenv, pw); pw.Close() }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("loa dev: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("loa dev did not stop within 60s")
		}
		if t.Failed() {
			t.Logf("loa dev output:\n%s", logs.String())
		}
	})
	var base string
	select {
	case base = <-found:
	case err := <-done:
		t.Fatalf("loa dev exited: %v\n%s", err, logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("loa dev did not start:\n%s", logs.String())
	}
	inst := &instance{base: base, key: "loa-dev-key", logs: logs}
	waitFor(t, "healthz", func() bool {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return inst
}

// waitFor polls cond until it holds or 60 seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling an HTTP endpoint, not synchronising goroutines
	}
}

func (in *instance) call(t *testing.T, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, in.base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+in.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (in *instance) outbox(t *testing.T, notificationID string) []map[string]any {
	t.Helper()
	_, out := in.call(t, "GET", "/v1/dev/outbox?limit=10000&notification_id="+notificationID, "")
	var items []map[string]any
	for _, it := range out["items"].([]any) {
		items = append(items, it.(map[string]any))
	}
	return items
}

// backendEnv returns the environment for a backend: nothing for the
// embedded one, the real services (isolated by prefixes and a schema)
// otherwise.
func backendEnv(t *testing.T, name string) map[string]string {
	env := map[string]string{}
	if name == "real" {
		b := testenv.RealBackend(t)
		id := testenv.ID()
		env["LOA_KAFKA_BROKERS"] = b.KafkaBrokers
		env["LOA_REDIS_URL"] = b.RedisURL
		env["LOA_DATABASE_URL"] = b.DatabaseURL
		env["LOA_KAFKA_TOPIC_PREFIX"] = "e2e" + id + "."
		testenv.DeleteTopicsAtEnd(t, b.KafkaBrokers, env["LOA_KAFKA_TOPIC_PREFIX"])
		env["LOA_REDIS_KEY_PREFIX"] = "e2e" + id + ":"
	}
	return env
}

// TestEndToEnd: POST a notification → it appears in the sandbox outbox →
// its status says sent; on the embedded defaults and on the real services.
func TestEndToEnd(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			in := startDev(t, backendEnv(t, b.Name))
			code, out := in.call(t, "POST", "/v1/notifications",
				`{"to": {"phone": "0912345678"}, "title": "Thông báo", "body": "Nội dung", "channels": ["sms"], "ttl_seconds": 300, "idempotency_key": "abc-1"}`)
			if code != 202 {
				t.Fatalf("POST: %d %v", code, out)
			}
			id := out["id"].(string)
			waitFor(t, "the outbox", func() bool { return len(in.outbox(t, id)) > 0 })
			got := in.outbox(t, id)[0]
			for k, want := range map[string]string{"notification_id": id, "channel": "sms", "to": "84912345678", "title": "Thông báo", "body": "Nội dung"} {
				if got[k] != want {
					t.Errorf("outbox %s = %v, want %q", k, got[k], want)
				}
			}
			if got["at"] == nil {
				t.Error("outbox entry has no time")
			}
			var status map[string]any
			waitFor(t, "status sent", func() bool {
				_, status = in.call(t, "GET", "/v1/notifications/"+id, "")
				return status["status"] == "sent"
			})
			oc := status["outcomes"].([]any)
			if len(oc) != 1 || oc[0].(map[string]any)["channel"] != "sms" || oc[0].(map[string]any)["status"] != "sent" {
				t.Errorf("outcomes %v", oc)
			}
			if code, ready := in.call(t, "GET", "/readyz", ""); code != 200 {
				t.Errorf("readyz %d %v", code, ready)
			}
		})
	}
}

// TestConcurrentIdempotency: one key posted 20 times at once gives one id
// and one delivery.
func TestConcurrentIdempotency(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			in := startDev(t, backendEnv(t, b.Name))
			var (
				wg  sync.WaitGroup
				mu  sync.Mutex
				ids = map[string]int{}
			)
			for range 20 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					code, out := in.call(t, "POST", "/v1/notifications",
						`{"to":{"account_id":"demo-citizen"},"title":"Lịch họp","body":"Họp lúc 9 giờ","channels":["push","sms"],"idempotency_key":"same-20"}`)
					if code != 202 {
						t.Errorf("POST: %d %v", code, out)
						return
					}
					mu.Lock()
					ids[out["id"].(string)]++
					mu.Unlock()
				}()
			}
			wg.Wait()
			if len(ids) != 1 {
				t.Fatalf("20 posts gave %d ids: %v", len(ids), ids)
			}
			var id string
			for id = range ids {
			}
			waitFor(t, "status sent", func() bool {
				_, st := in.call(t, "GET", "/v1/notifications/"+id, "")
				return st["status"] == "sent"
			})
			got := in.outbox(t, id)
			if len(got) != 2 {
				t.Fatalf("%d deliveries for one notification on two channels: %v", len(got), got)
			}
			seen := map[string]bool{}
			for _, e := range got {
				k := fmt.Sprint(e["channel"], e["to"])
				if seen[k] {
					t.Errorf("delivered twice: %s", k)
				}
				seen[k] = true
			}
		})
	}
}

func TestAdminAPIKeyScopes(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"LOA_DATA_DIR": dir}
	var out strings.Builder
	err := run(context.Background(), []string{"loa", "admin", "apikey", "create", "--name", "reporting", "--scopes", "mfa:verify"},
		func(k string) string { return env[k] }, &out)
	if err != nil {
		t.Fatalf("apikey create: %v\n%s", err, out.String())
	}
	key := regexp.MustCompile(`loa_[a-z0-9]+`).FindString(out.String())
	if key == "" {
		t.Fatalf("no key printed: %s", out.String())
	}
	if err := run(context.Background(), []string{"loa", "admin", "apikey", "create", "--name", "x", "--scopes", "root"},
		func(k string) string { return env[k] }, io.Discard); err == nil || !strings.Contains(err.Error(), "unknown scope") {
		t.Errorf("unknown scope accepted: %v", err)
	}
	in := startDev(t, env)
	in.key = key
	if code, p := in.call(t, "POST", "/v1/notifications", `{"to":{"phone":"0912345678"},"body":"x"}`); code != 403 {
		t.Errorf("key without notify:direct: %d %v", code, p)
	}
	in.key = "wrong"
	if code, _ := in.call(t, "POST", "/v1/notifications", `{"to":{"phone":"0912345678"},"body":"x"}`); code != 401 {
		t.Errorf("wrong key: %d", code)
	}
}

func TestConfigErrorsAreReported(t *testing.T) {
	env := map[string]string{"LOA_LOG_LEVEL": "loud", "LOA_SHUTDOWN_TIMEOUT": "soon"}
	err := run(context.Background(), []string{"loa", "dev"}, func(k string) string { return env[k] }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "LOA_LOG_LEVEL") || !strings.Contains(err.Error(), "LOA_SHUTDOWN_TIMEOUT") {
		t.Fatalf("want both bad variables named, got %v", err)
	}
	if err := run(context.Background(), []string{"loa", "api"}, func(string) string { return "" }, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "LOA_KAFKA_BROKERS") {
		t.Errorf("loa api without services: %v", err)
	}
}
