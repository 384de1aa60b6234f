package sqlstore_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/procstat"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
)

// BenchmarkLedgerPushRows writes a broadcast's "sent" rows as the ledger
// does (5,000 a transaction, device tokens and FCM message names of real
// length) and reports the PostgreSQL backend's own CPU per row, read from
// /proc, apart from this process's: what the ledger costs the database
// per push. The database must be local (LOA_TEST_DATABASE_URL).
func BenchmarkLedgerPushRows(b *testing.B) {
	if os.Getenv("LOA_TEST_DATABASE_URL") == "" {
		b.Skip("LOA_TEST_DATABASE_URL is not set")
	}
	db, backend := oneBackend(b)
	ctx := context.Background()
	const perTx = 5000
	at := time.Now()
	rows := make([]sqlstore.Delivery, 0, perTx)
	pad := strings.Repeat("x", 120)
	cpu0, err := procstat.CPU(backend)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rows = append(rows, sqlstore.Delivery{NotificationID: "bench-ledger", Channel: "push",
			Recipient: fmt.Sprintf("tok-%08d:%s", i, pad), Status: loa.StatusSent, Provider: "fcm",
			ProviderID: fmt.Sprintf("projects/loa-bench/messages/%d", 1_700_000_000_000_000+i), Targets: 1, Attempts: 1, UpdatedAt: at})
		if len(rows) == perTx || i == b.N-1 {
			if err := db.RecordDeliveries(ctx, rows); err != nil {
				b.Fatal(err)
			}
			rows = rows[:0]
		}
	}
	b.StopTimer()
	cpu1, err := procstat.CPU(backend)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N), "pg-CPU-µs/row")
}

// BenchmarkLogSent writes the dispatcher's write-ahead record as its
// marker does — a statement and a commit a group of 64 sends — with the
// group's sends spread over 1, 5 or 16 events (a row each), and reports
// the PostgreSQL backend's CPU per group and per send: what a commit
// costs against what a row costs. The database must be local.
func BenchmarkLogSent(b *testing.B) {
	if os.Getenv("LOA_TEST_DATABASE_URL") == "" {
		b.Skip("LOA_TEST_DATABASE_URL is not set")
	}
	for _, events := range []int{1, 5, 16} {
		b.Run(fmt.Sprintf("events=%d", events), func(b *testing.B) {
			db, backend := oneBackend(b)
			ctx := context.Background()
			const group = 64
			cpu0, err := procstat.CPU(backend)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for n := range b.N {
				rows := make([]sqlstore.SentGroup, events)
				for e := range rows {
					rows[e].EventID = fmt.Sprintf("evt-%08d-%02d-0000-0000-000000000000", n/8, e)
				}
				for k := range group {
					key := fmt.Sprintf("%016d", n*group+k)
					rows[k%events].Keys = append(rows[k%events].Keys, key...)
				}
				if err := db.LogSent(ctx, rows, time.Now()); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			cpu1, err := procstat.CPU(backend)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N), "pg-CPU-µs/group")
			b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N*group), "pg-CPU-µs/send")
		})
	}
}

// oneBackend opens a store of the benchmark's on PostgreSQL with a single
// connection, and returns it with the process id of its backend, whose
// CPU the benchmark reads.
func oneBackend(b *testing.B) (*sqlstore.DB, int) {
	b.Helper()
	db := testenv.OpenStore(b, testenv.PostgresURL(b))
	db.SQL().SetMaxOpenConns(1)
	var backend int
	if err := db.SQL().QueryRowContext(context.Background(), `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
		b.Fatal(err)
	}
	return db, backend
}
