package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/direct"
)

var _ direct.Store = (*DB)(nil)

// CreateNotification inserts n unless a notification with the same client
// and idempotency key exists, and with it, in the same transaction, the
// outbox items that publish it. It returns the stored row and whether it
// was created by this call (only then are the items written). Concurrent
// calls with one key return one row.
func (d *DB) CreateNotification(ctx context.Context, n direct.Notification, outbox ...producer.OutboxItem) (direct.Notification, bool, error) {
	data, err := json.Marshal(n.Data)
	if err != nil {
		return direct.Notification{}, false, fmt.Errorf("sqlstore: create notification: %w", err)
	}
	var idem any
	if n.IdempotencyKey != "" {
		idem = n.IdempotencyKey
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return direct.Notification{}, false, fmt.Errorf("sqlstore: create notification: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `INSERT INTO notifications
		(id, client_id, idempotency_key, request_hash, kind, lane, recipient_type, recipient,
		 title, body, data, channels, priority, created_at, expires_at, send_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
		ON CONFLICT DO NOTHING`,
		n.ID, n.ClientID, idem, n.RequestHash, n.Kind, n.Lane, n.RecipientType, n.Recipient,
		n.Title, n.Body, string(data), strings.Join(n.Channels, ","), n.Priority,
		n.CreatedAt.UTC(), n.ExpiresAt.UTC(), nullTime(n.SendAt))
	if err != nil {
		return direct.Notification{}, false, fmt.Errorf("sqlstore: create notification: %w", err)
	}
	if rows, _ := res.RowsAffected(); rows == 1 {
		for _, it := range outbox {
			if err := schedule(ctx, tx, it, n.CreatedAt); err != nil {
				return direct.Notification{}, false, fmt.Errorf("sqlstore: create notification: %w", err)
			}
		}
		if err := tx.Commit(); err != nil {
			return direct.Notification{}, false, fmt.Errorf("sqlstore: create notification: %w", err)
		}
		return n, true, nil
	}
	tx.Rollback()
	if n.IdempotencyKey == "" {
		return direct.Notification{}, false, fmt.Errorf("sqlstore: create notification: id %s already exists", n.ID)
	}
	got, err := d.scanNotification(d.db.QueryRowContext(ctx, selectNotification+` WHERE client_id = $1 AND idempotency_key = $2`,
		n.ClientID, n.IdempotencyKey))
	if err != nil {
		return direct.Notification{}, false, fmt.Errorf("sqlstore: create notification: %w", err)
	}
	return got, false, nil
}

// MarkPublished records that the notification's event reached Kafka.
func (d *DB) MarkPublished(ctx context.Context, id string, at time.Time) error {
	err := markPublished(ctx, d.db, producer.RecordNotification, id, at)
	if err != nil {
		return fmt.Errorf("sqlstore: mark published: %w", err)
	}
	return nil
}

// Notification returns the notification with the given id, or ErrNotFound.
func (d *DB) Notification(ctx context.Context, id string) (direct.Notification, error) {
	n, err := d.scanNotification(d.db.QueryRowContext(ctx, selectNotification+` WHERE id = $1`, id))
	if err != nil {
		return direct.Notification{}, fmt.Errorf("sqlstore: notification: %w", err)
	}
	return n, nil
}

// NotificationKind is what a receipt names of its notification: the
// notification's kind and lane.
type NotificationKind struct {
	Kind, Lane string
}

// NotificationKinds returns the kind and lane of each of the notifications
// ids that the store has, by id, in one statement (one per 500 ids on
// SQLite). Ids it does not have are missing from the map.
func (d *DB) NotificationKinds(ctx context.Context, ids []string) (map[string]NotificationKind, error) {
	out := make(map[string]NotificationKind, len(ids))
	err := d.eachIDs(ids, 1, func(in string, args []any) error {
		rows, err := d.db.QueryContext(ctx, `SELECT id, kind, lane FROM notifications WHERE id `+in, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var k NotificationKind
			if err := rows.Scan(&id, &k.Kind, &k.Lane); err != nil {
				return err
			}
			out[id] = k
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlstore: notification kinds: %w", err)
	}
	return out, nil
}

// Unpublished returns up to limit notifications accepted before `before`
// whose event has not reached Kafka yet, oldest first (their outbox items
// publish them; operators and tests read this list).
func (d *DB) Unpublished(ctx context.Context, before time.Time, limit int) ([]direct.Notification, error) {
	rows, err := d.db.QueryContext(ctx, selectNotification+` WHERE published_at IS NULL AND created_at < $1 ORDER BY created_at LIMIT $2`, before.UTC(), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: unpublished: %w", err)
	}
	defer rows.Close()
	var out []direct.Notification
	for rows.Next() {
		n, err := d.scanNotification(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: unpublished: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

const selectNotification = `SELECT id, client_id, COALESCE(idempotency_key, ''), request_hash, kind, lane,
	recipient_type, recipient, title, body, data, channels, priority, created_at, expires_at, published_at,
	send_at, cancelled_at
	FROM notifications`

type scanner interface{ Scan(dest ...any) error }

func (d *DB) scanNotification(s scanner) (direct.Notification, error) {
	var (
		n         direct.Notification
		data, chs string
		created   timeValue
		expires   timeValue
		published timeValue
		sendAt    timeValue
		cancelled timeValue
	)
	err := s.Scan(&n.ID, &n.ClientID, &n.IdempotencyKey, &n.RequestHash, &n.Kind, &n.Lane,
		&n.RecipientType, &n.Recipient, &n.Title, &n.Body, &data, &chs, &n.Priority,
		&created, &expires, &published, &sendAt, &cancelled)
	if errors.Is(err, sql.ErrNoRows) {
		return direct.Notification{}, notFoundAs(direct.ErrNotFound, "notification")
	}
	if err != nil {
		return direct.Notification{}, err
	}
	if err := json.Unmarshal([]byte(data), &n.Data); err != nil {
		return direct.Notification{}, fmt.Errorf("decode data of %s: %w", n.ID, err)
	}
	if chs != "" {
		n.Channels = strings.Split(chs, ",")
	}
	n.CreatedAt, n.ExpiresAt, n.PublishedAt, n.SendAt, n.CancelledAt = created.t, expires.t, published.t, sendAt.t, cancelled.t
	return n, nil
}

// CancelNotification cancels a notification that is not yet published:
// its pending outbox items are cancelled and cancelled_at is stamped, in
// one transaction. A poller publishing it at the same moment holds the
// item's row lock: the cancel waits for it and then finds the item
// published. Errors: ErrNotFound, direct.ErrAlreadyPublished. Cancelling twice
// is not an error.
func (d *DB) CancelNotification(ctx context.Context, id string, at time.Time) (direct.Notification, error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return direct.Notification{}, fmt.Errorf("sqlstore: cancel notification: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE scheduled_items SET status = 'cancelled'
		WHERE record = $1 AND subject = $2 AND status = 'pending'`, producer.RecordNotification, id); err != nil {
		return direct.Notification{}, fmt.Errorf("sqlstore: cancel notification: %w", err)
	}
	n, err := d.scanNotification(tx.QueryRowContext(ctx, selectNotification+` WHERE id = $1`, id))
	if err != nil {
		return direct.Notification{}, err
	}
	if !n.PublishedAt.IsZero() {
		return n, fmt.Errorf("sqlstore: cancel notification %s: %w", id, direct.ErrAlreadyPublished)
	}
	if n.CancelledAt.IsZero() {
		if _, err := tx.ExecContext(ctx, `UPDATE notifications SET cancelled_at = $1 WHERE id = $2`, at.UTC(), id); err != nil {
			return direct.Notification{}, fmt.Errorf("sqlstore: cancel notification: %w", err)
		}
		n.CancelledAt = at.UTC()
	}
	if err := tx.Commit(); err != nil {
		return direct.Notification{}, fmt.Errorf("sqlstore: cancel notification: %w", err)
	}
	return n, nil
}
