package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
func (r *Reports) Record(ctx context.Context, rep DeliveryReport) (matched bool, err error) {
	provider, providerID, status, reason := rep.Provider, rep.ProviderID, rep.Status, rep.Reason
	if status != loa.StatusDelivered && status != loa.StatusUndelivered {
		return false, fmt.Errorf("dispatcher: delivery report status %q", status)
	}
	if providerID == "" {
		return false, errors.New("dispatcher: a delivery report without the provider's message id")
	}
	d, err := r.store.DeliveryByProviderID(ctx, provider, providerID)
	if err == nil {
		return true, r.publish(ctx, []sqlstore.MatchedReport{{Delivery: d,
			Report: sqlstore.HeldReport{Provider: provider, ProviderID: providerID, Status: status, Reason: reason}}})
	}
	if !errors.Is(err, sqlstore.ErrNotFound) {
		return false, err
	}
	held := sqlstore.HeldReport{Provider: provider, ProviderID: providerID, Status: status, Reason: reason, ReceivedAt: r.now()}
	if err := r.store.HoldReport(ctx, held); err != nil {
		return false, err
	}
	// The delivery may have been recorded between the look-up and the
	// hold, and the ledger's match run before the hold: look once more,
	// for this report's delivery only (what one report costs must not
	// grow with how many others are held).
	d, err = r.store.DeliveryByProviderID(ctx, provider, providerID)
	if err != nil {
		if !errors.Is(err, sqlstore.ErrNotFound) {
			r.log.Warn("looking again for a held delivery report's delivery failed; the ledger or the sweep will", slog.Any("error", err))
		}
		return false, nil
	}
	if err := r.apply(ctx, []sqlstore.MatchedReport{{Delivery: d, Report: held}}); err != nil {
		r.log.Warn("applying a held delivery report failed; the sweep will", slog.Any("error", err))
		return false, nil
	}
	return true, nil
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
	recs := make([]producer.Record, 0, len(ms))
	for _, m := range ms {
		d := m.Delivery
		rc := producer.Receipt{
			NotificationID: d.NotificationID, Channel: d.Channel, Recipient: d.Recipient, Status: m.Report.Status,
			Provider: d.Provider, ProviderID: d.ProviderID, Reason: m.Report.Reason, Targets: d.Targets, Attempts: d.Attempts,
			At: r.now().UTC(),
		}
		if n, err := r.store.Notification(ctx, d.NotificationID); err == nil {
			// A direct notification's event carries its id.
			rc.EventID, rc.Kind, rc.Lane = n.ID, n.Kind, n.Lane
		}
		recs = append(recs, receiptRecordIn(r.names, rc))
	}
	if err := r.pub.Write(ctx, recs...); err != nil {
		return fmt.Errorf("dispatcher: publish delivery reports: %w", err)
	}
	return nil
}
