package accounts

import (
	"errors"
	"fmt"
	"time"
)

// Kind is what an account belongs to.
type Kind string

// Account kinds.
const (
	KindCitizen      Kind = "citizen"
	KindOrganisation Kind = "organisation"
	KindOfficial     Kind = "official"
)

// Status is where an account is in its life.
type Status string

// Account statuses: a citizen or organisation is pending until its phone
// is verified by SMS code; closed accounts keep their row (the audit log
// refers to them) but can do nothing.
const (
	StatusPending Status = "pending"
	StatusActive  Status = "active"
	StatusClosed  Status = "closed"
)

// Role is what an official may do within one unit.
type Role string

// Officials' roles (regulations 000:3.2, 003:7). RoleAdmin granted in any
// unit applies everywhere.
const (
	RoleAgencySubmitter   Role = "agency_submitter"
	RoleBroadcastApprover Role = "broadcast_approver"
	RoleUnitAdmin         Role = "unit_admin"
	RoleOps               Role = "ops"
	RoleAdmin             Role = "admin"
	// RoleAlertTester receives Test and Exercise alerts, which never
	// reach the public.
	RoleAlertTester Role = "alert_tester"
	// RoleAlertResponder receives Restricted alerts (by default; which
	// roles a CAP <restriction> reaches is configuration).
	RoleAlertResponder Role = "alert_responder"
)

// Roles lists every role.
func Roles() []Role {
	return []Role{RoleAgencySubmitter, RoleBroadcastApprover, RoleUnitAdmin, RoleOps, RoleAdmin, RoleAlertTester, RoleAlertResponder}
}

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	for _, x := range Roles() {
		if x == r {
			return true
		}
	}
	return false
}

// Account is one citizen, organisation or official. Optional identifiers
// are empty when absent; times are zero when unset.
type Account struct {
	ID       string
	Kind     Kind
	Status   Status
	FullName string // a person's name, or an organisation's
	// Exactly one login identifier is set by kind: CitizenID for a
	// citizen, TaxCode for an organisation, Username for an official.
	CitizenID string
	TaxCode   string
	Username  string
	Phone     string // normalised, 84…
	Email     string
	Unit      string // an official's home unit
	// PasswordHash is the argon2id PHC string; empty for an account that
	// signs in only through single sign-on.
	PasswordHash      string
	PasswordChangedAt time.Time
	PhoneVerifiedAt   time.Time
	CreatedAt         time.Time
	ClosedAt          time.Time
	// CreatedBy is who created the account: an official's account id,
	// "apikey:<id>", or empty for a self-registered citizen or
	// organisation.
	CreatedBy string
}

// RoleGrant is one role of an official in one unit.
type RoleGrant struct {
	Unit string
	Role Role
}

// GrantRecord is a role grant with who gave it (an account id or
// "apikey:<id>") and when.
type GrantRecord struct {
	RoleGrant
	GrantedBy string
	GrantedAt time.Time
}

// ProvinceLevel reports whether r is granted by administrators only: admin
// itself and the province's approval role.
func (r Role) ProvinceLevel() bool {
	return r == RoleAdmin || r == RoleBroadcastApprover
}

// TOTPFactor is an official's authenticator-app factor. SecretSealed is
// the base32 secret sealed by otp.Sealer with associated data
// "totp:"+ID.
type TOTPFactor struct {
	ID           string
	AccountID    string
	SecretSealed []byte
	Status       string // "pending" until the first valid code, then "active"
	CreatedAt    time.Time
}

// RecoveryCode is one stored (hashed) recovery code.
type RecoveryCode struct {
	ID   string
	Hash string
}

// Device is a push registration of an app on a phone.
type Device struct {
	ID        string
	AccountID string
	Token     string
	App       string // smart | egov
	Platform  string // android | ios | web
	Active    bool
	CreatedAt time.Time
}

// Apps that register devices, and their platforms.
var (
	Apps      = []string{"smart", "egov"}
	Platforms = []string{"android", "ios", "web"}
)

// Subscriptions are the areas and topics an account follows.
type Subscriptions struct {
	Areas  []string `json:"areas"`
	Topics []string `json:"topics"`
	// QuietHours, when set, holds bulk notices and outage reminders that
	// fall inside until it ends.
	QuietHours *QuietHours `json:"quiet_hours"`
}

// Area is one administrative unit.
type Area struct {
	Code   string
	Name   string
	Parent string
	Level  string // province | district | commune
}

// AuditEntry is one row of the append-only audit log. Detail never holds a
// password or a code.
type AuditEntry struct {
	ID      string
	At      time.Time
	Actor   string // account id, "apikey:<id>", "system" or "anonymous"
	Action  string // e.g. "account.register", "session.create"
	Subject string // what was acted on (an account, a notification, a key…), if any
	Detail  map[string]string
	IP      string
	// Route, Status and RequestID describe an API call ("GET
	// /v1/notifications/{id}", its HTTP status, the X-Request-Id); they
	// are empty for entries written by the domain itself.
	Route     string
	Status    int
	RequestID string
}

// Sentinel errors of the domain. Wrapping errors add context with an
// "accounts: verb" prefix; compare with errors.Is.
var (
	// ErrNotFound: no such account, device, factor or challenge.
	ErrNotFound = errors.New("accounts: not found")
	// ErrBadCredentials: unknown user, wrong password, or an account that
	// cannot sign in; deliberately one error for all.
	ErrBadCredentials = errors.New("accounts: wrong user name or password")
	// ErrPending: the password is right but the phone is not verified yet.
	ErrPending = errors.New("accounts: account not verified yet")
	// ErrSecondFactorRequired: an official signed in without a second
	// factor.
	ErrSecondFactorRequired = errors.New("accounts: second factor required")
	// ErrSecondFactor: the second factor was wrong, used or expired.
	ErrSecondFactor = errors.New("accounts: second factor rejected")
	// ErrLocked: too many failures; retry later.
	ErrLocked = errors.New("accounts: locked after too many failures")
	// ErrForbidden: the actor may not do this.
	ErrForbidden = errors.New("accounts: forbidden")
	// ErrFourEyes: the approver is the submitter, or created the
	// submitter's account or granted one of the submitter's roles.
	ErrFourEyes = errors.New("accounts: the approver must be independent of the submitter")
	// ErrBusy: too many passwords are being hashed; retry in a moment.
	ErrBusy = errors.New("accounts: too many password checks under way")
	// ErrThrottled: too many failed sign-ins for the account, the user
	// name or the client address; wrapped in *RateLimitError.
	ErrThrottled = errors.New("accounts: too many failed sign-ins")
	// ErrCode: an SMS code was wrong, expired or no longer valid.
	ErrCode = errors.New("accounts: code rejected")
	// ErrNoFactor: no TOTP enrolment in progress (confirm without begin).
	ErrNoFactor = errors.New("accounts: no TOTP enrolment in progress")
)

// FieldError reports one invalid input field. It wraps ErrInvalid, so
// errors.Is(err, ErrInvalid) holds; Field names the request field.
type FieldError struct {
	Field  string
	Detail string
	// Rules lists the broken password rules, for password fields.
	Rules []string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("accounts: invalid %s: %s", e.Field, e.Detail)
}

// Unwrap returns ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// ValidationError holds every invalid field of one request.
type ValidationError struct{ Fields []*FieldError }

func (e *ValidationError) Error() string {
	if len(e.Fields) == 0 {
		return "accounts: invalid input"
	}
	s := e.Fields[0].Error()
	if len(e.Fields) > 1 {
		s += fmt.Sprintf(" (and %d more)", len(e.Fields)-1)
	}
	return s
}

// Unwrap returns ErrInvalid.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

// ConflictError reports that a unique identifier is already taken: Field
// is "citizen_id", "tax_code", "username" or "phone".
type ConflictError struct{ Field string }

func (e *ConflictError) Error() string { return "accounts: " + e.Field + " already registered" }

// RateLimitError reports a refused code send and when to retry.
type RateLimitError struct {
	RetryAfter time.Duration
	Err        error
}

func (e *RateLimitError) Error() string { return "accounts: rate limited: " + e.Err.Error() }

// Unwrap returns the underlying cause.
func (e *RateLimitError) Unwrap() error { return e.Err }

// validation collects field errors.
type validation struct{ fields []*FieldError }

func (v *validation) add(field, format string, args ...any) {
	v.fields = append(v.fields, &FieldError{Field: field, Detail: fmt.Sprintf(format, args...)})
}

func (v *validation) err() error {
	if len(v.fields) == 0 {
		return nil
	}
	return &ValidationError{Fields: v.fields}
}
