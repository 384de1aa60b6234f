package sqlstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/producer"
)

// TestRecordDeliveriesMatchesOneByOne: a batch (with several receipts for
// one delivery, in any order of ranks) leaves the ledger as applying the
// receipts one by one does.
func TestRecordDeliveriesMatchesOneByOne(t *testing.T) {
	seqs := [][]loa.Status{
		{"retrying", "sent", "failed"},
		{"sent", "delivered", "sent", "undelivered"},
		{"failed", "retrying", "expired"},
		{"token_dead"},
		{"sent", "retrying", "delivered"},
	}
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
			var batch []producer.Delivery
			for i, seq := range seqs {
				for j, st := range seq {
					provider := "p"
					if j == len(seq)-1 {
						provider = "" // a redelivery's receipt carries no provider
					}
					d := producer.Delivery{Channel: "push", Recipient: fmt.Sprintf("tok-%d", i), Status: st, Provider: provider,
						ProviderID: fmt.Sprintf("id-%d-%d", i, j), Targets: 1, Attempts: j + 1, UpdatedAt: at.Add(time.Duration(j) * time.Second)}
					one := d
					one.NotificationID = "one-by-one"
					if err := db.RecordDelivery(ctx, one); err != nil {
						t.Fatal(err)
					}
					d.NotificationID = "batched"
					batch = append(batch, d)
				}
			}
			if err := db.RecordDeliveries(ctx, batch); err != nil {
				t.Fatal(err)
			}
			a, _ := db.Deliveries(ctx, "one-by-one")
			b, _ := db.Deliveries(ctx, "batched")
			if len(a) != len(seqs) || len(b) != len(seqs) {
				t.Fatalf("%d and %d rows, want %d", len(a), len(b), len(seqs))
			}
			for i := range a {
				a[i].NotificationID, b[i].NotificationID = "", ""
				if fmt.Sprint(a[i]) != fmt.Sprint(b[i]) {
					t.Errorf("row %d:\n one by one %+v\n batched    %+v", i, a[i], b[i])
				}
			}
		})
	}
}

// TestLedgerCopiesNewRows: on PostgreSQL the ledger writes the rows that
// are probably a delivery's first (a first attempt's outcome) by COPY and
// upserts only the rest; a batch whose guess was wrong (folded again, or
// written by two writers at once) is written again by the upsert, with
// the upsert's precedence: nothing lost, nothing doubled, nothing
// downgraded.
func TestLedgerCopiesNewRows(t *testing.T) {
	db := testenv.OpenStore(t, testenv.PostgresURL(t))
	// One connection: writing a batch again must not wait for a second
	// connection while it holds the first (the deadline only turns a
	// deadlock into a failure).
	db.SQL().SetMaxOpenConns(1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var copied, upserted int
	sqlstore.SetLedgerHook(db, func(c, u int) { copied, upserted = copied+c, upserted+u })
	at := time.Date(2026, 11, 29, 16, 0, 0, 0, time.UTC)
	push := func(id string, from, n int, pid string) []producer.Delivery {
		var rs []producer.Delivery
		for i := from; i < from+n; i++ {
			rs = append(rs, producer.Delivery{NotificationID: id, Channel: "sms", Recipient: fmt.Sprintf("tok-%04d", i), Status: loa.StatusSent,
				Provider: "smsc", ProviderID: fmt.Sprintf("%s-%d", pid, i), Targets: 1000, Attempts: 1, UpdatedAt: at})
		}
		return rs
	}
	count := func(id string) map[string]int {
		ds, err := db.Deliveries(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int{}
		for _, d := range ds {
			out[string(d.Status)+"/"+d.ProviderID[:min(len(d.ProviderID), 5)]]++
		}
		out["rows"] = len(ds)
		return out
	}

	// An SMS broadcast's receipts: every row new, all by COPY (a push
	// broadcast's are compact entries, see TestLedgerSentEntries).
	if err := db.RecordDeliveries(ctx, push("bc", 0, 1000, "first")); err != nil {
		t.Fatal(err)
	}
	if copied != 1000 || upserted != 0 {
		t.Fatalf("a broadcast's first receipts: %d rows copied, %d upserted; want 1000 by COPY", copied, upserted)
	}

	// A carrier's report, a redelivery's receipt and a retry's outcome
	// update rows; a new row beside them is still copied.
	sms := producer.Delivery{NotificationID: "code", Channel: "sms", Recipient: "84900000001", Status: loa.StatusSent,
		Provider: "smsc", ProviderID: "m-1", Targets: 1, Attempts: 1, UpdatedAt: at}
	retrying := producer.Delivery{NotificationID: "bc", Channel: "sms", Recipient: "tok-retry", Status: loa.StatusRetrying,
		Provider: "smsc", Reason: "unavailable", Targets: 1000, Attempts: 1, UpdatedAt: at}
	if err := db.RecordDeliveries(ctx, []producer.Delivery{sms, retrying}); err != nil {
		t.Fatal(err)
	}
	copied, upserted = 0, 0
	report, redelivered, retried := sms, push("bc", 5, 1, "again")[0], retrying
	report.Status, report.UpdatedAt = loa.StatusDelivered, at.Add(time.Second)
	redelivered.Provider, redelivered.ProviderID = "", ""
	retried.Status, retried.ProviderID, retried.Reason, retried.Attempts = loa.StatusSent, "retried-1", "", 2
	if err := db.RecordDeliveries(ctx, append([]producer.Delivery{report, redelivered, retried}, push("bc", 1000, 1, "first")...)); err != nil {
		t.Fatal(err)
	}
	if copied != 1 || upserted != 3 {
		t.Errorf("a report, a redelivery, a retry's outcome and a new row: %d copied, %d upserted; want 1 and 3", copied, upserted)
	}
	if ds, _ := db.Deliveries(ctx, "code"); len(ds) != 1 || ds[0].Status != loa.StatusDelivered {
		t.Errorf("the report: %+v", ds)
	}

	// The first batch folded again (the ledger restarted before committing
	// its offsets), with a new row: the COPY fails on the first existing
	// row and the batch goes through the upsert, which keeps what the
	// rows had.
	copied, upserted = 0, 0
	if err := db.RecordDeliveries(ctx, append(push("bc", 0, 1000, "refold"), push("bc", 1001, 1, "first")...)); err != nil {
		t.Fatal(err)
	}
	if copied != 0 || upserted != 1001 {
		t.Errorf("a batch folded again: %d copied, %d upserted; want all 1001 by the upsert", copied, upserted)
	}
	if got := count("bc"); got["rows"] != 1003 || got["sent/first"] != 1002 || got["sent/retri"] != 1 {
		t.Errorf("after the batch was folded again: %v; want 1003 rows, 1002 sent with their first provider ids, the retried one sent", got)
	}

	// Two writers with overlapping new rows at once: whichever loses the
	// race on a key writes its batch again by the upsert.
	copied, upserted = 0, 0
	sqlstore.SetLedgerHook(db, nil)
	db.SQL().SetMaxOpenConns(4)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = db.RecordDeliveries(ctx, push("race", w*500, 1000, "race"))
		}()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	if got := count("race"); got["rows"] != 1500 || got["sent/race-"] != 1500 {
		t.Errorf("two writers at once: %v; want 1500 rows, all sent", got)
	}
}
