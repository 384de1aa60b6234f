package accounts_test

import (
	"context"
	"errors"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/accounts/oidc"
	"github.com/loa-hub/loa/internal/fakes/oidcfake"
	"github.com/loa-hub/loa/internal/testenv"
)

// TestOIDCSignIn: officials sign in with the local issuer's ID tokens
// instead of a password; the second factor is still asked for.
func TestOIDCSignIn(t *testing.T) {
	is := oidcfake.Start(t)
	v, err := oidc.New(oidc.Config{Issuer: is.URL, ClientID: "loa"})
	if err != nil {
		t.Fatal(err)
	}
	mr := testenv.Miniredis(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	r := newRigOIDC(t, testenv.OpenStore(t, testenv.SQLiteURL(t)), rdb, nil, v)
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
