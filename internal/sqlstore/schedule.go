package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ScheduledItem is an event to publish when it falls due.
type ScheduledItem struct {
	ID       string
	Kind     string
	Subject  string // what it belongs to (a broadcast id, an outage id), for cancelling
	DueAt    time.Time
	Envelope string // the event, as JSON
}

// Scheduled item statuses.
const (
	ItemPending   = "pending"
	ItemPublished = "published"
	ItemCancelled = "cancelled"
)

// Schedule stores an item. An item with the same id is left as it is, so
// scheduling is idempotent.
func (d *DB) Schedule(ctx context.Context, it ScheduledItem, now time.Time) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO scheduled_items (id, kind, subject, due_at, envelope, created_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`,
		it.ID, it.Kind, it.Subject, it.DueAt.UTC(), it.Envelope, now.UTC())
	if err != nil {
		return fmt.Errorf("sqlstore: schedule: %w", err)
	}
	return nil
}

// CancelScheduled cancels the pending items of a subject and returns how
// many it cancelled. Items already published are not affected.
func (d *DB) CancelScheduled(ctx context.Context, subject string) (int, error) {
	res, err := d.db.ExecContext(ctx, `UPDATE scheduled_items SET status = 'cancelled' WHERE subject = $1 AND status = 'pending'`, subject)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: cancel scheduled: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// CancelScheduledExcept cancels the pending items of a subject but the
// one with id keep, and returns how many it cancelled.
func (d *DB) CancelScheduledExcept(ctx context.Context, subject, keep string) (int, error) {
	res, err := d.db.ExecContext(ctx, `UPDATE scheduled_items SET status = 'cancelled' WHERE subject = $1 AND status = 'pending' AND id <> $2`,
		subject, keep)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: cancel scheduled: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// ScheduledStatus returns an item's status, or ErrNotFound.
func (d *DB) ScheduledStatus(ctx context.Context, id string) (string, error) {
	var s string
	err := d.db.QueryRowContext(ctx, `SELECT status FROM scheduled_items WHERE id = $1`, id).Scan(&s)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return "", ErrNotFound
		}
		return "", fmt.Errorf("sqlstore: scheduled status: %w", err)
	}
	return s, nil
}

// PublishDue claims up to limit pending items due at now, hands them to
// publish, and marks those it published. Claiming holds row locks for the
// transaction: on PostgreSQL other pollers skip the locked rows (FOR
// UPDATE SKIP LOCKED) and take the next ones; on SQLite the one writer
// serialises pollers. publish returns how many of the items (in order) it
// published; the rest stay pending and are claimed again by a later poll.
// If the process dies after publishing and before committing, the items
// are published again: consumers are idempotent.
func (d *DB) PublishDue(ctx context.Context, now time.Time, limit int, publish func([]ScheduledItem) (int, error)) (int, error) {
	// database/sql rolls a transaction back when its context ends; once
	// items are published they must be recorded even if we are stopping,
	// so the transaction lives on an uncancelled context and only the
	// claiming query obeys ctx.
	wctx := context.WithoutCancel(ctx)
	tx, err := d.db.BeginTx(wctx, nil)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: publish due: %w", err)
	}
	defer tx.Rollback()
	q := `SELECT id, kind, subject, due_at, envelope FROM scheduled_items
		WHERE status = 'pending' AND due_at <= $1 ORDER BY due_at, id LIMIT $2`
	if d.dialect == Postgres {
		q += ` FOR UPDATE SKIP LOCKED`
	}
	rows, err := tx.QueryContext(ctx, q, now.UTC(), limit)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: publish due: %w", err)
	}
	var items []ScheduledItem
	for rows.Next() {
		var (
			it  ScheduledItem
			due timeValue
		)
		if err := rows.Scan(&it.ID, &it.Kind, &it.Subject, &due, &it.Envelope); err != nil {
			rows.Close()
			return 0, fmt.Errorf("sqlstore: publish due: %w", err)
		}
		it.DueAt = due.t
		items = append(items, it)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("sqlstore: publish due: %w", err)
	}
	if len(items) == 0 {
		return 0, nil
	}
	n, perr := publish(items)
	for _, it := range items[:n] {
		if _, err := tx.ExecContext(wctx, `UPDATE scheduled_items SET status = 'published', published_at = $1, attempts = attempts + 1 WHERE id = $2`,
			now.UTC(), it.ID); err != nil {
			return 0, fmt.Errorf("sqlstore: publish due: %w", err)
		}
	}
	if perr != nil && n < len(items) {
		msg := perr.Error()
		if len(msg) > 500 {
			msg = msg[:500]
		}
		for _, it := range items[n:] {
			tx.ExecContext(wctx, `UPDATE scheduled_items SET attempts = attempts + 1, last_error = $1 WHERE id = $2`, msg, it.ID)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("sqlstore: publish due: %w", err)
	}
	return n, perr
}
