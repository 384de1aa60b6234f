package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

// Reports turns providers' delivery reports (SMS gateways' callbacks,
// SMPP delivery receipts) into receipts of the deliveries they are about,
// found in the ledger by the provider's message id.
//
// A report often comes before the receipt of its send has been folded
// into the ledger — a gateway answers within milliseconds, the ledger
// writes in batches, and may be behind. Such a report is not dropped: it
// is held in the store and applied as soon as its delivery is recorded
// (the ledger matches held reports after each batch it writes, and a sweep
// every SweepEvery catches the rest). A report held longer than Hold is
// dropped with a warning: its delivery was never recorded (a report for
// another system's message, or a send whose receipt was lost).
//
// Safe for concurrent use.
type Reports struct {
	store *sqlstore.DB
	pub   recordWriter
	names topics.Names
	log   *slog.Logger
	now   func() time.Time
	// Hold bounds how long a report waits for its delivery. Default 24h.
	Hold time.Duration
	// SweepEvery is how often Run matches and expires held reports.
	// Default one minute.
	SweepEvery time.Duration
	// ViaLedger makes Record write each report to loa.receipts for the
	// ledger to apply (see Record), instead of looking its delivery up
	// and holding it here.
	ViaLedger bool

	q reportQueue
	// queued, for tests, is called when a report queues behind a group
	// being recorded.
	queued func()
}

// NewReports returns Reports recording into store and publishing receipts
// to names' receipts topic through pub.
func NewReports(store *sqlstore.DB, pub recordWriter, names topics.Names, log *slog.Logger) *Reports {
	return &Reports{store: store, pub: pub, names: names, log: log, now: time.Now, Hold: 24 * time.Hour, SweepEvery: time.Minute}
}

// SetClock makes r read the time from now (tests).
func (r *Reports) SetClock(now func() time.Time) { r.now = now }

// DeliveryReport is a carrier's word on one message (producer.DeliveryReport).
type DeliveryReport = producer.DeliveryReport

// Record takes one final report from HTTP gateways' callbacks or SMPP
// receipts alike. It publishes the receipt of the delivery the report
// names and reports matched, or holds the report until the delivery is
// recorded and reports not matched. An error means the report was
// neither applied nor held: the provider should offer it again.
//
// Reports that arrive while others are being recorded are recorded
// together, group-commit style: a gateway reports every SMS, and one
// look-up, hold and receipt write per report would cost the database and
// Kafka more than the send did. Record returns when its own report is
// recorded, whatever its ctx does meanwhile.
//
// With ViaLedger, Record writes the report to loa.receipts and returns
// not matched once Kafka has it (acks=all, as every receipt): the ledger,
// which folds the send's receipt too, applies it — usually in the very
// transaction that records the send, or else after looking the send up —
// and holds it only if the send is nowhere yet. A gateway that reports
// within milliseconds of accepting a message is ahead of the ledger
// nearly every time; looked up and held here, each report was a row
// written and deleted again and a second write of its delivery's row.
func (r *Reports) Record(ctx context.Context, rep DeliveryReport) (matched bool, err error) {
	if rep.Status != loa.StatusDelivered && rep.Status != loa.StatusUndelivered {
		return false, fmt.Errorf("dispatcher: delivery report status %q", rep.Status)
	}
	if rep.ProviderID == "" {
		return false, errors.New("dispatcher: a delivery report without the provider's message id")
	}
	if r.ViaLedger {
		rec := producer.Record{Topic: r.names.Topic(topics.Receipts), Key: rep.Provider + "/" + rep.ProviderID,
			Value: producer.EncodeReport(rep, r.now())}
		if err := r.pub.Write(ctx, rec); err != nil {
			return false, fmt.Errorf("dispatcher: publish a delivery report: %w", err)
		}
		return false, nil
	}
	q := queuedReport{rep: rep, done: make(chan reportResult, 1)}
	r.q.mu.Lock()
	r.q.pending = append(r.q.pending, q)
	if r.q.writing {
		r.q.mu.Unlock()
		if r.queued != nil {
			r.queued()
		}
		res := <-q.done
		if !res.lead {
			return res.matched, res.err
		}
		r.q.mu.Lock()
	}
	// This caller records what has queued, its own report with it, then
	// hands the turn to the first report that queued meanwhile, so that
	// no caller records for others indefinitely.
	r.q.writing = true
	batch := r.q.pending
	r.q.pending = nil
	r.q.mu.Unlock()
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	r.recordBatch(wctx, batch)
	cancel()
	r.q.mu.Lock()
	if len(r.q.pending) > 0 {
		r.q.pending[0].done <- reportResult{lead: true}
	} else {
		r.q.writing = false
	}
	r.q.mu.Unlock()
	res := <-q.done
	return res.matched, res.err
}

// recordTimeout bounds the recording of one group of reports.
const recordTimeout = 10 * time.Second

// reportQueue holds the reports that wait for the group being recorded.
type reportQueue struct {
	mu      sync.Mutex
	pending []queuedReport
	writing bool // a caller is recording a group
}

type queuedReport struct {
	rep  DeliveryReport
	done chan reportResult // one result at a time: a turn, then the outcome
}

// reportResult is a queued report's outcome, or (lead) the turn to
// record the group that queued.
type reportResult struct {
	matched bool
	err     error
	lead    bool
}

// recordBatch records reports as Record does one, with a statement for
// each step whatever their number, and sends each its outcome.
func (r *Reports) recordBatch(ctx context.Context, batch []queuedReport) {
	byProvider := map[string][]queuedReport{}
	for _, q := range batch {
		byProvider[q.rep.Provider] = append(byProvider[q.rep.Provider], q)
	}
	for provider, qs := range byProvider {
		for i, res := range r.recordProvider(ctx, provider, qs) {
			qs[i].done <- res
		}
	}
}

// recordProvider records the reports qs of one provider and returns
// their outcomes, in order.
func (r *Reports) recordProvider(ctx context.Context, provider string, qs []queuedReport) []reportResult {
	out := make([]reportResult, len(qs))
	fail := func(idx []int, err error) {
		for _, i := range idx {
			out[i].err = err
		}
	}
	all := make([]int, len(qs))
	ids := make([]string, len(qs))
	for i, q := range qs {
		all[i], ids[i] = i, q.rep.ProviderID
	}
	found, err := r.store.DeliveriesByProviderIDs(ctx, provider, ids)
	if err != nil {
		fail(all, err)
		return out
	}
	var (
		matched     []sqlstore.MatchedReport
		matchedIdx  []int
		held        []sqlstore.HeldReport
		heldIdx     []int
		receivedAt  time.Time
		clockIsRead bool
	)
	for i, q := range qs {
		rep := sqlstore.HeldReport{Provider: provider, ProviderID: q.rep.ProviderID, Status: q.rep.Status, Reason: q.rep.Reason}
		if d, ok := found[q.rep.ProviderID]; ok {
			matched, matchedIdx = append(matched, sqlstore.MatchedReport{Delivery: d, Report: rep}), append(matchedIdx, i)
			continue
		}
		if !clockIsRead {
			receivedAt, clockIsRead = r.now(), true
		}
		rep.ReceivedAt = receivedAt
		held, heldIdx = append(held, rep), append(heldIdx, i)
	}
	if err := r.publish(ctx, matched); err != nil {
		fail(matchedIdx, err)
	} else {
		for _, i := range matchedIdx {
			out[i].matched = true
		}
	}
	if len(held) == 0 {
		return out
	}
	if err := r.store.HoldReports(ctx, held); err != nil {
		fail(heldIdx, err)
		return out
	}
	// A delivery may have been recorded between the look-up and the
	// hold, and the ledger's match run before the hold: look once more,
	// for these reports' deliveries only (what a report costs must not
	// grow with how many others are held).
	heldIDs := make([]string, len(held))
	for j, h := range held {
		heldIDs[j] = h.ProviderID
	}
	found, err = r.store.DeliveriesByProviderIDs(ctx, provider, heldIDs)
	if err != nil {
		r.log.Warn("looking again for held delivery reports' deliveries failed; the ledger or the sweep will", slog.Any("error", err))
		return out
	}
	var late []sqlstore.MatchedReport
	var lateIdx []int
	for j, h := range held {
		if d, ok := found[h.ProviderID]; ok {
			late, lateIdx = append(late, sqlstore.MatchedReport{Delivery: d, Report: h}), append(lateIdx, heldIdx[j])
		}
	}
	if err := r.apply(ctx, late); err != nil {
		r.log.Warn("applying held delivery reports failed; the sweep will", slog.Any("error", err))
		return out
	}
	for _, i := range lateIdx {
		out[i].matched = true
	}
	return out
}

// Match applies the held reports whose deliveries are now in the ledger
// and returns how many it applied.
func (r *Reports) Match(ctx context.Context) (int, error) {
	applied, err := r.match(ctx)
	return len(applied), err
}

func (r *Reports) match(ctx context.Context) ([]sqlstore.MatchedReport, error) {
	var applied []sqlstore.MatchedReport
	for {
		ms, err := r.store.MatchedHeldReports(ctx, 500)
		if err != nil || len(ms) == 0 {
			return applied, err
		}
		if err := r.apply(ctx, ms); err != nil {
			return applied, err
		}
		applied = append(applied, ms...)
		if len(ms) < 500 {
			return applied, nil
		}
	}
}

// MatchSent applies the held reports about the given message ids of each
// provider (provider → ids), the sends a ledger batch has just recorded,
// and returns how many it applied. Reports about other sends wait for
// their own batch or the sweep.
func (r *Reports) MatchSent(ctx context.Context, sent map[string][]string) (int, error) {
	n := 0
	for provider, ids := range sent {
		ms, err := r.store.MatchedHeldReportsFor(ctx, provider, ids)
		if err != nil {
			return n, err
		}
		if err := r.apply(ctx, ms); err != nil {
			return n, err
		}
		n += len(ms)
	}
	return n, nil
}

// apply publishes the receipts of ms, then deletes their held reports.
func (r *Reports) apply(ctx context.Context, ms []sqlstore.MatchedReport) error {
	if len(ms) == 0 {
		return nil
	}
	if err := r.publish(ctx, ms); err != nil {
		return err
	}
	held := make([]sqlstore.HeldReport, len(ms))
	for i, m := range ms {
		held[i] = m.Report
	}
	return r.store.DeleteHeldReports(ctx, held)
}

// Sweep applies what it can and drops the reports held longer than Hold.
func (r *Reports) Sweep(ctx context.Context) error {
	if _, err := r.Match(ctx); err != nil {
		return err
	}
	n, err := r.store.DropHeldReports(ctx, r.now().Add(-r.Hold))
	if err != nil {
		return err
	}
	if n > 0 {
		r.log.Warn("delivery reports dropped: their deliveries were never recorded", slog.Int64("reports", n),
			slog.Duration("held_for", r.Hold))
	}
	return nil
}

// Run sweeps every SweepEvery until ctx ends.
func (r *Reports) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(r.SweepEvery):
		}
		if err := r.Sweep(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("sweeping held delivery reports failed", slog.Any("error", err))
		}
	}
}

// publish publishes the receipts of reports, keyed by their notifications
// like every other receipt of them, so the ledger folds them in order. The
// ledger's precedence makes a repeated report harmless.
func (r *Reports) publish(ctx context.Context, ms []sqlstore.MatchedReport) error {
	if len(ms) == 0 {
		return nil
	}
	ids := make([]string, 0, len(ms))
	for _, m := range ms {
		ids = append(ids, m.Delivery.NotificationID)
	}
	// A direct notification's event carries its id; other deliveries
	// (codes, broadcasts) have no row there, and their receipts no kind.
	kinds, err := r.store.NotificationKinds(ctx, ids)
	if err != nil {
		r.log.Warn("looking up the notifications of delivery reports failed; their receipts name no kind", slog.Any("error", err))
	}
	recs := make([]producer.Record, 0, len(ms))
	for _, m := range ms {
		d := m.Delivery
		rc := producer.Receipt{
			NotificationID: d.NotificationID, Channel: d.Channel, Recipient: d.Recipient, Status: m.Report.Status,
			Provider: d.Provider, ProviderID: d.ProviderID, Reason: m.Report.Reason, Targets: d.Targets, Attempts: d.Attempts,
			At: r.now().UTC(),
		}
		if k, ok := kinds[d.NotificationID]; ok {
			rc.EventID, rc.Kind, rc.Lane = d.NotificationID, k.Kind, k.Lane
		}
		recs = append(recs, receiptRecordIn(r.names, rc))
	}
	if err := r.pub.Write(ctx, recs...); err != nil {
		return fmt.Errorf("dispatcher: publish delivery reports: %w", err)
	}
	return nil
}
