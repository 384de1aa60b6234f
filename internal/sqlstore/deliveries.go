package sqlstore

import (
	"context"
	"fmt"
	"time"
)

// Delivery is one row of the delivery ledger: the latest outcome of one
// notification on one channel to one recipient.
type Delivery struct {
	NotificationID string
	Channel        string
	Recipient      string
	Status         string // sent | delivered | undelivered | failed | retrying | expired | token_dead | skipped
	Class          string
	Provider       string
	ProviderID     string
	Reason         string
	// Targets is how many recipients the notification had on this
	// channel when it was dispatched, so a reader knows when the channel
	// is complete.
	Targets   int
	Attempts  int
	UpdatedAt time.Time
}

// RecordDelivery folds one outcome into the ledger, keeping the best-known
// state of the delivery. It is idempotent: the same receipt applied twice
// leaves the same row. States rank
//
//	delivered > undelivered > sent > anything else (retrying, failed, expired, …)
//
// A carrier's report (delivered, undelivered) overrides sent; sent
// overrides the transient states; a row at sent or above changes only to
// a higher rank, so nothing downgrades delivered and a late failure
// report never hides that the person has the message. Among the lower
// states the latest receipt wins. A receipt without a provider (a
// redelivery that found the delivery already sent) keeps the row's
// provider and provider id, which delivery reports are matched by.
func (d *DB) RecordDelivery(ctx context.Context, r Delivery) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO deliveries
		(notification_id, channel, recipient, status, class, provider, provider_id, reason, targets, attempts, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (notification_id, channel, recipient) DO UPDATE SET
			status = excluded.status, class = excluded.class,
			provider = CASE WHEN excluded.provider = '' THEN deliveries.provider ELSE excluded.provider END,
			provider_id = CASE WHEN excluded.provider = '' THEN deliveries.provider_id ELSE excluded.provider_id END,
			reason = excluded.reason, targets = excluded.targets,
			attempts = CASE WHEN excluded.attempts > deliveries.attempts THEN excluded.attempts ELSE deliveries.attempts END,
			updated_at = excluded.updated_at
		WHERE `+statusRank("deliveries.status")+` = 0 OR `+statusRank("excluded.status")+` > `+statusRank("deliveries.status"),
		r.NotificationID, r.Channel, r.Recipient, r.Status, r.Class, r.Provider, r.ProviderID, r.Reason,
		r.Targets, r.Attempts, r.UpdatedAt.UTC())
	if err != nil {
		return fmt.Errorf("sqlstore: record delivery: %w", err)
	}
	return nil
}

// statusRank is the SQL rank of a delivery status held in column, for
// RecordDelivery's precedence.
func statusRank(column string) string {
	return `(CASE ` + column + ` WHEN 'delivered' THEN 3 WHEN 'undelivered' THEN 2 WHEN 'sent' THEN 1 ELSE 0 END)`
}

// Deliveries returns the ledger rows of one notification ordered by
// channel and recipient.
func (d *DB) Deliveries(ctx context.Context, notificationID string) ([]Delivery, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT notification_id, channel, recipient, status, class, provider,
		provider_id, reason, targets, attempts, updated_at
		FROM deliveries WHERE notification_id = $1 ORDER BY channel, recipient`, notificationID)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: deliveries: %w", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var (
			r  Delivery
			at timeValue
		)
		if err := rows.Scan(&r.NotificationID, &r.Channel, &r.Recipient, &r.Status, &r.Class, &r.Provider,
			&r.ProviderID, &r.Reason, &r.Targets, &r.Attempts, &at); err != nil {
			return nil, fmt.Errorf("sqlstore: deliveries: %w", err)
		}
		r.UpdatedAt = at.t
		out = append(out, r)
	}
	return out, rows.Err()
}
