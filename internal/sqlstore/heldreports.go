package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/producer"
)

// HeldReport is a provider's delivery report kept until the delivery it
// names (by the provider's message id) is in the ledger.
type HeldReport struct {
	Provider   string
	ProviderID string
	Status     loa.Status // delivered or undelivered
	Reason     string
	ReceivedAt time.Time
}

// MatchedReport is a held report with the ledger row it is about.
type MatchedReport struct {
	Report   HeldReport
	Delivery producer.Delivery
}

// HoldReport keeps r. The same report (provider, id and status) held twice
// is one report.
func (d *DB) HoldReport(ctx context.Context, r HeldReport) error {
	if _, err := d.db.ExecContext(ctx, `INSERT INTO held_reports (provider, provider_id, status, reason, received_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (provider, provider_id, status) DO NOTHING`,
		r.Provider, r.ProviderID, r.Status, r.Reason, r.ReceivedAt.UTC()); err != nil {
		return fmt.Errorf("sqlstore: hold report: %w", err)
	}
	return nil
}

// HoldReports keeps rs: HoldReport for many reports, in one statement on
// PostgreSQL (array parameters), one per heldPerStatement on SQLite.
func (d *DB) HoldReports(ctx context.Context, rs []HeldReport) error {
	if len(rs) == 0 {
		return nil
	}
	if d.dialect == Postgres {
		provider, id, status, reason, at := make([]string, len(rs)), make([]string, len(rs)), make([]string, len(rs)),
			make([]string, len(rs)), make([]time.Time, len(rs))
		for i, r := range rs {
			provider[i], id[i], status[i], reason[i], at[i] = r.Provider, r.ProviderID, string(r.Status), r.Reason, r.ReceivedAt.UTC()
		}
		if _, err := d.db.ExecContext(ctx, `INSERT INTO held_reports (provider, provider_id, status, reason, received_at)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
			ON CONFLICT (provider, provider_id, status) DO NOTHING`, provider, id, status, reason, at); err != nil {
			return fmt.Errorf("sqlstore: hold reports: %w", err)
		}
		return nil
	}
	for start := 0; start < len(rs); start += heldPerStatement {
		chunk := rs[start:min(start+heldPerStatement, len(rs))]
		args := make([]any, 0, 5*len(chunk))
		values := make([]string, len(chunk))
		for i, r := range chunk {
			n := len(args)
			values[i] = fmt.Sprintf("($%d, $%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4, n+5)
			args = append(args, r.Provider, r.ProviderID, r.Status, r.Reason, r.ReceivedAt.UTC())
		}
		if _, err := d.db.ExecContext(ctx, `INSERT INTO held_reports (provider, provider_id, status, reason, received_at)
			VALUES `+strings.Join(values, ", ")+` ON CONFLICT (provider, provider_id, status) DO NOTHING`, args...); err != nil {
			return fmt.Errorf("sqlstore: hold reports: %w", err)
		}
	}
	return nil
}

// heldPerStatement bounds the reports one SQLite HoldReports statement
// inserts.
const heldPerStatement = 200

// MatchedHeldReports returns up to limit held reports, oldest first,
// whose delivery the ledger now has, each with its delivery (the latest
// row when several carry the provider's id). Apply them, then delete them
// with DeleteHeldReports; two callers may both see a report, so applying
// one must be idempotent.
//
// It joins every held report with the ledger: a sweep's query. Callers
// that know which deliveries they just recorded use MatchedHeldReportsFor.
func (d *DB) MatchedHeldReports(ctx context.Context, limit int) ([]MatchedReport, error) {
	return d.matchedHeldReports(ctx, matchedHeldReportsSQL("")+" LIMIT $1", limit)
}

// matchedHeldReportsSQL selects held reports with their deliveries, ordered
// so that a report's latest delivery comes first; where is the filter.
func matchedHeldReportsSQL(where string) string {
	return `SELECT h.provider, h.provider_id, h.status, h.reason, h.received_at,
			d.notification_id, d.channel, d.recipient, d.status, d.class, d.provider, d.provider_id, d.reason, d.targets, d.attempts, d.updated_at
		FROM held_reports h JOIN deliveries d ON d.provider = h.provider AND d.provider_id = h.provider_id AND d.provider_id <> '' AND d.channel <> 'push'
		` + where + `
		ORDER BY h.received_at, h.provider, h.provider_id, h.status, d.updated_at DESC`
}

// matchedHeldReportsForSQL is PostgreSQL's MatchedHeldReportsFor: one
// statement text whatever the number of ids (an array parameter).
var matchedHeldReportsForSQL = matchedHeldReportsSQL(`WHERE h.provider = $1 AND h.provider_id = ANY($2::text[])`)

// MatchedHeldReportsFor is MatchedHeldReports for the reports held about
// provider's message ids only: what the ledger looks for after writing
// the sends that carry them. Its cost follows len(ids), not how many
// reports are held.
func (d *DB) MatchedHeldReportsFor(ctx context.Context, provider string, ids []string) ([]MatchedReport, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	if d.dialect == Postgres {
		return d.matchedHeldReports(ctx, matchedHeldReportsForSQL, provider, ids)
	}
	const perStatement = 500 // SQLite has no array parameters
	var out []MatchedReport
	for start := 0; start < len(ids); start += perStatement {
		chunk := ids[start:min(start+perStatement, len(ids))]
		args := make([]any, 0, len(chunk)+1)
		args = append(args, provider)
		ph := make([]string, len(chunk))
		for i, id := range chunk {
			args = append(args, id)
			ph[i] = fmt.Sprintf("$%d", i+2)
		}
		ms, err := d.matchedHeldReports(ctx, matchedHeldReportsSQL(`WHERE h.provider = $1 AND h.provider_id IN (`+strings.Join(ph, ", ")+`)`), args...)
		if err != nil {
			return out, err
		}
		out = append(out, ms...)
	}
	return out, nil
}

// matchedHeldReports runs q, which selects a held report's columns and
// its delivery's, ordered so that a report's latest delivery comes first.
func (d *DB) matchedHeldReports(ctx context.Context, q string, args ...any) ([]MatchedReport, error) {
	rows, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: matched held reports: %w", err)
	}
	defer rows.Close()
	var out []MatchedReport
	for rows.Next() {
		var (
			m             MatchedReport
			received, upd timeValue
			hr, dl        = &m.Report, &m.Delivery
		)
		if err := rows.Scan(&hr.Provider, &hr.ProviderID, &hr.Status, &hr.Reason, &received,
			&dl.NotificationID, &dl.Channel, &dl.Recipient, &dl.Status, &dl.Class, &dl.Provider, &dl.ProviderID, &dl.Reason,
			&dl.Targets, &dl.Attempts, &upd); err != nil {
			return nil, fmt.Errorf("sqlstore: matched held reports: %w", err)
		}
		hr.ReceivedAt, dl.UpdatedAt = received.t, upd.t
		// Several rows with the provider's id: the latest, which comes first.
		if n := len(out); n > 0 && out[n-1].Report.Provider == hr.Provider && out[n-1].Report.ProviderID == hr.ProviderID &&
			out[n-1].Report.Status == hr.Status {
			continue
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: matched held reports: %w", err)
	}
	return out, nil
}

// DeleteHeldReports deletes reports (by provider, id and status) in one
// statement on PostgreSQL, one transaction on SQLite.
func (d *DB) DeleteHeldReports(ctx context.Context, rs []HeldReport) error {
	if len(rs) == 0 {
		return nil
	}
	if d.dialect == Postgres {
		provider, id, status := make([]string, len(rs)), make([]string, len(rs)), make([]string, len(rs))
		for i, r := range rs {
			provider[i], id[i], status[i] = r.Provider, r.ProviderID, string(r.Status)
		}
		if _, err := d.db.ExecContext(ctx, `DELETE FROM held_reports h USING unnest($1::text[], $2::text[], $3::text[]) AS x(provider, provider_id, status)
			WHERE h.provider = x.provider AND h.provider_id = x.provider_id AND h.status = x.status`, provider, id, status); err != nil {
			return fmt.Errorf("sqlstore: delete held reports: %w", err)
		}
		return nil
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: delete held reports: %w", err)
	}
	defer tx.Rollback()
	for _, r := range rs {
		if _, err := tx.ExecContext(ctx, `DELETE FROM held_reports WHERE provider = $1 AND provider_id = $2 AND status = $3`,
			r.Provider, r.ProviderID, r.Status); err != nil {
			return fmt.Errorf("sqlstore: delete held reports: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: delete held reports: %w", err)
	}
	return nil
}

// DropHeldReports deletes the reports received before before and returns
// how many went.
func (d *DB) DropHeldReports(ctx context.Context, before time.Time) (int64, error) {
	res, err := d.db.ExecContext(ctx, `DELETE FROM held_reports WHERE received_at < $1`, before.UTC())
	if err != nil {
		return 0, fmt.Errorf("sqlstore: drop held reports: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// HeldReports returns how many reports are held.
func (d *DB) HeldReports(ctx context.Context) (int, error) {
	var n int
	if err := d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM held_reports`).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlstore: held reports: %w", err)
	}
	return n, nil
}
