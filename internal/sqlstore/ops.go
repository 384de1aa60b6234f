package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// DeadLetterBacklog counts the dead letters not yet replayed and returns
// when the oldest of them arrived (zero when there is none).
func (d *DB) DeadLetterBacklog(ctx context.Context) (int64, time.Time, error) {
	var (
		n      int64
		oldest timeValue
	)
	if err := d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM dead_letters WHERE replayed_at IS NULL`).Scan(&n); err != nil {
		return 0, time.Time{}, fmt.Errorf("sqlstore: dead-letter backlog: %w", err)
	}
	if n == 0 {
		return 0, time.Time{}, nil
	}
	// A column, not MIN(at): SQLite's aggregate loses the column's type.
	err := d.db.QueryRowContext(ctx, `SELECT at FROM dead_letters WHERE replayed_at IS NULL ORDER BY at LIMIT 1`).Scan(&oldest)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, time.Time{}, fmt.Errorf("sqlstore: dead-letter backlog: %w", err)
	}
	return n, oldest.t, nil
}

// ScheduledBacklog counts the pending scheduled items due at now, and of
// them those due before now − grace (overdue: a poller should have
// published them by then).
func (d *DB) ScheduledBacklog(ctx context.Context, now time.Time, grace time.Duration) (due, overdue int64, err error) {
	var a, b sql.NullInt64
	err = d.db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN due_at <= $2 THEN 1 ELSE 0 END), 0)
		FROM scheduled_items WHERE status = 'pending' AND due_at <= $1`, now.UTC(), now.Add(-grace).UTC()).Scan(&a, &b)
	if err != nil {
		return 0, 0, fmt.Errorf("sqlstore: scheduled backlog: %w", err)
	}
	return a.Int64, b.Int64, nil
}

// PendingItem is a scheduled item waiting for its time, as operators see
// it (the envelope is left out).
type PendingItem struct {
	ID        string
	Kind      string
	Subject   string
	DueAt     time.Time
	CreatedAt time.Time
	Attempts  int
	LastError string
}

// PendingScheduled lists up to limit pending scheduled items due before
// until, soonest first (overdue ones first of all).
func (d *DB) PendingScheduled(ctx context.Context, until time.Time, limit int) ([]PendingItem, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT id, kind, subject, due_at, created_at, attempts, last_error
		FROM scheduled_items WHERE status = 'pending' AND due_at <= $1 ORDER BY due_at, id LIMIT $2`, until.UTC(), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: pending scheduled items: %w", err)
	}
	defer rows.Close()
	var out []PendingItem
	for rows.Next() {
		var (
			it         PendingItem
			due, creat timeValue
		)
		if err := rows.Scan(&it.ID, &it.Kind, &it.Subject, &due, &creat, &it.Attempts, &it.LastError); err != nil {
			return nil, fmt.Errorf("sqlstore: pending scheduled items: %w", err)
		}
		it.DueAt, it.CreatedAt = due.t, creat.t
		out = append(out, it)
	}
	return out, rows.Err()
}

// AreaNames returns the names of the areas with the given codes; unknown
// codes are left out.
func (d *DB) AreaNames(ctx context.Context, codes []string) (map[string]string, error) {
	out := make(map[string]string, len(codes))
	for _, c := range codes {
		var name string
		err := d.db.QueryRowContext(ctx, `SELECT name FROM areas WHERE code = $1`, c).Scan(&name)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("sqlstore: area names: %w", err)
		}
		out[c] = name
	}
	return out, nil
}
