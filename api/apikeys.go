package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/sqlstore"
)

// apiKeyView is an API key as administrators see it: never the key nor
// its hash.
type apiKeyView struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Scopes     []string   `json:"scopes"`
	Areas      []string   `json:"areas"`       // where an outages:write key may publish
	AlertAreas []string   `json:"alert_areas"` // where an alerts:issue key may alert without approval
	CreatedAt  time.Time  `json:"created_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// listAPIKeys: GET /v1/apikeys, every key with its scopes and last use.
func (h *handler) listAPIKeys(w http.ResponseWriter, r *http.Request) error {
	keys, err := h.deps.Store.APIKeys(r.Context())
	if err != nil {
		return err
	}
	out := struct {
		Items []apiKeyView `json:"items"`
	}{Items: make([]apiKeyView, 0, len(keys))}
	for _, k := range keys {
		scopes := k.Scopes
		if scopes == nil {
			scopes = []string{}
		}
		areas := k.Areas
		if areas == nil {
			areas = []string{}
		}
		alertAreas := k.AlertAreas
		if alertAreas == nil {
			alertAreas = []string{}
		}
		out.Items = append(out.Items, apiKeyView{ID: k.ID, Name: k.Name, Scopes: scopes, Areas: areas, AlertAreas: alertAreas, CreatedAt: k.CreatedAt.UTC(),
			RevokedAt: timePtr(k.RevokedAt), LastUsedAt: timePtr(k.LastUsedAt)})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// revokeAPIKey: DELETE /v1/apikeys/{id}. The key is refused from the next
// request on, on every replica (keys are read from the database on every
// request, never cached). Revoking a revoked key is a 204 too.
func (h *handler) revokeAPIKey(w http.ResponseWriter, r *http.Request) error {
	id := chi.URLParam(r, "id")
	revoked, err := h.deps.Store.RevokeAPIKey(r.Context(), id, h.now())
	if errors.Is(err, sqlstore.ErrNotFound) {
		return loa.NotFound("API key %s not found", id)
	}
	if err != nil {
		return err
	}
	if !revoked {
		auditDetail(r, "already_revoked", "true")
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
