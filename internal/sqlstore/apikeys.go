package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/loa-hub/loa/accounts"
)

// APIKey is an integrating system's credential. Only a hash of the key is
// stored; the key itself is shown once, when it is created.
type APIKey struct {
	ID     string
	Name   string
	Hash   string // hex SHA-256 of the key
	Scopes []string
	// Areas are the area codes the key may publish outage schedules for,
	// each with every unit below it. Empty: none (a key with
	// outages:write is refused until an operator sets them).
	Areas []string
	// AlertAreas are the area codes the key may alert without approval
	// (a pre-authorised scope, alerts:issue by default), each with every
	// unit below it. Empty: none (such a key's alerts are refused until
	// an operator sets them).
	AlertAreas []string
	CreatedAt  time.Time
	RevokedAt  time.Time
	// LastUsedAt is the key's last authenticated call: its newest audit
	// row, or what a purge of the audit log kept of it. Zero when never
	// used (within what the audit log remembers).
	LastUsedAt time.Time
}

// CreateAPIKey stores k.
func (d *DB) CreateAPIKey(ctx context.Context, k APIKey) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO api_keys (id, name, key_hash, scopes, areas, alert_areas, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		k.ID, k.Name, k.Hash, strings.Join(k.Scopes, " "), strings.Join(k.Areas, " "), strings.Join(k.AlertAreas, " "), k.CreatedAt.UTC())
	if err != nil {
		return fmt.Errorf("sqlstore: create api key: %w", err)
	}
	return nil
}

// CreateAPIKeyAudited stores k and appends e to the audit log in one
// transaction, so that no key exists without the record of its creation.
func (d *DB) CreateAPIKeyAudited(ctx context.Context, k APIKey, e accounts.AuditEntry) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: create api key: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO api_keys (id, name, key_hash, scopes, areas, alert_areas, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		k.ID, k.Name, k.Hash, strings.Join(k.Scopes, " "), strings.Join(k.Areas, " "), strings.Join(k.AlertAreas, " "), k.CreatedAt.UTC()); err != nil {
		return fmt.Errorf("sqlstore: create api key: %w", err)
	}
	if err := appendAudit(ctx, tx, e); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: create api key: %w", err)
	}
	return nil
}

// APIKeyByHash returns the unrevoked key with the given hash, or
// ErrNotFound.
func (d *DB) APIKeyByHash(ctx context.Context, hash string) (APIKey, error) {
	var (
		k       APIKey
		scopes  string
		areas   sql.NullString
		alert   sql.NullString
		created timeValue
	)
	err := d.db.QueryRowContext(ctx, `SELECT id, name, key_hash, scopes, areas, alert_areas, created_at FROM api_keys
		WHERE key_hash = $1 AND revoked_at IS NULL`, hash).Scan(&k.ID, &k.Name, &k.Hash, &scopes, &areas, &alert, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return APIKey{}, ErrNotFound
	}
	if err != nil {
		return APIKey{}, fmt.Errorf("sqlstore: api key: %w", err)
	}
	k.Scopes, k.Areas, k.AlertAreas = strings.Fields(scopes), strings.Fields(areas.String), strings.Fields(alert.String)
	k.CreatedAt = created.t
	return k, nil
}

// APIKeys lists every key, revoked ones too, oldest first, each with its
// last use. The last use is read from the audit log (one index look-up per
// key), so authenticating a request writes nothing beyond its audit row.
func (d *DB) APIKeys(ctx context.Context) ([]APIKey, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT k.id, k.name, k.scopes, k.areas, k.alert_areas, k.created_at, k.revoked_at, k.last_used_at,
			(SELECT max(a.at) FROM audit_log a WHERE a.actor = 'apikey:' || k.id)
		FROM api_keys k ORDER BY k.created_at, k.id`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: api keys: %w", err)
	}
	defer rows.Close()
	var out []APIKey
	for rows.Next() {
		var (
			k                               APIKey
			scopes                          string
			areas, alert                    sql.NullString
			created, revoked, kept, audited timeValue
		)
		if err := rows.Scan(&k.ID, &k.Name, &scopes, &areas, &alert, &created, &revoked, &kept, &audited); err != nil {
			return nil, fmt.Errorf("sqlstore: api keys: %w", err)
		}
		k.Scopes, k.Areas, k.AlertAreas = strings.Fields(scopes), strings.Fields(areas.String), strings.Fields(alert.String)
		k.CreatedAt, k.RevokedAt, k.LastUsedAt = created.t, revoked.t, kept.t
		if audited.t.After(k.LastUsedAt) {
			k.LastUsedAt = audited.t
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RevokeAPIKey revokes the key id at the given time. The key is refused
// from the next request on, on every replica: keys are looked up in the
// database on each request and cached nowhere. Revoking a revoked key
// changes nothing (its first revocation time stays) and reports
// revoked=false. Errors: ErrNotFound.
func (d *DB) RevokeAPIKey(ctx context.Context, id string, at time.Time) (revoked bool, err error) {
	res, err := d.db.ExecContext(ctx, `UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL`, id, at.UTC())
	if err != nil {
		return false, fmt.Errorf("sqlstore: revoke api key: %w", err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return true, nil
	}
	var one int
	err = d.db.QueryRowContext(ctx, `SELECT 1 FROM api_keys WHERE id = $1`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, ErrNotFound
	}
	if err != nil {
		return false, fmt.Errorf("sqlstore: revoke api key: %w", err)
	}
	return false, nil
}

// SetAPIKeyAreasAudited replaces the areas the key id may publish outage
// schedules for and appends e to the audit log in one transaction. Only
// operators call it (loa admin apikey areas): no API route changes a key,
// so a key cannot widen its own areas. Errors: ErrNotFound.
func (d *DB) SetAPIKeyAreasAudited(ctx context.Context, id string, areas []string, e accounts.AuditEntry) error {
	return d.setAPIKeyAreas(ctx, `UPDATE api_keys SET areas = $2 WHERE id = $1`, id, areas, e)
}

// SetAPIKeyAlertAreasAudited replaces the areas the key id may alert
// without approval, as SetAPIKeyAreasAudited does for outages (loa admin
// apikey alert-areas). Errors: ErrNotFound.
func (d *DB) SetAPIKeyAlertAreasAudited(ctx context.Context, id string, areas []string, e accounts.AuditEntry) error {
	return d.setAPIKeyAreas(ctx, `UPDATE api_keys SET alert_areas = $2 WHERE id = $1`, id, areas, e)
}

func (d *DB) setAPIKeyAreas(ctx context.Context, q, id string, areas []string, e accounts.AuditEntry) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: set api key areas: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, q, id, strings.Join(areas, " "))
	if err != nil {
		return fmt.Errorf("sqlstore: set api key areas: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	if err := appendAudit(ctx, tx, e); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: set api key areas: %w", err)
	}
	return nil
}
