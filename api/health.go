package api

import (
	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/channels/sandbox"

	"context"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// healthz says the process is up; it checks nothing else.
func (h *handler) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// readyz probes every dependency in parallel, each within two seconds.
func (h *handler) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		results = map[string]string{}
		ok      = true
	)
	for _, c := range h.deps.Ready {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := "ok"
			if err := c.Check(ctx); err != nil {
				res = err.Error()
			}
			mu.Lock()
			defer mu.Unlock()
			results[c.Name] = res
			if res != "ok" {
				ok = false
			}
		}()
	}
	wg.Wait()
	status, code := "ready", http.StatusOK
	if !ok {
		status, code = "unavailable", http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]any{"status": status, "checks": results})
	return nil
}

// devOutbox lists what the sandbox channels captured, newest last.
func (h *handler) devOutbox(w http.ResponseWriter, r *http.Request) error {
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			return loa.InvalidFields(loa.FieldError{Field: "limit", Detail: "must be a whole number from 1 to 10000"})
		}
		limit = n
	}
	items := h.deps.Outbox.Entries(r.URL.Query().Get("notification_id"), limit)
	if items == nil {
		items = []sandboxEntry{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "total": h.deps.Outbox.Total()})
	return nil
}

type sandboxEntry = sandbox.Entry
