package otp

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// FactorStore persists one official's TOTP factor. Implementations must make
// AdvanceStep atomic: succeed only when step > the stored last step (compare-and-set),
// so two racing verifications of one code cannot both succeed.
//
// AdvanceStep returns (true, nil) when it stored step, (false, nil) when the
// stored last step is already ≥ step, and an error when it could not tell.
// A factor that has never accepted a code has no last step, so any step
// succeeds. A SQL implementation is one statement:
//
//	UPDATE totp_factors SET last_step = $2 WHERE id = $1 AND (last_step IS NULL OR last_step < $2)
//
// and succeeds when it updated one row.
type FactorStore interface {
	AdvanceStep(ctx context.Context, factorID string, step int64) (bool, error)
}

// Lockout defaults: 5 failures in 5 minutes lock for 15 minutes.
const (
	DefaultTOTPMaxFailures   = 5
	DefaultTOTPFailureWindow = 5 * time.Minute
	DefaultTOTPLockDuration  = 15 * time.Minute
	DefaultTOTPKeyPrefix     = "otp:totp:"
)

var (
	//go:embed lua/totp_begin.lua
	totpBeginLua string
	//go:embed lua/totp_finish.lua
	totpFinishLua string

	// Immutable after init: redis.Script only caches its SHA.
	totpBeginScript  = redis.NewScript(totpBeginLua)
	totpFinishScript = redis.NewScript(totpFinishLua)
)

// TOTPVerifier checks officials' TOTP codes: skew ±1 step, replay refusal
// through Store (RFC 6238 §5.2), and lockout after repeated failures, kept
// in Redis under KeyPrefix+"fail:{factorID}" (sorted set of recent failures)
// and KeyPrefix+"lock:{factorID}" (locked-until time). The braces are a
// Redis Cluster hash tag, keeping both keys of a factor in one slot.
//
// Zero-valued optional fields take the Default* values; Store and Redis are
// required. All time decisions use Now (default time.Now), passed to Redis
// as script arguments; Redis TTLs only collect garbage, so tests can move
// the clock without sleeping. A TOTPVerifier must not be modified after
// first use and is then safe for concurrent use.
type TOTPVerifier struct {
	Store FactorStore
	Redis redis.UniversalClient
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// KeyPrefix prefixes the Redis keys; "" means DefaultTOTPKeyPrefix.
	KeyPrefix string
	// MaxFailures failures within FailureWindow lock the factor for
	// LockDuration.
	MaxFailures   int
	FailureWindow time.Duration
	LockDuration  time.Duration
}

// Verify checks code against the factor's base32 secret (already opened with
// a Sealer) and, on success, records its time step through Store so it can
// never be accepted again. It returns nil on success, or an error matching:
//
//   - ErrLocked: the factor is locked (even a right code is refused), or
//     MaxFailures verifications are already in flight for it;
//   - ErrInvalidCode: no match; the failure is counted, and the one that
//     reaches MaxFailures locks the factor;
//   - ErrReplay: the code is right but its step was already accepted
//     (a repeated or racing submission); not counted as a failure;
//   - ErrInvalidInput for an empty factorID, or a Redis/Store error, wrapped.
//
// A successful verification clears the failure count. An attempt in flight
// counts as a failure until it completes, which is what bounds concurrent
// guessing; if ctx ends mid-way the attempt is still settled (without ctx's
// cancellation). Safe for concurrent use.
func (v *TOTPVerifier) Verify(ctx context.Context, factorID, secret, code string) error {
	return v.VerifyFor(ctx, factorID, "", secret, code)
}

// VerifyFor is Verify with failures counted, and the lock kept, per
// client: a shared app's wrong guesses lock the factor for that app only,
// never for the official's own sign-in (another client). Replay refusal
// is shared: a code accepted for one client is refused for every other.
// client is "" or a short name without braces.
func (v *TOTPVerifier) VerifyFor(ctx context.Context, factorID, client, secret, code string) error {
	if v.Store == nil || v.Redis == nil {
		return errors.New("otp: verify totp: TOTPVerifier needs Store and Redis")
	}
	if factorID == "" || strings.ContainsAny(factorID, "{}") || strings.ContainsAny(client, "{}") {
		return fmt.Errorf("otp: verify totp: factor id: %w", ErrInvalidInput)
	}
	now := v.now()
	a := v.attempt(factorID, client, now)

	res, err := totpBeginScript.Run(ctx, v.Redis, a.keys, a.args("", 0)...).Int64Slice()
	if err != nil {
		return fmt.Errorf("otp: verify totp: %w", err)
	}
	switch res[0] {
	case 0:
	case 1:
		return fmt.Errorf("otp: verify totp: locked until %s: %w", time.UnixMilli(res[1]).UTC().Format(time.RFC3339), ErrLocked)
	default:
		return fmt.Errorf("otp: verify totp: too many attempts in flight: %w", ErrLocked)
	}

	outcome, err := v.check(ctx, factorID, secret, code, now)
	// Settle even when ctx has ended: an unsettled attempt would count as a
	// failure for a whole window.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if ferr := totpFinishScript.Run(sctx, v.Redis, a.keys, a.args(outcome, v.lockDuration())...).Err(); ferr != nil && err != nil {
		return fmt.Errorf("%w (and settling the attempt: %v)", err, ferr)
	}
	// A failed settlement after a success only leaves old failures
	// uncleared; the code was accepted and stays accepted.
	return err
}

// check returns the finish outcome ("ok", "fail", "neutral") and Verify's
// result.
func (v *TOTPVerifier) check(ctx context.Context, factorID, secret, code string, now time.Time) (string, error) {
	step, ok, err := MatchTOTP(secret, code, now)
	if err != nil {
		return "neutral", fmt.Errorf("otp: verify totp: %w", err)
	}
	if !ok {
		return "fail", fmt.Errorf("otp: verify totp: %w", ErrInvalidCode)
	}
	advanced, err := v.Store.AdvanceStep(ctx, factorID, step)
	if err != nil {
		return "neutral", fmt.Errorf("otp: verify totp: advance step: %w", err)
	}
	if !advanced {
		return "neutral", fmt.Errorf("otp: verify totp: %w", ErrReplay)
	}
	return "ok", nil
}

type totpAttempt struct {
	keys                         []string
	now, cutoff, window, max, id string
	nowMs                        int64
}

func (v *TOTPVerifier) attempt(factorID, client string, now time.Time) totpAttempt {
	prefix := v.KeyPrefix
	if prefix == "" {
		prefix = DefaultTOTPKeyPrefix
	}
	window := v.FailureWindow
	if window <= 0 {
		window = DefaultTOTPFailureWindow
	}
	maxFail := v.MaxFailures
	if maxFail <= 0 {
		maxFail = DefaultTOTPMaxFailures
	}
	var id [8]byte
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	ms := now.UnixMilli()
	suffix := ""
	if client != "" {
		suffix = ":" + client
	}
	return totpAttempt{
		keys: []string{
			prefix + "fail:{" + factorID + "}" + suffix,
			prefix + "lock:{" + factorID + "}" + suffix,
		},
		nowMs:  ms,
		now:    strconv.FormatInt(ms, 10),
		cutoff: strconv.FormatInt(ms-window.Milliseconds(), 10),
		window: strconv.FormatInt(window.Milliseconds(), 10),
		max:    strconv.Itoa(maxFail),
		id:     hex.EncodeToString(id[:]),
	}
}

// args builds the scripts' ARGV; begin ignores the finish-only tail.
func (a totpAttempt) args(outcome string, lock time.Duration) []any {
	return []any{a.now, a.cutoff, a.window, a.max, a.id, outcome,
		strconv.FormatInt(lock.Milliseconds(), 10),
		strconv.FormatInt(a.nowMs+lock.Milliseconds(), 10)}
}

func (v *TOTPVerifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *TOTPVerifier) lockDuration() time.Duration {
	if v.LockDuration > 0 {
		return v.LockDuration
	}
	return DefaultTOTPLockDuration
}

// MemFactorStore is an in-memory FactorStore for tests and single-process
// tools. The zero value is ready; it is safe for concurrent use.
type MemFactorStore struct {
	mu   sync.Mutex
	last map[string]int64
}

var _ FactorStore = (*MemFactorStore)(nil)

// AdvanceStep implements FactorStore with a compare-and-set under a mutex.
// It never returns an error.
func (m *MemFactorStore) AdvanceStep(_ context.Context, factorID string, step int64) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if last, ok := m.last[factorID]; ok && step <= last {
		return false, nil
	}
	if m.last == nil {
		m.last = make(map[string]int64)
	}
	m.last[factorID] = step
	return true, nil
}

// LastStep returns the last accepted step of factorID, and false if none.
func (m *MemFactorStore) LastStep(factorID string) (int64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.last[factorID]
	return s, ok
}
