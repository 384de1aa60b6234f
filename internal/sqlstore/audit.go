package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/loa-hub/loa/accounts"
)

// The audit log is append-only, and the database holds it so: triggers
// (migration 0020) refuse UPDATE, TRUNCATE and DELETE on both dialects,
// except the DELETE that PurgeAudit runs, which may remove only rows older
// than its cutoff and never the last day.

// ErrAuditRetention is returned by PurgeAudit for a cutoff within the
// last MinAuditRetention.
var ErrAuditRetention = errors.New("sqlstore: a purge keeps at least the last day of the audit log")

// MinAuditRetention is the youngest a purged audit row may be; the
// databases' triggers enforce it too.
const MinAuditRetention = 24 * time.Hour

// AppendAudit implements accounts.Store: it adds e to the audit log.
func (d *DB) AppendAudit(ctx context.Context, e accounts.AuditEntry) error {
	return appendAudit(ctx, d.db, e)
}

// execer is a *sql.DB or a *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func appendAudit(ctx context.Context, db execer, e accounts.AuditEntry) error {
	detail := []byte("{}")
	if len(e.Detail) > 0 {
		var err error
		if detail, err = json.Marshal(e.Detail); err != nil {
			return fmt.Errorf("sqlstore: append audit: %w", err)
		}
	}
	if e.ID == "" {
		// Time-ordered, so entries written in the same instant still list
		// in the order they were written.
		id, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("sqlstore: append audit: %w", err)
		}
		e.ID = id.String()
	}
	_, err := db.ExecContext(ctx, `INSERT INTO audit_log (id, at, actor, action, subject, detail, ip, route, status, request_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		e.ID, e.At.UTC(), e.Actor, e.Action, e.Subject, string(detail), e.IP, e.Route, e.Status, e.RequestID)
	if err != nil {
		return fmt.Errorf("sqlstore: append audit: %w", err)
	}
	return nil
}

const auditColumns = `id, at, actor, action, subject, detail, ip, route, status, request_id`

func scanAudit(rows *sql.Rows) (accounts.AuditEntry, error) {
	var (
		e      accounts.AuditEntry
		at     timeValue
		detail string
	)
	if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Subject, &detail, &e.IP, &e.Route, &e.Status, &e.RequestID); err != nil {
		return e, err
	}
	e.At = at.t
	if err := json.Unmarshal([]byte(detail), &e.Detail); err != nil {
		return e, err
	}
	return e, nil
}

// AuditLog returns up to limit entries about subject ("" for all), oldest
// first.
func (d *DB) AuditLog(ctx context.Context, subject string, limit int) ([]accounts.AuditEntry, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit_log
		WHERE $1 = '' OR subject = $1 ORDER BY at, id LIMIT $2`, subject, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: audit log: %w", err)
	}
	defer rows.Close()
	var out []accounts.AuditEntry
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: audit log: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// AuditFilter selects audit entries; empty fields select everything.
type AuditFilter struct {
	Actor  string    // exactly: an account id, "apikey:<id>", "cli:<name>"…
	Target string    // exactly: what was acted on (the entry's subject)
	Route  string    // exactly: "METHOD /pattern", e.g. "GET /v1/notifications/{id}"
	Since  time.Time // at or after
	Until  time.Time // before
	// Before continues a listing: only entries older than this one (its
	// time and id, as the last page ended), newest first.
	Before AuditCursor
	Limit  int // 1 to 1000; default 100
}

// AuditCursor is where a page of the audit log ended.
type AuditCursor struct {
	At time.Time
	ID string
}

// IsZero reports whether c is no cursor (the first page).
func (c AuditCursor) IsZero() bool { return c.ID == "" }

// ListAudit returns a page of the audit log, newest first, and the cursor
// of the next page (zero when this page is the last).
func (d *DB) ListAudit(ctx context.Context, f AuditFilter) ([]accounts.AuditEntry, AuditCursor, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	if f.Limit > 1000 {
		f.Limit = 1000
	}
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.Actor != "" {
		where = append(where, "actor = "+arg(f.Actor))
	}
	if f.Target != "" {
		where = append(where, "subject = "+arg(f.Target))
	}
	if f.Route != "" {
		where = append(where, "route = "+arg(f.Route))
	}
	if !f.Since.IsZero() {
		where = append(where, "at >= "+arg(f.Since.UTC()))
	}
	if !f.Until.IsZero() {
		where = append(where, "at < "+arg(f.Until.UTC()))
	}
	if !f.Before.IsZero() {
		at := arg(f.Before.At.UTC())
		where = append(where, fmt.Sprintf("(at < %s OR (at = %s AND id < %s))", at, at, arg(f.Before.ID)))
	}
	q := `SELECT ` + auditColumns + ` FROM audit_log`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY at DESC, id DESC LIMIT " + arg(f.Limit+1)
	rows, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, AuditCursor{}, fmt.Errorf("sqlstore: list audit: %w", err)
	}
	defer rows.Close()
	var out []accounts.AuditEntry
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, AuditCursor{}, fmt.Errorf("sqlstore: list audit: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, AuditCursor{}, fmt.Errorf("sqlstore: list audit: %w", err)
	}
	var next AuditCursor
	if len(out) > f.Limit {
		out = out[:f.Limit]
		last := out[len(out)-1]
		next = AuditCursor{At: last.At, ID: last.ID}
	}
	return out, next, nil
}

// PurgeAudit deletes the audit entries older than cutoff and appends
// entry (the purge's own record, its Detail completed with the cutoff and
// the count) in the same transaction; it returns how many were deleted.
// Before deleting, the last use of each API key among them is kept on the
// key. It is the only deletion the audit log allows. Errors:
// ErrAuditRetention for a cutoff within the last MinAuditRetention.
func (d *DB) PurgeAudit(ctx context.Context, cutoff time.Time, entry accounts.AuditEntry) (int64, error) {
	cutoff = cutoff.UTC()
	if cutoff.After(d.now().Add(-MinAuditRetention)) {
		return 0, ErrAuditRetention
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: purge audit: %w", err)
	}
	defer tx.Rollback()
	var n int64
	switch d.dialect {
	case Postgres:
		if err := tx.QueryRowContext(ctx, `SELECT loa_audit_purge($1)`, cutoff).Scan(&n); err != nil {
			return 0, fmt.Errorf("sqlstore: purge audit: %w", err)
		}
	default:
		if _, err := tx.ExecContext(ctx, `UPDATE api_keys SET last_used_at = (
				SELECT max(at) FROM audit_log WHERE actor = 'apikey:' || api_keys.id AND at < $1)
			WHERE EXISTS (SELECT 1 FROM audit_log WHERE actor = 'apikey:' || api_keys.id AND at < $1
				AND (api_keys.last_used_at IS NULL OR at > api_keys.last_used_at))`, cutoff); err != nil {
			return 0, fmt.Errorf("sqlstore: purge audit: keep last use: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_purge_gate (cutoff) VALUES ($1)`, cutoff); err != nil {
			return 0, fmt.Errorf("sqlstore: purge audit: %w", err)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM audit_log WHERE at < $1`, cutoff)
		if err != nil {
			return 0, fmt.Errorf("sqlstore: purge audit: %w", err)
		}
		if n, err = res.RowsAffected(); err != nil {
			return 0, fmt.Errorf("sqlstore: purge audit: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM audit_purge_gate`); err != nil {
			return 0, fmt.Errorf("sqlstore: purge audit: %w", err)
		}
	}
	detail := map[string]string{}
	for k, v := range entry.Detail {
		detail[k] = v
	}
	detail["cutoff"], detail["deleted"] = cutoff.Format(time.RFC3339Nano), fmt.Sprint(n)
	entry.Detail = detail
	if err := appendAudit(ctx, tx, entry); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("sqlstore: purge audit: %w", err)
	}
	return n, nil
}
