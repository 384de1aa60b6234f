package oidc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
	// KeyRefresh is the least time between two fetches of the issuer's
	// keys. Default DefaultKeyRefresh.
	KeyRefresh time.Duration
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
	if cfg.KeyRefresh <= 0 {
		cfg.KeyRefresh = DefaultKeyRefresh
	}
	next := cfg.HTTPClient.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	keys := *cfg.HTTPClient
	keys.Transport = &keyFetches{next: next, every: cfg.KeyRefresh, now: cfg.Now}
	return &Verifier{cfg: cfg, ctx: gooidc.ClientContext(context.Background(), &keys)}, nil
}

// DefaultKeyRefresh is the least time between two fetches of the
// issuer's keys.
const DefaultKeyRefresh = 30 * time.Second

// maxKeysBytes bounds the issuer's key set as read.
const maxKeysBytes = 1 << 20

// keyFetches is the transport of the fetches of the issuer's keys (its
// JWKS). The OIDC library fetches them again for every token signed by a
// key it does not hold, since the issuer may have rotated its keys, and
// anyone can make such a token: strangers sending them would make Loa
// fetch the keys back to back, a request to the identity provider for
// each of theirs. Here a fetch within every of the last good one gets that
// one's copy, and a failed fetch is not tried again within a second, so
// the issuer sees at most one fetch an every (and one a second while it
// fails) whatever strangers send. A rotated key is learnt at most every
// after the first token signed with it. Safe for concurrent use.
type keyFetches struct {
	next  http.RoundTripper
	every time.Duration
	now   func() time.Time

	mu     sync.Mutex
	url    string // of the copy
	at     time.Time
	header http.Header
	body   []byte // nil: no good copy
	tried  time.Time
	err    error // of the last fetch, when it failed
}

func (k *keyFetches) RoundTrip(req *http.Request) (*http.Response, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now, url := k.now(), req.URL.String()
	if k.body != nil && k.url == url && now.Sub(k.at) < k.every {
		return k.copy(req), nil
	}
	if k.err != nil && now.Sub(k.tried) < time.Second {
		return nil, k.err
	}
	k.tried, k.err = now, nil
	resp, err := k.next.RoundTrip(req)
	if err != nil {
		k.err = err
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		k.err = fmt.Errorf("accounts/oidc: fetching the issuer's keys: %s", resp.Status)
		return resp, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeysBytes+1))
	resp.Body.Close()
	if err == nil && len(body) > maxKeysBytes {
		err = fmt.Errorf("accounts/oidc: the issuer's keys are larger than %d bytes", maxKeysBytes)
	}
	if err != nil {
		k.err = err
		return nil, err
	}
	k.url, k.at, k.header, k.body = url, now, resp.Header.Clone(), body
	return k.copy(req), nil
}

func (k *keyFetches) copy(req *http.Request) *http.Response {
	return &http.Response{Status: "200 OK", StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: k.header.Clone(), Body: io.NopCloser(bytes.NewReader(k.body)), ContentLength: int64(len(k.body)), Request: req}
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
