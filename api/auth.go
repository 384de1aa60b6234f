package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/internal/sqlstore"
)

// Scopes an API key can hold.
const (
	ScopeNotifyDirect = "notify:direct"
	// ScopeNotifyTopic, besides notify:direct, sends a notification to an
	// FCM topic: everyone subscribed to it, with no approval.
	ScopeNotifyTopic  = "notify:topic"
	ScopeMFAVerify    = "mfa:verify"
	ScopeAlertsIssue  = "alerts:issue"
	ScopeAlertsWrite  = "alerts:write"
	ScopeOutagesWrite = "outages:write"
	ScopeOps          = "ops"
	ScopeAdmin        = "admin"
	// ScopeMetricsRead reads GET /metrics on the API port (Prometheus's
	// key); LOA_METRICS_ADDR serves them without one.
	ScopeMetricsRead = "metrics:read"
)

// KnownScopes lists every scope, for validating `loa admin apikey create`.
var KnownScopes = []string{ScopeNotifyDirect, ScopeNotifyTopic, ScopeMFAVerify, ScopeAlertsIssue, ScopeAlertsWrite, ScopeOutagesWrite, ScopeFeedbackWrite, ScopeOps, ScopeAdmin, ScopeAudit, ScopeMetricsRead}

// Principal is the authenticated caller of a request: an integrating
// system's API key, or a signed-in account's session (AccountID set, no
// scopes).
type Principal struct {
	ID     string
	Name   string
	Scopes []string // "*" grants every scope (the dev bootstrap key)
	// Areas are an API key's area codes: where it may publish outage
	// schedules (each code with every unit below it). Set by operators
	// only (loa admin apikey); "*" in Scopes is bound to no area.
	Areas []string
	// AlertAreas are an API key's area codes where its alerts may be sent
	// without approval (each code with every unit below it); operators
	// set them (loa admin apikey alert-areas).
	AlertAreas []string
	// AccountID, Kind and Restricted describe a session; Restricted
	// (expired password) allows only POST /v1/me/password.
	AccountID  string
	Kind       string
	Restricted bool
}

// Has reports whether p holds scope.
func (p Principal) Has(scope string) bool {
	return slices.Contains(p.Scopes, scope) || slices.Contains(p.Scopes, "*")
}

type principalKey struct{}

func principalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// NewAPIKey returns a fresh random key (shown once to its owner) and the
// hash that is stored.
func NewAPIKey() (key, hash string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("api: new key: %w", err)
	}
	key = "loa_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
	return key, HashAPIKey(key), nil
}

// HashAPIKey returns the stored form of a key. Keys carry 256 random bits,
// so a plain SHA-256 is enough: there is nothing to brute-force.
func HashAPIKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

var (
	errNoCredentials  = &loa.Error{Code: loa.EUnauthorized, Detail: "send an API key as Authorization: Bearer <key>"}
	errBadCredentials = &loa.Error{Code: loa.EUnauthorized, Detail: "the API key is not valid"}
	errBadSession     = &loa.Error{Code: loa.EUnauthorized, Detail: "the session is not valid or has ended; sign in again"}
)

// authenticate resolves the Bearer key of r, and reports the caller to
// the call's audit (auditCalls).
func (h *handler) authenticate(r *http.Request) (Principal, error) {
	p, err := h.resolveCredentials(r)
	if err == nil {
		if rec := callRecordFrom(r.Context()); rec != nil {
			rec.principal = &p
		}
	}
	return p, err
}

// writeAuthError answers a failed authentication: 401 with
// WWW-Authenticate for missing or unknown credentials, else the error.
func (h *handler) writeAuthError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errNoCredentials) || errors.Is(err, errBadCredentials) || errors.Is(err, errBadSession) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="loa"`)
	}
	h.writeError(w, r, err)
}

func (h *handler) resolveCredentials(r *http.Request) (Principal, error) {
	auth := r.Header.Get("Authorization")
	scheme, key, ok := strings.Cut(auth, " ")
	if auth == "" || !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(key) == "" {
		return Principal{}, errNoCredentials
	}
	key = strings.TrimSpace(key)
	if h.deps.DevAPIKey != "" && subtle.ConstantTimeCompare([]byte(key), []byte(h.deps.DevAPIKey)) == 1 {
		return Principal{ID: "dev", Name: "dev bootstrap key", Scopes: []string{"*"}}, nil
	}
	if strings.HasPrefix(key, accounts.SessionTokenPrefix) && h.deps.Accounts != nil {
		return h.authenticateSession(r, key)
	}
	k, err := h.deps.Store.APIKeyByHash(r.Context(), HashAPIKey(key))
	if errors.Is(err, sqlstore.ErrNotFound) {
		return Principal{}, errBadCredentials
	}
	if err != nil {
		return Principal{}, err
	}
	return Principal{ID: k.ID, Name: k.Name, Scopes: k.Scopes, Areas: k.Areas, AlertAreas: k.AlertAreas}, nil
}

// requireScope authenticates the request and checks that the caller holds
// scope: 401 without a valid key, 403 without the scope.
func (h *handler) requireScope(scope string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, err := h.authenticate(r)
			if err != nil {
				h.writeAuthError(w, r, err)
				return
			}
			// Sessions hold no scopes: these routes are for API keys only.
			if (scope != "" && !p.Has(scope)) || p.AccountID != "" {
				detail := fmt.Sprintf("this API key lacks the scope %q", scope)
				if p.AccountID != "" {
					detail = "this route is for integrating systems' API keys, not for signed-in accounts"
				}
				h.writeError(w, r, &loa.Error{Code: loa.EForbidden, Detail: detail})
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
		})
	}
}
