package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-hub/loa/internal/fakes/fakescmd"
)

// fakesRun is a loa-fakes started through fakescmd.Run.
type fakesRun struct {
	urls map[string]string // label → URL, as printed
	env  map[string]string // the printed LOA_* block
	out  *lockedBuffer
	stop func() error
}

var (
	fakeURLLine = regexp.MustCompile(`^    (fcm token|fcm|esms|speedsms|webhook|smtp|control)\s+(\S+)$`)
	exportLine  = regexp.MustCompile(`^export (LOA_[A-Z0-9_]+)=(.*)$`)
)

// startFakes runs `loa-fakes --loa loaBase` until the returned stop is
// called (or t ends), and parses what it prints.
func startFakes(t *testing.T, loaBase string, extra ...string) *fakesRun {
	t.Helper()
	pr, pw := io.Pipe()
	f := &fakesRun{urls: map[string]string{}, env: map[string]string{}, out: &lockedBuffer{}}
	ready := make(chan struct{})
	var mu sync.Mutex
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			f.out.Write([]byte(line + "\n"))
			mu.Lock()
			if m := fakeURLLine.FindStringSubmatch(line); m != nil {
				f.urls[m[1]] = m[2]
			}
			if m := exportLine.FindStringSubmatch(line); m != nil {
				f.env[m[1]] = strings.Trim(m[2], "'")
			}
			mu.Unlock()
			if strings.Contains(line, "Ctrl-C stops them.") {
				close(ready)
			}
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		log := slog.New(slog.NewTextHandler(pw, nil))
		done <- fakescmd.Run(ctx, append([]string{"--loa", loaBase}, extra...), "http://127.0.0.1:8080", log, pw)
		pw.Close()
	}()
	var once sync.Once
	var stopErr error
	f.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(30 * time.Second):
				stopErr = fmt.Errorf("loa-fakes did not stop within 30s")
			}
		})
		return stopErr
	}
	t.Cleanup(func() {
		if err := f.stop(); err != nil {
			t.Errorf("loa-fakes: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("loa-fakes exited: %v\n%s", err, f.out.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("loa-fakes did not print its banner:\n%s", f.out.String())
	}
	mu.Lock()
	defer mu.Unlock()
	return f
}

// TestFakesInfoFile: --info-file holds the printed URLs and variables as
// JSON, and --fcm-record counts keeps counts per token, not messages.
func TestFakesInfoFile(t *testing.T) {
	path := t.TempDir() + "/fakes.json"
	f := startFakes(t, "http://127.0.0.1:1", "--info-file", path, "--fcm-record", "counts")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		URLs map[string]string `json:"urls"`
		Env  map[string]string `json:"env"`
	}
	if err := json.Unmarshal(b, &info); err != nil {
		t.Fatal(err)
	}
	if info.URLs["control"] != f.urls["control"] || info.URLs["fcm_endpoint"] != f.urls["fcm"] {
		t.Errorf("urls = %v, printed %v", info.URLs, f.urls)
	}
	for k, v := range f.env {
		if info.Env[k] != v {
			t.Errorf("%s = %q in the file, %q printed", k, info.Env[k], v)
		}
	}
	insecure := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := insecure.Post(f.urls["fcm"]+"/projects/p/messages:send", "application/json", strings.NewReader(`{"message":{"token":"t1"}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = http.Get(f.urls["control"] + "/fcm/_counts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c struct {
		Count       int            `json:"count"`
		ByRecipient map[string]int `json:"by_recipient"`
	}
	json.NewDecoder(resp.Body).Decode(&c)
	if c.Count != 1 || c.ByRecipient["t1"] != 1 {
		t.Errorf("counts = %+v", c)
	}
}

// TestFakesCommand: `loa-fakes` prints URLs that answer, a block of
// variables that `loa dev` accepts, posts SMS delivery reports to Loa
// with the provider's token, and stops cleanly on cancel.
func TestFakesCommand(t *testing.T) {
	type forwarded struct{ path, token, body string }
	got := make(chan forwarded, 10)
	loa := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- forwarded{r.URL.Path, r.Header.Get("X-Loa-Callback-Token"), string(b)}
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte(`{"matched":true}`))
	}))
	defer loa.Close()
	f := startFakes(t, loa.URL)

	for _, label := range []string{"fcm", "fcm token", "esms", "speedsms", "webhook", "smtp", "control"} {
		if f.urls[label] == "" {
			t.Fatalf("no %s URL printed:\n%s", label, f.out.String())
		}
	}
	insecure := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for label, url := range map[string]string{
		"fcm":      strings.TrimSuffix(f.urls["fcm"], "/v1") + "/_messages",
		"esms":     f.urls["esms"] + "/_messages",
		"speedsms": f.urls["speedsms"] + "/_messages",
		"webhook":  f.urls["webhook"] + "/_messages",
		"control":  f.urls["control"] + "/",
		"fault":    f.urls["control"] + "/fcm/_fault",
	} {
		resp, err := insecure.Get(url)
		if err != nil {
			t.Errorf("%s %s: %v", label, url, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s %s: %d", label, url, resp.StatusCode)
		}
	}
	conn, err := net.DialTimeout("tcp", f.urls["smtp"], 5*time.Second)
	if err != nil {
		t.Fatalf("smtp: %v", err)
	}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	greeting, _ := bufio.NewReader(conn).ReadString('\n')
	conn.Close()
	if !strings.HasPrefix(greeting, "220") {
		t.Errorf("smtp greeting %q", greeting)
	}

	// The variables are complete and loa's configuration takes them.
	for _, k := range []string{"LOA_FCM_PROJECT_ID", "LOA_FCM_ENDPOINT", "LOA_FCM_CREDENTIALS_FILE", "LOA_FCM_INSECURE_TLS",
		"LOA_SMS_PROVIDERS", "LOA_SMS_ESMS_TYPE", "LOA_SMS_ESMS_URL", "LOA_SMS_ESMS_API_KEY", "LOA_SMS_ESMS_SECRET_KEY",
		"LOA_SMS_ESMS_BRANDNAME", "LOA_SMS_ESMS_CALLBACK_TOKEN", "LOA_SMS_SPEEDSMS_TYPE", "LOA_SMS_SPEEDSMS_URL",
		"LOA_SMS_SPEEDSMS_ACCESS_TOKEN", "LOA_SMS_SPEEDSMS_SENDER", "LOA_SMS_SPEEDSMS_CALLBACK_TOKEN", "LOA_SMTP_HOST",
		"LOA_SMTP_PORT", "LOA_SMTP_USERNAME", "LOA_SMTP_PASSWORD", "LOA_SMTP_FROM", "LOA_SMTP_INSECURE_TLS"} {
		if f.env[k] == "" {
			t.Errorf("%s not printed", k)
		}
	}
	if f.env["LOA_FCM_ENDPOINT"] != f.urls["fcm"] || f.env["LOA_SMS_PROVIDERS"] != "esms,speedsms" {
		t.Errorf("env %v", f.env)
	}
	cfg, err := loadConfig(func(k string) string { return f.env[k] })
	if err != nil {
		t.Fatalf("loa does not take the printed variables: %v", err)
	}
	if cfg.Providers.FCM == nil || len(cfg.Providers.SMS) != 2 || cfg.Providers.SMTP == nil {
		t.Errorf("providers %+v", cfg.Providers)
	}
	creds := f.env["LOA_FCM_CREDENTIALS_FILE"]
	if _, err := os.Stat(creds); err != nil {
		t.Errorf("credentials file: %v", err)
	}

	// A SpeedSMS message's delivery report reaches Loa with the token.
	req, _ := http.NewRequest("POST", f.urls["speedsms"]+"/index.php/sms/send",
		strings.NewReader(`{"to":["84912345678"],"content":"Thông báo","sms_type":2,"sender":"LOA"}`))
	req.SetBasicAuth(f.env["LOA_SMS_SPEEDSMS_ACCESS_TOKEN"], "x")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case fw := <-got:
		if fw.path != "/v1/callbacks/sms/speedsms" || fw.token != f.env["LOA_SMS_SPEEDSMS_CALLBACK_TOKEN"] || !strings.Contains(fw.body, `"tranId"`) {
			t.Errorf("forwarded %+v", fw)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the delivery report did not reach Loa")
	}

	if err := f.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := os.Stat(creds); !os.IsNotExist(err) {
		t.Errorf("credentials left behind: %v", err)
	}
	if _, err := http.Get(f.urls["esms"] + "/_messages"); err == nil {
		t.Error("the eSMS fake still answers after stop")
	}
}

// TestFakesDriveLoaDev is docs/fakes.md's walk-through: `loa dev` on the
// variables `loa-fakes` prints sends real SMS and pushes to the fakes, a
// carrier report marks the SMS delivered, an FCM outage opens the breaker
// (log line and metric), the push that runs out of retry tiers becomes a
// dead letter, and replaying it after the outage sends it once.
func TestFakesDriveLoaDev(t *testing.T) {
	if testing.Short() {
		t.Skip("starts loa-fakes and loa dev")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	f := startFakes(t, "http://"+addr)
	env := map[string]string{}
	for k, v := range f.env {
		env[k] = v
	}
	env["LOA_HTTP_ADDR"], env["LOA_DATA_DIR"] = addr, t.TempDir()
	env["LOA_BREAKER_FAILURES"], env["LOA_BREAKER_OPEN_FOR"] = "2", "1s"
	env["LOA_RETRY_TIERS"] = "100ms,200ms"
	in := startDevAt(t, env)

	// SMS through the eSMS fake; its delivery report marks it delivered.
	code, out := in.call(t, "POST", "/v1/notifications", `{"to":{"phone":"0912345678"},"body":"Mã xác thực 123456","channels":["sms"]}`)
	if code != 202 {
		t.Fatalf("POST sms: %d %v", code, out)
	}
	smsID := out["id"].(string)
	waitFor(t, "the SMS delivered", func() bool {
		_, st := in.call(t, "GET", "/v1/notifications/"+smsID, "")
		oc, _ := st["outcomes"].([]any)
		return st["status"] == "sent" && len(oc) == 1 && oc[0].(map[string]any)["counts"].(map[string]any)["delivered"] == float64(1)
	})

	// A push through the FCM fake.
	code, out = in.call(t, "POST", "/v1/notifications", `{"to":{"device_token":"tok-ok"},"title":"Thông báo","body":"Nội dung"}`)
	if code != 202 {
		t.Fatalf("POST push: %d %v", code, out)
	}
	waitFor(t, "the push sent", func() bool {
		_, st := in.call(t, "GET", "/v1/notifications/"+out["id"].(string), "")
		return st["status"] == "sent"
	})

	// FCM goes down: the breaker opens and the pushes become dead letters.
	fault(t, f.urls["control"]+"/fcm/_fault", `{"outage_for":"10m"}`)
	notificationOf := map[string]string{} // device token → notification id
	for i := range 3 {
		code, out := in.call(t, "POST", "/v1/notifications", fmt.Sprintf(`{"to":{"device_token":"tok-%d"},"title":"Mất điện","body":"Khu vực %d"}`, i, i))
		if code != 202 {
			t.Fatalf("POST push %d: %d %v", i, code, out)
		}
		notificationOf[fmt.Sprintf("tok-%d", i)] = out["id"].(string)
	}
	waitFor(t, "the breaker log line", func() bool {
		return regexp.MustCompile(`msg="circuit breaker state changed" provider=fcm:loa-fake from=closed to=open`).MatchString(in.logs.String())
	})
	waitFor(t, "the dead letters", func() bool {
		_, dl := in.call(t, "GET", "/v1/ops/deadletters", "")
		items, _ := dl["items"].([]any)
		return len(items) == 3
	})
	// The metrics show the breaker and that it opened, to a key with
	// metrics:read (the dev key holds every scope), never to anyone.
	if resp, err := http.Get(in.base + "/metrics"); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != 401 || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("anonymous GET /metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	metrics := in.metrics(t)
	if !strings.Contains(string(metrics), `loa_breaker_state{provider="fcm:loa-fake"}`) ||
		!strings.Contains(string(metrics), `loa_breaker_transitions_total{provider="fcm:loa-fake",to="open"}`) {
		t.Errorf("no breaker metrics:\n%s", metrics)
	}

	_, dl := in.call(t, "GET", "/v1/ops/deadletters", "")
	first := dl["items"].([]any)[0].(map[string]any)
	if first["channel"] != "push" || first["replayable"] != true {
		t.Fatalf("dead letter %v", first)
	}
	// The outage ends; the breaker lets trial sends through once its open
	// window has passed: probe with pushes, each followed to its outcome,
	// until one is sent.
	req, _ := http.NewRequest(http.MethodDelete, f.urls["control"]+"/fcm/_fault", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("end the outage: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	probes := 0
	waitFor(t, "a push through the breaker", func() bool {
		probes++
		code, out := in.call(t, "POST", "/v1/notifications", fmt.Sprintf(`{"to":{"device_token":"tok-probe-%d"},"title":"Thử","body":"Thử %d"}`, probes, probes))
		if code != 202 {
			t.Fatalf("POST probe: %d %v", code, out)
		}
		var status any
		waitFor(t, "the probe's outcome", func() bool {
			_, st := in.call(t, "GET", "/v1/notifications/"+out["id"].(string), "")
			status = st["status"]
			return status == "sent" || status == "failed"
		})
		return status == "sent"
	})
	code, rep := in.call(t, "POST", "/v1/ops/deadletters/"+first["id"].(string)+"/replay", "")
	if code != 202 {
		t.Fatalf("replay: %d %v", code, rep)
	}
	recipient := first["recipient"].(string)
	fcmCount := func(token string) int {
		resp, err := http.Get(f.urls["control"] + "/fcm/_messages")
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		var msgs []struct{ Token string }
		if err := json.NewDecoder(resp.Body).Decode(&msgs); err != nil {
			return -1
		}
		n := 0
		for _, m := range msgs {
			if m.Token == token {
				n++
			}
		}
		return n
	}
	waitFor(t, "the replayed push recorded as sent", func() bool {
		_, st := in.call(t, "GET", "/v1/notifications/"+notificationOf[recipient], "")
		return st["status"] == "sent"
	})
	if n := fcmCount(recipient); n != 1 {
		t.Errorf("the replayed push reached FCM %d times, want once", n)
	}
	if code, p := in.call(t, "POST", "/v1/ops/deadletters/"+first["id"].(string)+"/replay", ""); code != 409 {
		t.Errorf("second replay: %d %v", code, p)
	}

	// Trial sends succeed: the breaker closes and says so.
	for i := range 3 {
		in.call(t, "POST", "/v1/notifications", fmt.Sprintf(`{"to":{"device_token":"tok-after-%d"},"title":"Có điện","body":"Khu vực %d"}`, i, i))
	}
	waitFor(t, "the breaker to close", func() bool {
		return strings.Contains(in.logs.String(), `msg="circuit breaker state changed" provider=fcm:loa-fake from=half-open to=closed`)
	})
	metrics = in.metrics(t)
	if !strings.Contains(string(metrics), `loa_breaker_state{provider="fcm:loa-fake"} 0`) {
		t.Errorf("breaker metric after closing:\n%s", metrics)
	}
}

// metrics reads the instance's /metrics with its key.
func (in *instance) metrics(t *testing.T) []byte {
	t.Helper()
	req, _ := http.NewRequest("GET", in.base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+in.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, b)
	}
	return b
}

func fault(t *testing.T, url, body string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("fault %s: %d", url, resp.StatusCode)
	}
}

// startDevAt runs `loa dev` with exactly env (its LOA_HTTP_ADDR
// included) and waits until /healthz answers; it is stopped when t ends.
func startDevAt(t *testing.T, env map[string]string) *instance {
	t.Helper()
	pr, pw := io.Pipe()
	logs := &lockedBuffer{}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			logs.Write([]byte(sc.Text() + "\n"))
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	var runErr error
	done := make(chan struct{})
	go func() {
		runErr = run(ctx, []string{"loa", "dev"}, func(k string) string { return env[k] }, pw)
		pw.Close()
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
			if runErr != nil {
				t.Errorf("loa dev: %v", runErr)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("loa dev did not stop within 60s")
		}
		if t.Failed() {
			t.Logf("loa dev output:\n%s", logs.String())
		}
	})
	in := &instance{base: "http://" + env["LOA_HTTP_ADDR"], key: "loa-dev-key", logs: logs}
	waitFor(t, "healthz", func() bool {
		select {
		case <-done:
			t.Fatalf("loa dev exited: %v", runErr)
		default:
		}
		resp, err := http.Get(in.base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return in
}
