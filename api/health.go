package api

import (
	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/channels/sandbox"

	"context"
	"log/slog"
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

// readyz answers whether every dependency (Deps.Ready) answers. The
// route is public (Kubernetes' readiness probe sends no credentials), so
// a request does not probe anything itself: it reads the last probe's
// result, at most ReadyEvery old, and when that is stale one probe runs
// for every caller waiting (readiness.result). Anonymous callers get the
// status only; the checks' own answers (error strings naming addresses)
// go to an ops or metrics:read key, or an official with the role ops,
// and to the log.
func (h *handler) readyz(w http.ResponseWriter, r *http.Request) error {
	res, err := h.ready.result(r.Context())
	if err != nil {
		return err
	}
	status, code := "ready", http.StatusOK
	if !res.ok {
		status, code = "unavailable", http.StatusServiceUnavailable
	}
	w.Header().Set("Cache-Control", "no-store")
	out := map[string]any{"status": status}
	if h.mayReadChecks(r) {
		out["checks"], out["checked_at"] = res.checks, res.at.UTC().Format(time.RFC3339Nano)
	}
	writeJSON(w, code, out)
	return nil
}

// mayReadChecks reports whether r's credentials may read the checks'
// answers: an API key with ops or metrics:read, or an ops official.
// Credentials that are not valid count like none; they are not refused,
// so a probe with a stale header still learns the status.
func (h *handler) mayReadChecks(r *http.Request) bool {
	if r.Header.Get("Authorization") == "" {
		return false
	}
	p, err := h.authenticate(r)
	if err != nil {
		return false
	}
	if p.AccountID == "" && p.Has(ScopeMetricsRead) {
		return true
	}
	ok, err := h.mayOperate(r.Context(), p)
	return err == nil && ok
}

// ReadyEvery is how old a /readyz answer may be: each API process probes
// its dependencies at most once in it, however many ask.
const ReadyEvery = time.Second

// readyTimeout bounds one probe of every dependency.
const readyTimeout = 2 * time.Second

// readiness keeps the last probe of the dependencies and runs at most
// one probe at a time.
type readiness struct {
	checks []Check
	now    func() time.Time
	log    *slog.Logger

	mu      sync.Mutex
	last    *readyResult
	running chan struct{} // closed when the running probe has stored last
}

type readyResult struct {
	ok     bool
	checks map[string]string
	at     time.Time
}

// result returns the last probe's result if it is younger than
// ReadyEvery; otherwise it starts a probe, unless one runs, and waits
// for it or for ctx. The probe does not run on any caller's context: a
// caller that goes away neither cancels it nor fails it for the others.
func (rd *readiness) result(ctx context.Context) (readyResult, error) {
	rd.mu.Lock()
	if rd.last != nil {
		if age := rd.now().Sub(rd.last.at); age >= 0 && age < ReadyEvery {
			res := *rd.last
			rd.mu.Unlock()
			return res, nil
		}
	}
	if rd.running == nil {
		rd.running = make(chan struct{})
		go rd.probe(rd.running)
	}
	done := rd.running
	rd.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return readyResult{}, ctx.Err()
	}
	rd.mu.Lock()
	defer rd.mu.Unlock()
	return *rd.last, nil
}

// probe runs every check in parallel, each within readyTimeout, stores
// the result and closes done.
func (rd *readiness) probe(done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		res = readyResult{ok: true, checks: map[string]string{}}
	)
	for _, c := range rd.checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answer := "ok"
			if err := c.Check(ctx); err != nil {
				answer = err.Error()
				rd.log.Warn("readiness check failed", slog.String("check", c.Name), slog.String("error", answer))
			}
			mu.Lock()
			defer mu.Unlock()
			res.checks[c.Name] = answer
			if answer != "ok" {
				res.ok = false
			}
		}()
	}
	wg.Wait()
	res.at = rd.now()
	rd.mu.Lock()
	defer rd.mu.Unlock()
	rd.last, rd.running = &res, nil
	close(done)
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
