package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/loa-hub/loa/internal/areas"
)

// AreaNode is an administrative unit as the API shows it: with its
// centroid, when known, and how many units are directly below it.
type AreaNode struct {
	Code     string
	Name     string
	Parent   string
	Level    string
	Lat, Lon *float64
	Children int
}

// LoadAreas inserts or updates areas (name, parent, level and centroid)
// in one transaction: a file is loaded whole or not at all. Units not in
// the list are left as they are, so loading one province keeps the
// others. Safe for concurrent use.
func (d *DB) LoadAreas(ctx context.Context, list []areas.Area) error {
	defer d.trees.reset()
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: load areas: %w", err)
	}
	defer tx.Rollback()
	for _, a := range list {
		var lat, lon any
		if a.HasCentroid {
			lat, lon = a.Lat, a.Lon
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO areas (code, name, parent, level, lat, lon) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (code) DO UPDATE SET name = excluded.name, parent = excluded.parent, level = excluded.level,
			lat = excluded.lat, lon = excluded.lon`,
			a.Code, a.Name, nullIfEmpty(a.Parent), a.Level, lat, lon); err != nil {
			return fmt.Errorf("sqlstore: load areas: %s: %w", a.Code, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: load areas: %w", err)
	}
	return nil
}

// Areas returns the units directly below parent, or the top-level units
// (provinces) when parent is empty, ordered by code.
func (d *DB) Areas(ctx context.Context, parent string) ([]AreaNode, error) {
	q := `SELECT a.code, a.name, COALESCE(a.parent, ''), a.level, a.lat, a.lon,
		(SELECT COUNT(*) FROM areas c WHERE c.parent = a.code) FROM areas a WHERE `
	var args []any
	if parent == "" {
		q += `a.parent IS NULL OR a.parent = ''`
	} else {
		q += `a.parent = $1`
		args = append(args, parent)
	}
	rows, err := d.db.QueryContext(ctx, q+` ORDER BY a.code`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: areas: %w", err)
	}
	defer rows.Close()
	out := []AreaNode{}
	for rows.Next() {
		var (
			n        AreaNode
			lat, lon sql.NullFloat64
		)
		if err := rows.Scan(&n.Code, &n.Name, &n.Parent, &n.Level, &lat, &lon, &n.Children); err != nil {
			return nil, fmt.Errorf("sqlstore: areas: %w", err)
		}
		if lat.Valid && lon.Valid {
			n.Lat, n.Lon = &lat.Float64, &lon.Float64
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// AreaExists reports whether an area with code is loaded.
func (d *DB) AreaExists(ctx context.Context, code string) (bool, error) {
	var n int
	if err := d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM areas WHERE code = $1`, code).Scan(&n); err != nil {
		return false, fmt.Errorf("sqlstore: area exists: %w", err)
	}
	return n > 0, nil
}

// UnknownAreas returns the codes of codes that are not loaded, in the
// order given.
func (d *DB) UnknownAreas(ctx context.Context, codes []string) ([]string, error) {
	if len(codes) == 0 {
		return nil, nil
	}
	ph := make([]string, len(codes))
	args := make([]any, len(codes))
	for i, c := range codes {
		ph[i], args[i] = fmt.Sprintf("$%d", i+1), c
	}
	rows, err := d.db.QueryContext(ctx, `SELECT code FROM areas WHERE code IN (`+strings.Join(ph, ", ")+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: unknown areas: %w", err)
	}
	defer rows.Close()
	known := map[string]bool{}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("sqlstore: unknown areas: %w", err)
		}
		known[c] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: unknown areas: %w", err)
	}
	var out []string
	for _, c := range codes {
		if !known[c] {
			out = append(out, c)
		}
	}
	return out, nil
}

// AreaCentroids returns the code and centroid of every area that has one,
// ordered by code.
func (d *DB) AreaCentroids(ctx context.Context) ([]areas.Centroid, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT code, lat, lon FROM areas WHERE lat IS NOT NULL AND lon IS NOT NULL ORDER BY code`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: area centroids: %w", err)
	}
	defer rows.Close()
	var out []areas.Centroid
	for rows.Next() {
		var c areas.Centroid
		if err := rows.Scan(&c.Code, &c.Lat, &c.Lon); err != nil {
			return nil, fmt.Errorf("sqlstore: area centroids: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
