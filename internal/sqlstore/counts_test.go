package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/producer"
)

// TestLedgerCountersMatchRows: the counters the ledger keeps for planned
// notifications (migrations 0149, 0150) equal, on both dialects, what
// grouping the rows gives — per notification, channel, provider and
// status, and per second of the rows' present state — after receipts
// folded again (redeliveries, a batch refolded after a restart),
// regressions the precedence refuses (sent after delivered, a failure
// after sent), moves it takes (retrying to sent, sent to undelivered to
// delivered), a report without a provider, and many writers at once on
// the same deliveries (a transaction PostgreSQL aborts on a deadlock
// counts nothing); and the live counts and the rate read them. One-time
// codes (no plan) get no counters, and their counts group their rows.
func TestLedgerCountersMatchRows(t *testing.T) {
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			t0 := time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)
			sms := func(n string, i int, st loa.Status, provider string, attempts int, at time.Duration) producer.Delivery {
				pid := ""
				if provider != "" && st != loa.StatusRetrying {
					pid = fmt.Sprintf("%s-%d-%d", n, i, attempts)
				}
				return producer.Delivery{NotificationID: n, Channel: "sms", Recipient: fmt.Sprintf("8491%07d", i), Status: st,
					Provider: provider, ProviderID: pid, Targets: 1, Attempts: attempts, UpdatedAt: t0.Add(at)}
			}
			for _, n := range []string{"sms-1", "sms-2", "sms-3"} { // planned: counted
				if _, err := db.Plan(ctx, n, "sms", t0); err != nil {
					t.Fatal(err)
				}
			}
			record := func(b []producer.Delivery) {
				t.Helper()
				if err := db.RecordDeliveries(ctx, b); err != nil {
					t.Fatal(err)
				}
			}
			var first []producer.Delivery
			for i := range 300 {
				st := loa.StatusSent
				switch {
				case i%10 == 0:
					st = loa.StatusRetrying
				case i%10 == 1:
					st = loa.StatusFailed
				}
				first = append(first, sms("sms-1", i, st, "vnpt", 1, time.Duration(i)*10*time.Millisecond))
			}
			record(first)
			record(first) // refolded after a restart: nothing moves
			var later []producer.Delivery
			for i := range 300 {
				switch i % 10 {
				case 0: // retrying, then sent by a second attempt of another provider
					later = append(later, sms("sms-1", i, loa.StatusSent, "viettel", 2, 5*time.Second))
				case 1: // failed, then retried and still failing: the latest wins
					later = append(later, sms("sms-1", i, loa.StatusExpired, "vnpt", 2, 5*time.Second))
				case 2, 3: // a carrier's report without a provider: delivered, keeping vnpt
					later = append(later, sms("sms-1", i, loa.StatusDelivered, "", 1, 6*time.Second))
				case 4: // undelivered, then delivered
					later = append(later, sms("sms-1", i, loa.StatusUndelivered, "", 1, 6*time.Second),
						sms("sms-1", i, loa.StatusDelivered, "", 1, 7*time.Second))
				case 5: // a failure after sent: refused
					later = append(later, sms("sms-1", i, loa.StatusFailed, "vnpt", 1, 6*time.Second))
				case 6: // a redelivery that found it sent
					later = append(later, sms("sms-1", i, loa.StatusSent, "", 1, 8*time.Second))
				}
			}
			record(later)
			record(later)
			var regress []producer.Delivery
			for i := 2; i < 300; i += 10 { // delivered: sent, undelivered and failed are refused
				regress = append(regress, sms("sms-1", i, loa.StatusSent, "vnpt", 1, 9*time.Second),
					sms("sms-1", i+2, loa.StatusUndelivered, "vnpt", 1, 9*time.Second))
			}
			record(regress)
			for i := 3; i < 300; i += 10 {
				record([]producer.Delivery{sms("sms-1", i, loa.StatusFailed, "vnpt", 3, 10*time.Second)})
			}
			record([]producer.Delivery{sms("sms-2", 1, loa.StatusSent, "vnpt", 1, 0)}) // another notification
			// One-time codes: notifications without a plan, one row each,
			// have no counters; their counts group their rows.
			record([]producer.Delivery{sms("code-1", 1, loa.StatusSent, "vnpt", 1, 0), sms("code-2", 2, loa.StatusRetrying, "vnpt", 1, 0)})
			record([]producer.Delivery{sms("code-1", 1, loa.StatusDelivered, "", 1, 3*time.Second), sms("code-2", 2, loa.StatusFailed, "vnpt", 2, 4*time.Second)})

			// Many writers at once on the same 200 deliveries, each with
			// its own order of random receipts, in batches of one
			// receipt message (some COPY, some upsert, some falling back
			// from COPY to the upsert on a row another writer made).
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for w := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(w), 7))
					statuses := []loa.Status{loa.StatusSent, loa.StatusRetrying, loa.StatusFailed, loa.StatusDelivered,
						loa.StatusUndelivered, loa.StatusExpired}
					for range 10 {
						var b []producer.Delivery
						for range 40 {
							i := rng.IntN(200)
							provider := []string{"vnpt", "viettel", ""}[rng.IntN(3)]
							b = append(b, sms("sms-3", i, statuses[rng.IntN(len(statuses))], provider, 1+rng.IntN(3),
								time.Duration(rng.IntN(20))*time.Second))
						}
						// In address order: writers taking the same rows in
						// different orders deadlock on the rows' own locks
						// every time. Even so a writer's COPY and upsert
						// may; PostgreSQL aborts one, which the ledger
						// consumer writes again, and its counters must go
						// with it.
						slices.SortStableFunc(b, func(x, y producer.Delivery) int { return strings.Compare(x.Recipient, y.Recipient) })
						err := db.RecordDeliveries(ctx, b)
						for retry := 0; isDeadlock(err) && retry < 20; retry++ {
							err = db.RecordDeliveries(ctx, b)
						}
						if err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}

			counts, seconds := rowTruth(t, db)
			kept, keptSeconds := counters(t, db)
			for _, m := range []map[string]int64{counts, seconds} {
				for k := range m {
					if strings.HasPrefix(k, "code-") {
						delete(m, k) // counted by grouping, below
					}
				}
			}
			if !maps.Equal(kept, counts) {
				t.Errorf("counters %v\nrows     %v", kept, counts)
			}
			if !maps.Equal(keptSeconds, seconds) {
				t.Errorf("counters by second %v\nrows by second     %v", keptSeconds, seconds)
			}
			if counts["sms-1 sms vnpt delivered"] != 90 || counts["sms-1 sms vnpt failed"] != 0 || counts["sms-1 sms viettel sent"] != 30 {
				t.Errorf("the precedence moved something it should not have: %v", counts)
			}

			if got, err := db.DeliveryStats(ctx, "code-1"); err != nil || !maps.Equal(statMap(got), map[string]int64{"sms vnpt delivered": 1}) {
				t.Errorf("a code's counts: %v %v, want its row, delivered", statMap(got), err)
			}
			if _, points, err := db.DeliveryStatsAndRate(ctx, "code-2", t0); err != nil ||
				!slices.Equal(points, []sqlstore.RatePoint{{At: t0.Unix() + 4, Count: 1}}) {
				t.Errorf("a code's rate: %v %v", points, err)
			}
			for _, n := range []string{"sms-1", "sms-2", "sms-3"} {
				stats, points, err := db.DeliveryStatsAndRate(ctx, n, t0.Add(5*time.Second))
				if err != nil {
					t.Fatal(err)
				}
				plain, err := db.DeliveryStats(ctx, n)
				if err != nil {
					t.Fatal(err)
				}
				want := map[string]int64{}
				for k, v := range counts {
					if len(k) > len(n) && k[:len(n)+1] == n+" " {
						want[k[len(n)+1:]] = v
					}
				}
				if got := statMap(stats); !maps.Equal(got, want) {
					t.Errorf("%s: the live counts %v, the rows %v", n, got, want)
				}
				if got := statMap(plain); !maps.Equal(got, want) {
					t.Errorf("%s: DeliveryStats %v, the rows %v", n, got, want)
				}
				var wantPoints []sqlstore.RatePoint
				for k, v := range seconds {
					var (
						id string
						s  int64
						st loa.Status
					)
					fmt.Sscan(k, &id, &s, &st)
					if id != n || !st.Final() || s < t0.Unix()+5 {
						continue
					}
					if i := slices.IndexFunc(wantPoints, func(p sqlstore.RatePoint) bool { return p.At == s }); i >= 0 {
						wantPoints[i].Count += v
					} else {
						wantPoints = append(wantPoints, sqlstore.RatePoint{At: s, Count: v})
					}
				}
				slices.SortFunc(wantPoints, func(a, b sqlstore.RatePoint) int { return int(a.At - b.At) })
				wantPoints = slices.DeleteFunc(wantPoints, func(p sqlstore.RatePoint) bool { return p.Count == 0 })
				if !slices.Equal(points, wantPoints) {
					t.Errorf("%s: the rate %v, the rows %v", n, points, wantPoints)
				}
			}
		})
	}
}

// TestLiveCountsReadTheCounters: the live counts and the rate come from
// the ledger's counters, not from the rows: a counter PostgreSQL or SQLite
// holds for a notification is what they show, whatever rows there are.
// (Grouping the rows was one scan of them a poll.)
func TestLiveCountsReadTheCounters(t *testing.T) {
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			at := time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)
			if _, err := db.Plan(ctx, "n", "email", at); err != nil {
				t.Fatal(err)
			}
			if err := db.RecordDeliveries(ctx, []producer.Delivery{{NotificationID: "n", Channel: "email", Recipient: "a@example.vn",
				Status: loa.StatusSent, Provider: "ses", ProviderID: "m-1", Targets: 1, Attempts: 1, UpdatedAt: at}}); err != nil {
				t.Fatal(err)
			}
			// What a second writing connection adds: its own slot.
			if _, err := db.SQL().ExecContext(ctx, `INSERT INTO delivery_counts (notification_id, channel, provider, status, slot, n)
				VALUES ('n', 'email', 'ses', 'sent', 424242, 41)`); err != nil {
				t.Fatal(err)
			}
			if _, err := db.SQL().ExecContext(ctx, `INSERT INTO delivery_seconds (notification_id, second, status, slot, n)
				VALUES ('n', $1, 'sent', 424242, 41)`, at.Unix()+1); err != nil {
				t.Fatal(err)
			}
			stats, points, err := db.DeliveryStatsAndRate(ctx, "n", at)
			if err != nil {
				t.Fatal(err)
			}
			if got := statMap(stats); !maps.Equal(got, map[string]int64{"email ses sent": 42}) {
				t.Errorf("counts %v; want the counters' 42", got)
			}
			if want := []sqlstore.RatePoint{{At: at.Unix(), Count: 1}, {At: at.Unix() + 1, Count: 41}}; !slices.Equal(points, want) {
				t.Errorf("rate %v, want %v", points, want)
			}
		})
	}
}

func isDeadlock(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "40P01"
}

// rowTruth groups the ledger's rows as the counters should: "notification
// channel provider status" and "notification second status".
func rowTruth(t *testing.T, db *sqlstore.DB) (counts, seconds map[string]int64) {
	t.Helper()
	second := `CAST(strftime('%s', substr(updated_at, 1, 19)) AS INTEGER)`
	if db.Dialect() == "postgres" {
		second = `CAST(floor(extract(epoch FROM updated_at)) AS BIGINT)`
	}
	counts = groupKeys(t, db, `SELECT notification_id || ' ' || channel || ' ' || provider || ' ' || status, COUNT(*) FROM deliveries GROUP BY 1`)
	seconds = groupKeys(t, db, `SELECT notification_id || ' ' || CAST(`+second+` AS TEXT) || ' ' || status, COUNT(*) FROM deliveries GROUP BY 1`)
	return counts, seconds
}

// counters reads the ledger's counters keyed as rowTruth's, leaving out
// the keys that add up to nothing.
func counters(t *testing.T, db *sqlstore.DB) (counts, seconds map[string]int64) {
	t.Helper()
	counts = groupKeys(t, db, `SELECT notification_id || ' ' || channel || ' ' || provider || ' ' || status, CAST(SUM(n) AS BIGINT)
		FROM delivery_counts GROUP BY 1 HAVING SUM(n) <> 0`)
	seconds = groupKeys(t, db, `SELECT notification_id || ' ' || CAST(second AS TEXT) || ' ' || status, CAST(SUM(n) AS BIGINT)
		FROM delivery_seconds GROUP BY 1 HAVING SUM(n) <> 0`)
	return counts, seconds
}

func groupKeys(t *testing.T, db *sqlstore.DB, q string) map[string]int64 {
	t.Helper()
	rows, err := db.SQL().QueryContext(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var (
			k string
			n int64
		)
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		out[k] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
