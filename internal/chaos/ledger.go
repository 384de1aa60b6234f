package chaos

import (
	"context"

	"github.com/jackc/pgx/v5"
)

type deliveryRow struct{ notification, recipient, status, class string }

// queryDeliveries reads the ledger rows of notifications whose id is
// LIKE pattern on channel, straight from the run's PostgreSQL: the
// deliveries rows and the compact entries' sends (deliveries_sent, one
// row a receipt batch of first-attempt pushes), merged per address as
// the store's readers do — a row wins over the compact entry only when
// it ranks above sent (a carrier's report). An address in two compact
// entries (a push the provider accepted twice) is returned twice, for
// the check to see.
func (r *runner) queryDeliveries(ctx context.Context, pattern, channel string) ([]deliveryRow, error) {
	conn, err := pgx.Connect(ctx, r.dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT notification_id, recipient, status, class FROM deliveries WHERE notification_id LIKE $1 AND channel = $2`,
		pattern, channel)
	if err != nil {
		return nil, err
	}
	var out []deliveryRow
	at := map[[2]string]int{}
	for rows.Next() {
		var d deliveryRow
		if err := rows.Scan(&d.notification, &d.recipient, &d.status, &d.class); err != nil {
			return nil, err
		}
		at[[2]string{d.notification, d.recipient}] = len(out)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = conn.Query(ctx, `SELECT c.notification_id, u.recipient, c.class FROM deliveries_sent c CROSS JOIN LATERAL unnest(c.recipients) AS u(recipient)
		WHERE c.notification_id LIKE $1 AND c.channel = $2`, pattern, channel)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		d := deliveryRow{status: "sent"}
		if err := rows.Scan(&d.notification, &d.recipient, &d.class); err != nil {
			return nil, err
		}
		i, ok := at[[2]string{d.notification, d.recipient}]
		switch {
		case !ok:
			out = append(out, d)
		case out[i].status == "delivered" || out[i].status == "undelivered":
			// the carrier's report stands
		default:
			out[i] = d
			delete(at, [2]string{d.notification, d.recipient}) // a second entry for it shows as a repeat
		}
	}
	return out, rows.Err()
}

// inDoubtClass is the ledger's class of a code's or an alert's delivery
// whose send had begun when its dispatcher was killed: recorded failed,
// never sent again (dispatcher.ClassInDoubt).
const inDoubtClass = "in_doubt"

// inDoubt returns the recipients of notification id on channel that the
// ledger records in doubt.
func (r *runner) inDoubt(ctx context.Context, id, channel string) (map[string]bool, error) {
	rows, err := r.queryDeliveries(ctx, id, channel)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, d := range rows {
		if d.class == inDoubtClass {
			out[d.recipient] = true
		}
	}
	return out, nil
}
