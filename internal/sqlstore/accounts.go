package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Contact is what the dispatcher needs to reach an account: its phone, its
// e-mail and the tokens of its active devices.
type Contact struct {
	AccountID string
	Phone     string
	Email     string
	Tokens    []string
}

// AccountExists reports whether an account with the id exists and is not
// closed.
func (d *DB) AccountExists(ctx context.Context, id string) (bool, error) {
	var n int
	err := d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM accounts WHERE id = $1 AND status <> 'closed'`, id).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("sqlstore: account exists: %w", err)
	}
	return n > 0, nil
}

// Contact returns how to reach an account, or ErrNotFound. With app set,
// only the tokens of that app's devices are returned.
func (d *DB) Contact(ctx context.Context, accountID, app string) (Contact, error) {
	var (
		c            Contact
		phone, email sql.NullString
	)
	err := d.db.QueryRowContext(ctx, `SELECT id, phone, email FROM accounts WHERE id = $1 AND status <> 'closed'`, accountID).
		Scan(&c.AccountID, &phone, &email)
	if errors.Is(err, sql.ErrNoRows) {
		return Contact{}, ErrNotFound
	}
	if err != nil {
		return Contact{}, fmt.Errorf("sqlstore: contact: %w", err)
	}
	c.Phone, c.Email = phone.String, email.String
	rows, err := d.db.QueryContext(ctx, `SELECT token FROM devices WHERE account_id = $1 AND active AND ($2 = '' OR app = $2)
		ORDER BY created_at, id`, accountID, app)
	if err != nil {
		return Contact{}, fmt.Errorf("sqlstore: contact: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return Contact{}, fmt.Errorf("sqlstore: contact: %w", err)
		}
		c.Tokens = append(c.Tokens, t)
	}
	return c, rows.Err()
}

// SeedAccount inserts an account with optional devices. It exists for
// dev-mode demo data and tests; the accounts domain owns registration.
func (d *DB) SeedAccount(ctx context.Context, id, kind, phone, email string, tokens []string, now time.Time) error {
	return d.SeedAccountApp(ctx, id, kind, phone, email, "smart", tokens, now)
}

// SeedAccountApp is SeedAccount with the devices' app named.
func (d *DB) SeedAccountApp(ctx context.Context, id, kind, phone, email, app string, tokens []string, now time.Time) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: seed account: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO accounts (id, kind, status, phone, email, created_at) VALUES ($1, $2, 'active', $3, $4, $5)`,
		id, kind, nullIfEmpty(phone), nullIfEmpty(email), now.UTC()); err != nil {
		return fmt.Errorf("sqlstore: seed account: %w", err)
	}
	for i, t := range tokens {
		if _, err := tx.ExecContext(ctx, `INSERT INTO devices (id, account_id, token, app, platform, active, created_at) VALUES ($1, $2, $3, $4, 'android', TRUE, $5)`,
			fmt.Sprintf("%s-d%d", id, i), id, t, app, now.UTC()); err != nil {
			return fmt.Errorf("sqlstore: seed account: %w", err)
		}
	}
	return tx.Commit()
}

// DeactivateDevice marks the device with the token inactive, so nothing
// is sent to it again. It is idempotent.
func (d *DB) DeactivateDevice(ctx context.Context, token string) error {
	if _, err := d.db.ExecContext(ctx, `UPDATE devices SET active = FALSE WHERE token = $1`, token); err != nil {
		return fmt.Errorf("sqlstore: deactivate device: %w", err)
	}
	return nil
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
