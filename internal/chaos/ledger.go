package chaos

import (
	"context"

	"github.com/jackc/pgx/v5"
)

type deliveryRow struct{ notification, recipient, status string }

// queryDeliveries reads the ledger rows of notifications whose id is
// LIKE pattern on channel, straight from the run's PostgreSQL.
func (r *runner) queryDeliveries(ctx context.Context, pattern, channel string) ([]deliveryRow, error) {
	conn, err := pgx.Connect(ctx, r.dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT notification_id, recipient, status FROM deliveries WHERE notification_id LIKE $1 AND channel = $2`,
		pattern, channel)
	if err != nil {
		return nil, err
	}
	var out []deliveryRow
	for rows.Next() {
		var d deliveryRow
		if err := rows.Scan(&d.notification, &d.recipient, &d.status); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}
