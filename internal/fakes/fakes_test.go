package fakes_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/smtp"
	"strings"
	"testing"

	"github.com/loa-hub/loa/internal/fakes"
)

func TestStartAll(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	set, err := fakes.StartAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	u := set.URLs()
	if !strings.HasPrefix(u.FCMEndpoint, "https://127.0.0.1:") || !strings.HasSuffix(u.FCMEndpoint, "/v1") || u.SMTP == "" || u.ESMS == "" {
		t.Errorf("URLs = %+v", u)
	}
	if s := u.String(); !strings.Contains(s, u.Control) {
		t.Errorf("String() = %q", s)
	}

	resp, err := http.Get(u.Control + "/")
	if err != nil {
		t.Fatal(err)
	}
	var got fakes.URLs
	_ = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if got != u {
		t.Errorf("GET / = %+v, want %+v", got, u)
	}

	// A separate process sets a fault through the control server.
	resp, err = http.Post(u.Control+"/fcm/_fault", "application/json", strings.NewReader(`{"error":"UNAVAILABLE","retry_after":"7s"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	r, err := set.FCM.Client().Post(u.FCMEndpoint+"/projects/p/messages:send", "application/json", strings.NewReader(`{"message":{"token":"t"}}`))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 503 || r.Header.Get("Retry-After") != "7" {
		t.Errorf("FCM after fault: %d Retry-After %q", r.StatusCode, r.Header.Get("Retry-After"))
	}

	// The SMTP fake takes mail without TLS or auth by default.
	c, err := smtp.Dial(u.SMTP)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("a@example.vn"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@example.vn"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte("Subject: x\r\n\r\nhi\r\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_ = c.Quit()
	resp, err = http.Get(u.Control + "/smtp/_messages")
	if err != nil {
		t.Fatal(err)
	}
	var msgs []map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&msgs)
	resp.Body.Close()
	if len(msgs) != 1 || set.SMTP.CountFor("b@example.vn") != 1 {
		t.Errorf("smtp messages = %v", msgs)
	}

	set.Close()
	set.Close() // idempotent
	if _, err := http.Get(u.Control + "/"); err == nil {
		t.Error("control server still answers after Close")
	}
}

// TestStatsAndCounts: another process reads what the fakes accepted per
// recipient without the messages themselves, also when the FCM fake keeps
// only counts.
func TestStatsAndCounts(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	set, err := fakes.Start(ctx, fakes.Options{FCMRecord: "counts"})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	u := set.URLs()
	for _, tok := range []string{"a", "b", "a"} {
		r, err := set.FCM.Client().Post(u.FCMEndpoint+"/projects/p/messages:send", "application/json",
			strings.NewReader(`{"message":{"token":"`+tok+`"}}`))
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
	}
	get := func(path string, v any) {
		t.Helper()
		resp, err := http.Get(u.Control + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	var c fakes.Counts
	get("/fcm/_counts", &c)
	if c.Count != 3 || c.ByRecipient["a"] != 2 || c.ByRecipient["b"] != 1 {
		t.Errorf("fcm counts = %+v", c)
	}
	var st fakes.FCMStats
	get("/fcm/_stats", &st)
	if st.Count != 3 || st.Requests != 3 || st.InFlight != 0 || st.MaxInFlight < 1 {
		t.Errorf("fcm stats = %+v", st)
	}
	if len(set.FCM.Messages()) != 0 {
		t.Error("the FCM fake kept messages in counts mode")
	}
	var sc fakes.Counts
	get("/esms/_counts", &sc)
	var ss fakes.SMSStats
	get("/esms/_stats", &ss)
	if sc.Count != 0 || ss.Requests != 0 {
		t.Errorf("esms: %+v %+v", sc, ss)
	}
	if resp, err := http.Get(u.Control + "/nope/_counts"); err != nil || resp.StatusCode != 404 {
		t.Errorf("unknown fake: %v %v", resp, err)
	}
	if _, err := fakes.Start(ctx, fakes.Options{FCMRecord: "some"}); err == nil {
		t.Error("an unknown FCMRecord was accepted")
	}
}
