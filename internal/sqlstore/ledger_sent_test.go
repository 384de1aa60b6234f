package sqlstore_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/producer"
)

// TestLedgerSentEntries: a push broadcast's first sends are stored
// compactly on PostgreSQL (one deliveries_sent row a receipt batch),
// everything else as rows; every reader — a notification's rows, a
// recipient's, the counts and the rate — sees on both dialects what
// per-row storage with the upsert's precedence gives: a carrier's report
// wins over sent, a redelivery's receipt, a failure or a retry's outcome
// does not, a row written before the send is overridden by it, and a
// receipt batch folded again changes nothing and counts nothing twice.
func TestLedgerSentEntries(t *testing.T) {
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			at := time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC)
			push := func(tok string, st loa.Status, provider, pid string, attempts int, sec int) producer.Delivery {
				return producer.Delivery{NotificationID: "bc", Channel: "push", Recipient: tok, Status: st, Provider: provider, ProviderID: pid,
					Targets: 1002, Attempts: attempts, UpdatedAt: at.Add(time.Duration(sec) * time.Second)}
			}
			var first []producer.Delivery
			for i := range 1000 {
				first = append(first, push(fmt.Sprintf("tok-%04d", i), loa.StatusSent, "fcm", fmt.Sprintf("first-%d", i), 1, i/250))
			}
			later := []producer.Delivery{
				push("tok-0005", loa.StatusSent, "", "", 1, 10),         // a redelivery found it sent
				push("tok-0007", loa.StatusFailed, "fcm", "", 1, 10),    // a late failure: sent stays
				push("tok-0009", loa.StatusDelivered, "", "", 1, 11),    // a report: wins, keeps the provider
				push("tok-new", loa.StatusRetrying, "fcm", "", 1, 10),   // not sent at its first attempt
				push("tok-dead", loa.StatusTokenDead, "fcm", "", 1, 10), // a dead token
				push("tok-late", loa.StatusRetrying, "fcm", "", 1, 10),  // a row before its send ...
			}
			retried := []producer.Delivery{
				push("tok-new", loa.StatusSent, "fcm", "retry-1", 2, 12), // the retry's outcome
				push("tok-late", loa.StatusSent, "fcm", "late-1", 1, 12), // ... then the send, in a batch of its own
			}
			for i, b := range [][]producer.Delivery{first, later, retried, first, later, retried} { // each folded twice
				if err := db.RecordDeliveries(ctx, b); err != nil {
					t.Fatalf("batch %d: %v", i, err)
				}
			}

			if db.Dialect() == "postgres" {
				var entries, rows int
				if err := db.SQL().QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM deliveries_sent WHERE notification_id = 'bc'),
					(SELECT COUNT(*) FROM deliveries WHERE notification_id = 'bc')`).Scan(&entries, &rows); err != nil {
					t.Fatal(err)
				}
				// first: one entry; retried: tok-late's send is one more
				if entries != 2 || rows != 6 {
					t.Errorf("%d compact entries and %d rows; want 2 entries (the first sends, tok-late's) and 6 rows", entries, rows)
				}
			}

			want := map[string]string{ // recipient: status provider provider-id attempts
				"tok-0000": "sent fcm first-0 1",
				"tok-0005": "sent fcm first-5 1",
				"tok-0007": "sent fcm first-7 1",
				"tok-0009": "delivered fcm first-9 1",
				"tok-new":  "sent fcm retry-1 2",
				"tok-late": "sent fcm late-1 1",
				"tok-dead": "token_dead fcm  1",
			}
			ds, err := db.Deliveries(ctx, "bc")
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) != 1003 {
				t.Errorf("%d deliveries, want 1003", len(ds))
			}
			seen := map[string]bool{}
			for i, d := range ds {
				if seen[d.Recipient] {
					t.Errorf("%s twice", d.Recipient)
				}
				seen[d.Recipient] = true
				if i > 0 && ds[i-1].Recipient >= d.Recipient {
					t.Errorf("out of order: %s before %s", ds[i-1].Recipient, d.Recipient)
				}
				if w, ok := want[d.Recipient]; ok {
					if got := fmt.Sprintf("%s %s %s %d", d.Status, d.Provider, d.ProviderID, d.Attempts); got != w {
						t.Errorf("%s: %q, want %q", d.Recipient, got, w)
					}
				}
				if d.Recipient == "tok-0999" && (!d.UpdatedAt.Equal(at.Add(3*time.Second)) || d.Targets != 1002 || d.NotificationID != "bc") {
					t.Errorf("tok-0999: %+v", d)
				}
			}

			to, err := db.DeliveriesTo(ctx, "bc", []string{"tok-0009", "tok-0005", "tok-dead", "tok-none"})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range to {
				got = append(got, d.Recipient+": "+fmt.Sprintf("%s %s %s %d", d.Status, d.Provider, d.ProviderID, d.Attempts))
			}
			if w := []string{"tok-0005: " + want["tok-0005"], "tok-0009: " + want["tok-0009"], "tok-dead: " + want["tok-dead"]}; fmt.Sprint(got) != fmt.Sprint(w) {
				t.Errorf("a person's deliveries:\n got  %q\n want %q", got, w)
			}

			wantStats := map[string]int64{"push fcm sent": 1001, "push fcm delivered": 1, "push fcm token_dead": 1}
			stats, err := db.DeliveryStats(ctx, "bc")
			if err != nil {
				t.Fatal(err)
			}
			if got := statMap(stats); !maps.Equal(got, wantStats) {
				t.Errorf("counts %v, want %v", got, wantStats)
			}
			stats, rate, err := db.DeliveryStatsAndRate(ctx, "bc", at.Add(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if got := statMap(stats); !maps.Equal(got, wantStats) {
				t.Errorf("counts with the rate %v, want %v", got, wantStats)
			}
			// From second 1: 250 a second in 1–3, the dead token at 10,
			// the report at 11 (its send was in second 0), the retry's
			// outcome and the late send at 12; the failure, the
			// redelivery and the retrying rows count in none.
			wantRate := fmt.Sprint([]string{"1:250", "2:250", "3:250", "10:1", "11:1", "12:2"})
			var points []string
			for _, p := range rate {
				points = append(points, fmt.Sprintf("%d:%d", p.At-at.Unix(), p.Count))
			}
			if fmt.Sprint(points) != wantRate {
				t.Errorf("rate %v, want %v", points, wantRate)
			}
		})
	}
}

func statMap(stats []producer.DeliveryStat) map[string]int64 {
	out := map[string]int64{}
	for _, s := range stats {
		out[s.Channel+" "+s.Provider+" "+string(s.Status)] += s.Count
	}
	return out
}

// TestLedgerSentEntriesOfAbsurdSize: a receipt batch of thousands of
// sends with absurdly long addresses is cut into entries of bounded size
// (at most 1,000 sends and about 256 KB each), all of it readable, and
// folded again it adds nothing.
func TestLedgerSentEntriesOfAbsurdSize(t *testing.T) {
	db := testenv.OpenStore(t, testenv.PostgresURL(t))
	ctx := context.Background()
	at := time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC)
	var rs []producer.Delivery
	long := strings.Repeat("x", 4096)
	for i := range 3000 {
		tok := fmt.Sprintf("tok-%05d", i)
		if i%2 == 0 {
			tok += long
		}
		rs = append(rs, producer.Delivery{NotificationID: "huge", Channel: "push", Recipient: tok, Status: loa.StatusSent,
			Provider: "fcm", ProviderID: fmt.Sprint(i), Targets: 3000, Attempts: 1, UpdatedAt: at})
	}
	for range 2 {
		if err := db.RecordDeliveries(ctx, rs); err != nil {
			t.Fatal(err)
		}
	}
	var entries, most, largest int
	if err := db.SQL().QueryRowContext(ctx, `SELECT COUNT(*), MAX(n), MAX(octet_length(array_to_string(recipients, '')))
		FROM deliveries_sent WHERE notification_id = 'huge'`).Scan(&entries, &most, &largest); err != nil {
		t.Fatal(err)
	}
	if most > 1000 || largest > 256<<10+8192 || entries < 3000*2048/(256<<10) {
		t.Errorf("%d entries, the fullest of %d sends, the largest of %d bytes of addresses", entries, most, largest)
	}
	stats, err := db.DeliveryStats(ctx, "huge")
	if err != nil {
		t.Fatal(err)
	}
	if got := statMap(stats); !maps.Equal(got, map[string]int64{"push fcm sent": 3000}) {
		t.Errorf("counts %v", got)
	}
	ds, err := db.Deliveries(ctx, "huge")
	if err != nil || len(ds) != 3000 {
		t.Fatalf("%d deliveries, %v", len(ds), err)
	}
}

// TestLedgerEntriesArraysAreNotAnalysed: ANALYZE (autovacuum's, after
// each tenth of the table inserted) keeps statistics of the compact
// entries' columns but not of their arrays, which it would read whole
// for every sampled entry: 17-20 CPU-s of PostgreSQL on a table of
// 16,000 entries, in the middle of a million-device broadcast.
func TestLedgerEntriesArraysAreNotAnalysed(t *testing.T) {
	db := testenv.OpenStore(t, testenv.PostgresURL(t))
	ctx := context.Background()
	at := time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC)
	var batches [][]producer.Delivery
	for e := range 4 {
		var b []producer.Delivery
		for i := range 500 {
			b = append(b, producer.Delivery{NotificationID: fmt.Sprintf("bc-%d", e%2), Channel: "push", Recipient: fmt.Sprintf("tok-%d-%03d", e, i),
				Status: loa.StatusSent, Provider: "fcm", ProviderID: fmt.Sprintf("m-%d-%d", e, i), Targets: 1000, Attempts: 1, UpdatedAt: at})
		}
		batches = append(batches, b)
	}
	if err := db.RecordReceiptBatches(ctx, batches); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SQL().ExecContext(ctx, `ANALYZE deliveries_sent`); err != nil {
		t.Fatal(err)
	}
	rows, err := db.SQL().QueryContext(ctx, `SELECT attname FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'deliveries_sent'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	analysed := map[string]bool{}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		analysed[c] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !analysed["notification_id"] || !analysed["first_at"] {
		t.Errorf("the entries' own columns have no statistics: %v", analysed)
	}
	for _, c := range []string{"recipients", "provider_ids", "ats", "recipient_hashes"} {
		if analysed[c] {
			t.Errorf("ANALYZE read the entries' %s", c)
		}
	}
}

// TestLedgerCountsOpenOnlyEntriesWithRows: the live counts of a
// notification with compact entries and rows beside them equal, on
// PostgreSQL, those of the same receipts kept as one row each (SQLite:
// the per-row truth), counts and seconds alike, while opening only the
// entries that may hold an address with a row: those whose hashes match
// one (a true match, or a chance one: an address whose hash is another's),
// and those written without hashes; never the others.
func TestLedgerCountsOpenOnlyEntriesWithRows(t *testing.T) {
	stores := testenv.Stores(t)
	pg, truth := stores["postgres"], stores["sqlite"]
	if pg == nil {
		t.Skip("no PostgreSQL")
	}
	ctx := context.Background()
	// Two addresses of one hash: one is sent, the other fails.
	seen, collide := map[uint32]string{}, [2]string{}
	for i := 0; collide[0] == ""; i++ {
		s := fmt.Sprintf("col-%d", i)
		h := sqlstore.AddressHash(s)
		if o, ok := seen[h]; ok {
			collide = [2]string{o, s}
		}
		seen[h] = s
	}
	at := time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC)
	push := func(tok string, st loa.Status, provider string, attempts int, ms int) producer.Delivery {
		return producer.Delivery{NotificationID: "mix", Channel: "push", Recipient: tok, Status: st, Provider: provider,
			ProviderID: "m-" + tok, Targets: 3001, Attempts: attempts, UpdatedAt: at.Add(time.Duration(ms) * time.Millisecond)}
	}
	// Six receipt messages of 500 first sends: six entries. The fifth
	// spans two seconds (its sends at 4.8 s to 5.3 s).
	var batches [][]producer.Delivery
	for e := range 6 {
		var b []producer.Delivery
		for i := range 500 {
			tok := fmt.Sprintf("tok-%d-%03d", e, i)
			if e == 0 && i == 250 {
				tok = collide[0]
			}
			ms := e*1000 + i
			if e == 4 {
				ms += 800
			}
			b = append(b, push(tok, loa.StatusSent, "fcm", 1, ms))
		}
		batches = append(batches, b)
	}
	rows := []producer.Delivery{
		push("tok-1-499", loa.StatusSent, "", 0, 9000),        // a redelivery found it sent (the entry's last address)
		push("tok-2-000", loa.StatusDelivered, "", 1, 9100),   // a report: wins (the entry's first address)
		push("tok-3-123", loa.StatusSent, "", 0, 9200),        // a redelivery, in the entry written without hashes
		push(collide[1], loa.StatusTokenDead, "fcm", 1, 9300), // a dead token whose hash is a sent address's
		push("tok-x-1", loa.StatusTokenDead, "fcm", 1, 9400),
		push("tok-x-2", loa.StatusFailed, "fcm", 1, 9500),
	}
	for _, db := range []*sqlstore.DB{pg, truth} {
		if err := db.RecordReceiptBatches(ctx, batches); err != nil {
			t.Fatal(err)
		}
		if err := db.RecordReceiptBatches(ctx, [][]producer.Delivery{rows}); err != nil {
			t.Fatal(err)
		}
	}
	// The fourth entry as written before the hashes were kept.
	if _, err := pg.SQL().ExecContext(ctx, `UPDATE deliveries_sent SET recipient_hashes = NULL
		WHERE notification_id = 'mix' AND 'tok-3-000' = ANY(recipients)`); err != nil {
		t.Fatal(err)
	}
	var opened []int
	sqlstore.SetOpenHook(pg, func(n int) { opened = append(opened, n) })
	for _, since := range []time.Time{{}, at.Add(5 * time.Second)} {
		want, wantRate, err := truth.DeliveryStatsAndRate(ctx, "mix", since)
		if err != nil {
			t.Fatal(err)
		}
		got, gotRate, err := pg.DeliveryStatsAndRate(ctx, "mix", since)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(statMap(got), statMap(want)) || fmt.Sprint(gotRate) != fmt.Sprint(wantRate) {
			t.Errorf("since %v:\n counts %v rate %v\n want   %v rate %v", since, statMap(got), gotRate, statMap(want), wantRate)
		}
	}
	want, err := truth.DeliveryStats(ctx, "mix")
	if err != nil {
		t.Fatal(err)
	}
	got, err := pg.DeliveryStats(ctx, "mix")
	if err != nil {
		t.Fatal(err)
	}
	if w := map[string]int64{"push fcm sent": 2999, "push fcm delivered": 1, "push fcm token_dead": 2, "push fcm failed": 1}; !maps.Equal(statMap(want), w) {
		t.Fatalf("the per-row truth %v, want %v", statMap(want), w)
	}
	if !maps.Equal(statMap(got), statMap(want)) {
		t.Errorf("counts %v, want %v", statMap(got), statMap(want))
	}
	// Entries 0 (the chance match), 1, 2 (true ones) and 3 (no
	// hashes); not 4 and 5.
	if fmt.Sprint(opened) != "[4 4 4]" {
		t.Errorf("entries opened by each count: %v, want 4 of 6 each time", opened)
	}
}

// TestLedgerCountsABroadcastPlannedTwice: a broadcast planned again (a
// rebalance moved its plan) has each address sent once, in a compact
// entry, and again as a redelivery's "already sent" row. Its counts are
// the sends, once each, and the join that pairs rows with entries is a
// hash join even while PostgreSQL's statistics still say the tables are
// empty: the nested loop it chose then unnested every entry for each row
// (more than 30 s a call at 74,000 rows).
func TestLedgerCountsABroadcastPlannedTwice(t *testing.T) {
	db := testenv.OpenStore(t, testenv.PostgresURL(t))
	ctx := context.Background()
	if _, err := db.SQL().ExecContext(ctx, `ANALYZE deliveries; ANALYZE deliveries_sent`); err != nil { // as when the rows came
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	const batches, size = 8, 500
	for b := range batches {
		var first, again []producer.Delivery
		for i := range size {
			tok := fmt.Sprintf("tok-%d-%03d", b, i)
			first = append(first, producer.Delivery{NotificationID: "bc2", Channel: "push", Recipient: tok, Status: loa.StatusSent,
				Provider: "fcm", ProviderID: "m-" + tok, Targets: batches * size, Attempts: 1, UpdatedAt: at})
			again = append(again, producer.Delivery{NotificationID: "bc2", Channel: "push", Recipient: tok, Status: loa.StatusSent,
				Reason: "already sent", Targets: batches * size, Attempts: 1, UpdatedAt: at.Add(time.Minute)})
		}
		if err := db.RecordDeliveries(ctx, first); err != nil {
			t.Fatal(err)
		}
		if err := db.RecordDeliveries(ctx, again); err != nil {
			t.Fatal(err)
		}
	}
	plan, err := sqlstore.ExplainSentJoin(ctx, db, "bc2")
	if err != nil {
		t.Fatal(err)
	}
	if top := strings.TrimSpace(strings.SplitN(plan, "\n", 2)[0]); !strings.HasPrefix(top, "Hash Join") {
		t.Errorf("the rows and the entries are joined by:\n%s", plan)
	}
	stats, err := db.DeliveryStats(ctx, "bc2")
	if err != nil {
		t.Fatal(err)
	}
	var sent int64
	for _, s := range stats {
		if s.Status == loa.StatusSent {
			sent += s.Count
		} else {
			t.Errorf("a count of %s: %+v", s.Status, s)
		}
	}
	if sent != batches*size {
		t.Errorf("%d sent, want %d (%+v)", sent, batches*size, stats)
	}
}
