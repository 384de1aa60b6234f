// Package portal keeps the provincial web portal's articles: categories
// (chuyên mục) managed by units, articles in Vietnamese with an optional
// English version, each language a title, a summary, a body in a
// restricted HTML subset (sanitised with bluemonday) and a slug, stored
// NFC. Editors of the category's unit draft and submit; the chief editor
// (chief_editor of that unit) approves — never their own article — at
// once or for a later time, returns it with a comment, unpublishes it or
// corrects it; every change is a kept revision. Publication is an event:
// the category's subscribers get a push on the bulk lane, or the direct
// lane when the chief editor marks the article urgent; it leaves through
// the outbox, at the publication time.
//
// The package holds the domain only: storage is the Store interface
// (internal/sqlstore implements it).
package portal

import (
	"errors"
	"time"

	"github.com/loa-hub/loa"
)

// Roles, per unit.
const (
	RoleEditor      = "editor"
	RoleChiefEditor = "chief_editor"
	RoleAdmin       = "admin"
)

// Status is where an article is.
type Status string

// Statuses: draft → submitted → published (or scheduled, published at
// PublishAt) → unpublished; submitted → returned (editable again) →
// submitted. Edits are allowed in draft and returned; a published article
// is corrected by the chief editor.
const (
	StatusDraft       Status = "draft"
	StatusSubmitted   Status = "submitted"
	StatusReturned    Status = "returned"
	StatusScheduled   Status = "scheduled"
	StatusPublished   Status = "published"
	StatusUnpublished Status = "unpublished"
)

// Category is a section of the portal, managed by a unit; Topic is the
// subscription topic whose subscribers hear of its articles.
type Category struct {
	Code   string
	Name   string
	NameEN string
	Unit   string
	Topic  string
}

// Text is one language's version of an article.
type Text struct {
	Title   string
	Summary string
	Body    string // sanitised HTML
	Slug    string
}

// Image is a stored image (the cover).
type Image struct {
	Key         string
	ContentType string
	Size        int64
}

// Article is one article with its current revision.
type Article struct {
	ID       string
	Category string
	Status   Status
	VI       Text
	EN       *Text // nil without an English version
	Cover    *Image
	Urgent   bool
	Revision int
	// Version counts every change, for compare-and-set.
	Version     int
	CreatedBy   string
	SubmittedBy string
	ApprovedBy  string
	Comment     string // the chief editor's, when returned
	PublishAt   time.Time
	PublishedAt time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Live reports whether the public sees the article at now.
func (a Article) Live(now time.Time) bool {
	return a.Status == StatusPublished || a.Status == StatusScheduled && !now.Before(a.PublishAt)
}

// Revision is one kept version of an article's texts.
type Revision struct {
	Number int
	At     time.Time
	By     string
	Note   string // "draft", "edit", "correction", …
	VI     Text
	EN     *Text
}

// Event is one step of an article's workflow.
type Event struct {
	At     time.Time
	Actor  string
	Action string
	From   Status
	To     Status
	Note   string
}

// Errors; compare with errors.Is.
var (
	ErrNotFound  = errors.New("portal: not found")
	ErrForbidden = errors.New("portal: forbidden")
	ErrInvalid   = errors.New("portal: invalid input")
	ErrState     = errors.New("portal: not allowed in the current state")
	ErrConflict  = errors.New("portal: changed concurrently")
)

func notFound(id string) error { return loa.NotFound("article %s not found", id).Wrap(ErrNotFound) }

func forbidden(format string, args ...any) error {
	return loa.Forbidden(format, args...).Wrap(ErrForbidden)
}

func stateError(action, id string, st Status) error {
	return loa.Errorf(loa.EConflict, "cannot %s article %s: it is %s", action, id, st).Wrap(ErrState)
}
