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
)

// BenchmarkLedgerSMSRows writes an SMS send's rows as the ledger does
// (5,000 a transaction: COPY of new rows, "new"), then a carrier's report
// for each (the upsert moving sent to delivered, "report"), or rows each
// of a notification of its own, as one-time codes are ("codes": no
// plan, so no counters since migration 0150), and reports
// the PostgreSQL backend's own CPU a row from /proc. "uncounted" is the
// same with the counters' triggers disabled (the write path before
// migration 0149): the difference is what keeping the counters costs a
// row. Run it with -count to interleave the two.
func BenchmarkLedgerSMSRows(b *testing.B) {
	if os.Getenv("LOA_TEST_DATABASE_URL") == "" {
		b.Skip("LOA_TEST_DATABASE_URL is not set")
	}
	for _, counted := range []bool{true, false} {
		name := "counted"
		if !counted {
			name = "uncounted"
		}
		for _, step := range []string{"new", "report", "codes"} {
			b.Run(name+"/"+step, func(b *testing.B) {
				db, backend := oneBackend(b)
				ctx := context.Background()
				if !counted {
					if _, err := db.SQL().ExecContext(ctx, `ALTER TABLE deliveries DISABLE TRIGGER USER`); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := db.Plan(ctx, "5f1c2a4e-8e7d-4b7a-9a3c-2f1e0d9c8b7a", "sms", time.Now()); err != nil { // the send is counted, codes are not
					b.Fatal(err)
				}
				const perTx = 5000
				at := time.Now().Truncate(time.Second)
				row := func(i int, st loa.Status, provider string, sec int) sqlstore.Delivery {
					pid := ""
					if provider != "" {
						pid = fmt.Sprintf("vnpt-%012d", i*7919)
					}
					id := "5f1c2a4e-8e7d-4b7a-9a3c-2f1e0d9c8b7a"
					if step == "codes" {
						id = fmt.Sprintf("code-%022d", i)
					}
					return sqlstore.Delivery{NotificationID: id, Channel: "sms",
						Recipient: fmt.Sprintf("849%08d", i*37%100_000_000), Status: st, Provider: provider, ProviderID: pid,
						Targets: 1_000_000, Attempts: 1, UpdatedAt: at.Add(time.Duration(i) * time.Second / 2000).Add(time.Duration(sec) * time.Second)}
				}
				write := func(st loa.Status, provider string, sec int) {
					rows := make([]sqlstore.Delivery, 0, perTx)
					for i := 0; i < b.N; i++ {
						rows = append(rows, row(i, st, provider, sec))
						if len(rows) == perTx || i == b.N-1 {
							if err := db.RecordDeliveries(ctx, rows); err != nil {
								b.Fatal(err)
							}
							rows = rows[:0]
						}
					}
				}
				if step == "report" {
					write(loa.StatusSent, "vnpt", 0)
				}
				cpu0, err := procstat.CPU(backend)
				if err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				if step != "report" {
					write(loa.StatusSent, "vnpt", 0)
				} else {
					write(loa.StatusDelivered, "", 30) // reports come without the provider, as the report handler's
				}
				b.StopTimer()
				cpu1, err := procstat.CPU(backend)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N), "pg-CPU-µs/row")
			})
		}
	}
}

// BenchmarkLiveCountersRows is one poll of the live view of an SMS send
// of 1,000,000 rows (sent over 2,000 s; 2 % failed, a third of the rest
// confirmed delivered later) on PostgreSQL: the counters alone, with the
// whole curve and with the last seconds, reading the ledger's counters
// (the store's methods) and, for comparison, grouping the rows as the
// store did before migration 0149 ("group-rows/…", the same statements).
// It reports the PostgreSQL backend's CPU a poll.
func BenchmarkLiveCountersRows(b *testing.B) {
	if os.Getenv("LOA_TEST_DATABASE_URL") == "" {
		b.Skip("LOA_TEST_DATABASE_URL is not set")
	}
	db, backend := oneBackend(b)
	ctx := context.Background()
	const n = 1_000_000
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	if _, err := db.Plan(ctx, "bench-sms", "sms", t0); err != nil {
		b.Fatal(err)
	}
	// One statement writes the rows (the triggers count them as they
	// would COPY's), then the carrier's reports move a third of the sent
	// ones, in transactions of 5,000 as the report handler's would be
	// fewer and smaller.
	if _, err := db.SQL().ExecContext(ctx, `INSERT INTO deliveries (notification_id, channel, recipient, status, class, provider,
			provider_id, reason, targets, attempts, updated_at)
		SELECT 'bench-sms', 'sms', '849' || lpad(i::text, 8, '0'), CASE WHEN i % 50 = 0 THEN 'failed' ELSE 'sent' END, '',
			CASE WHEN i % 2 = 0 THEN 'vnpt' ELSE 'viettel' END, 'm-' || i, '', $1, 1, to_timestamp($2 + i / 500.0)
		FROM generate_series(1, $1) AS i`, n, t0.Unix()); err != nil {
		b.Fatal(err)
	}
	for lo := 0; lo < n; lo += 5000 {
		if _, err := db.SQL().ExecContext(ctx, `UPDATE deliveries SET status = 'delivered', updated_at = updated_at + interval '20 seconds'
			WHERE notification_id = 'bench-sms' AND channel = 'sms' AND recipient > '849' || lpad(CAST($1::bigint AS text), 8, '0')
				AND recipient <= '849' || lpad(CAST($2::bigint AS text), 8, '0') AND status = 'sent' AND right(recipient, 1) IN ('3', '6', '9')`, lo, lo+5000); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := db.SQL().ExecContext(ctx, `ANALYZE deliveries; ANALYZE delivery_counts; ANALYZE delivery_seconds`); err != nil {
		b.Fatal(err)
	}
	stats, err := db.DeliveryStats(ctx, "bench-sms")
	if err != nil {
		b.Fatal(err)
	}
	var total int64
	for _, s := range stats {
		total += s.Count
	}
	if total != n {
		b.Fatalf("counts %+v add up to %d, want %d", stats, total, n)
	}
	end := t0.Add(n / 500 * time.Second)
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
	group := func(q string, args ...any) func() error {
		return func() error {
			rows, err := db.SQL().QueryContext(ctx, q, args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
			}
			return rows.Err()
		}
	}
	const (
		groupStats = `SELECT channel, provider, status, COUNT(*) FROM deliveries WHERE notification_id = $1 GROUP BY channel, provider, status`
		groupRate  = `SELECT channel, provider, status, CASE WHEN CAST(floor(extract(epoch FROM updated_at)) AS BIGINT) >= $2
				THEN CAST(floor(extract(epoch FROM updated_at)) AS BIGINT) ELSE 0 END AS s, COUNT(*)
			FROM deliveries WHERE notification_id = $1 GROUP BY channel, provider, status, s`
	)
	b.Run("counters/stats", func(b *testing.B) {
		measure(b, func() error { _, err := db.DeliveryStats(ctx, "bench-sms"); return err })
	})
	b.Run("counters/stats+rate/whole", func(b *testing.B) {
		measure(b, func() error { _, _, err := db.DeliveryStatsAndRate(ctx, "bench-sms", time.Time{}); return err })
	})
	b.Run("counters/stats+rate/last-seconds", func(b *testing.B) {
		measure(b, func() error {
			_, _, err := db.DeliveryStatsAndRate(ctx, "bench-sms", end.Add(-5*time.Second))
			return err
		})
	})
	b.Run("group-rows/stats", func(b *testing.B) { measure(b, group(groupStats, "bench-sms")) })
	b.Run("group-rows/stats+rate/whole", func(b *testing.B) { measure(b, group(groupRate, "bench-sms", int64(0))) })
	b.Run("group-rows/stats+rate/last-seconds", func(b *testing.B) {
		measure(b, group(groupRate, "bench-sms", end.Add(-5*time.Second).Unix()))
	})
}
