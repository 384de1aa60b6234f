package fault

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestParseJSONRoundTrip(t *testing.T) {
	now := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	f, err := ParseJSON([]byte(`{"latency":"20ms","error":"UNAVAILABLE","retry_after":"7s","times":3,"hang":true,
		"outage_for":"10s","recipients":{"tok":"UNREGISTERED"}}`), now)
	if err != nil {
		t.Fatal(err)
	}
	want := Faults{Latency: 20 * time.Millisecond, Error: "UNAVAILABLE", RetryAfter: 7 * time.Second, Times: 3, Hang: true,
		OutageUntil: now.Add(10 * time.Second), Recipients: map[string]string{"tok": "UNREGISTERED"}}
	b, _ := json.Marshal(f)
	wb, _ := json.Marshal(want)
	if string(b) != string(wb) {
		t.Errorf("got %s, want %s", b, wb)
	}
	again, err := ParseJSON(b, time.Time{})
	if err != nil || !again.OutageUntil.Equal(want.OutageUntil) || again.Latency != want.Latency {
		t.Errorf("round trip: %+v, %v", again, err)
	}
	for _, bad := range []string{`{"latency":"soon"}`, `{"retry_after":5}`, `[`} {
		if _, err := ParseJSON([]byte(bad), now); err == nil {
			t.Errorf("ParseJSON(%s) = nil error", bad)
		}
	}
}

func TestDecide(t *testing.T) {
	now := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	i := NewInjector(func() time.Time { return now })
	if d := i.Decide("x"); d.Failed() {
		t.Errorf("empty plan: %+v", d)
	}
	i.FailRecipient("dead", "UNREGISTERED")
	i.FailNext(2, "INTERNAL")
	if d := i.Decide("dead"); d.Error != "UNREGISTERED" {
		t.Errorf("recipient error: %+v", d)
	}
	for n := range 2 {
		if d := i.Decide("x"); d.Error != "INTERNAL" {
			t.Errorf("request %d: %+v", n, d)
		}
	}
	if d := i.Decide("x"); d.Failed() {
		t.Errorf("after Times: %+v", d)
	}
	i.OutageFor(time.Minute)
	if d := i.Decide("dead"); !d.Outage || !i.InOutage() {
		t.Errorf("outage beats recipient errors: %+v", d)
	}
	i.SetStatus(502, time.Second)
	i.OutageUntil(time.Time{})
	if d := i.Decide("x"); d.Status != 502 || d.RetryAfter != time.Second {
		t.Errorf("status: %+v", d)
	}
	i.Reset()
	if d := i.Decide("dead"); d.Failed() {
		t.Errorf("after Reset: %+v", d)
	}
}

func TestWait(t *testing.T) {
	i := NewInjector(nil)
	if err := i.Wait(context.Background(), Decision{Latency: time.Millisecond}); err != nil {
		t.Errorf("latency: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	held := i.Holding()
	done := make(chan error, 1)
	go func() { done <- i.Wait(ctx, Decision{Hang: true}) }()
	<-held
	cancel()
	if err := <-done; err != ErrGone {
		t.Errorf("hang after cancel: %v", err)
	}
	held = i.Holding()
	go func() { done <- i.Wait(context.Background(), Decision{Hang: true}) }()
	<-held
	i.Close()
	if err := <-done; err != ErrGone {
		t.Errorf("hang after Close: %v", err)
	}
}

func TestServeHTTP(t *testing.T) {
	i := NewInjector(nil)
	mux := http.NewServeMux()
	i.Mount(mux, "/_fault")
	mux.HandleFunc("POST /", func(http.ResponseWriter, *http.Request) {}) // a catch-all must not conflict
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/_fault", "application/json", strings.NewReader(`{"error":"QUOTA_EXCEEDED","retry_after":"1m"}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST: %v %v", resp, err)
	}
	resp.Body.Close()
	if f := i.Faults(); f.Error != "QUOTA_EXCEEDED" || f.RetryAfter != time.Minute {
		t.Errorf("plan = %+v", f)
	}
	req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/_fault", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if f := i.Faults(); f.Error != "" {
		t.Errorf("after DELETE: %+v", f)
	}
	resp, _ = http.Post(srv.URL+"/_fault", "application/json", strings.NewReader(`{"latency":"x"}`))
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad plan: status %d", resp.StatusCode)
	}
	resp.Body.Close()
}

func TestRetryAfterHeader(t *testing.T) {
	for d, want := range map[time.Duration]string{7 * time.Second: "7", 1500 * time.Millisecond: "2", time.Minute: "60"} {
		if got := RetryAfterHeader(d); got != want {
			t.Errorf("RetryAfterHeader(%s) = %s, want %s", d, got, want)
		}
	}
}
