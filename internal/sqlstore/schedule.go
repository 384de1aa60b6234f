package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/loa-hub/loa/producer"
)

// Scheduled item statuses (producer's).
const (
	ItemPending   = producer.ItemPending
	ItemPublished = producer.ItemPublished
	ItemCancelled = producer.ItemCancelled
)

var _ producer.OutboxStore = (*DB)(nil)

// Schedule stores an outbox item. An item with the same id is left as it
// is, so scheduling is idempotent.
func (d *DB) Schedule(ctx context.Context, it producer.OutboxItem, now time.Time) error {
	if err := schedule(ctx, d.db, it, now); err != nil {
		return fmt.Errorf("sqlstore: schedule: %w", err)
	}
	return nil
}

func schedule(ctx context.Context, db execer, it producer.OutboxItem, now time.Time) error {
	_, err := db.ExecContext(ctx, `INSERT INTO scheduled_items (id, kind, subject, record, due_at, envelope, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING`,
		it.ID, it.Kind, it.Subject, it.Record, it.DueAt.UTC(), string(it.Envelope), now.UTC())
	return err
}

// recordPublished is the statement that marks an outbox item's record
// published, by record kind; $1 is the time, $2 the record's id.
var recordPublished = map[string]string{
	producer.RecordNotification: `UPDATE notifications SET published_at = $1 WHERE id = $2 AND published_at IS NULL`,
	producer.RecordAlert:        `UPDATE alerts SET published_at = $1 WHERE id = $2 AND published_at IS NULL`,
}

// markPublished marks a record and its outbox item published.
func markPublished(ctx context.Context, db execer, record, id string, at time.Time) error {
	if _, err := db.ExecContext(ctx, recordPublished[record], at.UTC(), id); err != nil {
		return err
	}
	_, err := db.ExecContext(ctx, `UPDATE scheduled_items SET status = 'published', published_at = $1
		WHERE record = $2 AND subject = $3 AND status = 'pending'`, at.UTC(), record, id)
	return err
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

// Due returns up to limit pending items due at now, in PublishDue's
// order, without claiming them.
func (d *DB) Due(ctx context.Context, now time.Time, limit int) ([]producer.OutboxItem, error) {
	items, err := scanDue(ctx, d.db, now, limit, false)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: due: %w", err)
	}
	return items, nil
}

// querier is a *sql.DB or a *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// scanDue selects pending items due at now, locking them when claim.
func scanDue(ctx context.Context, db querier, now time.Time, limit int, claim bool) ([]producer.OutboxItem, error) {
	q := `SELECT id, kind, subject, record, due_at, envelope FROM scheduled_items
		WHERE status = 'pending' AND due_at <= $1 ORDER BY due_at, id LIMIT $2`
	if claim {
		q += ` FOR UPDATE SKIP LOCKED`
	}
	rows, err := db.QueryContext(ctx, q, now.UTC(), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var items []producer.OutboxItem
	for rows.Next() {
		var (
			it       producer.OutboxItem
			due      timeValue
			envelope string
		)
		if err := rows.Scan(&it.ID, &it.Kind, &it.Subject, &it.Record, &due, &envelope); err != nil {
			return nil, err
		}
		it.DueAt, it.Envelope = due.t, []byte(envelope)
		items = append(items, it)
	}
	return items, rows.Err()
}

// PublishDue claims up to limit pending items due at now, hands them to
// publish, and marks those it published. Claiming holds row locks for the
// transaction: on PostgreSQL other pollers skip the locked rows (FOR
// UPDATE SKIP LOCKED) and take the next ones; on SQLite the one writer
// serialises pollers. publish returns how many of the items (in order) it
// published; the rest stay pending and are claimed again by a later poll.
// If the process dies after publishing and before committing, the items
// are published again: consumers are idempotent.
func (d *DB) PublishDue(ctx context.Context, now time.Time, limit int, publish func([]producer.OutboxItem) (int, error)) (int, error) {
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
	items, err := scanDue(ctx, tx, now, limit, d.dialect == Postgres)
	if err != nil {
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
		if q, ok := recordPublished[it.Record]; ok {
			if _, err := tx.ExecContext(wctx, q, now.UTC(), it.Subject); err != nil {
				return 0, fmt.Errorf("sqlstore: publish due: %w", err)
			}
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
