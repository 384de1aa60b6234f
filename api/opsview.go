package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/accounts"
)

// opsOverview: GET /v1/ops/overview — lag per lane and partition, dead
// letters, scheduled items, deliveries per second, breakers with their
// transitions of the last hour, rate-limit waits and queue time.
func (h *handler) opsOverview(w http.ResponseWriter, r *http.Request) error {
	if h.deps.Overview == nil {
		return loa.Unavailable("the operators' overview is not configured on this server")
	}
	writeJSON(w, http.StatusOK, h.deps.Overview(r.Context()))
	return nil
}

type scheduledView struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	Subject   string    `json:"subject"`
	DueAt     time.Time `json:"due_at"`
	CreatedAt time.Time `json:"created_at"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error,omitempty"`
	Overdue   bool      `json:"overdue"`
}

// listScheduled: GET /v1/ops/scheduled?within=24h&limit=100 — pending
// scheduled items due within the window (overdue ones first).
func (h *handler) listScheduled(w http.ResponseWriter, r *http.Request) error {
	within, limit := 24*time.Hour, 100
	var v loa.Validation
	if s := r.URL.Query().Get("within"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 || d > 31*24*time.Hour {
			v.Add("within", "must be a duration from 1s to 744h, e.g. 24h")
		}
		within = d
	}
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 500 {
			v.Add("limit", "must be a number from 1 to 500")
		}
		limit = n
	}
	if err := v.Err(nil); err != nil {
		return err
	}
	now := h.now()
	items, err := h.deps.Store.PendingScheduled(r.Context(), now.Add(within), limit)
	if err != nil {
		return err
	}
	out := make([]scheduledView, len(items))
	for i, it := range items {
		out[i] = scheduledView{ID: it.ID, Kind: it.Kind, Subject: it.Subject, DueAt: it.DueAt.UTC(), CreatedAt: it.CreatedAt.UTC(),
			Attempts: it.Attempts, LastError: it.LastError, Overdue: it.DueAt.Before(now.Add(-time.Minute))}
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
	return nil
}

// requireOps admits an API key with the ops scope, or the unrestricted
// session of an official with the role ops — the operators on duty use
// the console, integrations use keys. The role admin does not admit:
// administrators manage officials, keys and the audit log, and reach the
// operators' routes only if they are granted ops too (by another
// administrator: nobody grants a role to themself).
func (h *handler) requireOps() func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, err := h.authenticate(r)
			if err != nil {
				h.writeAuthError(w, r, err)
				return
			}
			ok, err := h.mayOperate(r.Context(), p)
			if err != nil {
				h.writeError(w, r, err)
				return
			}
			if !ok {
				h.writeError(w, r, loa.Forbidden("this route needs an API key with the scope %q or an official with the role %q", ScopeOps, accounts.RoleOps))
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
		})
	}
}

// mayOperate reports whether p passes requireOps.
func (h *handler) mayOperate(ctx context.Context, p Principal) (bool, error) {
	if p.AccountID == "" {
		return p.Has(ScopeOps), nil
	}
	if p.Restricted || p.Kind != string(accounts.KindOfficial) || h.deps.Accounts == nil {
		return false, nil
	}
	grants, err := h.deps.Accounts.Roles(ctx, p.AccountID)
	if err != nil {
		return false, err
	}
	return lacksRole(grants, []accounts.Role{accounts.RoleOps}) == nil, nil
}
