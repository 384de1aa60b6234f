package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

// DefaultReportMatchWait bounds how long a delivery report waits for its
// delivery to reach the ledger: carriers report within milliseconds of
// accepting a message, often before the receipt of the send is folded in.
const DefaultReportMatchWait = 3 * time.Second

// DeliveryReport is a carrier's word on one message: the provider
// instance that accepted it, the provider's id for it, and a final status.
type DeliveryReport struct {
	// Provider is the provider instance's configured name, as the ledger
	// records it ("esms", "vms-smpp").
	Provider string
	// ProviderID is the provider's message id, as the send returned it.
	ProviderID string
	// Status is loa.StatusDelivered or loa.StatusUndelivered.
	Status loa.Status
	// Reason is what the provider said, for the ledger.
	Reason string
}

// reportStore is what recording delivery reports reads.
type reportStore interface {
	DeliveryByProviderID(ctx context.Context, provider, providerID string) (sqlstore.Delivery, error)
	Notification(ctx context.Context, id string) (sqlstore.Notification, error)
}

// Reports records delivery reports, from HTTP gateways' callbacks and
// SMPP receipts alike: it finds the delivery a report names by the
// provider's message id and publishes a receipt that the ledger folds in.
// It is safe for concurrent use.
type Reports struct {
	store     reportStore
	w         recordWriter
	topic     string
	matchWait time.Duration
	now       func() time.Time
}

// NewReports returns Reports publishing to names' receipts topic.
// matchWait ≤ 0 means DefaultReportMatchWait.
func NewReports(store reportStore, w recordWriter, names topics.Names, matchWait time.Duration) *Reports {
	if matchWait <= 0 {
		matchWait = DefaultReportMatchWait
	}
	return &Reports{store: store, w: w, topic: names.Topic(topics.Receipts), matchWait: matchWait, now: time.Now}
}

// Lookup returns the ledger row of the delivery a report names, looking
// again for up to the match wait while it is not in the ledger yet. It
// returns an error wrapping sqlstore.ErrNotFound when there is none.
func (r *Reports) Lookup(ctx context.Context, provider, providerID string) (sqlstore.Delivery, error) {
	deadline := time.Now().Add(r.matchWait)
	pause := 20 * time.Millisecond
	for {
		d, err := r.store.DeliveryByProviderID(ctx, provider, providerID)
		if !errors.Is(err, sqlstore.ErrNotFound) || !time.Now().Add(pause).Before(deadline) {
			return d, err
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return sqlstore.Delivery{}, err
		case <-t.C:
		}
		pause = min(2*pause, 500*time.Millisecond)
	}
}

// Record finds the delivery rep names (see Lookup) and publishes its
// receipt, keyed by the notification like every other receipt of it, so
// the ledger folds them in order; the ledger's precedence makes a
// repeated report harmless. It returns the delivery, an error wrapping
// sqlstore.ErrNotFound when no delivery has the id, or the store's or
// Kafka's error, after which the report should be offered again.
func (r *Reports) Record(ctx context.Context, rep DeliveryReport) (sqlstore.Delivery, error) {
	if rep.Status != loa.StatusDelivered && rep.Status != loa.StatusUndelivered {
		return sqlstore.Delivery{}, fmt.Errorf("dispatcher: delivery report status %q", rep.Status)
	}
	d, err := r.Lookup(ctx, rep.Provider, rep.ProviderID)
	if err != nil {
		return sqlstore.Delivery{}, err
	}
	rc := Receipt{
		NotificationID: d.NotificationID, Channel: d.Channel, Recipient: d.Recipient, Status: rep.Status,
		Provider: d.Provider, ProviderID: d.ProviderID, Reason: rep.Reason, Targets: d.Targets, Attempts: d.Attempts,
		At: r.now().UTC(),
	}
	if n, err := r.store.Notification(ctx, d.NotificationID); err == nil {
		// A direct notification's event carries its id.
		rc.EventID, rc.Kind, rc.Lane = n.ID, n.Kind, n.Lane
	}
	b, err := json.Marshal(rc)
	if err != nil {
		return sqlstore.Delivery{}, err
	}
	if err := r.w.Write(ctx, producer.Record{Topic: r.topic, Key: d.NotificationID, Value: b}); err != nil {
		return sqlstore.Delivery{}, fmt.Errorf("dispatcher: publish delivery report: %w", err)
	}
	return d, nil
}
