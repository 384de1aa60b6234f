package sqlstore

import (
	"context"
	"fmt"
	"strings"

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

// DeliveriesByProviderIDs is DeliveryByProviderID for many of provider's
// message ids in one statement (one per 500 ids on SQLite): the latest
// ledger row of each id that has one, by id. Ids without a row are
// missing from the map.
func (d *DB) DeliveriesByProviderIDs(ctx context.Context, provider string, ids []string) (map[string]producer.Delivery, error) {
	out := make(map[string]producer.Delivery, len(ids))
	// Latest first within each id (see DeliveryByProviderID for the last
	// two conditions).
	const where = ` AND provider_id <> '' AND channel <> 'push' ORDER BY provider_id, updated_at DESC`
	err := d.eachIDs(ids, 2, func(in string, args []any) error {
		rs, err := d.queryDeliveries(ctx, selectDelivery+` WHERE provider = $1 AND provider_id `+in+where, append([]any{provider}, args...)...)
		if err != nil {
			return err
		}
		for _, r := range rs {
			if _, seen := out[r.ProviderID]; !seen {
				out[r.ProviderID] = r
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlstore: deliveries by provider ids: %w", err)
	}
	return out, nil
}

// idsPerStatement bounds the ids of one SQLite statement (it has no
// array parameters).
const idsPerStatement = 500

// eachIDs calls query with a condition matching ids whose placeholders
// start at $from, and its arguments: "= ANY($from::text[])" and the ids
// as one array on PostgreSQL; on SQLite "IN ($from, …)" for at most
// idsPerStatement of them at a time. Nothing is called for no ids.
func (d *DB) eachIDs(ids []string, from int, query func(in string, args []any) error) error {
	if len(ids) == 0 {
		return nil
	}
	if d.dialect == Postgres {
		return query(fmt.Sprintf(`= ANY($%d::text[])`, from), []any{ids})
	}
	for start := 0; start < len(ids); start += idsPerStatement {
		chunk := ids[start:min(start+idsPerStatement, len(ids))]
		args := make([]any, len(chunk))
		ph := make([]string, len(chunk))
		for i, id := range chunk {
			args[i] = id
			ph[i] = fmt.Sprintf("$%d", from+i)
		}
		if err := query(`IN (`+strings.Join(ph, ", ")+`)`, args); err != nil {
			return err
		}
	}
	return nil
}
