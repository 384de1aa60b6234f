package dispatcher

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/channels/breaker"
	"github.com/loa-hub/loa/channels/fcm"
	"github.com/loa-hub/loa/channels/ratelimit"
	"github.com/loa-hub/loa/channels/sms"
	"github.com/loa-hub/loa/internal/fakes/fcmfake"
	"github.com/loa-hub/loa/internal/fakes/smsfake"
	"github.com/loa-hub/loa/internal/metrics"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

// guarded puts p behind its shared rate limit and its breaker, as
// cmd/loa does for every provider, with the default reserve for codes
// and alerts.
func (r *rig) guarded(t testing.TB, name string, p channels.Channel, rate float64, burst int) channels.Channel {
	t.Helper()
	l, err := ratelimit.NewLimiter(r.rdb, r.prefix+"rl:"+name,
		ratelimit.Limit{PerSecond: rate, Burst: burst, Reserve: ratelimit.ReserveOf(burst, 0.1)}, ratelimit.Options{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	b, err := breaker.New(name, ratelimit.New(name, p, l, ratelimit.ChannelConfig{CallTimeout: 10 * time.Second}),
		breaker.DefaultSettings(), quietLogger(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pollUntil polls cond every 20 ms until it holds or ctx ends.
func pollUntil(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("gave up waiting until %s", what)
		case <-time.After(20 * time.Millisecond): // polling a condition, not ordering events
		}
	}
}

// TestAlertOvertakesABroadcastAtTheRateLimit: a 20,000-device broadcast
// is being sent through the real FCM client, behind a shared rate limit
// (400/s) that is the bottleneck; an alert to 500 devices posted when
// the first 1,000 have gone reaches all its devices before a tenth of the
// broadcast's remaining pushes. The order is the fake FCM's, not the
// clock's.
func TestAlertOvertakesABroadcastAtTheRateLimit(t *testing.T) {
	oneBackend(t, func(t *testing.T, r *rig) {
		const broadcast, alertDevices = 20000, 500
		r.seedArea(t, broadcast)
		ctx := context.Background()
		if err := r.store.UpsertAreas(ctx, []accounts.Area{{Code: "20498", Name: "Cẩm Phô", Parent: "49", Level: "commune"}}); err != nil {
			t.Fatal(err)
		}
		if err := r.store.SeedAudience(ctx, "al", alertDevices, 500000, "smart", "20498", time.Now()); err != nil {
			t.Fatal(err)
		}
		fake, err := fcmfake.New(fcmfake.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(fake.Close)
		client, err := fcm.New(ctx, fcm.Config{ProjectID: "loa-test", Endpoint: fake.Endpoint(), HTTPClient: fake.Client(),
			CallTimeout: 10 * time.Second, ReservedShare: 0.1})
		if err != nil {
			t.Fatal(err)
		}
		r.chans[channels.Push] = r.guarded(t, client.Name(), client, 400, 40)
		r.publishPlan(t, "bc-big", topics.LaneBulk, producer.Plan{Audience: producer.Audience{Areas: []string{"20497"}},
			Channels: []string{"push"}, Title: "Thông báo", Body: "Lịch tiêm chủng", Priority: "normal"})
		r.start(t, func(d *Dispatcher) { d.cfg.Workers[topics.LaneBulk] = 16; d.claims.SentTTL = 10 * time.Minute })
		wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		if err := fake.WaitCount(wctx, 1000); err != nil {
			t.Fatal(err)
		}
		posted := fake.Count() // all of the broadcast so far
		r.publishPlan(t, "alert-flood", topics.LaneAlert, producer.Plan{Audience: producer.Audience{Areas: []string{"20498"}},
			Channels: []string{"push"}, Title: "Cảnh báo lũ", Body: "Nước sông Hoài lên nhanh, di dời ngay", Priority: "high"})
		var msgs []fcmfake.Message
		alerts := func() int {
			msgs = fake.Messages()
			n := 0
			for _, m := range msgs {
				if strings.HasPrefix(m.Token, "al-tok-") {
					n++
				}
			}
			return n
		}
		pollUntil(wctx, t, "the alert reached its 500 devices", func() bool { return alerts() == alertDevices })
		last, bulk := -1, 0
		for i, m := range msgs {
			if strings.HasPrefix(m.Token, "al-tok-") {
				last = i
			}
		}
		for _, m := range msgs[:last+1] {
			if strings.HasPrefix(m.Token, "qn-tok-") {
				bulk++
			}
		}
		during, remaining := bulk-posted, broadcast-posted
		t.Logf("alert posted after %d broadcast pushes; complete after %d more of the %d remaining", posted, during, remaining)
		if during*10 >= remaining {
			t.Fatalf("%d broadcast pushes went before the alert's last; want fewer than a tenth of the %d remaining", during, remaining)
		}
		if d := fake.Duplicates(); len(d) > 0 {
			t.Fatalf("devices pushed twice: %v", d)
		}
	})
}

// TestCodeOvertakesAnSMSBroadcastAtTheGateway: a 5,000-SMS broadcast is
// being sent through a real SMS provider at its gateway's 50/s (every
// batch waiting at the rate limit at once); an SMS code posted when the
// first 100 have gone reaches the gateway before a tenth of the
// broadcast's remaining messages. The order is the gateway's.
func TestCodeOvertakesAnSMSBroadcastAtTheGateway(t *testing.T) {
	oneBackend(t, func(t *testing.T, r *rig) {
		const broadcast = 5000
		r.seedArea(t, broadcast)
		gw, err := smsfake.NewSpeedSMS(smsfake.SpeedSMSOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(gw.Close)
		p, err := sms.NewSpeedSMS(sms.SpeedSMSConfig{Name: "speedsms", BaseURL: gw.URL(), AccessToken: "t", Sender: "LOA"})
		if err != nil {
			t.Fatal(err)
		}
		r.chans[channels.SMS] = r.guarded(t, "speedsms", p, 50, 5)
		r.publishPlan(t, "bc-sms", topics.LaneBulk, producer.Plan{Audience: producer.Audience{Areas: []string{"20497"}},
			Channels: []string{"sms"}, Body: "Lich tiem chung thang 12", Priority: "normal", BatchSize: 50})
		r.start(t, func(d *Dispatcher) { d.cfg.Workers[topics.LaneBulk] = 128; d.claims.SentTTL = 10 * time.Minute })
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := gw.WaitCount(ctx, 100); err != nil {
			t.Fatal(err)
		}
		posted := gw.Count()
		const phone = "84912345678"
		now := time.Now()
		env, err := producer.NewEnvelope("ev-code", producer.KindDirect, topics.LaneOTP, phone, now, now.Add(5*time.Minute), "",
			producer.Direct{NotificationID: "code-1", To: producer.Recipient{Type: producer.ToPhone, Value: phone},
				Body: "483920 la ma xac thuc cua ban", Channels: []string{"sms"}, Priority: "high"})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.pub.Publish(ctx, env); err != nil {
			t.Fatal(err)
		}
		pollUntil(ctx, t, "the code reached the gateway", func() bool { return gw.CountFor(phone) == 1 })
		at := -1
		for i, m := range gw.Messages() {
			if m.Phone == phone {
				at = i
			}
		}
		during, remaining := at-posted, broadcast-posted
		t.Logf("code posted after %d broadcast SMS; at the gateway after %d more of the %d remaining", posted, during, remaining)
		if during*10 >= remaining {
			t.Fatalf("%d broadcast SMS went before the code; want fewer than a tenth of the %d remaining", during, remaining)
		}
	})
}

// TestQueueTimePerLane: a sent delivery is counted in
// loa_lane_queue_seconds under its lane and channel.
func TestQueueTimePerLane(t *testing.T) {
	oneBackend(t, func(t *testing.T, r *rig) {
		m := metrics.New()
		r.publishDirect(t, 3, "queued")
		r.start(t, func(d *Dispatcher) { d.setMetrics(m) })
		if err := r.outbox.WaitTotal(waitCtx(t), 3); err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		if want := `loa_lane_queue_seconds_count{channel="sms",lane="direct"} 3`; !strings.Contains(rec.Body.String(), want) {
			t.Fatalf("metrics lack %s", want)
		}
	})
}
