package sqlstore

import (
	"context"
	"fmt"

	"github.com/loa-hub/loa/producer"
)

// DeliveryByProviderID returns the ledger row of the delivery that the
// provider instance (its configured name, such as "esms") accepted under
// providerID, the gateway's message id. When several rows carry the id
// the most recently updated one is returned. It returns ErrNotFound when
// no row has it, including for an empty providerID.
//
// A delivery report can arrive before the receipt of the send has been
// folded into the ledger; callers that must not lose a report look again
// a little later.
func (d *DB) DeliveryByProviderID(ctx context.Context, provider, providerID string) (producer.Delivery, error) {
	if providerID == "" {
		return producer.Delivery{}, fmt.Errorf("sqlstore: delivery by provider id: %w", ErrNotFound)
	}
	// The two last conditions let both engines use the partial index
	// deliveries_report_id (push rows get no reports and are not in it).
	rs, err := d.queryDeliveries(ctx, selectDelivery+` WHERE provider = $1 AND provider_id = $2 AND provider_id <> '' AND channel <> 'push'
		ORDER BY updated_at DESC LIMIT 1`, provider, providerID)
	if err != nil {
		return producer.Delivery{}, fmt.Errorf("sqlstore: delivery by provider id: %w", err)
	}
	if len(rs) == 0 {
		return producer.Delivery{}, fmt.Errorf("sqlstore: delivery by provider id: %w", ErrNotFound)
	}
	return rs[0], nil
}
