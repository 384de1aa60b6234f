package cap

import (
	"errors"

	"github.com/loa-hub/loa"
)

// The classes of refusal. Every refusal (see Refusal) returned by Parse wraps
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

// Refusal returns a refused document as a *loa.Error: Field is the path
// of the element at fault, with zero-based indices on elements that may
// repeat, e.g. "alert/info[0]/area[1]/geocode[0]/value" (for errors not
// tied to one element, such as size or syntax before the root, "alert");
// Detail is why, in English (syntax errors carry their line number in it);
// Err is the class (ErrMalformed, …), so errors.Is(err, ErrExpired) works.
// The code is loa.ETooLarge for ErrTooLarge and loa.EInvalid otherwise.
func Refusal(element, reason string, class error) *loa.Error {
	e := loa.InvalidFields(loa.FieldError{Field: element, Detail: reason}).Wrap(class)
	if errors.Is(class, ErrTooLarge) {
		e.Code, e.Fields = loa.ETooLarge, nil
	}
	return e
}
