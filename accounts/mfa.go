package accounts

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/otp"
)

// TOTPEnrolment is a begun enrolment: show URI (or PNG, a QR code of it)
// to the official once; it becomes active with ConfirmTOTP.
type TOTPEnrolment struct {
	FactorID string
	Secret   string
	URI      string
	PNG      []byte
}

// BeginTOTP starts (or restarts) an official's authenticator enrolment.
// An active factor stays active until the new one is confirmed. Errors:
// ErrForbidden for an account that is not an official.
func (s *Service) BeginTOTP(ctx context.Context, accountID, ip string) (TOTPEnrolment, error) {
	a, err := s.d.Store.Account(ctx, accountID)
	if err != nil {
		return TOTPEnrolment{}, err
	}
	if a.Kind != KindOfficial {
		return TOTPEnrolment{}, forbidden("only officials enrol an authenticator")
	}
	key, err := otp.GenerateTOTPKey(s.cfg.Issuer, a.Username)
	if err != nil {
		return TOTPEnrolment{}, fmt.Errorf("accounts: begin totp: %w", err)
	}
	id := uuid.NewString()
	sealed, err := s.d.Sealer.Seal([]byte(key.Secret), []byte("totp:"+id))
	if err != nil {
		return TOTPEnrolment{}, fmt.Errorf("accounts: begin totp: %w", err)
	}
	f := TOTPFactor{ID: id, AccountID: a.ID, SecretSealed: sealed, Status: "pending", CreatedAt: s.now().UTC()}
	if err := s.d.Store.CreateTOTPFactor(ctx, f); err != nil {
		return TOTPEnrolment{}, err
	}
	s.audit(ctx, a.ID, "mfa.totp.enrol.begin", a.ID, ip, map[string]string{"factor": id})
	return TOTPEnrolment{FactorID: id, Secret: key.Secret, URI: key.URI, PNG: key.PNG}, nil
}

// ConfirmTOTP activates the pending factor with its first valid code and
// returns the official's new recovery codes (shown once; the old ones are
// void). Replacing an active authenticator also needs current: a code of
// that authenticator or one of the recovery codes, so that a session
// alone — a stolen one — cannot swap the official's second factor for
// one of its own and void the official's recovery codes. Wrong current
// codes count on a path of their own (clientEnrol), so guessing them
// never locks the official's sign-in. Errors: ErrNoFactor,
// ErrSecondFactor (wrong code), ErrSecondFactorRequired (current
// missing), ErrLocked.
func (s *Service) ConfirmTOTP(ctx context.Context, accountID, code, current, ip string) (_ []string, err error) {
	defer func() {
		// The code confirming an enrolment is the request's field "code";
		// the current factor's, "current".
		if e, ok := errors.AsType[*loa.Error](err); ok && (e.Code == loa.EFactorRejected || e.Code == loa.EFactorRequired) && e.Field == "otp" {
			c := *e
			c.Field, c.Err = "code", err
			err = &c
		}
	}()
	code = strings.TrimSpace(code)
	if len(code) != otp.TOTPDigits || !allDigits(code) {
		return nil, loa.Invalid("code", "must be the 6-digit code the authenticator app shows").Wrap(ErrInvalid)
	}
	f, err := s.d.Store.TOTPFactor(ctx, accountID, "pending")
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNoFactor
	}
	if err != nil {
		return nil, fmt.Errorf("accounts: confirm totp: %w", err)
	}
	if err := s.checkCurrentFactor(ctx, accountID, current, ip); err != nil {
		return nil, err
	}
	secret, err := s.d.Sealer.Open(f.SecretSealed, []byte("totp:"+f.ID))
	if err != nil {
		return nil, fmt.Errorf("accounts: confirm totp: %w", err)
	}
	if err := s.d.TOTP.VerifyFor(ctx, f.ID, clientLoa, string(secret), code); err != nil {
		s.audit(ctx, accountID, "mfa.totp.enrol.failure", accountID, ip, map[string]string{"factor": f.ID})
		switch {
		case errors.Is(err, otp.ErrLocked):
			return nil, fmt.Errorf("%w: %w", ErrLocked, err)
		case errors.Is(err, otp.ErrInvalidCode), errors.Is(err, otp.ErrReplay):
			return nil, fmt.Errorf("%w: %w", ErrSecondFactor, err)
		}
		return nil, fmt.Errorf("accounts: confirm totp: %w", err)
	}
	plain, hashed, err := otp.NewRecoveryCodes(otp.DefaultRecoveryCodes, s.cfg.RecoveryKey)
	if err != nil {
		return nil, fmt.Errorf("accounts: confirm totp: %w", err)
	}
	if err := s.d.Store.ActivateTOTPFactor(ctx, f.ID, hashed, s.now().UTC()); err != nil {
		return nil, err
	}
	s.audit(ctx, accountID, "mfa.totp.enrol", accountID, ip, map[string]string{"factor": f.ID, "recovery_codes": fmt.Sprint(len(plain))})
	return plain, nil
}

// clientEnrol is the second-factor client of replacing an authenticator:
// its failures and locks are its own, apart from sign-in's.
const clientEnrol = "enrol"

// checkCurrentFactor requires, when the account has an active
// authenticator, that current is one of its codes or a recovery code.
func (s *Service) checkCurrentFactor(ctx context.Context, accountID, current, ip string) error {
	if _, err := s.d.Store.TOTPFactor(ctx, accountID, "active"); errors.Is(err, ErrNotFound) {
		return nil
	} else if err != nil {
		return fmt.Errorf("accounts: confirm totp: %w", err)
	}
	current = strings.TrimSpace(current)
	if current == "" {
		return &loa.Error{Code: loa.EFactorRequired, Field: "current", Err: ErrSecondFactorRequired,
			Detail: "replacing the authenticator needs current: a code of the authenticator enrolled now, or a recovery code"}
	}
	a, err := s.d.Store.Account(ctx, accountID)
	if err != nil {
		return err
	}
	if isRecoveryCode(current) {
		err = s.useRecoveryCode(ctx, a, current, clientEnrol)
	} else {
		err = s.checkTOTP(ctx, a, current, clientEnrol)
	}
	if err == nil {
		return nil
	}
	s.audit(ctx, accountID, "mfa.totp.enrol.failure", accountID, ip, map[string]string{"reason": "current_factor"})
	if e, ok := errors.AsType[*loa.Error](err); ok && e.Field == "otp" {
		c := *e
		c.Field, c.Err = "current", err
		return &c
	}
	return err
}

// pushCode sends an official a code for client: to the Egov app with SMS
// as the fallback ("push"), or by SMS only ("sms"). The challenge is the
// client's own: a code for Loa's sign-in is not valid at /v1/mfa/verify,
// nor the reverse, and a new one replaces only the client's earlier one.
// With detached the code is published after the answer (see detach).
func (s *Service) pushCode(ctx context.Context, a Account, method, ip, client string, detached bool) (CodeSent, error) {
	if a.Phone == "" {
		return CodeSent{}, fmt.Errorf("%w: the account has no phone for codes", ErrSecondFactor)
	}
	var o otp.IssueOptions
	if client == clientSSOBind {
		// The binding's codes have a window of their own, shared by every
		// identity named like the official: at most one window of them
		// reaches the phone, and none of the official's own is spent.
		o.Window = "ssobind-" + a.ID
	}
	ch, code, err := s.issueCodeWith(ctx, a.Phone, codePurpose(client), ip, o)
	if err != nil {
		return CodeSent{}, err
	}
	if err := s.d.Challenges.PutChallenge(ctx, client+":"+a.ID, ch.ID, ch.ExpiresAt.Sub(s.now())); err != nil {
		return CodeSent{}, fmt.Errorf("accounts: send code: %w", err)
	}
	send := func(ctx context.Context) error { return s.sendCode(ctx, ch, code, a.ID, method == "push") }
	if detached {
		s.detach(ctx, "second-factor code", send)
	} else if err := send(ctx); err != nil {
		return CodeSent{}, err
	}
	return CodeSent{Method: method, ExpiresAt: ch.ExpiresAt}, nil
}

// officialByUser finds an active official by user name or account id.
// Both look-ups are always made, so a user who is not found costs the
// same queries as one who is.
func (s *Service) officialByUser(ctx context.Context, user string) (Account, error) {
	user = strings.TrimSpace(user)
	a, err := s.d.Store.FindAccount(ctx, Login{Username: strings.ToLower(user)})
	byID, idErr := s.d.Store.Account(ctx, user)
	if errors.Is(err, ErrNotFound) {
		a, err = byID, idErr
	}
	if err != nil {
		return Account{}, err
	}
	if a.Kind != KindOfficial || a.Status != StatusActive {
		return Account{}, ErrNotFound
	}
	return a, nil
}

// Challenge sends an official a code for a shared app's second factor
// (POST /v1/mfa/challenge): method "push" (Egov app, SMS fallback) or
// "sms". The calling system's address is not rate-limited per address
// (it speaks for many officials); the per-phone limits apply. An unknown
// official gets the same answer after the same work and no code: a code
// is issued and remembered for a number no one has, and the real code is
// published after the answer, so neither the answer nor its time tells
// who is an official. Errors: a loa.EInvalid *loa.Error, a
// loa.ERateLimited *loa.Error.
func (s *Service) Challenge(ctx context.Context, actor Actor, user, method string) (CodeSent, error) {
	var v loa.Validation
	if strings.TrimSpace(user) == "" {
		v.Add("user", "is required")
	}
	if method != "push" && method != "sms" {
		v.Add("method", "must be push or sms")
	}
	if err := v.Err(ErrInvalid); err != nil {
		return CodeSent{}, err
	}
	a, err := s.officialByUser(ctx, user)
	if errors.Is(err, ErrNotFound) {
		// The same answer, after the same code issue (and its per-phone
		// limits) on a phone no one has, so the calling system learns
		// nothing about who is an official.
		client := clientApp(actor.APIKeyID)
		ch, _, err := s.issueCode(ctx, decoyPhone(user), codePurpose(client), "")
		if err != nil {
			return CodeSent{}, err
		}
		if err := s.d.Challenges.PutChallenge(ctx, client+":decoy-"+userKey(user), ch.ID, ch.ExpiresAt.Sub(s.now())); err != nil {
			return CodeSent{}, fmt.Errorf("accounts: send code: %w", err)
		}
		s.audit(ctx, actor.name(), "mfa.challenge.unknown", "", actor.IP, map[string]string{"method": method})
		return CodeSent{Method: method, ExpiresAt: ch.ExpiresAt}, nil
	}
	if err != nil {
		return CodeSent{}, err
	}
	sent, err := s.pushCode(ctx, a, method, "", clientApp(actor.APIKeyID), true)
	if err != nil {
		return CodeSent{}, err
	}
	s.audit(ctx, actor.name(), "mfa.challenge", a.ID, actor.IP, map[string]string{"method": method})
	return sent, nil
}

// decoyPhone is the number that stands for a user name naming no account
// where a code is issued anyway: 15 digits starting "00", which no
// normalised Vietnamese number (84…) can be, derived from the name so
// the per-phone limits apply to it as to a real one.
func decoyPhone(user string) string {
	h := sha256.Sum256([]byte("loa decoy:" + strings.ToLower(strings.TrimSpace(user))))
	n := binary.BigEndian.Uint64(h[:8]) % 1e13
	return fmt.Sprintf("00%013d", n)
}

// VerifyMFA checks an official's second-factor code for a shared app
// (POST /v1/mfa/verify): a TOTP code, a recovery code or a pushed code.
// Errors: a loa.EInvalid *loa.Error, ErrSecondFactor (also for an unknown
// official), ErrLocked.
func (s *Service) VerifyMFA(ctx context.Context, actor Actor, user, code string) (_ Account, err error) {
	defer func() {
		// A shared app's caller is not signing in: a wrong code is the
		// request's field "code", not a failed sign-in.
		if errors.Is(err, ErrSecondFactor) {
			err = (&loa.Error{Code: loa.ECodeRejected, Field: "code", Detail: "the code is wrong, already used or expired"}).Wrap(err)
		}
	}()
	var v loa.Validation
	if strings.TrimSpace(user) == "" {
		v.Add("user", "is required")
	}
	if strings.TrimSpace(code) == "" {
		v.Add("code", "is required")
	}
	if err := v.Err(ErrInvalid); err != nil {
		return Account{}, err
	}
	a, err := s.officialByUser(ctx, user)
	if errors.Is(err, ErrNotFound) {
		return Account{}, fmt.Errorf("%w: unknown official", ErrSecondFactor)
	}
	if err != nil {
		return Account{}, err
	}
	method, err := s.secondFactor(ctx, a, code, clientApp(actor.APIKeyID))
	outcome := "mfa.verify"
	if err != nil {
		outcome = "mfa.verify.failure"
	}
	s.audit(ctx, actor.name(), outcome, a.ID, actor.IP, map[string]string{"method": method})
	if err != nil {
		return Account{}, err
	}
	return a, nil
}
