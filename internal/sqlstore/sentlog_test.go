package sqlstore_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
)

// TestLogSentRoundTrip: groups of any size written to the write-ahead
// record are read back by event, and swept by age; on PostgreSQL every
// group size is written by one prepared statement.
func TestLogSentRoundTrip(t *testing.T) {
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db.SQL().SetMaxOpenConns(1) // one session, whose prepared statements are counted
			key := func(b byte) []byte { return bytes.Repeat([]byte{b}, sqlstore.SentKeySize) }
			at := time.Now().Add(-time.Hour)
			var groups []sqlstore.SentGroup
			for n := 1; n <= 3; n++ {
				groups = append(groups, sqlstore.SentGroup{EventID: "ev-b", Keys: key(byte(n))})
				if err := db.LogSent(ctx, append([]sqlstore.SentGroup{{EventID: "ev-a", Keys: append(key(10+byte(n)), key(20+byte(n))...)}}, groups...), at); err != nil {
					t.Fatal(err)
				}
			}
			a, err := db.SentKeys(ctx, "ev-a")
			if err != nil {
				t.Fatal(err)
			}
			if len(a) != 6*sqlstore.SentKeySize {
				t.Errorf("ev-a: %d bytes of keys, want %d", len(a), 6*sqlstore.SentKeySize)
			}
			b, err := db.SentKeys(ctx, "ev-b")
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != 6*sqlstore.SentKeySize { // 1, then 1 and 2, then 1, 2 and 3
				t.Errorf("ev-b: %d bytes of keys, want %d", len(b), 6*sqlstore.SentKeySize)
			}
			if name == "postgres" {
				var n int
				if err := db.SQL().QueryRowContext(ctx, `SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%INSERT INTO sent_log%' AND statement NOT LIKE '%pg_prepared_statements%'`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n != 1 {
					t.Errorf("%d prepared statements wrote groups of 2, 3 and 4 rows, want 1", n)
				}
			}
			if n, err := db.SweepSentLog(ctx, time.Now()); err != nil || n != 9 {
				t.Errorf("swept %d rows (%v), want 9", n, err)
			}
		})
	}
}
