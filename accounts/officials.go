package accounts

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/loa-hub/loa"
)

// NewOfficial is an official's account as an administrator creates it.
// Without a Password a one-time password is generated, already expired:
// the first sign-in may only change it.
type NewOfficial struct {
	Username string
	FullName string
	Phone    string
	Email    string
	Unit     string
	Roles    []Role
	Password string
}

// CreatedOfficial is the answer to CreateOfficial. OneTimePassword is set
// when it was generated; it is shown once.
type CreatedOfficial struct {
	Account         Account
	Roles           []RoleGrant
	OneTimePassword string
}

const maxUnitLen = 64

// CreateOfficial creates an active official with roles in their unit.
// Administrators may do it for any unit, unit administrators for their
// own; the permission is checked before anything else, whatever roles
// are asked for. Roles follow GrantRole's rules. Errors: ErrForbidden,
// a loa.EInvalid *loa.Error, Taken("username").
func (s *Service) CreateOfficial(ctx context.Context, actor Actor, n NewOfficial) (CreatedOfficial, error) {
	unit := strings.TrimSpace(n.Unit)
	if err := s.mayAdminister(ctx, actor, unit); err != nil {
		return CreatedOfficial{}, err
	}
	var v loa.Validation
	user := strings.ToLower(strings.TrimSpace(n.Username))
	if !validUsername(user) {
		v.Add("username", "must be 3-64 characters a-z, 0-9, '.', '_' or '-', starting with a letter")
	}
	name := s.checkName(&v, "full_name", n.FullName)
	ph := checkPhone(&v, n.Phone)
	if !validUnit(unit) {
		v.Add("unit", "must be a unit code of 1-%d characters without spaces or '/'", maxUnitLen)
	}
	seen := map[Role]bool{}
	var roles []Role
	for i, r := range n.Roles {
		if !r.Valid() {
			v.Add(fmt.Sprintf("roles[%d]", i), "unknown role %q", r)
		} else if !seen[r] {
			seen[r] = true
			roles = append(roles, r)
		}
	}
	oneTime := ""
	if n.Password != "" {
		s.checkNewPassword(&v, "password", n.Password)
	}
	if err := v.Err(ErrInvalid); err != nil {
		return CreatedOfficial{}, err
	}
	for _, r := range roles {
		if err := s.mayGrantRole(ctx, actor, unit, r); err != nil {
			return CreatedOfficial{}, err
		}
	}
	pw := n.Password
	changed := s.now().UTC()
	if pw == "" {
		var err error
		if pw, err = OneTimePassword(); err != nil {
			return CreatedOfficial{}, err
		}
		oneTime = pw
		changed = time.Time{} // never set by its owner: expired
	}
	hash, err := s.d.Hasher.Hash(pw)
	if err != nil {
		return CreatedOfficial{}, fmt.Errorf("accounts: create official: %w", err)
	}
	a := Account{ID: uuid.NewString(), Kind: KindOfficial, Status: StatusActive, FullName: name, Username: user,
		Phone: ph, Email: strings.TrimSpace(n.Email), Unit: unit, PasswordHash: hash, PasswordChangedAt: changed, CreatedAt: s.now().UTC(),
		CreatedBy: actor.name()}
	if err := s.d.Store.CreateAccount(ctx, a); err != nil {
		return CreatedOfficial{}, err
	}
	out := CreatedOfficial{Account: a, OneTimePassword: oneTime}
	for _, r := range roles {
		g := RoleGrant{Unit: unit, Role: r}
		if err := s.d.Store.GrantRole(ctx, a.ID, g, actor.name(), s.now().UTC()); err != nil {
			return CreatedOfficial{}, err
		}
		out.Roles = append(out.Roles, g)
		s.audit(ctx, actor.name(), "role.grant", a.ID, actor.IP, map[string]string{"unit": g.Unit, "role": string(g.Role)})
	}
	detail := map[string]string{"username": user, "unit": unit, "roles": joinRoles(roles)}
	s.audit(ctx, actor.name(), "official.create", a.ID, actor.IP, detail)
	return out, nil
}

// GrantRole gives an official a role in a unit. Nobody grants a role to
// themself; a unit administrator grants roles of their own unit to
// officials of their unit, and never admin or the province-level
// approval role (broadcast_approver), which only administrators grant.
// Every grant is audited with actor and target. Errors: ErrForbidden,
// a loa.EInvalid *loa.Error, ErrNotFound.
func (s *Service) GrantRole(ctx context.Context, actor Actor, officialID string, g RoleGrant) (_ []RoleGrant, err error) {
	defer func() { err = notFoundAs(err, "official %s (or the role grant) not found", officialID) }()
	if actor.AccountID != "" && actor.AccountID == officialID {
		return nil, forbidden("nobody grants a role to themself")
	}
	if err := s.MayAdministerOfficials(ctx, actor); err != nil {
		return nil, err
	}
	if err := checkGrant(g); err != nil {
		return nil, err
	}
	a, err := s.official(ctx, officialID)
	if err != nil {
		return nil, err
	}
	if err := s.mayAdminister(ctx, actor, a.Unit); err != nil {
		return nil, err
	}
	if err := s.mayGrantRole(ctx, actor, g.Unit, g.Role); err != nil {
		return nil, err
	}
	if err := s.d.Store.GrantRole(ctx, officialID, g, actor.name(), s.now().UTC()); err != nil {
		return nil, err
	}
	s.audit(ctx, actor.name(), "role.grant", officialID, actor.IP, map[string]string{"unit": g.Unit, "role": string(g.Role)})
	return s.d.Store.RoleGrants(ctx, officialID)
}

// RevokeRole takes a role back, under GrantRole's rules (except that an
// official may give up their own role). Every revocation is audited with
// actor and target. Errors: ErrForbidden, a loa.EInvalid *loa.Error, ErrNotFound
// (also when the official does not hold it).
func (s *Service) RevokeRole(ctx context.Context, actor Actor, officialID string, g RoleGrant) (err error) {
	defer func() { err = notFoundAs(err, "official %s (or the role grant) not found", officialID) }()
	if err := s.MayAdministerOfficials(ctx, actor); err != nil {
		return err
	}
	if err := checkGrant(g); err != nil {
		return err
	}
	a, err := s.official(ctx, officialID)
	if err != nil {
		return err
	}
	if err := s.mayAdminister(ctx, actor, a.Unit); err != nil {
		return err
	}
	if err := s.mayGrantRole(ctx, actor, g.Unit, g.Role); err != nil {
		return err
	}
	ok, err := s.d.Store.RevokeRole(ctx, officialID, g)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("accounts: revoke role: %w", ErrNotFound)
	}
	s.audit(ctx, actor.name(), "role.revoke", officialID, actor.IP, map[string]string{"unit": g.Unit, "role": string(g.Role)})
	return nil
}

// CloseOfficial closes an official's account (staff change): its sessions
// are revoked and its devices deactivated. Unit administrators may close
// officials of their unit who hold no province-level role (closing takes
// every role, and those only administrators revoke); administrators
// close anyone. Errors: ErrNotFound, ErrForbidden.
func (s *Service) CloseOfficial(ctx context.Context, actor Actor, officialID string) (err error) {
	defer func() { err = notFoundAs(err, "official %s (or the role grant) not found", officialID) }()
	if err := s.MayAdministerOfficials(ctx, actor); err != nil {
		return err
	}
	a, err := s.official(ctx, officialID)
	if err != nil {
		return err
	}
	if err := s.mayAdminister(ctx, actor, a.Unit); err != nil {
		return err
	}
	// Closing takes every role; the province-level ones only
	// administrators may take, so a unit admin cannot lock out an
	// administrator or an approver who works in their unit.
	grants, err := s.d.Store.RoleGrants(ctx, a.ID)
	if err != nil {
		return err
	}
	for _, g := range grants {
		if !g.Role.ProvinceLevel() {
			continue
		}
		if admin, err := s.isAdmin(ctx, actor); err != nil {
			return err
		} else if !admin {
			return forbidden("closing the account would take its role %s, which only administrators revoke", g.Role)
		}
		break
	}
	if a.Status == StatusClosed {
		return nil
	}
	if err := s.d.Store.CloseAccount(ctx, a.ID, s.now().UTC()); err != nil {
		return err
	}
	// Blocked for longer than any session lives, so a sign-in that read
	// the account before it was closed cannot open one afterwards.
	if err := s.d.Sessions.RevokeAccount(ctx, a.ID, s.cfg.CitizenSessionTTL+s.cfg.OfficialSessionTTL); err != nil {
		return fmt.Errorf("accounts: close official: %w", err)
	}
	s.audit(ctx, actor.name(), "account.close", a.ID, actor.IP, nil)
	return nil
}

// ResetOfficialPassword gives an official who can no longer reset their
// own password (they lost their authenticator and recovery codes, which
// the self-service reset needs beside the SMS code) a new one-time
// password, returned once. Like a created official's, it is already
// expired: its sign-in still needs the second factor (a code pushed to
// the Egov app or sent by SMS to the official's phone will do), and may
// then only change it. Every session of the account ends, its sign-in
// failures are forgotten, the official's phone is told, and the reset is
// audited with its actor.
//
// Administrators reset anyone; unit administrators, officials of their
// own unit who hold no province-level role (the same rule as closing, so
// a unit administrator cannot take over an approver's or an
// administrator's password). Nobody resets their own this way. An account
// that signs in only through single sign-on has no password and gets
// none. Errors: ErrForbidden, ErrNotFound (also for a closed account).
func (s *Service) ResetOfficialPassword(ctx context.Context, actor Actor, officialID string) (_ string, err error) {
	defer func() { err = notFoundAs(err, "official %s not found", officialID) }()
	if err := s.MayAdministerOfficials(ctx, actor); err != nil {
		return "", err
	}
	if actor.AccountID != "" && actor.AccountID == officialID {
		return "", forbidden("nobody resets their own password here: change it at POST /v1/me/password, or use POST /v1/password-reset")
	}
	a, err := s.official(ctx, officialID)
	if err != nil {
		return "", err
	}
	if a.Status != StatusActive {
		return "", fmt.Errorf("accounts: official %s is not active: %w", a.ID, ErrNotFound)
	}
	if err := s.mayAdminister(ctx, actor, a.Unit); err != nil {
		return "", err
	}
	grants, err := s.d.Store.RoleGrants(ctx, a.ID)
	if err != nil {
		return "", err
	}
	if i := slices.IndexFunc(grants, func(g RoleGrant) bool { return g.Role.ProvinceLevel() }); i >= 0 {
		if admin, err := s.isAdmin(ctx, actor); err != nil {
			return "", err
		} else if !admin {
			return "", forbidden("the official holds the role %s: only administrators reset their password", grants[i].Role)
		}
	}
	if a.PasswordHash == "" {
		return "", forbidden("the account signs in through single sign-on and has no password")
	}
	pw, err := OneTimePassword()
	if err != nil {
		return "", err
	}
	hash, err := s.d.Hasher.Hash(pw)
	if err != nil {
		return "", fmt.Errorf("accounts: reset official password: %w", err)
	}
	// The zero time marks it as never set by its owner: expired.
	if err := s.d.Store.SetPassword(ctx, a.ID, hash, time.Time{}); err != nil {
		return "", fmt.Errorf("accounts: reset official password: %w", err)
	}
	if err := s.d.Sessions.RevokeAccount(ctx, a.ID, 0); err != nil {
		return "", fmt.Errorf("accounts: reset official password: %w", err)
	}
	if err := s.d.Throttle.Clear(ctx, "signin:acct:"+a.ID); err != nil {
		s.d.Log.Warn("accounts: clearing sign-in failures after an administrator's reset", slog.Any("error", err))
	}
	s.audit(ctx, actor.name(), "password.reset.admin", a.ID, actor.IP, nil)
	if a.Phone != "" {
		at := s.now().UTC()
		s.detach(ctx, "password reset notice", func(ctx context.Context) error {
			return s.sendText(ctx, "notice-"+uuid.NewString(), a.Phone, at.Add(time.Hour), noticeAdminPasswordReset)
		})
	}
	return pw, nil
}

// noticeAdminPasswordReset tells an official's phone that an administrator
// reset the account's password (one GSM-7 segment).
const noticeAdminPasswordReset = "Quan tri vien vua cap mat khau tam cho tai khoan Loa cua ban; moi phien dang nhap da ket thuc. Neu ban khong yeu cau, hay bao bo phan ho tro ngay."

// Roles returns an account's role grants.
func (s *Service) Roles(ctx context.Context, accountID string) ([]RoleGrant, error) {
	return s.d.Store.RoleGrants(ctx, accountID)
}

// Account returns an account by id.
func (s *Service) Account(ctx context.Context, id string) (Account, error) {
	return s.d.Store.Account(ctx, id)
}

func (s *Service) official(ctx context.Context, id string) (Account, error) {
	a, err := s.d.Store.Account(ctx, id)
	if err != nil {
		return Account{}, err
	}
	if a.Kind != KindOfficial {
		return Account{}, fmt.Errorf("accounts: not an official: %w", ErrNotFound)
	}
	return a, nil
}

// actorGrants returns the roles of a signed-in official actor, or
// ErrForbidden for an actor that is not an active official.
func (s *Service) actorGrants(ctx context.Context, actor Actor) ([]RoleGrant, error) {
	if actor.AccountID == "" {
		return nil, ErrForbidden
	}
	a, err := s.d.Store.Account(ctx, actor.AccountID)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrForbidden
	}
	if err != nil {
		return nil, err
	}
	if a.Kind != KindOfficial || a.Status != StatusActive {
		return nil, ErrForbidden
	}
	return s.d.Store.RoleGrants(ctx, actor.AccountID)
}

// isAdmin reports whether actor is an administrator: an API key with the
// admin scope, or an official with the admin role in any unit.
func (s *Service) isAdmin(ctx context.Context, actor Actor) (bool, error) {
	if actor.Admin {
		return true, nil
	}
	grants, err := s.actorGrants(ctx, actor)
	if errors.Is(err, ErrForbidden) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(grants, func(g RoleGrant) bool { return g.Role == RoleAdmin }), nil
}

// MayAdministerOfficials reports whether actor administers officials at
// all: an administrator, or a unit administrator of some unit. The API
// asks it before reading a request's body, so a caller without the right
// gets 403 whatever they send. Errors: ErrForbidden.
func (s *Service) MayAdministerOfficials(ctx context.Context, actor Actor) error {
	if actor.Admin {
		return nil
	}
	grants, err := s.actorGrants(ctx, actor)
	if err != nil {
		if errors.Is(err, ErrForbidden) {
			return forbidden("administering officials needs the admin role, the unit_admin role, or an API key with the admin scope")
		}
		return err
	}
	if slices.ContainsFunc(grants, func(g RoleGrant) bool { return g.Role == RoleAdmin || g.Role == RoleUnitAdmin }) {
		return nil
	}
	return forbidden("administering officials needs the admin role, the unit_admin role, or an API key with the admin scope")
}

// mayAdminister reports whether actor administers unit: an administrator,
// or a unit_admin of that unit.
func (s *Service) mayAdminister(ctx context.Context, actor Actor, unit string) error {
	if actor.Admin {
		return nil
	}
	grants, err := s.actorGrants(ctx, actor)
	if err != nil {
		if errors.Is(err, ErrForbidden) {
			return forbidden("needs the admin role, or unit_admin of unit %s", unit)
		}
		return err
	}
	for _, g := range grants {
		if g.Role == RoleAdmin || (g.Role == RoleUnitAdmin && g.Unit == unit) {
			return nil
		}
	}
	return forbidden("needs the admin role, or unit_admin of unit %s", unit)
}

// mayGrantRole is mayAdminister, except that only administrators grant
// (or revoke) admin and the province-level approval role.
func (s *Service) mayGrantRole(ctx context.Context, actor Actor, unit string, r Role) error {
	if err := s.mayAdminister(ctx, actor, unit); err != nil {
		return err
	}
	if !r.ProvinceLevel() {
		return nil
	}
	admin, err := s.isAdmin(ctx, actor)
	if err != nil {
		return err
	}
	if !admin {
		return forbidden("only administrators grant the %s role", r)
	}
	return nil
}

// CheckApprover reports whether approverID may approve (or reject) what
// the submitters (account ids; empty ones are skipped) submitted:
//
//   - the approver is an active official holding broadcast_approver in
//     the approval unit (Config.ApprovalUnit), not in any unit;
//   - the approver is none of the submitters;
//   - the approver did not create a submitter's account, and did not
//     grant any role a submitter holds, at any time.
//
// Errors: ErrForbidden (not an approver of the approval unit),
// ErrFourEyes (not independent of a submitter).
func (s *Service) CheckApprover(ctx context.Context, approverID string, submitters ...string) error {
	if s.cfg.ApprovalUnit == "" {
		return forbidden("no approval unit is configured (LOA_APPROVAL_UNIT), so nobody may approve")
	}
	grants, err := s.actorGrants(ctx, Actor{AccountID: approverID})
	if err != nil && !errors.Is(err, ErrForbidden) {
		return err
	}
	if !slices.Contains(grants, RoleGrant{Unit: s.cfg.ApprovalUnit, Role: RoleBroadcastApprover}) {
		return forbidden("approving needs the role %s in the approval unit %s", RoleBroadcastApprover, s.cfg.ApprovalUnit)
	}
	return s.CheckIndependent(ctx, approverID, submitters...)
}

// CheckIndependent returns an error wrapping ErrFourEyes when the approver
// is one of the submitters (the officials who wrote or submitted what is
// approved), appointed one, or was appointed by one: created their
// account or granted a role they hold, at any depth of their line of
// appointment, in either direction (parts 2 and 3 of the approver rule,
// for any four-eyes decision; empty ids are skipped). The second
// direction matters as much as the first: an official whose account a
// submitter created has the phone and the password the submitter chose,
// so once given the approval role it approves the submitter's requests
// in the submitter's hands.
func (s *Service) CheckIndependent(ctx context.Context, approverID string, submitters ...string) error {
	for _, sub := range submitters {
		if sub == "" {
			continue
		}
		if sub == approverID {
			return fourEyes("the approver submitted it")
		}
		if err := s.appointedBy(ctx, approverID, sub, "approver", "submitter"); err != nil {
			return err
		}
		if err := s.appointedBy(ctx, sub, approverID, "submitter", "approver"); err != nil {
			return err
		}
	}
	return nil
}

// maxAppointers bounds the accounts appointedBy reads for one submitter.
// A line of appointment is a few accounts long (an administrator, a unit
// admin, the official); one longer than this is refused rather than
// read to its end.
const maxAppointers = 64

// appointedBy returns ErrFourEyes when the account traces back to
// appointer: appointer created it or granted a role it holds, or created
// or granted a role of an account that did — at any depth, so that a
// puppet's puppet is still a puppet. The error names them as
// appointerName and accountName ("approver", "submitter").
func (s *Service) appointedBy(ctx context.Context, appointer, account, appointerName, accountName string) error {
	approverID, submitter := appointer, account
	seen := map[string]bool{submitter: true}
	queue := []string{submitter}
	for depth := 0; len(queue) > 0; depth++ {
		var next []string
		for _, id := range queue {
			a, err := s.d.Store.Account(ctx, id)
			if errors.Is(err, ErrNotFound) {
				continue // an API key, the CLI, or a self-registration
			}
			if err != nil {
				return err
			}
			recs, err := s.d.Store.RoleGrantRecords(ctx, id)
			if err != nil {
				return err
			}
			type link struct{ by, what string }
			links := []link{{a.CreatedBy, "created"}}
			for _, g := range recs {
				links = append(links, link{g.GrantedBy, "granted the role " + string(g.Role) + " of"})
			}
			for _, l := range links {
				switch {
				case l.by == "" || seen[l.by]:
					continue
				case l.by == approverID && depth == 0:
					return fourEyes("the %s %s the %s's account", appointerName, l.what, accountName)
				case l.by == approverID:
					return fourEyes("the %s's account traces back to the %s, who %s an account in its line of appointment", accountName, appointerName, l.what)
				}
				seen[l.by] = true
				next = append(next, l.by)
			}
			if len(seen) > maxAppointers {
				return fourEyes("the %s's line of appointment is longer than %d accounts; an approver's independence cannot be told", accountName, maxAppointers)
			}
		}
		queue = next
	}
	return nil
}

func checkGrant(g RoleGrant) error {
	var v loa.Validation
	if !validUnit(g.Unit) {
		v.Add("unit", "must be a unit code of 1-%d characters without spaces or '/'", maxUnitLen)
	}
	if !g.Role.Valid() {
		v.Add("role", "must be one of %s", joinRoles(Roles()))
	}
	return v.Err(ErrInvalid)
}

func validUsername(u string) bool {
	if len(u) < 3 || len(u) > 64 || u[0] < 'a' || u[0] > 'z' {
		return false
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func validUnit(u string) bool {
	return u != "" && len(u) <= maxUnitLen && !strings.ContainsAny(u, " /\t\r\n")
}

func joinRoles(rs []Role) string {
	ss := make([]string, len(rs))
	for i, r := range rs {
		ss[i] = string(r)
	}
	return strings.Join(ss, ",")
}

// OneTimePassword returns a random password that meets the default policy:
// 16 characters from upper case, lower case, digits and symbols, with one
// of each class.
func OneTimePassword() (string, error) {
	classes := []string{"ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnopqrstuvwxyz", "23456789", "!#%+-=?@"}
	all := strings.Join(classes, "")
	out := make([]byte, 16)
	pick := func(set string) (byte, error) {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(set))))
		if err != nil {
			return 0, err
		}
		return set[n.Int64()], nil
	}
	var err error
	for i := range out {
		set := all
		if i < len(classes) {
			set = classes[i]
		}
		if out[i], err = pick(set); err != nil {
			return "", fmt.Errorf("accounts: one-time password: %w", err)
		}
	}
	// Shuffle, so the classes are not in fixed places.
	for i := len(out) - 1; i > 0; i-- {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(i+1)))
		if err != nil {
			return "", fmt.Errorf("accounts: one-time password: %w", err)
		}
		j := n.Int64()
		out[i], out[j] = out[j], out[i]
	}
	return string(out), nil
}
