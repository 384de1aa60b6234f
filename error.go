package loa

import (
	"errors"
	"fmt"
	"time"
)

// Error codes. A code is stable: clients match it in the problem type
// "urn:loa:problem:<code>", and the API maps each to one HTTP status.
const (
	// EInvalid: one or more fields of a request are wrong; Fields lists them.
	EInvalid = "invalid-field"
	// EMalformed: the body cannot be read at all (not JSON, not CSV).
	EMalformed = "malformed-json"
	// ETooLarge: the body is over the size limit.
	ETooLarge = "body-too-large"
	// EUnauthorized: no valid credentials.
	EUnauthorized = "unauthorized"
	// EForbidden: the caller may not do this.
	EForbidden = "forbidden"
	// EPasswordExpired: the session may only change its password.
	EPasswordExpired = "password-expired"
	// ENotFound: no such thing, or not one the caller may see.
	ENotFound = "not-found"
	// EConflict: the request clashes with what is stored (an identifier
	// taken, a step out of order).
	EConflict = "conflict"
	// EIdempotencyConflict: an idempotency key or an identifier was used
	// before for something different.
	EIdempotencyConflict = "idempotency-conflict"
	// ERateLimited: too many requests; RetryAfter says when to try again.
	ERateLimited = "rate-limited"
	// EBadCredentials: a sign-in's user name or password is wrong.
	EBadCredentials = "invalid-credentials"
	// EAccountPending: the account's phone is not verified yet.
	EAccountPending = "account-pending"
	// EFactorRequired: officials sign in with a second factor.
	EFactorRequired = "second-factor-required"
	// EFactorRejected: the second factor was wrong, used or expired.
	EFactorRejected = "second-factor-rejected"
	// ELocked: too many wrong codes; RetryAfter says for how long.
	ELocked = "locked"
	// ECodeRejected: a one-time code was wrong, expired or void.
	ECodeRejected = "code-rejected"
	// EFourEyes: an approval by the official who asked for it.
	EFourEyes = "four-eyes"
	// EBroadcastState, EAlertState: the broadcast or alert is not in a
	// state that allows the action.
	EBroadcastState = "broadcast-state"
	EAlertState     = "alert-state"
	// EAlreadyReplayed, ENotReplayable: a dead letter cannot be replayed.
	EAlreadyReplayed = "already-replayed"
	ENotReplayable   = "not-replayable"
	// EUnavailable: a dependency failed; the same request may succeed
	// later.
	EUnavailable = "unavailable"
	// EInternal: anything else. Its detail never reaches the caller.
	EInternal = "internal"
)

// Error is Loa's error for anything a caller may be told: a stable Code,
// the Field at fault and a Detail for people. Domain services return it;
// the API maps Code to an HTTP status and writes it as problem+json.
//
// Err is the cause or class the error wraps, so that errors.Is finds a
// package's sentinel (broadcast.ErrNotFound) through it.
type Error struct {
	Code   string
	Field  string // the (first) field at fault, if one
	Detail string // for people, in English
	// Fields lists every field at fault of an EInvalid error; Field and
	// Detail are its first.
	Fields []FieldError
	// RetryAfter, when positive, is when the same request may succeed.
	RetryAfter time.Duration
	Err        error
}

// FieldError says what is wrong with one field of a request.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
	// Rules lists the broken rules of a password field ("length",
	// "upper", "lower", "digit", "special", "history").
	Rules []string `json:"-"`
}

// Error returns "field: detail", or the detail.
func (e *Error) Error() string {
	s := e.Detail
	if s == "" {
		s = e.Code
	}
	if e.Field != "" {
		s = e.Field + ": " + s
	}
	return s
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// Wrap returns a copy of e that wraps err (a cause, or a package's
// sentinel such as broadcast.ErrNotFound).
func (e *Error) Wrap(err error) *Error {
	c := *e
	c.Err = err
	return &c
}

// Errorf returns an error with code and a detail built as fmt.Sprintf does.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Detail: fmt.Sprintf(format, args...)}
}

// Invalid returns an EInvalid error naming one field.
func Invalid(field, format string, args ...any) *Error {
	return InvalidFields(FieldError{Field: field, Detail: fmt.Sprintf(format, args...)})
}

// InvalidFields returns an EInvalid error listing fields; the first names
// the error's Field and Detail. Give it at least one field.
func InvalidFields(fields ...FieldError) *Error {
	e := &Error{Code: EInvalid, Detail: "invalid request", Fields: fields}
	if len(fields) > 0 {
		e.Field, e.Detail = fields[0].Field, fields[0].Detail
	}
	if len(fields) > 1 {
		e.Detail = fmt.Sprintf("%s (and %d more)", e.Detail, len(fields)-1)
	}
	return e
}

// Validation collects the field errors of one request, so that a caller
// hears of every wrong field at once. The zero value is ready to use; it
// is not safe for concurrent use.
type Validation struct{ Fields []FieldError }

// Add records that field is wrong, and why.
func (v *Validation) Add(field, format string, args ...any) {
	v.Fields = append(v.Fields, FieldError{Field: field, Detail: fmt.Sprintf(format, args...)})
}

// Err returns nil when no field was added, else an EInvalid *Error
// listing them (wrapping class, when not nil, for errors.Is).
func (v *Validation) Err(class error) error {
	if len(v.Fields) == 0 {
		return nil
	}
	e := InvalidFields(v.Fields...)
	e.Err = class
	return e
}

// NotFound returns an ENotFound error; the detail names what was looked
// for ("broadcast 01H… not found").
func NotFound(format string, args ...any) *Error { return Errorf(ENotFound, format, args...) }

// Forbidden returns an EForbidden error; the detail says what the caller
// lacks.
func Forbidden(format string, args ...any) *Error { return Errorf(EForbidden, format, args...) }

// Conflict returns an EConflict error; the detail says what clashes.
func Conflict(format string, args ...any) *Error { return Errorf(EConflict, format, args...) }

// Unavailable returns an EUnavailable error: the request may succeed when
// retried, after a second.
func Unavailable(format string, args ...any) *Error {
	e := Errorf(EUnavailable, format, args...)
	e.RetryAfter = time.Second
	return e
}

// ErrorCode returns the code of the first *Error in err's chain, "" for a
// nil err and EInternal for an error that is not one.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return EInternal
}
