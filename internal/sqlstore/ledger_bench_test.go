package sqlstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"strconv"
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
// length and randomness, in no order) and reports the PostgreSQL
// backend's own CPU per row, read from /proc, apart from this process's:
// what the ledger costs the database per push. In "refold" every batch's
// last row exists already (a batch folded again after a restart, the
// worst case of a guess that the rows are new). The database must be
// local (LOA_TEST_DATABASE_URL).
func BenchmarkLedgerPushRows(b *testing.B) {
	if os.Getenv("LOA_TEST_DATABASE_URL") == "" {
		b.Skip("LOA_TEST_DATABASE_URL is not set")
	}
	for _, refold := range []bool{false, true} {
		name := "new"
		if refold {
			name = "refold"
		}
		b.Run(name, func(b *testing.B) {
			db, backend := oneBackend(b)
			ctx := context.Background()
			const perTx = 5000
			at := time.Now()
			rows := make([]sqlstore.Delivery, 0, perTx)
			row := func(i int) sqlstore.Delivery {
				return sqlstore.Delivery{NotificationID: "5f1c2a4e-8e7d-4b7a-9a3c-2f1e0d9c8b7a", Channel: "push",
					Recipient: fcmToken(i), Status: loa.StatusSent, Provider: "fcm",
					ProviderID: fmt.Sprintf("projects/loa-bench/messages/0:%d%%%016x", 1_700_000_000_000_000+i, i*7919), Targets: 1, Attempts: 1, UpdatedAt: at}
			}
			cpu0, err := procstat.CPU(backend)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				rows = append(rows, row(i))
				if len(rows) == perTx || i == b.N-1 {
					if refold {
						if err := db.RecordDeliveries(ctx, rows[len(rows)-1:]); err != nil {
							b.Fatal(err)
						}
					}
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
		})
	}
}

// fcmToken is a device token of the length and randomness of an FCM
// registration token (163 characters), the i-th of a fixed sequence.
func fcmToken(i int) string {
	var s strings.Builder
	h := sha256.Sum256([]byte(strconv.Itoa(i)))
	for s.Len() < 160 {
		s.WriteString(base64.RawURLEncoding.EncodeToString(h[:]))
		h = sha256.Sum256(h[:])
	}
	t := s.String()
	return t[:11] + ":APA91b" + t[11:156]
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
