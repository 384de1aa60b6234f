package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/loa-hub/loa/accounts"
)

// SSOLink implements accounts.Store: the account an SSO identity (issuer,
// subject) is linked to, and the identity an account is linked to (by
// accountID when issuer and subject are empty), or ErrNotFound.
func (d *DB) SSOLink(ctx context.Context, issuer, subject, accountID string) (accounts.SSOLink, error) {
	var (
		l  accounts.SSOLink
		at timeValue
	)
	err := d.db.QueryRowContext(ctx, `SELECT issuer, subject, account_id, linked_at FROM sso_links
		WHERE (issuer = $1 AND subject = $2) OR ($1 = '' AND account_id = $3)`, issuer, subject, accountID).
		Scan(&l.Issuer, &l.Subject, &l.AccountID, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return accounts.SSOLink{}, fmt.Errorf("sqlstore: sso link: %w", accounts.ErrNotFound)
	}
	if err != nil {
		return accounts.SSOLink{}, fmt.Errorf("sqlstore: sso link: %w", err)
	}
	l.LinkedAt = at.t
	return l, nil
}

// LinkSSO implements accounts.Store: false when the identity or the
// account is linked already (to anything), so of two racing links one
// wins.
func (d *DB) LinkSSO(ctx context.Context, l accounts.SSOLink) (bool, error) {
	res, err := d.db.ExecContext(ctx, `INSERT INTO sso_links (issuer, subject, account_id, linked_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT DO NOTHING`, l.Issuer, l.Subject, l.AccountID, l.LinkedAt.UTC())
	if err != nil {
		return false, fmt.Errorf("sqlstore: link sso: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// UnlinkSSO implements accounts.Store: whether the account had a link.
func (d *DB) UnlinkSSO(ctx context.Context, accountID string) (bool, error) {
	res, err := d.db.ExecContext(ctx, `DELETE FROM sso_links WHERE account_id = $1`, accountID)
	if err != nil {
		return false, fmt.Errorf("sqlstore: unlink sso: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}
