package dispatcher

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/channels/breaker"
	"github.com/loa-hub/loa/channels/fcm"
	"github.com/loa-hub/loa/channels/ratelimit"
	"github.com/loa-hub/loa/channels/sms"
	"github.com/loa-hub/loa/internal/fakes/fcmfake"
	"github.com/loa-hub/loa/internal/fakes/smsfake"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

// These tests run the dispatcher against the provider fakes over their
// real wire protocols. They are the longer ones, so each runs once: on
// the real services when they are configured, else on the embedded ones.
func oneBackend(t *testing.T, f func(t *testing.T, r *rig)) {
	name := "embedded"
	if testenv.Configured("LOA_TEST_KAFKA_BROKERS") {
		name = "real"
	}
	t.Run(name, func(t *testing.T) { f(t, newRig(t, name)) })
}

// transitions records the breaker state changes a logger is told of.
type transitions struct {
	mu  sync.Mutex
	tos []string
}

func (tr *transitions) Enabled(context.Context, slog.Level) bool { return true }
func (tr *transitions) WithAttrs([]slog.Attr) slog.Handler       { return tr }
func (tr *transitions) WithGroup(string) slog.Handler            { return tr }
func (tr *transitions) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "circuit breaker state changed" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "to" {
				tr.mu.Lock()
				tr.tos = append(tr.tos, a.Value.String())
				tr.mu.Unlock()
			}
			return true
		})
	}
	return nil
}

func (tr *transitions) list() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]string(nil), tr.tos...)
}

// newFCM is a client of fake. Its calls wait long for an answer: these
// tests fail FCM with answers, and on a starved machine a short timeout
// would fail a call the fake took (a code or an alert is then in doubt,
// never sent again; a broadcast push is sent twice).
func newFCM(t testing.TB, fake *fcmfake.Server, quota time.Duration) *fcm.Client {
	t.Helper()
	c, err := fcm.New(context.Background(), fcm.Config{ProjectID: "loa-test", Endpoint: fake.Endpoint(), HTTPClient: fake.Client(),
		CallTimeout: 30 * time.Second, QuotaBackoff: quota})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (r *rig) publishPush(t testing.TB, n int, prefix string) {
	t.Helper()
	ctx := waitCtx(t)
	now := time.Now()
	errs := make(chan error, n)
	for i := range n {
		go func() {
			id, tok := fmt.Sprintf("%s-%04d", prefix, i), fmt.Sprintf("%s-tok-%04d", prefix, i)
			env, err := producer.NewEnvelope("ev-"+id, producer.KindDirect, topics.LaneAlert, tok, now, now.Add(time.Hour), "",
				producer.Direct{NotificationID: id, To: producer.Recipient{Type: producer.ToDevice, Value: tok}, Title: "Cảnh báo lũ",
					Body: "Mực nước sông Thu Bồn đang lên", Channels: []string{"push"}, Priority: "high"})
			if err == nil {
				err = r.pub.Publish(ctx, env)
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestFCMOutageBreakerOpensAndEverythingArrivesOnce: FCM answers 503 for
// ten seconds while 2,000 pushes flow. The breaker opens and closes again,
// the pushes wait in the retry tiers, and afterwards every one has been
// delivered exactly once (counted at the fake).
func TestFCMOutageBreakerOpensAndEverythingArrivesOnce(t *testing.T) {
	oneBackend(t, func(t *testing.T, r *rig) {
		fake, err := fcmfake.New(fcmfake.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(fake.Close)
		tr := &transitions{}
		b, err := breaker.New("fcm:loa-test", newFCM(t, fake, time.Minute),
			breaker.Settings{Failures: 5, OpenFor: time.Second, HalfOpenRequests: 3}, slog.New(tr), nil)
		if err != nil {
			t.Fatal(err)
		}
		r.chans[channels.Push] = b
		const n = 2000
		fake.OutageFor(10 * time.Second)
		r.publishPush(t, n, "outage")
		r.start(t, tiers(time.Second, 2*time.Second, 4*time.Second, 8*time.Second, 8*time.Second))
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := fake.WaitCount(ctx, n); err != nil {
			t.Fatalf("the fake accepted %d of %d: %v", fake.Count(), n, err)
		}
		if d := fake.Duplicates(); len(d) > 0 {
			t.Fatalf("%d pushes delivered more than once", len(d))
		}
		for i := range n {
			if c := fake.CountFor(fmt.Sprintf("outage-tok-%04d", i)); c != 1 {
				t.Fatalf("token %d received %d pushes", i, c)
			}
		}
		got := strings.Join(tr.list(), ",")
		if !strings.Contains(got, "open") || !strings.HasSuffix(got, "closed") {
			t.Errorf("breaker transitions %q: want it to open and end closed", got)
		}
		t.Logf("breaker transitions: %s; requests at the fake: %d for %d pushes", got, fake.Requests(), n)
	})
}

// TestSMSFailoverToTheSecondProvider: the first gateway fails completely;
// traffic moves to the second once the first's breaker opens, and every
// message is delivered once.
func TestSMSFailoverToTheSecondProvider(t *testing.T) {
	oneBackend(t, func(t *testing.T, r *rig) {
		first, err := smsfake.NewESMS(smsfake.ESMSOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(first.Close)
		second, err := smsfake.NewSpeedSMS(smsfake.SpeedSMSOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(second.Close)
		first.OutageFor(time.Hour)
		quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
		settings := breaker.Settings{Failures: 5, OpenFor: time.Minute, HalfOpenRequests: 1}
		e, _ := sms.NewESMS(sms.ESMSConfig{Name: "esms", BaseURL: first.URL(), APIKey: "k", SecretKey: "s", Brandname: "LOA"})
		s, _ := sms.NewSpeedSMS(sms.SpeedSMSConfig{Name: "speedsms", BaseURL: second.URL(), AccessToken: "t", Sender: "LOA"})
		be, _ := breaker.New("esms", e, settings, quiet, nil)
		bs, _ := breaker.New("speedsms", s, settings, quiet, nil)
		f, err := sms.NewFailover("", be, bs)
		if err != nil {
			t.Fatal(err)
		}
		r.chans[channels.SMS] = f
		const n = 200
		ids := r.publishDirect(t, n, "failover")
		r.start(t, nil)
		ctx := waitCtx(t)
		if err := second.WaitCount(ctx, n); err != nil {
			t.Fatalf("second gateway accepted %d of %d: %v", second.Count(), n, err)
		}
		waitLedger(t, r, ids)
		if len(second.Duplicates()) > 0 || first.Count() != 0 {
			t.Fatalf("duplicates %v; first gateway accepted %d", second.Duplicates(), first.Count())
		}
		// Once open, the first gateway's breaker keeps traffic off it: it saw
		// the failures that opened it (and what was already in flight), not
		// one request per message.
		if req := first.Requests(); req > 5+16 {
			t.Errorf("the failed gateway got %d requests for %d messages; the breaker should have cut it off after 5", req, n)
		}
		if be.State() != "open" {
			t.Errorf("first gateway's breaker is %s", be.State())
		}
	})
}

// TestUnregisteredTokenIsDeactivatedAndNeverSentAgain.
func TestUnregisteredTokenIsDeactivatedAndNeverSentAgain(t *testing.T) {
	oneBackend(t, func(t *testing.T, r *rig) {
		fake, err := fcmfake.New(fcmfake.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(fake.Close)
		fake.FailRecipient("dead-token", "UNREGISTERED")
		r.chans[channels.Push] = newFCM(t, fake, time.Minute)
		ctx := waitCtx(t)
		if err := r.store.SeedAccount(ctx, "citizen-1", "citizen", "84912345678", "", []string{"dead-token", "live-token"}, time.Now()); err != nil {
			t.Fatal(err)
		}
		send := func(id string) {
			now := time.Now()
			env, _ := producer.NewEnvelope("ev-"+id, producer.KindDirect, topics.LaneDirect, "citizen-1", now, now.Add(time.Hour), "",
				producer.Direct{NotificationID: id, To: producer.Recipient{Type: producer.ToAccount, Value: "citizen-1"}, Title: "T", Body: "B", Channels: []string{"push"}})
			if err := r.pub.Publish(ctx, env); err != nil {
				t.Fatal(err)
			}
		}
		send("first")
		r.start(t, nil)
		waitLedger3(t, r, "first", 2)
		ds, _ := r.store.Deliveries(ctx, "first")
		status := map[string]loa.Status{}
		for _, d := range ds {
			status[d.Recipient] = d.Status
		}
		if status["dead-token"] != loa.StatusTokenDead || status["live-token"] != loa.StatusSent {
			t.Fatalf("first notification: %v", status)
		}
		// The ledger deactivates the device from the receipt.
		for {
			c, err := r.store.Contact(ctx, "citizen-1", "")
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Tokens) == 1 && c.Tokens[0] == "live-token" {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("dead token still active: %v", c.Tokens)
			case <-time.After(20 * time.Millisecond):
			}
		}
		before := fake.Requests()
		send("second")
		waitLedger3(t, r, "second", 1)
		ds, _ = r.store.Deliveries(ctx, "second")
		if len(ds) != 1 || ds[0].Recipient != "live-token" || ds[0].Status != loa.StatusSent {
			t.Fatalf("second notification: %+v", ds)
		}
		if got := fake.Requests() - before; got != 1 {
			t.Errorf("second notification made %d requests; the dead token must not be tried", got)
		}
	})
}

// timed records when each send was tried.
type timed struct {
	channels.Channel
	mu    sync.Mutex
	times []time.Time
}

func (c *timed) Send(ctx context.Context, m channels.Message) (channels.Result, error) {
	c.mu.Lock()
	c.times = append(c.times, time.Now())
	c.mu.Unlock()
	return c.Channel.Send(ctx, m)
}

// TestQuotaExceededComesBackAfterItsBackOff: FCM's 429 QUOTA_EXCEEDED
// sends the push to a retry tier; it comes back after the quota back-off,
// not at once.
func TestQuotaExceededComesBackAfterItsBackOff(t *testing.T) {
	oneBackend(t, func(t *testing.T, r *rig) {
		fake, err := fcmfake.New(fcmfake.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(fake.Close)
		fake.FailNext(1, "QUOTA_EXCEEDED")
		tc := &timed{Channel: newFCM(t, fake, 1500*time.Millisecond)} // a minute in production
		r.chans[channels.Push] = tc
		r.publishPush(t, 1, "quota")
		r.start(t, tiers(200*time.Millisecond))
		d := waitStatus(t, r, "quota-0000", loa.StatusSent)
		tc.mu.Lock()
		times := append([]time.Time(nil), tc.times...)
		tc.mu.Unlock()
		if len(times) != 2 {
			t.Fatalf("%d sends, want 2", len(times))
		}
		if gap := times[1].Sub(times[0]); gap < 1500*time.Millisecond {
			t.Errorf("retried after %v; QUOTA_EXCEEDED asks for the 1.5s back-off, the tier alone is 200ms", gap)
		}
		if d.Attempts != 2 || fake.CountFor("quota-tok-0000") != 1 {
			t.Errorf("attempts %d, delivered %d", d.Attempts, fake.CountFor("quota-tok-0000"))
		}
	})
}

// TestRateLimitIsSharedByTwoDispatchers: a gateway limited to 50/s never
// sees more than the limit (plus the bucket's burst and a lease's slack)
// in any second, with
// two dispatcher instances sending, each with its own limiter object on
// the same Redis bucket.
func TestRateLimitIsSharedByTwoDispatchers(t *testing.T) {
	oneBackend(t, func(t *testing.T, r *rig) {
		gw, err := smsfake.NewSpeedSMS(smsfake.SpeedSMSOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(gw.Close)
		limit := ratelimit.Limit{PerSecond: 50, Burst: 10}
		stack := func() channels.Channel {
			p, err := sms.NewSpeedSMS(sms.SpeedSMSConfig{Name: "speedsms", BaseURL: gw.URL(), AccessToken: "t", Sender: "LOA"})
			if err != nil {
				t.Fatal(err)
			}
			l, err := ratelimit.NewLimiter(r.rdb, r.prefix+"rl:speedsms", limit, ratelimit.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return ratelimit.New("speedsms", p, l, ratelimit.ChannelConfig{})
		}
		const n = 300
		r.publishDirect(t, n, "limited")
		one, two := stack(), stack()
		r.start(t, func(d *Dispatcher) { d.channels = map[channels.Name]channels.Channel{channels.SMS: one} })
		r.start(t, func(d *Dispatcher) { d.channels = map[channels.Name]channels.Channel{channels.SMS: two} })
		if err := gw.WaitCount(waitCtx(t), n); err != nil {
			t.Fatalf("gateway accepted %d of %d: %v", gw.Count(), n, err)
		}
		var at []time.Time
		for _, m := range gw.Messages() {
			at = append(at, m.At)
		}
		sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
		worst := 0
		for i := range at {
			j := i
			for j < len(at) && at[j].Sub(at[i]) < time.Second {
				j++
			}
			worst = max(worst, j-i)
		}
		// A token bucket lets through at most burst + rate·w in any window
		// w. A replica leases tokens and may spend them up to a lease
		// (100 ms) after it took them, so a window can hold what was
		// taken a lease before it: burst + rate·(w + lease). The fake
		// stamps the accept, which adds each request's latency to when its
		// token was taken: allow 50ms of it.
		if allowed := limit.Burst + int(limit.PerSecond*(1+ratelimit.DefaultLease.Seconds()+0.05)); worst > allowed {
			t.Fatalf("the gateway saw %d messages in one second; the limit allows %d", worst, allowed)
		}
		if len(gw.Duplicates()) > 0 {
			t.Fatalf("duplicates: %v", gw.Duplicates())
		}
		t.Logf("busiest second: %d messages (limit 50/s, burst 10, lease 100 ms)", worst)
	})
}
