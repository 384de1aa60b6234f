package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/loa-hub/loa/producer/alert"
)

// AckAlert records that an account acknowledged an alert chain (chain is
// the sender and chain key of the alert acknowledged; alertID the message
// of it that was). It reports whether this was the account's first
// acknowledgement of the chain; acknowledging again changes nothing.
func (d *DB) AckAlert(ctx context.Context, chain, accountID, alertID, via string, at time.Time) (bool, error) {
	res, err := d.db.ExecContext(ctx, `INSERT INTO alert_acks (chain, account_id, alert_id, via, at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (chain, account_id) DO NOTHING`, chain, accountID, alertID, via, at.UTC())
	if err != nil {
		return false, fmt.Errorf("sqlstore: ack alert: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// AlertAcks returns how many accounts acknowledged an alert chain.
func (d *DB) AlertAcks(ctx context.Context, chain string) (int64, error) {
	var n int64
	if err := d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM alert_acks WHERE chain = $1`, chain).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlstore: alert acks: %w", err)
	}
	return n, nil
}

// DeviceAccount returns the account of the active device with a token,
// or ErrNotFound.
func (d *DB) DeviceAccount(ctx context.Context, token string) (string, error) {
	var id string
	err := d.db.QueryRowContext(ctx, `SELECT d.account_id FROM devices d JOIN accounts a ON a.id = d.account_id
		WHERE d.token = $1 AND d.active AND a.status <> 'closed'`, token).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", notFoundAs(alert.ErrNotFound, "device")
	}
	if err != nil {
		return "", fmt.Errorf("sqlstore: device account: %w", err)
	}
	return id, nil
}
