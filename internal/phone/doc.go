// Package phone normalises and masks Vietnamese mobile numbers.
//
// Every phone number Loa stores, deduplicates on or hands to an SMS gateway
// is in one canonical form: "84" followed by the 9-digit national number
// without its trunk "0" (for example 84912345678). Normalize turns what
// people type into that form and refuses anything that cannot receive an
// SMS on a Vietnamese mobile network, so that a bad number fails at
// registration rather than at the gateway. Mask shortens a number for logs,
// where personal data must not appear in full.
//
// The package holds no state; all functions are safe for concurrent use.
package phone
