package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/loa-hub/loa/producer/outage"
)

var _ outage.Store = (*DB)(nil)

// ErrConflict is returned when a row changed between reading and writing
// it; the caller reads it again and retries.
var ErrConflict = errors.New("sqlstore: changed concurrently")

// Outage returns the current version of an outage, or ErrNotFound.
func (d *DB) Outage(ctx context.Context, client, id string) (outage.Record, error) {
	var (
		o          outage.Record
		areas      string
		s, e, c, u timeValue
	)
	err := d.db.QueryRowContext(ctx, `SELECT client, id, version, hash, areas, location, starts_at, ends_at, reason, cancelled, notified,
		created_at, updated_at FROM outages WHERE client = $1 AND id = $2`, client, id).
		Scan(&o.Client, &o.ID, &o.Version, &o.Hash, &areas, &o.Location, &s, &e, &o.Reason, &o.Cancelled, &o.Notified, &c, &u)
	if errors.Is(err, sql.ErrNoRows) {
		return outage.Record{}, notFoundAs(outage.ErrNotFound, "outage "+client+"/"+id)
	}
	if err != nil {
		return outage.Record{}, fmt.Errorf("sqlstore: outage: %w", err)
	}
	o.Areas = strings.Fields(areas)
	o.Start, o.End, o.CreatedAt, o.UpdatedAt = s.t, e.t, c.t, u.t
	return o, nil
}

// SaveOutage stores o (with Notified false) as the version after
// prevVersion: a new row when prevVersion is 0, else an update of the row
// still at prevVersion. It returns ErrConflict when another writer got
// there first.
func (d *DB) SaveOutage(ctx context.Context, o outage.Record, prevVersion int, now time.Time) error {
	var (
		res sql.Result
		err error
	)
	areas := strings.Join(o.Areas, " ")
	if prevVersion == 0 {
		res, err = d.db.ExecContext(ctx, `INSERT INTO outages (client, id, version, hash, areas, location, starts_at, ends_at, reason, cancelled,
			notified, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, FALSE, $11, $11)
			ON CONFLICT (client, id) DO NOTHING`,
			o.Client, o.ID, o.Version, o.Hash, areas, o.Location, o.Start.UTC(), o.End.UTC(), o.Reason, o.Cancelled, now.UTC())
	} else {
		res, err = d.db.ExecContext(ctx, `UPDATE outages SET version = $1, hash = $2, areas = $3, location = $4, starts_at = $5, ends_at = $6,
			reason = $7, cancelled = $8, notified = FALSE, updated_at = $9 WHERE client = $10 AND id = $11 AND version = $12`,
			o.Version, o.Hash, areas, o.Location, o.Start.UTC(), o.End.UTC(), o.Reason, o.Cancelled, now.UTC(), o.Client, o.ID, prevVersion)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: save outage: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("sqlstore: save outage: %w (%w)", outage.ErrConflict, ErrConflict)
	}
	return nil
}

// MarkOutageNotified records that the notices of an outage's version are
// all scheduled or sent.
func (d *DB) MarkOutageNotified(ctx context.Context, client, id string, version int) error {
	if _, err := d.db.ExecContext(ctx, `UPDATE outages SET notified = TRUE WHERE client = $1 AND id = $2 AND version = $3`,
		client, id, version); err != nil {
		return fmt.Errorf("sqlstore: mark outage notified: %w", err)
	}
	return nil
}

// AddOutageNotice records a notice; recording one with the same id again
// updates its status and detail.
func (d *DB) AddOutageNotice(ctx context.Context, n outage.NoticeRecord, now time.Time) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO outage_notices (id, client, outage_id, version, kind, lead_seconds, due_at, status, detail, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (id) DO UPDATE SET status = excluded.status, detail = excluded.detail`,
		n.ID, n.Client, n.OutageID, n.Version, n.Kind, int64(n.Lead/time.Second), n.DueAt.UTC(), n.Status, n.Detail, now.UTC())
	if err != nil {
		return fmt.Errorf("sqlstore: add outage notice: %w", err)
	}
	return nil
}

// OutageNotices returns every notice of an outage, oldest version first,
// then by due time.
func (d *DB) OutageNotices(ctx context.Context, client, id string) ([]outage.NoticeRecord, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT n.id, n.client, n.outage_id, n.version, n.kind, n.lead_seconds, n.due_at, n.status, n.detail,
		COALESCE(si.status, '') FROM outage_notices n LEFT JOIN scheduled_items si ON si.id = n.id
		WHERE n.client = $1 AND n.outage_id = $2 ORDER BY n.version, n.due_at, n.id`, client, id)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: outage notices: %w", err)
	}
	defer rows.Close()
	var out []outage.NoticeRecord
	for rows.Next() {
		var (
			n     outage.NoticeRecord
			lead  int64
			due   timeValue
			itemS string
		)
		if err := rows.Scan(&n.ID, &n.Client, &n.OutageID, &n.Version, &n.Kind, &lead, &due, &n.Status, &n.Detail, &itemS); err != nil {
			return nil, fmt.Errorf("sqlstore: outage notices: %w", err)
		}
		n.Lead, n.DueAt = time.Duration(lead)*time.Second, due.t
		if n.Status == outage.NoticeScheduled {
			switch itemS {
			case ItemPublished:
				n.Status = outage.NoticeSent
			case ItemCancelled:
				n.Status = outage.NoticeCancelled
			}
		}
		out = append(out, n)
	}
	return out, rows.Err()
}
