package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// StoredAlert is one disaster alert message as Loa keeps it: the parsed
// CAP document and what Loa decided about it.
type StoredAlert struct {
	ID            string
	CAPIdentifier string
	Sender        string
	Sent          time.Time
	MsgType       string          // Alert | Update | Cancel
	References    json.RawMessage // the CAP references, JSON; "[]" when none
	RefIDs        []string        // the Loa ids of the alerts referred to
	Status        string
	Priority      string
	Document      json.RawMessage // the parsed alert, JSON
	Issuer        string          // principal id of the poster
	AreaCodes     []string        // the audience
	Channels      []string
	ExpiresAt     time.Time
	CreatedAt     time.Time
	DecidedBy     string
	DecidedAt     time.Time
	Reason        string
	PublishedAt   time.Time // zero until its plan reached Kafka
}

// AlertLink is an alert that refers to another one.
type AlertLink struct {
	ID      string
	MsgType string
}

const selectAlert = `SELECT id, cap_identifier, sender, sent, msg_type, refs, status, priority, document, issuer,
	area_codes, channels, expires_at, created_at, COALESCE(decided_by, ''), decided_at, reason, published_at FROM alerts`

// CreateAlert inserts a (with its references) unless an alert with the
// same sender and CAP identifier exists. It returns the stored row and
// whether this call created it; concurrent calls with one identifier
// return one row.
func (d *DB) CreateAlert(ctx context.Context, a StoredAlert) (StoredAlert, bool, error) {
	areas, err := json.Marshal(nonNil(a.AreaCodes))
	if err != nil {
		return StoredAlert{}, false, fmt.Errorf("sqlstore: create alert: %w", err)
	}
	chans, err := json.Marshal(nonNil(a.Channels))
	if err != nil {
		return StoredAlert{}, false, fmt.Errorf("sqlstore: create alert: %w", err)
	}
	refs := a.References
	if len(refs) == 0 {
		refs = json.RawMessage("[]")
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return StoredAlert{}, false, fmt.Errorf("sqlstore: create alert: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `INSERT INTO alerts (id, cap_identifier, sender, sent, msg_type, refs, status, priority,
		document, issuer, area_codes, channels, expires_at, created_at, reason)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, '')
		ON CONFLICT (sender, cap_identifier) DO NOTHING`,
		a.ID, a.CAPIdentifier, a.Sender, a.Sent.UTC(), a.MsgType, string(refs), a.Status, a.Priority,
		string(a.Document), a.Issuer, string(areas), string(chans), nullTime(a.ExpiresAt), a.CreatedAt.UTC())
	if err != nil {
		return StoredAlert{}, false, fmt.Errorf("sqlstore: create alert: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		tx.Rollback()
		got, err := d.AlertByIdentifier(ctx, a.Sender, a.CAPIdentifier)
		return got, false, err
	}
	for _, ref := range a.RefIDs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO alert_refs (alert_id, ref_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, a.ID, ref); err != nil {
			return StoredAlert{}, false, fmt.Errorf("sqlstore: create alert: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return StoredAlert{}, false, fmt.Errorf("sqlstore: create alert: %w", err)
	}
	got, err := d.Alert(ctx, a.ID)
	return got, true, err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Alert returns the alert with id, or ErrNotFound.
func (d *DB) Alert(ctx context.Context, id string) (StoredAlert, error) {
	return d.oneAlert(ctx, selectAlert+` WHERE id = $1`, id)
}

// AlertByIdentifier returns the alert a sender sent with a CAP
// identifier, or ErrNotFound.
func (d *DB) AlertByIdentifier(ctx context.Context, sender, identifier string) (StoredAlert, error) {
	return d.oneAlert(ctx, selectAlert+` WHERE sender = $1 AND cap_identifier = $2`, sender, identifier)
}

func (d *DB) oneAlert(ctx context.Context, q string, args ...any) (StoredAlert, error) {
	a, err := scanAlert(d.db.QueryRowContext(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return StoredAlert{}, ErrNotFound
	}
	if err != nil {
		return StoredAlert{}, fmt.Errorf("sqlstore: alert: %w", err)
	}
	if a.RefIDs, err = d.alertRefs(ctx, `SELECT ref_id FROM alert_refs WHERE alert_id = $1 ORDER BY ref_id`, a.ID); err != nil {
		return StoredAlert{}, err
	}
	return a, nil
}

func (d *DB) alertRefs(ctx context.Context, q, id string) ([]string, error) {
	rows, err := d.db.QueryContext(ctx, q, id)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: alert references: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("sqlstore: alert references: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func scanAlert(row scanner) (StoredAlert, error) {
	var (
		a                                     StoredAlert
		refs, doc, areas, chans               string
		sent, expires, created, decided, publ timeValue
	)
	if err := row.Scan(&a.ID, &a.CAPIdentifier, &a.Sender, &sent, &a.MsgType, &refs, &a.Status, &a.Priority, &doc, &a.Issuer,
		&areas, &chans, &expires, &created, &a.DecidedBy, &decided, &a.Reason, &publ); err != nil {
		return StoredAlert{}, err
	}
	a.References, a.Document = json.RawMessage(refs), json.RawMessage(doc)
	if err := json.Unmarshal([]byte(areas), &a.AreaCodes); err != nil {
		return StoredAlert{}, err
	}
	if err := json.Unmarshal([]byte(chans), &a.Channels); err != nil {
		return StoredAlert{}, err
	}
	a.Sent, a.ExpiresAt, a.CreatedAt, a.DecidedAt, a.PublishedAt = sent.t, expires.t, created.t, decided.t, publ.t
	return a, nil
}

// Alerts returns up to limit alerts with status ("" for every status),
// newest first.
func (d *DB) Alerts(ctx context.Context, status string, limit int) ([]StoredAlert, error) {
	rows, err := d.db.QueryContext(ctx, selectAlert+` WHERE ($1 = '' OR status = $1) ORDER BY created_at DESC, id DESC LIMIT $2`, status, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: alerts: %w", err)
	}
	defer rows.Close()
	var out []StoredAlert
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: alerts: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// AlertsReferring returns the alerts that refer to id (its Updates and
// Cancels), oldest first.
func (d *DB) AlertsReferring(ctx context.Context, id string) ([]AlertLink, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT a.id, a.msg_type FROM alert_refs r JOIN alerts a ON a.id = r.alert_id
		WHERE r.ref_id = $1 ORDER BY a.created_at, a.id`, id)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: alerts referring: %w", err)
	}
	defer rows.Close()
	var out []AlertLink
	for rows.Next() {
		var l AlertLink
		if err := rows.Scan(&l.ID, &l.MsgType); err != nil {
			return nil, fmt.Errorf("sqlstore: alerts referring: %w", err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// DecideAlert moves an alert from status from to status to, recording who
// decided, when and why. It reports false when the alert was not in
// status from (already decided, or never pending).
func (d *DB) DecideAlert(ctx context.Context, id, from, to, by, reason string, at time.Time) (bool, error) {
	res, err := d.db.ExecContext(ctx, `UPDATE alerts SET status = $1, decided_by = $2, decided_at = $3, reason = $4
		WHERE id = $5 AND status = $6`, to, by, at.UTC(), reason, id, from)
	if err != nil {
		return false, fmt.Errorf("sqlstore: decide alert: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// MarkAlertPublished records that the alert's plan reached Kafka.
func (d *DB) MarkAlertPublished(ctx context.Context, id string, at time.Time) error {
	if _, err := d.db.ExecContext(ctx, `UPDATE alerts SET published_at = $1 WHERE id = $2 AND published_at IS NULL`, at.UTC(), id); err != nil {
		return fmt.Errorf("sqlstore: mark alert published: %w", err)
	}
	return nil
}

// UnpublishedAlerts returns up to limit alerts that are to be sent
// (pre-authorised or approved), unexpired at now, whose plan has not
// reached Kafka although they were accepted or approved before `before`:
// the alerts whose publish failed, for the relay.
func (d *DB) UnpublishedAlerts(ctx context.Context, before, now time.Time, limit int) ([]StoredAlert, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT id FROM alerts WHERE published_at IS NULL
		AND status IN ('sent_preauthorised', 'sent_approved') AND COALESCE(decided_at, created_at) < $1
		AND (expires_at IS NULL OR expires_at > $2) ORDER BY created_at LIMIT $3`, before.UTC(), now.UTC(), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: unpublished alerts: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlstore: unpublished alerts: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: unpublished alerts: %w", err)
	}
	out := make([]StoredAlert, 0, len(ids))
	for _, id := range ids {
		a, err := d.Alert(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// LeafAreaCentroids returns the units with a centroid that have no unit
// below them. An alert's polygon or circle selects among these: a
// province whose centroid happens to lie in a small polygon must not
// bring in every commune of the province.
func (d *DB) LeafAreaCentroids(ctx context.Context) ([]AreaCentroid, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT a.code, a.lat, a.lon FROM areas a
		WHERE a.lat IS NOT NULL AND a.lon IS NOT NULL AND NOT EXISTS (SELECT 1 FROM areas c WHERE c.parent = a.code)
		ORDER BY a.code`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: leaf area centroids: %w", err)
	}
	defer rows.Close()
	var out []AreaCentroid
	for rows.Next() {
		var c AreaCentroid
		if err := rows.Scan(&c.Code, &c.Lat, &c.Lon); err != nil {
			return nil, fmt.Errorf("sqlstore: leaf area centroids: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
