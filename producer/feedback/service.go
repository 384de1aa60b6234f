package feedback

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/text/unicode/norm"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/phone"
	"github.com/loa-hub/loa/producer"
)

// Store keeps feedback, its categories and routing rules, and writes the
// outbox items of each step in the step's transaction.
// internal/sqlstore implements it.
type Store interface {
	FeedbackCategories(ctx context.Context) ([]Category, error)
	// FeedbackCategory returns a category, or an error wrapping ErrNotFound.
	FeedbackCategory(ctx context.Context, code string) (Category, error)
	PutFeedbackCategory(ctx context.Context, c Category) error
	FeedbackRoutes(ctx context.Context, category string) ([]Route, error)
	PutFeedbackRoute(ctx context.Context, r Route) error
	DeleteFeedbackRoute(ctx context.Context, category, area string) (bool, error)

	// AreaLineage returns code and the codes above it, nearest first, or
	// an error wrapping ErrNotFound for an unknown code.
	AreaLineage(ctx context.Context, code string) ([]string, error)
	// NearestArea returns the lowest-level area whose centroid is nearest
	// to the point, or "" when no area has a centroid.
	NearestArea(ctx context.Context, lat, lon float64) (string, error)
	// AreaPlaces returns the name and centroid of each known code.
	AreaPlaces(ctx context.Context, codes []string) (map[string]Place, error)

	// CreateFeedback stores a new matter, its first events and the outbox
	// items they publish, in one transaction.
	CreateFeedback(ctx context.Context, f Feedback, events []Event, items []producer.OutboxItem) error
	// Feedback returns one matter, or an error wrapping ErrNotFound.
	Feedback(ctx context.Context, id string) (Feedback, error)
	// TransitionFeedback stores t.Next as version t.From.Version+1 if the
	// matter is still at t.From.Version (else an error wrapping
	// ErrConflict), with its
	// event, cancelling the pending outbox items of t.Cancel and writing
	// t.Items, in one transaction.
	TransitionFeedback(ctx context.Context, t Transition) error
	// MaskFeedback stores each matter's Masked texts if the matter is
	// still at its Version (a matter that moved since keeps the masks
	// its step stored) and its stored masks are of older rules.
	MaskFeedback(ctx context.Context, list []Feedback) error
	FeedbackHistory(ctx context.Context, id string) ([]Event, error)
	ListFeedback(ctx context.Context, f Filter) ([]Feedback, error)
	// CountFeedbackSince counts the matters sent since a time: by an
	// integrating system (client not empty) for a phone, else by a
	// citizen's account from their own session.
	CountFeedbackSince(ctx context.Context, client, account, phone string, since time.Time) (int, error)
	// CountKeyFeedbackSince counts the matters an integrating system sent
	// since a time, over every phone, and how many of them have photos.
	CountKeyFeedbackSince(ctx context.Context, client string, since time.Time) (matters, withPhotos int, err error)
	FeedbackStats(ctx context.Context, now time.Time) ([]AgencyStat, error)

	// OfficialsWithRole returns the active officials holding role in unit.
	OfficialsWithRole(ctx context.Context, unit, role string) ([]string, error)
}

// Place is an area's name and centroid.
type Place struct {
	Name        string
	HasCentroid bool
	Lat, Lon    float64
}

// Transition is one step, for Store.TransitionFeedback.
type Transition struct {
	From   Feedback // as read: its Status and Agency are compared
	Next   Feedback
	Event  Event
	IP     string
	Cancel string // a subject whose pending outbox items to cancel, or ""
	Items  []producer.OutboxItem
}

// Grant is one role of an official in one unit.
type Grant struct {
	Unit string
	Role string
}

// roleSource tells an account's roles; cmd/loa adapts the accounts
// service to it.
type roleSource interface {
	Grants(ctx context.Context, accountID string) ([]Grant, error)
}

// directory finds citizens: by a verified phone (for feedback an
// integrating system sends on a citizen's behalf), and by account.
type directory interface {
	// CitizenByPhone returns the active citizen account with this
	// verified phone, or ok false.
	CitizenByPhone(ctx context.Context, phone string) (c Citizen, ok bool, err error)
	// Citizen returns an account's name and phone.
	Citizen(ctx context.Context, accountID string) (Citizen, error)
}

// Config configures the service.
type Config struct {
	// CoordinatorUnit is the DoIC's unit, whose feedback_coordinator role
	// coordinates (the approval unit, LOA_APPROVAL_UNIT). Without it
	// nobody coordinates.
	CoordinatorUnit string
	// RatingWindow is how long after the answer the citizen may rate.
	RatingWindow time.Duration
	// ReminderLead is how long before the deadline handlers are reminded.
	ReminderLead time.Duration
	// NoticeTTL is how long a notice to a citizen or official may wait to
	// be delivered.
	NoticeTTL time.Duration
	MaxTitle  int
	MaxText   int
	MaxPhotos int
	// PerDay bounds what one citizen (their account, or one integrating
	// system for one phone) sends in 24 hours, so one sender cannot fill
	// the handlers' queues or the blob store.
	PerDay int
	// KeyPerDay bounds what one integrating system's key sends in 24
	// hours over every phone it names, and KeyPhotosPerDay how many of
	// those carry photos (each up to MaxPhotos of 5 MiB): PerDay alone
	// let a key naming many phones fill the queues and the blob store.
	// 0: no bound.
	KeyPerDay, KeyPhotosPerDay int
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{RatingWindow: 7 * 24 * time.Hour, ReminderLead: 24 * time.Hour, NoticeTTL: 72 * time.Hour,
		MaxTitle: 200, MaxText: 4000, MaxPhotos: 5, PerDay: 20, KeyPerDay: 1000, KeyPhotosPerDay: 200}
}

// Deps are the service's collaborators. Store, Roles, Directory and Log
// are required.
type Deps struct {
	Store     Store
	Roles     roleSource
	Directory directory
	Calendar  *Calendar // DefaultCalendar when nil
	Log       *slog.Logger
	Now       func() time.Time
}

// Service receives, routes and moves feedback, and tells the citizen and
// the officials of each step through the outbox. It is safe for
// concurrent use; two officials moving one matter at once are serialised
// by the store's compare-and-set, and exactly one of them wins.
type Service struct {
	cfg   Config
	d     Deps
	stats statsCache
}

// New returns a service.
func New(cfg Config, d Deps) (*Service, error) {
	if d.Store == nil || d.Roles == nil || d.Directory == nil || d.Log == nil {
		return nil, errors.New("feedback: Store, Roles, Directory and Log are required")
	}
	if cfg.RatingWindow <= 0 || cfg.ReminderLead <= 0 || cfg.NoticeTTL <= 0 || cfg.MaxTitle <= 0 || cfg.MaxText <= 0 || cfg.MaxPhotos < 0 || cfg.PerDay <= 0 || cfg.KeyPerDay < 0 || cfg.KeyPhotosPerDay < 0 {
		return nil, errors.New("feedback: config: windows and limits must be positive")
	}
	if d.Calendar == nil {
		d.Calendar = DefaultCalendar()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Service{cfg: cfg, d: d}, nil
}

// Config returns the service's configuration.
func (s *Service) Config() Config { return s.cfg }

// Actor is who calls: a signed-in account, or an integrating system's key.
type Actor struct {
	AccountID string
	Kind      string // citizen, organisation, official (sessions)
	APIKeyID  string
	IP        string
}

func (a Actor) name() string {
	if a.AccountID != "" {
		return a.AccountID
	}
	if a.APIKeyID != "" {
		return "apikey:" + a.APIKeyID
	}
	return "anonymous"
}

// systemActor records steps no person took (routing on submission).
const systemActor = "system"

// Input is a submission as its sender writes it.
type Input struct {
	Category    string
	Title       string
	Description string
	Lat, Lon    *float64
	Area        string
	Address     string
	Public      bool
	// Phone and Name: the citizen an integrating system sends for.
	Phone    string
	Name     string
	MediaURL string
	Source   string // app, system, open311; set by the API
}

// Draft is a validated submission with its id, to which photos are added
// before it is stored with Submit.
type Draft struct {
	f Feedback
	// photosRefused, when set, refuses every photo (its key's photos of
	// the day are spent).
	photosRefused error
}

// ID is the id the matter will have.
func (d *Draft) ID() string { return d.f.ID }

// MayAddPhoto reports whether the draft may take another photo: ask
// before storing one. Errors: a loa.EInvalid *loa.Error when the draft
// has MaxPhotos, a loa.ERateLimited one when its key has sent
// KeyPhotosPerDay matters with photos in 24 hours (both name "photos").
func (s *Service) MayAddPhoto(d *Draft) error {
	if d.photosRefused != nil {
		return d.photosRefused
	}
	if len(d.f.Photos) >= s.cfg.MaxPhotos {
		return loa.Invalid("photos", "at most %d photos", s.cfg.MaxPhotos).Wrap(ErrInvalid)
	}
	return nil
}

// AddPhoto records a stored photo. It fails as MayAddPhoto does.
func (s *Service) AddPhoto(d *Draft, p Photo) error {
	if err := s.MayAddPhoto(d); err != nil {
		return err
	}
	d.f.Photos = append(d.f.Photos, p)
	return nil
}

// Photos returns the draft's photos (to delete them when it is dropped).
func (d *Draft) Photos() []Photo { return d.f.Photos }

// MaySubmit reports whether the actor may send feedback at all: a citizen
// or organisation's session, or an integrating system's key (the API
// checks its scope). The API asks before reading the body.
func (s *Service) MaySubmit(a Actor) error {
	switch {
	case a.APIKeyID != "":
		return nil
	case a.AccountID != "" && (a.Kind == "citizen" || a.Kind == "organisation"):
		return nil
	}
	return forbidden("feedback is sent by citizens and organisations signed in, or by an integrating system with the scope feedback:write")
}

// Prepare validates a submission and returns its draft. Every wrong field
// is named in one loa.EInvalid error wrapping ErrInvalid.
func (s *Service) Prepare(ctx context.Context, a Actor, in Input) (*Draft, error) {
	if err := s.MaySubmit(a); err != nil {
		return nil, err
	}
	var v loa.Validation
	f := Feedback{Source: in.Source, Status: StatusReceived, Version: 1}
	if f.Source == "" {
		f.Source = "app"
	}
	f.Category = strings.TrimSpace(in.Category)
	if f.Category == "" {
		v.Add("category", "is required")
	} else {
		c, err := s.d.Store.FeedbackCategory(ctx, f.Category)
		switch {
		case errors.Is(err, ErrNotFound) || err == nil && !c.Active:
			v.Add("category", "unknown category %q", f.Category)
		case err != nil:
			return nil, err
		}
	}
	f.Description = text(&v, "description", in.Description, s.cfg.MaxText, true)
	f.Title = text(&v, "title", in.Title, s.cfg.MaxTitle, false)
	if f.Title == "" && f.Description != "" {
		f.Title = firstWords(f.Description, 80)
	}
	f.Location.Address = text(&v, "address", in.Address, 500, false)
	f.Location.Area = strings.TrimSpace(in.Area)
	switch {
	case (in.Lat == nil) != (in.Lon == nil):
		v.Add("lat", "lat and long are given together")
	case in.Lat != nil:
		lat, lon := *in.Lat, *in.Lon
		if math.IsNaN(lat) || lat < -90 || lat > 90 {
			v.Add("lat", "must be a latitude in degrees")
		} else if math.IsNaN(lon) || lon < -180 || lon > 180 {
			v.Add("long", "must be a longitude in degrees")
		} else {
			f.Location.HasPoint, f.Location.Lat, f.Location.Lon = true, lat, lon
		}
	}
	if f.Location.Area != "" {
		if _, err := s.d.Store.AreaLineage(ctx, f.Location.Area); errors.Is(err, ErrNotFound) {
			v.Add("area", "unknown area code %q", f.Location.Area)
		} else if err != nil {
			return nil, err
		}
	} else if f.Location.HasPoint {
		area, err := s.d.Store.NearestArea(ctx, f.Location.Lat, f.Location.Lon)
		if err != nil {
			return nil, err
		}
		f.Location.Area = area
	} else if f.Location.Address == "" {
		v.Add("location", "give lat and long, an area code or an address")
	}
	f.MediaURL = strings.TrimSpace(in.MediaURL)
	if f.MediaURL != "" && (len(f.MediaURL) > 1000 || !strings.HasPrefix(f.MediaURL, "https://") && !strings.HasPrefix(f.MediaURL, "http://")) {
		v.Add("media_url", "must be an http(s) URL of at most 1000 characters")
	}
	f.Citizen.Public = in.Public
	if a.APIKeyID != "" {
		f.ClientID = a.APIKeyID
		f.Citizen.Name = text(&v, "name", in.Name, 200, false)
		p, err := phone.Normalize(in.Phone)
		if strings.TrimSpace(in.Phone) == "" {
			v.Add("phone", "is required: the citizen's mobile number, to tell them of each step")
		} else if err != nil {
			v.Add("phone", "must be a Vietnamese mobile number")
		} else {
			f.Citizen.Phone = p
		}
	} else {
		f.Citizen.AccountID = a.AccountID
	}
	if err := v.Err(ErrInvalid); err != nil {
		return nil, err
	}
	if a.APIKeyID != "" {
		c, ok, err := s.d.Directory.CitizenByPhone(ctx, f.Citizen.Phone)
		if err != nil {
			return nil, err
		}
		// Linked to the citizen's account, so that they follow and rate
		// it; the name stays the one the system gave (none when it gave
		// none), never the account's: the key names any phone, and the
		// account's name, read back or shown publicly, would tell it whose
		// the number is.
		if ok {
			f.Citizen.AccountID = c.AccountID
		}
	} else {
		c, err := s.d.Directory.Citizen(ctx, a.AccountID)
		if err != nil {
			return nil, err
		}
		f.Citizen.Name, f.Citizen.Phone = c.Name, c.Phone
	}
	// The limit is checked here, before any photo is read. What a system
	// files for a phone counts against that system's share for the phone,
	// never against the citizen's own: a key holder cannot use up the day
	// of a citizen whose number it knows.
	since := s.d.Now().Add(-24 * time.Hour)
	n, err := s.d.Store.CountFeedbackSince(ctx, f.ClientID, f.Citizen.AccountID, f.Citizen.Phone, since)
	if err != nil {
		return nil, err
	}
	if n >= s.cfg.PerDay {
		return nil, (&loa.Error{Code: loa.ERateLimited, RetryAfter: time.Hour,
			Detail: fmt.Sprintf("at most %d pieces of feedback a day from one citizen; try again later", s.cfg.PerDay)}).Wrap(ErrForbidden)
	}
	// A key names any phone it likes, so what it sends over every phone
	// is bounded too (before any photo is read): the matters, and those
	// with photos, whose bound refuses the photos of this one.
	var photosRefused error
	if f.ClientID != "" && (s.cfg.KeyPerDay > 0 || s.cfg.KeyPhotosPerDay > 0) {
		n, withPhotos, err := s.d.Store.CountKeyFeedbackSince(ctx, f.ClientID, since)
		if err != nil {
			return nil, err
		}
		if s.cfg.KeyPerDay > 0 && n >= s.cfg.KeyPerDay {
			return nil, (&loa.Error{Code: loa.ERateLimited, RetryAfter: time.Hour,
				Detail: fmt.Sprintf("at most %d pieces of feedback a day from one integrating system; try again later", s.cfg.KeyPerDay)}).Wrap(ErrForbidden)
		}
		if s.cfg.KeyPhotosPerDay > 0 && withPhotos >= s.cfg.KeyPhotosPerDay {
			photosRefused = (&loa.Error{Code: loa.ERateLimited, Field: "photos", RetryAfter: time.Hour,
				Detail: fmt.Sprintf("at most %d pieces of feedback with photos a day from one integrating system; send it without photos, or later", s.cfg.KeyPhotosPerDay)}).Wrap(ErrForbidden)
		}
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("feedback: new id: %w", err)
	}
	f.ID = id.String()
	return &Draft{f: f, photosRefused: photosRefused}, nil
}

// Submit stores a prepared draft: routes it to its agency (the most
// specific route of its area, else the category's agency), sets its
// deadline, and tells the citizen. Returns the stored matter.
func (s *Service) Submit(ctx context.Context, a Actor, d *Draft) (Feedback, error) {
	f := d.f
	now := s.d.Now().UTC()
	f.CreatedAt, f.UpdatedAt = now, now
	cat, err := s.d.Store.FeedbackCategory(ctx, f.Category)
	if err != nil {
		return Feedback{}, err
	}
	f.DueAt = s.d.Calendar.AddWorkingDays(now, cat.HandlingDays)
	agency, err := s.route(ctx, cat, f.Location.Area)
	if err != nil {
		return Feedback{}, err
	}
	events := []Event{{At: now, Actor: a.name(), Action: "submit", To: StatusReceived}}
	var items []producer.OutboxItem
	if agency != "" {
		f.Status, f.Agency = StatusAssigned, agency
		events = append(events, Event{At: now, Actor: systemActor, Action: "assign", From: StatusReceived, To: StatusAssigned, Agency: agency})
		rem, err := s.deadlineItems(ctx, f, now)
		if err != nil {
			return Feedback{}, err
		}
		items = append(items, rem...)
	} else {
		over, err := s.overdueItems(ctx, f, now)
		if err != nil {
			return Feedback{}, err
		}
		items = append(items, over...)
	}
	notice, err := s.notice(f, "submit", now)
	if err != nil {
		return Feedback{}, err
	}
	items = append(items, notice...)
	f.Masked = maskedOf(f)
	if err := s.d.Store.CreateFeedback(ctx, f, events, items); err != nil {
		return Feedback{}, fmt.Errorf("feedback: submit: %w", err)
	}
	return f, nil
}

// route picks the agency for a category in an area.
func (s *Service) route(ctx context.Context, cat Category, area string) (string, error) {
	if area == "" {
		return cat.Agency, nil
	}
	lineage, err := s.d.Store.AreaLineage(ctx, area)
	if err != nil {
		return "", err
	}
	routes, err := s.d.Store.FeedbackRoutes(ctx, cat.Code)
	if err != nil {
		return "", err
	}
	for _, code := range lineage {
		for _, r := range routes {
			if r.Area == code {
				return r.Agency, nil
			}
		}
	}
	return cat.Agency, nil
}

func text(v *loa.Validation, field, in string, max int, required bool) string {
	if !utf8.ValidString(in) {
		v.Add(field, "must be valid UTF-8")
		return ""
	}
	if strings.ContainsRune(in, 0) {
		v.Add(field, "must not contain NUL")
		return ""
	}
	t := strings.TrimSpace(norm.NFC.String(in))
	switch {
	case t == "" && required:
		v.Add(field, "is required")
	case utf8.RuneCountInString(t) > max:
		v.Add(field, "must be at most %d characters", max)
	}
	return t
}

// firstWords cuts s to at most n characters at a space.
func firstWords(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)[:n]
	if i := strings.LastIndexByte(string(r), ' '); i > n/2 {
		return string(r)[:i] + "…"
	}
	return string(r) + "…"
}

// grants returns the actor's grants (none for keys and citizens).
func (s *Service) grants(ctx context.Context, a Actor) ([]Grant, error) {
	if a.AccountID == "" || a.Kind != "official" {
		return nil, nil
	}
	return s.d.Roles.Grants(ctx, a.AccountID)
}

func has(gs []Grant, unit, role string) bool {
	return slices.Contains(gs, Grant{Unit: unit, Role: role})
}

func hasAny(gs []Grant, role string) bool {
	return slices.ContainsFunc(gs, func(g Grant) bool { return g.Role == role })
}

// coordinator reports whether gs coordinate (feedback_coordinator of the
// coordinator unit).
func (s *Service) coordinator(gs []Grant) bool {
	return s.cfg.CoordinatorUnit != "" && has(gs, s.cfg.CoordinatorUnit, RoleCoordinator)
}

// MayHandle reports whether the actor is an official who handles or
// coordinates feedback at all; the API asks before reading a body.
func (s *Service) MayHandle(ctx context.Context, a Actor) error {
	gs, err := s.grants(ctx, a)
	if err != nil {
		return err
	}
	if hasAny(gs, RoleHandler) || s.coordinator(gs) || hasAny(gs, RoleAdmin) {
		return nil
	}
	return forbidden("needs the role %s in an agency, or %s in the DoIC's unit", RoleHandler, RoleCoordinator)
}

// MayAdminister reports whether the actor edits categories and routes:
// a coordinator or an administrator.
func (s *Service) MayAdminister(ctx context.Context, a Actor, adminKey bool) error {
	if adminKey {
		return nil
	}
	gs, err := s.grants(ctx, a)
	if err != nil {
		return err
	}
	if s.coordinator(gs) || hasAny(gs, RoleAdmin) {
		return nil
	}
	return forbidden("categories and routes are edited by %s of the DoIC's unit or an administrator", RoleCoordinator)
}

// MayRead reports whether the actor sees the matter in full (with the
// citizen's data): the citizen who sent it, a handler of its agency, a
// coordinator, an administrator.
func (s *Service) mayRead(ctx context.Context, a Actor, f Feedback) error {
	if a.AccountID != "" && a.AccountID == f.Citizen.AccountID {
		return nil
	}
	if a.APIKeyID != "" && a.APIKeyID == f.ClientID {
		return nil
	}
	gs, err := s.grants(ctx, a)
	if err != nil {
		return err
	}
	if (f.Agency != "" && has(gs, f.Agency, RoleHandler)) || s.coordinator(gs) || hasAny(gs, RoleAdmin) {
		return nil
	}
	return forbidden("feedback %s is seen in full by its sender, the handlers of its agency and the coordinators; its public view is at /v1/public/feedback/%s", f.ID, f.ID)
}

// Get returns a matter in full to those who may see it.
func (s *Service) Get(ctx context.Context, a Actor, id string) (Feedback, error) {
	f, err := s.load(ctx, id)
	if err != nil {
		return Feedback{}, err
	}
	if err := s.mayRead(ctx, a, f); err != nil {
		return Feedback{}, err
	}
	return f, nil
}

// History returns a matter's steps to those who may see it in full.
func (s *Service) History(ctx context.Context, a Actor, id string) ([]Event, error) {
	if _, err := s.Get(ctx, a, id); err != nil {
		return nil, err
	}
	return s.d.Store.FeedbackHistory(ctx, id)
}

// Mine lists the feedback a citizen sent, newest first.
func (s *Service) Mine(ctx context.Context, a Actor, f Filter) ([]Feedback, error) {
	if a.AccountID == "" {
		return nil, forbidden("sign in to see your feedback")
	}
	f.Citizen = a.AccountID
	return s.d.Store.ListFeedback(ctx, f)
}

// Queue lists what an official handles: their agencies' matters, and for
// coordinators everything (by default the received and escalated ones).
func (s *Service) Queue(ctx context.Context, a Actor, f Filter) ([]Feedback, error) {
	gs, err := s.grants(ctx, a)
	if err != nil {
		return nil, err
	}
	if s.coordinator(gs) || hasAny(gs, RoleAdmin) {
		if len(f.Statuses) == 0 && f.Agency == "" {
			f.Statuses = []Status{StatusReceived, StatusEscalated}
		}
		return s.d.Store.ListFeedback(ctx, f)
	}
	var units []string
	for _, g := range gs {
		if g.Role == RoleHandler {
			units = append(units, g.Unit)
		}
	}
	if len(units) == 0 {
		return nil, forbidden("needs the role %s", RoleHandler)
	}
	if f.Agency == "" {
		f.Agency = units[0]
	}
	if !slices.Contains(units, f.Agency) {
		return nil, forbidden("you handle feedback of %s only", strings.Join(units, ", "))
	}
	if len(f.Statuses) == 0 {
		f.Statuses = []Status{StatusAssigned, StatusTransferred, StatusInProgress}
	}
	return s.d.Store.ListFeedback(ctx, f)
}

func (s *Service) load(ctx context.Context, id string) (Feedback, error) {
	f, err := s.d.Store.Feedback(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return f, notFound(id)
	}
	return f, err
}

// Category returns an active category.
func (s *Service) Category(ctx context.Context, code string) (Category, error) {
	c, err := s.d.Store.FeedbackCategory(ctx, code)
	if errors.Is(err, ErrNotFound) || err == nil && !c.Active {
		return Category{}, loa.NotFound("category %s not found", code).Wrap(ErrNotFound)
	}
	return c, err
}

// Categories lists the categories (active ones unless all).
func (s *Service) Categories(ctx context.Context, all bool) ([]Category, error) {
	cs, err := s.d.Store.FeedbackCategories(ctx)
	if err != nil || all {
		return cs, err
	}
	return slices.DeleteFunc(cs, func(c Category) bool { return !c.Active }), nil
}

// PutCategory creates or changes a category.
func (s *Service) PutCategory(ctx context.Context, a Actor, adminKey bool, c Category) (Category, error) {
	if err := s.MayAdminister(ctx, a, adminKey); err != nil {
		return Category{}, err
	}
	var v loa.Validation
	c.Code = strings.TrimSpace(c.Code)
	if !validCode(c.Code) {
		v.Add("code", "must be 1-64 letters, digits, '.', '_' or '-'")
	}
	c.Name = text(&v, "name", c.Name, 200, true)
	c.NameEN = text(&v, "name_en", c.NameEN, 200, false)
	c.Group = text(&v, "group", c.Group, 200, false)
	c.Agency = strings.TrimSpace(c.Agency)
	if c.Agency != "" && !validCode(c.Agency) {
		v.Add("agency", "must be a unit code")
	}
	if c.HandlingDays < 1 || c.HandlingDays > 90 {
		v.Add("handling_days", "must be 1 to 90 working days")
	}
	if err := v.Err(ErrInvalid); err != nil {
		return Category{}, err
	}
	if err := s.d.Store.PutFeedbackCategory(ctx, c); err != nil {
		return Category{}, err
	}
	return c, nil
}

// Routes lists a category's routes.
func (s *Service) Routes(ctx context.Context, category string) ([]Route, error) {
	if _, err := s.Category(ctx, category); err != nil {
		return nil, err
	}
	return s.d.Store.FeedbackRoutes(ctx, category)
}

// PutRoute sends a category's feedback from an area to an agency.
func (s *Service) PutRoute(ctx context.Context, a Actor, adminKey bool, r Route) error {
	if err := s.MayAdminister(ctx, a, adminKey); err != nil {
		return err
	}
	var v loa.Validation
	if _, err := s.d.Store.FeedbackCategory(ctx, r.Category); errors.Is(err, ErrNotFound) {
		v.Add("category", "unknown category %q", r.Category)
	} else if err != nil {
		return err
	}
	if _, err := s.d.Store.AreaLineage(ctx, r.Area); errors.Is(err, ErrNotFound) {
		v.Add("area", "unknown area code %q", r.Area)
	} else if err != nil {
		return err
	}
	if !validCode(r.Agency) {
		v.Add("agency", "must be a unit code")
	}
	if err := v.Err(ErrInvalid); err != nil {
		return err
	}
	return s.d.Store.PutFeedbackRoute(ctx, r)
}

// DeleteRoute removes a route.
func (s *Service) DeleteRoute(ctx context.Context, a Actor, adminKey bool, category, area string) error {
	if err := s.MayAdminister(ctx, a, adminKey); err != nil {
		return err
	}
	ok, err := s.d.Store.DeleteFeedbackRoute(ctx, category, area)
	if err != nil {
		return err
	}
	if !ok {
		return loa.NotFound("no route of %s for area %s", category, area).Wrap(ErrNotFound)
	}
	return nil
}

// ValidCode reports whether c is a category or unit code: 1 to 64
// letters, digits, '.', '_' or '-'.
func ValidCode(c string) bool { return validCode(c) }

func validCode(c string) bool {
	if c == "" || len(c) > 64 {
		return false
	}
	for i := 0; i < len(c); i++ {
		b := c[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '.' || b == '_' || b == '-') {
			return false
		}
	}
	return true
}
