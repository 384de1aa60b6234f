package dispatcher

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/channels/fcm"
	"github.com/loa-hub/loa/internal/fakes/fcmfake"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

// pushTimes records when the fake accepted each push to a device of one
// prefix.
type pushTimes struct {
	prefix string
	mu     sync.Mutex
	at     []time.Time
}

func (p *pushTimes) accepted(target string) {
	if strings.HasPrefix(target, p.prefix) {
		now := time.Now()
		p.mu.Lock()
		p.at = append(p.at, now)
		p.mu.Unlock()
	}
}

func (p *pushTimes) reset() {
	p.mu.Lock()
	p.at = p.at[:0]
	p.mu.Unlock()
}

func (p *pushTimes) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.at)
}

// latencies returns each push's time from since, in order.
func (p *pushTimes) latencies(since time.Time) []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]time.Duration, len(p.at))
	for i, t := range p.at {
		out[i] = t.Sub(since)
	}
	slices.Sort(out)
	return out
}

// BenchmarkAlertUnderBroadcast is an alert's latency while the bulk lane
// is busy: a 10,000-device alert is posted on an idle dispatcher, then
// again while a 1,000,000-device broadcast is being sent (100,000 pushes
// in), both through the production channel stack (breaker, the shared
// rate limit at FCM's default 10,000/s, the FCM client and its
// connection pool) to the fake FCM over HTTP/2 + TLS, with the default
// worker budgets. It reports each alert's first, median, 99th percentile
// and last push after its publish, and how many broadcast pushes went
// while the loaded alert was being sent. Needs the real services
// (LOA_TEST_DATABASE_URL; skipped without it).
func BenchmarkAlertUnderBroadcast(b *testing.B) {
	if os.Getenv("LOA_TEST_DATABASE_URL") == "" {
		b.Skip("needs LOA_TEST_DATABASE_URL: the audiences live in PostgreSQL")
	}
	const broadcast, alertDevices, before = 1_000_000, 10_000, 100_000
	for i := range b.N {
		b.StopTimer()
		r := newRig(b, "real")
		r.seedArea(b, broadcast)
		ctx := context.Background()
		if err := r.store.UpsertAreas(ctx, []accounts.Area{{Code: "20498", Name: "Cẩm Phô", Parent: "49", Level: "commune"}}); err != nil {
			b.Fatal(err)
		}
		if err := r.store.SeedAudience(ctx, "al", alertDevices, 5_000_000, "smart", "20498", time.Now()); err != nil {
			b.Fatal(err)
		}
		times := &pushTimes{prefix: "al-tok-"}
		fake, err := fcmfake.New(fcmfake.Options{TotalOnly: true, Accepted: times.accepted})
		if err != nil {
			b.Fatal(err)
		}
		client, err := fcm.New(ctx, fcm.Config{ProjectID: "loa-bench", Endpoint: fake.Endpoint(), HTTPClient: fake.Client(),
			ReservedShare: 0.1})
		if err != nil {
			b.Fatal(err)
		}
		r.chans[channels.Push] = r.guarded(b, client.Name(), client, 10_000, 1_000)
		stop := r.start(b, func(d *Dispatcher) {
			d.cfg.Workers = DefaultConfig().Workers
			d.claims.SentTTL = 10 * time.Minute
		})
		wctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
		alert := func(id string) []time.Duration {
			times.reset()
			start := time.Now()
			r.publishPlan(b, id, topics.LaneAlert, producer.Plan{Audience: producer.Audience{Areas: []string{"20498"}},
				Channels: []string{"push"}, Title: "Cảnh báo lũ", Body: "Nước sông Hoài lên nhanh, di dời ngay", Priority: "high"})
			for times.count() < alertDevices {
				select {
				case <-wctx.Done():
					b.Fatalf("alert %s reached %d of %d devices", id, times.count(), alertDevices)
				case <-time.After(10 * time.Millisecond): // polling the count
				}
			}
			return times.latencies(start)
		}
		b.StartTimer()
		idle := alert(fmt.Sprintf("alert-idle-%d", i))
		r.publishPlan(b, fmt.Sprintf("bc-million-%d", i), topics.LaneBulk, producer.Plan{Audience: producer.Audience{Areas: []string{"20497"}},
			Channels: []string{"push"}, Title: "Thông báo", Body: "Lịch tiêm chủng tháng 12", Priority: "normal"})
		if err := fake.WaitCount(wctx, alertDevices+before); err != nil {
			b.Fatal(err)
		}
		bcBefore := fake.Count()
		loaded := alert(fmt.Sprintf("alert-load-%d", i))
		bcDuring := fake.Count() - bcBefore - alertDevices
		b.StopTimer()
		cancel()
		stop()
		fake.Close()
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		pct := func(l []time.Duration, p float64) time.Duration { return l[min(len(l)-1, int(p*float64(len(l))))] }
		for _, run := range []struct {
			name string
			l    []time.Duration
		}{{"idle", idle}, {"load", loaded}} {
			b.ReportMetric(ms(run.l[0]), run.name+"-first-ms")
			b.ReportMetric(ms(pct(run.l, 0.5)), run.name+"-p50-ms")
			b.ReportMetric(ms(pct(run.l, 0.99)), run.name+"-p99-ms")
			b.ReportMetric(ms(run.l[len(run.l)-1]), run.name+"-last-ms")
		}
		b.ReportMetric(float64(bcDuring), "bulk-pushes-during-alert")
		b.StartTimer()
	}
}
