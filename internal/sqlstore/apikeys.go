package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// APIKey is an integrating system's credential. Only a hash of the key is
// stored; the key itself is shown once, when it is created.
type APIKey struct {
	ID        string
	Name      string
	Hash      string // hex SHA-256 of the key
	Scopes    []string
	CreatedAt time.Time
	RevokedAt time.Time
}

// CreateAPIKey stores k.
func (d *DB) CreateAPIKey(ctx context.Context, k APIKey) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO api_keys (id, name, key_hash, scopes, created_at) VALUES ($1, $2, $3, $4, $5)`,
		k.ID, k.Name, k.Hash, strings.Join(k.Scopes, " "), k.CreatedAt.UTC())
	if err != nil {
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
		created timeValue
	)
	err := d.db.QueryRowContext(ctx, `SELECT id, name, key_hash, scopes, created_at FROM api_keys
		WHERE key_hash = $1 AND revoked_at IS NULL`, hash).Scan(&k.ID, &k.Name, &k.Hash, &scopes, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return APIKey{}, ErrNotFound
	}
	if err != nil {
		return APIKey{}, fmt.Errorf("sqlstore: api key: %w", err)
	}
	k.Scopes = strings.Fields(scopes)
	k.CreatedAt = created.t
	return k, nil
}
