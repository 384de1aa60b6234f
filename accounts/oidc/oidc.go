package oidc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"

	"github.com/loa-hub/loa/accounts"
)

// Config names the issuer and the client id ID tokens must be made for.
type Config struct {
	Issuer   string
	ClientID string
	// HTTPClient fetches discovery and keys; nil means a client with a 10 s
	// timeout.
	HTTPClient *http.Client
	// Now is the clock for expiry; nil means time.Now.
	Now func() time.Time
}

// Verifier implements accounts.IDTokenVerifier. Discovery happens on first
// use (and is retried while it fails), so Loa starts while the issuer is
// down. Safe for concurrent use.
type Verifier struct {
	cfg Config
	ctx context.Context // for key fetches, which outlive one request

	mu       sync.Mutex
	verifier *gooidc.IDTokenVerifier
}

var _ accounts.IDTokenVerifier = (*Verifier)(nil)

// New returns a Verifier; it does not contact the issuer.
func New(cfg Config) (*Verifier, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" {
		return nil, errors.New("accounts/oidc: issuer and client id are required")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Verifier{cfg: cfg, ctx: gooidc.ClientContext(context.Background(), cfg.HTTPClient)}, nil
}

func (v *Verifier) get(ctx context.Context) (*gooidc.IDTokenVerifier, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.verifier != nil {
		return v.verifier, nil
	}
	p, err := gooidc.NewProvider(gooidc.ClientContext(ctx, v.cfg.HTTPClient), v.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("accounts/oidc: discovery at %s: %w", v.cfg.Issuer, err)
	}
	v.verifier = p.VerifierContext(v.ctx, &gooidc.Config{ClientID: v.cfg.ClientID, Now: v.cfg.Now})
	return v.verifier, nil
}

// Verify implements accounts.IDTokenVerifier: a token with a bad
// signature, another issuer or audience, or past its expiry is an error
// wrapping accounts.ErrBadCredentials; failing to reach the issuer is
// another error.
func (v *Verifier) Verify(ctx context.Context, raw string) (accounts.Identity, error) {
	iv, err := v.get(ctx)
	if err != nil {
		return accounts.Identity{}, err
	}
	tok, err := iv.Verify(ctx, raw)
	if err != nil {
		return accounts.Identity{}, fmt.Errorf("accounts/oidc: %w: %v", accounts.ErrBadCredentials, err)
	}
	var claims struct {
		PreferredUsername string `json:"preferred_username"`
	}
	if err := tok.Claims(&claims); err != nil {
		return accounts.Identity{}, fmt.Errorf("accounts/oidc: %w: claims: %v", accounts.ErrBadCredentials, err)
	}
	return accounts.Identity{Issuer: tok.Issuer, Subject: tok.Subject, Username: claims.PreferredUsername}, nil
}
