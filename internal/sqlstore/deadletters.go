package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/loa-hub/loa/producer"
)

// RecordDeadLetter stores r unless a row with its id exists (a dead letter
// seen twice is one dead letter).
func (d *DB) RecordDeadLetter(ctx context.Context, r producer.DeadLetterRecord) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO dead_letters
		(id, reason, topic, kafka_partition, kafka_offset, kafka_key, envelope, raw, channel, recipient, provider, attempts, history, at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (id) DO NOTHING`,
		r.ID, r.Reason, r.Topic, r.Partition, r.Offset, r.Key, nullIfEmpty(r.Envelope), nullIfEmpty(r.Raw),
		r.Channel, r.Recipient, r.Provider, r.Attempts, r.History, r.At.UTC())
	if err != nil {
		return fmt.Errorf("sqlstore: record dead letter: %w", err)
	}
	return nil
}

const selectDeadLetter = `SELECT id, reason, topic, kafka_partition, kafka_offset, kafka_key, COALESCE(envelope, ''), COALESCE(raw, ''),
	channel, recipient, provider, attempts, history, at, replayed_at, replayed_by FROM dead_letters`

func scanDeadLetter(s scanner) (producer.DeadLetterRecord, error) {
	var (
		r            producer.DeadLetterRecord
		at, replayed timeValue
	)
	err := s.Scan(&r.ID, &r.Reason, &r.Topic, &r.Partition, &r.Offset, &r.Key, &r.Envelope, &r.Raw,
		&r.Channel, &r.Recipient, &r.Provider, &r.Attempts, &r.History, &at, &replayed, &r.ReplayedBy)
	if errors.Is(err, sql.ErrNoRows) {
		return producer.DeadLetterRecord{}, ErrNotFound
	}
	r.At, r.ReplayedAt = at.t, replayed.t
	return r, err
}

// DeadLetters lists up to limit dead letters, newest first, older than
// the cursor (at, id) when it is given.
func (d *DB) DeadLetters(ctx context.Context, beforeAt time.Time, beforeID string, limit int) ([]producer.DeadLetterRecord, error) {
	q := selectDeadLetter + ` ORDER BY at DESC, id DESC LIMIT $1`
	args := []any{limit}
	if !beforeAt.IsZero() {
		q = selectDeadLetter + ` WHERE at < $2 OR (at = $2 AND id < $3) ORDER BY at DESC, id DESC LIMIT $1`
		args = append(args, beforeAt.UTC(), beforeID)
	}
	rows, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: dead letters: %w", err)
	}
	defer rows.Close()
	var out []producer.DeadLetterRecord
	for rows.Next() {
		r, err := scanDeadLetter(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: dead letters: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// DeadLetter returns one dead letter, or ErrNotFound.
func (d *DB) DeadLetter(ctx context.Context, id string) (producer.DeadLetterRecord, error) {
	r, err := scanDeadLetter(d.db.QueryRowContext(ctx, selectDeadLetter+` WHERE id = $1`, id))
	if err != nil {
		return producer.DeadLetterRecord{}, fmt.Errorf("sqlstore: dead letter: %w", err)
	}
	return r, nil
}

// MarkReplayed records that the dead letter was sent back, once: a second
// call returns producer.ErrAlreadyReplayed, so two operators replaying at the same
// moment cause one replay.
func (d *DB) MarkReplayed(ctx context.Context, id, by string, at time.Time) error {
	res, err := d.db.ExecContext(ctx, `UPDATE dead_letters SET replayed_at = $1, replayed_by = $2 WHERE id = $3 AND replayed_at IS NULL`,
		at.UTC(), by, id)
	if err != nil {
		return fmt.Errorf("sqlstore: mark replayed: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := d.DeadLetter(ctx, id); err != nil {
			return err
		}
		return producer.ErrAlreadyReplayed
	}
	return nil
}

// UnmarkReplayed undoes MarkReplayed when the replay could not be
// published, so it can be tried again.
func (d *DB) UnmarkReplayed(ctx context.Context, id string) error {
	if _, err := d.db.ExecContext(ctx, `UPDATE dead_letters SET replayed_at = NULL, replayed_by = '' WHERE id = $1`, id); err != nil {
		return fmt.Errorf("sqlstore: unmark replayed: %w", err)
	}
	return nil
}
