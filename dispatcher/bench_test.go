package dispatcher

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/loa-hub/loa/channels"
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
