package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/internal/sqlstore"
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
)

// Statuses lists every status, for validating a filter.
var Statuses = []string{StatusPendingApproval, StatusSentPreauthorised, StatusSentApproved, StatusRejected}

// The channels an alert can use.
const (
	ChannelPush = "push"
	ChannelSMS  = "sms"
)

// Errors of the Service besides *cap.ValidationError.
var (
	ErrNotFound = errors.New("alert: not found")
	// ErrNotPending: the alert is not waiting for approval (already
	// decided, or pre-authorised).
	ErrNotPending = errors.New("alert: not pending approval")
	// ErrSelfDecision: an issuer tried to approve or reject their own
	// alert (four eyes).
	ErrSelfDecision = errors.New("alert: the issuer cannot decide on their own alert")
	// ErrUnknownReference is the class of the *cap.ValidationError for a
	// reference to an alert Loa does not know.
	ErrUnknownReference = errors.New("alert: unknown referenced alert")
	// ErrIdentifierReused is the class of the *cap.ValidationError for an
	// alert posted with the sender and identifier of an earlier one but
	// different content: CAP identifiers are unique per sender, so this
	// is neither a repost nor a new alert.
	ErrIdentifierReused = errors.New("alert: identifier already used for a different alert")
	// ErrNoArea is the class of the *cap.ValidationError for an alert
	// whose areas match no administrative unit.
	ErrNoArea = errors.New("alert: no area")
	// ErrNotActual is the class of the *cap.ValidationError for a Test,
	// Exercise, System or Draft alert, or an Ack or Error message: Loa
	// distributes only actual alerts, updates and cancellations.
	ErrNotActual = errors.New("alert: not an actual alert")
	// ErrExpiredPending: a pending alert expired before it was approved;
	// it can only be rejected.
	ErrExpiredPending = errors.New("alert: expired before approval")
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
	return errors.Join(errs...)
}

// publisher is what the Service needs of producer.Publisher.
type publisher interface {
	Publish(ctx context.Context, e producer.Envelope) error
}

// Service ingests alerts and publishes them. It is safe for concurrent
// use.
type Service struct {
	store *sqlstore.DB
	pub   publisher
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
}

// New returns a Service, or the error of cfg.Validate.
func New(cfg Config, store *sqlstore.DB, pub publisher, log *slog.Logger) (*Service, error) {
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
}

// Result is the answer to Submit.
type Result struct {
	Alert sqlstore.StoredAlert
	// Replayed is true when the same sender had already posted the same
	// identifier: nothing new was stored or sent.
	Replayed bool
}

// ParseCAP reads and validates a CAP 1.2 document: area codes must be
// known, and the alert must not have expired. It returns a
// *cap.ValidationError for a refused document.
func (s *Service) ParseCAP(ctx context.Context, r io.Reader) (*cap.Alert, error) {
	var (
		mu    sync.Mutex
		dbErr error
		known = map[string]bool{}
	)
	a, err := cap.Parse(r, cap.Options{MaxBytes: s.cfg.MaxBytes, Now: s.now(), KnownArea: func(code string) bool {
		mu.Lock()
		defer mu.Unlock()
		if ok, seen := known[code]; seen {
			return ok
		}
		ok, err := s.store.AreaExists(ctx, code)
		if err != nil {
			dbErr = err
			return true
		}
		known[code] = ok
		return ok
	}})
	if dbErr != nil {
		return nil, fmt.Errorf("alert: parse: %w", dbErr)
	}
	return a, err
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

func (f fields) area() string {
	if f.json {
		return "areas"
	}
	return "alert/info[0]/area"
}

// Submit validates, stores and — for a pre-authorised issuer — publishes
// an alert. The same sender and identifier posted again returns the
// stored alert with Replayed set and sends nothing (unless its publish
// had failed, which is retried). Refusals are *cap.ValidationError (with
// ErrUnknownReference, ErrNoArea or ErrNotActual as class); a failed
// publish returns the stored alert with an error wrapping ErrPublish.
func (s *Service) Submit(ctx context.Context, iss Issuer, in Input) (Result, error) {
	a, f := in.Alert, fields{json: in.JSON}
	now := s.now().UTC()
	if a.Status != cap.StatusActual {
		return Result{}, &cap.ValidationError{Element: "alert/status", Reason: "only Actual alerts are distributed", Err: ErrNotActual}
	}
	switch a.MsgType {
	case cap.MsgTypeAlert, cap.MsgTypeUpdate, cap.MsgTypeCancel:
	default:
		return Result{}, &cap.ValidationError{Element: "alert/msgType", Reason: "only Alert, Update and Cancel messages are distributed", Err: ErrNotActual}
	}
	if prev, err := s.store.AlertByIdentifier(ctx, a.Sender, a.Identifier); err == nil {
		return s.replay(ctx, prev, a, f)
	} else if !errors.Is(err, sqlstore.ErrNotFound) {
		return Result{}, err
	}

	refs, err := s.resolveRefs(ctx, a, in.RefIDs, f)
	if err != nil {
		return Result{}, err
	}
	if a.MsgType != cap.MsgTypeAlert && len(refs) == 0 {
		return Result{}, &cap.ValidationError{Element: f.refs(), Reason: "an Update or Cancel must name the alert it refers to", Err: cap.ErrInvalid}
	}
	codes, err := s.areaCodes(ctx, a)
	if err != nil {
		return Result{}, err
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
	var inherited []string
	for _, r := range refs {
		inherited = union(inherited, r.AreaCodes)
		chans = union(chans, r.Channels)
		if r.Priority == string(cap.PriorityHigh) {
			priority = r.Priority
		}
		if a.MsgType == cap.MsgTypeCancel && r.ExpiresAt.After(expires) {
			expires = r.ExpiresAt
		}
	}
	// The referenced alerts' audience first, then any new areas.
	codes = union(inherited, codes)
	if len(codes) == 0 {
		return Result{}, &cap.ValidationError{Element: f.area(), Reason: "no known administrative unit lies in the alert's areas", Err: ErrNoArea}
	}
	slices.SortStableFunc(chans, func(x, y string) int { return channelRank(x) - channelRank(y) })
	if expires.IsZero() {
		expires = now.Add(s.cfg.DefaultTTL)
	}
	if a.MsgType != cap.MsgTypeAlert && len(a.References) == 0 {
		for _, r := range refs {
			a.References = append(a.References, cap.Reference{Sender: r.Sender, Identifier: r.CAPIdentifier, Sent: r.Sent})
		}
	}
	status := StatusPendingApproval
	if s.preauthorised(iss.Scopes) {
		status = StatusSentPreauthorised
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
	st, created, err := s.store.CreateAlert(ctx, sqlstore.StoredAlert{
		ID: id.String(), CAPIdentifier: a.Identifier, Sender: a.Sender, Sent: a.Sent, MsgType: string(a.MsgType),
		References: refJSON, RefIDs: refIDs, Status: status, Priority: priority, Document: doc, Issuer: iss.ID,
		AreaCodes: codes, Channels: chans, ExpiresAt: expires, CreatedAt: now,
	})
	if err != nil {
		return Result{}, fmt.Errorf("alert: submit: %w", err)
	}
	if !created {
		return s.replay(ctx, st, a, f)
	}
	s.audit(ctx, iss.Actor, "alert.issue", st.ID, map[string]string{"identifier": st.CAPIdentifier, "sender": st.Sender,
		"msg_type": st.MsgType, "status": st.Status, "areas": strings.Join(st.AreaCodes, ",")})
	if st.Status == StatusSentPreauthorised {
		if err := s.send(ctx, st); err != nil {
			return Result{Alert: st}, err
		}
	}
	return Result{Alert: st}, nil
}

// replay answers a repost of the stored alert st as a: the stored alert,
// sent if its publish had failed; or, when a differs from it in more than
// its sent time, an ErrIdentifierReused refusal.
func (s *Service) replay(ctx context.Context, st sqlstore.StoredAlert, a *cap.Alert, f fields) (Result, error) {
	same, err := sameContent(st.Document, a)
	if err != nil {
		return Result{}, err
	}
	if !same {
		return Result{Alert: st}, &cap.ValidationError{Element: f.identifier(), Err: ErrIdentifierReused,
			Reason: fmt.Sprintf("%q was already used by this sender for a different alert (%s); give a new identifier, or send an Update referring to it", a.Identifier, st.ID)}
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

// resolveRefs finds the stored alerts a message refers to.
func (s *Service) resolveRefs(ctx context.Context, a *cap.Alert, ids []string, f fields) ([]sqlstore.StoredAlert, error) {
	var out []sqlstore.StoredAlert
	add := func(st sqlstore.StoredAlert) {
		if !slices.ContainsFunc(out, func(x sqlstore.StoredAlert) bool { return x.ID == st.ID }) {
			out = append(out, st)
		}
	}
	for i, r := range a.References {
		st, err := s.store.AlertByIdentifier(ctx, r.Sender, r.Identifier)
		if errors.Is(err, sqlstore.ErrNotFound) {
			return nil, &cap.ValidationError{Element: f.refs(), Err: ErrUnknownReference,
				Reason: fmt.Sprintf("reference %d: no alert %q from %q is known", i, r.Identifier, r.Sender)}
		}
		if err != nil {
			return nil, err
		}
		add(st)
	}
	for i, id := range ids {
		st, err := s.store.Alert(ctx, id)
		if errors.Is(err, sqlstore.ErrNotFound) {
			st, err = s.store.AlertByIdentifier(ctx, a.Sender, id)
		}
		if errors.Is(err, sqlstore.ErrNotFound) {
			return nil, &cap.ValidationError{Element: fmt.Sprintf("%s[%d]", f.refs(), i), Err: ErrUnknownReference,
				Reason: fmt.Sprintf("no alert %q is known (give an alert id or an identifier you sent)", id)}
		}
		if err != nil {
			return nil, err
		}
		add(st)
	}
	return out, nil
}

// areaCodes returns the alert's VN-ADMIN codes and the units without
// units below them whose centroid lies inside one of its polygons or
// circles.
func (s *Service) areaCodes(ctx context.Context, a *cap.Alert) ([]string, error) {
	codes := a.AreaCodes()
	var shapes []cap.Area
	for _, in := range a.Infos {
		for _, ar := range in.Areas {
			if len(ar.Polygons) > 0 || len(ar.Circles) > 0 {
				shapes = append(shapes, ar)
			}
		}
	}
	if len(shapes) == 0 {
		return codes, nil
	}
	points, err := s.store.LeafAreaCentroids(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range points {
		for _, ar := range shapes {
			if ar.Contains(cap.Point{Lat: p.Lat, Lon: p.Lon}) {
				codes = union(codes, []string{p.Code})
				break
			}
		}
	}
	return codes, nil
}

// union appends to a the elements of b it lacks.
func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// send publishes the plan of a stored, sendable alert; for a Cancel it
// first stops what is not yet planned of the alerts it cancels.
func (s *Service) send(ctx context.Context, st sqlstore.StoredAlert) error {
	now := s.now().UTC()
	var a cap.Alert
	if err := json.Unmarshal(st.Document, &a); err != nil {
		return fmt.Errorf("alert: stored document of %s: %w", st.ID, err)
	}
	var refs []sqlstore.StoredAlert
	for _, id := range st.RefIDs {
		r, err := s.store.Alert(ctx, id)
		if err != nil {
			return fmt.Errorf("alert: referenced alert %s: %w", id, err)
		}
		refs = append(refs, r)
	}
	if a.MsgType == cap.MsgTypeCancel {
		if err := s.cancelChain(ctx, st.ID, refs, now); err != nil {
			return err
		}
	}
	plan := producer.Plan{NotificationID: st.ID, Audience: producer.Audience{Areas: st.AreaCodes}, Channels: st.Channels,
		Priority: st.Priority, App: s.cfg.App, Data: map[string]string{"alert_id": st.ID, "msg_type": st.MsgType}}
	plan.Title, plan.Body = text(&a, refs)
	if in := a.InfoFor("vi"); in != nil {
		plan.Data["event"], plan.Data["severity"], plan.Data["urgency"] = in.Event, string(in.Severity), string(in.Urgency)
	}
	if len(refs) > 0 {
		plan.Data["references"] = strings.Join(st.RefIDs, ",")
	}
	env, err := producer.NewEnvelope(st.ID, producer.KindPlan, topics.LaneAlert, st.ID, now, st.ExpiresAt, "", plan)
	if err != nil {
		return err
	}
	if err := s.pub.Publish(ctx, env); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrPublish, st.ID, err)
	}
	if err := s.store.MarkAlertPublished(ctx, st.ID, now); err != nil {
		// Published but not marked: a repost publishes the plan again,
		// and the planner resumes it rather than sending it twice.
		s.log.Warn("published alert not marked", slog.String("id", st.ID), slog.Any("error", err))
	}
	return nil
}

// cancelChain stops the unplanned rest of the alerts refs, of the
// alerts they refer to and of the Updates of any of them: cancelling an
// Update cancels its original, and cancelling an original cancels its
// Updates. self is the Cancel being sent, never stopped.
func (s *Service) cancelChain(ctx context.Context, self string, refs []sqlstore.StoredAlert, now time.Time) error {
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
		if r.MsgType == string(cap.MsgTypeCancel) {
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

// text is the title and body sent for an alert: its Vietnamese info
// block's headline, description and instruction; for a Cancel a notice
// naming the cancelled alert.
func text(a *cap.Alert, refs []sqlstore.StoredAlert) (title, body string) {
	in := a.InfoFor("vi")
	if a.MsgType == cap.MsgTypeCancel {
		var names []string
		for _, r := range refs {
			var ra cap.Alert
			if json.Unmarshal(r.Document, &ra) == nil {
				if ri := ra.InfoFor("vi"); ri != nil {
					names = append(names, headline(ri))
				}
			}
		}
		title = CancelPrefix + strings.Join(names, "; ")
		body = title
		if in != nil && in.Description != "" {
			body += "\n" + in.Description
		}
		return title, body
	}
	if in == nil {
		return "Cảnh báo", ""
	}
	title = headline(in)
	if a.MsgType == cap.MsgTypeUpdate {
		title = UpdatePrefix + title
	}
	body = in.Description
	if body == "" {
		body = headline(in)
	}
	if in.Instruction != "" {
		body += "\n" + in.Instruction
	}
	return title, body
}

func headline(in *cap.Info) string {
	if in.Headline != "" {
		return in.Headline
	}
	return in.Event
}

// RunRelay publishes, every interval, the alerts that are to be sent but
// whose publish failed more than grace ago, until ctx ends; it returns
// nil then. It runs on every API replica: an alert published twice is
// planned once (the planner resumes a plan by its id) and delivered once.
func (s *Service) RunRelay(ctx context.Context, interval, grace time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now := s.now()
		list, err := s.store.UnpublishedAlerts(ctx, now.Add(-grace), now, 100)
		if err != nil {
			s.log.Warn("alert relay: listing unpublished alerts", slog.Any("error", err))
			continue
		}
		for _, st := range list {
			if err := s.send(ctx, st); err != nil {
				s.log.Warn("alert relay: publish", slog.String("alert", st.ID), slog.Any("error", err))
			}
		}
	}
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
func (s *Service) Approve(ctx context.Context, id string, by Approver) (sqlstore.StoredAlert, error) {
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
func (s *Service) Reject(ctx context.Context, id string, by Approver, reason string) (sqlstore.StoredAlert, error) {
	return s.decide(ctx, id, by, StatusRejected, reason)
}

func (s *Service) decide(ctx context.Context, id string, by Approver, to, reason string) (sqlstore.StoredAlert, error) {
	st, err := s.store.Alert(ctx, id)
	if errors.Is(err, sqlstore.ErrNotFound) {
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
	ok, err := s.store.DecideAlert(ctx, id, StatusPendingApproval, to, by.ID, reason, s.now())
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
	sqlstore.StoredAlert
	Doc         *cap.Alert
	Updates     []string // ids of Updates referring to it
	CancelledBy []string // ids of Cancels referring to it
}

// Get returns an alert, or ErrNotFound.
func (s *Service) Get(ctx context.Context, id string) (Detail, error) {
	st, err := s.store.Alert(ctx, id)
	if errors.Is(err, sqlstore.ErrNotFound) {
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

// List returns up to limit alerts with status ("" for all), newest first.
func (s *Service) List(ctx context.Context, status string, limit int) ([]sqlstore.StoredAlert, error) {
	return s.store.Alerts(ctx, status, limit)
}
