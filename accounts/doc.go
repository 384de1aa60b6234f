// Package accounts manages citizens, organisations and officials: who they
// are (the 12-digit citizen ID for a citizen, the tax code for an
// organisation), how they prove it (passwords under the province's policy,
// hashed with argon2id) and which identifiers Loa accepts for them.
//
// The validation and hashing functions here are pure: they hold no state,
// take the current time as an argument where it matters, and are safe for
// concurrent use. Invalid input is reported with errors wrapping ErrInvalid,
// which the API turns into a client error.
package accounts
