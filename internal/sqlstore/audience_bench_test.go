package sqlstore_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/internal/procstat"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
)

// BenchmarkAudiencePages reads a province-wide audience of 1,000,000
// devices (one commune) page by page, as the planner does, through one
// connection, and reports the wall time and the PostgreSQL backend's own
// CPU (from /proc) per page, for pages of 500 (the planner's batch) and
// of 4,000: where a plan's time goes, apart from Kafka. The database must
// be local (LOA_TEST_DATABASE_URL).
func BenchmarkAudiencePages(b *testing.B) {
	if os.Getenv("LOA_TEST_DATABASE_URL") == "" {
		b.Skip("LOA_TEST_DATABASE_URL is not set")
	}
	const n = 1_000_000
	db := testenv.OpenStore(b, testenv.PostgresURL(b))
	ctx := context.Background()
	if err := db.UpsertAreas(ctx, []accounts.Area{{Code: "49", Name: "Quảng Nam", Level: "province"},
		{Code: "20497", Name: "Minh An", Parent: "49", Level: "commune"}}); err != nil {
		b.Fatal(err)
	}
	if err := db.SeedAudience(ctx, "ap", n, 0, "smart", "20497", time.Now()); err != nil {
		b.Fatal(err)
	}
	db.SQL().SetMaxOpenConns(1) // one backend, whose CPU is read
	var backend int
	if err := db.SQL().QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
		b.Fatal(err)
	}
	aud := sqlstore.Audience{Areas: []string{"49"}}
	for _, size := range []int{500, 4000} {
		b.Run(fmt.Sprintf("page=%d", size), func(b *testing.B) {
			for range b.N {
				cpu0, err := procstat.CPU(backend)
				if err != nil {
					b.Fatal(err)
				}
				start, after, pages, got := time.Now(), "", 0, 0
				for {
					page, err := db.AudienceDevices(ctx, aud, "smart", after, size)
					if err != nil {
						b.Fatal(err)
					}
					pages++
					got += len(page)
					if len(page) < size {
						break
					}
					after = page[len(page)-1].Key
				}
				wall := time.Since(start)
				cpu1, err := procstat.CPU(backend)
				if err != nil {
					b.Fatal(err)
				}
				if got != n {
					b.Fatalf("read %d devices, want %d", got, n)
				}
				b.ReportMetric(wall.Seconds(), "read-s")
				b.ReportMetric(float64(wall.Microseconds())/1000/float64(pages), "ms/page")
				b.ReportMetric(float64((cpu1-cpu0).Microseconds())/1000/float64(pages), "pg-cpu-ms/page")
			}
		})
	}
}
