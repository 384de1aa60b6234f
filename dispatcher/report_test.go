package dispatcher

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

// keptRecords keeps the records it was asked to write.
type keptRecords struct {
	mu   sync.Mutex
	recs []producer.Record
}

func (k *keptRecords) Write(_ context.Context, recs ...producer.Record) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.recs = append(k.recs, recs...)
	return nil
}

func (k *keptRecords) receipts(t *testing.T) []producer.Receipt {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []producer.Receipt
	for _, r := range k.recs {
		rs, err := producer.DecodeReceipts(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rs...)
	}
	return out
}

// TestReportBeforeItsReceiptIsMatched: a delivery report that arrives 30
// seconds before the receipt of its send reaches the ledger is held, and
// applied when the receipt is folded in; one whose send is never recorded
// is dropped after the hold. The clock is the test's.
func TestReportBeforeItsReceiptIsMatched(t *testing.T) {
	for name, store := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
			var out keptRecords
			rp := NewReports(store, &out, topics.Names{Prefix: "t."}, quietLogger())
			rp.SetClock(func() time.Time { return now })

			matched, err := rp.Record(ctx, DeliveryReport{Provider: "esms", ProviderID: "esms-0001", Status: loa.StatusDelivered, Reason: "delivery report: SendStatus 5"})
			if err != nil || matched {
				t.Fatalf("matched %v, %v; want held", matched, err)
			}
			if _, err := rp.Record(ctx, DeliveryReport{Provider: "esms", ProviderID: "esms-0002", Status: loa.StatusUndelivered, Reason: "delivery report: SendStatus 7"}); err != nil {
				t.Fatal(err)
			}
			now = now.Add(30 * time.Second)
			if err := rp.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			if got := out.receipts(t); len(got) != 0 {
				t.Fatalf("published %v before the send was recorded", got)
			}
			if n, err := store.HeldReports(ctx); err != nil || n != 2 {
				t.Fatalf("%d reports held (%v), want 2", n, err)
			}

			// The send's receipt reaches the ledger, 30 s after the report.
			if err := store.RecordDeliveries(ctx, []producer.Delivery{{NotificationID: "n-1", Channel: "sms", Recipient: "84912345678",
				Status: loa.StatusSent, Provider: "esms", ProviderID: "esms-0001", Targets: 1, Attempts: 1, UpdatedAt: now}}); err != nil {
				t.Fatal(err)
			}
			if n, err := rp.Match(ctx); err != nil || n != 1 {
				t.Fatalf("matched %d (%v), want 1", n, err)
			}
			got := out.receipts(t)
			if len(got) != 1 || got[0].NotificationID != "n-1" || got[0].Status != loa.StatusDelivered || got[0].Recipient != "84912345678" ||
				got[0].ProviderID != "esms-0001" || got[0].Reason != "delivery report: SendStatus 5" {
				t.Fatalf("receipts %+v", got)
			}
			if n, _ := rp.Match(ctx); n != 0 {
				t.Errorf("a report applied twice")
			}

			// The other send is never recorded: after the hold it is dropped.
			now = now.Add(rp.Hold)
			if err := rp.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			if n, err := store.HeldReports(ctx); err != nil || n != 0 {
				t.Fatalf("%d reports held after the hold (%v)", n, err)
			}
			if got := out.receipts(t); len(got) != 1 {
				t.Fatalf("receipts %+v", got)
			}
		})
	}
}

// TestLedgerAppliesAHeldReport: the ledger, folding the receipt of an SMS
// send, applies the report that was waiting for it, without a sweep.
func TestLedgerAppliesAHeldReport(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		ctx := waitCtx(t)
		rp := NewReports(r.store, r.pub, r.names, quietLogger())
		if matched, err := rp.Record(ctx, DeliveryReport{Provider: "esms", ProviderID: "esms-9", Status: loa.StatusDelivered, Reason: "delivery report: SendStatus 5"}); err != nil || matched {
			t.Fatalf("matched %v, %v; want held", matched, err)
		}
		r.start(t, func(d *Dispatcher) { d.reports.SweepEvery = time.Hour })
		rc := producer.Receipt{NotificationID: "n-9", Channel: "sms", Recipient: "84912345679", Status: loa.StatusSent,
			Provider: "esms", ProviderID: "esms-9", Targets: 1, Attempts: 1, At: time.Now()}
		b, _ := json.Marshal(rc)
		if err := r.pub.Write(ctx, producer.Record{Topic: r.names.Topic(topics.Receipts), Key: rc.NotificationID, Value: b}); err != nil {
			t.Fatal(err)
		}
		d := waitStatus(t, r, "n-9", loa.StatusDelivered)
		if d.ProviderID != "esms-9" {
			t.Errorf("ledger row %+v", d)
		}
	})
}

// reportsWithBacklog returns Reports on store, at now, whose receipts go
// to the returned records, with a backlog of 50 held reports whose sends
// are in the ledger (heldWithDeliveries).
func reportsWithBacklog(t *testing.T, store *sqlstore.DB, now time.Time) (*Reports, *keptRecords) {
	t.Helper()
	out := &keptRecords{}
	rp := NewReports(store, out, topics.Names{Prefix: "t."}, quietLogger())
	rp.SetClock(func() time.Time { return now })
	heldWithDeliveries(t, rp, store, 50, now)
	return rp, out
}

// heldWithDeliveries holds n reports of esms whose sends the ledger then
// records without matching them: a backlog of reports a sweep or their
// own ledger batches would apply.
func heldWithDeliveries(t *testing.T, rp *Reports, store *sqlstore.DB, n int, at time.Time) {
	t.Helper()
	ctx := context.Background()
	rows := make([]producer.Delivery, n)
	for i := range n {
		id := fmt.Sprintf("esms-backlog-%d", i)
		if matched, err := rp.Record(ctx, DeliveryReport{Provider: "esms", ProviderID: id, Status: loa.StatusDelivered}); err != nil || matched {
			t.Fatalf("matched %v, %v; want held", matched, err)
		}
		rows[i] = producer.Delivery{NotificationID: "n-backlog-" + fmt.Sprint(i), Channel: "sms", Recipient: fmt.Sprintf("849%08d", i),
			Status: loa.StatusSent, Provider: "esms", ProviderID: id, Targets: 1, Attempts: 1, UpdatedAt: at}
	}
	if err := store.RecordDeliveries(ctx, rows); err != nil {
		t.Fatal(err)
	}
}

// TestHoldingAReportLooksOnlyForItsOwnDelivery: a report held because its
// send is not yet in the ledger applies nothing but itself, however many
// other held reports could now be applied — those are the ledger's (each
// with the batch that records its send) and the sweep's. What one report
// costs does not grow with the backlog of held reports.
func TestHoldingAReportLooksOnlyForItsOwnDelivery(t *testing.T) {
	for name, store := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			now := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
			rp, out := reportsWithBacklog(t, store, now)

			if matched, err := rp.Record(ctx, DeliveryReport{Provider: "esms", ProviderID: "esms-new", Status: loa.StatusDelivered}); err != nil || matched {
				t.Fatalf("matched %v, %v; want held", matched, err)
			}
			if got := out.receipts(t); len(got) != 0 {
				t.Fatalf("holding one report applied %d others", len(got))
			}

			// The send is recorded between Record's look-up and its hold
			// (the clock is read right there): the second look finds it.
			rp.SetClock(func() time.Time {
				if err := store.RecordDeliveries(ctx, []producer.Delivery{{NotificationID: "n-late", Channel: "sms", Recipient: "84900000999",
					Status: loa.StatusSent, Provider: "esms", ProviderID: "esms-late", Targets: 1, Attempts: 1, UpdatedAt: now}}); err != nil {
					t.Error(err)
				}
				return now
			})
			if matched, err := rp.Record(ctx, DeliveryReport{Provider: "esms", ProviderID: "esms-late", Status: loa.StatusDelivered}); err != nil || !matched {
				t.Fatalf("matched %v, %v; want applied", matched, err)
			}
			rp.SetClock(func() time.Time { return now })
			if got := out.receipts(t); len(got) != 1 || got[0].NotificationID != "n-late" || got[0].Status != loa.StatusDelivered {
				t.Fatalf("receipts %+v, want n-late's only", got)
			}
			if n, err := store.HeldReports(ctx); err != nil || n != 51 {
				t.Fatalf("%d reports held (%v), want the backlog's 50 and esms-new", n, err)
			}

			// The ledger's batch that records esms-backlog-7 applies its report only.
			if n, err := rp.MatchSent(ctx, map[string][]string{"esms": {"esms-backlog-7", "esms-unheld"}, "other": {"esms-backlog-8"}}); err != nil || n != 1 {
				t.Fatalf("MatchSent applied %d (%v), want 1", n, err)
			}
			// The sweep applies the rest.
			if err := rp.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			if got := out.receipts(t); len(got) != 51 {
				t.Fatalf("%d receipts, want 51", len(got))
			}
			if n, err := store.HeldReports(ctx); err != nil || n != 1 {
				t.Fatalf("%d reports held (%v), want esms-new only", n, err)
			}
		})
	}
}

// TestLedgerBatchMatchesOnlyItsOwnSends: folding a batch applies the held
// reports about the sends it records, not every held report whose send is
// in the ledger.
func TestLedgerBatchMatchesOnlyItsOwnSends(t *testing.T) {
	for name, store := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			now := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
			rp, out := reportsWithBacklog(t, store, now)
			if matched, err := rp.Record(ctx, DeliveryReport{Provider: "esms", ProviderID: "esms-x", Status: loa.StatusDelivered}); err != nil || matched {
				t.Fatalf("matched %v, %v; want held", matched, err)
			}

			d := &Dispatcher{store: store, reports: rp, log: quietLogger()}
			b, _ := json.Marshal(producer.Receipt{NotificationID: "n-x", Channel: "sms", Recipient: "84912345670", Status: loa.StatusSent,
				Provider: "esms", ProviderID: "esms-x", Targets: 1, Attempts: 1, At: now})
			if err := d.foldReceipts(ctx, []kafka.Message{{Value: b}}); err != nil {
				t.Fatal(err)
			}
			if got := out.receipts(t); len(got) != 1 || got[0].NotificationID != "n-x" || got[0].Status != loa.StatusDelivered {
				t.Fatalf("%d receipts (first %+v), want n-x's only", len(got), got[0])
			}
			if n, err := store.HeldReports(ctx); err != nil || n != 50 {
				t.Fatalf("%d reports held (%v), want the backlog's 50", n, err)
			}
		})
	}
}

// heldWrites is a recordWriter whose first write waits for release, and
// that counts its writes and keeps their receipts.
type heldWrites struct {
	keptRecords
	entered chan struct{} // closed when the first write starts
	release chan struct{}
	writes  atomic.Int32
}

func (h *heldWrites) Write(ctx context.Context, recs ...producer.Record) error {
	if h.writes.Add(1) == 1 {
		close(h.entered)
		<-h.release
	}
	return h.keptRecords.Write(ctx, recs...)
}

// TestReportsArrivingTogetherAreRecordedTogether: delivery reports that
// arrive while another is being recorded are looked up, held or applied
// together — one look-up and one receipt write for all of them, not one
// each (a gateway reports every SMS: at 500 codes a second that was three
// statements and a Kafka write a code). Each caller still learns its own
// outcome.
func TestReportsArrivingTogetherAreRecordedTogether(t *testing.T) {
	for name, store := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			now := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
			const n = 20
			var rows []producer.Delivery
			for i := range n {
				rows = append(rows, producer.Delivery{NotificationID: fmt.Sprintf("code-%d", i), Channel: "sms", Recipient: fmt.Sprintf("849%08d", i),
					Status: loa.StatusSent, Provider: "esms", ProviderID: fmt.Sprintf("esms-t%d", i), Targets: 1, Attempts: 1, UpdatedAt: now})
			}
			if err := store.RecordDeliveries(ctx, rows); err != nil {
				t.Fatal(err)
			}
			out := &heldWrites{entered: make(chan struct{}), release: make(chan struct{})}
			rp := NewReports(store, out, topics.Names{Prefix: "t."}, quietLogger())
			rp.SetClock(func() time.Time { return now })
			queued := make(chan struct{}, 2*n)
			rp.queued = func() { queued <- struct{}{} }

			type result struct {
				i       int
				matched bool
				err     error
			}
			results := make(chan result, 2*n)
			record := func(i int, id string) {
				matched, err := rp.Record(ctx, DeliveryReport{Provider: "esms", ProviderID: id, Status: loa.StatusDelivered})
				results <- result{i, matched, err}
			}
			go record(0, "esms-t0") // recorded alone; its receipt's write waits
			<-out.entered
			// The rest come while it is being written, and one report
			// whose send is not in the ledger yet.
			for i := 1; i < n; i++ {
				go record(i, fmt.Sprintf("esms-t%d", i))
			}
			go record(n, "esms-not-yet")
			for range n {
				<-queued
			}
			close(out.release)
			for range n + 1 {
				r := <-results
				if r.err != nil || r.matched != (r.i < n) {
					t.Errorf("report %d: matched %v, %v", r.i, r.matched, r.err)
				}
			}
			if w := out.writes.Load(); w != 2 {
				t.Errorf("%d receipt writes for %d reports, %d of them queued together; want 2", w, n+1, n)
			}
			if got := out.receipts(t); len(got) != n {
				t.Errorf("%d receipts, want %d", len(got), n)
			}
			if held, err := store.HeldReports(ctx); err != nil || held != 1 {
				t.Errorf("%d reports held (%v), want the one whose send is not recorded", held, err)
			}
		})
	}
}
