package broadcast

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/text/unicode/norm"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/channels/sms"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

// Config is the broadcast service's configuration.
type Config struct {
	// Topics are the accepted topics (the accounts' subscription topics).
	Topics []string
	// App is the app whose devices receive push; default "smart".
	App string
	// Expiry is how long after its send time a broadcast may still be
	// sent; default 24 h.
	Expiry time.Duration
	// BatchSize is the planner's batch size; 0 for its default.
	BatchSize int
	// MaxTitle and MaxBody bound the Vietnamese and English texts, in
	// characters. Defaults 200 and 2000.
	MaxTitle, MaxBody int
	// MaxAccounts bounds an audience given as a list of accounts.
	// Default 1000.
	MaxAccounts int
	// CountTTL is how long a count of an audience (Estimate) is reused
	// before it is counted again. Default 1 minute.
	CountTTL time.Duration
	// ListChecks bounds how many broadcasts being sent one List call
	// checks for completion (a read of each one's ledger counts);
	// default 8. ListRecheck is how long List leaves a broadcast it
	// checked before checking it again; default 10 s. The others are
	// listed as stored: a list of hundreds of broadcasts stuck in
	// sending costs at most ListChecks counts, and a console
	// refreshing its list costs at most one count of each per
	// ListRecheck. Reading a broadcast (Get, GetCounted) always checks.
	ListChecks  int
	ListRecheck time.Duration
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Topics: accounts.DefaultTopics, App: "smart", Expiry: 24 * time.Hour, MaxTitle: 200, MaxBody: 2000, MaxAccounts: 1000,
		CountTTL: time.Minute, ListChecks: 8, ListRecheck: 10 * time.Second}
}

// Validate reports what makes c unusable.
func (c Config) Validate() error {
	switch {
	case len(c.Topics) == 0:
		return errors.New("broadcast: config: Topics must not be empty")
	case c.App == "":
		return errors.New("broadcast: config: App must be set")
	case c.Expiry <= 0:
		return errors.New("broadcast: config: Expiry must be positive")
	case c.MaxTitle <= 0 || c.MaxBody <= 0 || c.MaxAccounts <= 0:
		return errors.New("broadcast: config: MaxTitle, MaxBody and MaxAccounts must be positive")
	case c.CountTTL <= 0:
		return errors.New("broadcast: config: CountTTL must be positive")
	case c.ListChecks <= 0 || c.ListRecheck <= 0:
		return errors.New("broadcast: config: ListChecks and ListRecheck must be positive")
	}
	return nil
}

type publisher interface {
	Publish(ctx context.Context, e producer.Envelope) error
}

// roleSource is the accounts service's view of officials: their roles,
// and the approver rule (*accounts.Service implements both).
type roleSource interface {
	Roles(ctx context.Context, accountID string) ([]accounts.RoleGrant, error)
	// CheckApprover returns nil when approverID may decide on what the
	// submitters submitted; errors wrap accounts.ErrForbidden or
	// accounts.ErrFourEyes.
	CheckApprover(ctx context.Context, approverID string, submitters ...string) error
}

// Deps are the service's collaborators; all are required but Now.
type Deps struct {
	Store     Store
	Publisher publisher
	Roles     roleSource
	Log       *slog.Logger
	Now       func() time.Time
}

// Service creates, moves and reads broadcast requests. It is safe for
// concurrent use; concurrent moves of one request are serialised by the
// store's compare-and-set, so exactly one of them wins.
type Service struct {
	cfg    Config
	d      Deps
	outbox *producer.Outbox
	counts *counter

	// checked is when List last checked each broadcast being sent
	// (entries older than Config.ListRecheck are dropped).
	checkMu sync.Mutex
	checked map[string]time.Time
}

// New returns a service.
func New(cfg Config, d Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Store == nil || d.Publisher == nil || d.Roles == nil || d.Log == nil {
		return nil, errors.New("broadcast: Store, Publisher, Roles and Log are required")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	s := &Service{cfg: cfg, d: d, outbox: producer.NewOutbox(d.Store, d.Publisher, d.Log), checked: map[string]time.Time{}}
	s.counts = newCounter(cfg.CountTTL, d.Now, func(ctx context.Context, a loa.Audience) (int, int, error) {
		return d.Store.CountRecipients(ctx, a, cfg.App)
	})
	return s, nil
}

// MaxSendAhead is how far ahead a broadcast's send_at may be, as a
// direct notification's: 90 days. An approval is of a text for now; one
// that would go out years later, whoever then holds the roles, is not
// one an approver can weigh.
const MaxSendAhead = 90 * 24 * time.Hour

// systemActor records moves no person made (the scheduler started it).
const systemActor = "system"

var docDate = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// roles returns the actor's roles (in any unit) and home unit.
func (s *Service) roles(ctx context.Context, a Actor) (map[accounts.Role]bool, error) {
	if a.AccountID == "" {
		return nil, ErrForbidden
	}
	gs, err := s.d.Roles.Roles(ctx, a.AccountID)
	if err != nil {
		return nil, fmt.Errorf("broadcast: roles: %w", err)
	}
	out := map[accounts.Role]bool{}
	for _, g := range gs {
		out[g.Role] = true
	}
	return out, nil
}

func (s *Service) require(ctx context.Context, a Actor, allowed ...accounts.Role) error {
	rs, err := s.roles(ctx, a)
	if err != nil {
		return err
	}
	for _, r := range allowed {
		if rs[r] {
			return nil
		}
	}
	return forbidden("needs the role %s", joinRoles(allowed))
}

func joinRoles(rs []accounts.Role) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, " or ")
}

// readers may read broadcasts: approvers, operators and administrators
// every one, agency submitters those of their units (see Get).
var readers = []accounts.Role{accounts.RoleAgencySubmitter, accounts.RoleBroadcastApprover, accounts.RoleOps, accounts.RoleAdmin}

// Readers are the roles that may read broadcasts and their history.
func Readers() []accounts.Role { return slices.Clone(readers) }

func (s *Service) text(v *loa.Validation, field, text string, max int, required bool) string {
	t := strings.TrimSpace(norm.NFC.String(text))
	switch {
	case !utf8.ValidString(text):
		v.Add(field, "must be valid UTF-8")
	case t == "" && required:
		v.Add(field, "is required")
	case utf8.RuneCountInString(t) > max:
		v.Add(field, "must be at most %d characters", max)
	}
	return t
}

// check validates a draft and returns it normalised.
func (s *Service) check(ctx context.Context, d Draft) (Draft, error) {
	var v loa.Validation
	d.Title = s.text(&v, "title", d.Title, s.cfg.MaxTitle, true)
	d.Body = s.text(&v, "body", d.Body, s.cfg.MaxBody, true)
	d.TitleEN = s.text(&v, "title_en", d.TitleEN, s.cfg.MaxTitle, false)
	d.BodyEN = s.text(&v, "body_en", d.BodyEN, s.cfg.MaxBody, false)
	d.Topic = strings.TrimSpace(d.Topic)
	if d.Topic == "" {
		v.Add("topic", "is required")
	} else if !slices.Contains(s.cfg.Topics, d.Topic) {
		v.Add("topic", "must be one of %s", strings.Join(s.cfg.Topics, ", "))
	}
	a := &d.Audience
	a.Areas, a.Topics, a.Accounts = dedupe(a.Areas), dedupe(a.Topics), dedupe(a.Accounts)
	named := len(a.Areas) > 0 || len(a.Topics) > 0 || len(a.Accounts) > 0
	switch {
	case a.Everyone && named:
		v.Add("audience", "everyone excludes areas, topics and accounts")
	case !a.Everyone && !named:
		v.Add("audience", "name everyone, or one or more areas, topics or accounts")
	case a.AreaTopics && (len(a.Areas) == 0 || a.Everyone || len(a.Topics) > 0 || len(a.Accounts) > 0):
		v.Add("audience.area_topics", "sends one topic message per area: name areas only")
	}
	for i, t := range a.Topics {
		if !slices.Contains(s.cfg.Topics, t) {
			v.Add(fmt.Sprintf("audience.topics[%d]", i), "unknown topic %q", t)
		}
	}
	if len(a.Areas) > MaxAreas {
		v.Add("audience.areas", "at most %d areas; name a province or everyone for more", MaxAreas)
	} else if len(a.Areas) > 0 {
		have, err := s.d.Store.ExistingAreas(ctx, a.Areas)
		if err != nil {
			return Draft{}, fmt.Errorf("broadcast: areas: %w", err)
		}
		known := make(map[string]bool, len(have))
		for _, c := range have {
			known[c] = true
		}
		for i, c := range a.Areas {
			if !known[c] {
				v.Add(fmt.Sprintf("audience.areas[%d]", i), "unknown area code %q", c)
			}
		}
	}
	if len(a.Accounts) > s.cfg.MaxAccounts {
		v.Add("audience.accounts", "at most %d accounts; use areas or topics for more", s.cfg.MaxAccounts)
	} else {
		for i, id := range a.Accounts {
			ok, err := s.d.Store.AccountExists(ctx, id)
			if err != nil {
				return Draft{}, fmt.Errorf("broadcast: accounts: %w", err)
			}
			if !ok {
				v.Add(fmt.Sprintf("audience.accounts[%d]", i), "unknown account %q", id)
			}
		}
	}
	if len(d.Channels) == 0 {
		d.Channels = []string{ChannelPush}
	}
	d.Channels = dedupe(d.Channels)
	for i, c := range d.Channels {
		if c != ChannelPush && c != ChannelSMS {
			v.Add(fmt.Sprintf("channels[%d]", i), "must be push or sms")
		}
	}
	if slices.Contains(d.Channels, ChannelPush) {
		// FCM refuses a push over 4,096 bytes, to every device: the texts
		// must fit in one, as the plan's data carries them (envelope).
		data := map[string]string{"broadcast_id": strings.Repeat("0", 36), "topic": d.Topic, "title_en": d.TitleEN, "body_en": d.BodyEN}
		if n, max := producer.PushSize(d.Title, d.Body, data), producer.PushPayload-producer.PushReserve; n > max {
			v.Add("body", "with the title and the English texts the push would be %d bytes of JSON, over the %d a push may carry (FCM takes 4,096): shorten them, or send by SMS alone", n, max)
		}
	}
	if !d.SendAt.IsZero() && !d.SendAt.After(s.d.Now()) {
		v.Add("send_at", "must be in the future (leave it out to send as soon as approved)")
	} else if d.SendAt.Sub(s.d.Now()) > MaxSendAhead {
		v.Add("send_at", "must be at most %d days ahead", int(MaxSendAhead/(24*time.Hour)))
	}
	d.Document.Number = strings.TrimSpace(d.Document.Number)
	switch n := d.Document.Number; {
	case n == "":
		v.Add("request_document.number", "is required: the number of the official request document")
	case utf8.RuneCountInString(n) > 64:
		v.Add("request_document.number", "must be at most 64 characters")
	}
	switch dd := strings.TrimSpace(d.Document.Date); {
	case dd == "":
		v.Add("request_document.date", "is required (YYYY-MM-DD)")
	case !docDate.MatchString(dd):
		v.Add("request_document.date", "must be a date YYYY-MM-DD")
	default:
		t, err := time.Parse(time.DateOnly, dd)
		if err != nil {
			v.Add("request_document.date", "must be a date YYYY-MM-DD")
		} else if t.After(s.d.Now().Add(24 * time.Hour)) {
			v.Add("request_document.date", "must not be in the future")
		}
		d.Document.Date = dd
	}
	return d, v.Err(ErrInvalid)
}

func dedupe(in []string) []string {
	var out []string
	seen := make(map[string]bool, len(in))
	for _, x := range in {
		if x = strings.TrimSpace(x); x != "" && !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// MaxAreas bounds the areas an audience names (Việt Nam has some 10,600
// communes and wards of the old tree), which are looked up in one query
// of a parameter each: past 32,766 (SQLite) or 65,535 (PostgreSQL) the
// store refuses it, and a draft failed with 500, not a 400 naming them.
const MaxAreas = 12_000

// Create stores a draft by an agency submitter. Errors: ErrForbidden,
// a loa.EInvalid *loa.Error.
func (s *Service) Create(ctx context.Context, a Actor, d Draft) (Broadcast, error) {
	if err := s.require(ctx, a, accounts.RoleAgencySubmitter); err != nil {
		return Broadcast{}, err
	}
	d, err := s.check(ctx, d)
	if err != nil {
		return Broadcast{}, err
	}
	unit := ""
	if gs, err := s.d.Roles.Roles(ctx, a.AccountID); err == nil {
		for _, g := range gs {
			if g.Role == accounts.RoleAgencySubmitter {
				unit = g.Unit
				break
			}
		}
	}
	now := s.d.Now().UTC()
	b := Broadcast{
		ID: "bc-" + uuid.NewString(), Status: string(StatusDraft), Title: d.Title, Body: d.Body, TitleEN: d.TitleEN, BodyEN: d.BodyEN,
		Topic: d.Topic, Audience: loa.Audience{Everyone: d.Audience.Everyone, Areas: d.Audience.Areas, Topics: d.Audience.Topics, Accounts: d.Audience.Accounts, AreaTopics: d.Audience.AreaTopics}, Channels: d.Channels, SendAt: d.SendAt.UTC(),
		DocNumber: d.Document.Number, DocDate: d.Document.Date, Unit: unit, CreatedBy: a.AccountID, CreatedAt: now, UpdatedAt: now,
	}
	if d.SendAt.IsZero() {
		b.SendAt = time.Time{}
	}
	if err := s.d.Store.CreateBroadcast(ctx, b, a.IP); err != nil {
		return Broadcast{}, err
	}
	return b, nil
}

func (s *Service) load(ctx context.Context, id string) (Broadcast, error) {
	b, err := s.d.Store.Broadcast(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return b, notFound(id)
	}
	return b, err
}

// move is a compare-and-set transition, translated into domain errors.
func (s *Service) move(ctx context.Context, t Transition, action string) (Broadcast, error) {
	if t.At.IsZero() {
		t.At = s.d.Now().UTC()
	}
	b, err := s.d.Store.TransitionBroadcast(ctx, t)
	switch {
	case errors.Is(err, ErrNotFound):
		return b, notFound(t.ID)
	case errors.Is(err, ErrMoved):
		cur, lerr := s.load(ctx, t.ID)
		if lerr != nil {
			return b, lerr
		}
		if t.NotBy != "" && (cur.CreatedBy == t.NotBy || cur.SubmittedBy == t.NotBy) {
			return b, ErrFourEyes
		}
		return b, stateError(action, t.ID, Status(cur.Status))
	}
	return b, err
}

// Submit sends a draft for approval; only its creator may. Errors:
// ErrNotFound, ErrForbidden, ErrState.
func (s *Service) Submit(ctx context.Context, a Actor, id string) (Broadcast, error) {
	if err := s.require(ctx, a, accounts.RoleAgencySubmitter); err != nil {
		return Broadcast{}, err
	}
	b, err := s.load(ctx, id)
	if err != nil {
		return b, err
	}
	if b.CreatedBy != a.AccountID {
		return Broadcast{}, forbidden("only the official who drafted it may submit it")
	}
	if !b.SendAt.IsZero() && !b.SendAt.After(s.d.Now()) {
		return Broadcast{}, loa.Invalid("send_at", "the send time has passed; draft the request again").Wrap(ErrInvalid)
	}
	return s.move(ctx, Transition{ID: id, From: []string{string(StatusDraft)}, To: string(StatusSubmitted),
		Actor: a.AccountID, IP: a.IP, Submitter: true}, "submit")
}

// Approve approves a submitted request and publishes its plan at once, or
// schedules it for its send time. The approver is never its creator or
// submitter. Errors: ErrNotFound, ErrForbidden, ErrFourEyes, ErrState.
func (s *Service) Approve(ctx context.Context, a Actor, id string) (Broadcast, error) {
	b, err := s.decider(ctx, a, id)
	if err != nil {
		return b, err
	}
	b, err = s.move(ctx, Transition{ID: id, From: []string{string(StatusSubmitted)}, To: string(StatusApproved),
		Actor: a.AccountID, IP: a.IP, Decider: true, NotBy: a.AccountID}, "approve")
	if err != nil {
		return b, err
	}
	s.keepReach(ctx, b)
	return s.release(ctx, b)
}

// decider loads the request a decides on, after checking the approver
// rule (accounts.Service.CheckApprover): a holds the approval role in the
// approval unit, and neither drafted nor submitted the request, nor
// created the drafter's or submitter's account, nor granted them a role.
// The role is checked before the request is looked at.
func (s *Service) decider(ctx context.Context, a Actor, id string) (Broadcast, error) {
	if a.AccountID == "" {
		return Broadcast{}, ErrForbidden
	}
	if err := s.approverError(s.d.Roles.CheckApprover(ctx, a.AccountID)); err != nil {
		return Broadcast{}, err
	}
	b, err := s.load(ctx, id)
	if err != nil {
		return b, err
	}
	if b.CreatedBy == a.AccountID || b.SubmittedBy == a.AccountID {
		return Broadcast{}, ErrFourEyes
	}
	if err := s.approverError(s.d.Roles.CheckApprover(ctx, a.AccountID, b.CreatedBy, b.SubmittedBy)); err != nil {
		return Broadcast{}, err
	}
	return b, nil
}

// approverError translates the accounts service's approver errors.
func (s *Service) approverError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, accounts.ErrFourEyes):
		return fmt.Errorf("%w: %w", ErrFourEyes, err)
	case errors.Is(err, accounts.ErrForbidden):
		return forbidden("%s", strings.TrimPrefix(err.Error(), accounts.ErrForbidden.Error()+": "))
	}
	return fmt.Errorf("broadcast: approver: %w", err)
}

// release publishes (or schedules) an approved broadcast's plan.
func (s *Service) release(ctx context.Context, b Broadcast) (Broadcast, error) {
	now := s.d.Now().UTC()
	due := now
	if !b.SendAt.IsZero() && b.SendAt.After(now) {
		due = b.SendAt
	}
	env, err := s.envelope(b, now, due)
	if err != nil {
		return b, err
	}
	to := StatusScheduled
	if due.Equal(now) {
		if err := s.d.Publisher.Publish(ctx, env); err == nil {
			to = StatusSending
		} else {
			// Kafka is unavailable: keep the approval and let the
			// scheduler publish it as soon as it can.
			s.d.Log.Warn("broadcast: publish failed; scheduled instead", slog.String("id", b.ID), slog.Any("error", err))
		}
	}
	if to == StatusScheduled {
		if err := s.outbox.Schedule(ctx, itemID(b.ID), b.ID, due, env); err != nil {
			return b, fmt.Errorf("broadcast: schedule %s: %w", b.ID, err)
		}
	}
	nb, err := s.move(ctx, Transition{ID: b.ID, From: []string{string(StatusApproved)}, To: string(to), Actor: systemActor}, "release")
	if errors.Is(err, ErrState) {
		// Cancelled between approval and release: the cancel stopped the
		// plan and the scheduled item.
		return s.load(ctx, b.ID)
	}
	return nb, err
}

func itemID(id string) string { return id + ":plan" }

func (s *Service) envelope(b Broadcast, now, due time.Time) (producer.Envelope, error) {
	data := map[string]string{"broadcast_id": b.ID, "topic": b.Topic}
	if b.TitleEN != "" {
		data["title_en"] = b.TitleEN
	}
	if b.BodyEN != "" {
		data["body_en"] = b.BodyEN
	}
	plan := producer.Plan{NotificationID: b.ID, Channels: b.Channels, Title: b.Title, Body: b.Body,
		Audience: producer.Audience{Everyone: b.Audience.Everyone, Areas: b.Audience.Areas, Topics: b.Audience.Topics, Accounts: b.Audience.Accounts},
		Data:     data, Priority: "normal", App: s.cfg.App, BatchSize: s.cfg.BatchSize, Collapse: b.ID, AreaTopics: b.Audience.AreaTopics}
	return producer.NewEnvelope(itemID(b.ID), producer.KindPlan, topics.LaneBulk, b.ID, now, due.Add(s.cfg.Expiry), "", plan)
}

// Reject rejects a submitted request with a reason. Errors: ErrNotFound,
// ErrForbidden, ErrFourEyes, ErrState, a loa.EInvalid *loa.Error{reason}.
func (s *Service) Reject(ctx context.Context, a Actor, id, reason string) (Broadcast, error) {
	if err := s.approverError(s.d.Roles.CheckApprover(ctx, a.AccountID)); err != nil {
		return Broadcast{}, err
	}
	var v loa.Validation
	reason = s.text(&v, "reason", reason, 1000, true)
	if err := v.Err(ErrInvalid); err != nil {
		return Broadcast{}, err
	}
	if _, err := s.decider(ctx, a, id); err != nil {
		return Broadcast{}, err
	}
	b, err := s.move(ctx, Transition{ID: id, From: []string{string(StatusSubmitted)}, To: string(StatusRejected),
		Actor: a.AccountID, IP: a.IP, Reason: reason, Decider: true, NotBy: a.AccountID}, "reject")
	if err == nil {
		s.keepReach(ctx, b)
	}
	return b, err
}

// Cancel cancels a request until it starts sending: its creator or an
// approver (of the approval unit) may. A scheduled item is removed and any plan is stopped.
// Errors: ErrNotFound, ErrForbidden, ErrState (sending started).
func (s *Service) Cancel(ctx context.Context, a Actor, id, reason string) (Broadcast, error) {
	rs, err := s.roles(ctx, a)
	if err != nil {
		return Broadcast{}, err
	}
	var v loa.Validation
	reason = s.text(&v, "reason", reason, 1000, false)
	if err := v.Err(ErrInvalid); err != nil {
		return Broadcast{}, err
	}
	b, err := s.load(ctx, id)
	if err != nil {
		return b, err
	}
	// An approver cancels as they approve: with the role in the approval
	// unit, not in any unit.
	author := rs[accounts.RoleAgencySubmitter] && b.CreatedBy == a.AccountID
	if !author && (!rs[accounts.RoleBroadcastApprover] || s.d.Roles.CheckApprover(ctx, a.AccountID) != nil) {
		return Broadcast{}, forbidden("only its author or an approver of the approval unit may cancel a broadcast")
	}
	if Status(b.Status) == StatusScheduled {
		// The scheduled item is the race: cancelling it is a
		// compare-and-set on its status, so either the poller published it
		// (sending started) or it never will.
		n, err := s.d.Store.CancelScheduled(ctx, id)
		if err != nil {
			return b, err
		}
		if n == 0 {
			if st, _ := s.d.Store.ScheduledStatus(ctx, itemID(id)); st == producer.ItemPublished {
				s.refresh(ctx, b)
				return b, stateError("cancel", id, StatusSending)
			}
		}
	}
	nb, err := s.move(ctx, Transition{ID: id, Actor: a.AccountID, IP: a.IP, Reason: reason, To: string(StatusCancelled),
		From: []string{string(StatusDraft), string(StatusSubmitted), string(StatusApproved), string(StatusScheduled)}}, "cancel")
	if err != nil {
		return nb, err
	}
	if _, err := s.d.Store.CancelScheduled(ctx, id); err != nil {
		return nb, err
	}
	if err := s.d.Store.CancelPlan(ctx, id, nb.Channels, s.d.Now()); err != nil {
		return nb, err
	}
	return nb, nil
}

// refresh moves a scheduled broadcast whose item the scheduler published
// to sending, and a sending one whose plan finished to done. It returns
// the broadcast as it now is; failures leave it as it was.
func (s *Service) refresh(ctx context.Context, b Broadcast) Broadcast {
	switch Status(b.Status) {
	case StatusScheduled:
		st, err := s.d.Store.ScheduledStatus(ctx, itemID(b.ID))
		if err != nil || st != producer.ItemPublished {
			return b
		}
		nb, err := s.move(ctx, Transition{ID: b.ID, From: []string{string(StatusScheduled)}, To: string(StatusSending),
			Actor: systemActor}, "start")
		if err != nil {
			return b
		}
		return nb
	case StatusSending:
		if !s.finished(ctx, b.ID) {
			return b
		}
		nb, err := s.move(ctx, Transition{ID: b.ID, From: []string{string(StatusSending)}, To: string(StatusDone),
			Actor: systemActor}, "finish")
		if err != nil {
			return b
		}
		return nb
	}
	return b
}

// finished reports whether a plan was planned to the end and every
// planned delivery has an outcome in the ledger.
func (s *Service) finished(ctx context.Context, id string) bool {
	done, err := s.d.Store.PlanDone(ctx, id)
	if err != nil || !done {
		return false
	}
	targeted, err := s.d.Store.PlanTargeted(ctx, id)
	if err != nil {
		return false
	}
	rows, err := s.d.Store.DeliveryStats(ctx, id)
	if err != nil {
		return false
	}
	return complete(targeted, rows)
}

// complete reports whether the ledger's counts hold an outcome for
// every planned delivery.
func complete(targeted map[string]int64, rows []producer.DeliveryStat) bool {
	var want, have int64
	for _, n := range targeted {
		want += n
	}
	for _, r := range rows {
		if r.Status.Final() {
			have += r.Count
		}
	}
	return have >= want
}

// GetCounted is Get for a caller that reads the broadcast's counts
// itself (GET /v1/broadcasts/{id} shows them): count runs once the actor
// may read the broadcast, and a broadcast being sent moves to done from
// what count returned instead of from a count of the service's own, so
// one read counts the ledger once (at 1,000,000 rows about 0.6–0.9 s of
// PostgreSQL each). count returns the planned deliveries per channel
// and the ledger's counts. Errors: Get's, and count's.
func (s *Service) GetCounted(ctx context.Context, a Actor, id string,
	count func(context.Context) (map[string]int64, []producer.DeliveryStat, error)) (Broadcast, error) {
	b, err := s.readable(ctx, a, id)
	if err != nil {
		return b, err
	}
	if Status(b.Status) == StatusScheduled {
		b = s.refresh(ctx, b)
	}
	targeted, rows, err := count(ctx)
	if err != nil {
		return Broadcast{}, err
	}
	if Status(b.Status) != StatusSending || !complete(targeted, rows) {
		return b, nil
	}
	if done, err := s.d.Store.PlanDone(ctx, b.ID); err != nil || !done {
		return b, nil
	}
	nb, err := s.move(ctx, Transition{ID: b.ID, From: []string{string(StatusSending)}, To: string(StatusDone), Actor: systemActor}, "finish")
	if err != nil {
		return b, nil
	}
	return nb, nil
}

// scope is what an official may read: every broadcast (approvers,
// operators, administrators), or those of the units where they are an
// agency submitter and those they drafted.
type scope struct {
	all    bool
	units  []string
	author string
}

func (sc scope) may(b Broadcast) bool {
	return sc.all || b.CreatedBy == sc.author || b.Unit != "" && slices.Contains(sc.units, b.Unit)
}

// readScope returns what a may read. Errors: ErrForbidden (no reader
// role).
func (s *Service) readScope(ctx context.Context, a Actor) (scope, error) {
	if a.AccountID == "" {
		return scope{}, ErrForbidden
	}
	gs, err := s.d.Roles.Roles(ctx, a.AccountID)
	if err != nil {
		return scope{}, fmt.Errorf("broadcast: roles: %w", err)
	}
	sc, reader := scope{author: a.AccountID}, false
	for _, g := range gs {
		switch g.Role {
		case accounts.RoleBroadcastApprover, accounts.RoleOps, accounts.RoleAdmin:
			sc.all, reader = true, true
		case accounts.RoleAgencySubmitter:
			sc.units, reader = append(sc.units, g.Unit), true
		}
	}
	if !reader {
		return scope{}, forbidden("needs the role %s", joinRoles(readers))
	}
	return sc, nil
}

// readable loads a broadcast a may read; one of another agency is not
// found, as one that does not exist.
func (s *Service) readable(ctx context.Context, a Actor, id string) (Broadcast, error) {
	sc, err := s.readScope(ctx, a)
	if err != nil {
		return Broadcast{}, err
	}
	b, err := s.load(ctx, id)
	if err != nil {
		return b, err
	}
	if !sc.may(b) {
		return Broadcast{}, notFound(id)
	}
	return b, nil
}

// Get returns a broadcast: any to approvers, operators and
// administrators; to an agency submitter, those of their units and
// those they drafted. Errors: ErrNotFound (also for a broadcast the
// actor may not read), ErrForbidden.
func (s *Service) Get(ctx context.Context, a Actor, id string) (Broadcast, error) {
	b, err := s.readable(ctx, a, id)
	if err != nil {
		return b, err
	}
	return s.refresh(ctx, b), nil
}

// List returns up to limit broadcasts the actor may read (see Get),
// newest first, in status when it is not empty. A broadcast being sent
// whose plan is done is moved to done when its ledger has an outcome for
// every planned delivery; a call checks at most Config.ListChecks of
// them, each at most once per Config.ListRecheck (the others are listed
// as stored; reading one checks it). Errors: ErrForbidden, a
// loa.EInvalid *loa.Error{status}.
func (s *Service) List(ctx context.Context, a Actor, status string, limit int) ([]Broadcast, error) {
	sc, err := s.readScope(ctx, a)
	if err != nil {
		return nil, err
	}
	if status != "" && !slices.Contains(Statuses(), Status(status)) {
		return nil, loa.Invalid("status", "unknown status %q", status).Wrap(ErrInvalid)
	}
	out, err := s.d.Store.Broadcasts(ctx, Filter{Status: status, Mine: !sc.all, Units: sc.units, Author: sc.author, Limit: limit})
	if err != nil {
		return nil, err
	}
	due := s.listDue(out)
	for i, b := range out {
		if Status(b.Status) != StatusSending || due[b.ID] {
			out[i] = s.refresh(ctx, b)
		}
	}
	return out, nil
}

// listDue picks the broadcasts being sent in bs that List checks for
// completion: at most Config.ListChecks, in list order, of those it has
// not checked within Config.ListRecheck; it records them as checked.
func (s *Service) listDue(bs []Broadcast) map[string]bool {
	now := s.d.Now()
	s.checkMu.Lock()
	defer s.checkMu.Unlock()
	for id, at := range s.checked {
		if now.Sub(at) >= s.cfg.ListRecheck || now.Before(at) {
			delete(s.checked, id)
		}
	}
	due := map[string]bool{}
	for _, b := range bs {
		if len(due) == s.cfg.ListChecks {
			break
		}
		if _, recent := s.checked[b.ID]; Status(b.Status) != StatusSending || recent || due[b.ID] {
			continue
		}
		due[b.ID] = true
		s.checked[b.ID] = now
	}
	return due
}

// History returns a broadcast's state changes, oldest first, to those
// who may read it (see Get). Errors: ErrNotFound, ErrForbidden.
func (s *Service) History(ctx context.Context, a Actor, id string) ([]Event, error) {
	if _, err := s.readable(ctx, a, id); err != nil {
		return nil, err
	}
	return s.d.Store.BroadcastHistory(ctx, id)
}

// Estimate returns the audience size and, when the broadcast uses SMS, the
// segments it would bill. A count of the same audience is reused for
// Config.CountTTL (CountedAt says when it was made), and callers asking
// while one runs share it. a's counts that are not kept run one at a
// time (see counter): an official cannot hold more than one of the
// process's counting slots.
func (s *Service) Estimate(ctx context.Context, a Actor, b Broadcast) (Estimate, error) {
	k, err := s.counts.get(ctx, a.AccountID, b.Audience)
	if err != nil {
		return Estimate{}, fmt.Errorf("broadcast: count audience: %w", err)
	}
	return s.estimate(b, Reach{Devices: k.devices, Phones: k.phones, CountedAt: k.at}), nil
}

func (s *Service) estimate(b Broadcast, r Reach) Estimate {
	e := Estimate{Devices: r.Devices, Phones: r.Phones, CountedAt: r.CountedAt}
	if slices.Contains(b.Channels, ChannelSMS) {
		t := sms.Prepare(b.Body, false)
		e.SMS = &SMSEstimate{Encoding: t.Encoding.String(), SegmentsPerMessage: t.Segments, TotalSegments: t.Segments * r.Phones}
	}
	return e
}

// decided reports whether a broadcast's audience size is kept rather
// than counted: once approved, rejected or cancelled.
func decided(st Status) bool {
	return st != StatusDraft && st != StatusSubmitted
}

// Reach returns what GET /v1/broadcasts/{id} shows of b's audience: while
// it is a draft or submitted, Estimate; once decided, the figure stored
// with it, which is the count its approver saw (or, when none was kept,
// the first count after the decision, stored then). A decided
// broadcast's audience is therefore counted at most once.
func (s *Service) Reach(ctx context.Context, a Actor, b Broadcast) (Estimate, error) {
	if b.Reach != nil {
		return s.estimate(b, *b.Reach), nil
	}
	e, err := s.Estimate(ctx, a, b)
	if err != nil || !decided(Status(b.Status)) {
		return e, err
	}
	r := Reach{Devices: e.Devices, Phones: e.Phones, CountedAt: e.CountedAt}
	stored, err := s.d.Store.RecordReach(ctx, b.ID, r)
	if err != nil { // shown all the same; the next read stores it
		s.d.Log.Warn("broadcast: the audience size was not stored", slog.String("id", b.ID), slog.Any("error", err))
		return e, nil
	}
	if !stored { // another process stored its count first: show that one
		if nb, err := s.load(ctx, b.ID); err == nil && nb.Reach != nil {
			return s.estimate(b, *nb.Reach), nil
		}
	}
	return e, nil
}

// keepReach stores, with a broadcast just decided, the count its
// decider was shown, when this process still keeps it; otherwise the
// first Reach after the decision counts and stores one.
func (s *Service) keepReach(ctx context.Context, b Broadcast) {
	k, ok := s.counts.peek(b.Audience)
	if !ok {
		return
	}
	if _, err := s.d.Store.RecordReach(ctx, b.ID, Reach{Devices: k.devices, Phones: k.phones, CountedAt: k.at}); err != nil {
		s.d.Log.Warn("broadcast: the audience size was not stored; the next read counts it", slog.String("id", b.ID), slog.Any("error", err))
	}
}
