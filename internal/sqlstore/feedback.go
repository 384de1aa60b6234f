package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/feedback"
)

var _ feedback.Store = (*DB)(nil)

// notFoundAs wraps both ErrNotFound and a domain's own sentinel.
func notFoundAs(domain error, what string) error {
	return fmt.Errorf("sqlstore: %s: %w (%w)", what, domain, ErrNotFound)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// FeedbackCategories returns every category, by code.
func (d *DB) FeedbackCategories(ctx context.Context) ([]feedback.Category, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT code, name, name_en, grp, agency, handling_days, active FROM feedback_categories ORDER BY code`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: feedback categories: %w", err)
	}
	defer rows.Close()
	var out []feedback.Category
	for rows.Next() {
		var (
			c      feedback.Category
			active int
		)
		if err := rows.Scan(&c.Code, &c.Name, &c.NameEN, &c.Group, &c.Agency, &c.HandlingDays, &active); err != nil {
			return nil, fmt.Errorf("sqlstore: feedback categories: %w", err)
		}
		c.Active = active == 1
		out = append(out, c)
	}
	return out, rows.Err()
}

// FeedbackCategory returns one category.
func (d *DB) FeedbackCategory(ctx context.Context, code string) (feedback.Category, error) {
	var (
		c      feedback.Category
		active int
	)
	err := d.db.QueryRowContext(ctx, `SELECT code, name, name_en, grp, agency, handling_days, active FROM feedback_categories WHERE code = $1`, code).
		Scan(&c.Code, &c.Name, &c.NameEN, &c.Group, &c.Agency, &c.HandlingDays, &active)
	if errors.Is(err, sql.ErrNoRows) {
		return c, notFoundAs(feedback.ErrNotFound, "feedback category "+code)
	}
	if err != nil {
		return c, fmt.Errorf("sqlstore: feedback category: %w", err)
	}
	c.Active = active == 1
	return c, nil
}

// PutFeedbackCategory creates or replaces a category.
func (d *DB) PutFeedbackCategory(ctx context.Context, c feedback.Category) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO feedback_categories (code, name, name_en, grp, agency, handling_days, active)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (code) DO UPDATE SET name = excluded.name, name_en = excluded.name_en, grp = excluded.grp,
		agency = excluded.agency, handling_days = excluded.handling_days, active = excluded.active`,
		c.Code, c.Name, c.NameEN, c.Group, c.Agency, c.HandlingDays, b2i(c.Active))
	if err != nil {
		return fmt.Errorf("sqlstore: put feedback category: %w", err)
	}
	return nil
}

// FeedbackRoutes returns a category's routes, by area.
func (d *DB) FeedbackRoutes(ctx context.Context, category string) ([]feedback.Route, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT category, area, agency FROM feedback_routes WHERE category = $1 ORDER BY area`, category)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: feedback routes: %w", err)
	}
	defer rows.Close()
	var out []feedback.Route
	for rows.Next() {
		var r feedback.Route
		if err := rows.Scan(&r.Category, &r.Area, &r.Agency); err != nil {
			return nil, fmt.Errorf("sqlstore: feedback routes: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// PutFeedbackRoute creates or replaces a route.
func (d *DB) PutFeedbackRoute(ctx context.Context, r feedback.Route) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO feedback_routes (category, area, agency) VALUES ($1, $2, $3)
		ON CONFLICT (category, area) DO UPDATE SET agency = excluded.agency`, r.Category, r.Area, r.Agency)
	if err != nil {
		return fmt.Errorf("sqlstore: put feedback route: %w", err)
	}
	return nil
}

// DeleteFeedbackRoute removes a route; false when there was none.
func (d *DB) DeleteFeedbackRoute(ctx context.Context, category, area string) (bool, error) {
	res, err := d.db.ExecContext(ctx, `DELETE FROM feedback_routes WHERE category = $1 AND area = $2`, category, area)
	if err != nil {
		return false, fmt.Errorf("sqlstore: delete feedback route: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// AreaLineage returns code and the codes above it, nearest first.
func (d *DB) AreaLineage(ctx context.Context, code string) ([]string, error) {
	var out []string
	for cur := code; cur != "" && len(out) < 10; {
		var parent sql.NullString
		err := d.db.QueryRowContext(ctx, `SELECT parent FROM areas WHERE code = $1`, cur).Scan(&parent)
		if errors.Is(err, sql.ErrNoRows) {
			if len(out) == 0 {
				return nil, notFoundAs(feedback.ErrNotFound, "area "+code)
			}
			break
		}
		if err != nil {
			return nil, fmt.Errorf("sqlstore: area lineage: %w", err)
		}
		out = append(out, cur)
		cur = parent.String
	}
	return out, nil
}

// NearestArea returns the area with no unit below it whose centroid is
// nearest to the point; "" when no such area has a centroid. It looks in
// a box around the point first and widens it when the box is empty.
func (d *DB) NearestArea(ctx context.Context, lat, lon float64) (string, error) {
	for _, r := range []float64{0.25, 1, 4, 180} {
		rows, err := d.db.QueryContext(ctx, `SELECT a.code, a.lat, a.lon FROM areas a
			WHERE a.lat IS NOT NULL AND a.lon IS NOT NULL AND a.lat BETWEEN $1 AND $2 AND a.lon BETWEEN $3 AND $4
			AND NOT EXISTS (SELECT 1 FROM areas c WHERE c.parent = a.code)`, lat-r, lat+r, lon-r, lon+r)
		if err != nil {
			return "", fmt.Errorf("sqlstore: nearest area: %w", err)
		}
		best, bestD := "", math.Inf(1)
		for rows.Next() {
			var (
				code   string
				la, lo float64
			)
			if err := rows.Scan(&code, &la, &lo); err != nil {
				rows.Close()
				return "", fmt.Errorf("sqlstore: nearest area: %w", err)
			}
			dl, dn := la-lat, (lo-lon)*math.Cos(lat*math.Pi/180)
			if dd := dl*dl + dn*dn; dd < bestD || dd == bestD && code < best {
				best, bestD = code, dd
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return "", fmt.Errorf("sqlstore: nearest area: %w", err)
		}
		if best != "" {
			return best, nil
		}
	}
	return "", nil
}

// AreaPlaces returns the name and centroid of each known code.
func (d *DB) AreaPlaces(ctx context.Context, codes []string) (map[string]feedback.Place, error) {
	out := map[string]feedback.Place{}
	for _, c := range codes {
		if _, ok := out[c]; ok {
			continue
		}
		var (
			p        feedback.Place
			lat, lon sql.NullFloat64
		)
		err := d.db.QueryRowContext(ctx, `SELECT name, lat, lon FROM areas WHERE code = $1`, c).Scan(&p.Name, &lat, &lon)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("sqlstore: area places: %w", err)
		}
		if lat.Valid && lon.Valid {
			p.HasCentroid, p.Lat, p.Lon = true, lat.Float64, lon.Float64
		}
		out[c] = p
	}
	return out, nil
}

const feedbackColumns = `id, category, title, description, has_point, lat, lon, area, address, citizen_account, citizen_phone,
	citizen_name, public, photos, media_url, source, client_id, status, version, agency, due_at, answer, reject_reason, note, rating,
	rating_note, rated_at, reopened, created_at, updated_at, answered_at, closed_at, masked_rules, masked_version, masked_title,
	masked_description, masked_answer`

func feedbackArgs(f feedback.Feedback) []any {
	photos, _ := json.Marshal(f.Photos)
	if f.Photos == nil {
		photos = []byte("[]")
	}
	var lat, lon any
	if f.Location.HasPoint {
		lat, lon = f.Location.Lat, f.Location.Lon
	}
	return []any{f.ID, f.Category, f.Title, f.Description, b2i(f.Location.HasPoint), lat, lon, f.Location.Area, f.Location.Address,
		f.Citizen.AccountID, f.Citizen.Phone, f.Citizen.Name, b2i(f.Citizen.Public), string(photos), f.MediaURL, f.Source, f.ClientID,
		string(f.Status), f.Version, f.Agency, f.DueAt.UTC(), f.Answer, f.RejectReason, f.Note, f.Rating, f.RatingNote, nullTime(f.RatedAt),
		b2i(f.Reopened), f.CreatedAt.UTC(), f.UpdatedAt.UTC(), nullTime(f.AnsweredAt), nullTime(f.ClosedAt),
		f.Masked.Rules, f.Masked.Version, f.Masked.Title, f.Masked.Description, f.Masked.Answer}
}

type rowScanner interface{ Scan(dest ...any) error }

func scanFeedback(r rowScanner) (feedback.Feedback, error) {
	var (
		f                                  feedback.Feedback
		hasPoint, public, reopened         int
		lat, lon                           sql.NullFloat64
		photos, status                     string
		due, rated, created, updated, ansd timeValue
		closed                             timeValue
	)
	err := r.Scan(&f.ID, &f.Category, &f.Title, &f.Description, &hasPoint, &lat, &lon, &f.Location.Area, &f.Location.Address,
		&f.Citizen.AccountID, &f.Citizen.Phone, &f.Citizen.Name, &public, &photos, &f.MediaURL, &f.Source, &f.ClientID,
		&status, &f.Version, &f.Agency, &due, &f.Answer, &f.RejectReason, &f.Note, &f.Rating, &f.RatingNote, &rated,
		&reopened, &created, &updated, &ansd, &closed, &f.Masked.Rules, &f.Masked.Version, &f.Masked.Title, &f.Masked.Description,
		&f.Masked.Answer)
	if err != nil {
		return f, err
	}
	f.Location.HasPoint, f.Citizen.Public, f.Reopened = hasPoint == 1, public == 1, reopened == 1
	if f.Location.HasPoint {
		f.Location.Lat, f.Location.Lon = lat.Float64, lon.Float64
	}
	if err := json.Unmarshal([]byte(photos), &f.Photos); err != nil {
		return f, fmt.Errorf("photos: %w", err)
	}
	f.Status = feedback.Status(status)
	f.DueAt, f.RatedAt, f.CreatedAt, f.UpdatedAt, f.AnsweredAt, f.ClosedAt = due.t, rated.t, created.t, updated.t, ansd.t, closed.t
	return f, nil
}

// CreateFeedback stores a new matter with its events and outbox items in
// one transaction.
func (d *DB) CreateFeedback(ctx context.Context, f feedback.Feedback, events []feedback.Event, items []producer.OutboxItem) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: create feedback: %w", err)
	}
	defer tx.Rollback()
	ph := make([]string, 37)
	for i := range ph {
		ph[i] = fmt.Sprintf("$%d", i+1)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO feedback (`+feedbackColumns+`) VALUES (`+strings.Join(ph, ", ")+`)`, feedbackArgs(f)...); err != nil {
		return fmt.Errorf("sqlstore: create feedback: %w", err)
	}
	for i, e := range events {
		if err := recordFeedbackEvent(ctx, tx, f.ID, i+1, e, ""); err != nil {
			return err
		}
	}
	for _, it := range items {
		if err := schedule(ctx, tx, it, f.CreatedAt); err != nil {
			return fmt.Errorf("sqlstore: create feedback: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: create feedback: %w", err)
	}
	return nil
}

func recordFeedbackEvent(ctx context.Context, tx *sql.Tx, id string, seq int, e feedback.Event, ip string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO feedback_history (feedback_id, seq, at, actor, action, from_status, to_status, agency, note)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, id, seq, e.At.UTC(), e.Actor, e.Action, string(e.From), string(e.To), e.Agency, e.Note); err != nil {
		return fmt.Errorf("sqlstore: feedback history: %w", err)
	}
	detail := map[string]string{"from": string(e.From), "to": string(e.To)}
	if e.Agency != "" {
		detail["agency"] = e.Agency
	}
	raw, _ := json.Marshal(detail)
	// The audit row is written with the step, so no step is without it.
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit_log (id, at, actor, action, subject, detail, ip) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		uuid.NewString(), e.At.UTC(), e.Actor, "feedback."+e.Action, id, string(raw), ip); err != nil {
		return fmt.Errorf("sqlstore: feedback audit: %w", err)
	}
	return nil
}

// Feedback returns one matter.
func (d *DB) Feedback(ctx context.Context, id string) (feedback.Feedback, error) {
	f, err := scanFeedback(d.db.QueryRowContext(ctx, `SELECT `+feedbackColumns+` FROM feedback WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return f, notFoundAs(feedback.ErrNotFound, "feedback "+id)
	}
	if err != nil {
		return f, fmt.Errorf("sqlstore: feedback: %w", err)
	}
	return f, nil
}

// TransitionFeedback stores t.Next if the matter is still at t.From's
// version (and makes it the next version), with its event and audit entry; cancels the
// pending items of t.Cancel and writes t.Items; all in one transaction.
func (d *DB) TransitionFeedback(ctx context.Context, t feedback.Transition) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: transition feedback: %w", err)
	}
	defer tx.Rollback()
	n := t.Next
	res, err := tx.ExecContext(ctx, `UPDATE feedback SET status = $1, agency = $2, due_at = $3, answer = $4, reject_reason = $5, note = $6,
		rating = $7, rating_note = $8, rated_at = $9, reopened = $10, updated_at = $11, answered_at = $12, closed_at = $13,
		version = $14, masked_rules = $17, masked_version = $18, masked_title = $19, masked_description = $20, masked_answer = $21
		WHERE id = $15 AND version = $16`,
		string(n.Status), n.Agency, n.DueAt.UTC(), n.Answer, n.RejectReason, n.Note, n.Rating, n.RatingNote, nullTime(n.RatedAt),
		b2i(n.Reopened), n.UpdatedAt.UTC(), nullTime(n.AnsweredAt), nullTime(n.ClosedAt), t.From.Version+1,
		n.ID, t.From.Version, n.Masked.Rules, n.Masked.Version, n.Masked.Title, n.Masked.Description, n.Masked.Answer)
	if err != nil {
		return fmt.Errorf("sqlstore: transition feedback: %w", err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return fmt.Errorf("sqlstore: transition feedback %s: %w", n.ID, feedback.ErrConflict)
	}
	var seq int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) + 1 FROM feedback_history WHERE feedback_id = $1`, n.ID).Scan(&seq); err != nil {
		return fmt.Errorf("sqlstore: transition feedback: %w", err)
	}
	if err := recordFeedbackEvent(ctx, tx, n.ID, seq, t.Event, t.IP); err != nil {
		return err
	}
	if t.Cancel != "" {
		if _, err := tx.ExecContext(ctx, `UPDATE scheduled_items SET status = 'cancelled' WHERE subject = $1 AND status = 'pending'`, t.Cancel); err != nil {
			return fmt.Errorf("sqlstore: transition feedback: %w", err)
		}
	}
	for _, it := range t.Items {
		if err := schedule(ctx, tx, it, n.UpdatedAt); err != nil {
			return fmt.Errorf("sqlstore: transition feedback: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: transition feedback: %w", err)
	}
	return nil
}

// MaskFeedback stores the masked texts a public read computed, each only
// over the version it was computed from and over older rules or another
// version's masks (a process of an older release, during an upgrade,
// leaves newer rules' masks alone).
func (d *DB) MaskFeedback(ctx context.Context, list []feedback.Feedback) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: mask feedback: %w", err)
	}
	defer tx.Rollback()
	for _, f := range list {
		m := f.Masked
		if _, err := tx.ExecContext(ctx, `UPDATE feedback SET masked_rules = $1, masked_version = $6, masked_title = $2,
			masked_description = $3, masked_answer = $4
			WHERE id = $5 AND version = $6 AND (masked_rules < $1 OR masked_rules = $1 AND masked_version <> $6)`,
			m.Rules, m.Title, m.Description, m.Answer, f.ID, f.Version); err != nil {
			return fmt.Errorf("sqlstore: mask feedback: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: mask feedback: %w", err)
	}
	return nil
}

// FeedbackHistory returns a matter's steps in order.
func (d *DB) FeedbackHistory(ctx context.Context, id string) ([]feedback.Event, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT seq, at, actor, action, from_status, to_status, agency, note FROM feedback_history
		WHERE feedback_id = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: feedback history: %w", err)
	}
	defer rows.Close()
	var out []feedback.Event
	for rows.Next() {
		var (
			e        feedback.Event
			at       timeValue
			from, to string
		)
		if err := rows.Scan(&e.Seq, &at, &e.Actor, &e.Action, &from, &to, &e.Agency, &e.Note); err != nil {
			return nil, fmt.Errorf("sqlstore: feedback history: %w", err)
		}
		e.At, e.From, e.To = at.t, feedback.Status(from), feedback.Status(to)
		out = append(out, e)
	}
	return out, rows.Err()
}

// ListFeedback lists matters newest first. Filter.Before is an id: the
// list continues after it.
func (d *DB) ListFeedback(ctx context.Context, f feedback.Filter) ([]feedback.Feedback, error) {
	q, args := listFeedbackQuery(f)
	rows, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list feedback: %w", err)
	}
	defer rows.Close()
	var out []feedback.Feedback
	for rows.Next() {
		fb, err := scanFeedback(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list feedback: %w", err)
		}
		out = append(out, fb)
	}
	return out, rows.Err()
}

// listFeedbackQuery is ListFeedback's query, newest first. The filters
// by category, area and agency each have an index in id order (0166), so
// a filter that matches few matters, or none, reads those only.
func listFeedbackQuery(f feedback.Filter) (string, []any) {
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if len(f.Statuses) > 0 {
		var ph []string
		for _, s := range f.Statuses {
			ph = append(ph, arg(string(s)))
		}
		where = append(where, "status IN ("+strings.Join(ph, ", ")+")")
	}
	if len(f.IDs) > 0 {
		var ph []string
		for _, id := range f.IDs {
			ph = append(ph, arg(id))
		}
		where = append(where, "id IN ("+strings.Join(ph, ", ")+")")
	}
	if f.Agency != "" {
		where = append(where, "agency = "+arg(f.Agency))
	}
	if f.Category != "" {
		where = append(where, "category = "+arg(f.Category))
	}
	if f.Area != "" {
		where = append(where, "area = "+arg(f.Area))
	}
	if f.Citizen != "" {
		where = append(where, "citizen_account = "+arg(f.Citizen))
	}
	if !f.From.IsZero() {
		where = append(where, "created_at >= "+arg(f.From.UTC()))
	}
	if !f.To.IsZero() {
		where = append(where, "created_at <= "+arg(f.To.UTC()))
	}
	if f.Before != "" {
		// Ids are UUIDv7: their order is their creation order.
		where = append(where, "id < "+arg(f.Before))
	}
	q := `SELECT ` + feedbackColumns + ` FROM feedback`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	q += " ORDER BY id DESC LIMIT " + arg(limit)
	return q, args
}

// FeedbackStats counts per agency: received (every matter it has or had
// at the end), answered, answered by the deadline, late (answered after
// it, or open past it at now), and the ratings.
func (d *DB) FeedbackStats(ctx context.Context, now time.Time) ([]feedback.AgencyStat, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT agency, status, due_at, answered_at, rating FROM feedback WHERE agency <> ''`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: feedback stats: %w", err)
	}
	defer rows.Close()
	by := map[string]*feedback.AgencyStat{}
	var order []string
	sums := map[string]int{}
	for rows.Next() {
		var (
			agency, status string
			due, answered  timeValue
			rating         int
		)
		if err := rows.Scan(&agency, &status, &due, &answered, &rating); err != nil {
			return nil, fmt.Errorf("sqlstore: feedback stats: %w", err)
		}
		s := by[agency]
		if s == nil {
			s = &feedback.AgencyStat{Agency: agency}
			by[agency] = s
			order = append(order, agency)
		}
		s.Received++
		switch {
		case !answered.t.IsZero():
			s.Answered++
			if answered.t.After(due.t) {
				s.Late++
			} else {
				s.AnsweredOnTime++
			}
		case feedback.Status(status).Open() && now.After(due.t):
			s.Late++
		}
		if rating > 0 {
			s.Rated++
			sums[agency] += rating
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: feedback stats: %w", err)
	}
	out := make([]feedback.AgencyStat, 0, len(order))
	slices.Sort(order)
	for _, a := range order {
		s := *by[a]
		if s.Rated > 0 {
			s.AverageRating = math.Round(float64(sums[a])/float64(s.Rated)*100) / 100
		}
		out = append(out, s)
	}
	return out, nil
}

// OfficialsWithRole returns the active officials holding role in unit.
func (d *DB) OfficialsWithRole(ctx context.Context, unit, role string) ([]string, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT g.account_id FROM role_grants g JOIN accounts a ON a.id = g.account_id
		WHERE g.unit = $1 AND g.role = $2 AND a.status = 'active' ORDER BY g.account_id`, unit, role)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: officials with role: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("sqlstore: officials with role: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// CitizenByPhone returns the active citizen or organisation whose
// verified phone this is.
func (d *DB) CitizenByPhone(ctx context.Context, phone string) (feedback.Citizen, bool, error) {
	var c feedback.Citizen
	err := d.db.QueryRowContext(ctx, `SELECT id, full_name, phone FROM accounts WHERE phone = $1 AND phone_verified_at IS NOT NULL
		AND status = 'active' AND kind IN ('citizen', 'organisation')`, phone).Scan(&c.AccountID, &c.Name, &c.Phone)
	if errors.Is(err, sql.ErrNoRows) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("sqlstore: citizen by phone: %w", err)
	}
	return c, true, nil
}

// Citizen returns an account's name and phone.
func (d *DB) Citizen(ctx context.Context, accountID string) (feedback.Citizen, error) {
	var (
		c     feedback.Citizen
		phone sql.NullString
	)
	err := d.db.QueryRowContext(ctx, `SELECT id, full_name, phone FROM accounts WHERE id = $1`, accountID).Scan(&c.AccountID, &c.Name, &phone)
	if errors.Is(err, sql.ErrNoRows) {
		return c, notFoundAs(feedback.ErrNotFound, "account "+accountID)
	}
	if err != nil {
		return c, fmt.Errorf("sqlstore: citizen: %w", err)
	}
	c.Phone = phone.String
	return c, nil
}

// CountKeyFeedbackSince counts the matters an integrating system created
// since a time, over every phone, and how many of them have photos.
func (d *DB) CountKeyFeedbackSince(ctx context.Context, client string, since time.Time) (int, int, error) {
	var n, photos int
	err := d.db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN photos <> '[]' THEN 1 ELSE 0 END), 0)
		FROM feedback WHERE client_id = $1 AND created_at >= $2`, client, since.UTC()).Scan(&n, &photos)
	if err != nil {
		return 0, 0, fmt.Errorf("sqlstore: count a key's feedback: %w", err)
	}
	return n, photos, nil
}

// CountFeedbackSince counts the matters created since a time by an
// integrating system (client not empty) for a phone, else by an account
// from its own session.
func (d *DB) CountFeedbackSince(ctx context.Context, client, account, phone string, since time.Time) (int, error) {
	q, args := `SELECT COUNT(*) FROM feedback WHERE client_id = '' AND citizen_account = $1 AND created_at >= $2`, []any{account, since.UTC()}
	if client != "" {
		q, args = `SELECT COUNT(*) FROM feedback WHERE client_id = $1 AND citizen_phone = $2 AND created_at >= $3`, []any{client, phone, since.UTC()}
	}
	var n int
	if err := d.db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlstore: count feedback: %w", err)
	}
	return n, nil
}
