package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Incident is an entry of the operators' incident log (migration 0159):
// opened with what is known, resolved once. Entries is its timeline, in
// order; only Incident (one) fills it.
type Incident struct {
	ID         string
	Title      string
	Severity   string // minor | major | critical
	Components []string
	StartedAt  time.Time
	OpenedAt   time.Time
	OpenedBy   string
	ResolvedAt time.Time // zero while open
	ResolvedBy string
	Cause      string
	Resolution string
	Entries    []IncidentEntry
}

// IncidentEntry is one line of an incident's timeline.
type IncidentEntry struct {
	Seq  int
	At   time.Time
	By   string
	Kind string // opened | note | resolved
	Body string
}

// ErrIncidentResolved is returned by ResolveIncident for an incident that
// was resolved already.
var ErrIncidentResolved = errors.New("sqlstore: the incident is resolved already")

// maxIncidentEntries bounds an incident's timeline, so that no caller can
// grow one row set without end.
const maxIncidentEntries = 1000

// ErrIncidentFull is returned by AddIncidentNote when the incident has
// maxIncidentEntries entries.
var ErrIncidentFull = fmt.Errorf("sqlstore: the incident has %d entries, the most it keeps", maxIncidentEntries)

// OpenIncident stores a new incident and its first entry (kind "opened",
// body: what was known when it was opened).
func (d *DB) OpenIncident(ctx context.Context, in Incident, description string) error {
	comps, err := json.Marshal(nonNil(in.Components))
	if err != nil {
		return fmt.Errorf("sqlstore: open incident: %w", err)
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: open incident: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO incidents (id, title, severity, components, started_at, opened_at, opened_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, in.ID, in.Title, in.Severity, string(comps), in.StartedAt.UTC(), in.OpenedAt.UTC(), in.OpenedBy); err != nil {
		return fmt.Errorf("sqlstore: open incident: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO incident_entries (incident_id, seq, at, by_whom, kind, body) VALUES ($1, 1, $2, $3, 'opened', $4)`,
		in.ID, in.OpenedAt.UTC(), in.OpenedBy, description); err != nil {
		return fmt.Errorf("sqlstore: open incident: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: open incident: %w", err)
	}
	return nil
}

// AddIncidentNote appends a note to an incident's timeline, open or
// resolved (a post-incident finding is a note too), and returns it.
// Errors: ErrNotFound, ErrIncidentFull.
func (d *DB) AddIncidentNote(ctx context.Context, id, by, body string, at time.Time) (IncidentEntry, error) {
	return d.addIncidentEntry(ctx, id, by, "note", body, at, nil)
}

// ResolveIncident resolves an open incident once, with its cause and what
// fixed it, and appends the "resolved" entry. Of two operators resolving
// at once, one wins; the other gets ErrIncidentResolved. Errors:
// ErrNotFound, ErrIncidentResolved, ErrIncidentFull.
func (d *DB) ResolveIncident(ctx context.Context, id, by, cause, resolution string, resolvedAt, at time.Time) (IncidentEntry, error) {
	return d.addIncidentEntry(ctx, id, by, "resolved", resolution, at, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE incidents SET resolved_at = $2, resolved_by = $3, cause = $4, resolution = $5
			WHERE id = $1 AND resolved_at IS NULL`, id, resolvedAt.UTC(), by, cause, resolution)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrIncidentResolved
		}
		return nil
	})
}

// addIncidentEntry appends an entry in one transaction with before (which
// may refuse it). The incident's row is locked first (an UPDATE that
// changes nothing), so that two writers number their entries one after
// the other.
func (d *DB) addIncidentEntry(ctx context.Context, id, by, kind, body string, at time.Time, before func(*sql.Tx) error) (IncidentEntry, error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return IncidentEntry{}, fmt.Errorf("sqlstore: incident entry: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE incidents SET id = id WHERE id = $1`, id)
	if err != nil {
		return IncidentEntry{}, fmt.Errorf("sqlstore: incident entry: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return IncidentEntry{}, fmt.Errorf("sqlstore: incident %s: %w", id, ErrNotFound)
	}
	if before != nil {
		if err := before(tx); err != nil {
			if errors.Is(err, ErrIncidentResolved) {
				return IncidentEntry{}, err
			}
			return IncidentEntry{}, fmt.Errorf("sqlstore: incident entry: %w", err)
		}
	}
	var seq int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) + 1 FROM incident_entries WHERE incident_id = $1`, id).Scan(&seq); err != nil {
		return IncidentEntry{}, fmt.Errorf("sqlstore: incident entry: %w", err)
	}
	if seq > maxIncidentEntries {
		return IncidentEntry{}, ErrIncidentFull
	}
	e := IncidentEntry{Seq: seq, At: at.UTC(), By: by, Kind: kind, Body: body}
	if _, err := tx.ExecContext(ctx, `INSERT INTO incident_entries (incident_id, seq, at, by_whom, kind, body) VALUES ($1, $2, $3, $4, $5, $6)`,
		id, e.Seq, e.At, e.By, e.Kind, e.Body); err != nil {
		return IncidentEntry{}, fmt.Errorf("sqlstore: incident entry: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return IncidentEntry{}, fmt.Errorf("sqlstore: incident entry: %w", err)
	}
	return e, nil
}

const selectIncident = `SELECT id, title, severity, components, started_at, opened_at, opened_by, resolved_at, resolved_by, cause, resolution FROM incidents`

func scanIncident(s scanner) (Incident, error) {
	var (
		in                          Incident
		comps                       string
		started, opened, resolvedAt timeValue
	)
	if err := s.Scan(&in.ID, &in.Title, &in.Severity, &comps, &started, &opened, &in.OpenedBy, &resolvedAt, &in.ResolvedBy, &in.Cause, &in.Resolution); err != nil {
		return Incident{}, err
	}
	in.StartedAt, in.OpenedAt, in.ResolvedAt = started.t, opened.t, resolvedAt.t
	if err := json.Unmarshal([]byte(comps), &in.Components); err != nil {
		return Incident{}, fmt.Errorf("components: %w", err)
	}
	return in, nil
}

// Incident returns one incident with its timeline, or ErrNotFound.
func (d *DB) Incident(ctx context.Context, id string) (Incident, error) {
	in, err := scanIncident(d.db.QueryRowContext(ctx, selectIncident+` WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Incident{}, fmt.Errorf("sqlstore: incident %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Incident{}, fmt.Errorf("sqlstore: incident: %w", err)
	}
	rows, err := d.db.QueryContext(ctx, `SELECT seq, at, by_whom, kind, body FROM incident_entries WHERE incident_id = $1 ORDER BY seq`, id)
	if err != nil {
		return Incident{}, fmt.Errorf("sqlstore: incident: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			e  IncidentEntry
			at timeValue
		)
		if err := rows.Scan(&e.Seq, &at, &e.By, &e.Kind, &e.Body); err != nil {
			return Incident{}, fmt.Errorf("sqlstore: incident: %w", err)
		}
		e.At = at.t
		in.Entries = append(in.Entries, e)
	}
	return in, rows.Err()
}

// Incidents lists up to limit incidents, the most recently opened first,
// opened before the cursor (at, id) when it is given; open only, resolved
// only, or both ("").
func (d *DB) Incidents(ctx context.Context, status string, beforeAt time.Time, beforeID string, limit int) ([]Incident, error) {
	q := selectIncident + ` WHERE ($2 = '' OR ($2 = 'open') = (resolved_at IS NULL))`
	args := []any{limit, status}
	if !beforeAt.IsZero() {
		q += ` AND (opened_at < $3 OR (opened_at = $3 AND id < $4))`
		args = append(args, beforeAt.UTC(), beforeID)
	}
	rows, err := d.db.QueryContext(ctx, q+` ORDER BY opened_at DESC, id DESC LIMIT $1`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: incidents: %w", err)
	}
	defer rows.Close()
	var out []Incident
	for rows.Next() {
		in, err := scanIncident(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: incidents: %w", err)
		}
		out = append(out, in)
	}
	return out, rows.Err()
}
