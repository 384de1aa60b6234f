package accounts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/otp"
)

// maxUsernameBytes bounds what is accepted as a user name where one is
// looked up without a password (a password reset).
const maxUsernameBytes = 256

// ResetConfirmation completes a password reset: the challenge and the
// SMS code that RequestReset sent, the new password, and for an official
// a second factor that is not the phone (an authenticator or recovery
// code).
type ResetConfirmation struct {
	ChallengeID string
	Code        string
	Password    string
	OTP         string
	// ClientKey is the key the reset was requested with, if any: a
	// challenge asked for with a valid key of the account, confirmed with
	// the same key, passes its address's wait.
	ClientKey string
	IP        string
}

// CheckResetAddress refuses, with loa.ERateLimited *loa.Error wrapping ErrTooManyWrongCodes, a
// client address that must wait after too many wrong reset codes. It
// costs one Redis read and reads nothing the client sent, so the API
// calls it before the body.
func (s *Service) CheckResetAddress(ctx context.Context, ip string) error {
	addr := throttleAddr(ip)
	if addr == "" {
		return nil
	}
	return s.resetThrottled(ctx, "reset:ip:"+addr, s.now(), ip)
}

// RequestReset starts a password reset for the account the user name
// names (a citizen ID, tax code, verified phone or an official's user
// name, as at sign-in): a code goes by SMS to that account's verified
// phone. The answer is the same challenge whether or not an active
// account exists, after the same work: for a user name that names none
// (or names a pending or closed account) a code is issued, under the
// same limits, to a number no one has and sent nowhere; the SMS to a real
// phone is sent after the answer. Send limits are per user name as typed
// (so two identifiers of one account do not share, and so reveal, a
// window) and per client address. A user name whose wrong reset codes
// made it wait is refused first.
//
// When the user name names two active accounts (a phone number that is
// also an organisation's tax code), the account whose verified phone it
// is is reset: the code goes to the phone that was typed.
//
// The challenge returned carries its ID and expiry only. Errors:
// a loa.EInvalid *loa.Error, a loa.ERateLimited *loa.Error (send limits, or
// ErrTooManyWrongCodes).
func (s *Service) RequestReset(ctx context.Context, username, ip string) (otp.Challenge, error) {
	return s.RequestResetWith(ctx, ResetRequest{Username: username, IP: ip})
}

// ResetRequest asks for a password reset code.
type ResetRequest struct {
	Username string
	// ClientKey is the client_key of this client's last password sign-in
	// to the account (SignInResult.ClientKey), if it has one. With it the
	// request is counted on the key, not on the user name and the
	// account: a stranger who spends those (asking codes, typing wrong
	// ones) does not keep the owner's app from resetting its password.
	ClientKey string
	IP        string
}

// RequestResetWith is RequestReset with the client's key: a valid key of
// the account the user name names has the send window, the account's
// bound of reset codes and the count of wrong codes of its own (the same
// limits, apart from everyone else's). A key of another account, or a
// made-up one, changes nothing. The answer is the same either way.
func (s *Service) RequestResetWith(ctx context.Context, r ResetRequest) (otp.Challenge, error) {
	username, ip := r.Username, r.IP
	var v loa.Validation
	switch u := strings.TrimSpace(username); {
	case u == "":
		v.Add("username", "is required")
	case len(u) > maxUsernameBytes:
		v.Add("username", "is longer than %d bytes", maxUsernameBytes)
	}
	if err := v.Err(ErrInvalid); err != nil {
		return otp.Challenge{}, err
	}
	now := s.now()
	ukey := userKey(username)
	key := strings.TrimSpace(r.ClientKey)
	// The address's wait (after wrong reset codes) holds up every client
	// behind it, an office's NAT or a carrier's shared address included.
	// A client with a valid key of the account it names is the account's
	// own (its wrong codes count on its key) and passes it; checking the
	// key needs the account, so only a keyed request is looked up first.
	if key == "" {
		if err := s.CheckResetAddress(ctx, ip); err != nil {
			return otp.Challenge{}, err
		}
		if err := s.resetThrottled(ctx, "reset:user:"+ukey, now, ip); err != nil {
			return otp.Challenge{}, err
		}
	}
	login := loginOf(username, now)
	cands, err := s.d.Store.FindAccounts(ctx, login)
	if err != nil {
		return otp.Challenge{}, fmt.Errorf("accounts: request reset: %w", err)
	}
	var a Account
	for _, c := range cands {
		if a.ID == "" || (login.Phone != "" && c.Phone == login.Phone) {
			a = c
		}
	}
	// bound names what the request is counted on: the account, or the
	// client's own key of it.
	bound := a.ID
	if key != "" {
		if a.ID != "" && s.validClientKey(key, a.ID) {
			ukey = "ck-" + clientKeyID(key)
			bound = ukey
		} else if err := s.CheckResetAddress(ctx, ip); err != nil {
			return otp.Challenge{}, err
		}
		if err := s.resetThrottled(ctx, "reset:user:"+ukey, now, ip); err != nil {
			return otp.Challenge{}, err
		}
	}
	phone, subject := decoyPhone(username), resetSubject(ukey, "")
	// The reset codes of one account are bounded whatever user names and
	// addresses ask; an unknown user name costs the same step, and its
	// look-up writes nothing.
	var (
		wait   time.Duration
		target string
	)
	if a.ID != "" && a.Phone != "" {
		target = a.ID
		wait, err = s.d.Throttle.Take(ctx, resetCodesKey(bound), now, resetCodeBackoff)
	} else {
		wait, err = s.d.Throttle.Wait(ctx, resetCodesKey("u:"+ukey), now)
	}
	if err != nil {
		return otp.Challenge{}, fmt.Errorf("accounts: request reset: %w", err)
	}
	if a.ID != "" && a.Phone != "" && wait == 0 {
		phone, subject = a.Phone, resetSubject(ukey, a.ID)
	} else {
		a = Account{}
	}
	// The address's window of codes (LOA_CODES_PER_IP) is shared by
	// everyone behind it; a stranger asking codes for made-up user names
	// from an office's NAT would spend it for the whole office. A client
	// with a valid key of the account is bounded by its key's window and
	// the account's bound of reset codes (which go only to the account's
	// own phone), so it is not counted on the address.
	sendIP := ip
	if strings.HasPrefix(ukey, "ck-") {
		sendIP = ""
	}
	ch, code, err := s.issueCodeWith(ctx, phone, otp.PurposeReset, sendIP, otp.IssueOptions{Subject: subject, Window: "reset-" + ukey})
	if err != nil {
		return otp.Challenge{}, err
	}
	switch {
	case a.ID != "":
		s.audit(ctx, "anonymous", "password.reset.request", a.ID, ip, nil)
		s.detach(ctx, "password reset code", func(ctx context.Context) error { return s.sendCode(ctx, ch, code, a.ID, false) })
	case target != "":
		// Past the bound: answered as for an unknown user name.
		s.audit(ctx, "anonymous", "password.reset.request", target, ip, map[string]string{"reason": "too_many_codes"})
	default:
		s.audit(ctx, "anonymous", "password.reset.request", "", ip, map[string]string{"reason": "unknown_user"})
	}
	// What the challenge is bound to, and where it went, stay here.
	return otp.Challenge{ID: ch.ID, Purpose: ch.Purpose, ExpiresAt: ch.ExpiresAt}, nil
}

// ConfirmReset sets a new password with the code RequestReset sent. The
// code is checked without being spent until everything else holds, so a
// refused password or second factor can be corrected with the same code;
// it is spent once, however many confirmations race. Then every session
// of the account ends, its sign-in failures are forgotten, and the phone
// is told. No session is opened: the person signs in with the new
// password (and an official's second factor).
//
// Officials also give OTP, an authenticator or recovery code: a code to
// the phone alone must not hand over an account whose sign-in needs more
// than the phone. Wrong reset codes are counted per user name as typed
// at the request and per client address; past the free failures they
// wait, doubling, before another code or another try.
//
// Errors: *ValidationError (field "password" for the policy or the
// history, "code", "challenge_id"); ErrCode for a wrong, expired, used
// or foreign code — also when the user name named no account;
// ErrSecondFactorRequired, ErrSecondFactor, ErrLocked for an official;
// ErrForbidden for an account that signs in only through single sign-on;
// loa.ERateLimited *loa.Error wrapping ErrTooManyWrongCodes.
func (s *Service) ConfirmReset(ctx context.Context, r ResetConfirmation) error {
	var v loa.Validation
	chID, code := strings.TrimSpace(r.ChallengeID), strings.TrimSpace(r.Code)
	if chID == "" {
		v.Add("challenge_id", "is required")
	}
	if len(code) != otp.SMSCodeDigits || !allDigits(code) {
		v.Add("code", "must be the 6-digit code of the SMS")
	}
	s.checkNewPassword(&v, "password", r.Password)
	if err := v.Err(ErrInvalid); err != nil {
		return err
	}
	now := s.now()
	key := strings.TrimSpace(r.ClientKey)
	// As for the request: only a client naming its key is looked up
	// before its address's wait is checked.
	if key == "" {
		if err := s.CheckResetAddress(ctx, r.IP); err != nil {
			return err
		}
	}
	subject, err := s.d.Codes.Subject(ctx, chID)
	if key != "" {
		// The challenge was asked for with this key, valid for its
		// account (its subject names the key's id only then).
		ukey, accountID, _ := strings.Cut(subject, " ")
		if err != nil || accountID == "" || ukey != "ck-"+clientKeyID(key) || !s.validClientKey(key, accountID) {
			if werr := s.CheckResetAddress(ctx, r.IP); werr != nil {
				return werr
			}
		}
	}
	if err != nil {
		s.audit(ctx, "anonymous", "password.reset.failure", "", r.IP, map[string]string{"reason": reasonOf(err)})
		if errors.Is(err, otp.ErrNotFound) {
			// A challenge ID that names nothing is a guess like a wrong
			// code: the address pays for it, and so cannot write the
			// audit log without bound.
			if ferr := s.resetFailed(ctx, now, r.IP, ""); ferr != nil {
				return ferr
			}
		}
		return codeError(err)
	}
	ukey, accountID, _ := strings.Cut(subject, " ")
	if ukey != "" {
		if err := s.resetThrottled(ctx, "reset:user:"+ukey, now, r.IP); err != nil {
			return err
		}
	}
	ch, err := s.d.Codes.Peek(ctx, chID, code)
	if err != nil {
		s.audit(ctx, "anonymous", "password.reset.failure", accountID, r.IP, map[string]string{"reason": reasonOf(err)})
		if errors.Is(err, otp.ErrWrongCode) {
			if ferr := s.resetFailed(ctx, now, r.IP, ukey); ferr != nil {
				return ferr
			}
		}
		return codeError(err)
	}
	if ch.Purpose != otp.PurposeReset || ukey == "" {
		return codeRejected(nil)
	}
	var a Account
	if accountID != "" {
		if a, err = s.d.Store.Account(ctx, accountID); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("accounts: confirm reset: %w", err)
		}
	}
	if a.ID == "" || a.Status != StatusActive || a.Phone != ch.Phone {
		// No account (a code to a number no one has cannot be right but
		// by chance), or it was closed or changed its phone since.
		s.audit(ctx, "anonymous", "password.reset.failure", accountID, r.IP, map[string]string{"reason": "no_account"})
		return codeRejected(otp.ErrWrongCode)
	}
	if a.PasswordHash == "" {
		return forbidden("the account signs in through single sign-on and has no password")
	}
	if a.Kind == KindOfficial {
		method, err := s.resetFactor(ctx, a, r.OTP)
		if err != nil {
			s.audit(ctx, "anonymous", "password.reset.failure", a.ID, r.IP, map[string]string{"reason": "second_factor", "method": method})
			return err
		}
	}
	if s.cfg.Policy.History > 0 {
		hist, err := s.d.Store.PasswordHistory(ctx, a.ID, s.cfg.Policy.History)
		if err != nil {
			return fmt.Errorf("accounts: confirm reset: %w", err)
		}
		reused, err := s.reused(r.Password, hist)
		if err != nil {
			return fmt.Errorf("accounts: confirm reset: %w", err)
		}
		if reused {
			v.Fields = append(v.Fields, loa.FieldError{Field: "password", Detail: fmt.Sprintf("must differ from the last %d passwords", s.cfg.Policy.History), Rules: []string{"history"}})
			return v.Err(ErrInvalid)
		}
	}
	hash, err := s.d.Hasher.Hash(r.Password)
	if err != nil {
		return fmt.Errorf("accounts: confirm reset: %w", err)
	}
	// Spend the code last: of two confirmations racing with it, one wins.
	if _, err := s.d.Codes.Verify(ctx, chID, code); err != nil {
		return codeError(err)
	}
	at := now.UTC()
	if err := s.d.Store.SetPassword(ctx, a.ID, hash, at); err != nil {
		return fmt.Errorf("accounts: confirm reset: %w", err)
	}
	if err := s.d.Sessions.RevokeAccount(ctx, a.ID, 0); err != nil {
		return fmt.Errorf("accounts: confirm reset: %w", err)
	}
	cleared := []string{"signin:acct:" + a.ID, "reset:user:" + ukey, resetCodesKey(a.ID)}
	if strings.HasPrefix(ukey, "ck-") {
		cleared = append(cleared, resetCodesKey(ukey)) // the client key's own bound
	}
	for _, k := range cleared {
		if err := s.d.Throttle.Clear(ctx, k); err != nil {
			s.d.Log.Warn("accounts: clearing failures after a reset", slog.Any("error", err))
		}
	}
	s.audit(ctx, a.ID, "password.reset", a.ID, r.IP, map[string]string{"kind": string(a.Kind)})
	s.detach(ctx, "password reset notice", func(ctx context.Context) error {
		return s.sendText(ctx, "notice-"+uuid.NewString(), a.Phone, at.Add(time.Hour), noticePasswordReset)
	})
	return nil
}

// noticePasswordReset tells the phone that its account's password was
// reset (one GSM-7 segment, like the codes).
const noticePasswordReset = "Mat khau tai khoan Loa cua ban vua duoc dat lai; moi phien dang nhap da ket thuc. Neu khong phai ban, hay lien he bo phan ho tro ngay."

// resetCodeBackoff bounds the reset codes one account's phone gets,
// whatever user names and addresses ask: 5, the fifth making the next
// wait 30 minutes, each later one doubling the wait up to 4 hours; all
// forgotten a day after the last. A request past the bound is answered
// as for an unknown user name (a code to a number no one has), so a
// stranger can neither flood the phone by spelling its number many ways
// from many addresses, nor guess codes on more than a handful of real
// challenges, nor learn that the bound was reached.
var resetCodeBackoff = Backoff{Free: 4, Base: 30 * time.Minute, Max: 4 * time.Hour, Forget: 24 * time.Hour}

func resetCodesKey(id string) string { return "resetsms:" + id }

// resetSubject binds a reset code to the user name as typed (its hash)
// and the account it resets ("" when it names none).
func resetSubject(ukey, accountID string) string { return ukey + " " + accountID }

// resetThrottled returns loa.ERateLimited *loa.Error wrapping ErrTooManyWrongCodes while key
// waits.
func (s *Service) resetThrottled(ctx context.Context, key string, now time.Time, ip string) error {
	wait, err := s.d.Throttle.Wait(ctx, key, now)
	if err != nil {
		return fmt.Errorf("accounts: password reset: %w", err)
	}
	if wait <= 0 {
		return nil
	}
	s.auditRefusal(ctx, key, "password.reset.failure", "", ip, map[string]string{"reason": "throttled"})
	return tooManyWrongCodes(wait)
}

// resetFailed counts a wrong reset code against the user name and the
// client address.
func (s *Service) resetFailed(ctx context.Context, now time.Time, ip, ukey string) error {
	if ukey != "" {
		if _, err := s.d.Throttle.Fail(ctx, "reset:user:"+ukey, now, s.cfg.ResetBackoff); err != nil {
			return fmt.Errorf("accounts: password reset: %w", err)
		}
	}
	if addr := throttleAddr(ip); addr != "" {
		if _, err := s.d.Throttle.Fail(ctx, "reset:ip:"+addr, now, s.cfg.AddressBackoff); err != nil {
			return fmt.Errorf("accounts: password reset: %w", err)
		}
	}
	return nil
}

// resetFactor checks an official's second factor for a reset: an
// authenticator or a recovery code, never a code sent to the phone the
// reset code went to. Failures count as at sign-in.
func (s *Service) resetFactor(ctx context.Context, a Account, code string) (string, error) {
	code = strings.TrimSpace(code)
	switch {
	case code == "":
		return "", ErrSecondFactorRequired
	case isRecoveryCode(code):
		return "recovery", s.useRecoveryCode(ctx, a, code, clientLoa)
	}
	return "totp", s.checkTOTP(ctx, a, code, clientLoa)
}
