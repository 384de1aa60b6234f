package oidc_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/accounts/oidc"
	"github.com/loa-hub/loa/internal/fakes/oidcfake"
)

// TestForgedTokensDoNotMakeLoaFetchTheIssuersKeys: a token signed by no
// key Loa holds makes the OIDC library fetch the issuer's keys again (the
// issuer may have rotated them), and anyone can make such a token: a
// stranger sending them as fast as the network allows made Loa fetch the
// issuer's JWKS back to back, a request to the province's identity
// provider for each of theirs. The keys are fetched at most once a
// KeyRefresh, so the identity provider sees one fetch a KeyRefresh
// whatever strangers send, and a rotated key is still learnt after it.
func TestForgedTokensDoNotMakeLoaFetchTheIssuersKeys(t *testing.T) {
	is := oidcfake.Start(t)
	var (
		mu  sync.Mutex
		now = time.Now()
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	v, err := oidc.New(oidc.Config{Issuer: is.URL, ClientID: "loa", Now: clock, KeyRefresh: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	good := is.Token(t, oidcfake.Claims{Subject: "tran.b", Audience: "loa"})
	if _, err := v.Verify(ctx, good); err != nil {
		t.Fatal(err)
	}
	forged := is.Token(t, oidcfake.Claims{Subject: "tran.b", Audience: "loa", BadSignature: true})
	before := is.KeyFetches()
	for range 50 {
		if _, err := v.Verify(ctx, forged); !errors.Is(err, accounts.ErrBadCredentials) {
			t.Fatalf("forged token: %v, want ErrBadCredentials", err)
		}
	}
	if n := is.KeyFetches() - before; n > 1 {
		t.Errorf("50 forged tokens within a minute made Loa fetch the issuer's keys %d times, want at most once", n)
	}
	if _, err := v.Verify(ctx, good); err != nil {
		t.Errorf("a good token after the forged ones: %v", err)
	}
	// A minute on, tokens signed by no known key fetch them again, once.
	// (Not necessarily the first: go-oidc lets a verification join a
	// fetch that has just ended, and takes its keys.)
	mu.Lock()
	now = now.Add(time.Minute + time.Second)
	mu.Unlock()
	before = is.KeyFetches()
	for range 50 {
		if _, err := v.Verify(ctx, forged); !errors.Is(err, accounts.ErrBadCredentials) {
			t.Fatalf("forged token: %v", err)
		}
	}
	if n := is.KeyFetches() - before; n != 1 {
		t.Errorf("%d fetches of the keys for 50 forged tokens a KeyRefresh later, want 1 (a rotated key must still be learnt)", n)
	}
}
