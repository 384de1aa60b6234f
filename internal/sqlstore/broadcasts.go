package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/producer/broadcast"
)

var _ broadcast.Store = (*DB)(nil)

// ErrStateConflict is wrapped by TransitionBroadcast's error when the
// broadcast is not in one of the expected states (someone else moved it
// first), with broadcast.ErrMoved.
var ErrStateConflict = errors.New("sqlstore: broadcast is not in the expected state")

type audienceJSON struct {
	Everyone bool     `json:"everyone,omitempty"`
	Areas    []string `json:"areas,omitempty"`
	Topics   []string `json:"topics,omitempty"`
	Accounts []string `json:"accounts,omitempty"`
	Roles    []string `json:"roles,omitempty"`
	// AreaTopics: see Audience.
	AreaTopics bool `json:"area_topics,omitempty"`
	// Unacknowledged: see Audience.
	Unacknowledged string `json:"unacknowledged,omitempty"`
}

// CreateBroadcast stores a new broadcast, its first history row (""
// → b.Status) and an audit entry, in one transaction.
func (d *DB) CreateBroadcast(ctx context.Context, b broadcast.Broadcast, ip string) error {
	aud, err := json.Marshal(audienceJSON(b.Audience))
	if err != nil {
		return fmt.Errorf("sqlstore: create broadcast: %w", err)
	}
	chs, err := json.Marshal(b.Channels)
	if err != nil {
		return fmt.Errorf("sqlstore: create broadcast: %w", err)
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: create broadcast: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO broadcasts (id, status, title, body, title_en, body_en, topic, audience, channels,
		send_at, doc_number, doc_date, unit, created_by, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15)`,
		b.ID, b.Status, b.Title, b.Body, b.TitleEN, b.BodyEN, b.Topic, string(aud), string(chs), nullTime(b.SendAt),
		b.DocNumber, b.DocDate, b.Unit, b.CreatedBy, b.CreatedAt.UTC()); err != nil {
		return fmt.Errorf("sqlstore: create broadcast: %w", err)
	}
	if err := recordBroadcastEvent(ctx, tx, b.ID, 1, broadcast.Event{At: b.CreatedAt, Actor: b.CreatedBy, To: b.Status}, ip); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: create broadcast: %w", err)
	}
	return nil
}

func recordBroadcastEvent(ctx context.Context, tx *sql.Tx, id string, seq int, e broadcast.Event, ip string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO broadcast_history (broadcast_id, seq, at, actor, from_status, to_status, reason)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, id, seq, e.At.UTC(), e.Actor, e.From, e.To, e.Reason); err != nil {
		return fmt.Errorf("sqlstore: broadcast history: %w", err)
	}
	detail := map[string]string{"from": e.From, "to": e.To}
	if e.Reason != "" {
		detail["reason"] = e.Reason
	}
	raw, _ := json.Marshal(detail)
	action := "broadcast." + e.To
	if e.From == "" {
		action = "broadcast.create"
	}
	// The audit row is written in the same transaction as the move, so a
	// transition is never without its audit entry.
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit_log (id, at, actor, action, subject, detail, ip) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		uuid.NewString(), e.At.UTC(), e.Actor, action, id, string(raw), ip); err != nil {
		return fmt.Errorf("sqlstore: broadcast audit: %w", err)
	}
	return nil
}

// TransitionBroadcast moves a broadcast from one of t.From to t.To if it
// is in one of them, recording the move in broadcast_history and the
// audit log in the same transaction. Errors: ErrNotFound,
// ErrStateConflict (not in t.From, or t.NotBy created or submitted it).
func (d *DB) TransitionBroadcast(ctx context.Context, t broadcast.Transition) (broadcast.Broadcast, error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return broadcast.Broadcast{}, fmt.Errorf("sqlstore: transition broadcast: %w", err)
	}
	defer tx.Rollback()
	// The row is locked until the move commits (SQLite's transactions are
	// immediate: one writer), so the recorded from-state is the real one.
	lock := ""
	if d.dialect == Postgres {
		lock = " FOR UPDATE"
	}
	var cur string
	if err := tx.QueryRowContext(ctx, `SELECT status FROM broadcasts WHERE id = $1`+lock, t.ID).Scan(&cur); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return broadcast.Broadcast{}, notFoundAs(broadcast.ErrNotFound, "broadcast")
		}
		return broadcast.Broadcast{}, fmt.Errorf("sqlstore: transition broadcast: %w", err)
	}
	set := []string{"status = $1", "updated_at = $2"}
	args := []any{t.To, t.At.UTC(), t.ID}
	if t.Submitter {
		args = append(args, t.Actor)
		set = append(set, fmt.Sprintf("submitted_by = $%d", len(args)))
	}
	if t.Decider {
		args = append(args, t.Actor)
		set = append(set, fmt.Sprintf("decided_by = $%d", len(args)))
	}
	if t.Reason != "" {
		args = append(args, t.Reason)
		set = append(set, fmt.Sprintf("reason = $%d", len(args)))
	}
	ph := make([]string, len(t.From))
	for i, f := range t.From {
		args = append(args, f)
		ph[i] = fmt.Sprintf("$%d", len(args))
	}
	q := `UPDATE broadcasts SET ` + strings.Join(set, ", ") + ` WHERE id = $3 AND status IN (` + strings.Join(ph, ", ") + `)`
	if t.NotBy != "" {
		args = append(args, t.NotBy)
		q += fmt.Sprintf(` AND created_by <> $%[1]d AND submitted_by <> $%[1]d`, len(args))
	}
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return broadcast.Broadcast{}, fmt.Errorf("sqlstore: transition broadcast: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return broadcast.Broadcast{}, fmt.Errorf("sqlstore: transition broadcast %s: %w (%w)", t.ID, broadcast.ErrMoved, ErrStateConflict)
	}
	var seq int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) + 1 FROM broadcast_history WHERE broadcast_id = $1`, t.ID).Scan(&seq); err != nil {
		return broadcast.Broadcast{}, fmt.Errorf("sqlstore: transition broadcast: %w", err)
	}
	if err := recordBroadcastEvent(ctx, tx, t.ID, seq, broadcast.Event{At: t.At, Actor: t.Actor, From: cur, To: t.To, Reason: t.Reason}, t.IP); err != nil {
		return broadcast.Broadcast{}, err
	}
	b, err := scanBroadcast(tx.QueryRowContext(ctx, `SELECT `+broadcastCols+` FROM broadcasts WHERE id = $1`, t.ID))
	if err != nil {
		return broadcast.Broadcast{}, err
	}
	if err := tx.Commit(); err != nil {
		return broadcast.Broadcast{}, fmt.Errorf("sqlstore: transition broadcast: %w", err)
	}
	return b, nil
}

const broadcastCols = `id, status, title, body, title_en, body_en, topic, audience, channels, send_at, doc_number, doc_date, unit,
	created_by, submitted_by, decided_by, reason, created_at, updated_at, reach_devices, reach_phones, reach_counted_at`

func scanBroadcast(s scanner) (broadcast.Broadcast, error) {
	var (
		b                          broadcast.Broadcast
		aud, chs                   string
		sendAt, created, updatedAt timeValue
		devices, phones            sql.NullInt64
		countedAt                  timeValue
	)
	err := s.Scan(&b.ID, &b.Status, &b.Title, &b.Body, &b.TitleEN, &b.BodyEN, &b.Topic, &aud, &chs, &sendAt, &b.DocNumber, &b.DocDate,
		&b.Unit, &b.CreatedBy, &b.SubmittedBy, &b.DecidedBy, &b.Reason, &created, &updatedAt, &devices, &phones, &countedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return broadcast.Broadcast{}, notFoundAs(broadcast.ErrNotFound, "broadcast")
	}
	if err != nil {
		return broadcast.Broadcast{}, fmt.Errorf("sqlstore: broadcast: %w", err)
	}
	var a audienceJSON
	if err := json.Unmarshal([]byte(aud), &a); err != nil {
		return broadcast.Broadcast{}, fmt.Errorf("sqlstore: broadcast %s: audience: %w", b.ID, err)
	}
	if err := json.Unmarshal([]byte(chs), &b.Channels); err != nil {
		return broadcast.Broadcast{}, fmt.Errorf("sqlstore: broadcast %s: channels: %w", b.ID, err)
	}
	b.Audience = loa.Audience(a)
	b.SendAt, b.CreatedAt, b.UpdatedAt = sendAt.t, created.t, updatedAt.t
	if devices.Valid && phones.Valid && !countedAt.t.IsZero() {
		b.Reach = &broadcast.Reach{Devices: int(devices.Int64), Phones: int(phones.Int64), CountedAt: countedAt.t}
	}
	return b, nil
}

// Broadcast returns one broadcast, or ErrNotFound.
func (d *DB) Broadcast(ctx context.Context, id string) (broadcast.Broadcast, error) {
	return scanBroadcast(d.db.QueryRowContext(ctx, `SELECT `+broadcastCols+` FROM broadcasts WHERE id = $1`, id))
}

// Broadcasts lists up to f.Limit broadcasts, newest first, that f
// selects.
func (d *DB) Broadcasts(ctx context.Context, f broadcast.Filter) ([]broadcast.Broadcast, error) {
	q, args := `SELECT `+broadcastCols+` FROM broadcasts WHERE ($1 = '' OR status = $1)`, []any{f.Status, f.Limit}
	if f.Mine {
		mine := []string{fmt.Sprintf("created_by = $%d", len(args)+1)}
		args = append(args, f.Author)
		if len(f.Units) > 0 {
			ph := make([]string, len(f.Units))
			for i, u := range f.Units {
				ph[i] = fmt.Sprintf("$%d", len(args)+1)
				args = append(args, u)
			}
			mine = append(mine, `(unit <> '' AND unit IN (`+strings.Join(ph, ", ")+`))`)
		}
		q += ` AND (` + strings.Join(mine, " OR ") + `)`
	}
	rows, err := d.db.QueryContext(ctx, q+` ORDER BY created_at DESC, id LIMIT $2`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: broadcasts: %w", err)
	}
	defer rows.Close()
	var out []broadcast.Broadcast
	for rows.Next() {
		b, err := scanBroadcast(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// RecordReach stores a broadcast's audience size unless one is stored
// already, and reports whether it stored r.
func (d *DB) RecordReach(ctx context.Context, id string, r broadcast.Reach) (bool, error) {
	res, err := d.db.ExecContext(ctx, `UPDATE broadcasts SET reach_devices = $1, reach_phones = $2, reach_counted_at = $3
		WHERE id = $4 AND reach_counted_at IS NULL`, r.Devices, r.Phones, r.CountedAt.UTC(), id)
	if err != nil {
		return false, fmt.Errorf("sqlstore: record reach: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlstore: record reach: %w", err)
	}
	return n > 0, nil
}

// BroadcastHistory returns a broadcast's state changes, oldest first.
func (d *DB) BroadcastHistory(ctx context.Context, id string) ([]broadcast.Event, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT seq, at, actor, from_status, to_status, reason FROM broadcast_history
		WHERE broadcast_id = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: broadcast history: %w", err)
	}
	defer rows.Close()
	var out []broadcast.Event
	for rows.Next() {
		var (
			e  broadcast.Event
			at timeValue
		)
		if err := rows.Scan(&e.Seq, &at, &e.Actor, &e.From, &e.To, &e.Reason); err != nil {
			return nil, fmt.Errorf("sqlstore: broadcast history: %w", err)
		}
		e.At = at.t
		out = append(out, e)
	}
	return out, rows.Err()
}

// CountRecipients is CountAudience of a domain's audience.
func (d *DB) CountRecipients(ctx context.Context, a loa.Audience, app string) (devices, phones int, err error) {
	return d.CountAudience(ctx, Audience(a), app)
}

// PlanDone reports whether every channel of a notification's plan has
// been planned to the end (false when planning has not started).
func (d *DB) PlanDone(ctx context.Context, notificationID string) (bool, error) {
	var total, done int
	err := d.db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN done THEN 1 ELSE 0 END), 0) FROM plans
		WHERE notification_id = $1`, notificationID).Scan(&total, &done)
	if err != nil {
		return false, fmt.Errorf("sqlstore: plan done: %w", err)
	}
	return total > 0 && total == done, nil
}
