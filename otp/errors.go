package otp

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Functions wrap them with context ("otp: verb: ..."), so
// compare with errors.Is, never with ==.
var (
	// ErrInvalidCode: a TOTP code matched no step inside the allowed skew.
	ErrInvalidCode = errors.New("otp: invalid code")
	// ErrReplay: a TOTP code matched, but for a time step at or before the
	// last accepted one (RFC 6238 §5.2), including the loser of two racing
	// verifications of the same code.
	ErrReplay = errors.New("otp: code already used")
	// ErrLocked: the factor is locked after too many failures, or has too
	// many verifications in flight; retry later.
	ErrLocked = errors.New("otp: factor locked")

	// ErrNotFound: no SMS challenge with that ID (never existed, malformed
	// ID, or garbage-collected long after expiry).
	ErrNotFound = errors.New("otp: challenge not found")
	// ErrExpired: the SMS challenge's validity has passed.
	ErrExpired = errors.New("otp: challenge expired")
	// ErrVoid: the SMS challenge can no longer be used: it was already used
	// once, superseded by a resend, or had too many wrong attempts.
	ErrVoid = errors.New("otp: challenge void")
	// ErrWrongCode: the code does not match the SMS challenge; the attempt
	// was counted.
	ErrWrongCode = errors.New("otp: wrong code")

	// ErrCooldown: a code was sent to this phone too recently. Returned
	// wrapped in *RateLimitError.
	ErrCooldown = errors.New("otp: too soon since last code")
	// ErrTooManySends: the phone reached its sends per window. Returned
	// wrapped in *RateLimitError.
	ErrTooManySends = errors.New("otp: too many codes sent to this phone")
	// ErrTooManyFromIP: the client address reached its sends per window.
	// Returned wrapped in *RateLimitError.
	ErrTooManyFromIP = errors.New("otp: too many codes requested from this address")
	// ErrPhoneBound: the phone must wait under the Bound the send was
	// issued with. Returned wrapped in *RateLimitError; it wraps
	// ErrTooManySends.
	ErrPhoneBound = fmt.Errorf("%w: the phone's bound", ErrTooManySends)
	// ErrBudget: the Budget the send was issued with is spent for its
	// window. ErrBudgetShare: its share for phones not known is (the send
	// may be asked again as known). Returned wrapped in *RateLimitError;
	// ErrBudgetShare wraps ErrBudget.
	ErrBudget      = errors.New("otp: the budget of codes is spent")
	ErrBudgetShare = fmt.Errorf("%w: the share of phones not known", ErrBudget)

	// ErrUnknownPurpose: the purpose is not one of the Purpose* constants.
	ErrUnknownPurpose = errors.New("otp: unknown purpose")
	// ErrDecrypt: Sealer.Open failed. Deliberately vague: a wrong key,
	// wrong associated data and tampered ciphertext are indistinguishable.
	ErrDecrypt = errors.New("otp: open: message authentication failed")

	// ErrInvalidInput: a phone, client IP, factor ID or similar argument is
	// malformed.
	ErrInvalidInput = errors.New("otp: invalid input")
)

// RateLimitError reports a refused send and when a retry can succeed. Err is
// one of ErrCooldown, ErrTooManySends, ErrTooManyFromIP or ErrPhoneBound, so
// errors.Is(err, ErrCooldown) works on the wrapped value; RetryAfter is
// always positive and is meant for a Retry-After header.
type RateLimitError struct {
	Err        error
	RetryAfter time.Duration
}

// Error implements error.
func (e *RateLimitError) Error() string {
	// Rounded up: "retry after 0s" would invite an immediate retry.
	secs := (e.RetryAfter + time.Second - 1) / time.Second
	return fmt.Sprintf("%v (retry after %ds)", e.Err, secs)
}

// Unwrap returns the sentinel.
func (e *RateLimitError) Unwrap() error { return e.Err }
