package otp

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// SMSCodeDigits is the length of an SMS code.
const SMSCodeDigits = 6

const (
	// challengeIDBytes is 128 bits: unguessable, so a challenge ID can be
	// handed to the client.
	challengeIDBytes = 16
	// expiredRetention keeps a challenge in Redis this long after it
	// expires, so a late verification gets ErrExpired instead of
	// ErrNotFound.
	expiredRetention = 10 * time.Minute
	// minSMSSecret is the shortest accepted HMAC key: the SHA-256 size.
	minSMSSecret = 32
)

var (
	//go:embed lua/sms_issue.lua
	smsIssueLua string
	//go:embed lua/sms_verify.lua
	smsVerifyLua string
	//go:embed lua/sms_withdraw.lua
	smsWithdrawLua string

	// Immutable after init: redis.Script only caches its SHA.
	smsIssueScript    = redis.NewScript(smsIssueLua)
	smsVerifyScript   = redis.NewScript(smsVerifyLua)
	smsWithdrawScript = redis.NewScript(smsWithdrawLua)
)

// SMSConfig configures SMSCodes. Start from DefaultSMSConfig and set Secret.
type SMSConfig struct {
	// CodeTTL is how long a code is valid.
	CodeTTL time.Duration
	// MaxAttempts wrong codes void a challenge.
	MaxAttempts int
	// At most MaxSendsPerWindow codes of one purpose go to one phone in
	// any SendWindow, and at least Cooldown passes between two of them
	// (each purpose has its own window).
	SendWindow        time.Duration
	MaxSendsPerWindow int
	Cooldown          time.Duration
	// At most MaxSendsPerIP codes are requested from one client address
	// (an IPv6 /64 counts as one address) in any PerIPWindow.
	PerIPWindow   time.Duration
	MaxSendsPerIP int
	// Secret keys the HMAC under which codes are stored; at least 32
	// bytes, the same on every instance. Changing it invalidates the codes
	// in flight, nothing else.
	Secret []byte
	// Now is the clock; nil means time.Now. Every expiry and window
	// decision uses it, not the Redis server's clock.
	Now func() time.Time
	// KeyPrefix starts every Redis key. On Redis Cluster it must contain a
	// hash tag ("{…}"), because one script touches several keys.
	KeyPrefix string
}

// DefaultSMSConfig returns the defaults the requirements set: 5-minute codes, 5
// attempts, 5 sends per phone per 10 minutes, 30 s between sends, 20 sends
// per client address per hour, keys under "otp:{sms}:" (one hash slot). The
// Secret is left empty and must be set.
func DefaultSMSConfig() SMSConfig {
	return SMSConfig{
		CodeTTL:           5 * time.Minute,
		MaxAttempts:       5,
		SendWindow:        10 * time.Minute,
		MaxSendsPerWindow: 5,
		Cooldown:          30 * time.Second,
		PerIPWindow:       time.Hour,
		MaxSendsPerIP:     20,
		Now:               time.Now,
		KeyPrefix:         "otp:{sms}:",
	}
}

// Validate reports the first invalid field, if any.
func (c SMSConfig) Validate() error {
	switch {
	case c.CodeTTL < time.Second:
		return errors.New("otp: sms config: CodeTTL must be at least 1s")
	case c.MaxAttempts < 1:
		return errors.New("otp: sms config: MaxAttempts must be positive")
	case c.SendWindow < time.Millisecond || c.MaxSendsPerWindow < 1:
		return errors.New("otp: sms config: SendWindow and MaxSendsPerWindow must be positive")
	case c.Cooldown < 0:
		return errors.New("otp: sms config: Cooldown must not be negative")
	case c.PerIPWindow < time.Millisecond || c.MaxSendsPerIP < 1:
		return errors.New("otp: sms config: PerIPWindow and MaxSendsPerIP must be positive")
	case len(c.Secret) < minSMSSecret:
		return fmt.Errorf("otp: sms config: Secret must be at least %d bytes", minSMSSecret)
	case c.KeyPrefix == "":
		return errors.New("otp: sms config: KeyPrefix must not be empty")
	}
	return nil
}

// Challenge is an issued SMS code's public half: what the client gets back
// and what Verify reports. ID is a random 128-bit URL-safe string.
type Challenge struct {
	ID        string
	Phone     string
	Purpose   string
	ExpiresAt time.Time
	// Subject is what the challenge was bound to when issued (see
	// IssueOptions); empty when it was bound to nothing.
	Subject string
}

// IssueOptions are the optional parts of a challenge.
type IssueOptions struct {
	// Subject is bound to the challenge and returned with it by Verify,
	// Peek and Subject: what the code is for beyond the phone, such as
	// the account a password reset resets. At most MaxSubjectBytes.
	Subject string
	// Window keys the per-purpose send window and cooldown instead of the
	// phone: letters, digits, "-" and "_", at most 64 bytes. A flow that
	// several identifiers of one account lead to keys it by the
	// identifier given, so that two identifiers of one account do not
	// share, and so reveal, one window.
	Window string
	// Bound, when set, counts the send against its phone's bound as well,
	// in the same atomic step (see Bound).
	Bound *Bound
	// Budget, when set, counts the send against a cap shared by every
	// phone and address (see Budget); Known says the phone may use the
	// budget's reserve.
	Budget *Budget
	Known  bool
}

// Budget caps the sends of all callers that pass one with the same Name,
// whatever the phone and the address, per fixed Window (aligned to the
// epoch): at most Limit sends a window, of which phones not Known may use
// only Share. It is checked before anything else and counted only when
// the code is issued, so a refusal (ErrBudget, or ErrBudgetShare when
// only the share is spent) leaves no trace and the caller may ask again
// as Known. A province pays for every SMS; the budget bounds what
// strangers asking codes for many numbers from many addresses can cost.
type Budget struct {
	Name         string // letters, digits, "-" and "_"
	Limit, Share int
	Window       time.Duration
}

// Bound limits the codes one phone is sent over and above the send
// windows, whatever their purpose: Free sends cost nothing, each
// further one makes the next wait Base, then twice as long, and so on up
// to Max; the sends are forgotten Forget after the last one (and a
// minute, as a margin for the callers' clocks). It is checked after the
// send limits passed and the send was recorded in them: a send it
// refuses (ErrPhoneBound) is not counted in it, but stays counted in the
// phone's window and the address's; one the send limits refuse is not
// counted in it. All callers that pass a Bound share one per phone.
type Bound struct {
	Free      int
	Base, Max time.Duration
	Forget    time.Duration
}

// boundMargin keeps a bound's key a little past Forget, so that the
// callers' clock, not Redis's, decides.
const boundMargin = time.Minute

// MaxSubjectBytes bounds IssueOptions.Subject.
const MaxSubjectBytes = 200

// SMSCodes issues and verifies SMS one-time codes. All state lives in Redis
// (nothing of it needs to survive longer than a code), and each operation
// is one Lua script, so any number of instances can share a Redis. Only an
// HMAC of each code is stored; the code itself is returned once by Issue and
// is never stored or logged here. Safe for concurrent use.
type SMSCodes struct {
	rdb redis.UniversalClient
	cfg SMSConfig
}

// NewSMSCodes validates cfg and returns an SMSCodes on rdb. It does not
// contact Redis.
func NewSMSCodes(rdb redis.UniversalClient, cfg SMSConfig) (*SMSCodes, error) {
	if rdb == nil {
		return nil, errors.New("otp: new sms codes: nil redis client")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch rdb.(type) {
	case *redis.ClusterClient, *redis.Ring:
		if !hasHashTag(cfg.KeyPrefix) {
			return nil, fmt.Errorf("otp: new sms codes: KeyPrefix %q needs a {hash tag} on a sharded Redis", cfg.KeyPrefix)
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Secret = append([]byte(nil), cfg.Secret...)
	return &SMSCodes{rdb: rdb, cfg: cfg}, nil
}

// Issue creates a challenge and its 6-digit code for phone (digits only,
// already normalised, e.g. 84912345678) and purpose (a Purpose* constant),
// requested from clientIP (an address, optionally with a port; "" only for
// sends that have no end-user address, which skips the per-address limit).
//
// The limits are checked and the send recorded in one atomic step. A
// refusal is a *RateLimitError wrapping ErrCooldown, ErrTooManySends or
// ErrTooManyFromIP, with nothing recorded. The per-phone window and
// cooldown are per purpose, so one flow's requests never use up
// another's; issuing never voids an earlier challenge (each lives until
// used, out of attempts or expired). Invalid arguments give
// ErrUnknownPurpose or ErrInvalidInput; Redis failures are wrapped.
//
// The code is returned to be put into the SMS and must not be logged or
// stored. Safe for concurrent use.
func (s *SMSCodes) Issue(ctx context.Context, phone, purpose, clientIP string) (Challenge, string, error) {
	return s.IssueWith(ctx, phone, purpose, clientIP, IssueOptions{})
}

// BudgetUsed returns how many sends b has counted in its current window
// (0 when none): what an operator's gauge shows of a budget's hour.
func (s *SMSCodes) BudgetUsed(ctx context.Context, b Budget) (int, error) {
	if b.Window < time.Second || !validWindow(b.Name) {
		return 0, fmt.Errorf("otp: budget used: %w", ErrInvalidInput)
	}
	w := b.Window.Milliseconds()
	nowMs := s.cfg.Now().UnixMilli()
	n, err := s.rdb.Get(ctx, s.cfg.KeyPrefix+"budget:"+b.Name+":"+strconv.FormatInt(nowMs-nowMs%w, 10)).Int()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("otp: budget used: %w", err)
	}
	return n, nil
}

// IssueWith is Issue with the challenge bound to o.Subject and its send
// window keyed by o.Window when set. An invalid option is
// ErrInvalidInput.
func (s *SMSCodes) IssueWith(ctx context.Context, phone, purpose, clientIP string, o IssueOptions) (Challenge, string, error) {
	if !knownPurpose(purpose) {
		return Challenge{}, "", fmt.Errorf("otp: issue: %q: %w", purpose, ErrUnknownPurpose)
	}
	if !validPhone(phone) {
		return Challenge{}, "", fmt.Errorf("otp: issue: phone: %w", ErrInvalidInput)
	}
	if len(o.Subject) > MaxSubjectBytes {
		return Challenge{}, "", fmt.Errorf("otp: issue: subject: %w", ErrInvalidInput)
	}
	if b := o.Bound; b != nil && (b.Free < 0 || b.Base <= 0 || b.Max < b.Base || b.Forget <= 0) {
		return Challenge{}, "", fmt.Errorf("otp: issue: bound: %w", ErrInvalidInput)
	}
	if g := o.Budget; g != nil && (g.Limit < 1 || g.Share < 0 || g.Share > g.Limit || g.Window < time.Second || !validWindow(g.Name)) {
		return Challenge{}, "", fmt.Errorf("otp: issue: budget: %w", ErrInvalidInput)
	}
	window := phone
	if o.Window != "" {
		if !validWindow(o.Window) {
			return Challenge{}, "", fmt.Errorf("otp: issue: window: %w", ErrInvalidInput)
		}
		window = "w:" + o.Window
	}
	ipKey := ""
	if clientIP != "" {
		addr, err := rateLimitAddr(clientIP)
		if err != nil {
			return Challenge{}, "", fmt.Errorf("otp: issue: client ip: %w", ErrInvalidInput)
		}
		ipKey = s.cfg.KeyPrefix + "ip:" + addr
	}

	id, err := newChallengeID()
	if err != nil {
		return Challenge{}, "", fmt.Errorf("otp: issue: %w", err)
	}
	code, err := newSMSCode()
	if err != nil {
		return Challenge{}, "", fmt.Errorf("otp: issue: %w", err)
	}
	now := s.cfg.Now()
	nowMs := now.UnixMilli()
	expMs := nowMs + s.cfg.CodeTTL.Milliseconds()
	keys := []string{
		s.cfg.KeyPrefix + "sent:" + window + ":" + purpose,
		s.challengeKey(id),
	}
	ipAt, boundAt := 0, 0
	if ipKey != "" {
		keys = append(keys, ipKey)
		ipAt = len(keys)
	}
	var bound Bound
	if o.Bound != nil {
		bound = *o.Bound
		keys = append(keys, s.cfg.KeyPrefix+"bound:"+phone)
		boundAt = len(keys)
	}
	budgetAt, budgetMax, budgetLimit, budgetLeft := 0, 0, 0, int64(0)
	if g := o.Budget; g != nil {
		w := g.Window.Milliseconds()
		start := nowMs - nowMs%w
		keys = append(keys, s.cfg.KeyPrefix+"budget:"+g.Name+":"+strconv.FormatInt(start, 10))
		budgetAt, budgetLimit, budgetMax, budgetLeft = len(keys), g.Limit, g.Share, start+w-nowMs
		if o.Known {
			budgetMax = g.Limit
		}
	}
	res, err := smsIssueScript.Run(ctx, s.rdb, keys,
		nowMs,
		nowMs-s.cfg.SendWindow.Milliseconds(),
		s.cfg.SendWindow.Milliseconds(),
		s.cfg.MaxSendsPerWindow,
		s.cfg.Cooldown.Milliseconds(),
		nowMs-s.cfg.PerIPWindow.Milliseconds(),
		s.cfg.PerIPWindow.Milliseconds(),
		s.cfg.MaxSendsPerIP,
		id,
		s.mac(id, code),
		phone,
		purpose,
		expMs,
		(s.cfg.CodeTTL + expiredRetention).Milliseconds(),
		o.Subject,
		ipAt,
		boundAt,
		bound.Free,
		bound.Base.Milliseconds(),
		bound.Max.Milliseconds(),
		(bound.Forget + boundMargin).Milliseconds(),
		budgetAt,
		budgetMax,
		budgetLimit,
		budgetLeft,
	).Int64Slice()
	if err != nil {
		return Challenge{}, "", fmt.Errorf("otp: issue: %w", err)
	}
	switch res[0] {
	case 0:
		return Challenge{ID: id, Phone: phone, Purpose: purpose, ExpiresAt: time.UnixMilli(expMs), Subject: o.Subject}, code, nil
	case 1:
		return Challenge{}, "", &RateLimitError{Err: ErrCooldown, RetryAfter: retryAfter(res[1], s.cfg.Cooldown)}
	case 2:
		return Challenge{}, "", &RateLimitError{Err: ErrTooManySends, RetryAfter: retryAfter(res[1], s.cfg.SendWindow)}
	case 3:
		return Challenge{}, "", &RateLimitError{Err: ErrTooManyFromIP, RetryAfter: retryAfter(res[1], s.cfg.PerIPWindow)}
	case 4:
		return Challenge{}, "", &RateLimitError{Err: ErrPhoneBound, RetryAfter: retryAfter(res[1], bound.Max)}
	case 5:
		return Challenge{}, "", &RateLimitError{Err: ErrBudget, RetryAfter: retryAfter(res[1], o.Budget.Window)}
	case 6:
		return Challenge{}, "", &RateLimitError{Err: ErrBudgetShare, RetryAfter: retryAfter(res[1], o.Budget.Window)}
	}
	return Challenge{}, "", fmt.Errorf("otp: issue: unexpected script result %v", res)
}

// Verify checks code against challenge challengeID, in one atomic step, and
// returns the challenge on success. The caller must then check that
// Challenge.Purpose (and Phone) are what the flow expects: a login code must
// not complete a registration. Errors, in the order they are decided:
//
//   - ErrNotFound: no such challenge (or a malformed ID);
//   - ErrExpired: CodeTTL has passed since it was issued;
//   - ErrVoid: already used once, superseded by a resend, or MaxAttempts
//     wrong codes were given;
//   - ErrWrongCode: the code is wrong; the attempt is counted and the
//     MaxAttempts-th one voids the challenge.
//
// A right code succeeds exactly once, however many verifications race.
// Redis failures are wrapped. Safe for concurrent use.
func (s *SMSCodes) Verify(ctx context.Context, challengeID, code string) (Challenge, error) {
	return s.verify(ctx, challengeID, code, "use")
}

// Peek is Verify without using the challenge: a right code leaves it
// live (for a flow that must check more before it consumes the code with
// Verify), a wrong one counts as an attempt all the same. Errors as
// Verify's. Safe for concurrent use.
func (s *SMSCodes) Peek(ctx context.Context, challengeID, code string) (Challenge, error) {
	return s.verify(ctx, challengeID, code, "peek")
}

// Subject returns the subject challengeID was issued with ("" for none),
// without checking a code, so that a flow can apply its own limits to
// what the code is for before any attempt. Errors: ErrNotFound for an
// unknown (or collected) challenge; Redis failures are wrapped. Safe for
// concurrent use.
func (s *SMSCodes) Subject(ctx context.Context, challengeID string) (string, error) {
	if !validChallengeID(challengeID) {
		return "", fmt.Errorf("otp: subject: %w", ErrNotFound)
	}
	v, err := s.rdb.HMGet(ctx, s.challengeKey(challengeID), "mac", "subject").Result()
	if err != nil {
		return "", fmt.Errorf("otp: subject: %w", err)
	}
	if v[0] == nil {
		return "", fmt.Errorf("otp: subject: %w", ErrNotFound)
	}
	subject, _ := v[1].(string)
	return subject, nil
}

// Withdraw takes back a challenge whose code could not be sent (the
// publish failed or its outcome is unknown), in one atomic step: the
// challenge is void, so a copy of the code that still reaches the phone
// later does not work, and it no longer counts against the per-phone
// window, cooldown and per-address limit it was counted in, so the person
// may ask again at once. It reports whether a live challenge was
// withdrawn (false for an unknown, used or void one). Redis failures are
// wrapped. Safe for concurrent use.
func (s *SMSCodes) Withdraw(ctx context.Context, challengeID string) (bool, error) {
	if !validChallengeID(challengeID) {
		return false, nil
	}
	key := s.challengeKey(challengeID)
	v, err := s.rdb.HMGet(ctx, key, "wk", "ik").Result()
	if err != nil {
		return false, fmt.Errorf("otp: withdraw: %w", err)
	}
	wk, _ := v[0].(string)
	ik, _ := v[1].(string)
	if wk == "" {
		return false, nil // unknown or collected
	}
	keys := []string{key, wk}
	if ik != "" {
		keys = append(keys, ik)
	}
	n, err := smsWithdrawScript.Run(ctx, s.rdb, keys, challengeID).Int()
	if err != nil {
		return false, fmt.Errorf("otp: withdraw: %w", err)
	}
	return n == 1, nil
}

// QueueWithdrawn queues on pipe the look-up of whether the challenge
// challengeID, under keyPrefix (SMSConfig.KeyPrefix), was withdrawn
// (Withdraw): its code must not be sent if the Kafka client still
// delivers it after its request was refused. It needs no secret, so a
// dispatcher can ask, in the round trip that claims the code. It returns
// what reads the answer once pipe has been executed: an unknown (or
// collected) challenge is not withdrawn, and Redis failures are wrapped.
// It queues nothing for a malformed challenge ID, whose answer is false.
func QueueWithdrawn(ctx context.Context, pipe redis.Pipeliner, keyPrefix, challengeID string) func() (bool, error) {
	if !validChallengeID(challengeID) {
		return func() (bool, error) { return false, nil }
	}
	cmd := pipe.HGet(ctx, keyPrefix+"ch:"+challengeID, "state")
	return func() (bool, error) { return withdrawnState(cmd) }
}

// withdrawnState reads a challenge's state look-up: withdrawn or not.
func withdrawnState(cmd *redis.StringCmd) (bool, error) {
	st, err := cmd.Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("otp: withdrawn: %w", err)
	}
	return st == "withdrawn", nil
}

func (s *SMSCodes) verify(ctx context.Context, challengeID, code, mode string) (Challenge, error) {
	if !validChallengeID(challengeID) {
		return Challenge{}, fmt.Errorf("otp: verify: %w", ErrNotFound)
	}
	code = strings.TrimSpace(code)
	// Malformed codes go through the script like any wrong code: they are
	// guesses and count as attempts.
	res, err := smsVerifyScript.Run(ctx, s.rdb, []string{s.challengeKey(challengeID)},
		s.cfg.Now().UnixMilli(), s.mac(challengeID, code), s.cfg.MaxAttempts, mode).Slice()
	if err != nil {
		return Challenge{}, fmt.Errorf("otp: verify: %w", err)
	}
	status, _ := res[0].(int64)
	switch status {
	case 0:
		phone, _ := res[1].(string)
		purpose, _ := res[2].(string)
		expStr, _ := res[3].(string)
		subject, _ := res[4].(string)
		exp, err := strconv.ParseInt(expStr, 10, 64)
		if err != nil {
			return Challenge{}, fmt.Errorf("otp: verify: corrupt challenge expiry %q", expStr)
		}
		return Challenge{ID: challengeID, Phone: phone, Purpose: purpose, ExpiresAt: time.UnixMilli(exp), Subject: subject}, nil
	case 1:
		return Challenge{}, fmt.Errorf("otp: verify: %w", ErrNotFound)
	case 2:
		return Challenge{}, fmt.Errorf("otp: verify: %w", ErrExpired)
	case 3:
		return Challenge{}, fmt.Errorf("otp: verify: %w", ErrVoid)
	case 4:
		return Challenge{}, fmt.Errorf("otp: verify: %w", ErrWrongCode)
	default:
		return Challenge{}, fmt.Errorf("otp: verify: unexpected script result %v", res)
	}
}

// Text renders the SMS text for purpose and code with the configured
// CodeTTL; see SMSText.
func (s *SMSCodes) Text(purpose, code string) (string, error) {
	return SMSText(purpose, code, s.cfg.CodeTTL)
}

func (s *SMSCodes) challengeKey(id string) string {
	return s.cfg.KeyPrefix + "ch:" + id
}

// mac binds the code to its challenge, so equal codes of two challenges
// hash differently and a stored HMAC is useless for any other challenge.
func (s *SMSCodes) mac(challengeID, code string) string {
	m := hmac.New(sha256.New, s.cfg.Secret)
	m.Write([]byte(challengeID))
	m.Write([]byte{'|'})
	m.Write([]byte(code))
	return hex.EncodeToString(m.Sum(nil))
}

// newSMSCode draws a uniform 6-digit code: rand.Int rejects samples instead
// of reducing modulo 10^6, so there is no bias.
func newSMSCode() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%06d", n.Int64()), nil
}

func newChallengeID() (string, error) {
	var b [challengeIDBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func validChallengeID(id string) bool {
	if len(id) != base64.RawURLEncoding.EncodedLen(challengeIDBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(id)
	return err == nil
}

// validWindow accepts what may go into a Redis key unescaped.
func validWindow(w string) bool {
	if len(w) > 64 {
		return false
	}
	for i := 0; i < len(w); i++ {
		c := w[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validPhone accepts E.164 digits without "+": normalising (0912… to
// 84912…) is the accounts package's job, but anything else must not reach
// a Redis key.
func validPhone(p string) bool {
	return len(p) >= 8 && len(p) <= 15 && allDigits(p)
}

// rateLimitAddr turns "ip" or "ip:port" into the unit of the per-address
// limit: the IPv4 address, or the IPv6 /64 (one customer line hands out a
// whole /64, so counting single IPv6 addresses would be no limit at all).
func rateLimitAddr(s string) (string, error) {
	addr, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		if perr != nil {
			return "", err
		}
		addr = ap.Addr()
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is4() {
		return addr.String(), nil
	}
	p, err := addr.Prefix(64)
	if err != nil {
		return "", err
	}
	return p.String(), nil
}

// retryAfter converts a script's wait to a duration within (0, limit]: the
// injected clock may step backwards, which must not yield absurd waits.
func retryAfter(ms int64, limit time.Duration) time.Duration {
	d := time.Duration(ms) * time.Millisecond
	if d > limit {
		d = limit
	}
	if d < time.Millisecond {
		d = time.Millisecond
	}
	return d
}

func hasHashTag(prefix string) bool {
	i := strings.IndexByte(prefix, '{')
	if i < 0 {
		return false
	}
	j := strings.IndexByte(prefix[i+1:], '}')
	return j > 0
}
