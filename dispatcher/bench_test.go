package dispatcher

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/internal/fakes/fcmfake"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

// BenchmarkDirectLane measures the direct lane end to end: b.N events
// already on Kafka are consumed, claimed in Redis, sent to the sandbox,
// receipted back to Kafka and committed. It runs on the real services when
// LOA_TEST_KAFKA_BROKERS is set, else on the embedded ones. Reports
// messages/s.
func BenchmarkDirectLane(b *testing.B) {
	backend := "embedded"
	if os.Getenv("LOA_TEST_KAFKA_BROKERS") != "" {
		backend = "real"
	}
	r := newRig(b, backend)
	ctx := context.Background()
	now := time.Now()
	const batch = 500
	var recs []producer.Envelope
	for i := range b.N {
		id := fmt.Sprintf("bench-%d", i)
		to := fmt.Sprintf("8491%07d", i%10_000_000)
		env, err := producer.NewEnvelope(id, producer.KindDirect, topics.LaneDirect, to, now, now.Add(time.Hour), "",
			producer.Direct{NotificationID: id, To: producer.Recipient{Type: producer.ToPhone, Value: to}, Body: "B", Channels: []string{string(channels.SMS)}, Priority: "normal"})
		if err != nil {
			b.Fatal(err)
		}
		recs = append(recs, env)
		if len(recs) == batch || i == b.N-1 {
			errs := make(chan error, len(recs))
			for _, e := range recs {
				go func() { errs <- r.pub.Publish(ctx, e) }()
			}
			for range recs {
				if err := <-errs; err != nil {
					b.Fatal(err)
				}
			}
			recs = recs[:0]
		}
	}
	b.ResetTimer()
	start := time.Now()
	stop := r.start(b, func(d *Dispatcher) { d.cfg.Workers[topics.LaneDirect] = 64 })
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if err := r.outbox.WaitTotal(wctx, int64(b.N)); err != nil {
		b.Fatalf("delivered %d of %d: %v", r.outbox.Total(), b.N, err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	stop()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}

// BenchmarkPushToFakeFCM measures pushes end to end: b.N events on the
// alert lane are consumed, claimed in Redis, sent over HTTP/2 to the fake
// FCM server, receipted and committed. Sub-benchmarks answer at 0 ms and
// at 20 ms. Reports pushes/s and the process CPU per push.
func BenchmarkPushToFakeFCM(b *testing.B) {
	for _, latency := range []time.Duration{0, 20 * time.Millisecond} {
		b.Run(fmt.Sprintf("latency=%v", latency), func(b *testing.B) {
			backend := "embedded"
			if os.Getenv("LOA_TEST_KAFKA_BROKERS") != "" {
				backend = "real"
			}
			r := newRig(b, backend)
			fake, err := fcmfake.New(fcmfake.Options{CountOnly: true})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(fake.Close)
			fake.SetLatency(latency)
			r.chans[channels.Push] = newFCM(b, fake, time.Minute)
			r.publishPush(b, b.N, "bench")
			b.ResetTimer()
			cpu0 := testenv.ProcessCPU()
			start := time.Now()
			stop := r.start(b, func(d *Dispatcher) { d.cfg.Workers[topics.LaneAlert] = 512 })
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			if err := fake.WaitCount(ctx, b.N); err != nil {
				b.Fatalf("delivered %d of %d: %v", fake.Count(), b.N, err)
			}
			elapsed := time.Since(start)
			cpu := testenv.ProcessCPU() - cpu0
			b.StopTimer()
			stop()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "pushes/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/push")
			b.ReportMetric(float64(fake.Connections()), "conns")
		})
	}
}

// resetPeakRSS restarts the kernel's record of this process's peak
// resident set size (VmHWM), so peakRSS measures from here on.
func resetPeakRSS(b *testing.B) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Logf("peak RSS not reset (%v): it includes the setup", err)
	}
}

// peakRSS is the process's peak resident set size (VmHWM) in bytes: the
// dispatcher, and the fake FCM it shares the process with.
func peakRSS(b *testing.B) int64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// BenchmarkFanoutToFakeFCM measures planned fan-out: b.N device tokens in
// batches of 500 on the bulk lane, sent over HTTP/2 to the fake FCM
// server (answering at once). Reports pushes/s and process CPU per push.
func BenchmarkFanoutToFakeFCM(b *testing.B) {
	backend := "embedded"
	if os.Getenv("LOA_TEST_KAFKA_BROKERS") != "" {
		backend = "real"
	}
	r := newRig(b, backend)
	fake, err := fcmfake.New(fcmfake.Options{CountOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(fake.Close)
	r.chans[channels.Push] = newFCM(b, fake, time.Minute)
	r.publishFanout(b, "bench", topics.LaneBulk, b.N, 500)
	b.ResetTimer()
	cpu0 := testenv.ProcessCPU()
	start := time.Now()
	stop := r.start(b, func(d *Dispatcher) { d.cfg.Workers[topics.LaneBulk] = 16; d.cfg.Senders[topics.LaneBulk] = 256 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := fake.WaitCount(ctx, b.N); err != nil {
		b.Fatalf("delivered %d of %d: %v", fake.Count(), b.N, err)
	}
	elapsed := time.Since(start)
	cpu := testenv.ProcessCPU() - cpu0
	b.StopTimer()
	stop()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "pushes/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/push")
	b.ReportMetric(float64(fake.Connections()), "conns")
}

// BenchmarkPlanAndSend is the broadcast at scale: an audience of 100,000
// and of 1,000,000 devices in PostgreSQL (LOA_TEST_DATABASE_URL; skipped
// without it) is planned into batches of 500 and sent through Kafka to the
// fake FCM over HTTP/2. It reports the time to plan, pushes/s end to end,
// the peak Go heap sampled during the run and the process's peak RSS
// (both flat in the audience size when planning streams). Each iteration runs one whole broadcast.
func BenchmarkPlanAndSend(b *testing.B) {
	if os.Getenv("LOA_TEST_DATABASE_URL") == "" {
		b.Skip("needs LOA_TEST_DATABASE_URL: the audience lives in PostgreSQL")
	}
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("devices=%d", n), func(b *testing.B) {
			for i := range b.N {
				b.StopTimer()
				r := newRig(b, "real")
				r.seedArea(b, n)
				fake, err := fcmfake.New(fcmfake.Options{TotalOnly: true})
				if err != nil {
					b.Fatal(err)
				}
				r.chans[channels.Push] = newFCM(b, fake, time.Minute)
				id := fmt.Sprintf("bench-%d", i)
				runtime.GC()
				resetPeakRSS(b)
				var peak atomic.Uint64
				done := make(chan struct{})
				go func() { // sample the heap while the broadcast runs
					var ms runtime.MemStats
					for {
						runtime.ReadMemStats(&ms)
						if ms.HeapInuse > peak.Load() {
							peak.Store(ms.HeapInuse)
						}
						select {
						case <-done:
							return
						case <-time.After(100 * time.Millisecond):
						}
					}
				}()
				b.StartTimer()
				start := time.Now()
				stop := r.start(b, func(d *Dispatcher) { d.cfg.Workers[topics.LaneBulk] = 16; d.cfg.Senders[topics.LaneBulk] = 256 })
				r.publishPlan(b, id, topics.LaneBulk, producer.Plan{Audience: producer.Audience{Areas: []string{"49"}},
					Channels: []string{"push"}, Title: "Thông báo", Body: "Lịch tiêm chủng tháng 12", Priority: "normal"})
				var planned time.Duration
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
				for planned == 0 {
					p, err := r.store.Plan(ctx, id, "push", time.Now())
					if err != nil {
						b.Fatal(err)
					}
					if p.Done {
						planned = time.Since(start)
						break
					}
					time.Sleep(50 * time.Millisecond) // polling the plan's progress row
				}
				if err := fake.WaitCount(ctx, n); err != nil {
					b.Fatalf("delivered %d of %d: %v", fake.Count(), n, err)
				}
				elapsed := time.Since(start)
				cancel()
				b.StopTimer()
				close(done)
				stop()
				fake.Close()
				b.ReportMetric(planned.Seconds(), "plan-s")
				b.ReportMetric(float64(n)/elapsed.Seconds(), "pushes/s")
				b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
				b.ReportMetric(float64(peakRSS(b))/(1<<20), "peak-rss-MiB")
				b.StartTimer()
			}
		})
	}
}

// BenchmarkPlan is the planner alone: a province-wide audience of
// 1,000,000 devices in PostgreSQL (LOA_TEST_DATABASE_URL; skipped without
// it) streamed in pages of 500 and published to Kafka as fan-out batches,
// with nothing consuming them, so the time to plan is not shared with
// sending: as a bulk notice, and as an alert (whose first batches go to
// Kafka as soon as they are read), the devices in one commune or spread
// over 100. Reports seconds to plan and devices planned a second.
func BenchmarkPlan(b *testing.B) {
	if os.Getenv("LOA_TEST_DATABASE_URL") == "" {
		b.Skip("needs LOA_TEST_DATABASE_URL: the audience lives in PostgreSQL")
	}
	const n = 1_000_000
	for _, c := range []struct {
		lane     topics.Lane
		communes int
	}{{topics.LaneBulk, 1}, {topics.LaneAlert, 1}, {topics.LaneAlert, 100}} {
		b.Run(fmt.Sprintf("lane=%s/communes=%d", c.lane, c.communes), func(b *testing.B) {
			for i := range b.N {
				b.StopTimer()
				r := newRig(b, "real")
				if c.communes == 1 {
					r.seedArea(b, n)
				} else {
					r.seedCommunes(b, c.communes, n/c.communes)
				}
				cfg := DefaultConfig()
				cfg.Brokers, cfg.Names, cfg.RedisKeyPrefix = r.brokers, r.names, r.prefix
				d, err := New(cfg, r.store, r.rdb, r.pub, r.chans, quietLogger())
				if err != nil {
					b.Fatal(err)
				}
				id := fmt.Sprintf("plan-bench-%s-%d", c.lane, i)
				now := time.Now()
				p := producer.Plan{NotificationID: id, Audience: producer.Audience{Areas: []string{"49"}}, Channels: []string{"push"},
					Title: "Thông báo", Body: "Lịch tiêm chủng tháng 12", Priority: "normal"}
				env, err := producer.NewEnvelope("plan-"+id, producer.KindPlan, c.lane, id, now, now.Add(time.Hour), "", p)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				if err := d.handlePlan(context.Background(), env, p); err != nil {
					b.Fatal(err)
				}
				elapsed := time.Since(start)
				b.StopTimer()
				prog, err := r.store.Plan(context.Background(), id, "push", time.Now())
				if err != nil || !prog.Done || prog.Targeted != n {
					b.Fatalf("plan: %+v, %v; want %d targeted and done", prog, err, n)
				}
				b.ReportMetric(elapsed.Seconds(), "plan-s")
				b.ReportMetric(n/elapsed.Seconds(), "devices/s")
				b.StartTimer()
			}
		})
	}
}

// seedCommunes adds the province 49 with k communes under it, each with
// per subscribers of one device and a verified phone.
func (r *rig) seedCommunes(b *testing.B, k, per int) {
	b.Helper()
	ctx := context.Background()
	areas := []accounts.Area{{Code: "49", Name: "Quảng Nam", Level: "province"}}
	for c := range k {
		areas = append(areas, accounts.Area{Code: fmt.Sprintf("3%04d", c), Name: fmt.Sprintf("Xã %d", c), Parent: "49", Level: "commune"})
	}
	if err := r.store.UpsertAreas(ctx, areas); err != nil {
		b.Fatal(err)
	}
	for c := range k {
		if err := r.store.SeedAudience(ctx, fmt.Sprintf("c%03d", c), per, c*per, "smart", fmt.Sprintf("3%04d", c), time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}
