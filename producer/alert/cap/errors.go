package cap

import "errors"

// The classes of refusal. Every *ValidationError returned by Parse wraps
// exactly one of them.
var (
	// ErrMalformed: the document is not well-formed XML, is not UTF-8,
	// declares a document type or entities, or exceeds the nesting or token
	// bounds.
	ErrMalformed = errors.New("cap: malformed document")
	// ErrTooLarge: the document is longer than Options.MaxBytes.
	ErrTooLarge = errors.New("cap: document too large")
	// ErrInvalid: the document is well-formed XML but breaks a CAP 1.2 rule
	// (wrong namespace, missing or badly formatted element, …).
	ErrInvalid = errors.New("cap: invalid alert")
	// ErrUnknownArea: a VN-ADMIN geocode is not an area Options.KnownArea
	// knows.
	ErrUnknownArea = errors.New("cap: unknown area code")
	// ErrExpired: every info block of the alert expired before Options.Now.
	ErrExpired = errors.New("cap: alert expired")
)

// ValidationError is a refused document: which element and why.
//
// Element is the path of the element at fault, with zero-based indices on
// elements that may repeat, e.g. "alert/info[0]/area[1]/geocode[0]/value".
// For errors not tied to one element (size, syntax before the root) it is
// "alert". Reason is a human-readable explanation in English; syntax errors
// carry their line number in it. Err is the class (ErrMalformed, …) and is
// what Unwrap returns.
type ValidationError struct {
	Element string
	Reason  string
	Err     error
}

// Error returns "cap: ELEMENT: REASON".
func (e *ValidationError) Error() string {
	return "cap: " + e.Element + ": " + e.Reason
}

// Unwrap returns the class of the error, so errors.Is(err, ErrExpired)
// works.
func (e *ValidationError) Unwrap() error { return e.Err }
