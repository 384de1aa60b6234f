package dispatcher

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/loa-hub/loa"
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
