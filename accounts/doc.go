// Package accounts manages citizens, organisations and officials: who they
// are (the 12-digit citizen ID for a citizen, the tax code for an
// organisation, a user name and roles per unit for an official), how they
// prove it (passwords under the province's policy, hashed with argon2id;
// SMS codes at registration; TOTP, recovery codes and pushed codes as
// officials' second factor; single sign-on ID tokens), their sessions,
// devices and subscriptions, and the audit log of every change.
//
// The validation and hashing functions are pure: they hold no state, take
// the current time as an argument where it matters, and are safe for
// concurrent use. Invalid input is reported with errors wrapping
// ErrInvalid (a loa.EInvalid *loa.Error naming every bad field), which the API
// turns into a 400 naming the field.
//
// Service is the domain logic. Its collaborators are interfaces it owns:
// Store (internal/sqlstore on PostgreSQL or SQLite), SessionStore and
// ChallengeIndex (accounts/redis), CodeSender and TOTPChecker (the otp
// package), SecretSealer (otp.Sealer), Publisher (kafkapub.Publisher),
// Hasher (Argon2Hasher) and, for single sign-on, IDTokenVerifier
// (accounts/oidc). Codes reach people only by publishing a direct
// notification on the otp lane; this package never stores or logs a code
// or a password, and the audit log records only the class of a failure.
package accounts
