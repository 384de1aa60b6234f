package portal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

// Store keeps categories, articles, their revisions and history.
// internal/sqlstore implements it.
type Store interface {
	PortalCategories(ctx context.Context) ([]Category, error)
	// PortalCategory returns a category, or an error wrapping ErrNotFound.
	PortalCategory(ctx context.Context, code string) (Category, error)
	PutPortalCategory(ctx context.Context, c Category) error
	// CreateArticle stores a new article, its first revision and event.
	CreateArticle(ctx context.Context, a Article, rev Revision, ev Event) error
	// Article returns an article by id, or an error wrapping ErrNotFound.
	Article(ctx context.Context, id string) (Article, error)
	// ArticleBySlug finds an article by either language's slug.
	ArticleBySlug(ctx context.Context, slug string) (Article, error)
	// SlugTaken reports whether another article than id has this slug.
	SlugTaken(ctx context.Context, slug, id string) (bool, error)
	// UpdateArticle stores next if the article is still at from's Version
	// (else an error wrapping ErrConflict), with a revision when rev is
	// not nil, the event, cancelling cancel's pending outbox items and
	// writing items, in one transaction.
	UpdateArticle(ctx context.Context, from, next Article, rev *Revision, ev Event, cancel string, items []producer.OutboxItem) error
	Revisions(ctx context.Context, id string) ([]Revision, error)
	ArticleHistory(ctx context.Context, id string) ([]Event, error)
	// Articles lists articles newest first: of a category (or all), with
	// the statuses given (all when none); live only: those the public sees
	// at now.
	Articles(ctx context.Context, f Filter) ([]Article, error)
}

// Filter selects articles.
type Filter struct {
	Category string
	Statuses []Status
	LiveAt   time.Time // when set, only articles live at that time
	Lang     string    // "en": only articles with an English version
	Limit    int
}

// Grant is one role of an official in one unit.
type Grant struct {
	Unit string
	Role string
}

type roleSource interface {
	Grants(ctx context.Context, accountID string) ([]Grant, error)
	// Independent returns an error (a *loa.Error with loa.EFourEyes) when
	// the approver appointed one of the writers: created their account
	// or granted a role they hold, at any depth (the approver rule,
	// accounts.Service.CheckIndependent).
	Independent(ctx context.Context, approverID string, writers ...string) error
}

// Config configures the service.
type Config struct {
	// BaseURL is the portal's public address, for deep links in pushes
	// and feeds, e.g. https://quangnam.gov.vn.
	BaseURL string
	// NoticeTTL is how long a publication push may wait to be delivered.
	NoticeTTL time.Duration
	// Topics are the subscription topics a category may name (the
	// accounts' topics); any when empty.
	Topics   []string
	MaxTitle int
	MaxBody  int
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{BaseURL: "http://127.0.0.1:8080", NoticeTTL: 24 * time.Hour, MaxTitle: 300, MaxBody: 200_000}
}

// Deps are the service's collaborators, all required but Now.
type Deps struct {
	Store Store
	Roles roleSource
	Log   *slog.Logger
	Now   func() time.Time
}

// Service drafts, approves and publishes articles. It is safe for
// concurrent use; concurrent changes of one article are serialised by the
// store's compare-and-set.
type Service struct {
	cfg Config
	d   Deps

	public publicCache
}

// New returns a service.
func New(cfg Config, d Deps) (*Service, error) {
	if d.Store == nil || d.Roles == nil || d.Log == nil {
		return nil, errors.New("portal: Store, Roles and Log are required")
	}
	if cfg.NoticeTTL <= 0 || cfg.MaxTitle <= 0 || cfg.MaxBody <= 0 {
		return nil, errors.New("portal: config: limits must be positive")
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Service{cfg: cfg, d: d}, nil
}

// Config returns the configuration.
func (s *Service) Config() Config { return s.cfg }

// Actor is the official acting (AccountID), or an admin key.
type Actor struct {
	AccountID string
	AdminKey  bool
	IP        string
}

func (s *Service) grants(ctx context.Context, a Actor) ([]Grant, error) {
	if a.AccountID == "" {
		return nil, nil
	}
	return s.d.Roles.Grants(ctx, a.AccountID)
}

func has(gs []Grant, unit, role string) bool {
	return slices.Contains(gs, Grant{Unit: unit, Role: role})
}

// MayEdit reports whether the actor edits or approves articles at all:
// an editor or a chief editor of some unit. The API asks it before the
// body is read.
func (s *Service) MayEdit(ctx context.Context, a Actor) error {
	gs, err := s.grants(ctx, a)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(gs, func(g Grant) bool { return g.Role == RoleEditor || g.Role == RoleChiefEditor }) {
		return nil
	}
	return forbidden("articles are written by %s and approved by %s of the category's unit", RoleEditor, RoleChiefEditor)
}

// MayWrite reports whether the actor drafts articles in some category:
// an editor of the unit of at least one category (Create checks the
// category's own unit).
func (s *Service) MayWrite(ctx context.Context, a Actor) error {
	gs, err := s.grants(ctx, a)
	if err != nil {
		return err
	}
	cs, err := s.Categories(ctx)
	if err != nil {
		return err
	}
	for _, c := range cs {
		if has(gs, c.Unit, RoleEditor) {
			return nil
		}
	}
	return forbidden("articles are drafted by an %s of the unit of a category", RoleEditor)
}

// Input is an article's texts as an editor writes them.
type Input struct {
	Category string
	VI       TextInput
	EN       *TextInput
}

// TextInput is one language as written; Body is HTML.
type TextInput struct {
	Title, Summary, Body, Slug string
}

func (s *Service) text(ctx context.Context, v *loa.Validation, prefix string, in TextInput, id string) Text {
	t := Text{}
	check := func(field, val string, max int) string {
		switch {
		case !utf8.ValidString(val) || strings.ContainsRune(val, 0):
			v.Add(prefix+field, "must be valid UTF-8 without NUL")
			return ""
		case utf8.RuneCountInString(val) > max:
			v.Add(prefix+field, "must be at most %d characters", max)
		}
		return val
	}
	t.Title = PlainText(check("title", in.Title, s.cfg.MaxTitle))
	if t.Title == "" {
		v.Add(prefix+"title", "is required")
	}
	t.Summary = PlainText(check("summary", in.Summary, 1000))
	t.Body = Sanitize(check("body", in.Body, s.cfg.MaxBody))
	if t.Body == "" {
		v.Add(prefix+"body", "is required (after removing what is not allowed)")
	}
	t.Slug = strings.TrimSpace(in.Slug)
	if t.Slug == "" {
		t.Slug = Slugify(t.Title)
	}
	if t.Slug != Slugify(t.Slug) || t.Slug == "" {
		v.Add(prefix+"slug", "must be lower-case letters, digits and '-'")
	} else if taken, err := s.d.Store.SlugTaken(ctx, t.Slug, id); err == nil && taken {
		v.Add(prefix+"slug", "%q is taken by another article", t.Slug)
	}
	return t
}

func (s *Service) check(ctx context.Context, in Input, id string) (Text, *Text, error) {
	var v loa.Validation
	vi := s.text(ctx, &v, "vi.", in.VI, id)
	var en *Text
	if in.EN != nil {
		t := s.text(ctx, &v, "en.", *in.EN, id)
		if t.Slug == vi.Slug {
			v.Add("en.slug", "must differ from the Vietnamese slug")
		}
		en = &t
	}
	return vi, en, v.Err(ErrInvalid)
}

// category loads a category and checks that the actor holds role in its
// unit.
func (s *Service) category(ctx context.Context, a Actor, code, role string) (Category, error) {
	c, err := s.d.Store.PortalCategory(ctx, code)
	if errors.Is(err, ErrNotFound) {
		return c, loa.Invalid("category", "unknown category %q", code).Wrap(ErrInvalid)
	}
	if err != nil {
		return c, err
	}
	gs, err := s.grants(ctx, a)
	if err != nil {
		return c, err
	}
	if !has(gs, c.Unit, role) {
		return c, forbidden("articles of %s need the role %s in unit %s", c.Code, role, c.Unit)
	}
	return c, nil
}

// Create stores a draft by an editor of the category's unit.
func (s *Service) Create(ctx context.Context, a Actor, in Input) (Article, error) {
	if _, err := s.category(ctx, a, in.Category, RoleEditor); err != nil {
		return Article{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Article{}, err
	}
	vi, en, err := s.check(ctx, in, id.String())
	if err != nil {
		return Article{}, err
	}
	now := s.d.Now().UTC()
	art := Article{ID: id.String(), Category: in.Category, Status: StatusDraft, VI: vi, EN: en, Revision: 1, Version: 1,
		CreatedBy: a.AccountID, CreatedAt: now, UpdatedAt: now}
	rev := Revision{Number: 1, At: now, By: a.AccountID, Note: "draft", VI: vi, EN: en}
	if err := s.d.Store.CreateArticle(ctx, art, rev, Event{At: now, Actor: a.AccountID, Action: "create", To: StatusDraft}); err != nil {
		return Article{}, fmt.Errorf("portal: create: %w", err)
	}
	return art, nil
}

func (s *Service) load(ctx context.Context, id string) (Article, error) {
	a, err := s.d.Store.Article(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return a, notFound(id)
	}
	return a, err
}

// step stores a change, translating a lost race into a state error.
func (s *Service) step(ctx context.Context, action string, from, next Article, rev *Revision, ev Event, cancel string, items []producer.OutboxItem) (Article, error) {
	next.Version = from.Version + 1
	defer s.public.changed()
	if err := s.d.Store.UpdateArticle(ctx, from, next, rev, ev, cancel, items); err != nil {
		if errors.Is(err, ErrConflict) {
			cur, lerr := s.load(ctx, from.ID)
			if lerr != nil {
				return Article{}, lerr
			}
			return Article{}, stateError(action, from.ID, cur.Status)
		}
		return Article{}, fmt.Errorf("portal: %s: %w", action, err)
	}
	return next, nil
}

// Check reports whether the actor may take action on the article now
// (edit, submit, approve, return, unpublish, correct); the API asks it
// before reading the body.
func (s *Service) Check(ctx context.Context, a Actor, id, action string) error {
	_, err := s.authorise(ctx, a, id, action)
	return err
}

var actions = map[string]struct {
	role string
	from []Status
}{
	"edit":      {RoleEditor, []Status{StatusDraft, StatusReturned}},
	"submit":    {RoleEditor, []Status{StatusDraft, StatusReturned}},
	"approve":   {RoleChiefEditor, []Status{StatusSubmitted}},
	"return":    {RoleChiefEditor, []Status{StatusSubmitted}},
	"unpublish": {RoleChiefEditor, []Status{StatusPublished, StatusScheduled}},
	"correct":   {RoleChiefEditor, []Status{StatusPublished, StatusScheduled}},
}

func (s *Service) authorise(ctx context.Context, a Actor, id, action string) (Article, error) {
	act, ok := actions[action]
	if !ok {
		return Article{}, loa.NotFound("no action %q", action)
	}
	if err := s.MayEdit(ctx, a); err != nil {
		return Article{}, err
	}
	art, err := s.load(ctx, id)
	if err != nil {
		return Article{}, err
	}
	if _, err := s.category(ctx, a, art.Category, act.role); err != nil {
		return Article{}, err
	}
	if action == "approve" || action == "correct" {
		writers, err := s.writers(ctx, art)
		if err != nil {
			return Article{}, err
		}
		if a.AccountID != "" && slices.Contains(writers, a.AccountID) {
			return Article{}, (&loa.Error{Code: loa.EFourEyes, Detail: "an article is approved, and corrected, by a chief editor who wrote none of it before its approval (drafted, edited, set its cover or submitted it)"}).Wrap(ErrForbidden)
		}
		// Nor by one who appointed a writer: an editor of their own
		// making is their own hand.
		if a.AccountID != "" {
			if err := s.d.Roles.Independent(ctx, a.AccountID, writers...); err != nil {
				var le *loa.Error
				if errors.As(err, &le) && le.Code == loa.EFourEyes {
					return Article{}, (&loa.Error{Code: loa.EFourEyes, Detail: "an article is approved, and corrected, by a chief editor independent of its writers: " + le.Detail}).Wrap(ErrForbidden)
				}
				return Article{}, err
			}
		}
	}
	if !slices.Contains(act.from, art.Status) {
		return Article{}, stateError(action, id, art.Status)
	}
	return art, nil
}

// writers lists the accounts that wrote any of the article before its
// approval: drafted, edited or submitted it, or set its cover. Such an
// account neither approves it nor corrects it once it is live, since a
// correction is live at once, approved by nobody else; nor does one who
// appointed any of them.
func (s *Service) writers(ctx context.Context, art Article) ([]string, error) {
	var out []string
	add := func(id string) {
		if id != "" && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	add(art.CreatedBy)
	add(art.SubmittedBy)
	evs, err := s.d.Store.ArticleHistory(ctx, art.ID)
	if err != nil {
		return nil, err
	}
	for _, e := range evs {
		switch e.Action {
		case "create", "edit", "submit", "cover":
			if e.To == StatusDraft || e.To == StatusReturned || e.To == StatusSubmitted {
				add(e.Actor)
			}
		}
	}
	return out, nil
}

// Edit changes a draft's (or a returned article's) texts: a new revision.
func (s *Service) Edit(ctx context.Context, a Actor, id string, in Input) (Article, error) {
	return s.revise(ctx, a, id, in, "edit")
}

// Correct changes a published article's texts (chief editor): a new
// revision, live at once.
func (s *Service) Correct(ctx context.Context, a Actor, id string, in Input) (Article, error) {
	return s.revise(ctx, a, id, in, "correct")
}

func (s *Service) revise(ctx context.Context, a Actor, id string, in Input, action string) (Article, error) {
	art, err := s.authorise(ctx, a, id, action)
	if err != nil {
		return Article{}, err
	}
	in.Category = art.Category
	vi, en, err := s.check(ctx, in, id)
	if err != nil {
		return Article{}, err
	}
	now := s.d.Now().UTC()
	next := art
	next.VI, next.EN, next.Revision, next.UpdatedAt = vi, en, art.Revision+1, now
	note := "edit"
	if action == "correct" {
		note = "correction"
	}
	rev := Revision{Number: next.Revision, At: now, By: a.AccountID, Note: note, VI: vi, EN: en}
	return s.step(ctx, action, art, next, &rev, Event{At: now, Actor: a.AccountID, Action: action, From: art.Status, To: art.Status,
		Note: fmt.Sprintf("revision %d", next.Revision)}, "", nil)
}

// Submit sends an article for approval.
func (s *Service) Submit(ctx context.Context, a Actor, id string) (Article, error) {
	art, err := s.authorise(ctx, a, id, "submit")
	if err != nil {
		return Article{}, err
	}
	now := s.d.Now().UTC()
	next := art
	next.Status, next.SubmittedBy, next.Comment, next.UpdatedAt = StatusSubmitted, a.AccountID, "", now
	return s.step(ctx, "submit", art, next, nil, Event{At: now, Actor: a.AccountID, Action: "submit", From: art.Status, To: StatusSubmitted}, "", nil)
}

// Approval is the chief editor's decision to publish.
type Approval struct {
	PublishAt time.Time // zero: now
	Urgent    bool      // push on the direct lane
	// Version is the article's Version as the approver read it; when set,
	// an article changed since (returned, rewritten and resubmitted while
	// they read) is not approved: they approve what they read.
	Version int
}

// Approve publishes a submitted article now or at PublishAt, and
// schedules the push to the category's subscribers for that time. The
// approver is a chief editor of the category's unit who neither wrote nor
// submitted it.
func (s *Service) Approve(ctx context.Context, a Actor, id string, ap Approval) (Article, error) {
	art, err := s.authorise(ctx, a, id, "approve")
	if err != nil {
		return Article{}, err
	}
	if ap.Version != 0 && ap.Version != art.Version {
		return Article{}, (&loa.Error{Code: loa.EConflict, Field: "version",
			Detail: fmt.Sprintf("article %s changed since you read it (version %d, now %d): read it again before approving", id, ap.Version, art.Version)}).Wrap(ErrState)
	}
	now := s.d.Now().UTC()
	if !ap.PublishAt.IsZero() && !ap.PublishAt.After(now) {
		return Article{}, loa.Invalid("publish_at", "must be in the future (leave it out to publish now)").Wrap(ErrInvalid)
	}
	if ap.PublishAt.Sub(now) > 365*24*time.Hour {
		return Article{}, loa.Invalid("publish_at", "must be within a year").Wrap(ErrInvalid)
	}
	cat, err := s.d.Store.PortalCategory(ctx, art.Category)
	if err != nil {
		return Article{}, err
	}
	next := art
	next.ApprovedBy, next.Urgent, next.UpdatedAt = a.AccountID, ap.Urgent, now
	if ap.PublishAt.IsZero() {
		next.Status, next.PublishAt, next.PublishedAt = StatusPublished, now, now
	} else {
		next.Status, next.PublishAt, next.PublishedAt = StatusScheduled, ap.PublishAt.UTC(), ap.PublishAt.UTC()
	}
	items, err := s.publication(next, cat, now)
	if err != nil {
		return Article{}, err
	}
	return s.step(ctx, "approve", art, next, nil, Event{At: now, Actor: a.AccountID, Action: "approve", From: art.Status, To: next.Status,
		Note: publishNote(next)}, "", items)
}

func publishNote(a Article) string {
	n := "publish " + a.PublishAt.UTC().Format(time.RFC3339)
	if a.Urgent {
		n += ", urgent"
	}
	return n
}

// Return sends a submitted article back to its editors with a comment.
func (s *Service) Return(ctx context.Context, a Actor, id, comment string) (Article, error) {
	art, err := s.authorise(ctx, a, id, "return")
	if err != nil {
		return Article{}, err
	}
	comment = PlainText(comment)
	if comment == "" || utf8.RuneCountInString(comment) > 2000 {
		return Article{}, loa.Invalid("comment", "is required (at most 2000 characters): what to change").Wrap(ErrInvalid)
	}
	now := s.d.Now().UTC()
	next := art
	next.Status, next.Comment, next.UpdatedAt = StatusReturned, comment, now
	return s.step(ctx, "return", art, next, nil, Event{At: now, Actor: a.AccountID, Action: "return", From: art.Status, To: StatusReturned, Note: comment}, "", nil)
}

// Unpublish takes an article off the portal; a publication still waiting
// (scheduled) is cancelled with its push.
func (s *Service) Unpublish(ctx context.Context, a Actor, id string) (Article, error) {
	art, err := s.authorise(ctx, a, id, "unpublish")
	if err != nil {
		return Article{}, err
	}
	now := s.d.Now().UTC()
	next := art
	next.Status, next.UpdatedAt = StatusUnpublished, now
	return s.step(ctx, "unpublish", art, next, nil, Event{At: now, Actor: a.AccountID, Action: "unpublish", From: art.Status, To: StatusUnpublished},
		"article:"+art.ID, nil)
}

// publication is the outbox item that tells the category's subscribers,
// at the publication time: a plan on the bulk lane, or on the direct lane
// when urgent.
func (s *Service) publication(art Article, cat Category, now time.Time) ([]producer.OutboxItem, error) {
	if cat.Topic == "" {
		return nil, nil
	}
	lane, prio := topics.LaneBulk, "normal"
	if art.Urgent {
		lane, prio = topics.LaneDirect, "high"
	}
	id := fmt.Sprintf("article-%s-%d", art.ID, art.Version+1)
	// The notice is the title and summary, cut to fit a push (FCM refuses
	// every push of a longer one); the article at its address is whole.
	p := producer.Plan{NotificationID: id, Audience: producer.Audience{Topics: []string{cat.Topic}}, Channels: []string{"push"},
		Title: producer.CutJSON(art.VI.Title, producer.PushTitleJSON), Body: producer.CutJSON(art.VI.Summary, producer.PushBodyJSON), Priority: prio, App: "smart",
		Data: map[string]string{"type": "article", "article_id": art.ID, "url": s.cfg.BaseURL + "/v1/portal/articles/" + art.VI.Slug}}
	if p.Body == "" {
		p.Body = p.Title
	}
	env, err := producer.NewEnvelope(id, producer.KindPlan, lane, id, art.PublishAt, art.PublishAt.Add(s.cfg.NoticeTTL), "", p)
	if err != nil {
		return nil, err
	}
	it, err := producer.NewOutboxItem(id, "article:"+art.ID, art.PublishAt, env)
	if err != nil {
		return nil, err
	}
	return []producer.OutboxItem{it}, nil
}

// Get returns an article to officials who edit or approve (any state).
func (s *Service) Get(ctx context.Context, a Actor, id string) (Article, error) {
	if err := s.MayEdit(ctx, a); err != nil {
		return Article{}, err
	}
	return s.load(ctx, id)
}

// Revisions lists an article's revisions, oldest first, to officials.
func (s *Service) Revisions(ctx context.Context, a Actor, id string) ([]Revision, error) {
	if _, err := s.Get(ctx, a, id); err != nil {
		return nil, err
	}
	return s.d.Store.Revisions(ctx, id)
}

// History lists an article's workflow steps, to officials.
func (s *Service) History(ctx context.Context, a Actor, id string) ([]Event, error) {
	if _, err := s.Get(ctx, a, id); err != nil {
		return nil, err
	}
	return s.d.Store.ArticleHistory(ctx, id)
}

// Desk lists articles for officials, by status.
func (s *Service) Desk(ctx context.Context, a Actor, f Filter) ([]Article, error) {
	if err := s.MayEdit(ctx, a); err != nil {
		return nil, err
	}
	f.LiveAt = time.Time{}
	return s.d.Store.Articles(ctx, f)
}

// PublicArticle returns a live article by slug (either language).
func (s *Service) PublicArticle(ctx context.Context, slug string) (Article, error) {
	art, err := s.d.Store.ArticleBySlug(ctx, slug)
	if errors.Is(err, ErrNotFound) || err == nil && !art.Live(s.d.Now()) {
		return Article{}, loa.NotFound("article %s not found", slug).Wrap(ErrNotFound)
	}
	return art, err
}

// Categories lists the categories.
func (s *Service) Categories(ctx context.Context) ([]Category, error) {
	return s.d.Store.PortalCategories(ctx)
}

// Category returns one category.
func (s *Service) Category(ctx context.Context, code string) (Category, error) {
	c, err := s.d.Store.PortalCategory(ctx, code)
	if errors.Is(err, ErrNotFound) {
		return c, loa.NotFound("category %s not found", code).Wrap(ErrNotFound)
	}
	return c, err
}

// MayAdminister reports whether the actor sets categories: an
// administrator or an admin key.
func (s *Service) MayAdminister(ctx context.Context, a Actor) error {
	gs, err := s.grants(ctx, a)
	if err != nil {
		return err
	}
	if !a.AdminKey && !slices.ContainsFunc(gs, func(g Grant) bool { return g.Role == RoleAdmin }) {
		return forbidden("portal categories are set by administrators")
	}
	return nil
}

// PutCategory creates or changes a category (administrators).
func (s *Service) PutCategory(ctx context.Context, a Actor, c Category) (Category, error) {
	if err := s.MayAdminister(ctx, a); err != nil {
		return c, err
	}
	var v loa.Validation
	if Slugify(c.Code) != c.Code || c.Code == "" {
		v.Add("code", "must be lower-case letters, digits and '-'")
	}
	if c.Name = PlainText(c.Name); c.Name == "" {
		v.Add("name", "is required")
	}
	c.NameEN = PlainText(c.NameEN)
	if c.Unit = strings.TrimSpace(c.Unit); c.Unit == "" {
		v.Add("unit", "is required: the unit that manages the category")
	}
	c.Topic = strings.TrimSpace(c.Topic)
	if c.Topic != "" && len(s.cfg.Topics) > 0 && !slices.Contains(s.cfg.Topics, c.Topic) {
		v.Add("topic", "must be a subscription topic: %s", strings.Join(s.cfg.Topics, ", "))
	}
	if err := v.Err(ErrInvalid); err != nil {
		return c, err
	}
	defer s.public.changed()
	return c, s.d.Store.PutPortalCategory(ctx, c)
}

// SetCover records an article's cover image (stored by the caller), as
// part of editing (editor) or correcting (chief editor). It returns the
// article and the cover it replaced, if any.
func (s *Service) SetCover(ctx context.Context, a Actor, id string, img Image) (Article, *Image, error) {
	art, err := s.load(ctx, id)
	if err != nil {
		return Article{}, nil, err
	}
	action := "edit"
	if art.Status == StatusPublished || art.Status == StatusScheduled {
		action = "correct"
	}
	if art, err = s.authorise(ctx, a, id, action); err != nil {
		return Article{}, nil, err
	}
	now := s.d.Now().UTC()
	next := art
	next.Cover, next.UpdatedAt = &img, now
	next, err = s.step(ctx, action, art, next, nil, Event{At: now, Actor: a.AccountID, Action: "cover", From: art.Status, To: art.Status}, "", nil)
	return next, art.Cover, err
}

// CoverCheck reports whether the actor may set the cover now; the API asks
// before reading the image.
func (s *Service) CoverCheck(ctx context.Context, a Actor, id string) error {
	art, err := s.load(ctx, id)
	if err != nil {
		return err
	}
	if art.Status == StatusPublished || art.Status == StatusScheduled {
		return s.Check(ctx, a, id, "correct")
	}
	return s.Check(ctx, a, id, "edit")
}
