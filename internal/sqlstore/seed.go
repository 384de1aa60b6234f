package sqlstore

import (
	"context"
	"fmt"
	"time"
)

// SeedAudience inserts n verified citizen accounts, each with one active
// device of app and a subscription to area, in one statement: ids
// "<prefix>-acc-0000001"…, tokens "<prefix>-tok-0000001"…, phones
// 849<8 digits from base>. It exists for demo data, tests and benchmarks
// (a million devices in seconds, not one insert per row). The area must
// exist.
func (d *DB) SeedAudience(ctx context.Context, prefix string, n, phoneBase int, app, area string, now time.Time) error {
	series := `WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $1) SELECT i FROM s`
	pad := `substr('0000000' || s.i, -7, 7)`
	phone := `'849' || substr('00000000' || (s.i + $3), -8, 8)`
	if d.dialect == Postgres {
		series = `SELECT i FROM generate_series(1, $1::int) AS s(i)`
		pad = `lpad(s.i::text, 7, '0')`
		phone = `'849' || lpad((s.i + $3::int)::text, 8, '0')`
	}
	stmts := []struct {
		q    string
		args []any
	}{
		{`INSERT INTO accounts (id, kind, status, phone, created_at, phone_verified_at)
		 SELECT $2 || '-acc-' || ` + pad + `, 'citizen', 'active', ` + phone + `, $4, $4 FROM (` + series + `) AS s`,
			[]any{n, prefix, phoneBase, now.UTC()}},
		{`INSERT INTO devices (id, account_id, token, app, platform, active, created_at)
		 SELECT $2 || '-dev-' || ` + pad + `, $2 || '-acc-' || ` + pad + `, $2 || '-tok-' || ` + pad + `, $3, 'android', TRUE, $4
		 FROM (` + series + `) AS s`,
			[]any{n, prefix, app, now.UTC()}},
		{`INSERT INTO subscription_areas (account_id, area_code)
		 SELECT $2 || '-acc-' || ` + pad + `, $3 FROM (` + series + `) AS s`,
			[]any{n, prefix, area}},
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: seed audience: %w", err)
	}
	defer tx.Rollback()
	for _, st := range stmts {
		if _, err := tx.ExecContext(ctx, st.q, st.args...); err != nil {
			return fmt.Errorf("sqlstore: seed audience: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: seed audience: %w", err)
	}
	// Refresh the statistics now rather than when autovacuum gets to it:
	// planned on an empty table's statistics, each page of an audience
	// query sorts everything after its key (450 ms a page in the middle
	// of 100,000 devices, against 3 ms).
	for _, table := range []string{"accounts", "devices", "subscription_areas"} {
		if _, err := d.db.ExecContext(ctx, `ANALYZE `+table); err != nil {
			return fmt.Errorf("sqlstore: seed audience: analyze: %w", err)
		}
	}
	return nil
}
