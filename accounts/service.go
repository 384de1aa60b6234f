package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/otp"
	"github.com/loa-hub/loa/producer"
)

// Config tunes a Service. Start from DefaultConfig.
type Config struct {
	Policy PasswordPolicy
	// Session lifetimes by kind; a restricted session (expired password)
	// lives RestrictedSessionTTL.
	CitizenSessionTTL    time.Duration
	OfficialSessionTTL   time.Duration
	RestrictedSessionTTL time.Duration
	// Topics is the list of subscription topics accepted.
	Topics []string
	// RecoveryKey keys the recovery-code hashes (otp.MinRecoveryKeySize
	// bytes or more).
	RecoveryKey []byte
	// Issuer is shown in authenticator apps.
	Issuer string
	// AccountBackoff throttles failed sign-ins per account (and per user
	// name that names none, so the answer is the same either way: one
	// Redis key a name, held Forget after its last failure, so Forget
	// times the password hashes a process does bounds what strangers'
	// invented names hold; the default 4 hours is the shortest at which
	// guessing in bursts, idle until forgotten, gives no more guesses a
	// day than trying at each end of the 15-minute wait);
	// AddressBackoff per client address (sign-ins and reset codes);
	// RecoveryBackoff wrong recovery codes per account and client;
	// ResetBackoff wrong password-reset codes per user name as typed.
	AccountBackoff, AddressBackoff, RecoveryBackoff, ResetBackoff Backoff
	// PendingTTL is how long a registration waits for its SMS code
	// before it is void and removed.
	PendingTTL time.Duration
	// ApprovalUnit is the unit whose broadcast_approver role approves
	// broadcasts and alerts (the DoIC's). Empty: nobody may approve.
	ApprovalUnit string
	// CodePublishTimeout bounds the hand-over of a code (or of the notice
	// sent in its place) to Kafka: a person is waiting for the answer.
	// A code not handed over in time is withdrawn and the request refused
	// with EUnavailable and a Retry-After.
	CodePublishTimeout time.Duration
	// AnonymousCodesPerHour caps the SMS codes the anonymous flows
	// (registration, POST /v1/otp/sms) send the whole province an hour;
	// 0: no cap. Phones not known (no active account holds them verified)
	// may use four fifths of it; the rest is the known phones' reserve.
	AnonymousCodesPerHour int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultCodePublishTimeout is Config.CodePublishTimeout's default: long
// enough for Kafka to move a partition's leadership, short enough that
// the person asking for a code is told to try again rather than left
// waiting.
const DefaultCodePublishTimeout = 5 * time.Second

// DefaultTopics are the subscription topics when none are configured.
var DefaultTopics = []string{"disaster", "power", "transport", "health", "education", "jobs", "market", "general"}

// DefaultConfig returns the defaults the requirements set: the province's password
// policy, 12-hour sessions for citizens and organisations, 8 hours for
// officials, 15 minutes for a session that may only change an expired
// password.
func DefaultConfig() Config {
	return Config{
		Policy:               DefaultPasswordPolicy(),
		CitizenSessionTTL:    12 * time.Hour,
		OfficialSessionTTL:   8 * time.Hour,
		RestrictedSessionTTL: 15 * time.Minute,
		PendingTTL:           30 * time.Minute,
		CodePublishTimeout:   DefaultCodePublishTimeout,
		AccountBackoff:       Backoff{Free: 5, Base: time.Second, Max: 15 * time.Minute, Forget: 4 * time.Hour},
		AddressBackoff:       Backoff{Free: 20, Base: time.Second, Max: 15 * time.Minute, Forget: 24 * time.Hour},
		RecoveryBackoff:      Backoff{Free: 4, Base: 15 * time.Minute, Max: 15 * time.Minute, Forget: 15 * time.Minute},
		ResetBackoff:         Backoff{Free: 5, Base: time.Minute, Max: time.Hour, Forget: 24 * time.Hour},
		Topics:               DefaultTopics,
		Issuer:               "Loa",
		Now:                  time.Now,
	}
}

// Validate reports the first unusable field.
func (c Config) Validate() error {
	if err := c.Policy.Validate(); err != nil {
		return err
	}
	switch {
	case c.CitizenSessionTTL <= 0 || c.OfficialSessionTTL <= 0 || c.RestrictedSessionTTL <= 0:
		return errors.New("accounts: config: session lifetimes must be positive")
	case !c.AccountBackoff.valid() || !c.AddressBackoff.valid() || !c.RecoveryBackoff.valid() || !c.ResetBackoff.valid():
		return errors.New("accounts: config: a Backoff needs Free ≥ 0 and positive Base ≤ Max and Forget")
	case c.PendingTTL <= 0:
		return errors.New("accounts: config: PendingTTL must be positive")
	case c.CodePublishTimeout <= 0:
		return errors.New("accounts: config: CodePublishTimeout must be positive")
	case len(c.RecoveryKey) < otp.MinRecoveryKeySize:
		return fmt.Errorf("accounts: config: RecoveryKey must be at least %d bytes", otp.MinRecoveryKeySize)
	case len(c.Topics) == 0:
		return errors.New("accounts: config: Topics must not be empty")
	case c.Issuer == "":
		return errors.New("accounts: config: Issuer must not be empty")
	}
	return nil
}

// Deps are the Service's collaborators. All but OIDC are required.
type Deps struct {
	Store      Store
	Sessions   SessionStore
	Challenges ChallengeIndex
	Codes      CodeSender
	TOTP       TOTPChecker
	Sealer     SecretSealer
	Publisher  Publisher
	Hasher     Hasher
	Throttle   Throttle
	// OIDC, when set, lets officials sign in with a single sign-on ID
	// token instead of a password.
	OIDC IDTokenVerifier
	// Metrics, when set, counts the codes the budget of anonymous codes
	// refuses.
	Metrics BudgetMetrics
	Log     *slog.Logger
}

// BudgetMetrics counts refusals of the budget of anonymous codes
// (Config.AnonymousCodesPerHour); internal/metrics implements it. It
// must be safe for concurrent use.
type BudgetMetrics interface {
	// AnonymousCodeRefused counts one code refused: all is false when
	// only the share of numbers no account holds was spent.
	AnonymousCodeRefused(all bool)
}

// Service is the accounts domain: registration, sign-in and sessions,
// passwords, second factors, officials and their roles, devices and
// subscriptions, each change written to the audit log. It is safe for
// concurrent use; every method honours ctx's cancellation through its
// collaborators.
type Service struct {
	cfg Config
	d   Deps
	now func() time.Time

	// Detached sends: see detach and Flush.
	sends     sync.WaitGroup
	sendSlots chan struct{}

	// budgetWarned is the start (Unix seconds) of the last hour whose
	// spent budget of anonymous codes was logged.
	budgetWarned atomic.Int64
}

// maxDetachedSends bounds the sends under way after their answer; past
// it a send is made before the answer instead.
const maxDetachedSends = 256

// detachedSendTimeout bounds one detached send.
const detachedSendTimeout = 30 * time.Second

// New checks cfg and d and returns a Service.
func New(cfg Config, d Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Store == nil || d.Sessions == nil || d.Challenges == nil || d.Codes == nil || d.TOTP == nil ||
		d.Sealer == nil || d.Publisher == nil || d.Hasher == nil || d.Throttle == nil || d.Log == nil {
		return nil, errors.New("accounts: new: a required dependency is nil")
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Service{cfg: cfg, d: d, now: now, sendSlots: make(chan struct{}, maxDetachedSends)}, nil
}

// detach publishes with send after the caller has answered, so that a
// flow that must answer alike whether or not an account exists (and so
// sends for one and not for the other) takes the same time either way:
// the Kafka round trip is not part of the answer. A failure is logged;
// the person asks for another code. When maxDetachedSends are already
// under way the send is made at once, before the answer. Flush waits for
// the detached sends.
func (s *Service) detach(ctx context.Context, what string, send func(context.Context) error) {
	ctx = context.WithoutCancel(ctx)
	run := func() {
		ctx, cancel := context.WithTimeout(ctx, detachedSendTimeout)
		defer cancel()
		if err := send(ctx); err != nil {
			s.d.Log.Error("accounts: sending failed", slog.String("what", what), slog.Any("error", err))
		}
	}
	select {
	case s.sendSlots <- struct{}{}:
	default:
		run()
		return
	}
	s.sends.Add(1)
	go func() {
		defer s.sends.Done()
		defer func() { <-s.sendSlots }()
		run()
	}()
}

// Flush waits until every code or notice handed off for sending after
// its answer has been published or has failed, or until ctx ends (then
// it returns ctx's error). Call it before closing the Publisher. Safe for
// concurrent use.
func (s *Service) Flush(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.sends.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b Backoff) valid() bool {
	return b.Free >= 0 && b.Base > 0 && b.Max >= b.Base && b.Forget > 0
}

// Topics returns the configured subscription topics.
func (s *Service) Topics() []string { return append([]string(nil), s.cfg.Topics...) }

// OIDCEnabled reports whether single sign-on is configured.
func (s *Service) OIDCEnabled() bool { return s.d.OIDC != nil }

// Actor is who asks for a change: a signed-in account, or an integrating
// system's API key (Admin when the key holds the admin scope).
type Actor struct {
	AccountID string
	APIKeyID  string
	Admin     bool
	IP        string
}

func (a Actor) name() string {
	switch {
	case a.AccountID != "":
		return a.AccountID
	case a.APIKeyID != "":
		return "apikey:" + a.APIKeyID
	}
	return "anonymous"
}

// audit appends to the audit log. A failure is logged, not returned: the
// action has already happened and refusing its answer would not undo it.
func (s *Service) audit(ctx context.Context, actor, action, subject, ip string, detail map[string]string) {
	e := AuditEntry{ID: uuid.Must(uuid.NewV7()).String(), At: s.now().UTC(), Actor: actor, Action: action, Subject: subject, Detail: detail, IP: ip}
	if err := s.d.Store.AppendAudit(context.WithoutCancel(ctx), e); err != nil {
		s.d.Log.Error("accounts: audit log write failed", slog.String("action", action), slog.Any("error", err))
	}
}

// refusalAuditBackoff: a refusal of a throttled key is audited once, then
// at most once a minute while the key keeps being refused.
var refusalAuditBackoff = Backoff{Free: 0, Base: time.Minute, Max: time.Minute, Forget: time.Minute}

// auditRefusal audits the refusal of an anonymous request that costs
// its caller nothing and may be repeated at will (one whose throttle key
// must wait, a challenge ID that names nothing), at most once a minute
// per key: a stranger repeating it as fast as the network allows must not
// write the audit log (a table that only a purge of old rows shrinks) as
// fast. The first refusal of each minute is written.
func (s *Service) auditRefusal(ctx context.Context, key, action, subject, ip string, detail map[string]string) {
	wait, err := s.d.Throttle.Take(ctx, "audited:"+key, s.now(), refusalAuditBackoff)
	if err != nil {
		s.d.Log.Warn("accounts: bounding refusal audits", slog.Any("error", err))
	} else if wait > 0 {
		return
	}
	s.audit(ctx, "anonymous", action, subject, ip, detail)
}

// Token prefixes tell a session token from an API key without a lookup.
const SessionTokenPrefix = "ses_"

// newToken returns a session token and its stored hash.
func newToken() (token, hash string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("accounts: new token: %w", err)
	}
	token = SessionTokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token), nil
}

// HashToken is the stored form of a session token: hex SHA-256. Tokens
// carry 256 random bits, so nothing slower is needed.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// sendCode publishes a code on the otp lane: to a phone by SMS, or to an
// official's Egov app with SMS as the fallback. See handOver for what a
// failure means.
func (s *Service) sendCode(ctx context.Context, ch otp.Challenge, code string, accountID string, push bool) error {
	text, err := s.d.Codes.Text(ch.Purpose, code)
	if err != nil {
		return fmt.Errorf("accounts: send code: %w", err)
	}
	id := "code-" + ch.ID
	p := producer.Direct{NotificationID: id, Title: "Mã xác thực Loa", Body: text, Priority: "high",
		To: producer.Recipient{Type: producer.ToPhone, Value: ch.Phone}, Channels: []string{"sms"}}
	key := ch.Phone
	if push {
		p.To = producer.Recipient{Type: producer.ToAccount, Value: accountID}
		p.Channels, p.Fallback, p.App = []string{"push", "sms"}, true, "egov"
		key = accountID
	}
	env, err := producer.NewEnvelope(id, producer.KindDirect, topics.LaneOTP, key, s.now(), ch.ExpiresAt, "", p)
	if err != nil {
		return fmt.Errorf("accounts: send code: %w", err)
	}
	return s.handOver(ctx, ch, env)
}

// sendNotice publishes text (no code) to the phone of ch on the otp lane,
// under ch's id, in place of the code ch was issued for: it fails, and
// withdraws ch, exactly as sendCode would.
func (s *Service) sendNotice(ctx context.Context, ch otp.Challenge, text string) error {
	env, err := s.textEnvelope("code-"+ch.ID, ch.Phone, ch.ExpiresAt, text)
	if err != nil {
		return err
	}
	return s.handOver(ctx, ch, env)
}

// handOver publishes the SMS of challenge ch within CodePublishTimeout.
// When the publish fails or runs out of time the challenge is withdrawn
// (otp.SMSCodes.Withdraw): it is void — a publish still under way in the
// client may yet put the code on Kafka; the dispatcher then sees it
// withdrawn and does not send it, and a copy sent before that carries a
// code that does not work — and no longer counts against the send
// limits, so the person may ask again at once. The error is then EUnavailable with a Retry-After: a code is
// either handed over and answered as sent, or refused with an error its
// caller can act on, never left issued and unsent.
func (s *Service) handOver(ctx context.Context, ch otp.Challenge, env producer.Envelope) error {
	pctx, cancel := context.WithTimeout(ctx, s.cfg.CodePublishTimeout)
	err := s.d.Publisher.Publish(pctx, env)
	cancel()
	if err == nil {
		return nil
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, werr := s.d.Codes.Withdraw(wctx, ch.ID); werr != nil {
		s.d.Log.Error("accounts: withdrawing a code that was not sent failed; it stays counted until its window passes",
			slog.Any("error", werr))
	}
	e := loa.Unavailable("the code could not be sent; ask for a new one")
	e.RetryAfter = codeRetryAfter
	return e.Wrap(fmt.Errorf("accounts: send code: %w", err))
}

// codeRetryAfter is the Retry-After of a code that could not be sent.
const codeRetryAfter = 5 * time.Second

// sendText publishes an SMS of text to phone on the otp lane, as
// notification id, not to be sent after expires.
func (s *Service) sendText(ctx context.Context, id, phone string, expires time.Time, text string) error {
	env, err := s.textEnvelope(id, phone, expires, text)
	if err != nil {
		return err
	}
	if err := s.d.Publisher.Publish(ctx, env); err != nil {
		return fmt.Errorf("accounts: send notice: %w", err)
	}
	return nil
}

// textEnvelope is the otp-lane envelope of an SMS of text to phone.
func (s *Service) textEnvelope(id, phone string, expires time.Time, text string) (producer.Envelope, error) {
	p := producer.Direct{NotificationID: id, Title: "Loa", Body: text, Priority: "high",
		To: producer.Recipient{Type: producer.ToPhone, Value: phone}, Channels: []string{"sms"}}
	env, err := producer.NewEnvelope(id, producer.KindDirect, topics.LaneOTP, phone, s.now(), expires, "", p)
	if err != nil {
		return producer.Envelope{}, fmt.Errorf("accounts: send notice: %w", err)
	}
	return env, nil
}

// issueCode issues a code and translates the otp package's limits.
func (s *Service) issueCode(ctx context.Context, phone, purpose, ip string) (otp.Challenge, string, error) {
	return s.issueCodeWith(ctx, phone, purpose, ip, otp.IssueOptions{})
}

// issueCodeWith is issueCode with the challenge's options.
func (s *Service) issueCodeWith(ctx context.Context, phone, purpose, ip string, o otp.IssueOptions) (otp.Challenge, string, error) {
	ch, code, err := s.d.Codes.IssueWith(ctx, phone, purpose, ip, o)
	if rl, ok := errors.AsType[*otp.RateLimitError](err); ok && errors.Is(err, otp.ErrBudget) {
		return otp.Challenge{}, "", &loa.Error{Code: loa.EUnavailable, RetryAfter: rl.RetryAfter, Err: err,
			Detail: "the province's hourly budget of SMS codes for numbers without an account is spent; retry later"}
	}
	if rl, ok := errors.AsType[*otp.RateLimitError](err); ok {
		detail := "too many codes requested; retry later"
		switch {
		case errors.Is(err, otp.ErrPhoneBound):
			detail = "too many codes were sent to this phone today; wait before asking for another"
		case errors.Is(err, otp.ErrCooldown):
			detail = "a code was sent to this phone moments ago; wait before asking for another"
		case errors.Is(err, otp.ErrTooManySends):
			detail = "too many codes were sent to this phone recently"
		case errors.Is(err, otp.ErrTooManyFromIP):
			detail = "too many codes were requested from this address recently"
		}
		return otp.Challenge{}, "", &loa.Error{Code: loa.ERateLimited, Detail: detail, RetryAfter: rl.RetryAfter, Err: err}
	}
	if err != nil {
		return otp.Challenge{}, "", fmt.Errorf("accounts: issue code: %w", err)
	}
	return ch, code, nil
}

// codeError turns an otp verification error into a refusal wrapping
// ErrCode and the reason, or passes infrastructure errors on.
func codeError(err error) error {
	for _, e := range []error{otp.ErrNotFound, otp.ErrExpired, otp.ErrVoid, otp.ErrWrongCode} {
		if errors.Is(err, e) {
			return codeRejected(e)
		}
	}
	return fmt.Errorf("accounts: verify code: %w", err)
}

// codeRejected is the refusal of an SMS code for reason (one of the otp
// package's verification errors, or nil for a code sent for another
// purpose). It wraps ErrCode and reason.
func codeRejected(reason error) error {
	detail := "the code was not sent for this purpose"
	switch {
	case errors.Is(reason, otp.ErrWrongCode):
		detail = "the code is wrong"
	case errors.Is(reason, otp.ErrExpired):
		detail = "the code has expired; ask for a new one"
	case errors.Is(reason, otp.ErrVoid):
		detail = "the code can no longer be used (already used, replaced by a newer code, or too many wrong tries); ask for a new one"
	case errors.Is(reason, otp.ErrNotFound):
		detail = "no such challenge; ask for a new code"
	}
	cause := ErrCode
	if reason != nil {
		cause = fmt.Errorf("%w: %w", ErrCode, reason)
	}
	return &loa.Error{Code: loa.ECodeRejected, Field: "code", Detail: detail, Err: cause}
}
