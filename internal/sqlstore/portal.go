package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/portal"
)

var _ portal.Store = (*DB)(nil)

// PortalCategories returns every portal category, by code.
func (d *DB) PortalCategories(ctx context.Context) ([]portal.Category, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT code, name, name_en, unit, topic FROM portal_categories ORDER BY code`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: portal categories: %w", err)
	}
	defer rows.Close()
	var out []portal.Category
	for rows.Next() {
		var c portal.Category
		if err := rows.Scan(&c.Code, &c.Name, &c.NameEN, &c.Unit, &c.Topic); err != nil {
			return nil, fmt.Errorf("sqlstore: portal categories: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// PortalCategory returns one category.
func (d *DB) PortalCategory(ctx context.Context, code string) (portal.Category, error) {
	var c portal.Category
	err := d.db.QueryRowContext(ctx, `SELECT code, name, name_en, unit, topic FROM portal_categories WHERE code = $1`, code).
		Scan(&c.Code, &c.Name, &c.NameEN, &c.Unit, &c.Topic)
	if errors.Is(err, sql.ErrNoRows) {
		return c, notFoundAs(portal.ErrNotFound, "portal category "+code)
	}
	if err != nil {
		return c, fmt.Errorf("sqlstore: portal category: %w", err)
	}
	return c, nil
}

// PutPortalCategory creates or replaces a category.
func (d *DB) PutPortalCategory(ctx context.Context, c portal.Category) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO portal_categories (code, name, name_en, unit, topic) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (code) DO UPDATE SET name = excluded.name, name_en = excluded.name_en, unit = excluded.unit, topic = excluded.topic`,
		c.Code, c.Name, c.NameEN, c.Unit, c.Topic)
	if err != nil {
		return fmt.Errorf("sqlstore: put portal category: %w", err)
	}
	return nil
}

const articleColumns = `id, category, status, vi, en, cover, urgent, revision, version, created_by, submitted_by, approved_by,
	comment, publish_at, published_at, created_at, updated_at`

func textJSON(t *portal.Text) any {
	if t == nil {
		return nil
	}
	b, _ := json.Marshal(t)
	return string(b)
}

func slugOf(t *portal.Text) any {
	if t == nil {
		return nil
	}
	return t.Slug
}

func scanArticle(r rowScanner) (portal.Article, error) {
	var (
		a                                    portal.Article
		status, vi                           string
		en, cover                            sql.NullString
		urgent                               int
		publishAt, publishedAt, created, upd timeValue
	)
	err := r.Scan(&a.ID, &a.Category, &status, &vi, &en, &cover, &urgent, &a.Revision, &a.Version, &a.CreatedBy, &a.SubmittedBy,
		&a.ApprovedBy, &a.Comment, &publishAt, &publishedAt, &created, &upd)
	if err != nil {
		return a, err
	}
	a.Status, a.Urgent = portal.Status(status), urgent == 1
	if err := json.Unmarshal([]byte(vi), &a.VI); err != nil {
		return a, err
	}
	if en.Valid {
		a.EN = &portal.Text{}
		if err := json.Unmarshal([]byte(en.String), a.EN); err != nil {
			return a, err
		}
	}
	if cover.Valid {
		a.Cover = &portal.Image{}
		if err := json.Unmarshal([]byte(cover.String), a.Cover); err != nil {
			return a, err
		}
	}
	a.PublishAt, a.PublishedAt, a.CreatedAt, a.UpdatedAt = publishAt.t, publishedAt.t, created.t, upd.t
	return a, nil
}

func coverJSON(c *portal.Image) any {
	if c == nil {
		return nil
	}
	b, _ := json.Marshal(c)
	return string(b)
}

// CreateArticle stores a new article with its first revision and event.
func (d *DB) CreateArticle(ctx context.Context, a portal.Article, rev portal.Revision, ev portal.Event) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: create article: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO articles (id, category, status, vi, en, slug_vi, slug_en, cover, urgent, revision, version,
		created_by, submitted_by, approved_by, comment, publish_at, published_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
		a.ID, a.Category, string(a.Status), textJSON(&a.VI), textJSON(a.EN), a.VI.Slug, slugOf(a.EN), coverJSON(a.Cover), b2i(a.Urgent),
		a.Revision, a.Version, a.CreatedBy, a.SubmittedBy, a.ApprovedBy, a.Comment, nullTime(a.PublishAt), nullTime(a.PublishedAt),
		a.CreatedAt.UTC(), a.UpdatedAt.UTC()); err != nil {
		return fmt.Errorf("sqlstore: create article: %w", err)
	}
	if err := insertRevision(ctx, tx, a.ID, rev); err != nil {
		return err
	}
	if err := recordArticleEvent(ctx, tx, a.ID, ev, ""); err != nil {
		return err
	}
	return tx.Commit()
}

func insertRevision(ctx context.Context, tx *sql.Tx, id string, r portal.Revision) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO article_revisions (article_id, number, at, by_account, note, vi, en) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		id, r.Number, r.At.UTC(), r.By, r.Note, textJSON(&r.VI), textJSON(r.EN)); err != nil {
		return fmt.Errorf("sqlstore: article revision: %w", err)
	}
	return nil
}

func recordArticleEvent(ctx context.Context, tx *sql.Tx, id string, e portal.Event, ip string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO article_history (article_id, seq, at, actor, action, from_status, to_status, note)
		VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM article_history WHERE article_id = $1), $2, $3, $4, $5, $6, $7)`,
		id, e.At.UTC(), e.Actor, e.Action, string(e.From), string(e.To), e.Note); err != nil {
		return fmt.Errorf("sqlstore: article history: %w", err)
	}
	raw, _ := json.Marshal(map[string]string{"from": string(e.From), "to": string(e.To)})
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit_log (id, at, actor, action, subject, detail, ip) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		uuid.NewString(), e.At.UTC(), e.Actor, "article."+e.Action, id, string(raw), ip); err != nil {
		return fmt.Errorf("sqlstore: article audit: %w", err)
	}
	return nil
}

// Article returns one article.
func (d *DB) Article(ctx context.Context, id string) (portal.Article, error) {
	a, err := scanArticle(d.db.QueryRowContext(ctx, `SELECT `+articleColumns+` FROM articles WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return a, notFoundAs(portal.ErrNotFound, "article "+id)
	}
	if err != nil {
		return a, fmt.Errorf("sqlstore: article: %w", err)
	}
	return a, nil
}

// ArticleBySlug finds an article by either language's slug.
func (d *DB) ArticleBySlug(ctx context.Context, slug string) (portal.Article, error) {
	a, err := scanArticle(d.db.QueryRowContext(ctx, `SELECT `+articleColumns+` FROM articles WHERE slug_vi = $1 OR slug_en = $1`, slug))
	if errors.Is(err, sql.ErrNoRows) {
		return a, notFoundAs(portal.ErrNotFound, "article "+slug)
	}
	if err != nil {
		return a, fmt.Errorf("sqlstore: article by slug: %w", err)
	}
	return a, nil
}

// SlugTaken reports whether an article other than id has the slug.
func (d *DB) SlugTaken(ctx context.Context, slug, id string) (bool, error) {
	var n int
	err := d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM articles WHERE (slug_vi = $1 OR slug_en = $1) AND id <> $2`, slug, id).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("sqlstore: slug taken: %w", err)
	}
	return n > 0, nil
}

// UpdateArticle stores next over from's version with its revision, event
// and outbox changes, in one transaction.
func (d *DB) UpdateArticle(ctx context.Context, from, next portal.Article, rev *portal.Revision, ev portal.Event, cancel string, items []producer.OutboxItem) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: update article: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE articles SET status = $1, vi = $2, en = $3, slug_vi = $4, slug_en = $5, cover = $6, urgent = $7,
		revision = $8, version = $9, submitted_by = $10, approved_by = $11, comment = $12, publish_at = $13, published_at = $14,
		updated_at = $15 WHERE id = $16 AND version = $17`,
		string(next.Status), textJSON(&next.VI), textJSON(next.EN), next.VI.Slug, slugOf(next.EN), coverJSON(next.Cover), b2i(next.Urgent),
		next.Revision, next.Version, next.SubmittedBy, next.ApprovedBy, next.Comment, nullTime(next.PublishAt), nullTime(next.PublishedAt),
		next.UpdatedAt.UTC(), next.ID, from.Version)
	if err != nil {
		return fmt.Errorf("sqlstore: update article: %w", err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return fmt.Errorf("sqlstore: update article %s: %w", next.ID, portal.ErrConflict)
	}
	if rev != nil {
		if err := insertRevision(ctx, tx, next.ID, *rev); err != nil {
			return err
		}
	}
	if ev.Action != "" {
		if err := recordArticleEvent(ctx, tx, next.ID, ev, ""); err != nil {
			return err
		}
	}
	if cancel != "" {
		if _, err := tx.ExecContext(ctx, `UPDATE scheduled_items SET status = 'cancelled' WHERE subject = $1 AND status = 'pending'`, cancel); err != nil {
			return fmt.Errorf("sqlstore: update article: %w", err)
		}
	}
	for _, it := range items {
		if err := schedule(ctx, tx, it, next.UpdatedAt); err != nil {
			return fmt.Errorf("sqlstore: update article: %w", err)
		}
	}
	return tx.Commit()
}

// Revisions lists an article's revisions, oldest first.
func (d *DB) Revisions(ctx context.Context, id string) ([]portal.Revision, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT number, at, by_account, note, vi, en FROM article_revisions WHERE article_id = $1 ORDER BY number`, id)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: revisions: %w", err)
	}
	defer rows.Close()
	var out []portal.Revision
	for rows.Next() {
		var (
			r  portal.Revision
			at timeValue
			vi string
			en sql.NullString
		)
		if err := rows.Scan(&r.Number, &at, &r.By, &r.Note, &vi, &en); err != nil {
			return nil, fmt.Errorf("sqlstore: revisions: %w", err)
		}
		r.At = at.t
		json.Unmarshal([]byte(vi), &r.VI)
		if en.Valid {
			r.EN = &portal.Text{}
			json.Unmarshal([]byte(en.String), r.EN)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ArticleHistory lists an article's workflow steps in order.
func (d *DB) ArticleHistory(ctx context.Context, id string) ([]portal.Event, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT at, actor, action, from_status, to_status, note FROM article_history WHERE article_id = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: article history: %w", err)
	}
	defer rows.Close()
	var out []portal.Event
	for rows.Next() {
		var (
			e        portal.Event
			at       timeValue
			from, to string
		)
		if err := rows.Scan(&at, &e.Actor, &e.Action, &from, &to, &e.Note); err != nil {
			return nil, fmt.Errorf("sqlstore: article history: %w", err)
		}
		e.At, e.From, e.To = at.t, portal.Status(from), portal.Status(to)
		out = append(out, e)
	}
	return out, rows.Err()
}

// Articles lists articles newest first (by publication, then creation).
func (d *DB) Articles(ctx context.Context, f portal.Filter) ([]portal.Article, error) {
	var (
		where []string
		args  []any
	)
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if f.Category != "" {
		where = append(where, "category = "+arg(f.Category))
	}
	if len(f.Statuses) > 0 {
		var ph []string
		for _, s := range f.Statuses {
			ph = append(ph, arg(string(s)))
		}
		where = append(where, "status IN ("+strings.Join(ph, ", ")+")")
	}
	if !f.LiveAt.IsZero() {
		where = append(where, "(status = 'published' OR status = 'scheduled' AND publish_at <= "+arg(f.LiveAt.UTC())+")")
	}
	if f.Lang == "en" {
		where = append(where, "en IS NOT NULL")
	}
	q := `SELECT ` + articleColumns + ` FROM articles`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 || limit > 500 {
		limit = 500
	}
	q += " ORDER BY COALESCE(publish_at, created_at) DESC, id DESC LIMIT " + arg(limit)
	rows, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: articles: %w", err)
	}
	defer rows.Close()
	var out []portal.Article
	for rows.Next() {
		a, err := scanArticle(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: articles: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
