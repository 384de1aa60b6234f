package outage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

// Vietnam has kept UTC+7 without daylight saving since 1975; a fixed zone
// avoids depending on the host's time-zone database.
var vietnam = time.FixedZone("ICT", 7*3600)

// Config configures the outage service.
type Config struct {
	// LeadTimes are how long before an outage's start its reminders are
	// sent. Default 24h and 2h.
	LeadTimes []time.Duration
	// Channels the notices go out on. Default push.
	Channels []string
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{LeadTimes: []time.Duration{24 * time.Hour, 2 * time.Hour}, Channels: []string{"push"}}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if len(c.LeadTimes) == 0 || len(c.LeadTimes) > 5 {
		return errors.New("outage: give between 1 and 5 lead times")
	}
	seen := map[time.Duration]bool{}
	for _, l := range c.LeadTimes {
		if l < time.Minute || l > 30*24*time.Hour {
			return fmt.Errorf("outage: lead time %s is not between 1m and 720h", l)
		}
		if seen[l] {
			return fmt.Errorf("outage: lead time %s given twice", l)
		}
		seen[l] = true
	}
	for _, ch := range c.Channels {
		if ch != "push" && ch != "sms" {
			return fmt.Errorf("outage: channel %q is not push or sms", ch)
		}
	}
	if len(c.Channels) == 0 {
		return errors.New("outage: no channels")
	}
	return nil
}

// Input is one outage as posted, before validation.
type Input struct {
	ID        string
	Areas     []string
	Location  string
	Start     string // RFC 3339, or "2006-01-02 15:04" in Vietnam time
	End       string
	Reason    string
	Cancelled bool
}

// RowError lists what is wrong with one row (1-based) of a post.
type RowError struct {
	Row    int              `json:"row"`
	ID     string           `json:"id,omitempty"`
	Errors []loa.FieldError `json:"errors"`
}

// Notice is one notice of an outage as callers see it.
type Notice struct {
	NotificationID string    `json:"notification_id"`
	Version        int       `json:"version"`
	Kind           string    `json:"kind"`           // reminder | change | cancel
	Lead           string    `json:"lead,omitempty"` // reminders: e.g. "24h"
	DueAt          time.Time `json:"due_at"`
	Status         string    `json:"status"` // scheduled | sent | cancelled | skipped
	Detail         string    `json:"detail,omitempty"`
}

// Outage is a stored schedule with its notices.
type Outage struct {
	ID        string    `json:"id"`
	Version   int       `json:"version"`
	Status    string    `json:"status"` // on accept: created | changed | unchanged | cancelled; on read: scheduled | cancelled
	Areas     []string  `json:"areas"`
	Location  string    `json:"location"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Reason    string    `json:"reason"`
	Cancelled bool      `json:"cancelled"`
	Notices   []Notice  `json:"notices"`
}

// Result is the outcome of a post: the rows kept and the rows refused.
type Result struct {
	Accepted []Outage   `json:"accepted"`
	Rejected []RowError `json:"rejected"`
}

// Accept statuses.
const (
	StatusCreated   = "created"
	StatusChanged   = "changed"
	StatusUnchanged = "unchanged"
	StatusCancelled = "cancelled"
)

// Notice kinds.
const (
	KindReminder = "reminder"
	KindChange   = "change"
	KindCancel   = "cancel"
)

// ErrNotFound is wrapped by the loa.ENotFound *loa.Error returned for an
// outage the client never posted.
var ErrNotFound = errors.New("outage: not found")

func notFound(id string) error { return loa.NotFound("outage %s not found", id).Wrap(ErrNotFound) }

type publisher interface {
	Publish(ctx context.Context, e producer.Envelope) error
}

// Service validates, stores and announces outage schedules. It is safe
// for concurrent use; concurrent posts of one outage are serialised by
// the stored version.
type Service struct {
	store  Store
	pub    publisher
	outbox *producer.Outbox
	cfg    Config
	log    *slog.Logger
	// Now is the clock; time.Now unless a test sets it.
	Now func() time.Time
}

// New returns a service. cfg must be valid (a zero Config takes the
// defaults).
func New(store Store, pub publisher, cfg Config, log *slog.Logger) *Service {
	def := DefaultConfig()
	if len(cfg.LeadTimes) == 0 {
		cfg.LeadTimes = def.LeadTimes
	}
	if len(cfg.Channels) == 0 {
		cfg.Channels = def.Channels
	}
	cfg.LeadTimes = slices.Clone(cfg.LeadTimes)
	slices.SortFunc(cfg.LeadTimes, func(a, b time.Duration) int { return int((b - a) / time.Second) }) // longest first
	return &Service{store: store, pub: pub, outbox: producer.NewOutbox(store, pub, log), cfg: cfg, log: log, Now: time.Now}
}

// parsed is a valid row.
type parsed struct {
	row       int
	id        string
	areas     []string
	location  string
	start     time.Time
	end       time.Time
	reason    string
	cancelled bool
}

// MaxAreas is how many area codes one outage may name.
const MaxAreas = 200

// MaxAhead is how far ahead of its posting an outage may start: a year
// and a day. A schedule further ahead is a typo in the year (its
// reminders would wait years, as scheduled items, for nobody) or a
// key used to fill the schedule.
const MaxAhead = 366 * 24 * time.Hour

var idPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)

// ParseTime reads an outage time: RFC 3339, or "2006-01-02 15:04" (also
// with seconds, or a T) in Vietnam time.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, vietnam); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is neither RFC 3339 (2026-11-25T07:00:00+07:00) nor 2026-11-25 07:00 in Vietnam time", s)
}

// validate checks one row; unknown area codes are checked by the caller.
func (s *Service) validate(row int, in Input, now time.Time) (parsed, []loa.FieldError) {
	p := parsed{row: row, id: strings.TrimSpace(in.ID), cancelled: in.Cancelled}
	var errs []loa.FieldError
	bad := func(field, format string, a ...any) {
		errs = append(errs, loa.FieldError{Field: field, Detail: fmt.Sprintf(format, a...)})
	}
	switch {
	case p.id == "":
		bad("id", "is required")
	case !idPattern.MatchString(p.id):
		bad("id", "must be 1 to 100 letters, digits, dots, dashes or underscores")
	}
	if in.Cancelled {
		return p, errs // a cancellation names the outage; the rest is ignored
	}
	seen := map[string]bool{}
	for _, a := range in.Areas {
		if a = strings.TrimSpace(a); a != "" && !seen[a] {
			seen[a] = true
			p.areas = append(p.areas, a)
		}
	}
	slices.Sort(p.areas)
	if len(p.areas) == 0 {
		bad("areas", "is required: one or more area codes")
	} else if len(p.areas) > MaxAreas {
		bad("areas", "names %d areas; at most %d", len(p.areas), MaxAreas)
	}
	p.location = norm.NFC.String(strings.TrimSpace(in.Location))
	p.reason = norm.NFC.String(strings.TrimSpace(in.Reason))
	switch n := utf8.RuneCountInString(p.location); {
	case n == 0:
		bad("location", "is required: the streets or hamlets affected")
	case n > 500:
		bad("location", "is %d characters; at most 500", n)
	}
	if n := utf8.RuneCountInString(p.reason); n > 500 {
		bad("reason", "is %d characters; at most 500", n)
	}
	var startOK, endOK bool
	if strings.TrimSpace(in.Start) == "" {
		bad("start", "is required")
	} else if t, err := ParseTime(in.Start); err != nil {
		bad("start", "%v", err)
	} else {
		p.start, startOK = t, true
	}
	if strings.TrimSpace(in.End) == "" {
		bad("end", "is required")
	} else if t, err := ParseTime(in.End); err != nil {
		bad("end", "%v", err)
	} else {
		p.end, endOK = t, true
	}
	switch {
	case startOK && endOK && !p.end.After(p.start):
		bad("end", "must be after start")
	case startOK && endOK && p.end.Sub(p.start) > 7*24*time.Hour:
		bad("end", "the outage lasts %s; at most 7 days", p.end.Sub(p.start))
	case endOK && !p.end.After(now):
		bad("end", "is past: the outage has already ended")
	case startOK && p.start.Sub(now) > MaxAhead:
		bad("start", "is more than %d days ahead", int(MaxAhead/(24*time.Hour)))
	}
	return p, errs
}

// Client is who posts: the owner of the outage ids, and the areas it
// may post for.
type Client struct {
	ID string
	// Areas are the area codes the client may post for, each with every
	// unit below it. None: it may post for no area.
	Areas []string
	// AnyArea lets the client post for every area (dev mode's bootstrap
	// key); Areas is then ignored.
	AnyArea bool
}

// AreaError is wrapped by the error of a post with a valid row naming an
// area outside its client's.
type AreaError struct {
	Row     int      // 1-based
	Outside []string // the row's codes outside the client's areas
	Allowed []string // the client's areas
}

func (e *AreaError) Error() string {
	if len(e.Allowed) == 0 {
		return "this API key may publish outage schedules for no area; an operator sets its areas (loa admin apikey areas)"
	}
	return fmt.Sprintf("this API key may publish only for the areas %s and the units below them, not for %s",
		strings.Join(e.Allowed, ", "), strings.Join(e.Outside, ", "))
}

// Post validates every row, keeps the good ones and announces them. Rows
// are applied in order; a row whose id appeared earlier in the same post
// is refused. A valid row naming an area outside c's refuses the whole
// post before anything is stored or sent: the error wraps an *AreaError.
// Any other error is for the store or the publisher failing; the rows
// applied before it are kept.
func (s *Service) Post(ctx context.Context, c Client, in []Input) (Result, error) {
	client := c.ID
	now := s.Now()
	res := Result{Accepted: []Outage{}, Rejected: []RowError{}}
	ids := map[string]bool{}
	var good []parsed
	for i, row := range in {
		p, errs := s.validate(i+1, row, now)
		if p.id != "" && ids[p.id] {
			errs = append(errs, loa.FieldError{Field: "id", Detail: "is given twice in this request"})
		}
		ids[p.id] = true
		// Past MaxAreas the row is refused as it is: looking its codes up
		// would be a query of as many parameters as the body holds codes
		// (past 32,766 or 65,535 the store refuses it, and the whole post
		// failed with 500).
		if len(p.areas) > 0 && len(p.areas) <= MaxAreas {
			unknown, err := s.store.UnknownAreas(ctx, p.areas)
			if err != nil {
				return res, err
			}
			for _, c := range unknown {
				errs = append(errs, loa.FieldError{Field: "areas", Detail: fmt.Sprintf("unknown area code %q", c)})
			}
		}
		if len(errs) > 0 {
			res.Rejected = append(res.Rejected, RowError{Row: i + 1, ID: strings.TrimSpace(row.ID), Errors: errs})
			continue
		}
		good = append(good, p)
	}
	if err := s.checkAreas(ctx, c, good); err != nil {
		return res, err
	}
	for _, p := range good {
		o, err := s.apply(ctx, client, p)
		if errors.Is(err, ErrNotFound) {
			res.Rejected = append(res.Rejected, RowError{Row: p.row, ID: p.id, Errors: []loa.FieldError{{Field: "id", Detail: "no outage with this id to cancel"}}})
			continue
		}
		if err != nil {
			return res, err
		}
		res.Accepted = append(res.Accepted, o)
	}
	slices.SortFunc(res.Rejected, func(a, b RowError) int { return a.Row - b.Row })
	return res, nil
}

// checkAreas returns an *AreaError for the first row naming an area
// outside c's (the row's codes as validated: trimmed, known, without
// repeats). Cancellations name no area: a client cancels what it posted.
func (s *Service) checkAreas(ctx context.Context, c Client, rows []parsed) error {
	if c.AnyArea {
		return nil
	}
	var allowed map[string]bool
	for _, p := range rows {
		if len(p.areas) == 0 {
			continue
		}
		if allowed == nil {
			within, err := s.store.AreaSubtree(ctx, c.Areas)
			if err != nil {
				return err
			}
			allowed = make(map[string]bool, len(within))
			for _, code := range within {
				allowed[code] = true
			}
		}
		var outside []string
		for _, code := range p.areas {
			if !allowed[code] {
				outside = append(outside, code)
			}
		}
		if len(outside) > 0 {
			return &AreaError{Row: p.row, Outside: outside, Allowed: slices.Clone(c.Areas)}
		}
	}
	return nil
}

// Cancel cancels an outage: its pending reminders are cancelled and a
// cancellation notice is sent (unless it has ended). It returns
// ErrNotFound for an outage the client never posted; cancelling twice
// changes nothing the second time.
func (s *Service) Cancel(ctx context.Context, client, id string) (Outage, error) {
	return s.apply(ctx, client, parsed{id: id, cancelled: true})
}

// Get returns an outage's current version and all its notices.
func (s *Service) Get(ctx context.Context, client, id string) (Outage, error) {
	cur, err := s.store.Outage(ctx, client, id)
	if errors.Is(err, ErrNotFound) {
		return Outage{}, notFound(id)
	}
	if err != nil {
		return Outage{}, err
	}
	o := view(cur)
	o.Status = "scheduled"
	if cur.Cancelled {
		o.Status = StatusCancelled
	}
	if o.Notices, err = s.notices(ctx, client, id); err != nil {
		return Outage{}, err
	}
	return o, nil
}

func view(o Record) Outage {
	return Outage{ID: o.ID, Version: o.Version, Areas: o.Areas, Location: o.Location, Start: o.Start, End: o.End,
		Reason: o.Reason, Cancelled: o.Cancelled, Notices: []Notice{}}
}

func (s *Service) notices(ctx context.Context, client, id string) ([]Notice, error) {
	ns, err := s.store.OutageNotices(ctx, client, id)
	if err != nil {
		return nil, err
	}
	out := []Notice{}
	for _, n := range ns {
		v := Notice{NotificationID: n.ID, Version: n.Version, Kind: n.Kind, DueAt: n.DueAt, Status: n.Status, Detail: n.Detail}
		if n.Kind == KindReminder {
			v.Lead = leadLabel(n.Lead)
		}
		out = append(out, v)
	}
	return out, nil
}

// hash identifies an outage's content: a repost with the same hash is
// the same schedule.
func hash(areas []string, location string, start, end time.Time, reason string, cancelled bool) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%d\x00%d\x00%s\x00%t", strings.Join(areas, " "), location, start.Unix(), end.Unix(), reason, cancelled)
	return hex.EncodeToString(h.Sum(nil))
}

// apply stores a row as the outage's next version, unless its content is
// the current one's, and announces it. A version stored but not yet
// announced (a crash, a publish failure) is announced by the next post of
// the same content: every notice's id is derived from the outage, the
// version and the notice, so doing it again schedules and plans nothing
// twice.
func (s *Service) apply(ctx context.Context, client string, p parsed) (Outage, error) {
	for range 5 {
		now := s.Now()
		cur, err := s.store.Outage(ctx, client, p.id)
		exists := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return Outage{}, err
		}
		var next Record
		if p.cancelled {
			if !exists {
				return Outage{}, notFound(p.id)
			}
			next = cur
			next.Cancelled = true
		} else {
			next = Record{Client: client, ID: p.id, Areas: p.areas, Location: p.location, Start: p.start.UTC(),
				End: p.end.UTC(), Reason: p.reason}
		}
		next.Hash = hash(next.Areas, next.Location, next.Start, next.End, next.Reason, next.Cancelled)
		if exists && cur.Hash == next.Hash {
			if !cur.Notified {
				if err := s.announce(ctx, cur, now); err != nil {
					return Outage{}, err
				}
			}
			o := view(cur)
			o.Status = StatusUnchanged
			if cur.Cancelled {
				o.Status = StatusCancelled
			}
			o.Notices, err = s.notices(ctx, client, p.id)
			return o, err
		}
		prev := 0
		if exists {
			prev = cur.Version
			// The reminders of the earlier version are void. Cancelling
			// before the new version is stored means a retry after a
			// crash never cancels the new version's reminders.
			if _, err := s.store.CancelScheduled(ctx, subject(client, p.id)); err != nil {
				return Outage{}, err
			}
			// So are its notices still held for subscribers' quiet hours
			// (dispatcher.HeldSubject of their collapse key).
			if _, err := s.store.CancelScheduled(ctx, "held:"+subject(client, p.id)); err != nil {
				return Outage{}, err
			}
			if err := s.stopSent(ctx, cur, now); err != nil {
				return Outage{}, err
			}
		}
		next.Version = prev + 1
		if err := s.store.SaveOutage(ctx, next, prev, now); errors.Is(err, ErrConflict) {
			continue
		} else if err != nil {
			return Outage{}, err
		}
		if err := s.announce(ctx, next, now); err != nil {
			return Outage{}, err
		}
		o := view(next)
		switch {
		case next.Cancelled:
			o.Status = StatusCancelled
		case exists:
			o.Status = StatusChanged
		default:
			o.Status = StatusCreated
		}
		o.Notices, err = s.notices(ctx, client, p.id)
		return o, err
	}
	return Outage{}, fmt.Errorf("outage: %s keeps changing concurrently: %w", p.id, ErrConflict)
}

// stopSent stops the notices of version cur that are already on their
// way: a reminder the scheduler published as the new version came (its
// poll claimed the item first, so CancelScheduled found it no longer
// pending), a change notice or a reminder still being planned or sent.
// They are on another partition than the new version's notice and
// collapse with it on the phone, so one sent after it would put the old
// times back in place of the change or the cancellation. Their plans are
// cancelled: the planner plans no more of them, and the senders skip
// their batches and their retries (what a sender holds at that moment
// still goes, before the new notice is planned). A plan long done is
// marked too, which changes nothing sent.
func (s *Service) stopSent(ctx context.Context, cur Record, now time.Time) error {
	ns, err := s.store.OutageNotices(ctx, cur.Client, cur.ID)
	if err != nil {
		return err
	}
	for _, n := range ns {
		if n.Version != cur.Version || n.Status != NoticeSent {
			continue
		}
		if err := s.store.CancelPlan(ctx, n.ID, s.cfg.Channels, now); err != nil {
			return fmt.Errorf("outage: stop notice %s: %w", n.ID, err)
		}
	}
	return nil
}

// subject names an outage's scheduled items, for cancelling them.
func subject(client, id string) string { return "outage:" + client + "/" + id }

// noticeID is the notification id of one notice of one version.
func noticeID(client, id string, version int, what string) string {
	h := sha256.Sum256([]byte(client + "\x00" + id))
	return fmt.Sprintf("outage-%s-v%d-%s", hex.EncodeToString(h[:8]), version, what)
}

func leadLabel(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	case d%time.Minute == 0:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	}
	return d.String()
}

// announce schedules and sends the notices of o's version:
//   - a cancelled outage: a cancellation notice now;
//   - a version after the first: a change notice now;
//   - reminders at each lead time before the start. A reminder already
//     due is sent now, once (the one closest to the start), unless a
//     change notice just told the same; none is sent once the outage has
//     started.
//
// Nothing is sent about an outage that has ended, and every notice
// expires at the outage's end.
func (s *Service) announce(ctx context.Context, o Record, now time.Time) error {
	record := func(id, kind string, lead time.Duration, due time.Time, status, detail string) error {
		return s.store.AddOutageNotice(ctx, NoticeRecord{ID: id, Client: o.Client, OutageID: o.ID, Version: o.Version,
			Kind: kind, Lead: lead, DueAt: due, Status: status, Detail: detail}, now)
	}
	if !now.Before(o.End) {
		return s.store.MarkOutageNotified(ctx, o.Client, o.ID, o.Version)
	}
	if o.Cancelled {
		id := noticeID(o.Client, o.ID, o.Version, KindCancel)
		st, err := s.sendNow(ctx, o, id, KindCancel, now)
		if err != nil {
			return err
		}
		if err := record(id, KindCancel, 0, now, st, ""); err != nil {
			return err
		}
		return s.store.MarkOutageNotified(ctx, o.Client, o.ID, o.Version)
	}
	told := false
	if o.Version > 1 {
		id := noticeID(o.Client, o.ID, o.Version, KindChange)
		st, err := s.sendNow(ctx, o, id, KindChange, now)
		if err != nil {
			return err
		}
		if err := record(id, KindChange, 0, now, st, ""); err != nil {
			return err
		}
		told = true
	}
	var overdue []time.Duration // longest lead first
	for _, lead := range s.cfg.LeadTimes {
		due := o.Start.Add(-lead)
		id := noticeID(o.Client, o.ID, o.Version, leadLabel(lead))
		if due.After(now) {
			env, err := s.envelope(o, id, KindReminder, now)
			if err != nil {
				return err
			}
			if err := s.outbox.Schedule(ctx, id, subject(o.Client, o.ID), due, env); err != nil {
				return err
			}
			if err := record(id, KindReminder, lead, due, NoticeScheduled, ""); err != nil {
				return err
			}
			continue
		}
		overdue = append(overdue, lead)
	}
	for i, lead := range overdue {
		due := o.Start.Add(-lead)
		id := noticeID(o.Client, o.ID, o.Version, leadLabel(lead))
		var status, detail string
		switch {
		case !now.Before(o.Start):
			status, detail = NoticeSkipped, "the outage had already started"
		case told:
			status, detail = NoticeSkipped, "due before the schedule was posted; the change notice told it"
		case i < len(overdue)-1:
			status, detail = NoticeSkipped, "due before the schedule was posted; a later reminder was sent at once"
		default:
			st, err := s.sendNow(ctx, o, id, KindReminder, now)
			if err != nil {
				return err
			}
			status, detail = st, "due before the schedule was posted; sent at once"
		}
		if err := record(id, KindReminder, lead, due, status, detail); err != nil {
			return err
		}
	}
	return s.store.MarkOutageNotified(ctx, o.Client, o.ID, o.Version)
}

// sendNow publishes a notice at once. When the publisher fails, the notice
// is stored as an outbox item due now, for the outbox's poller to
// publish: it is not lost, and it returns "scheduled".
func (s *Service) sendNow(ctx context.Context, o Record, id, kind string, now time.Time) (string, error) {
	env, err := s.envelope(o, id, kind, now)
	if err != nil {
		return "", err
	}
	perr := s.pub.Publish(ctx, env)
	if perr == nil {
		return NoticeSent, nil
	}
	s.log.Warn("outage: publishing a notice failed; the scheduler will publish it", slog.String("notification_id", id), slog.Any("error", perr))
	if err := s.outbox.Schedule(ctx, id, subject(o.Client, o.ID), now, env); err != nil {
		return "", errors.Join(perr, err)
	}
	return NoticeScheduled, nil
}

// envelope is the plan of one notice: on the bulk lane, to the
// subscribers of the outage's areas, expiring when the outage ends.
func (s *Service) envelope(o Record, id, kind string, now time.Time) (producer.Envelope, error) {
	title, body := Text(kind, o.Location, o.Start, o.End, o.Reason)
	data := map[string]string{"type": "outage", "outage_id": o.ID, "notice": kind, "version": strconv.Itoa(o.Version)}
	// A long location and reason (what JSON escapes counts six bytes) could
	// pass FCM's 4,096 bytes, and FCM would refuse the push to every
	// device: the body is cut to what one push carries.
	body = producer.CutJSON(body, producer.PushPayload-producer.PushReserve-producer.PushSize(title, "", data)+len(`""`))
	plan := producer.Plan{
		NotificationID: id,
		Audience:       producer.Audience{Areas: o.Areas},
		Channels:       s.cfg.Channels,
		Title:          title,
		Body:           body,
		Data:           data,
		Priority:       "normal",
		// Reminders, changes and the cancellation of one schedule replace
		// each other on the phone.
		Collapse: subject(o.Client, o.ID),
	}
	return producer.NewEnvelope(id, producer.KindPlan, topics.LaneBulk, id, now, o.End, "", plan)
}

// Text returns the Vietnamese title and body (NFC) of a notice. Times are
// shown in Vietnam time.
func Text(kind, location string, start, end time.Time, reason string) (title, body string) {
	when := func(t time.Time) string { return t.In(vietnam).Format("15:04 ngày 02/01/2006") }
	detail := fmt.Sprintf("%s, từ %s đến %s.", location, when(start), when(end))
	if reason != "" {
		detail += " Lý do: " + strings.TrimRight(reason, ". ") + "."
	}
	switch kind {
	case KindChange:
		title, body = "Thay đổi lịch cắt điện", "Lịch cắt điện đã thay đổi. Lịch mới: "+detail
	case KindCancel:
		title, body = "Hủy lịch cắt điện", fmt.Sprintf("Đã hủy lịch cắt điện: %s, từ %s đến %s. Điện vẫn được cung cấp bình thường.", location, when(start), when(end))
	default:
		title, body = "Lịch cắt điện", "Lịch cắt điện: "+detail
	}
	return norm.NFC.String(title), norm.NFC.String(body)
}
