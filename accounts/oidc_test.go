package accounts_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/accounts/oidc"
	"github.com/loa-hub/loa/internal/fakes/oidcfake"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/producer"
)

// TestOIDCSignIn: officials sign in with the local issuer's ID tokens
// instead of a password; the second factor is still asked for.
func TestOIDCSignIn(t *testing.T) {
	is, r := newSQLiteRigOIDC(t)
	off := r.official(t, "tran.b", "0911111111", "sotttt")
	r.registerCitizen(t, "049095000123", "0912345678")
	ctx := context.Background()
	now := time.Now()
	cases := []struct {
		name   string
		claims oidcfake.Claims
		want   error
	}{
		{"valid, by preferred_username", oidcfake.Claims{Subject: "x-1", PreferredUsername: "Tran.B", Audience: "loa"}, accounts.ErrSecondFactorRequired},
		{"valid, by subject", oidcfake.Claims{Subject: "tran.b", Audience: "loa"}, accounts.ErrSecondFactorRequired},
		{"wrong audience", oidcfake.Claims{Subject: "tran.b", Audience: "other-app"}, accounts.ErrBadCredentials},
		{"expired", oidcfake.Claims{Subject: "tran.b", Audience: "loa", IssuedAt: now.Add(-2 * time.Hour), Expiry: now.Add(-time.Hour)}, accounts.ErrBadCredentials},
		{"bad signature", oidcfake.Claims{Subject: "tran.b", Audience: "loa", BadSignature: true}, accounts.ErrBadCredentials},
		{"other issuer", oidcfake.Claims{Subject: "tran.b", Audience: "loa", Issuer: "https://evil.example"}, accounts.ErrBadCredentials},
		{"unknown user", oidcfake.Claims{Subject: "nobody", PreferredUsername: "nobody", Audience: "loa"}, accounts.ErrBadCredentials},
		{"a citizen is not an official", oidcfake.Claims{Subject: "049095000123", Audience: "loa"}, accounts.ErrBadCredentials},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := r.svc.SignIn(ctx, accounts.SignInRequest{IDToken: is.Token(t, c.claims)})
			if !errors.Is(err, c.want) {
				t.Errorf("err %v, want %v", err, c.want)
			}
		})
	}
	// With the second factor, a session (never a restricted one: no
	// password is involved).
	tok := is.Token(t, oidcfake.Claims{Subject: "x-1", PreferredUsername: "tran.b", Audience: "loa"})
	if _, err := r.svc.SignIn(ctx, accounts.SignInRequest{IDToken: tok, SendCode: "push"}); err != nil {
		t.Fatal(err)
	}
	res, err := r.svc.SignIn(ctx, accounts.SignInRequest{IDToken: tok, OTP: r.pub.lastCode(t)})
	if err != nil || res.Account.ID != off.ID || res.PasswordExpired {
		t.Fatalf("sso sign-in: %+v %v", res, err)
	}
	if _, err := r.svc.SignIn(ctx, accounts.SignInRequest{IDToken: tok, Username: "tran.b", Password: "x"}); !errors.Is(err, accounts.ErrInvalid) {
		t.Errorf("token and password together: %v", err)
	}
}

// TestSSOIdentityIsBound: the first SSO sign-in binds the official's
// account to the token's issuer and subject; afterwards the account is
// reached by them only. Abuse: a holder of another subject who names
// themself the official (preferred_username, or a subject equal to the
// user name) is refused; the bound holder who renames themself to
// another official still signs in as themself; a token without its
// second factor binds nothing, so it cannot take an unbound account.
func TestSSOIdentityIsBound(t *testing.T) {
	is := oidcfake.Start(t)
	v, err := oidc.New(oidc.Config{Issuer: is.URL, ClientID: "loa"})
	if err != nil {
		t.Fatal(err)
	}
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			mr := testenv.Miniredis(t)
			rdb := goredis.NewClient(&goredis.Options{Addr: mr.Addr()})
			t.Cleanup(func() { rdb.Close() })
			ssoIdentityIsBound(t, is, newRigOIDC(t, db, rdb, nil, v))
		})
	}
}

func ssoIdentityIsBound(t *testing.T, is *oidcfake.Issuer, r *rig) {
	tran := r.official(t, "tran.b", "0911111111", "sotttt")
	le := r.official(t, "le.c", "0911111112", "sotttt")
	pham := r.official(t, "pham.d", "0911111113", "sotttt")
	ctx := context.Background()
	signIn := func(c oidcfake.Claims) (accounts.SignInResult, error) {
		t.Helper()
		c.Audience = "loa"
		tok := is.Token(t, c)
		r.clock.Advance(time.Minute) // past the phone's code cooldown
		if _, err := r.svc.SignIn(ctx, accounts.SignInRequest{IDToken: tok, SendCode: "push"}); err != nil {
			return accounts.SignInResult{}, err
		}
		return r.svc.SignIn(ctx, accounts.SignInRequest{IDToken: tok, OTP: r.pub.lastCode(t)})
	}
	if res, err := signIn(oidcfake.Claims{Subject: "sub-tran", PreferredUsername: "tran.b"}); err != nil || res.Account.ID != tran.ID {
		t.Fatalf("first sign-in: %+v %v", res.Account, err)
	}
	for _, c := range []oidcfake.Claims{
		{Subject: "sub-mallory", PreferredUsername: "tran.b"},
		{Subject: "sub-mallory", PreferredUsername: "TRAN.B"},
		{Subject: "tran.b"},
	} {
		if _, err := r.svc.SignIn(ctx, accounts.SignInRequest{IDToken: is.Token(t, oidcfake.Claims{Subject: c.Subject, PreferredUsername: c.PreferredUsername, Audience: "loa"}), SendCode: "push"}); !errors.Is(err, accounts.ErrBadCredentials) {
			t.Errorf("%+v, another subject naming a bound official: %v, want ErrBadCredentials", c, err)
		}
	}
	// The bound holder renamed to another official is still themself.
	if res, err := signIn(oidcfake.Claims{Subject: "sub-tran", PreferredUsername: "le.c"}); err != nil || res.Account.ID != tran.ID {
		t.Errorf("bound subject renamed le.c: %+v %v, want tran.b's account", res.Account, err)
	}
	// A token without the second factor binds nothing: pham.d's own
	// identity links afterwards.
	tok := is.Token(t, oidcfake.Claims{Subject: "sub-mallory", PreferredUsername: "pham.d", Audience: "loa"})
	if _, err := r.svc.SignIn(ctx, accounts.SignInRequest{IDToken: tok, OTP: "000000"}); err == nil {
		t.Fatal("a wrong second factor signed in")
	}
	if res, err := signIn(oidcfake.Claims{Subject: "sub-pham", PreferredUsername: "pham.d"}); err != nil || res.Account.ID != pham.ID {
		t.Errorf("pham.d after a stranger's attempt: %+v %v", res.Account, err)
	}
	// le.c, never signed in by SSO, is still reached by name once.
	if res, err := signIn(oidcfake.Claims{Subject: "sub-le", PreferredUsername: "le.c"}); err != nil || res.Account.ID != le.ID {
		t.Errorf("le.c: %+v %v", res.Account, err)
	}
	if _, err := signIn(oidcfake.Claims{Subject: "sub-mallory", PreferredUsername: "le.c"}); !errors.Is(err, accounts.ErrBadCredentials) {
		t.Errorf("a second subject for le.c: %v", err)
	}
	// Each binding told its official by SMS, once; refused attempts and
	// sign-ins of a bound identity told no one.
	if err := r.svc.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	told := map[string]int{}
	for _, d := range r.pub.directs(t) {
		if strings.Contains(d.Body, "(SSO)") && d.To.Type == producer.ToPhone && slices.Equal(d.Channels, []string{"sms"}) {
			told[d.To.Value]++
		}
	}
	if len(told) != 3 || told[tran.Phone] != 1 || told[pham.Phone] != 1 || told[le.Phone] != 1 {
		t.Errorf("SSO link notices %v; want one to each of %s, %s, %s", told, tran.Phone, pham.Phone, le.Phone)
	}
}

// TestSSOStrangerSpendsNoneOfTheOfficialsCodes: an identity not bound
// yet whose preferred_username names an official (anyone at the
// identity provider can choose it) asks codes for the official's first
// SSO sign-in again and again. Its codes have a window of their own: the
// official, signing in with the password, still gets a code at once;
// the stranger's sends do not replace the code the official is about to
// type; and a code sent for the official's own sign-in does not bind the
// stranger's identity (a phished sign-in code binds nothing).
func TestSSOStrangerSpendsNoneOfTheOfficialsCodes(t *testing.T) {
	is, r := newSQLiteRigOIDC(t)
	tran := r.official(t, "tran.b", "0911111111", "sotttt")
	ctx := context.Background()
	mallory := is.Token(t, oidcfake.Claims{Subject: "sub-mallory", PreferredUsername: "tran.b", Audience: "loa"})
	strangerSends := func() (sent, refused int) {
		for range 10 {
			if _, err := r.svc.SignIn(ctx, accounts.SignInRequest{IDToken: mallory, SendCode: "sms"}); err != nil {
				refused++
			} else {
				sent++
			}
		}
		return sent, refused
	}
	if sent, refused := strangerSends(); sent != 1 || refused != 9 {
		t.Errorf("the stranger's sends: %d sent, %d refused; want one, then its own cooldown", sent, refused)
	}
	// The official signs in at once: the stranger's send spent none of
	// the official's window or cooldown.
	own := accounts.SignInRequest{Username: "tran.b", Password: goodPassword, SendCode: "sms"}
	if _, err := r.svc.SignIn(ctx, own); err != nil {
		t.Fatalf("the official's own code after the stranger's: %v", err)
	}
	code := r.pub.lastCode(t)
	// More of the stranger's sends, past its cooldown, while the
	// official types the code.
	r.clock.Advance(31 * time.Second)
	if sent, _ := strangerSends(); sent != 1 {
		t.Errorf("the stranger's second round: %d sent", sent)
	}
	// The official's code does not bind the stranger's identity...
	if _, err := r.svc.SignIn(ctx, accounts.SignInRequest{IDToken: mallory, OTP: code}); err == nil {
		t.Fatal("the official's sign-in code bound a stranger's identity")
	}
	// ...and is still the official's.
	res, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "tran.b", Password: goodPassword, OTP: code})
	if err != nil || res.Account.ID != tran.ID {
		t.Fatalf("the official's code after the stranger's sends: %+v %v", res.Account, err)
	}
	if _, err := r.store.SSOLink(ctx, "", "", tran.ID); !errors.Is(err, accounts.ErrNotFound) {
		t.Errorf("an identity was bound: %v", err)
	}
}

// TestForgedIDTokensWriteABoundedAudit: anyone can send an id_token whose
// signature is wrong, and its refusal was audited each time, with no
// throttle on that path: a stranger writing the audit log (a table only
// a purge shrinks) as fast as the network allows. The address's failures
// are counted: past its free ones, a refusal is audited once a minute
// (the attack stays in the log). A good token from the same address is
// not held up: a stranger behind an office's address locks out no one.
func TestForgedIDTokensWriteABoundedAudit(t *testing.T) {
	is, r := newSQLiteRigOIDC(t)
	r.official(t, "tran.b", "0911111111", "sotttt")
	ctx := context.Background()
	const ip = "203.0.113.9"
	rejected := func() int {
		t.Helper()
		entries, err := r.store.AuditLog(ctx, "", 10000)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range entries {
			if e.Action == "session.failure" && e.Detail["reason"] == "id_token_rejected" {
				n++
			}
		}
		return n
	}
	forged := is.Token(t, oidcfake.Claims{Subject: "tran.b", Audience: "loa", BadSignature: true})
	for range 200 {
		if _, err := r.svc.SignIn(ctx, accounts.SignInRequest{IDToken: forged, IP: ip}); !errors.Is(err, accounts.ErrBadCredentials) {
			t.Fatalf("forged token: %v, want ErrBadCredentials", err)
		}
	}
	free := r.cfg.AddressBackoff.Free
	if n := rejected(); n > free+1 {
		t.Errorf("200 forged tokens from one address wrote %d audit rows; want at most %d (its free failures, then one a minute)", n, free+1)
	}
	good := is.Token(t, oidcfake.Claims{Subject: "x-1", PreferredUsername: "tran.b", Audience: "loa"})
	if _, err := r.svc.SignIn(ctx, accounts.SignInRequest{IDToken: good, IP: ip}); !errors.Is(err, accounts.ErrSecondFactorRequired) {
		t.Errorf("a good token from the stranger's address: %v, want the second factor asked for", err)
	}
	// A minute later the attack, still going, is audited again.
	before := rejected()
	r.clock.Advance(time.Minute + time.Second)
	for range 10 {
		r.svc.SignIn(ctx, accounts.SignInRequest{IDToken: forged, IP: ip})
	}
	if n := rejected() - before; n != 1 {
		t.Errorf("a minute on, 10 more forged tokens wrote %d audit rows, want 1", n)
	}
}

// newSQLiteRigOIDC starts a local issuer and a rig on SQLite and
// Miniredis whose officials sign in with its ID tokens.
func newSQLiteRigOIDC(t *testing.T) (*oidcfake.Issuer, *rig) {
	t.Helper()
	is := oidcfake.Start(t)
	v, err := oidc.New(oidc.Config{Issuer: is.URL, ClientID: "loa"})
	if err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(&goredis.Options{Addr: testenv.Miniredis(t).Addr()})
	t.Cleanup(func() { rdb.Close() })
	return is, newRigOIDC(t, testenv.OpenStore(t, testenv.SQLiteURL(t)), rdb, nil, v)
}
