package chaos

import (
	"context"

	"github.com/jackc/pgx/v5"
)

type deliveryRow struct{ notification, recipient, status, class string }

// queryDeliveries reads the ledger rows of notifications whose id is
// LIKE pattern on channel, straight from the run's PostgreSQL.
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
	for rows.Next() {
		var d deliveryRow
		if err := rows.Scan(&d.notification, &d.recipient, &d.status, &d.class); err != nil {
			return nil, err
		}
		out = append(out, d)
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
