package api_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/loa-hub/loa/api"
	"github.com/loa-hub/loa/internal/quota"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/producer/feedback"
)

// TestAnonymousReadsAreBoundedPerAddress: past its quota an address's
// anonymous reads of the public routes — areas, public feedback, the
// portal and its feeds, Open311 — are 429 rate-limited with Retry-After,
// before any work; another address behind no such load is not held up; a
// caller with a valid key or session is neither counted nor refused,
// while a made-up key counts like none; routes that are not public reads
// are untouched.
func TestAnonymousReadsAreBoundedPerAddress(t *testing.T) {
	rdb := goredis.NewClient(&goredis.Options{Addr: testenv.Miniredis(t).Addr()})
	t.Cleanup(func() { rdb.Close() })
	q := quota.New(quota.Config{Limit: 5, Window: 10 * time.Second, Batch: 1, MaxLocal: 100, CallTimeout: time.Second}, rdb, "t:", nil)
	f := newAccountsFixture(t, trustLoopback, func(d *api.Deps) { d.PublicReads = q })
	// The fixture's clock: on the wall clock, a test crossing a window's
	// end (every 10 s) found its quota whole again (train at 18:13).
	q.SetClock(f.clock.Now)
	_, citizen := f.citizen(t, "049095000123", "0912345678")
	const crowd, other = "203.0.113.7", "198.51.100.9"
	for i := range 5 {
		if resp, p := f.do(t, "GET", "/v1/areas", "", "", "X-Forwarded-For", crowd); resp.StatusCode != 200 {
			t.Fatalf("read %d: %d %v", i, resp.StatusCode, p)
		}
	}
	for _, path := range []string{"/v1/areas", "/v1/public/feedback", "/v1/public/feedback/stats", "/v1/portal/articles",
		"/v1/portal/feeds/tin-tuc/vi", "/open311/v2/requests.json", "/open311/v2/services.xml", "/v1/openapi.json"} {
		resp, p := f.do(t, "GET", path, "", "", "X-Forwarded-For", crowd)
		if resp.StatusCode != 429 || p["type"] != "urn:loa:problem:rate-limited" || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s past the quota: %d %v", path, resp.StatusCode, p)
		}
	}
	if resp, p := f.do(t, "GET", "/v1/areas", "made-up-key", "", "X-Forwarded-For", crowd); resp.StatusCode != 429 {
		t.Errorf("a made-up key past the quota: %d %v", resp.StatusCode, p)
	}
	for name, key := range map[string]string{"a key": "dev-key", "a session": citizen} {
		if resp, p := f.do(t, "GET", "/v1/areas", key, "", "X-Forwarded-For", crowd); resp.StatusCode != 200 {
			t.Errorf("%s from the busy address: %d %v", name, resp.StatusCode, p)
		}
		// Not counted: ten reads from another address leave its quota whole.
		for range 10 {
			if resp, p := f.do(t, "GET", "/v1/areas", key, "", "X-Forwarded-For", other); resp.StatusCode != 200 {
				t.Fatalf("%s from another address: %d %v", name, resp.StatusCode, p)
			}
		}
	}
	if resp, p := f.do(t, "GET", "/v1/me", citizen, "", "X-Forwarded-For", crowd); resp.StatusCode != 200 {
		t.Errorf("a session's own route from the busy address: %d %v", resp.StatusCode, p)
	}
	for i := range 5 {
		if resp, p := f.do(t, "GET", "/v1/areas", "", "", "X-Forwarded-For", other); resp.StatusCode != 200 {
			t.Errorf("the other address's anonymous read %d after 20 signed-in ones: %d %v", i+1, resp.StatusCode, p)
		}
	}
}

// TestANoisyKeyCannotFillTheDirectLane: every key's notifications share
// one lane, so one key (noisy, looping, or stolen) sending without end
// would hold up every other key's. Past its quota a key's POST
// /v1/notifications is 429 rate-limited with Retry-After, before its body
// is read and with nothing stored or published, while another key in the
// same window is served; the key is served again in the next window.
func TestANoisyKeyCannotFillTheDirectLane(t *testing.T) {
	rdb := goredis.NewClient(&goredis.Options{Addr: testenv.Miniredis(t).Addr()})
	t.Cleanup(func() { rdb.Close() })
	q := quota.New(quota.Config{Limit: 5, Window: 10 * time.Second, Batch: 1, MaxLocal: 100, CallTimeout: time.Second}, rdb, "t:", nil)
	f := newAccountsFixture(t, func(d *api.Deps) { d.KeyNotifications = q })
	q.SetClock(f.clock.Now)
	for _, id := range []string{"noisy", "quiet"} {
		if err := f.store.CreateAPIKey(context.Background(), sqlstore.APIKey{ID: "k-" + id, Name: id, Hash: api.HashAPIKey(id + "-key"),
			Scopes: []string{api.ScopeNotifyDirect}, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	body := func(i int) string {
		return fmt.Sprintf(`{"to":{"phone":"0912345678"},"body":"Thông báo %d","channels":["sms"]}`, i)
	}
	for i := range 5 {
		if resp, p := f.do(t, "POST", "/v1/notifications", "noisy-key", body(i)); resp.StatusCode != 202 {
			t.Fatalf("notification %d: %d %v", i, resp.StatusCode, p)
		}
	}
	sent := f.pub.count()
	for _, b := range []string{body(5), `{"to":`} {
		resp, p := f.do(t, "POST", "/v1/notifications", "noisy-key", b)
		if resp.StatusCode != 429 || p["type"] != "urn:loa:problem:rate-limited" || resp.Header.Get("Retry-After") == "" {
			t.Errorf("past the key's quota (body %q): %d %v", b, resp.StatusCode, p)
		}
	}
	if n := f.pub.count(); n != sent {
		t.Errorf("%d published past the quota", n-sent)
	}
	if resp, p := f.do(t, "POST", "/v1/notifications", "quiet-key", body(6)); resp.StatusCode != 202 {
		t.Errorf("another key in the same window: %d %v", resp.StatusCode, p)
	}
	f.clock.Advance(10 * time.Second)
	if resp, p := f.do(t, "POST", "/v1/notifications", "noisy-key", body(7)); resp.StatusCode != 202 {
		t.Errorf("the noisy key in the next window: %d %v", resp.StatusCode, p)
	}
}

// blockingFeedback is the store of the feedback service with ListFeedback
// held until release is closed; entered gets a value as each call begins.
type blockingFeedback struct {
	*sqlstore.DB
	entered chan struct{}
	release chan struct{}
}

func (b *blockingFeedback) ListFeedback(ctx context.Context, f feedback.Filter) ([]feedback.Feedback, error) {
	b.entered <- struct{}{}
	<-b.release
	return b.DB.ListFeedback(ctx, f)
}

// TestAnAddressHasFewAnonymousReadsInProgress: an answer holds its bytes
// until the caller reads them, and a list is megabytes (an Open311 list
// of 1,000 matters of 1 KB: 1.5 MB; 50 connections that never read it
// held 103 MB of the API's heap). Past LOA_PUBLIC_READS_INFLIGHT of an
// address's anonymous public reads in progress, the next is 429 at
// once, before any work; another address is not held up, and the place
// is free again once an answer is written.
func TestAnAddressHasFewAnonymousReadsInProgress(t *testing.T) {
	bf := &blockingFeedback{entered: make(chan struct{}, 10), release: make(chan struct{})}
	f := newFeedbackFixtureWith(t, func(d *api.Deps) {
		d.PublicReadsInFlight = 2
		trustLoopback(d)
		bf.DB = d.Store
		fb, err := feedback.New(d.Feedback.Config(), feedback.Deps{Store: bf, Roles: accountGrants{d.Accounts}, Directory: bf.DB,
			Log: d.Log, Now: d.Now})
		if err != nil {
			t.Fatal(err)
		}
		d.Feedback = fb
	})
	const crowd, other = "203.0.113.7", "198.51.100.9"
	read := func(addr string) <-chan int {
		out := make(chan int, 1)
		go func() {
			req, _ := http.NewRequest("GET", f.srv.URL+"/v1/public/feedback", nil)
			req.Header.Set("X-Forwarded-For", addr)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				out <- 0
				return
			}
			resp.Body.Close()
			out <- resp.StatusCode
		}()
		return out
	}
	first, second := read(crowd), read(crowd)
	<-bf.entered
	<-bf.entered
	third := read(crowd)
	select {
	case code := <-third:
		if code != http.StatusTooManyRequests {
			t.Errorf("a third read in progress: %d, want 429", code)
		}
		third = nil
	case <-bf.entered:
		t.Error("a third read of one address reached the store while two were in progress")
	}
	elsewhere := read(other)
	<-bf.entered // another address is not held up
	close(bf.release)
	for name, c := range map[string]<-chan int{"first": first, "second": second, "another address's": elsewhere} {
		if code := <-c; code != http.StatusOK {
			t.Errorf("the %s read: %d, want 200", name, code)
		}
	}
	if third != nil {
		<-third // it reached the store, and was released with the others
	}
	if code := <-read(crowd); code != http.StatusOK {
		t.Errorf("a read once the others were answered: %d, want 200", code)
	}
}
