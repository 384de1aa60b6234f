package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

// reportMsg is the loa.receipts message Reports.Record writes with
// ViaLedger.
func reportMsg(t *testing.T, rp *Reports, rep DeliveryReport) kafka.Message {
	t.Helper()
	var out keptRecords
	saved := rp.pub
	rp.pub = &out
	defer func() { rp.pub = saved }()
	if matched, err := rp.Record(context.Background(), rep); err != nil || matched {
		t.Fatalf("Record: matched %v, %v", matched, err)
	}
	if len(out.recs) != 1 || out.recs[0].Topic != rp.names.Topic(topics.Receipts) {
		t.Fatalf("records %+v, want one on loa.receipts", out.recs)
	}
	return kafka.Message{Key: []byte(out.recs[0].Key), Value: out.recs[0].Value}
}

// sendMsg is the receipt of an SMS send accepted by esms as providerID.
func sendMsg(notificationID, recipient, providerID string, at time.Time) kafka.Message {
	b, _ := json.Marshal(producer.Receipt{NotificationID: notificationID, Channel: "sms", Recipient: recipient, Status: loa.StatusSent,
		Provider: "esms", ProviderID: providerID, Targets: 1, Attempts: 1, At: at})
	return kafka.Message{Key: []byte(notificationID), Value: b}
}

// ledgerRow returns notificationID's one ledger row.
func ledgerRow(t *testing.T, store *sqlstore.DB, notificationID string) producer.Delivery {
	t.Helper()
	ds, err := store.Deliveries(context.Background(), notificationID)
	if err != nil || len(ds) != 1 {
		t.Fatalf("%s: rows %+v (%v), want one", notificationID, ds, err)
	}
	return ds[0]
}

// TestReportsGoToTheLedger: with ViaLedger a delivery report is written
// to loa.receipts for the ledger, and nothing of it to the store: the
// API's callback is answered once Kafka has it. A write that fails is an
// error, so that the callback is not answered 2xx and the gateway sends
// the report again.
func TestReportsGoToTheLedger(t *testing.T) {
	at := time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)
	var out keptRecords
	rp := NewReports(nil, &out, topics.Names{Prefix: "t."}, quietLogger()) // no store: nothing may use it
	rp.ViaLedger = true
	rp.SetClock(func() time.Time { return at })
	rep := DeliveryReport{Provider: "esms", ProviderID: "esms-1", Status: loa.StatusUndelivered, Reason: "delivery report: SendStatus 7"}
	if matched, err := rp.Record(context.Background(), rep); err != nil || matched {
		t.Fatalf("matched %v, %v", matched, err)
	}
	if len(out.recs) != 1 || out.recs[0].Topic != "t.loa.receipts" {
		t.Fatalf("records %+v", out.recs)
	}
	got, gotAt, ok, err := producer.DecodeReport(out.recs[0].Value)
	if !ok || err != nil || got != rep || !gotAt.Equal(at) {
		t.Fatalf("decoded %+v at %v (%v, %v), want %+v at %v", got, gotAt, ok, err, rep, at)
	}
	if _, err := producer.DecodeReceipts(out.recs[0].Value); err == nil {
		t.Error("a report decodes as a receipt")
	}

	rp.pub = failingWriter{}
	if _, err := rp.Record(context.Background(), rep); err == nil {
		t.Error("a report Kafka did not take was recorded")
	}
}

type failingWriter struct{}

func (failingWriter) Write(context.Context, ...producer.Record) error {
	return errors.New("kafka is down")
}

// TestLedgerFoldsAReportWithItsSend: a report and the receipt of its send
// in one ledger batch, in either order, are one row written — the
// report's status, the send's delivery — with nothing held and no receipt
// published for a second write. A report that comes again (a gateway's
// retry) changes nothing.
func TestLedgerFoldsAReportWithItsSend(t *testing.T) {
	for name, store := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			now := time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)
			var out keptRecords
			rp := NewReports(store, &out, topics.Names{Prefix: "t."}, quietLogger())
			rp.ViaLedger = true
			rp.SetClock(func() time.Time { return now.Add(time.Second) })
			d := &Dispatcher{store: store, reports: rp, log: quietLogger(), now: func() time.Time { return now }}

			rep1 := reportMsg(t, rp, DeliveryReport{Provider: "esms", ProviderID: "esms-a", Status: loa.StatusDelivered, Reason: "delivery report: SendStatus 5"})
			rep2 := reportMsg(t, rp, DeliveryReport{Provider: "esms", ProviderID: "esms-b", Status: loa.StatusUndelivered, Reason: "delivery report: SendStatus 7"})
			if err := d.foldReceipts(ctx, []kafka.Message{rep1, sendMsg("n-a", "84912345601", "esms-a", now),
				sendMsg("n-b", "84912345602", "esms-b", now), rep2}); err != nil {
				t.Fatal(err)
			}
			a, b := ledgerRow(t, store, "n-a"), ledgerRow(t, store, "n-b")
			if a.Status != loa.StatusDelivered || a.Reason != "delivery report: SendStatus 5" || a.Recipient != "84912345601" ||
				a.ProviderID != "esms-a" || !a.UpdatedAt.Equal(now.Add(time.Second)) {
				t.Errorf("n-a's row %+v", a)
			}
			if b.Status != loa.StatusUndelivered || b.Reason != "delivery report: SendStatus 7" {
				t.Errorf("n-b's row %+v", b)
			}
			if n, err := store.HeldReports(ctx); err != nil || n != 0 {
				t.Errorf("%d reports held (%v)", n, err)
			}
			if got := out.receipts(t); len(got) != 0 {
				t.Errorf("receipts published %+v: the reports are applied in the ledger's own write", got)
			}

			// The gateway's retry of the first report, and a later
			// undelivered word on it: delivered stands.
			again := reportMsg(t, rp, DeliveryReport{Provider: "esms", ProviderID: "esms-a", Status: loa.StatusDelivered, Reason: "delivery report: SendStatus 5"})
			worse := reportMsg(t, rp, DeliveryReport{Provider: "esms", ProviderID: "esms-a", Status: loa.StatusUndelivered})
			if err := d.foldReceipts(ctx, []kafka.Message{again, worse}); err != nil {
				t.Fatal(err)
			}
			if a2 := ledgerRow(t, store, "n-a"); a2 != a {
				t.Errorf("row after the report again %+v, want %+v", a2, a)
			}
		})
	}
}

// TestLedgerAppliesAReportAfterItsSend: a report read after its send was
// folded is applied from the sends the ledger folded lately, or, by a
// ledger that did not fold it (another replica's partition, a restart),
// from the store.
func TestLedgerAppliesAReportAfterItsSend(t *testing.T) {
	for name, store := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			now := time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)
			var out keptRecords
			d, rp := ledgerWithReports(store, &out, &now)
			if err := d.foldReceipts(ctx, []kafka.Message{sendMsg("n-c", "84912345603", "esms-c", now),
				sendMsg("n-d", "84912345604", "esms-d", now)}); err != nil {
				t.Fatal(err)
			}
			if err := d.foldReceipts(ctx, []kafka.Message{reportMsg(t, rp, DeliveryReport{Provider: "esms", ProviderID: "esms-c", Status: loa.StatusDelivered})}); err != nil {
				t.Fatal(err)
			}
			other := &Dispatcher{store: store, reports: rp, log: quietLogger(), now: d.now}
			if err := other.foldReceipts(ctx, []kafka.Message{reportMsg(t, rp, DeliveryReport{Provider: "esms", ProviderID: "esms-d", Status: loa.StatusDelivered})}); err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{"n-c", "n-d"} {
				if r := ledgerRow(t, store, id); r.Status != loa.StatusDelivered {
					t.Errorf("%s: %+v", id, r)
				}
			}
			if n, err := store.HeldReports(ctx); err != nil || n != 0 {
				t.Errorf("%d reports held (%v)", n, err)
			}
		})
	}
}

// TestLedgerHoldsAReportBeforeItsSend: a report whose send is nowhere yet
// is held, from when it was received, and applied once when the ledger
// folds the send; one whose send never comes is dropped after the hold.
func TestLedgerHoldsAReportBeforeItsSend(t *testing.T) {
	for name, store := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			now := time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)
			var out keptRecords
			d, rp := ledgerWithReports(store, &out, &now)
			early := reportMsg(t, rp, DeliveryReport{Provider: "esms", ProviderID: "esms-e", Status: loa.StatusDelivered, Reason: "delivery report: SendStatus 5"})
			never := reportMsg(t, rp, DeliveryReport{Provider: "esms", ProviderID: "esms-never", Status: loa.StatusDelivered})
			if err := d.foldReceipts(ctx, []kafka.Message{early, never}); err != nil {
				t.Fatal(err)
			}
			if n, err := store.HeldReports(ctx); err != nil || n != 2 {
				t.Fatalf("%d reports held (%v), want 2", n, err)
			}

			// The send comes in a later batch: the held report is applied
			// through a receipt, once.
			now = now.Add(time.Minute)
			if err := d.foldReceipts(ctx, []kafka.Message{sendMsg("n-e", "84912345605", "esms-e", now)}); err != nil {
				t.Fatal(err)
			}
			got := out.receipts(t)
			if len(got) != 1 || got[0].NotificationID != "n-e" || got[0].Status != loa.StatusDelivered || got[0].Reason != "delivery report: SendStatus 5" {
				t.Fatalf("receipts %+v, want n-e delivered once", got)
			}
			if n, err := rp.Match(ctx); err != nil || n != 0 {
				t.Errorf("matched %d more (%v): applied twice", n, err)
			}
			b, _ := json.Marshal(got[0])
			if err := d.foldReceipts(ctx, []kafka.Message{{Value: b}}); err != nil {
				t.Fatal(err)
			}
			if r := ledgerRow(t, store, "n-e"); r.Status != loa.StatusDelivered {
				t.Errorf("n-e: %+v", r)
			}

			// The other's send never comes: the hold runs from the report's
			// reception, and it is dropped when the hold is over.
			now = now.Add(rp.Hold - time.Minute - time.Second)
			if err := rp.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			if n, err := store.HeldReports(ctx); err != nil || n != 1 {
				t.Fatalf("%d reports held within the hold (%v), want 1", n, err)
			}
			now = now.Add(2 * time.Second)
			if err := rp.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			if n, err := store.HeldReports(ctx); err != nil || n != 0 {
				t.Fatalf("%d reports held after the hold (%v), want 0", n, err)
			}
			if got := out.receipts(t); len(got) != 1 {
				t.Errorf("receipts %+v", got)
			}
		})
	}
}

// TestLedgerReadsOnForAReportsSend: a batch with a report whose send is
// neither in it nor folded lately is not folded at once: the ledger reads
// on until the send is there (and no further), so that the two are one
// write and nothing is held.
func TestLedgerReadsOnForAReportsSend(t *testing.T) {
	now := time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)
	rp := NewReports(nil, &keptRecords{}, topics.Names{Prefix: "t."}, quietLogger())
	rp.ViaLedger = true
	rp.SetClock(func() time.Time { return now })
	d := &Dispatcher{reports: rp, log: quietLogger(), now: func() time.Time { return now }}
	d.recent.add([][]producer.Delivery{{{NotificationID: "n-old", Channel: "sms", Recipient: "84912345609", Status: loa.StatusSent,
		Provider: "esms", ProviderID: "esms-old"}}})

	next := []kafka.Message{
		sendMsg("n-x", "84912345606", "esms-x", now), // another send
		sendMsg("n-f", "84912345607", "esms-f", now), // the report's
		sendMsg("n-y", "84912345608", "esms-y", now), // not to be read
	}
	fetched := 0
	fetch := func(ctx context.Context) (kafka.Message, error) {
		if fetched == len(next) {
			return kafka.Message{}, errors.New("nothing more")
		}
		fetched++
		return next[fetched-1], nil
	}

	// A report whose send was folded lately waits for nothing.
	f := d.decodeLedger([]kafka.Message{reportMsg(t, rp, DeliveryReport{Provider: "esms", ProviderID: "esms-old", Status: loa.StatusDelivered})})
	d.awaitSends(context.Background(), fetch, f)
	if fetched != 0 || len(f.msgs) != 1 {
		t.Fatalf("read %d more for a report whose send was folded lately", fetched)
	}

	f = d.decodeLedger([]kafka.Message{reportMsg(t, rp, DeliveryReport{Provider: "esms", ProviderID: "esms-f", Status: loa.StatusDelivered})})
	d.awaitSends(context.Background(), fetch, f)
	if fetched != 2 || len(f.msgs) != 3 || len(f.reps) != 1 {
		t.Fatalf("read %d more (%d messages, %d reports), want up to the report's send", fetched, len(f.msgs), len(f.reps))
	}
	rows, held, err := d.resolveReports(context.Background(), f.batches, f.reps)
	if err != nil || len(held) != 0 || len(rows) != 1 || rows[0].NotificationID != "n-f" || rows[0].Status != loa.StatusDelivered {
		t.Fatalf("rows %+v, held %+v (%v)", rows, held, err)
	}
}

// TestLedgerAppliesAReportReadBeforeItsSend: through Kafka, a report
// written before the receipt of its send (the gateway was quicker than
// the dispatcher's receipt) is applied by the ledger once both are read.
func TestLedgerAppliesAReportReadBeforeItsSend(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		ctx := waitCtx(t)
		rp := NewReports(r.store, r.pub, r.names, quietLogger())
		rp.ViaLedger = true
		if matched, err := rp.Record(ctx, DeliveryReport{Provider: "esms", ProviderID: "esms-k", Status: loa.StatusDelivered, Reason: "delivery report: SendStatus 5"}); err != nil || matched {
			t.Fatalf("matched %v, %v", matched, err)
		}
		m := sendMsg("n-k", "84912345610", "esms-k", time.Now())
		if err := r.pub.Write(ctx, producer.Record{Topic: r.names.Topic(topics.Receipts), Key: string(m.Key), Value: m.Value}); err != nil {
			t.Fatal(err)
		}
		r.start(t, func(d *Dispatcher) { d.reports.SweepEvery = time.Hour })
		d := waitStatus(t, r, "n-k", loa.StatusDelivered)
		if d.ProviderID != "esms-k" || d.Reason != "delivery report: SendStatus 5" || d.Recipient != "84912345610" {
			t.Errorf("ledger row %+v", d)
		}
	})
}

// ledgerWithReports returns a Dispatcher folding receipts into store and
// its Reports, recording through the ledger into out; both read the time
// from *now.
func ledgerWithReports(store *sqlstore.DB, out *keptRecords, now *time.Time) (*Dispatcher, *Reports) {
	rp := NewReports(store, out, topics.Names{Prefix: "t."}, quietLogger())
	rp.ViaLedger = true
	rp.SetClock(func() time.Time { return *now })
	return &Dispatcher{store: store, reports: rp, log: quietLogger(), now: func() time.Time { return *now }}, rp
}
