package accounts

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/quota"
	"github.com/loa-hub/loa/otp"
)

// SignInRequest is a sign-in: a user name (citizen ID, tax code, verified
// phone or an official's user name) and password, or — for officials when
// single sign-on is configured — an ID token instead of both. Officials
// add a second factor in OTP (a TOTP code, a recovery code, or a pushed
// code), or set SendCode ("push" or "sms") to be sent a code first.
type SignInRequest struct {
	Username string
	Password string
	IDToken  string
	OTP      string
	SendCode string
	IP       string
	// ClientKey is the key an earlier password sign-in of this client
	// returned (SignInResult.ClientKey): with it, failures count against
	// the key instead of the account (see passwordAccount).
	ClientKey string
}

// SignInResult is a new session, or (CodeSent set, Token empty) the news
// that a code is on its way.
type SignInResult struct {
	Token           string
	ExpiresAt       time.Time
	PasswordExpired bool
	Account         Account
	CodeSent        *CodeSent
	// ClientKey, after a password sign-in, is the client's key for the
	// account's next sign-ins (the one it sent, when that was valid).
	ClientKey string
}

// CodeSent describes a pushed or texted code.
type CodeSent struct {
	Method    string // push | sms
	ExpiresAt time.Time
}

// SignIn checks the credentials and opens a session. Errors:
// a loa.EInvalid *loa.Error for a malformed request; ErrBadCredentials for an
// unknown user, a wrong password, a pending or closed account or a
// rejected ID token (one answer for all, after the same password work);
// ErrSecondFactorRequired, ErrSecondFactor or
// ErrLocked for an official's second factor; a loa.ERateLimited *loa.Error wrapping
// ErrThrottled after repeated failures of the account, the user name or
// the client address, or when a code cannot be sent yet.
func (s *Service) SignIn(ctx context.Context, r SignInRequest) (SignInResult, error) {
	var v loa.Validation
	sso := r.IDToken != ""
	switch {
	case sso && (r.Username != "" || r.Password != ""):
		v.Add("id_token", "give either id_token or username and password, not both")
	case sso && s.d.OIDC == nil:
		v.Add("id_token", "single sign-on is not configured")
	case !sso && strings.TrimSpace(r.Username) == "":
		v.Add("username", "is required")
	case !sso && r.Password == "":
		v.Add("password", "is required")
	case !sso && len(r.Password) > MaxPasswordBytes:
		v.Add("password", "is longer than %d bytes", MaxPasswordBytes)
	}
	if r.SendCode != "" && r.SendCode != "push" && r.SendCode != "sms" {
		v.Add("send_code", "must be push or sms")
	}
	if r.SendCode != "" && r.OTP != "" {
		v.Add("send_code", "give either otp or send_code")
	}
	if err := v.Err(ErrInvalid); err != nil {
		return SignInResult{}, err
	}

	var (
		a        Account
		link     *SSOLink // an SSO identity to link once signed in
		clearKey string
		err      error
	)
	if sso {
		a, link, err = s.ssoAccount(ctx, r)
	} else {
		a, clearKey, err = s.passwordAccount(ctx, r)
	}
	if err != nil {
		return SignInResult{}, err
	}
	// An identity not bound yet, matched to the official by name, is a
	// client of its own: its pushed codes have their own send window and
	// challenge, and its wrong codes their own counts, so whoever holds
	// such an identity can neither spend the official's window of sign-in
	// codes, nor replace the code the official is about to type, nor lock
	// the official's authenticator for sign-in.
	client := clientLoa
	if link != nil {
		client = clientSSOBind
	}
	if a.Kind == KindOfficial {
		if r.SendCode != "" {
			sent, err := s.pushCode(ctx, a, r.SendCode, r.IP, client, false)
			if err != nil {
				return SignInResult{}, err
			}
			s.audit(ctx, a.ID, "mfa.challenge", a.ID, r.IP, map[string]string{"method": sent.Method})
			return SignInResult{Account: a, CodeSent: &sent}, nil
		}
		if strings.TrimSpace(r.OTP) == "" {
			s.audit(ctx, "anonymous", "session.failure", a.ID, r.IP, map[string]string{"reason": "second_factor_missing"})
			return SignInResult{}, ErrSecondFactorRequired
		}
		method, err := s.secondFactor(ctx, a, r.OTP, client)
		if err != nil {
			s.audit(ctx, "anonymous", "session.failure", a.ID, r.IP, map[string]string{"reason": "second_factor", "method": method})
			return SignInResult{}, err
		}
	}
	if link != nil {
		// Of two identities racing to link one account, one wins; the
		// other is refused as a mismatch would have been.
		link.LinkedAt = s.now().UTC()
		ok, err := s.d.Store.LinkSSO(ctx, *link)
		if err != nil {
			return SignInResult{}, fmt.Errorf("accounts: sign in: %w", err)
		}
		if !ok {
			s.audit(ctx, "anonymous", "session.failure", a.ID, r.IP, map[string]string{"reason": "sso_identity_mismatch", "method": "oidc"})
			return SignInResult{}, ErrBadCredentials
		}
		s.audit(ctx, a.ID, "sso.link", a.ID, r.IP, map[string]string{"issuer": link.Issuer, "subject": link.Subject})
		s.tellSSOLinked(ctx, a)
	}
	expired := !sso && s.cfg.Policy.Expired(a.PasswordChangedAt, s.now())
	res, err := s.openSession(ctx, a, expired)
	if err != nil {
		return SignInResult{}, err
	}
	if err := s.stillCurrent(ctx, a, res.Token, r.IP); err != nil {
		return SignInResult{}, err
	}
	if !sso {
		if res.ClientKey = strings.TrimSpace(r.ClientKey); !s.validClientKey(res.ClientKey, a.ID) {
			if res.ClientKey, err = s.newClientKey(a.ID); err != nil {
				return SignInResult{}, err
			}
		}
	}
	if clearKey != "" {
		if err := s.d.Throttle.Clear(ctx, clearKey); err != nil {
			s.d.Log.Warn("accounts: clearing sign-in failures", slog.Any("error", err))
		}
	}
	detail := map[string]string{"kind": string(a.Kind), "method": "password"}
	if sso {
		detail["method"] = "oidc"
	}
	if expired {
		detail["password_expired"] = "true"
	}
	s.audit(ctx, a.ID, "session.create", a.ID, r.IP, detail)
	return res, nil
}

// passwordAccount finds the active accounts the user name can name and
// checks the password against each, doing the same hashing work whether
// or not one exists. A user name that is both a phone and a tax code can
// name two accounts; a pending registration or a closed account is never
// a candidate, so it cannot shadow an active one.
//
// Failures are throttled per client address and per account (per user
// name when it names none, so the answer does not tell): after the free
// failures each one doubles the wait, up to a cap, and an attempt during
// the wait is refused with a loa.ERateLimited *loa.Error wrapping ErrThrottled before any
// password work. A throttled official who brings a recovery code is
// still let through to the password and the code, so strangers cannot
// lock an official out. It returns the account and the throttle key to
// clear once the sign-in succeeds.
func (s *Service) passwordAccount(ctx context.Context, r SignInRequest) (Account, string, error) {
	now := s.now()
	// The address's wait holds up every client behind it: an office's
	// or a carrier's shared address, where a stranger's failures would
	// lock out the officials and citizens signing in from it. A client
	// with a valid key of the account it signs in to is the account's own
	// (its failures count on its key) and passes it; the check of the key
	// needs the account, so only such a request is looked up first.
	key := strings.TrimSpace(r.ClientKey)
	if addr := throttleAddr(r.IP); addr != "" && key == "" {
		if err := s.throttled(ctx, "signin:ip:"+addr, now, r.IP, ""); err != nil {
			return Account{}, "", err
		}
	}
	cands, err := s.d.Store.FindAccounts(ctx, loginOf(r.Username, now))
	if err != nil {
		return Account{}, "", fmt.Errorf("accounts: sign in: %w", err)
	}
	if addr := throttleAddr(r.IP); addr != "" && key != "" &&
		!slices.ContainsFunc(cands, func(a Account) bool { return s.validClientKey(key, a.ID) }) {
		if err := s.throttled(ctx, "signin:ip:"+addr, now, r.IP, ""); err != nil {
			return Account{}, "", err
		}
	}
	failed := func(keys ...string) error {
		if addr := throttleAddr(r.IP); addr != "" {
			keys = append(keys, "signin:ip:"+addr)
		}
		for _, k := range keys {
			b := s.cfg.AccountBackoff
			if strings.HasPrefix(k, "signin:ip:") {
				b = s.cfg.AddressBackoff
			}
			if _, err := s.d.Throttle.Fail(ctx, k, now, b); err != nil {
				return fmt.Errorf("accounts: sign in: %w", err)
			}
		}
		return ErrBadCredentials
	}
	if len(cands) == 0 {
		key := "signin:user:" + userKey(r.Username)
		if err := s.throttled(ctx, key, now, r.IP, ""); err != nil {
			return Account{}, "", err
		}
		if err := s.d.Hasher.DummyVerify(r.Password); err != nil {
			return Account{}, "", fmt.Errorf("accounts: sign in: %w", err)
		}
		s.audit(ctx, "anonymous", "session.failure", "", r.IP, map[string]string{"reason": "unknown_user"})
		return Account{}, "", failed(key)
	}
	var (
		tried   []string
		waitErr error
	)
	for _, a := range cands {
		key := "signin:acct:" + a.ID
		if s.validClientKey(strings.TrimSpace(r.ClientKey), a.ID) {
			// A client that signed in to the account before counts its
			// failures on its own: a stranger's failures, which make the
			// account wait, do not hold it up.
			key = "signin:client:" + clientKeyID(strings.TrimSpace(r.ClientKey))
		}
		bypass := a.Kind == KindOfficial && isRecoveryCode(strings.TrimSpace(r.OTP))
		if err := s.throttled(ctx, key, now, r.IP, a.ID); err != nil && !bypass {
			waitErr = err
			continue
		}
		tried = append(tried, key)
		if a.PasswordHash == "" {
			if err := s.d.Hasher.DummyVerify(r.Password); err != nil {
				return Account{}, "", fmt.Errorf("accounts: sign in: %w", err)
			}
			s.audit(ctx, "anonymous", "session.failure", a.ID, r.IP, map[string]string{"reason": "no_password"})
			continue
		}
		ok, err := s.d.Hasher.Verify(a.PasswordHash, r.Password)
		if err != nil {
			return Account{}, "", fmt.Errorf("accounts: sign in: %w", err)
		}
		if ok {
			return a, key, nil
		}
		s.audit(ctx, "anonymous", "session.failure", a.ID, r.IP, map[string]string{"reason": "wrong_password"})
	}
	if len(tried) == 0 {
		return Account{}, "", waitErr
	}
	return Account{}, "", failed(tried...)
}

// A client key is "ck1." + a random id + "." + an HMAC of the id and the
// account (keyed from the recovery key): minted at a password sign-in,
// valid for that account only, stored nowhere. It names a throttle of its
// own, so a stranger who fails at an account's password — making the
// account wait — does not lock out the client that signs in to it every
// day. A stolen key buys no more guesses than a client of its own: its
// failures back off like an account's.
const clientKeyPrefix = "ck1."

func (s *Service) clientKeyMAC(id, accountID string) string {
	k := hmac.New(sha256.New, s.cfg.RecoveryKey)
	k.Write([]byte("loa client key"))
	mac := hmac.New(sha256.New, k.Sum(nil))
	mac.Write([]byte(id + "\x00" + accountID))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:16])
}

func (s *Service) newClientKey(accountID string) (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("accounts: client key: %w", err)
	}
	id := base64.RawURLEncoding.EncodeToString(b)
	return clientKeyPrefix + id + "." + s.clientKeyMAC(id, accountID), nil
}

// validClientKey reports whether key was minted for accountID.
func (s *Service) validClientKey(key, accountID string) bool {
	rest, ok := strings.CutPrefix(key, clientKeyPrefix)
	if !ok || len(key) > 100 {
		return false
	}
	id, mac, ok := strings.Cut(rest, ".")
	return ok && id != "" && hmac.Equal([]byte(mac), []byte(s.clientKeyMAC(id, accountID)))
}

// clientKeyID is the random part of a valid client key.
func clientKeyID(key string) string {
	id, _, _ := strings.Cut(strings.TrimPrefix(key, clientKeyPrefix), ".")
	return id
}

// throttled returns a loa.ERateLimited *loa.Error wrapping ErrThrottled while key must wait.
func (s *Service) throttled(ctx context.Context, key string, now time.Time, ip, subject string) error {
	wait, err := s.d.Throttle.Wait(ctx, key, now)
	if err != nil {
		return fmt.Errorf("accounts: sign in: %w", err)
	}
	if wait <= 0 {
		return nil
	}
	s.auditRefusal(ctx, key, "session.failure", subject, ip, map[string]string{"reason": "throttled"})
	return throttled(wait)
}

// userKey names a user name that names no account in throttle keys: a
// hash, so what strangers type is not kept.
func userKey(username string) string {
	h := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(username))))
	return hex.EncodeToString(h[:16])
}

// throttleAddr is the unit of the per-address throttle: the IPv4
// address, or the IPv6 /64 (one customer line hands out a whole /64);
// "" when ip is not an address.
func throttleAddr(ip string) string { return quota.AddrKey(ip) }

// noticeSSOLinked is the SMS an official gets when an SSO identity is
// bound to their account (Vietnamese without diacritics, one GSM-7
// segment, like the codes).
const noticeSSOLinked = "Tai khoan Loa cua ban vua duoc lien ket voi mot tai khoan dang nhap mot lan (SSO). Neu khong phai ban, hay bao ngay cho quan tri he thong."

// tellSSOLinked tells the official, by SMS to their phone, that an SSO
// identity was just bound to their account. A binding by name needs only
// the second factor besides an identity whose user name matches (see
// docs/api.md, Single sign-on): if a stranger who got hold of the second
// factor made it, the official learns it and an operator unlinks it.
// At most one a link; a failure is logged.
func (s *Service) tellSSOLinked(ctx context.Context, a Account) {
	if a.Phone == "" {
		return
	}
	now := s.now()
	s.detach(ctx, "sso link notice", func(ctx context.Context) error {
		return s.sendText(ctx, "notice-"+uuid.NewString(), a.Phone, now.Add(time.Hour), noticeSSOLinked)
	})
}

// ssoAccount verifies an ID token and maps it to an active official.
//
// An identity (issuer, subject) already linked names its account and
// nothing else: its preferred_username is not looked at, so renaming
// oneself at the identity provider names no other official. An identity
// not linked yet is matched by preferred_username, else by subject,
// against user names, as before links existed; an account found so that
// is linked to another identity is refused (audited as
// sso_identity_mismatch): a holder who set their preferred_username to an
// official's user name does not become that official. The link of an
// account matched by name is returned, to be stored once the sign-in
// succeeds (link set), so that a token without the second factor binds
// nothing.
func (s *Service) ssoAccount(ctx context.Context, r SignInRequest) (Account, *SSOLink, error) {
	id, err := s.d.OIDC.Verify(ctx, r.IDToken)
	if err != nil {
		s.ssoFailed(ctx, r.IP, "", map[string]string{"reason": "id_token_rejected", "method": "oidc"})
		if errors.Is(err, ErrBadCredentials) {
			return Account{}, nil, ErrBadCredentials
		}
		return Account{}, nil, fmt.Errorf("accounts: sign in: %w", err)
	}
	unknown := func() (Account, *SSOLink, error) {
		s.ssoFailed(ctx, r.IP, "", map[string]string{"reason": "unknown_user", "method": "oidc"})
		return Account{}, nil, ErrBadCredentials
	}
	if id.Issuer == "" || id.Subject == "" {
		return unknown()
	}
	linked, err := s.d.Store.SSOLink(ctx, id.Issuer, id.Subject, "")
	switch {
	case err == nil:
		a, err := s.d.Store.Account(ctx, linked.AccountID)
		if errors.Is(err, ErrNotFound) {
			return unknown()
		}
		if err != nil {
			return Account{}, nil, fmt.Errorf("accounts: sign in: %w", err)
		}
		if a.Kind != KindOfficial || a.Status != StatusActive {
			return unknown()
		}
		return a, nil, nil
	case !errors.Is(err, ErrNotFound):
		return Account{}, nil, fmt.Errorf("accounts: sign in: %w", err)
	}
	for _, name := range []string{id.Username, id.Subject} {
		if name == "" {
			continue
		}
		a, err := s.d.Store.FindAccount(ctx, Login{Username: strings.ToLower(name)})
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return Account{}, nil, fmt.Errorf("accounts: sign in: %w", err)
		}
		if a.Kind != KindOfficial || a.Status != StatusActive {
			break
		}
		switch _, err := s.d.Store.SSOLink(ctx, "", "", a.ID); {
		case err == nil:
			s.ssoFailed(ctx, r.IP, a.ID, map[string]string{"reason": "sso_identity_mismatch", "method": "oidc"})
			return Account{}, nil, ErrBadCredentials
		case !errors.Is(err, ErrNotFound):
			return Account{}, nil, fmt.Errorf("accounts: sign in: %w", err)
		}
		return a, &SSOLink{Issuer: id.Issuer, Subject: id.Subject, AccountID: a.ID}, nil
	}
	return unknown()
}

// ssoFailed audits a refused SSO sign-in. Anyone can send an id_token
// with a wrong signature, and that path has no wait to pass (a good token
// is never held up by a stranger's failures at its address), so what a
// stranger repeats must not write the audit log (a table only a purge
// shrinks) as fast as they send: the refusals are counted per client
// address, and past its free failures (AddressBackoff.Free) they are
// audited once a minute (auditRefusal), enough to show the attack. A
// refusal without an address is always audited.
func (s *Service) ssoFailed(ctx context.Context, ip, subject string, detail map[string]string) {
	addr := throttleAddr(ip)
	if addr == "" {
		s.audit(ctx, "anonymous", "session.failure", subject, ip, detail)
		return
	}
	key := "sso:ip:" + addr
	wait, err := s.d.Throttle.Fail(ctx, key, s.now(), s.cfg.AddressBackoff)
	if err != nil {
		s.d.Log.Warn("accounts: counting SSO failures", slog.Any("error", err))
	}
	if err == nil && wait > 0 {
		s.auditRefusal(ctx, key, "session.failure", subject, ip, detail)
		return
	}
	s.audit(ctx, "anonymous", "session.failure", subject, ip, detail)
}

func (s *Service) sessionTTL(a Account, restricted bool) time.Duration {
	switch {
	case restricted:
		return s.cfg.RestrictedSessionTTL
	case a.Kind == KindOfficial:
		return s.cfg.OfficialSessionTTL
	}
	return s.cfg.CitizenSessionTTL
}

func (s *Service) openSession(ctx context.Context, a Account, restricted bool) (SignInResult, error) {
	token, hash, err := newToken()
	if err != nil {
		return SignInResult{}, err
	}
	now := s.now().UTC()
	sess := Session{AccountID: a.ID, Kind: a.Kind, Restricted: restricted, CreatedAt: now, ExpiresAt: now.Add(s.sessionTTL(a, restricted))}
	if err := s.d.Sessions.CreateSession(ctx, hash, sess); err != nil {
		if errors.Is(err, ErrForbidden) {
			return SignInResult{}, ErrBadCredentials
		}
		return SignInResult{}, fmt.Errorf("accounts: open session: %w", err)
	}
	return SignInResult{Token: token, ExpiresAt: sess.ExpiresAt, PasswordExpired: restricted, Account: a}, nil
}

// stillCurrent ends the session just opened for a, and refuses the
// sign-in, when the account changed while its credentials were checked:
// its password was reset or changed, or it was closed. Those end every
// session of the account, but only the sessions that exist by then; a
// sign-in that read the account before and opens its session after
// would keep one (a stranger signing in again and again with a leaked
// password would outlast the owner's reset). Read after the session is
// stored, the account shows any such change that ended sessions before
// it, so no session opened on stale credentials survives.
func (s *Service) stillCurrent(ctx context.Context, a Account, token, ip string) error {
	cur, err := s.d.Store.Account(ctx, a.ID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("accounts: sign in: %w", err)
	}
	if err == nil && cur.Status == StatusActive && cur.PasswordHash == a.PasswordHash {
		return nil
	}
	if err := s.d.Sessions.DeleteSession(ctx, HashToken(token)); err != nil {
		return fmt.Errorf("accounts: sign in: %w", err)
	}
	s.audit(ctx, "anonymous", "session.failure", a.ID, ip, map[string]string{"reason": "account_changed"})
	return ErrBadCredentials
}

// Authenticate returns the session of a token. Errors: ErrNotFound for an
// unknown, expired or revoked token.
func (s *Service) Authenticate(ctx context.Context, token string) (Session, error) {
	if !strings.HasPrefix(token, SessionTokenPrefix) {
		return Session{}, ErrNotFound
	}
	sess, err := s.d.Sessions.Session(ctx, HashToken(token))
	if err != nil {
		return Session{}, err
	}
	if !s.now().Before(sess.ExpiresAt) {
		return Session{}, ErrNotFound
	}
	return sess, nil
}

// SignOut revokes the session of token.
func (s *Service) SignOut(ctx context.Context, token, ip string) error {
	sess, err := s.Authenticate(ctx, token)
	if err != nil {
		return err
	}
	if err := s.d.Sessions.DeleteSession(ctx, HashToken(token)); err != nil {
		return fmt.Errorf("accounts: sign out: %w", err)
	}
	s.audit(ctx, sess.AccountID, "session.delete", sess.AccountID, ip, nil)
	return nil
}

// ChangePassword replaces the password after checking the old one, the
// policy and the history; every session of the account is revoked and a
// new (unrestricted) one returned. Errors: a loa.EInvalid *loa.Error (field "old"
// for a wrong old password, "new" for the policy or reuse).
func (s *Service) ChangePassword(ctx context.Context, accountID, oldPw, newPw, ip string) (SignInResult, error) {
	a, err := s.d.Store.Account(ctx, accountID)
	if err != nil {
		return SignInResult{}, err
	}
	var v loa.Validation
	if oldPw == "" {
		v.Add("old", "is required")
	} else if len(oldPw) > MaxPasswordBytes {
		v.Add("old", "is longer than %d bytes", MaxPasswordBytes)
	}
	s.checkNewPassword(&v, "new", newPw)
	if err := v.Err(ErrInvalid); err != nil {
		return SignInResult{}, err
	}
	// Wrong old passwords are throttled as failed sign-ins are, under a
	// key of their own: only the session's holder reaches it, so a
	// stranger's sign-in failures never keep the owner from changing it.
	now := s.now()
	key := "password:acct:" + a.ID
	if wait, err := s.d.Throttle.Wait(ctx, key, now); err != nil {
		return SignInResult{}, fmt.Errorf("accounts: change password: %w", err)
	} else if wait > 0 {
		s.auditRefusal(ctx, key, "password.change.failure", a.ID, ip, map[string]string{"reason": "throttled"})
		return SignInResult{}, throttled(wait)
	}
	ok := false
	if a.PasswordHash != "" {
		if ok, err = s.d.Hasher.Verify(a.PasswordHash, oldPw); err != nil {
			return SignInResult{}, fmt.Errorf("accounts: change password: %w", err)
		}
	} else {
		if err := s.d.Hasher.DummyVerify(oldPw); err != nil {
			return SignInResult{}, fmt.Errorf("accounts: change password: %w", err)
		}
	}
	if !ok {
		s.audit(ctx, a.ID, "password.change.failure", a.ID, ip, map[string]string{"reason": "wrong_password"})
		if _, err := s.d.Throttle.Fail(ctx, key, now, s.cfg.AccountBackoff); err != nil {
			return SignInResult{}, fmt.Errorf("accounts: change password: %w", err)
		}
		v.Add("old", "is not the current password")
		return SignInResult{}, v.Err(ErrInvalid)
	}
	if err := s.d.Throttle.Clear(ctx, key); err != nil {
		s.d.Log.Warn("accounts: clearing password-change failures", slog.Any("error", err))
	}
	if s.cfg.Policy.History > 0 {
		hist, err := s.d.Store.PasswordHistory(ctx, a.ID, s.cfg.Policy.History)
		if err != nil {
			return SignInResult{}, fmt.Errorf("accounts: change password: %w", err)
		}
		reused, err := s.reused(newPw, hist)
		if err != nil {
			return SignInResult{}, fmt.Errorf("accounts: change password: %w", err)
		}
		if reused {
			v.Fields = append(v.Fields, loa.FieldError{Field: "new", Detail: fmt.Sprintf("must differ from the last %d passwords", s.cfg.Policy.History), Rules: []string{"history"}})
			return SignInResult{}, v.Err(ErrInvalid)
		}
	}
	hash, err := s.d.Hasher.Hash(newPw)
	if err != nil {
		return SignInResult{}, fmt.Errorf("accounts: change password: %w", err)
	}
	if err := s.d.Store.SetPassword(ctx, a.ID, hash, now.UTC()); err != nil {
		return SignInResult{}, err
	}
	if err := s.d.Sessions.RevokeAccount(ctx, a.ID, 0); err != nil {
		return SignInResult{}, fmt.Errorf("accounts: change password: %w", err)
	}
	s.audit(ctx, a.ID, "password.change", a.ID, ip, nil)
	a.PasswordHash, a.PasswordChangedAt = hash, now.UTC()
	return s.openSession(ctx, a, false)
}

// Clients of the second factor: Loa's own sign-in, or a shared app of
// the province verifying through /v1/mfa (clientApp of its key). Each has
// its own pushed-code challenge, code purpose, TOTP failure count and
// recovery-code failure count, so one cannot spend or lock the other's.
const clientLoa = "loa"

// clientSSOBind is the client of a single sign-on by an identity not
// bound yet (its first sign-in, which binds it): apart from clientLoa, so
// that strangers' identities named like an official spend none of the
// official's own sign-in codes and counts.
const clientSSOBind = "ssobind"

func clientApp(apiKeyID string) string { return "app-" + apiKeyID }

// codePurpose is the purpose of the codes sent to a client.
func codePurpose(client string) string {
	if client == clientLoa || client == clientSSOBind {
		return otp.PurposeLogin
	}
	return otp.PurposeMFA
}

// reused is PasswordPolicy.Reused through the Hasher, so the history's
// hashes count against the hashing limit like any other; a stored hash
// that does not parse is skipped.
func (s *Service) reused(pw string, history []string) (bool, error) {
	for _, h := range history[:min(s.cfg.Policy.History, len(history))] {
		ok, err := s.d.Hasher.Verify(h, pw)
		if errors.Is(err, ErrMalformedHash) {
			continue
		}
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// Clients of the second factor for client: a recovery code, an
// outstanding pushed code of that client, or a TOTP code, in that order
// of recognition. It returns the method tried.
func (s *Service) secondFactor(ctx context.Context, a Account, code, client string) (string, error) {
	code = strings.TrimSpace(code)
	if isRecoveryCode(code) {
		return "recovery", s.useRecoveryCode(ctx, a, code, client)
	}
	if len(code) != otp.TOTPDigits || !allDigits(code) {
		return "", fmt.Errorf("%w: not a 6-digit code or a recovery code", ErrSecondFactor)
	}
	chID, err := s.d.Challenges.Challenge(ctx, client+":"+a.ID)
	if err != nil {
		return "push", fmt.Errorf("accounts: second factor: %w", err)
	}
	factor, ferr := s.d.Store.TOTPFactor(ctx, a.ID, "active")
	if ferr != nil && !errors.Is(ferr, ErrNotFound) {
		return "totp", fmt.Errorf("accounts: second factor: %w", ferr)
	}
	if chID != "" {
		ch, err := s.d.Codes.Verify(ctx, chID, code)
		if err == nil && ch.Purpose == codePurpose(client) && ch.Phone == a.Phone {
			_ = s.d.Challenges.DeleteChallenge(ctx, client+":"+a.ID)
			return "push", nil
		}
		if err != nil && !errors.Is(err, otp.ErrWrongCode) && !errors.Is(err, otp.ErrExpired) &&
			!errors.Is(err, otp.ErrVoid) && !errors.Is(err, otp.ErrNotFound) {
			return "push", fmt.Errorf("accounts: second factor: %w", err)
		}
		if ferr != nil {
			if err == nil {
				err = errors.New("the code was not sent for this")
			}
			return "push", fmt.Errorf("%w: %w", ErrSecondFactor, err)
		}
	}
	if ferr != nil {
		return "totp", fmt.Errorf("%w: no authenticator enrolled and no code sent", ErrSecondFactor)
	}
	return "totp", s.verifyTOTP(ctx, factor, code, client)
}

// checkTOTP verifies an authenticator code of the account's active
// factor for client. Errors: ErrSecondFactor (wrong, replayed, or no
// authenticator enrolled), ErrLocked.
func (s *Service) checkTOTP(ctx context.Context, a Account, code, client string) error {
	factor, err := s.d.Store.TOTPFactor(ctx, a.ID, "active")
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w: no authenticator enrolled", ErrSecondFactor)
	}
	if err != nil {
		return fmt.Errorf("accounts: second factor: %w", err)
	}
	if len(code) != otp.TOTPDigits || !allDigits(code) {
		return fmt.Errorf("%w: not a 6-digit code or a recovery code", ErrSecondFactor)
	}
	return s.verifyTOTP(ctx, factor, code, client)
}

func (s *Service) verifyTOTP(ctx context.Context, factor TOTPFactor, code, client string) error {
	secret, err := s.d.Sealer.Open(factor.SecretSealed, []byte("totp:"+factor.ID))
	if err != nil {
		return fmt.Errorf("accounts: second factor: %w", err)
	}
	err = s.d.TOTP.VerifyFor(ctx, factor.ID, client, string(secret), code)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, otp.ErrLocked):
		return fmt.Errorf("%w: %w", ErrLocked, err)
	case errors.Is(err, otp.ErrInvalidCode), errors.Is(err, otp.ErrReplay):
		return fmt.Errorf("%w: %w", ErrSecondFactor, err)
	}
	return fmt.Errorf("accounts: second factor: %w", err)
}

// useRecoveryCode spends one of the account's recovery codes. Wrong ones
// are counted per client like TOTP codes: RecoveryBackoff's free failures,
// then the path is locked (ErrLocked) for that client only.
func (s *Service) useRecoveryCode(ctx context.Context, a Account, code, client string) error {
	key := "recovery:" + client + ":" + a.ID
	now := s.now()
	wait, err := s.d.Throttle.Wait(ctx, key, now)
	if err != nil {
		return fmt.Errorf("accounts: recovery code: %w", err)
	}
	if wait > 0 {
		return fmt.Errorf("%w: too many wrong recovery codes", ErrLocked)
	}
	codes, err := s.d.Store.RecoveryCodes(ctx, a.ID)
	if err != nil {
		return fmt.Errorf("accounts: recovery code: %w", err)
	}
	hashes := make([]string, len(codes))
	for i, c := range codes {
		hashes[i] = c.Hash
	}
	i, ok := otp.MatchRecoveryCode(hashes, code, s.cfg.RecoveryKey)
	used := false
	if ok {
		if used, err = s.d.Store.UseRecoveryCode(ctx, codes[i].ID, now.UTC()); err != nil {
			return fmt.Errorf("accounts: recovery code: %w", err)
		}
	}
	if !used {
		wait, err := s.d.Throttle.Fail(ctx, key, now, s.cfg.RecoveryBackoff)
		if err != nil {
			return fmt.Errorf("accounts: recovery code: %w", err)
		}
		if wait > 0 {
			return fmt.Errorf("%w: too many wrong recovery codes", ErrLocked)
		}
		return fmt.Errorf("%w: recovery code not recognised or already used", ErrSecondFactor)
	}
	if err := s.d.Throttle.Clear(ctx, key); err != nil {
		s.d.Log.Warn("accounts: clearing recovery-code failures", slog.Any("error", err))
	}
	s.audit(ctx, a.ID, "mfa.recovery_code.use", a.ID, "", map[string]string{"remaining": fmt.Sprint(len(codes) - 1), "client": client})
	return nil
}

// isRecoveryCode recognises the "xxxxx-xxxxx" form (case, dashes and
// spaces ignored): 10 characters, where a TOTP or pushed code has 6.
func isRecoveryCode(s string) bool {
	return len(strings.NewReplacer("-", "", " ", "").Replace(s)) == 10
}
