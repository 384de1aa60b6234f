package sqlstore_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/loa-hub/loa"
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
