package sqlstore_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/procstat"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
)

// BenchmarkLiveCounters compares, on PostgreSQL, one poll of a broadcast's
// live view: the counters alone (DeliveryStats) and the counters with the
// deliveries per second (DeliveryStatsAndRate, the same scan grouped by
// second too), over a ledger of 200,000 rows sent across ten minutes.
func BenchmarkLiveCounters(b *testing.B) {
	if os.Getenv("LOA_TEST_DATABASE_URL") == "" {
		b.Skip("LOA_TEST_DATABASE_URL is not set")
	}
	db := testenv.OpenStore(b, testenv.PostgresURL(b))
	ctx := context.Background()
	const n = 200_000
	t0 := time.Now().Add(-time.Hour)
	rows := make([]sqlstore.Delivery, 0, 5000)
	for i := range n {
		st := loa.StatusSent
		if i%50 == 0 {
			st = loa.StatusFailed
		}
		rows = append(rows, sqlstore.Delivery{NotificationID: "bench-live", Channel: "push", Recipient: fmt.Sprintf("tok-%08d", i), Status: st,
			Provider: "fcm", Targets: 1, Attempts: 1, UpdatedAt: t0.Add(time.Duration(i) * 3 * time.Millisecond)})
		if len(rows) == cap(rows) {
			if err := db.RecordDeliveries(ctx, rows); err != nil {
				b.Fatal(err)
			}
			rows = rows[:0]
		}
	}
	if _, err := db.SQL().ExecContext(ctx, `ANALYZE deliveries`); err != nil {
		b.Fatal(err)
	}
	b.Run("stats", func(b *testing.B) {
		for range b.N {
			if _, err := db.DeliveryStats(ctx, "bench-live"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stats+rate/whole", func(b *testing.B) {
		for range b.N {
			if _, _, err := db.DeliveryStatsAndRate(ctx, "bench-live", time.Time{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stats+rate/last-second", func(b *testing.B) {
		for range b.N {
			if _, _, err := db.DeliveryStatsAndRate(ctx, "bench-live", t0.Add(600*time.Second)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkLiveCountersMixed is one poll of a 1,000,000-push broadcast's
// live view on PostgreSQL, when its ledger holds the compact entries of
// its first sends (device tokens of real length) and 1,000 rows beside
// them: 990 failures of other addresses and 10 redeliveries' receipts of
// sent ones, the case where the counts must find the addresses that have
// both. It reports the time and the PostgreSQL backend's CPU a poll:
// the counters alone, with the whole curve (?rate_since=0), and with
// the last seconds.
func BenchmarkLiveCountersMixed(b *testing.B) {
	if os.Getenv("LOA_TEST_DATABASE_URL") == "" {
		b.Skip("LOA_TEST_DATABASE_URL is not set")
	}
	db, backend := oneBackend(b)
	ctx := context.Background()
	const (
		sends = 1_000_000
		batch = 500
	)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	push := func(i int, st loa.Status, provider string, at time.Time) sqlstore.Delivery {
		return sqlstore.Delivery{NotificationID: "bench-mixed", Channel: "push", Recipient: fcmToken(i), Status: st, Provider: provider,
			ProviderID: fmt.Sprintf("projects/loa-bench/messages/0:%d%%%016x", 1_700_000_000_000_000+i, i*7919), Targets: sends, Attempts: 1, UpdatedAt: at}
	}
	var batches [][]sqlstore.Delivery
	for i := 0; i < sends; i += batch {
		var bs []sqlstore.Delivery
		for j := i; j < i+batch; j++ { // 7,000 a second, as a broadcast sends
			bs = append(bs, push(j, loa.StatusSent, "fcm", t0.Add(time.Duration(j)*time.Second/7000)))
		}
		batches = append(batches, bs)
		if len(batches) == 20 || i+batch >= sends {
			if err := db.RecordReceiptBatches(ctx, batches); err != nil {
				b.Fatal(err)
			}
			batches = batches[:0]
		}
	}
	var rows []sqlstore.Delivery
	end := t0.Add(sends * time.Second / 7000)
	for i := range 990 {
		rows = append(rows, push(sends+i, loa.StatusTokenDead, "fcm", end))
	}
	for i := range 10 {
		r := push(i*99_991, loa.StatusSent, "", end)
		r.Attempts, r.ProviderID = 0, ""
		rows = append(rows, r)
	}
	if err := db.RecordReceiptBatches(ctx, [][]sqlstore.Delivery{rows}); err != nil {
		b.Fatal(err)
	}
	if _, err := db.SQL().ExecContext(ctx, `ANALYZE deliveries; ANALYZE deliveries_sent`); err != nil {
		b.Fatal(err)
	}
	stats, err := db.DeliveryStats(ctx, "bench-mixed")
	if err != nil {
		b.Fatal(err)
	}
	var sent, dead int64
	for _, s := range stats {
		switch s.Status {
		case loa.StatusSent:
			sent += s.Count
		case loa.StatusTokenDead:
			dead += s.Count
		}
	}
	if sent != sends || dead != 990 {
		b.Fatalf("counts %+v, want %d sent and 990 dead", stats, sends)
	}
	measure := func(b *testing.B, poll func() error) {
		cpu0, err := procstat.CPU(backend)
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			if err := poll(); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		cpu1, err := procstat.CPU(backend)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64((cpu1-cpu0).Microseconds())/1000/float64(b.N), "pg-CPU-ms/op")
	}
	b.Run("stats", func(b *testing.B) {
		measure(b, func() error { _, err := db.DeliveryStats(ctx, "bench-mixed"); return err })
	})
	b.Run("stats+rate/whole", func(b *testing.B) {
		measure(b, func() error { _, _, err := db.DeliveryStatsAndRate(ctx, "bench-mixed", time.Time{}); return err })
	})
	b.Run("stats+rate/last-seconds", func(b *testing.B) {
		measure(b, func() error {
			_, _, err := db.DeliveryStatsAndRate(ctx, "bench-mixed", end.Add(-5*time.Second))
			return err
		})
	})
}
