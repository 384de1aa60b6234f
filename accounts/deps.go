package accounts

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loa-hub/loa/otp"
	"github.com/loa-hub/loa/producer"
)

// Store is the durable state of the accounts domain. internal/sqlstore
// implements it on PostgreSQL and SQLite; every method is safe for
// concurrent use and returns ErrNotFound for a missing row.
type Store interface {
	// CreateAccount inserts a; a user name, or a citizen ID, tax code or
	// verified phone of another active account, is Taken(field)
	// naming it.
	CreateAccount(ctx context.Context, a Account) error
	// Account returns the account with the id.
	Account(ctx context.Context, id string) (Account, error)
	// FindAccount returns the first of FindAccounts, or ErrNotFound.
	FindAccount(ctx context.Context, l Login) (Account, error)
	// FindAccounts returns the active accounts matching any non-empty
	// identifier of l (user name, citizen ID, tax code, verified phone),
	// a user name first, then a citizen ID, a tax code, a phone. Pending
	// and closed accounts never match.
	FindAccounts(ctx context.Context, l Login) ([]Account, error)
	// DeletePendingAccounts removes the pending registrations created
	// before before, returning how many.
	DeletePendingAccounts(ctx context.Context, before time.Time) (int, error)
	// ActivateAccount marks a pending account's phone verified and the
	// account active; another active account with the citizen ID, tax
	// code or phone is Taken(field).
	ActivateAccount(ctx context.Context, id string, at time.Time) error
	// SetPassword stores a new password hash and records it in the
	// history.
	SetPassword(ctx context.Context, id, hash string, at time.Time) error
	// PasswordHistory returns up to n hashes the account has had, newest
	// first, the current one included.
	PasswordHistory(ctx context.Context, id string, n int) ([]string, error)
	// CloseAccount closes the account and deactivates its devices.
	CloseAccount(ctx context.Context, id string, at time.Time) error

	// SSOLink returns the link of the identity (issuer, subject), or with
	// both empty the link of accountID; ErrNotFound when there is none.
	SSOLink(ctx context.Context, issuer, subject, accountID string) (SSOLink, error)
	// LinkSSO stores l unless its identity or its account is linked
	// already; it reports whether it stored it.
	LinkSSO(ctx context.Context, l SSOLink) (bool, error)
	// UnlinkSSO removes the account's link; it reports whether it had one.
	UnlinkSSO(ctx context.Context, accountID string) (bool, error)

	GrantRole(ctx context.Context, accountID string, g RoleGrant, by string, at time.Time) error
	// RevokeRole reports whether the grant existed.
	RevokeRole(ctx context.Context, accountID string, g RoleGrant) (bool, error)
	RoleGrants(ctx context.Context, accountID string) ([]RoleGrant, error)
	// RoleGrantRecords is RoleGrants with who granted each role and when.
	RoleGrantRecords(ctx context.Context, accountID string) ([]GrantRecord, error)

	// CreateTOTPFactor stores a pending factor, replacing any pending one
	// of the same account.
	CreateTOTPFactor(ctx context.Context, f TOTPFactor) error
	// TOTPFactor returns the account's factor with the status ("pending"
	// or "active").
	TOTPFactor(ctx context.Context, accountID, status string) (TOTPFactor, error)
	// ActivateTOTPFactor makes a pending factor the account's active one
	// (replacing an earlier one) and replaces its recovery codes, in one
	// transaction.
	ActivateTOTPFactor(ctx context.Context, factorID string, recoveryHashes []string, at time.Time) error
	// AdvanceStep is otp.FactorStore's compare-and-set of the last
	// accepted time step.
	AdvanceStep(ctx context.Context, factorID string, step int64) (bool, error)
	// RecoveryCodes returns the account's unused recovery codes.
	RecoveryCodes(ctx context.Context, accountID string) ([]RecoveryCode, error)
	// UseRecoveryCode marks a code used; false when it already was.
	UseRecoveryCode(ctx context.Context, id string, at time.Time) (bool, error)

	// UpsertDevice registers d.Token for d.AccountID and reactivates it.
	// A token active on another account moves only when move is set;
	// otherwise it is ErrDeviceHeld and stays.
	UpsertDevice(ctx context.Context, d Device, move bool) (Device, error)
	// TrimDevices deletes the account's devices but the keep most
	// recently registered, and returns how many it deleted.
	TrimDevices(ctx context.Context, accountID string, keep int) (int, error)
	// DeleteDevice removes the account's device; false when it has none
	// with the id.
	DeleteDevice(ctx context.Context, accountID, deviceID string) (bool, error)

	// ExistingAreas returns which of codes are known areas.
	ExistingAreas(ctx context.Context, codes []string) ([]string, error)
	SetSubscriptions(ctx context.Context, accountID string, s Subscriptions, at time.Time) error
	Subscriptions(ctx context.Context, accountID string) (Subscriptions, error)

	// AppendAudit adds an entry to the append-only audit log.
	AppendAudit(ctx context.Context, e AuditEntry) error
}

// Login names an account by any of its sign-in identifiers; empty fields
// are ignored.
type Login struct {
	Username  string
	CitizenID string
	TaxCode   string
	Phone     string // matched only against verified phones
}

// Session is a signed-in account's state, kept (under the hash of its
// token) by a SessionStore.
type Session struct {
	AccountID string
	Kind      Kind
	// Restricted sessions (password expired) may only change the password.
	Restricted bool
	CreatedAt  time.Time
	ExpiresAt  time.Time
}

// SessionStore keeps sessions by the SHA-256 of their token, with expiry,
// and revokes them one by one or per account. accounts/redis implements it.
type SessionStore interface {
	// CreateSession stores s under hash, unless the account is blocked
	// (ErrForbidden).
	CreateSession(ctx context.Context, hash string, s Session) error
	// Session returns the session under hash, or ErrNotFound.
	Session(ctx context.Context, hash string) (Session, error)
	DeleteSession(ctx context.Context, hash string) error
	// RevokeAccount deletes every session of the account and, with block
	// > 0, refuses new ones for that long (closing an account while a
	// sign-in is in flight).
	RevokeAccount(ctx context.Context, accountID string, block time.Duration) error
}

// Backoff is how failures of one key are throttled: Free failures cost
// nothing, each further one makes the key wait Base, then twice as long,
// and so on up to Max; failures are forgotten Forget after the last one.
type Backoff struct {
	Free      int
	Base, Max time.Duration
	Forget    time.Duration
}

// Throttle counts failures per key (an account, a client address, a
// recovery-code path) and says how long a key must wait before its next
// attempt. accounts/redis implements it; times come from the caller's
// clock.
type Throttle interface {
	// Wait returns how long key must still wait at now (0: it may try).
	Wait(ctx context.Context, key string, now time.Time) (time.Duration, error)
	// Fail records a failure of key at now under b and returns the wait
	// it imposes (0 while failures are free).
	Fail(ctx context.Context, key string, now time.Time, b Backoff) (time.Duration, error)
	// Take is Fail for a use that is allowed only while key need not
	// wait, in one atomic step: it returns how long key must still wait
	// (the use is refused and not counted), or 0 when the use was counted
	// — the use that makes key wait is itself allowed.
	Take(ctx context.Context, key string, now time.Time, b Backoff) (time.Duration, error)
	// Clear forgets key's failures.
	Clear(ctx context.Context, key string) error
}

// ChallengeIndex remembers an account's outstanding pushed-code challenge,
// one per client (Loa's own sign-in, or a shared app), so that a code can
// be verified knowing only the user; the key names both. accounts/redis
// implements it.
type ChallengeIndex interface {
	PutChallenge(ctx context.Context, accountID, challengeID string, ttl time.Duration) error
	// Challenge returns the challenge id, or "" when there is none.
	Challenge(ctx context.Context, accountID string) (string, error)
	DeleteChallenge(ctx context.Context, accountID string) error
}

// CodeSender issues and verifies SMS codes; *otp.SMSCodes implements it.
type CodeSender interface {
	IssueWith(ctx context.Context, phone, purpose, clientIP string, o otp.IssueOptions) (otp.Challenge, string, error)
	Verify(ctx context.Context, challengeID, code string) (otp.Challenge, error)
	// Subject returns what a challenge was bound to, before any attempt.
	Subject(ctx context.Context, challengeID string) (string, error)
	// Peek checks a code without using it up (a wrong one still counts).
	Peek(ctx context.Context, challengeID, code string) (otp.Challenge, error)
	Text(purpose, code string) (string, error)
	// Withdraw voids a challenge whose code could not be sent and takes
	// it out of the send limits; it reports whether one was live.
	Withdraw(ctx context.Context, challengeID string) (bool, error)
}

// TOTPChecker verifies TOTP codes with replay refusal and lockout, the
// lockout counted per client; *otp.TOTPVerifier implements it.
type TOTPChecker interface {
	VerifyFor(ctx context.Context, factorID, client, secret, code string) error
}

// SecretSealer encrypts TOTP secrets at rest; *otp.Sealer implements it.
type SecretSealer interface {
	Seal(plaintext, associatedData []byte) ([]byte, error)
	Open(sealed, associatedData []byte) ([]byte, error)
}

// Publisher puts events on Kafka; *kafkapub.Publisher implements it.
type Publisher interface {
	Publish(ctx context.Context, e producer.Envelope) error
}

// Identity is what a verified single sign-on ID token says about its
// holder.
type Identity struct {
	Issuer   string // iss
	Subject  string // sub: with Issuer, who the holder is
	Username string // preferred_username, may be empty: the holder may change it
}

// SSOLink binds an official's account to a single sign-on identity: the
// issuer and subject of the ID token of their first SSO sign-in.
type SSOLink struct {
	Issuer, Subject string
	AccountID       string
	LinkedAt        time.Time
}

// IDTokenVerifier checks an OpenID Connect ID token's signature, issuer,
// audience and expiry; accounts/oidc implements it. Errors wrap
// ErrBadCredentials for a token that is not acceptable.
type IDTokenVerifier interface {
	Verify(ctx context.Context, rawIDToken string) (Identity, error)
}

// Hasher hashes and verifies passwords. Verify and DummyVerify must cost
// the same, so that an unknown user and a wrong password are answered
// alike. Each may refuse with ErrBusy when too much hashing is under way.
type Hasher interface {
	Hash(pw string) (string, error)
	Verify(hash, pw string) (bool, error)
	// DummyVerify does Verify's work against no account.
	DummyVerify(pw string) error
}

// HashLimit bounds the password hashing of one process: argon2id takes
// Params.Memory per hash, so Concurrency hashes at once hold that many
// times the memory. Up to Queue more wait, each at most Wait, for a turn;
// beyond that, or past the wait, a hash is refused with ErrBusy (the API
// answers 503 with Retry-After).
type HashLimit struct {
	Concurrency int
	Queue       int
	Wait        time.Duration
}

// DefaultHashLimit is 2 hashes at once (128 MiB of argon2id at the
// default 64 MiB), 32 waiting, for at most 3 s each.
func DefaultHashLimit() HashLimit {
	return HashLimit{Concurrency: 2, Queue: 32, Wait: 3 * time.Second}
}

// Validate reports a limit that cannot work.
func (l HashLimit) Validate() error {
	if l.Concurrency < 1 || l.Queue < 0 || l.Wait <= 0 {
		return errors.New("accounts: hash limit: Concurrency must be at least 1, Queue not negative, Wait positive")
	}
	return nil
}

// Argon2Hasher is the Hasher of production: argon2id under Params, at
// most Limit.Concurrency at once (the zero Limit is DefaultHashLimit).
// Its DummyVerify works against a hash made with the same Params, so the
// two paths cost the same whatever the parameters. Safe for concurrent
// use; Params and Limit must not change after the first use.
type Argon2Hasher struct {
	Params Argon2Params
	Limit  HashLimit

	once    sync.Once
	dummy   string
	slots   chan struct{}
	waiting atomic.Int64
}

func (h *Argon2Hasher) init() {
	h.once.Do(func() {
		if h.Limit == (HashLimit{}) {
			h.Limit = DefaultHashLimit()
		}
		h.slots = make(chan struct{}, h.Limit.Concurrency)
		d, err := HashPasswordWith("loa dummy password, matches no account", h.Params)
		if err != nil {
			d = dummyHash
		}
		h.dummy = d
	})
}

// acquire takes a hashing slot, waiting in the bounded queue for at most
// Limit.Wait.
func (h *Argon2Hasher) acquire() error {
	h.init()
	select {
	case h.slots <- struct{}{}:
		return nil
	default:
	}
	if h.waiting.Add(1) > int64(h.Limit.Queue) {
		h.waiting.Add(-1)
		return ErrBusy
	}
	defer h.waiting.Add(-1)
	t := time.NewTimer(h.Limit.Wait)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-t.C:
		return ErrBusy
	}
}

func (h *Argon2Hasher) release() { <-h.slots }

// Hash implements Hasher.
func (h *Argon2Hasher) Hash(pw string) (string, error) {
	if err := h.acquire(); err != nil {
		return "", err
	}
	defer h.release()
	return HashPasswordWith(pw, h.Params)
}

// Verify implements Hasher.
func (h *Argon2Hasher) Verify(hash, pw string) (bool, error) {
	if err := h.acquire(); err != nil {
		return false, err
	}
	defer h.release()
	return VerifyPassword(hash, pw)
}

// DummyVerify implements Hasher.
func (h *Argon2Hasher) DummyVerify(pw string) error {
	if err := h.acquire(); err != nil {
		return err
	}
	defer h.release()
	_, _ = VerifyPassword(h.dummy, pw)
	return nil
}
