package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/loa-hub/loa/internal/areas"
	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/alert"
)

var _ alert.Store = (*DB)(nil)

const selectAlert = `SELECT id, cap_identifier, sender, sent, msg_type, refs, status, priority, document, issuer,
	area_codes, channels, expires_at, created_at, COALESCE(decided_by, ''), decided_at, reason, published_at,
	distribution, chain_key, audience, notes FROM alerts`

// CreateAlert inserts a (with its references, and its references to
// alerts not received yet) unless an alert with the same sender and CAP
// identifier exists. Updates and Cancels received earlier that referred
// to a are linked to it. It returns the stored row and whether this call
// created it; concurrent calls with one identifier return one row.
//
// The outbox items that publish it (none for an alert awaiting approval)
// are written in the same transaction, when it is created.
func (d *DB) CreateAlert(ctx context.Context, a alert.StoredAlert, outbox ...producer.OutboxItem) (alert.StoredAlert, bool, error) {
	aud, err := json.Marshal(a.Audience)
	if err != nil {
		return alert.StoredAlert{}, false, fmt.Errorf("sqlstore: create alert: %w", err)
	}
	notes, err := json.Marshal(a.Notes)
	if err != nil {
		return alert.StoredAlert{}, false, fmt.Errorf("sqlstore: create alert: %w", err)
	}
	if a.Distribution == "" {
		a.Distribution = "public"
	}
	areas, err := json.Marshal(nonNil(a.AreaCodes))
	if err != nil {
		return alert.StoredAlert{}, false, fmt.Errorf("sqlstore: create alert: %w", err)
	}
	chans, err := json.Marshal(nonNil(a.Channels))
	if err != nil {
		return alert.StoredAlert{}, false, fmt.Errorf("sqlstore: create alert: %w", err)
	}
	refs := a.References
	if len(refs) == 0 {
		refs = json.RawMessage("[]")
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return alert.StoredAlert{}, false, fmt.Errorf("sqlstore: create alert: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `INSERT INTO alerts (id, cap_identifier, sender, sent, msg_type, refs, status, priority,
		document, issuer, area_codes, channels, expires_at, created_at, reason, distribution, chain_key, audience, notes)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, '', $15, $16, $17, $18)
		ON CONFLICT (sender, cap_identifier) DO NOTHING`,
		a.ID, a.CAPIdentifier, a.Sender, a.Sent.UTC(), a.MsgType, string(refs), a.Status, a.Priority,
		string(a.Document), a.Issuer, string(areas), string(chans), nullTime(a.ExpiresAt), a.CreatedAt.UTC(),
		a.Distribution, a.ChainKey, string(aud), string(notes))
	if err != nil {
		return alert.StoredAlert{}, false, fmt.Errorf("sqlstore: create alert: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		tx.Rollback()
		got, err := d.AlertByIdentifier(ctx, a.Sender, a.CAPIdentifier)
		return got, false, err
	}
	for _, ref := range a.RefIDs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO alert_refs (alert_id, ref_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, a.ID, ref); err != nil {
			return alert.StoredAlert{}, false, fmt.Errorf("sqlstore: create alert: %w", err)
		}
	}
	for _, p := range a.PendingRefs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO alert_pending_refs (alert_id, ref_sender, ref_identifier) VALUES ($1, $2, $3)
			ON CONFLICT DO NOTHING`, a.ID, p.Sender, p.Identifier); err != nil {
			return alert.StoredAlert{}, false, fmt.Errorf("sqlstore: create alert: %w", err)
		}
	}
	// Updates and Cancels that arrived before this alert now refer to it.
	if _, err := tx.ExecContext(ctx, `INSERT INTO alert_refs (alert_id, ref_id)
		SELECT alert_id, $1 FROM alert_pending_refs WHERE ref_sender = $2 AND ref_identifier = $3 AND alert_id <> $1
		ON CONFLICT DO NOTHING`, a.ID, a.Sender, a.CAPIdentifier); err != nil {
		return alert.StoredAlert{}, false, fmt.Errorf("sqlstore: create alert: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM alert_pending_refs WHERE ref_sender = $1 AND ref_identifier = $2`,
		a.Sender, a.CAPIdentifier); err != nil {
		return alert.StoredAlert{}, false, fmt.Errorf("sqlstore: create alert: %w", err)
	}
	for _, it := range outbox {
		if err := schedule(ctx, tx, it, a.CreatedAt); err != nil {
			return alert.StoredAlert{}, false, fmt.Errorf("sqlstore: create alert: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return alert.StoredAlert{}, false, fmt.Errorf("sqlstore: create alert: %w", err)
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
func (d *DB) Alert(ctx context.Context, id string) (alert.StoredAlert, error) {
	return d.oneAlert(ctx, selectAlert+` WHERE id = $1`, id)
}

// AlertByIdentifier returns the alert a sender sent with a CAP
// identifier, or ErrNotFound.
func (d *DB) AlertByIdentifier(ctx context.Context, sender, identifier string) (alert.StoredAlert, error) {
	return d.oneAlert(ctx, selectAlert+` WHERE sender = $1 AND cap_identifier = $2`, sender, identifier)
}

func (d *DB) oneAlert(ctx context.Context, q string, args ...any) (alert.StoredAlert, error) {
	a, err := scanAlert(d.db.QueryRowContext(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return alert.StoredAlert{}, notFoundAs(alert.ErrNotFound, "alert")
	}
	if err != nil {
		return alert.StoredAlert{}, fmt.Errorf("sqlstore: alert: %w", err)
	}
	if a.RefIDs, err = d.alertRefs(ctx, `SELECT ref_id FROM alert_refs WHERE alert_id = $1 ORDER BY ref_id`, a.ID); err != nil {
		return alert.StoredAlert{}, err
	}
	rows, err := d.db.QueryContext(ctx, `SELECT ref_sender, ref_identifier FROM alert_pending_refs WHERE alert_id = $1
		ORDER BY ref_sender, ref_identifier`, a.ID)
	if err != nil {
		return alert.StoredAlert{}, fmt.Errorf("sqlstore: alert pending references: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r alert.Ref
		if err := rows.Scan(&r.Sender, &r.Identifier); err != nil {
			return alert.StoredAlert{}, fmt.Errorf("sqlstore: alert pending references: %w", err)
		}
		a.PendingRefs = append(a.PendingRefs, r)
	}
	return a, rows.Err()
}

// AlertsAwaiting returns the alerts (their Updates and Cancels, oldest
// first) that referred to sender's identifier before it was received.
func (d *DB) AlertsAwaiting(ctx context.Context, sender, identifier string) ([]alert.Link, error) {
	return d.alertLinks(ctx, "alerts awaiting", `SELECT a.id, a.msg_type, a.status, a.distribution FROM alert_pending_refs p JOIN alerts a ON a.id = p.alert_id
		WHERE p.ref_sender = $1 AND p.ref_identifier = $2 ORDER BY a.created_at, a.id`, sender, identifier)
}

// alertLinks runs a query of alerts (id, msg_type, status, distribution).
func (d *DB) alertLinks(ctx context.Context, what, q string, args ...any) ([]alert.Link, error) {
	rows, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: %s: %w", what, err)
	}
	defer rows.Close()
	var out []alert.Link
	for rows.Next() {
		var l alert.Link
		if err := rows.Scan(&l.ID, &l.MsgType, &l.Status, &l.Distribution); err != nil {
			return nil, fmt.Errorf("sqlstore: %s: %w", what, err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
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

func scanAlert(row scanner) (alert.StoredAlert, error) {
	var (
		a                                     alert.StoredAlert
		refs, doc, areas, chans, aud, notes   string
		sent, expires, created, decided, publ timeValue
	)
	if err := row.Scan(&a.ID, &a.CAPIdentifier, &a.Sender, &sent, &a.MsgType, &refs, &a.Status, &a.Priority, &doc, &a.Issuer,
		&areas, &chans, &expires, &created, &a.DecidedBy, &decided, &a.Reason, &publ,
		&a.Distribution, &a.ChainKey, &aud, &notes); err != nil {
		return alert.StoredAlert{}, err
	}
	if err := json.Unmarshal([]byte(aud), &a.Audience); err != nil {
		return alert.StoredAlert{}, err
	}
	if err := json.Unmarshal([]byte(notes), &a.Notes); err != nil {
		return alert.StoredAlert{}, err
	}
	a.References, a.Document = json.RawMessage(refs), json.RawMessage(doc)
	if err := json.Unmarshal([]byte(areas), &a.AreaCodes); err != nil {
		return alert.StoredAlert{}, err
	}
	if err := json.Unmarshal([]byte(chans), &a.Channels); err != nil {
		return alert.StoredAlert{}, err
	}
	a.Sent, a.ExpiresAt, a.CreatedAt, a.DecidedAt, a.PublishedAt = sent.t, expires.t, created.t, decided.t, publ.t
	return a, nil
}

// Alerts returns up to limit alerts with status ("" for every status)
// posted by issuer ("" for every issuer), newest first.
func (d *DB) Alerts(ctx context.Context, status, issuer string, limit int) ([]alert.StoredAlert, error) {
	rows, err := d.db.QueryContext(ctx, selectAlert+` WHERE ($1 = '' OR status = $1) AND ($2 = '' OR issuer = $2)
		ORDER BY created_at DESC, id DESC LIMIT $3`, status, issuer, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: alerts: %w", err)
	}
	defer rows.Close()
	var out []alert.StoredAlert
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
func (d *DB) AlertsReferring(ctx context.Context, id string) ([]alert.Link, error) {
	return d.alertLinks(ctx, "alerts referring", `SELECT a.id, a.msg_type, a.status, a.distribution FROM alert_refs r JOIN alerts a ON a.id = r.alert_id
		WHERE r.ref_id = $1 ORDER BY a.created_at, a.id`, id)
}

// DecideAlert moves an alert from status from to status to, recording who
// decided, when and why. It reports false when the alert was not in
// status from (already decided, or never pending). The outbox items that
// publish an approved alert are written in the same transaction, when it
// moved.
func (d *DB) DecideAlert(ctx context.Context, id, from, to, by, reason string, at time.Time, outbox ...producer.OutboxItem) (bool, error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("sqlstore: decide alert: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE alerts SET status = $1, decided_by = $2, decided_at = $3, reason = $4
		WHERE id = $5 AND status = $6`, to, by, at.UTC(), reason, id, from)
	if err != nil {
		return false, fmt.Errorf("sqlstore: decide alert: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return false, nil
	}
	for _, it := range outbox {
		if err := schedule(ctx, tx, it, at); err != nil {
			return false, fmt.Errorf("sqlstore: decide alert: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("sqlstore: decide alert: %w", err)
	}
	return true, nil
}

// MarkAlertPublished records that the alert's plan reached Kafka.
func (d *DB) MarkAlertPublished(ctx context.Context, id string, at time.Time) error {
	if err := markPublished(ctx, d.db, producer.RecordAlert, id, at); err != nil {
		return fmt.Errorf("sqlstore: mark alert published: %w", err)
	}
	return nil
}

// LeafAreaCentroids returns the units with a centroid that have no unit
// below them. An alert's polygon or circle selects among these: a
// province whose centroid happens to lie in a small polygon must not
// bring in every commune of the province.
func (d *DB) LeafAreaCentroids(ctx context.Context) ([]areas.Centroid, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT a.code, a.lat, a.lon FROM areas a
		WHERE a.lat IS NOT NULL AND a.lon IS NOT NULL AND NOT EXISTS (SELECT 1 FROM areas c WHERE c.parent = a.code)
		ORDER BY a.code`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: leaf area centroids: %w", err)
	}
	defer rows.Close()
	var out []areas.Centroid
	for rows.Next() {
		var c areas.Centroid
		if err := rows.Scan(&c.Code, &c.Lat, &c.Lon); err != nil {
			return nil, fmt.Errorf("sqlstore: leaf area centroids: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// AccountsByAddress resolves CAP <addresses> to active accounts: each
// address is matched as an account id, an official's user name, a
// citizen ID, a tax code or a verified phone (given normalised in phones,
// "" where the address is not a phone). A pending registration — which
// anyone may make with someone else's citizen ID — is never named, nor a
// closed account. It returns the account id of each address that
// resolved, by address.
func (d *DB) AccountsByAddress(ctx context.Context, addrs, phones []string) (map[string]string, error) {
	out := map[string]string{}
	for i, a := range addrs {
		ph := ""
		if i < len(phones) {
			ph = phones[i]
		}
		var id string
		err := d.db.QueryRowContext(ctx, `SELECT id FROM accounts WHERE status = 'active' AND (id = $1 OR username = $1
			OR citizen_id = $1 OR tax_code = $1 OR ($2 <> '' AND phone = $2 AND phone_verified_at IS NOT NULL))
			ORDER BY CASE WHEN id = $1 THEN 0 WHEN username = $1 THEN 1 ELSE 2 END LIMIT 1`, a, ph).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("sqlstore: accounts by address: %w", err)
		}
		out[a] = id
	}
	return out, nil
}
