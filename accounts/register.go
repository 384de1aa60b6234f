package accounts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/text/unicode/norm"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/phone"
	"github.com/loa-hub/loa/otp"
)

const maxNameRunes = 200

// CitizenRegistration is what a citizen registers with.
type CitizenRegistration struct {
	FullName  string
	CitizenID string
	Phone     string
	Password  string
	IP        string // the client's address, for the per-address code limit
}

// OrganisationRegistration is what an organisation registers with.
type OrganisationRegistration struct {
	Name     string
	TaxCode  string
	Phone    string
	Password string
	IP       string
}

// Registration is the answer to a registration: a pending account and
// the SMS challenge that verifies its phone. Challenge is zero when the
// code could not be sent (CodeErr says why; a resend through SendCode
// works later).
type Registration struct {
	AccountID string
	Status    Status
	Challenge otp.Challenge
	CodeErr   error
}

// RegisterCitizen validates r, creates a pending citizen account and sends
// an SMS code to its phone. Errors: a loa.EInvalid *loa.Error naming every bad
// field, Taken(field) for a taken citizen ID or verified phone.
func (s *Service) RegisterCitizen(ctx context.Context, r CitizenRegistration) (Registration, error) {
	var v loa.Validation
	name := s.checkName(&v, "full_name", r.FullName)
	if err := ValidateCitizenID(r.CitizenID, s.now()); err != nil {
		v.Add("citizen_id", "%s", strings.TrimPrefix(err.Error(), "accounts: invalid citizen ID: "))
	}
	ph := checkPhone(&v, r.Phone)
	s.checkNewPassword(&v, "password", r.Password)
	if err := v.Err(ErrInvalid); err != nil {
		return Registration{}, err
	}
	return s.register(ctx, Account{Kind: KindCitizen, FullName: name, CitizenID: r.CitizenID, Phone: ph}, r.Password, r.IP)
}

// RegisterOrganisation is RegisterCitizen for an organisation, identified
// by its tax code (stored normalised).
func (s *Service) RegisterOrganisation(ctx context.Context, r OrganisationRegistration) (Registration, error) {
	var v loa.Validation
	name := s.checkName(&v, "name", r.Name)
	tc, err := NormalizeTaxCode(r.TaxCode)
	if err != nil {
		v.Add("tax_code", "%s", strings.TrimPrefix(err.Error(), "accounts: invalid tax code: "))
	}
	ph := checkPhone(&v, r.Phone)
	s.checkNewPassword(&v, "password", r.Password)
	if err := v.Err(ErrInvalid); err != nil {
		return Registration{}, err
	}
	return s.register(ctx, Account{Kind: KindOrganisation, FullName: name, TaxCode: tc, Phone: ph}, r.Password, r.IP)
}

// register sends the code and stores the pending account. The send
// limits (per phone, per client address) are checked first, so a refused
// registration stores nothing. A phone that already belongs to an active
// account gets a notice instead of a code and nothing is stored, but the
// answer — a pending id and a challenge — and the work done are the same,
// so registration does not tell a stranger which phones have accounts.
// A citizen ID or tax code held by an active account does not block a
// pending registration (it reserves nothing); activation refuses it.
func (s *Service) register(ctx context.Context, a Account, password, ip string) (Registration, error) {
	ch, code, err := s.issueAnonymousCode(ctx, a.Phone, otp.PurposeRegister, ip)
	if err != nil {
		return Registration{}, err
	}
	owner, err := s.d.Store.FindAccount(ctx, Login{Phone: a.Phone})
	taken := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Registration{}, fmt.Errorf("accounts: register: %w", err)
	}
	hash, err := s.d.Hasher.Hash(password)
	if err != nil {
		return Registration{}, fmt.Errorf("accounts: register: %w", err)
	}
	now := s.now().UTC()
	a.ID, a.Status, a.PasswordHash, a.PasswordChangedAt, a.CreatedAt = uuid.NewString(), StatusPending, hash, now, now
	reg := Registration{AccountID: a.ID, Status: StatusPending, Challenge: ch}
	if taken {
		s.audit(ctx, "anonymous", "account.register.existing_phone", owner.ID, ip, map[string]string{"kind": string(a.Kind)})
		if err := s.sendNotice(ctx, ch, noticeExistingPhone); err != nil {
			reg.Challenge, reg.CodeErr = otp.Challenge{}, err
		}
		return reg, nil
	}
	if err := s.d.Store.CreateAccount(ctx, a); err != nil {
		return Registration{}, err
	}
	s.audit(ctx, a.ID, "account.register", a.ID, ip, map[string]string{"kind": string(a.Kind)})
	if err := s.sendCode(ctx, ch, code, a.ID, false); err != nil {
		reg.Challenge, reg.CodeErr = otp.Challenge{}, err
	}
	return reg, nil
}

// noticeExistingPhone is the SMS a registration with an already
// registered phone sends to that phone instead of a code (Vietnamese
// without diacritics, one GSM-7 segment, like the codes).
const noticeExistingPhone = "So dien thoai nay da co tai khoan Loa. Neu ban vua dang ky, hay dang nhap hoac dat lai mat khau. Neu khong, hay bo qua tin nhan nay."

// noticeIdentifierClaimed is the SMS the owner of a citizen ID or tax
// code gets when someone proved another phone and tried to register it.
const noticeIdentifierClaimed = "Co nguoi vua dang ky tai khoan Loa bang so giay to (CCCD/ma so thue) cua ban voi mot so dien thoai khac. Tai khoan cua ban khong thay doi."

// ownerNoticeBackoff bounds the notices one owner gets: 3 free, then one
// an hour, doubling up to one a day.
var ownerNoticeBackoff = Backoff{Free: 3, Base: time.Hour, Max: 24 * time.Hour, Forget: 24 * time.Hour}

// tellOwner tells the active owner of the citizen ID or tax code that the
// registration a claimed (field, from Taken's error) that someone
// tried to register it. The registrant has proved a phone by then, and
// learns from the 409 that the identifier is taken; the owner learns that
// somebody asked. Notices are limited per owner; failures are logged.
func (s *Service) tellOwner(ctx context.Context, a Account, field string) {
	var l Login
	switch field {
	case "citizen_id":
		l.CitizenID = a.CitizenID
	case "tax_code":
		l.TaxCode = a.TaxCode
	default:
		return
	}
	owner, err := s.d.Store.FindAccount(ctx, l)
	if err != nil || owner.Phone == "" {
		return
	}
	now := s.now()
	key := "notice:" + owner.ID
	if wait, err := s.d.Throttle.Wait(ctx, key, now); err != nil || wait > 0 {
		return
	}
	if _, err := s.d.Throttle.Fail(ctx, key, now, ownerNoticeBackoff); err != nil {
		s.d.Log.Warn("accounts: counting an owner notice", slog.Any("error", err))
		return
	}
	s.detach(ctx, "identifier notice", func(ctx context.Context) error {
		return s.sendText(ctx, "notice-"+uuid.NewString(), owner.Phone, now.Add(time.Hour), noticeIdentifierClaimed)
	})
}

// RemoveExpiredRegistrations deletes the pending registrations older than
// PendingTTL and returns how many. Safe for concurrent use.
func (s *Service) RemoveExpiredRegistrations(ctx context.Context) (int, error) {
	return s.d.Store.DeletePendingAccounts(ctx, s.now().Add(-s.cfg.PendingTTL))
}

// RunPendingGC calls RemoveExpiredRegistrations every interval until ctx
// ends; it returns nil then. Failures are logged and retried at the next
// tick. Safe to run on every replica.
func (s *Service) RunPendingGC(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := s.RemoveExpiredRegistrations(ctx); err != nil {
			if ctx.Err() == nil {
				s.d.Log.Warn("accounts: removing expired registrations", slog.Any("error", err))
			}
		} else if n > 0 {
			s.d.Log.Info("accounts: expired registrations removed", slog.Int("count", n))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// VerifyRegistration checks the SMS code of a pending account's
// registration and activates it. Errors: ErrNotFound (no such pending
// account), ErrCode (wrong, expired or used code, or a code for another
// phone or purpose), Taken("phone") when another account verified
// the phone first. Verifying an active account again is ErrNotFound.
func (s *Service) VerifyRegistration(ctx context.Context, accountID, challengeID, code, ip string) (Account, error) {
	a, err := s.d.Store.Account(ctx, accountID)
	if err != nil {
		return Account{}, err
	}
	if a.Status != StatusPending {
		return Account{}, fmt.Errorf("accounts: verify registration: not pending: %w", ErrNotFound)
	}
	if !s.now().Before(a.CreatedAt.Add(s.cfg.PendingTTL)) {
		return Account{}, fmt.Errorf("accounts: verify registration: expired: %w", ErrNotFound)
	}
	ch, err := s.d.Codes.Verify(ctx, challengeID, code)
	if err != nil {
		detail := map[string]string{"reason": reasonOf(err)}
		if errors.Is(err, otp.ErrNotFound) {
			// Wrong codes are few (a challenge takes 5); challenge IDs
			// that name nothing are not, so their rows are bounded.
			s.auditRefusal(ctx, "verify:nochallenge:"+a.ID, "account.verify.failure", a.ID, ip, detail)
		} else {
			s.audit(ctx, "anonymous", "account.verify.failure", a.ID, ip, detail)
		}
		return Account{}, codeError(err)
	}
	if ch.Purpose != otp.PurposeRegister || ch.Phone != a.Phone {
		return Account{}, codeRejected(nil)
	}
	if err := s.d.Store.ActivateAccount(ctx, a.ID, s.now().UTC()); err != nil {
		if ce, ok := errors.AsType[*loa.Error](err); ok && errors.Is(err, ErrTaken) {
			s.audit(ctx, "anonymous", "account.verify.conflict", a.ID, ip, map[string]string{"field": ce.Field})
			s.tellOwner(ctx, a, ce.Field)
		}
		return Account{}, err
	}
	s.audit(ctx, a.ID, "account.verify", a.ID, ip, nil)
	return s.d.Store.Account(ctx, a.ID)
}

// anonymousCodeBound bounds the SMS that anonymous requests (a
// registration, POST /v1/otp/sms) send one phone, over and above the
// per-purpose window of each: 10, the tenth making the next wait 30
// minutes, each later one doubling the wait up to 4 hours; forgotten a
// day after the last. Without it a stranger with many addresses could
// text any number 5 codes per purpose every 10 minutes, all day. It is
// checked in the step that issues the code, after the send limits (see
// otp.Bound); a refusal is a loa.ERateLimited *loa.Error wrapping
// otp.ErrPhoneBound (and otp.ErrTooManySends). The bound is the phone's
// whether or not an account holds it, so it tells nothing.
var anonymousCodeBound = otp.Bound{Free: 9, Base: 30 * time.Minute, Max: 4 * time.Hour, Forget: 24 * time.Hour}

// issueAnonymousCode issues a code of an anonymous flow: counted in the
// phone's anonymous bound too, and in the province's hourly budget
// (Config.AnonymousCodesPerHour) when there is one.
//
// The budget sheds the phones no active account holds first: they may
// spend four fifths of it. Once they have, a code to confirm a phone an
// account holds (verify_phone) still goes, from the reserve; the look-up
// that tells is made only then, so codes cost no query while the budget
// lasts. A registration's code is never from the reserve: a phone an
// account holds gets a notice, not a code, and registration must not
// tell which phones have accounts. So a stranger who spends the budget
// delays registrations of new numbers until the hour turns, and locks no
// one out: sign-in, second-factor and reset codes are not anonymous and
// not in the budget, and citizens' own phones keep the reserve.
func (s *Service) issueAnonymousCode(ctx context.Context, phone, purpose, ip string) (otp.Challenge, string, error) {
	o := otp.IssueOptions{Bound: &anonymousCodeBound, Budget: s.cfg.AnonymousBudget()}
	ch, code, err := s.issueCodeWith(ctx, phone, purpose, ip, o)
	if errors.Is(err, otp.ErrBudgetShare) && purpose != otp.PurposeRegister {
		held, ferr := s.d.Store.FindAccounts(ctx, Login{Phone: phone})
		if ferr != nil {
			return otp.Challenge{}, "", fmt.Errorf("accounts: issue code: %w", ferr)
		}
		if len(held) > 0 {
			o.Known = true
			ch, code, err = s.issueCodeWith(ctx, phone, purpose, ip, o)
		}
	}
	if errors.Is(err, otp.ErrBudget) {
		s.warnBudget(err)
		if s.d.Metrics != nil {
			s.d.Metrics.AnonymousCodeRefused(!errors.Is(err, otp.ErrBudgetShare))
		}
	}
	return ch, code, err
}

// AnonymousBudget is the hourly budget of the anonymous flows' codes
// (AnonymousCodesPerHour, four fifths of it for numbers no account
// holds), or nil when there is none.
func (c Config) AnonymousBudget() *otp.Budget {
	if c.AnonymousCodesPerHour <= 0 {
		return nil
	}
	n := c.AnonymousCodesPerHour
	return &otp.Budget{Name: "anonymous", Limit: n, Share: n * 4 / 5, Window: time.Hour}
}

// warnBudget logs, once an hour per process, that the budget of
// anonymous codes refused a code: the sign of SMS pumping, or of a budget
// set below the real registrations.
func (s *Service) warnBudget(err error) {
	hour := s.now().Truncate(time.Hour).Unix()
	if last := s.budgetWarned.Load(); last >= hour || !s.budgetWarned.CompareAndSwap(last, hour) {
		return
	}
	part := "its share for numbers no account holds"
	if !errors.Is(err, otp.ErrBudgetShare) {
		part = "all of it, the reserve of held numbers too"
	}
	s.d.Log.Warn("accounts: the hourly budget of anonymous SMS codes (LOA_ANONYMOUS_CODES_PER_HOUR) is spent: "+part+
		"; codes are refused until the hour turns (SMS pumping, or a budget below the real registrations)",
		slog.Int("budget", s.cfg.AnonymousCodesPerHour))
}

// AnonymousPurposes are the purposes anyone may ask a code for with
// SendCode: a registration's code again, and confirming a phone. Sign-in,
// second-factor and reset codes come only from their flows, after the
// password or bound to an account, so a stranger cannot make them.
var AnonymousPurposes = []string{otp.PurposeRegister, otp.PurposeVerifyPhone}

// SendCode issues an SMS code for phone and one of AnonymousPurposes and
// publishes it. Errors: a loa.EInvalid *loa.Error, a loa.ERateLimited *loa.Error.
func (s *Service) SendCode(ctx context.Context, rawPhone, purpose, ip string) (otp.Challenge, error) {
	var v loa.Validation
	ph := checkPhone(&v, rawPhone)
	if !slices.Contains(AnonymousPurposes, purpose) {
		v.Add("purpose", "must be one of %s (codes for sign-in, second factors and password reset are sent by those flows only)",
			strings.Join(AnonymousPurposes, ", "))
	}
	if err := v.Err(ErrInvalid); err != nil {
		return otp.Challenge{}, err
	}
	ch, code, err := s.issueAnonymousCode(ctx, ph, purpose, ip)
	if err != nil {
		return otp.Challenge{}, err
	}
	if err := s.sendCode(ctx, ch, code, "", false); err != nil {
		return otp.Challenge{}, err
	}
	return ch, nil
}

// CheckCode verifies an SMS code on its own (for flows outside Loa that
// only need to know the phone was confirmed). Only codes of
// AnonymousPurposes are accepted and spent here: a sign-in, second-factor
// or reset code is checked without being spent and refused, so that it
// stays for its own flow. Errors: ErrCode.
func (s *Service) CheckCode(ctx context.Context, challengeID, code string) (otp.Challenge, error) {
	ch, err := s.d.Codes.Peek(ctx, challengeID, code)
	if err != nil {
		return otp.Challenge{}, codeError(err)
	}
	if !slices.Contains(AnonymousPurposes, ch.Purpose) {
		return otp.Challenge{}, codeRejected(nil)
	}
	if ch, err = s.d.Codes.Verify(ctx, challengeID, code); err != nil {
		return otp.Challenge{}, codeError(err)
	}
	return ch, nil
}

// reasonOf classifies a code failure for the audit log.
func reasonOf(err error) string {
	switch {
	case errors.Is(err, otp.ErrWrongCode):
		return "wrong_code"
	case errors.Is(err, otp.ErrExpired):
		return "expired"
	case errors.Is(err, otp.ErrVoid):
		return "void"
	case errors.Is(err, otp.ErrNotFound):
		return "unknown_challenge"
	}
	return "error"
}

func (s *Service) checkName(v *loa.Validation, field, name string) string {
	name = norm.NFC.String(strings.Join(strings.Fields(name), " "))
	switch {
	case name == "":
		v.Add(field, "is required")
	case !utf8.ValidString(name):
		v.Add(field, "must be valid UTF-8")
	case utf8.RuneCountInString(name) > maxNameRunes:
		v.Add(field, "is longer than %d characters", maxNameRunes)
	}
	return name
}

func checkPhone(v *loa.Validation, raw string) string {
	if strings.TrimSpace(raw) == "" {
		v.Add("phone", "is required")
		return ""
	}
	p, err := phone.Normalize(raw)
	if err != nil {
		v.Add("phone", "not a Vietnamese mobile number (for example 0912345678 or 84912345678)")
	}
	return p
}

// checkNewPassword applies the policy's character rules.
func (s *Service) checkNewPassword(v *loa.Validation, field, pw string) {
	if err := s.cfg.Policy.Check(pw); err != nil {
		var pe *PasswordError
		if errors.As(err, &pe) {
			v.Fields = append(v.Fields, loa.FieldError{Field: field, Detail: strings.TrimPrefix(pe.Error(), "accounts: invalid password: "), Rules: pe.Missing})
			return
		}
		v.Add(field, "%v", err)
	}
}

// loginOf turns what a person typed as user name into the identifiers it
// could be.
func loginOf(username string, now time.Time) Login {
	u := strings.TrimSpace(username)
	l := Login{Username: strings.ToLower(u)}
	if ValidateCitizenID(u, now) == nil {
		l.CitizenID = u
	}
	if tc, err := NormalizeTaxCode(u); err == nil {
		l.TaxCode = tc
	}
	if p, err := phone.Normalize(u); err == nil {
		l.Phone = p
	}
	return l
}
