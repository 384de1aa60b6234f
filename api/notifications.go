package api

import (
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/producer/direct"
)

// createNotification accepts a direct notification: 202 with its id.
func (h *handler) createNotification(w http.ResponseWriter, r *http.Request) error {
	var in direct.Input
	if err := decodeJSON(w, r, h.deps.MaxBodyBytes, &in); err != nil {
		return err
	}
	p, _ := principalFrom(r.Context())
	// A topic reaches everyone subscribed to it (area-<code>: the public
	// of an area) with no approval: a scope of its own, not notify:direct's.
	if in.To != nil && in.To.Topic != nil && !p.Has(ScopeNotifyTopic) {
		return &loa.Error{Code: loa.EForbidden, Field: "to.topic",
			Detail: fmt.Sprintf("sending to an FCM topic needs the scope %q besides %q: a topic reaches everyone subscribed to it, without approval", ScopeNotifyTopic, ScopeNotifyDirect)}
	}
	in.ClientID, in.IdempotencyHeader, in.ReceivedAt = p.ID, r.Header.Get("Idempotency-Key"), h.now()
	acc, err := h.deps.Direct.Submit(r.Context(), in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/notifications/"+acc.ID)
	if acc.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	auditTarget(r, acc.ID)
	writeJSON(w, http.StatusAccepted, map[string]string{"id": acc.ID, "status": "accepted"})
	return nil
}

// getNotification returns a notification's status and one outcome per
// channel. A client sees only its own notifications.
func (h *handler) getNotification(w http.ResponseWriter, r *http.Request) error {
	p, _ := principalFrom(r.Context())
	v, err := h.deps.Direct.Get(r.Context(), chi.URLParam(r, "id"), p.ID, p.Has(ScopeOps))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// cancelNotification: DELETE /v1/notifications/{id} cancels a scheduled
// notification before its send_at (409 once it was sent).
func (h *handler) cancelNotification(w http.ResponseWriter, r *http.Request) error {
	p, _ := principalFrom(r.Context())
	v, err := h.deps.Direct.Cancel(r.Context(), chi.URLParam(r, "id"), p.ID, p.Has(ScopeOps))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}
