package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"
)

// routes lists every route. openapi.json describes exactly these; a test
// holds the two together.
func (h *handler) routes(r chi.Router) {
	r.Get("/healthz", h.wrap(h.healthz))
	r.Get("/readyz", h.wrap(h.readyz))
	r.Get("/v1/openapi.json", h.wrap(h.openAPI))
	if h.deps.Metrics != nil {
		r.Method(http.MethodGet, "/metrics", h.deps.Metrics)
	}

	r.With(h.requireScope(ScopeNotifyDirect)).Post("/v1/notifications", h.wrap(h.createNotification))
	r.With(h.requireScope(ScopeNotifyDirect)).Get("/v1/notifications/{id}", h.wrap(h.getNotification))

	if h.deps.Outbox != nil {
		r.With(h.requireScope("")).Get("/v1/dev/outbox", h.wrap(h.devOutbox))
	}
}
