package accounts

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/otp"
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
	// RoleAlertIssuer posts disaster alerts (and their Updates and
	// Cancels) from a session, as the console does. An official's alert
	// is never pre-authorised: it waits for an approver independent of
	// the issuer (four eyes), whatever the policy for API keys.
	RoleAlertIssuer Role = "alert_issuer"
	// Feedback: handlers of an agency's feedback; coordinators in the
	// DoIC's unit (the approval unit) assign, take escalations and are
	// told of missed deadlines.
	RoleFeedbackHandler     Role = "feedback_handler"
	RoleFeedbackCoordinator Role = "feedback_coordinator"
	// Portal: editors draft articles of their unit's categories; the
	// chief editor approves them (never their own).
	RoleEditor      Role = "editor"
	RoleChiefEditor Role = "chief_editor"
)

// Roles lists every role.
func Roles() []Role {
	return []Role{RoleAgencySubmitter, RoleBroadcastApprover, RoleUnitAdmin, RoleOps, RoleAdmin, RoleAlertTester, RoleAlertResponder,
		RoleAlertIssuer, RoleFeedbackHandler, RoleFeedbackCoordinator, RoleEditor, RoleChiefEditor}
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
// itself, the province's approval and feedback-coordination roles, the
// issuing of disaster alerts to the province's public, the portal's
// approval (a chief editor publishes to the public and pushes to a
// category's subscribers: a unit admin who could grant it would make an
// editor and a chief editor of their own and publish alone), and ops,
// which in any unit is the province's operator (every notification's
// recipients, the dead letters and their replay).
func (r Role) ProvinceLevel() bool {
	return r == RoleAdmin || r == RoleBroadcastApprover || r == RoleFeedbackCoordinator || r == RoleAlertIssuer || r == RoleChiefEditor ||
		r == RoleOps
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

// Errors of the domain. Those that are a *loa.Error carry the code and the
// detail the caller is told; wrapping errors add context with an
// "accounts: verb" prefix. Compare with errors.Is.
var (
	// ErrNotFound: no such account, device, factor or challenge.
	ErrNotFound = loa.NotFound("account not found")
	// ErrBadCredentials: unknown user, wrong password, or an account that
	// cannot sign in; deliberately one error for all.
	ErrBadCredentials = &loa.Error{Code: loa.EBadCredentials, Detail: "the user name or the password is wrong"}
	// ErrPending: the password is right but the phone is not verified yet.
	ErrPending = &loa.Error{Code: loa.EAccountPending,
		Detail: "the account's phone is not verified yet; verify it with the SMS code"}
	// ErrSecondFactorRequired: an official signed in without a second
	// factor.
	ErrSecondFactorRequired = &loa.Error{Code: loa.EFactorRequired, Field: "otp",
		Detail: "officials sign in with a second factor: send otp (authenticator or recovery code), or send_code push|sms to be sent one"}
	// ErrSecondFactor: the second factor was wrong, used or expired.
	ErrSecondFactor = &loa.Error{Code: loa.EFactorRejected, Field: "otp", Detail: "the code is wrong, already used or expired"}
	// ErrLocked: too many failures; retry later.
	ErrLocked = &loa.Error{Code: loa.ELocked, Detail: "too many wrong codes; the factor is locked for a while",
		RetryAfter: otp.DefaultTOTPLockDuration}
	// ErrForbidden: the actor may not do this. Refusals that say why
	// wrap it (see forbidden).
	ErrForbidden = loa.Forbidden("the caller may not do this")
	// ErrFourEyes: the approver is the submitter, or created the
	// submitter's account or granted one of the submitter's roles.
	// Refusals that say which wrap it (see fourEyes).
	ErrFourEyes = &loa.Error{Code: loa.EFourEyes, Detail: "the approver must be independent of the submitter"}
	// ErrBusy: too many passwords are being hashed; retry in a moment.
	ErrBusy = loa.Unavailable("too many password checks are under way; retry in a moment")
	// ErrThrottled: too many failed sign-ins for the account, the user
	// name or the client address; wrapped by the loa.ERateLimited
	// *loa.Error that throttled returns.
	ErrThrottled = errors.New("accounts: too many failed sign-ins")
	// ErrTooManyWrongCodes: too many wrong password-reset codes for the
	// user name or the client address; wrapped by the loa.ERateLimited
	// *loa.Error that tooManyWrongCodes returns.
	ErrTooManyWrongCodes = errors.New("accounts: too many wrong codes")
	// ErrCode: an SMS code was wrong, expired or no longer valid; it is
	// wrapped by a loa.ECodeRejected *loa.Error saying which.
	ErrCode = errors.New("accounts: code rejected")
	// ErrNoFactor: no TOTP enrolment in progress (confirm without begin).
	ErrNoFactor = loa.Conflict("start an enrolment with POST /v1/me/totp first")
	// ErrTaken: an identifier is already registered; wrapped by the
	// loa.EConflict *loa.Error that Taken returns.
	ErrTaken = errors.New("accounts: already registered")
	// ErrDeviceHeld: a push token is active on another account, and the
	// registration did not prove it holds the device (RegisterDevice).
	ErrDeviceHeld = errors.New("accounts: the device is registered to another account")
)

// Taken returns the error for a unique identifier already registered:
// field is "citizen_id", "tax_code", "username" or "phone". It wraps
// ErrTaken.
func Taken(field string) error {
	return (&loa.Error{Code: loa.EConflict, Field: field,
		Detail: fmt.Sprintf("an account with this %s already exists", strings.ReplaceAll(field, "_", " "))}).Wrap(ErrTaken)
}

// forbidden returns a refusal saying why; it wraps ErrForbidden.
func forbidden(format string, args ...any) error {
	return loa.Forbidden(format, args...).Wrap(ErrForbidden)
}

// throttled is the refusal of a sign-in that must wait; it wraps
// ErrThrottled.
func throttled(wait time.Duration) error {
	return (&loa.Error{Code: loa.ERateLimited, Detail: "too many failed sign-ins; wait before trying again",
		RetryAfter: max(wait, time.Second)}).Wrap(ErrThrottled)
}

// tooManyWrongCodes is the refusal of a reset that must wait after wrong
// codes; it wraps ErrTooManyWrongCodes.
func tooManyWrongCodes(wait time.Duration) error {
	return (&loa.Error{Code: loa.ERateLimited, Detail: "too many wrong codes; wait before asking for another code or trying again",
		RetryAfter: max(wait, time.Second)}).Wrap(ErrTooManyWrongCodes)
}

// fourEyes returns a four-eyes refusal saying why; it wraps ErrFourEyes.
func fourEyes(format string, args ...any) error {
	return loa.Errorf(loa.EFourEyes, format, args...).Wrap(ErrFourEyes)
}

// notFoundAs gives an ErrNotFound in err the detail of what was looked
// for; other errors pass unchanged.
func notFoundAs(err error, format string, args ...any) error {
	if errors.Is(err, ErrNotFound) {
		return loa.NotFound(format, args...).Wrap(err)
	}
	return err
}
