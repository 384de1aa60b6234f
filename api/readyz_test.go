package api_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loa-hub/loa/api"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/producer/direct"
)

// TestReadyzCannotBeUsedToHammerOrMapTheDependencies: /readyz is public,
// so a stranger's requests must not each probe PostgreSQL, Redis and
// Kafka, nor read the probes' error strings (which name internal
// addresses). Any number of requests, concurrent or not, probe each
// dependency at most once per api.ReadyEvery; anonymous callers and keys
// without ops or metrics:read get the status only; the checks' answers go
// to an ops or metrics:read key.
func TestReadyzCannotBeUsedToHammerOrMapTheDependencies(t *testing.T) {
	store := testenv.OpenStore(t, testenv.SQLiteURL(t))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	clk := &testClock{t: now}
	var (
		probes atomic.Int64
		gate   = make(chan struct{}) // closed: probes answer at once
		redis  atomic.Value          // the redis check's answer
		began  = make(chan struct{}, 1000)
	)
	redis.Store("")
	check := func(context.Context) error {
		probes.Add(1)
		began <- struct{}{}
		<-gate
		if s := redis.Load().(string); s != "" {
			return errors.New(s)
		}
		return nil
	}
	h := api.NewHandler(api.Deps{
		Store: store, Direct: direct.New(direct.DefaultConfig(), store, &recorder{}, log), Log: log, Now: clk.Now,
		Ready: []api.Check{{Name: "redis", Check: check}},
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	for id, scopes := range map[string][]string{"prom": {api.ScopeMetricsRead}, "ops": {api.ScopeOps}, "sender": {api.ScopeNotifyDirect}} {
		if err := store.CreateAPIKey(context.Background(), sqlstore.APIKey{ID: "k-" + id, Name: id, Hash: api.HashAPIKey(id + "-key"),
			Scopes: scopes, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	get := func(key string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+"/readyz", nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	// Forty concurrent strangers while the first probe is held: one probe.
	var wg sync.WaitGroup
	codes := make(chan int, 40)
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _ := get("")
			codes <- code
		}()
	}
	<-began // the first request started the probe; the gate holds it
	close(gate)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Errorf("a concurrent /readyz answered %d", c)
		}
	}
	if n := probes.Load(); n != 1 {
		t.Errorf("40 concurrent requests probed the dependency %d times, want 1", n)
	}
	// More requests within ReadyEvery: still that one probe.
	for range 100 {
		get("")
	}
	if n := probes.Load(); n != 1 {
		t.Errorf("140 requests within %v probed %d times, want 1", api.ReadyEvery, n)
	}

	// Once the answer is ReadyEvery old, the next request probes again, and
	// sees the dependency fail.
	redis.Store("dial tcp 10.20.30.40:6379: connect: connection refused")
	clk.Advance(api.ReadyEvery)
	code, body := get("")
	if n := probes.Load(); n != 2 {
		t.Errorf("after %v: %d probes, want 2", api.ReadyEvery, n)
	}
	if code != 503 || !strings.Contains(body, `"unavailable"`) {
		t.Errorf("a failing dependency: %d %s", code, body)
	}
	for _, who := range []string{"", "sender-key", "not-a-key"} {
		code, body := get(who)
		if code != 503 || strings.Contains(body, "10.20.30.40") || strings.Contains(body, "redis") {
			t.Errorf("caller %q reads %d %s; want 503 with the status only", who, code, body)
		}
	}
	for _, who := range []string{"prom-key", "ops-key"} {
		code, body := get(who)
		if code != 503 || !strings.Contains(body, "10.20.30.40:6379") {
			t.Errorf("caller %q reads %d %s; want the check's answer", who, code, body)
		}
	}
	if n := probes.Load(); n != 2 {
		t.Errorf("%d probes, want 2", n)
	}

	// Recovery is seen at the next probe.
	redis.Store("")
	clk.Advance(api.ReadyEvery + time.Millisecond)
	if code, body := get(""); code != 200 || body == "" {
		t.Errorf("after recovery: %d %s", code, body)
	}
}
