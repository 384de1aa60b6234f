package oidcfake

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Issuer is a running fake issuer. Its methods are safe for concurrent
// use.
type Issuer struct {
	URL string
	srv *httptest.Server
	key *rsa.PrivateKey // published in the JWKS
	// stranger signs tokens with a key id the JWKS does not hold the key
	// for: a bad signature.
	stranger *rsa.PrivateKey
	fetches  atomic.Int64 // GETs of the JWKS
}

// KeyFetches is how many times the issuer's keys (its JWKS) were fetched.
func (is *Issuer) KeyFetches() int64 { return is.fetches.Load() }

const keyID = "oidcfake-1"

// Start runs an issuer until t ends.
func Start(t testing.TB) *Issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is := &Issuer{key: key, stranger: stranger}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"issuer": is.URL, "jwks_uri": is.URL + "/jwks", "authorization_endpoint": is.URL + "/authorize",
			"token_endpoint": is.URL + "/token", "response_types_supported": []string{"code"},
			"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		is.fetches.Add(1)
		writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: keyID, Algorithm: "RS256", Use: "sig"}}})
	})
	is.srv = httptest.NewServer(mux)
	is.URL = is.srv.URL
	t.Cleanup(is.srv.Close)
	return is
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// Claims of a token to sign. Zero Expiry means an hour after IssuedAt;
// zero IssuedAt means now.
type Claims struct {
	Subject           string
	PreferredUsername string
	Audience          string
	Issuer            string // default: the issuer's URL
	IssuedAt          time.Time
	Expiry            time.Time
	// BadSignature signs with a key the issuer does not publish.
	BadSignature bool
}

// Token signs c as an RS256 ID token.
func (is *Issuer) Token(t testing.TB, c Claims) string {
	t.Helper()
	key := is.key
	if c.BadSignature {
		key = is.stranger
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", keyID))
	if err != nil {
		t.Fatal(err)
	}
	if c.IssuedAt.IsZero() {
		c.IssuedAt = time.Now()
	}
	if c.Expiry.IsZero() {
		c.Expiry = c.IssuedAt.Add(time.Hour)
	}
	if c.Issuer == "" {
		c.Issuer = is.URL
	}
	std := jwt.Claims{Issuer: c.Issuer, Subject: c.Subject, Audience: jwt.Audience{c.Audience},
		IssuedAt: jwt.NewNumericDate(c.IssuedAt), Expiry: jwt.NewNumericDate(c.Expiry)}
	extra := map[string]any{}
	if c.PreferredUsername != "" {
		extra["preferred_username"] = c.PreferredUsername
	}
	raw, err := jwt.Signed(sig).Claims(std).Claims(extra).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
