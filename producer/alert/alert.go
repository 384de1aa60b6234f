package alert

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/internal/phone"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/alert/cap"
)

// The statuses of a stored alert.
const (
	// StatusPendingApproval: posted by an issuer that is not
	// pre-authorised; nothing is sent until an approver approves.
	StatusPendingApproval = "pending_approval"
	// StatusSentPreauthorised: posted by a pre-authorised issuer and sent
	// at once; reviewable afterwards.
	StatusSentPreauthorised = "sent_preauthorised"
	// StatusSentApproved: approved by an approver and sent.
	StatusSentApproved = "sent_approved"
	// StatusRejected: refused by an approver; never sent.
	StatusRejected = "rejected"
	// StatusNoRecipients: a valid alert whose audience is empty (its
	// areas match no administrative unit, its addresses no account, its
	// restriction no role). Stored for the record; nothing is sent.
	StatusNoRecipients = "no_recipients"
	// StatusExpired: received after it expired; stored, never sent.
	StatusExpired = "expired"
	// StatusNotDistributed: a System message (alert network internals);
	// stored, never distributed.
	StatusNotDistributed = "not_distributed"
	// StatusCancelled: received after a Cancel that refers to it; stored,
	// never sent.
	StatusCancelled = "cancelled"
	// StatusSuperseded: received after an Update that refers to it;
	// stored, never sent (the Update's newer text went out).
	StatusSuperseded = "superseded"
)

// Statuses lists every status, for validating a filter.
var Statuses = []string{StatusPendingApproval, StatusSentPreauthorised, StatusSentApproved, StatusRejected,
	StatusNoRecipients, StatusExpired, StatusNotDistributed, StatusCancelled, StatusSuperseded}

// Who an alert is distributed to (its CAP scope and status).
const (
	// DistributionPublic: the devices and phones of the areas' subscribers.
	DistributionPublic = "public"
	// DistributionRestricted: holders of the roles its <restriction> maps
	// to; never public devices.
	DistributionRestricted = "restricted"
	// DistributionPrivate: the accounts its <addresses> name.
	DistributionPrivate = "private"
	// DistributionTest: the test audience (Test and Exercise alerts).
	DistributionTest = "test"
	// DistributionNone: not distributed (System messages).
	DistributionNone = "none"
)

// The channels an alert can use.
const (
	ChannelPush = "push"
	ChannelSMS  = "sms"
)

// PublishGrace is how long after an alert is accepted or approved the
// outbox publishes its plan if its own publish did not happen.
const PublishGrace = 30 * time.Second

// Errors of the Service besides cap refusal (*loa.Error).
var (
	ErrNotFound = loa.NotFound("alert not found")
	// ErrNotPending: the alert is not waiting for approval (already
	// decided, or pre-authorised).
	ErrNotPending = loa.Errorf(loa.EAlertState, "the alert is not waiting for approval")
	// ErrSelfDecision: an issuer tried to approve or reject their own
	// alert (four eyes).
	ErrSelfDecision = loa.Forbidden("the issuer of an alert cannot approve or reject it (four eyes)")
	// ErrUnknownReference is the class of the cap refusal (*loa.Error) for a
	// reference to an alert Loa does not know.
	ErrUnknownReference = errors.New("alert: unknown referenced alert")
	// ErrIdentifierReused is the class of the cap refusal (*loa.Error) for an
	// alert posted with the sender and identifier of an earlier one but
	// different content: CAP identifiers are unique per sender, so this
	// is neither a repost nor a new alert.
	ErrIdentifierReused = errors.New("alert: identifier already used for a different alert")
	// ErrNoArea is the class of the cap refusal (*loa.Error) for an alert
	// whose areas match no administrative unit.
	ErrNoArea = errors.New("alert: no area")
	// ErrNotActual is the class of the cap refusal (*loa.Error) for a Draft
	// alert, or an Ack or Error message: they are not for distribution.
	ErrNotActual = errors.New("alert: not for distribution")
	// ErrSenderNotAllowed is the class of the refusal (*loa.Error,
	// EForbidden, naming alert/sender) of a CAP document whose <sender> is
	// not one its poster may post as (Config.Senders).
	ErrSenderNotAllowed = errors.New("alert: sender not allowed")
	// ErrExpiredPending: a pending alert expired before it was approved;
	// it can only be rejected.
	ErrExpiredPending = loa.Errorf(loa.EAlertState, "the alert expired while waiting for approval; reject it")
	// ErrPublish wraps a failure to publish a stored alert's plan; the
	// alert is kept, and posting it again publishes it.
	ErrPublish = errors.New("alert: publish failed")
)

// Config is the alert policy. The zero value is not usable; start from
// DefaultConfig.
type Config struct {
	// SMSSeverities are the severities for which an alert also goes by
	// SMS to the areas' phones (LOA_ALERT_SMS_SEVERITIES). A JSON alert's
	// explicit channels override it.
	SMSSeverities []cap.Severity
	// PreauthorisedScopes are the API key scopes whose alerts are sent at
	// once (LOA_ALERT_PREAUTHORISED_SCOPE); empty means every alert needs
	// approval.
	PreauthorisedScopes []string
	// MaxBytes is the largest CAP document accepted.
	MaxBytes int64
	// DefaultTTL is the expiry of an alert without one.
	DefaultTTL time.Duration
	// App is the app whose devices receive alerts' push.
	App string
	// TestRoles are the roles whose holders receive Test and Exercise
	// alerts (LOA_CAP_TEST_ROLES); empty stores them without sending.
	TestRoles []string
	// RestrictionRoles maps a Restricted alert's <restriction> (compared
	// without case and surrounding space) to the roles that receive it;
	// the key "*" applies to every other restriction
	// (LOA_CAP_RESTRICTION_ROLES). A restriction that maps to no role
	// reaches nobody: Restricted alerts never go to the public.
	RestrictionRoles map[string][]string
	// Escalation is the acknowledgement policy per severity: an alert of
	// that severity is sent by SMS, after the delay, to the phones of the
	// accounts in its audience that have not acknowledged it on any device
	// (LOA_ALERT_ESCALATION). A severity without an entry never
	// escalates.
	Escalation map[cap.Severity]time.Duration
	// Signers, when set (LOA_CAP_VERIFY_SIGNATURES with LOA_CAP_SIGNERS),
	// are the senders whose CAP alerts must carry a valid XML signature,
	// with their certificates; an unsigned or badly signed alert from one
	// of them is refused. Others' signatures are parsed past.
	Signers *cap.Signers
	// QuietBypass is the least severity that is delivered inside
	// subscribers' quiet hours (and by SMS at night); alerts below it wait
	// for the window's end like bulk notices (LOA_QUIET_HOURS_BYPASS).
	// Empty: every alert bypasses.
	QuietBypass cap.Severity
	// Senders are the CAP senders each issuer may post as, by the
	// issuer's Identity ("apikey:<key id>", "official:<user name>";
	// LOA_CAP_SENDERS). "*" admits any sender but Loa's own (a key that
	// relays other authorities' feeds). Besides these, every issuer posts
	// as its own Loa identity, "loa:<issuer id>" (a JSON alert's sender),
	// and no issuer as another's. An issuer without an entry posts only
	// as itself.
	Senders map[string][]string
	// AckKey verifies the acknowledgement tokens of apps without a
	// session (producer.AckToken); the dispatcher signs with the same key.
	// Without it only sessions acknowledge.
	AckKey []byte
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultConfig returns the default policy: SMS for Extreme alerts,
// alerts:issue pre-authorised.
func DefaultConfig() Config {
	return Config{
		SMSSeverities:       []cap.Severity{cap.SeverityExtreme},
		PreauthorisedScopes: []string{"alerts:issue"},
		MaxBytes:            cap.DefaultMaxBytes,
		DefaultTTL:          24 * time.Hour,
		App:                 "smart",
		TestRoles:           []string{"alert_tester"},
		QuietBypass:         cap.SeveritySevere,
		RestrictionRoles:    map[string][]string{"*": {"alert_responder"}},
	}
}

// Validate reports a policy that cannot work.
func (c Config) Validate() error {
	var errs []error
	for _, s := range c.SMSSeverities {
		if !slices.Contains([]cap.Severity{cap.SeverityExtreme, cap.SeveritySevere, cap.SeverityModerate, cap.SeverityMinor, cap.SeverityUnknown}, s) {
			errs = append(errs, fmt.Errorf("alert: %q is not a CAP severity (Extreme, Severe, Moderate, Minor, Unknown)", s))
		}
	}
	if c.MaxBytes <= 0 {
		errs = append(errs, errors.New("alert: MaxBytes must be positive"))
	}
	if c.DefaultTTL <= 0 {
		errs = append(errs, errors.New("alert: DefaultTTL must be positive"))
	}
	if c.App == "" {
		errs = append(errs, errors.New("alert: App is empty"))
	}
	if c.QuietBypass != "" {
		if _, ok := severityRank[c.QuietBypass]; !ok {
			errs = append(errs, fmt.Errorf("alert: quiet hours bypass: %q is not a CAP severity", c.QuietBypass))
		}
	}
	for sev, d := range c.Escalation {
		if !slices.Contains([]cap.Severity{cap.SeverityExtreme, cap.SeveritySevere, cap.SeverityModerate, cap.SeverityMinor, cap.SeverityUnknown}, sev) {
			errs = append(errs, fmt.Errorf("alert: escalation: %q is not a CAP severity", sev))
		}
		if d <= 0 {
			errs = append(errs, fmt.Errorf("alert: escalation of %s: the delay must be positive", sev))
		}
	}
	return errors.Join(errs...)
}

// publisher is what the Service needs of kafkapub.Publisher.
type publisher interface {
	Publish(ctx context.Context, e producer.Envelope) error
}

// Service ingests alerts and publishes them. It is safe for concurrent
// use.
type Service struct {
	store Store
	pub   publisher
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
}

// New returns a Service, or the error of cfg.Validate.
func New(cfg Config, store Store, pub publisher, log *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, pub: pub, cfg: cfg, log: log, now: now}, nil
}

// MaxBytes is the largest CAP document ParseCAP accepts.
func (s *Service) MaxBytes() int64 { return s.cfg.MaxBytes }

// Issuer is who posts an alert.
type Issuer struct {
	ID     string   // principal id, stored as the alert's issuer
	Actor  string   // how the audit log names it ("apikey:<id>")
	Scopes []string // its API key scopes, for the pre-authorisation policy
	// Identity is how Config.Senders names it: "apikey:<key id>" or
	// "official:<user name>".
	Identity string
	// Areas are the area codes (each with every unit below it) a
	// pre-authorised issuer may alert: set by operators on its API key
	// (loa admin apikey alert-areas). None: it may alert no area. An
	// issuer that is not pre-authorised is bound by its approver instead.
	Areas []string
	// AnyArea lets a pre-authorised issuer alert every area (dev mode's
	// bootstrap key "*"); Areas is then ignored.
	AnyArea bool
}

// AreaError is wrapped by the refusal (*loa.Error, EForbidden, naming
// the alert's areas) of an alert whose pre-authorised issuer may not
// alert one of the units it names.
type AreaError struct {
	Outside []string // the alert's units outside the issuer's areas
	Allowed []string // the issuer's areas
}

func (e *AreaError) Error() string {
	if len(e.Allowed) == 0 {
		return "this API key may alert no area without approval; an operator sets its areas (loa admin apikey alert-areas)"
	}
	return fmt.Sprintf("this API key may alert only %s and the units below them without approval, not %s",
		strings.Join(e.Allowed, ", "), strings.Join(e.Outside, ", "))
}

// Input is a parsed alert to submit.
type Input struct {
	Alert *cap.Alert
	// Channels, when set (a JSON alert's "channels"), replace the SMS
	// policy; nil applies it.
	Channels []string
	// RefIDs are a JSON alert's references: Loa alert ids, or CAP
	// identifiers of the same sender.
	RefIDs []string
	// JSON makes validation errors name JSON fields instead of CAP
	// elements.
	JSON bool
	// AreaTopics sends a public alert's push as one FCM topic message per
	// area ("area-<code>", for the area and every unit below it) instead
	// of one per device: one request per area, but no per-device outcome,
	// acknowledgement or quiet hours. Updates and Cancels of it do the
	// same.
	AreaTopics bool
}

// Result is the answer to Submit.
type Result struct {
	Alert StoredAlert
	// Replayed is true when the same sender had already posted the same
	// identifier: nothing new was stored or sent.
	Replayed bool
}

// ParseCAP reads and validates a CAP 1.2 document. It does not judge
// what the document asks for (an expired alert, areas Loa does not know):
// Submit stores such alerts instead of refusing them. It returns a
// cap refusal (*loa.Error) for a refused document.
func (s *Service) ParseCAP(ctx context.Context, r io.Reader) (*cap.Alert, error) {
	return cap.Parse(r, cap.Options{MaxBytes: s.cfg.MaxBytes, Signers: s.cfg.Signers})
}

// fields names the elements of validation errors in the input's form.
type fields struct{ json bool }

func (f fields) refs() string {
	if f.json {
		return "references"
	}
	return "alert/references"
}

func (f fields) identifier() string {
	if f.json {
		return "identifier"
	}
	return "alert/identifier"
}

func (f fields) areas() string {
	if f.json {
		return "areas"
	}
	return "alert/info/area"
}

func (f fields) status() string {
	if f.json {
		return "status"
	}
	return "alert/status"
}

// Submit validates, stores and — for a pre-authorised issuer — publishes
// an alert. The same sender and identifier posted again returns the
// stored alert with Replayed set and sends nothing (unless its publish
// had failed, which is retried).
//
// A valid alert is stored even when it reaches no one, so the record is
// whole: a System message (StatusNotDistributed), an expired alert
// (StatusExpired), one whose audience is empty (StatusNoRecipients), one
// received after its Cancel or Update (StatusCancelled,
// StatusSuperseded). CAP references to alerts not received yet are kept
// and linked when those arrive; meanwhile an Update or Cancel is sent on
// its own to its own audience. Scope and status decide the audience:
// Restricted reaches the roles its restriction maps to, Private the
// accounts its addresses name, Test and Exercise the test audience,
// never the public.
//
// Refusals are cap refusal (*loa.Error) (with ErrUnknownReference,
// ErrIdentifierReused or ErrNotActual as class); a failed publish returns
// the stored alert with an error wrapping ErrPublish.
func (s *Service) Submit(ctx context.Context, iss Issuer, in Input) (Result, error) {
	a, f := in.Alert, fields{json: in.JSON}
	now := s.now().UTC()
	if a.Status == cap.StatusDraft {
		return Result{}, cap.Refusal(f.status(), "a Draft is not for distribution", ErrNotActual)
	}
	switch a.MsgType {
	case cap.MsgTypeAlert, cap.MsgTypeUpdate, cap.MsgTypeCancel:
	default:
		return Result{}, cap.Refusal("alert/msgType", "only Alert, Update and Cancel messages are distributed", ErrNotActual)
	}
	if err := s.checkSender(iss, a); err != nil {
		return Result{}, err
	}
	if prev, err := s.store.AlertByIdentifier(ctx, a.Sender, a.Identifier); err == nil {
		return s.replay(ctx, prev, a, f)
	} else if !errors.Is(err, ErrNotFound) {
		return Result{}, err
	}

	refs, pending, err := s.resolveRefs(ctx, a, in.RefIDs, f)
	if err != nil {
		return Result{}, err
	}
	if a.MsgType != cap.MsgTypeAlert && len(refs) == 0 && len(pending) == 0 {
		return Result{}, cap.Refusal(f.refs(), "an Update or Cancel must name the alert it refers to", cap.ErrInvalid)
	}
	st := StoredAlert{CAPIdentifier: a.Identifier, Sender: a.Sender, Sent: a.Sent, MsgType: string(a.MsgType),
		Issuer: iss.ID, CreatedAt: now, PendingRefs: pending, Distribution: distribution(a)}
	st.ChainKey = chainKey(a, refs, st.Distribution)
	for _, p := range pending {
		st.Notes.UnmatchedRefs = append(st.Notes.UnmatchedRefs, p.Sender+","+p.Identifier)
	}
	st.Notes.ForeignSenders = s.foreignSenders(iss, refs, pending)
	codes, unmatched, err := s.areaCodes(ctx, a)
	if err != nil {
		return Result{}, err
	}
	st.Notes.UnmatchedAreas = unmatched
	if err := s.checkAreas(ctx, iss, codes, f); err != nil {
		return Result{}, err
	}
	switch st.Distribution {
	case DistributionPublic:
		st.AreaCodes = codes
		st.Audience.AreaTopics = in.AreaTopics
	case DistributionRestricted:
		st.Audience.Roles = s.restrictionRoles(a.Restriction)
		st.Audience.App = producer.AnyApp
		st.Notes.Restriction = a.Restriction
	case DistributionPrivate:
		if st.Audience.Accounts, st.Notes.UnmatchedAddresses, err = s.resolveAddresses(ctx, a.Addresses); err != nil {
			return Result{}, err
		}
		st.Audience.App = producer.AnyApp
	case DistributionTest:
		st.Audience.Roles = slices.Clone(s.cfg.TestRoles)
		st.Audience.App = producer.AnyApp
	}
	chans := in.Channels
	// A Cancel goes the referenced alerts' ways (below) unless told.
	if chans == nil && a.MsgType != cap.MsgTypeCancel {
		chans = []string{ChannelPush}
		if s.wantsSMS(a) {
			chans = append(chans, ChannelSMS)
		}
	}
	priority := string(a.Priority())
	expires := a.Expires()
	var inherited StoredAlert
	for _, r := range refs {
		// An Update or Cancel reaches the audience of what it refers to,
		// within its own distribution: a Test update of a public alert
		// still goes only to the test audience.
		if r.Distribution == st.Distribution {
			inherited.AreaCodes = union(inherited.AreaCodes, r.AreaCodes)
			inherited.Audience.Roles = union(inherited.Audience.Roles, r.Audience.Roles)
			inherited.Audience.Accounts = union(inherited.Audience.Accounts, r.Audience.Accounts)
			st.Audience.AreaTopics = st.Audience.AreaTopics || r.Audience.AreaTopics
		}
		chans = union(chans, r.Channels)
		if r.Priority == string(cap.PriorityHigh) {
			priority = r.Priority
		}
		if a.MsgType == cap.MsgTypeCancel && r.ExpiresAt.After(expires) {
			expires = r.ExpiresAt
		}
	}
	if chans == nil {
		chans = []string{ChannelPush}
	}
	// The referenced alerts' audience first, then any new areas.
	st.AreaCodes = union(inherited.AreaCodes, st.AreaCodes)
	st.Audience.Roles = union(inherited.Audience.Roles, st.Audience.Roles)
	st.Audience.Accounts = union(inherited.Audience.Accounts, st.Audience.Accounts)
	slices.SortStableFunc(chans, func(x, y string) int { return channelRank(x) - channelRank(y) })
	if expires.IsZero() {
		expires = now.Add(s.cfg.DefaultTTL)
	}
	if a.MsgType != cap.MsgTypeAlert && len(a.References) == 0 {
		for _, r := range refs {
			a.References = append(a.References, cap.Reference{Sender: r.Sender, Identifier: r.CAPIdentifier, Sent: r.Sent})
		}
	}
	st.Status, err = s.initialStatus(ctx, iss, a, st, now)
	if err != nil {
		return Result{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Result{}, fmt.Errorf("alert: new id: %w", err)
	}
	doc, err := json.Marshal(a)
	if err != nil {
		return Result{}, fmt.Errorf("alert: marshal: %w", err)
	}
	refJSON, err := json.Marshal(a.References)
	if err != nil {
		return Result{}, fmt.Errorf("alert: marshal: %w", err)
	}
	refIDs := make([]string, len(refs))
	for i, r := range refs {
		refIDs[i] = r.ID
	}
	st.ID, st.References, st.RefIDs, st.Priority, st.Document, st.Channels, st.ExpiresAt = id.String(), refJSON, refIDs, priority, doc, chans, expires
	// An alert sent at once is stored with its outbox item; one awaiting
	// approval gets its item when approved.
	var outbox []producer.OutboxItem
	if sendable(st.Status) {
		it, err := s.outboxItem(ctx, st, now)
		if err != nil {
			return Result{}, err
		}
		outbox = append(outbox, it)
	}
	st, created, err := s.store.CreateAlert(ctx, st, outbox...)
	if err != nil {
		return Result{}, fmt.Errorf("alert: submit: %w", err)
	}
	if !created {
		return s.replay(ctx, st, a, f)
	}
	s.audit(ctx, iss.Actor, "alert.issue", st.ID, map[string]string{"identifier": st.CAPIdentifier, "sender": st.Sender,
		"msg_type": st.MsgType, "status": st.Status, "distribution": st.Distribution, "areas": strings.Join(st.AreaCodes, ",")})
	if sendable(st.Status) {
		if err := s.send(ctx, st); err != nil {
			return Result{Alert: st}, err
		}
	}
	return Result{Alert: st}, nil
}

// LoaSenderPrefix begins the senders that are Loa's own identities:
// "loa:<issuer id>", the sender of an issuer's JSON alerts.
const LoaSenderPrefix = "loa:"

// checkSender refuses an alert whose sender its issuer may not post as:
// the sender is who a CAP alert is from — it chooses the chain an Update
// or Cancel changes, the signature policy, and what phones show — so an
// issuer speaks only for itself and the senders configured for it.
func (s *Service) checkSender(iss Issuer, a *cap.Alert) error {
	if s.speaksFor(iss, a.Sender) {
		return nil
	}
	who := iss.Identity
	if who == "" {
		who = iss.Actor
	}
	return &loa.Error{Code: loa.EForbidden, Field: "alert/sender", Err: ErrSenderNotAllowed,
		Detail: fmt.Sprintf("%s may not post alerts as the sender %q: it posts as %q and the senders configured for it in LOA_CAP_SENDERS", who, a.Sender, LoaSenderPrefix+iss.ID)}
}

// speaksFor reports whether iss may post as sender: its own loa:<id>,
// or a sender configured for it.
func (s *Service) speaksFor(iss Issuer, sender string) bool {
	if sender == LoaSenderPrefix+iss.ID {
		return true
	}
	if strings.HasPrefix(sender, LoaSenderPrefix) {
		return false
	}
	for _, allowed := range s.cfg.Senders[iss.Identity] {
		if allowed == "*" || allowed == sender {
			return true
		}
	}
	return false
}

// foreignSenders are the senders, in order and without repeats, of the
// alerts an Update or Cancel refers to (received or not yet) that its
// issuer may not post as. Such a message changes another authority's
// chain: it is never sent on the issuer's pre-authorisation, only when an
// approver decides.
func (s *Service) foreignSenders(iss Issuer, refs []StoredAlert, pending []Ref) []string {
	var out []string
	add := func(sender string) {
		if !s.speaksFor(iss, sender) && !slices.Contains(out, sender) {
			out = append(out, sender)
		}
	}
	for _, r := range refs {
		add(r.Sender)
	}
	for _, p := range pending {
		add(p.Sender)
	}
	return out
}

// distribution is who an alert is for, by its status and scope.
func distribution(a *cap.Alert) string {
	switch {
	case a.Status == cap.StatusSystem:
		return DistributionNone
	case a.Status == cap.StatusTest, a.Status == cap.StatusExercise:
		return DistributionTest
	case a.Scope == cap.ScopeRestricted:
		return DistributionRestricted
	case a.Scope == cap.ScopePrivate:
		return DistributionPrivate
	}
	return DistributionPublic
}

// initialStatus is the status a new alert is stored with: sent or
// pending approval when there is someone to send it to, else why not.
func (s *Service) initialStatus(ctx context.Context, iss Issuer, a *cap.Alert, st StoredAlert, now time.Time) (string, error) {
	switch {
	case st.Distribution == DistributionNone:
		return StatusNotDistributed, nil
	case a.Expired(now):
		return StatusExpired, nil
	}
	// Updates and Cancels that arrived first: this alert is already
	// replaced, and sending it now would bring back stale text. Only
	// those that stand count: one awaiting approval may yet be rejected,
	// a rejected one never went out, a System message distributes
	// nothing, and one of another distribution (a Test update of a public
	// alert) never reached this alert's audience.
	earlier, err := s.store.AlertsAwaiting(ctx, a.Sender, a.Identifier)
	if err != nil {
		return "", err
	}
	var replaced, cancelled bool
	for _, l := range earlier {
		switch {
		case l.Status == StatusPendingApproval, l.Status == StatusRejected, l.Status == StatusNotDistributed,
			l.Distribution != st.Distribution:
			continue
		case l.MsgType == string(cap.MsgTypeCancel):
			cancelled = true
		}
		replaced = true
	}
	if cancelled {
		return StatusCancelled, nil
	}
	if replaced {
		return StatusSuperseded, nil
	}
	if len(st.AreaCodes) == 0 && len(st.Audience.Roles) == 0 && len(st.Audience.Accounts) == 0 {
		return StatusNoRecipients, nil
	}
	// Pre-authorisation covers the chains the issuer speaks for only.
	if s.preauthorised(iss.Scopes) && len(st.Notes.ForeignSenders) == 0 {
		return StatusSentPreauthorised, nil
	}
	return StatusPendingApproval, nil
}

// chainKey names the chain an alert belongs to: the CAP identifier of its
// first alert, which every notification of the chain carries so that an
// Update or Cancel replaces the earlier notification on the phone. A
// reference to an alert not received yet still names it. A chain stays in
// one distribution (dist): a reference to an alert of another one (an
// Exercise Cancel of an Actual warning, a Public Cancel of a Restricted
// alert) does not join its chain, whose key also names the chain's
// acknowledgements, escalation and held batches.
func chainKey(a *cap.Alert, refs []StoredAlert, dist string) string {
	var (
		key   string
		first time.Time
	)
	for _, r := range refs {
		if r.Distribution == dist && (key == "" || r.Sent.Before(first)) {
			key, first = r.ChainKey, r.Sent
		}
	}
	for _, r := range a.References {
		other := slices.ContainsFunc(refs, func(st StoredAlert) bool {
			return st.Distribution != dist && st.Sender == r.Sender && st.CAPIdentifier == r.Identifier
		})
		if !other && (key == "" || r.Sent.Before(first)) {
			key, first = r.Identifier, r.Sent
		}
	}
	if key == "" {
		key = a.Identifier
	}
	return key
}

// restrictionRoles maps a <restriction> to roles.
func (s *Service) restrictionRoles(restriction string) []string {
	for k, roles := range s.cfg.RestrictionRoles {
		if k != "*" && strings.EqualFold(strings.TrimSpace(k), strings.TrimSpace(restriction)) {
			return slices.Clone(roles)
		}
	}
	return slices.Clone(s.cfg.RestrictionRoles["*"])
}

// resolveAddresses finds the accounts a Private alert's <addresses> name,
// in order and without repeats, and the addresses that name none.
func (s *Service) resolveAddresses(ctx context.Context, addrs []string) (accts, unmatched []string, err error) {
	addrs = distinct(addrs) // a repeat is looked up once
	phones := make([]string, len(addrs))
	for i, a := range addrs {
		if p, err := phone.Normalize(a); err == nil {
			phones[i] = p
		}
	}
	found, err := s.store.AccountsByAddress(ctx, addrs, phones)
	if err != nil {
		return nil, nil, err
	}
	for _, a := range addrs {
		if id, ok := found[a]; ok {
			accts = append(accts, id)
		} else {
			unmatched = append(unmatched, a)
		}
	}
	return distinct(accts), unmatched, nil
}

// replay answers a repost of the stored alert st as a: the stored alert,
// sent if its publish had failed; or, when a differs from it in more than
// its sent time, an ErrIdentifierReused refusal.
func (s *Service) replay(ctx context.Context, st StoredAlert, a *cap.Alert, f fields) (Result, error) {
	same, err := sameContent(st.Document, a)
	if err != nil {
		return Result{}, err
	}
	if !same {
		reused := cap.Refusal(f.identifier(), fmt.Sprintf("%q was already used by this sender for a different alert (%s); give a new identifier, or send an Update referring to it", a.Identifier, st.ID), ErrIdentifierReused)
		reused.Code, reused.Fields = loa.EIdempotencyConflict, nil
		return Result{Alert: st}, reused
	}
	if sendable(st.Status) && st.PublishedAt.IsZero() {
		if err := s.send(ctx, st); err != nil {
			return Result{Alert: st, Replayed: true}, err
		}
	}
	return Result{Alert: st, Replayed: true}, nil
}

// sameContent reports whether a is the alert stored as doc, but for its
// sent time (a JSON alert is stamped when posted; a CAP sender may stamp
// a resend anew).
func sameContent(doc []byte, a *cap.Alert) (bool, error) {
	var stored cap.Alert
	if err := json.Unmarshal(doc, &stored); err != nil {
		return false, fmt.Errorf("alert: stored document: %w", err)
	}
	again := *a
	stored.Sent, again.Sent = time.Time{}, time.Time{}
	x, err := json.Marshal(stored)
	if err != nil {
		return false, fmt.Errorf("alert: stored document: %w", err)
	}
	y, err := json.Marshal(again)
	if err != nil {
		return false, fmt.Errorf("alert: marshal: %w", err)
	}
	return bytes.Equal(x, y), nil
}

func sendable(status string) bool {
	return status == StatusSentPreauthorised || status == StatusSentApproved
}

func channelRank(ch string) int {
	if ch == ChannelPush {
		return 0
	}
	return 1
}

func (s *Service) preauthorised(scopes []string) bool {
	for _, sc := range s.cfg.PreauthorisedScopes {
		if slices.Contains(scopes, sc) || slices.Contains(scopes, "*") {
			return true
		}
	}
	return false
}

func (s *Service) wantsSMS(a *cap.Alert) bool {
	for _, in := range a.Infos {
		if slices.Contains(s.cfg.SMSSeverities, in.Severity) {
			return true
		}
	}
	return false
}

// resolveRefs finds the stored alerts a message refers to, and the CAP
// references to alerts not received yet. A JSON alert's references (Loa
// ids, or identifiers the same sender sent) must be known.
func (s *Service) resolveRefs(ctx context.Context, a *cap.Alert, ids []string, f fields) ([]StoredAlert, []Ref, error) {
	var (
		out     []StoredAlert
		pending []Ref
	)
	add := func(st StoredAlert) {
		if !slices.ContainsFunc(out, func(x StoredAlert) bool { return x.ID == st.ID }) {
			out = append(out, st)
		}
	}
	for _, r := range a.References {
		st, err := s.store.AlertByIdentifier(ctx, r.Sender, r.Identifier)
		if errors.Is(err, ErrNotFound) {
			ref := Ref{Sender: r.Sender, Identifier: r.Identifier}
			if !slices.Contains(pending, ref) && (r.Sender != a.Sender || r.Identifier != a.Identifier) {
				pending = append(pending, ref)
			}
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		add(st)
	}
	for i, id := range ids {
		st, err := s.store.Alert(ctx, id)
		if errors.Is(err, ErrNotFound) {
			st, err = s.store.AlertByIdentifier(ctx, a.Sender, id)
		}
		if errors.Is(err, ErrNotFound) {
			return nil, nil, cap.Refusal(fmt.Sprintf("%s[%d]", f.refs(), i), fmt.Sprintf("no alert %q is known (give an alert id or an identifier you sent)", id), ErrUnknownReference)
		}
		if err != nil {
			return nil, nil, err
		}
		add(st)
	}
	return out, pending, nil
}

// areaCodes returns the alert's known VN-ADMIN codes and the units
// without units below them whose centroid lies inside one of its
// polygons or circles; and the VN-ADMIN codes Loa does not know.
func (s *Service) areaCodes(ctx context.Context, a *cap.Alert) (codes, unmatched []string, err error) {
	named := a.AreaCodes()
	if len(named) > 0 {
		known, err := s.store.ExistingAreas(ctx, named)
		if err != nil {
			return nil, nil, err
		}
		exists := make(map[string]bool, len(known))
		for _, c := range known {
			exists[c] = true
		}
		for _, c := range named {
			if exists[c] {
				codes = append(codes, c)
			} else {
				unmatched = append(unmatched, c)
			}
		}
	}
	var shapes []cap.Area
	for _, in := range a.Infos {
		for _, ar := range in.Areas {
			if len(ar.Polygons) > 0 || len(ar.Circles) > 0 {
				shapes = append(shapes, ar)
			}
		}
	}
	if len(shapes) == 0 {
		return codes, unmatched, nil
	}
	points, err := s.store.LeafAreaCentroids(ctx)
	if err != nil {
		return nil, nil, err
	}
	var inside []string
	for _, p := range points {
		for _, ar := range shapes {
			if ar.Contains(cap.Point{Lat: p.Lat, Lon: p.Lon}) {
				inside = append(inside, p.Code)
				break
			}
		}
	}
	return union(codes, inside), unmatched, nil
}

// checkAreas refuses an alert of a pre-authorised issuer that names, or
// covers with a polygon or circle, a unit outside the issuer's areas:
// its pre-authorisation holds only where its key is bound. codes are the
// alert's own units as resolved (known codes; the leaves a shape
// covers), whatever its distribution; an Update's inherited audience is
// its chain's, not checked again. Others' alerts wait for an approver.
func (s *Service) checkAreas(ctx context.Context, iss Issuer, codes []string, f fields) error {
	if iss.AnyArea || !s.preauthorised(iss.Scopes) || len(codes) == 0 {
		return nil
	}
	within, err := s.store.AreaSubtree(ctx, iss.Areas)
	if err != nil {
		return err
	}
	allowed := make(map[string]bool, len(within))
	for _, c := range within {
		allowed[c] = true
	}
	var outside []string
	for _, c := range codes {
		if !allowed[c] {
			outside = append(outside, c)
		}
	}
	if len(outside) == 0 {
		return nil
	}
	ae := &AreaError{Outside: outside, Allowed: slices.Clone(iss.Areas)}
	return &loa.Error{Code: loa.EForbidden, Field: f.areas(), Detail: ae.Error(), Err: ae}
}

// union appends to a copy of a the elements of b it lacks, in order and
// once each. In time linear in both (an alert may cover 10,000 units).
func union(a, b []string) []string {
	out := slices.Clone(a)
	if len(b) == 0 {
		return out
	}
	have := make(map[string]bool, len(a)+len(b))
	for _, x := range a {
		have[x] = true
	}
	for _, x := range b {
		if !have[x] {
			have[x] = true
			out = append(out, x)
		}
	}
	return out
}

// distinct returns a's elements once each, in order.
func distinct(a []string) []string { return union(nil, a) }

// send publishes the plan of a stored, sendable alert; for a Cancel it
// first stops what is not yet planned of the alerts it cancels, and for
// any other alert it then schedules the escalation.
func (s *Service) send(ctx context.Context, st StoredAlert) error {
	now := s.now().UTC()
	p, err := s.planOf(ctx, st, now)
	if err != nil {
		return err
	}
	if p.cancel() {
		if err := s.stopChain(ctx, st, p, now); err != nil {
			return err
		}
	}
	if err := s.pub.Publish(ctx, p.env); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrPublish, st.ID, err)
	}
	if err := s.store.MarkAlertPublished(ctx, st.ID, now); err != nil {
		// Published but not marked: the outbox publishes the plan again,
		// and the planner resumes it rather than sending it twice.
		s.log.Warn("published alert not marked", slog.String("id", st.ID), slog.Any("error", err))
	}
	if !p.cancel() {
		if err := s.scheduleEscalation(ctx, st, p.alert, p.plan, now); err != nil {
			return err
		}
	}
	return nil
}

// alertPlan is the plan event of a stored alert, with its CAP document
// and the alerts it refers to.
type alertPlan struct {
	env   producer.Envelope
	plan  producer.Plan
	alert *cap.Alert
	refs  []StoredAlert
}

// cancel reports whether the alert is a Cancel, whose chain is stopped
// before it is published.
func (p alertPlan) cancel() bool { return p.alert.MsgType == cap.MsgTypeCancel }

// planOf builds the plan event of a stored alert.
func (s *Service) planOf(ctx context.Context, st StoredAlert, now time.Time) (alertPlan, error) {
	var a cap.Alert
	if err := json.Unmarshal(st.Document, &a); err != nil {
		return alertPlan{}, fmt.Errorf("alert: stored document of %s: %w", st.ID, err)
	}
	// The alerts it refers to in its own distribution: what it is sent to,
	// names, cancels and links to. One of another distribution is only
	// recorded — an Exercise stops no Actual warning, and a Public Cancel
	// tells nothing of a Restricted alert.
	var refs []StoredAlert
	for _, id := range st.RefIDs {
		r, err := s.store.Alert(ctx, id)
		if err != nil {
			return alertPlan{}, fmt.Errorf("alert: referenced alert %s: %w", id, err)
		}
		if r.Distribution == st.Distribution {
			refs = append(refs, r)
		}
	}
	app := s.cfg.App
	if st.Audience.App != "" {
		app = st.Audience.App
	}
	plan := producer.Plan{NotificationID: st.ID, Channels: st.Channels, Priority: st.Priority, App: app, Collapse: st.ChainKey,
		Audience:   producer.Audience{Areas: st.AreaCodes, Roles: st.Audience.Roles, Accounts: st.Audience.Accounts},
		AreaTopics: st.Audience.AreaTopics,
		Data:       map[string]string{"type": "alert", "alert_id": st.ID, "msg_type": st.MsgType, "chain": st.ChainKey}}
	if st.Distribution != DistributionPublic {
		plan.Data["distribution"] = st.Distribution
	}
	if in := a.InfoFor("vi"); in != nil {
		plan.Data["event"], plan.Data["severity"], plan.Data["urgency"] = in.Event, string(in.Severity), string(in.Urgency)
	}
	if len(refs) > 0 {
		ids := make([]string, len(refs))
		for i, r := range refs {
			ids[i] = r.ID
		}
		plan.Data["references"] = strings.Join(ids, ",")
	}
	plan.Title, plan.Body = text(&a, refs, plan.Data)
	held, err := s.held(ctx, &a, refs)
	if err != nil {
		return alertPlan{}, err
	}
	plan.QuietHours = held
	// Each device's push carries its proof of receipt, for acknowledging
	// without a session (not through a topic, which has no devices).
	plan.Ack = !st.Audience.AreaTopics
	env, err := producer.NewEnvelope(st.ID, producer.KindPlan, topics.LaneAlert, st.ID, now, st.ExpiresAt, "", plan)
	if err != nil {
		return alertPlan{}, err
	}
	return alertPlan{env: env, plan: plan, alert: &a, refs: refs}, nil
}

// stopChain stops what a Cancel cancels: the unplanned rest of its chain,
// and the chain's pending escalation (nobody is reminded of a cancelled
// alert).
func (s *Service) stopChain(ctx context.Context, st StoredAlert, p alertPlan, now time.Time) error {
	if err := s.cancelChain(ctx, st.ID, st.Distribution, p.refs, now); err != nil {
		return err
	}
	if _, err := s.store.CancelScheduled(ctx, escalationSubject(st)); err != nil {
		return fmt.Errorf("alert: cancel escalation: %w", err)
	}
	// An escalation the scheduler published as the Cancel came (its poll
	// claimed the item first, so it was no longer pending above) is on
	// another partition and would reach the phones after the all-clear:
	// its plan is stopped too, as the chain's alerts' are.
	if err := s.store.CancelPlan(ctx, EscalationID(st), []string{ChannelSMS}, now); err != nil {
		return fmt.Errorf("alert: cancel escalation: %w", err)
	}
	// Nor does anyone receive, when their quiet hours end, what was held
	// of the chain (dispatcher.HeldSubject of its collapse key).
	if _, err := s.store.CancelScheduled(ctx, "held:"+st.ChainKey); err != nil {
		return fmt.Errorf("alert: cancel held batches: %w", err)
	}
	return nil
}

// outboxItem is the outbox item that publishes st's plan if its own
// publish (send) does not happen within PublishGrace.
func (s *Service) outboxItem(ctx context.Context, st StoredAlert, now time.Time) (producer.OutboxItem, error) {
	p, err := s.planOf(ctx, st, now)
	if err != nil {
		return producer.OutboxItem{}, err
	}
	it, err := producer.NewOutboxItem(producer.RecordAlert+":"+st.ID, st.ID, now.Add(PublishGrace), p.env)
	it.Record = producer.RecordAlert
	return it, err
}

// BeforePublish is what the outbox runs before it publishes an alert's
// plan (register it with Outbox.Prepare(producer.RecordAlert, …)): what
// send does around its publish — a Cancel stops the chain it cancels,
// any other alert schedules its escalation. It is idempotent.
func (s *Service) BeforePublish(ctx context.Context, id string) error {
	st, err := s.store.Alert(ctx, id)
	if err != nil {
		return fmt.Errorf("alert: before publish %s: %w", id, err)
	}
	now := s.now().UTC()
	p, err := s.planOf(ctx, st, now)
	if err != nil {
		return err
	}
	if p.cancel() {
		return s.stopChain(ctx, st, p, now)
	}
	return s.scheduleEscalation(ctx, st, p.alert, p.plan, now)
}

// severityRank orders severities, Unknown lowest.
var severityRank = map[cap.Severity]int{cap.SeverityUnknown: 0, cap.SeverityMinor: 1, cap.SeverityModerate: 2, cap.SeveritySevere: 3, cap.SeverityExtreme: 4}

// held reports whether an alert waits for quiet hours: none of its info
// blocks is at the bypass severity or above, and — for an Update or
// Cancel — neither is any alert of the chain it changes, which went at
// once and so is followed at once (the all-clear of an Extreme flood
// warning does not wait for the morning; the cancellation of a Minor one
// does, as the warning did). A Cancel without info blocks whose chain Loa
// does not know goes at once: it lifts a warning of unknown severity.
func (s *Service) held(ctx context.Context, a *cap.Alert, refs []StoredAlert) (bool, error) {
	if s.cfg.QuietBypass == "" || s.bypasses(a) {
		return false, nil
	}
	if len(refs) == 0 {
		return len(a.Infos) > 0, nil
	}
	seen := map[string]bool{}
	for len(refs) > 0 {
		r := refs[0]
		refs = refs[1:]
		if seen[r.ID] {
			continue
		}
		seen[r.ID] = true
		var ra cap.Alert
		if err := json.Unmarshal(r.Document, &ra); err != nil {
			return false, fmt.Errorf("alert: stored document of %s: %w", r.ID, err)
		}
		if s.bypasses(&ra) {
			return false, nil
		}
		for _, id := range r.RefIDs {
			x, err := s.store.Alert(ctx, id)
			if err != nil {
				return false, fmt.Errorf("alert: referenced alert %s: %w", id, err)
			}
			refs = append(refs, x)
		}
	}
	return true, nil
}

// bypasses reports whether one of a's info blocks is at the quiet hours
// bypass severity or above.
func (s *Service) bypasses(a *cap.Alert) bool {
	for _, in := range a.Infos {
		if severityRank[in.Severity] >= severityRank[s.cfg.QuietBypass] {
			return true
		}
	}
	return false
}

// AckChain names what an acknowledgement is of: an alert chain (an
// alert, its Updates and Cancel), by sender and chain key, so that an ack
// of the Update also counts for the alert.
func AckChain(st StoredAlert) string { return st.Sender + " " + st.ChainKey }

// EscalationID is the notification id of a chain's escalation SMS. Every
// escalation of a chain shares it, so its delivery claims send at most one
// SMS to a phone whatever Updates follow.
func EscalationID(st StoredAlert) string {
	sum := sha256.Sum256([]byte(AckChain(st)))
	return "alert-escalation-" + hex.EncodeToString(sum[:16])
}

// escalationSubject groups a chain's pending escalations, for replacing
// and cancelling them.
func escalationSubject(st StoredAlert) string { return "alert-escalation:" + AckChain(st) }

// EscalationPrefix starts an escalation SMS.
const EscalationPrefix = "NHẮC LẠI CẢNH BÁO: "

// maxEscalationSMS bounds the text of an escalation SMS, in bytes: about
// five UCS-2 segments.
const maxEscalationSMS = 480

// escalationDelay is how long an alert waits for acknowledgements before
// escalating: the shortest delay the policy gives any of its severities.
func (s *Service) escalationDelay(a *cap.Alert) (time.Duration, bool) {
	var (
		after time.Duration
		found bool
	)
	for _, in := range a.Infos {
		if d, ok := s.cfg.Escalation[in.Severity]; ok && (!found || d < after) {
			after, found = d, true
		}
	}
	return after, found
}

// scheduleEscalation stores, as a scheduled item due after the policy's
// delay, the plan of the SMS that goes to the phones in the alert's
// audience whose accounts have not acknowledged the chain by then. A
// chain has one escalation pending at a time: an Update's replaces the
// earlier one's, a Cancel removes it. The item survives restarts; the
// outbox publishes it once when it falls due.
func (s *Service) scheduleEscalation(ctx context.Context, st StoredAlert, a *cap.Alert, sent producer.Plan, now time.Time) error {
	after, ok := s.escalationDelay(a)
	if !ok || st.Audience.AreaTopics || !slices.Contains(st.Channels, ChannelPush) {
		return nil
	}
	due := now.Add(after)
	if !due.Before(st.ExpiresAt) {
		return nil // the alert expires before anyone could be reminded
	}
	plan := producer.Plan{NotificationID: EscalationID(st), Channels: []string{ChannelSMS}, Priority: string(cap.PriorityHigh),
		Audience: producer.Audience{Areas: st.AreaCodes, Roles: st.Audience.Roles, Accounts: st.Audience.Accounts, Unacknowledged: AckChain(st)},
		App:      sent.App, Title: EscalationPrefix + sent.Title,
		Data: map[string]string{"type": "alert_escalation", "alert_id": st.ID, "chain": st.ChainKey}}
	body := EscalationPrefix + sent.Title
	if in := a.InfoFor("vi"); in != nil && in.Instruction != "" {
		body += ". " + in.Instruction
	}
	plan.Body = cut(body, maxEscalationSMS)
	// An alert held for quiet hours is not chased by SMS inside them
	// either: its escalation waits like its push.
	plan.QuietHours = sent.QuietHours
	itemID := plan.NotificationID + "-" + st.ID
	env, err := producer.NewEnvelope(itemID, producer.KindPlan, topics.LaneAlert, plan.NotificationID, now, st.ExpiresAt, "", plan)
	if err != nil {
		return err
	}
	it, err := producer.NewOutboxItem(itemID, escalationSubject(st), due, env)
	if err != nil {
		return fmt.Errorf("alert: escalation: %w", err)
	}
	if _, err := s.store.CancelScheduledExcept(ctx, escalationSubject(st), itemID); err != nil {
		return fmt.Errorf("alert: escalation: %w", err)
	}
	if err := s.store.Schedule(ctx, it, now); err != nil {
		return fmt.Errorf("alert: escalation: %w", err)
	}
	return nil
}

// cancelChain stops the unplanned rest of the alerts refs, of the
// alerts they refer to and of the Updates of any of them: cancelling an
// Update cancels its original, and cancelling an original cancels its
// Updates. self is the Cancel being sent, never stopped; alerts of another
// distribution than dist, the Cancel's, are left alone.
func (s *Service) cancelChain(ctx context.Context, self, dist string, refs []StoredAlert, now time.Time) error {
	seen := map[string]bool{self: true}
	var next []string
	for _, r := range refs {
		next = append(next, r.ID)
	}
	for len(next) > 0 {
		id := next[0]
		next = next[1:]
		if seen[id] {
			continue
		}
		seen[id] = true
		r, err := s.store.Alert(ctx, id)
		if err != nil {
			return fmt.Errorf("alert: cancel %s: %w", id, err)
		}
		if r.MsgType == string(cap.MsgTypeCancel) || r.Distribution != dist {
			continue
		}
		if err := s.store.CancelPlan(ctx, r.ID, r.Channels, now); err != nil {
			return fmt.Errorf("alert: cancel %s: %w", r.ID, err)
		}
		next = append(next, r.RefIDs...)
		links, err := s.store.AlertsReferring(ctx, r.ID)
		if err != nil {
			return fmt.Errorf("alert: cancel %s: %w", r.ID, err)
		}
		for _, l := range links {
			next = append(next, l.ID)
		}
	}
	return nil
}

// CancelPrefix starts the title and body of a cancellation notice.
const CancelPrefix = "Hủy cảnh báo: "

// UpdatePrefix starts the title of an update.
const UpdatePrefix = "Cập nhật: "

// Budgets of an alert's push, in bytes of JSON as fcm.PayloadSize counts
// them against FCM's 4,096. The notification shows a short text; the data
// payload carries the full texts for the app, cut only when they would
// not fit; dataReserve is left for what the dispatcher adds per device.
const (
	maxTitle    = 200
	maxBody     = 1000
	pushBudget  = 4096
	dataReserve = 300
)

// text is the title and body sent for an alert — its Vietnamese info
// block's headline, then its description with the instruction when both
// fit in the body; for a Cancel a notice naming the cancelled alert — and
// it adds to data the full headline, description and instruction, as far
// as FCM's payload limit allows.
func text(a *cap.Alert, refs []StoredAlert, data map[string]string) (title, body string) {
	in := a.InfoFor("vi")
	switch {
	case a.MsgType == cap.MsgTypeCancel:
		var names []string
		for _, r := range refs {
			var ra cap.Alert
			if json.Unmarshal(r.Document, &ra) == nil {
				if ri := ra.InfoFor("vi"); ri != nil {
					names = append(names, headline(ri))
				}
			}
		}
		if len(names) == 0 && in != nil {
			names = append(names, headline(in))
		}
		title = CancelPrefix + strings.Join(names, "; ")
		body = title
		if in != nil && in.Description != "" {
			body += "\n" + in.Description
		}
	case in == nil:
		title = "Cảnh báo"
	default:
		title = headline(in)
		if a.MsgType == cap.MsgTypeUpdate {
			title = UpdatePrefix + title
		}
		body = in.Description
		if body == "" {
			body = headline(in)
		}
		if in.Instruction != "" && len(body)+1+len(in.Instruction) <= maxBody {
			body += "\n" + in.Instruction
		}
	}
	title, body = cut(title, maxTitle), cut(body, maxBody)
	if in != nil {
		// What is left of the payload, for the full texts.
		left := pushBudget - dataReserve - payloadSize(title, body, data)
		for _, f := range []struct{ key, text string }{{"headline", in.Headline}, {"instruction", in.Instruction}, {"description", in.Description}} {
			if f.text == "" {
				continue
			}
			room := left - jsonLen(f.key) - 2
			if room <= 2 {
				data["truncated"] = "1"
				break
			}
			v := f.text
			if jsonLen(v) > room {
				v = cutJSON(v, room)
				data["truncated"] = "1"
			}
			data[f.key] = v
			left -= jsonLen(f.key) + jsonLen(v) + 2
		}
	}
	return title, body
}

// cut shortens s to at most n bytes at a rune boundary, marking the cut
// with an ellipsis.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ell = "…"
	i := n - len(ell)
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + ell
}

// cutJSON shortens s so that its JSON encoding is at most n bytes.
func cutJSON(s string, n int) string {
	for jsonLen(s) > n && s != "" {
		s = cut(s, len(s)-max(1, (jsonLen(s)-n)/2))
	}
	return s
}

// jsonLen is the length of s encoded as a JSON string.
func jsonLen(s string) int {
	b, _ := json.Marshal(s) // a string always marshals
	return len(b)
}

// payloadSize estimates the FCM payload of a notification and its data
// as fcm.PayloadSize does.
func payloadSize(title, body string, data map[string]string) int {
	n := len(`{"title":,"body":}`) + jsonLen(title) + jsonLen(body) + 1
	for k, v := range data {
		n += jsonLen(k) + jsonLen(v) + 2
	}
	return n
}

func headline(in *cap.Info) string {
	if in.Headline != "" {
		return in.Headline
	}
	return in.Event
}

// Approver is an official deciding on a pending alert.
type Approver struct {
	ID    string // principal id, compared with the alert's issuer
	Actor string // how the audit log names them
}

// Approve sends a pending alert. It returns ErrNotFound, ErrSelfDecision
// when the approver issued it, ErrNotPending when it is not pending,
// ErrExpiredPending when it expired while waiting, or the stored
// (approved) alert with an error wrapping ErrPublish.
//
// Approving again an approved alert whose publish failed retries the
// publish.
func (s *Service) Approve(ctx context.Context, id string, by Approver) (StoredAlert, error) {
	st, err := s.decide(ctx, id, by, StatusSentApproved, "")
	if errors.Is(err, ErrNotPending) && st.Status == StatusSentApproved && st.PublishedAt.IsZero() && st.DecidedBy == by.ID {
		return st, s.send(ctx, st)
	}
	if err != nil {
		return st, err
	}
	return st, s.send(ctx, st)
}

// Reject refuses a pending alert with a reason; it is never sent. Errors
// as Approve's.
func (s *Service) Reject(ctx context.Context, id string, by Approver, reason string) (StoredAlert, error) {
	return s.decide(ctx, id, by, StatusRejected, reason)
}

func (s *Service) decide(ctx context.Context, id string, by Approver, to, reason string) (StoredAlert, error) {
	st, err := s.store.Alert(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return st, ErrNotFound
	}
	if err != nil {
		return st, err
	}
	if st.Issuer == by.ID {
		return st, ErrSelfDecision
	}
	if st.Status != StatusPendingApproval {
		return st, ErrNotPending
	}
	if to == StatusSentApproved && !s.now().Before(st.ExpiresAt) {
		return st, ErrExpiredPending
	}
	var outbox []producer.OutboxItem
	if to == StatusSentApproved {
		it, err := s.outboxItem(ctx, st, s.now().UTC())
		if err != nil {
			return st, err
		}
		outbox = append(outbox, it)
	}
	ok, err := s.store.DecideAlert(ctx, id, StatusPendingApproval, to, by.ID, reason, s.now(), outbox...)
	if err != nil {
		return st, err
	}
	if !ok {
		return st, ErrNotPending
	}
	action := "alert.approve"
	if to == StatusRejected {
		action = "alert.reject"
	}
	detail := map[string]string{"status": to}
	if reason != "" {
		detail["reason"] = reason
	}
	s.audit(ctx, by.Actor, action, id, detail)
	return s.store.Alert(ctx, id)
}

func (s *Service) audit(ctx context.Context, actor, action, subject string, detail map[string]string) {
	if err := s.store.AppendAudit(ctx, accounts.AuditEntry{At: s.now().UTC(), Actor: actor, Action: action, Subject: subject, Detail: detail}); err != nil {
		s.log.Error("alert: audit", slog.String("action", action), slog.String("alert", subject), slog.Any("error", err))
	}
}

// Detail is a stored alert with its parsed document and the alerts that
// refer to it.
type Detail struct {
	StoredAlert
	Doc         *cap.Alert
	Updates     []string // ids of Updates referring to it
	CancelledBy []string // ids of Cancels referring to it
}

// Get returns an alert, or ErrNotFound.
func (s *Service) Get(ctx context.Context, id string) (Detail, error) {
	st, err := s.store.Alert(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Detail{}, ErrNotFound
	}
	if err != nil {
		return Detail{}, err
	}
	d := Detail{StoredAlert: st, Doc: &cap.Alert{}}
	if err := json.Unmarshal(st.Document, d.Doc); err != nil {
		return Detail{}, fmt.Errorf("alert: stored document of %s: %w", id, err)
	}
	links, err := s.store.AlertsReferring(ctx, id)
	if err != nil {
		return Detail{}, err
	}
	for _, l := range links {
		if l.MsgType == string(cap.MsgTypeCancel) {
			d.CancelledBy = append(d.CancelledBy, l.ID)
		} else {
			d.Updates = append(d.Updates, l.ID)
		}
	}
	return d, nil
}

// List returns up to limit alerts with status ("" for all) posted by
// issuer (a principal id; "" for every issuer), newest first.
func (s *Service) List(ctx context.Context, status, issuer string, limit int) ([]StoredAlert, error) {
	return s.store.Alerts(ctx, status, issuer, limit)
}
