package api

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/quota"
)

// readQuota is what the API needs of the anonymous read quota
// (*quota.Quota).
type readQuota interface {
	Allow(ctx context.Context, addr string) (bool, time.Duration)
}

var _ readQuota = (*quota.Quota)(nil)

// publicRead bounds the anonymous reads of one client address
// (Deps.PublicReads): past the quota the answer is 429 rate-limited with
// Retry-After, the time to the window's end, before the route does any
// work. A caller whose credentials are valid (an API key, a session) is
// not counted; credentials that are not valid count like none.
func (h *handler) publicRead(next http.Handler) http.Handler {
	if h.deps.PublicReads == nil && h.inFlight == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			if _, err := h.resolveCredentials(r); err == nil {
				next.ServeHTTP(w, r)
				return
			}
		}
		addr := quota.AddrKey(h.clientIP(r))
		if h.deps.PublicReads != nil {
			if ok, wait := h.deps.PublicReads.Allow(r.Context(), addr); !ok {
				p := problemOf(&loa.Error{Code: loa.ERateLimited, RetryAfter: max(wait, time.Second),
					Detail: "too many anonymous requests from this address; retry after the Retry-After seconds, or sign in"})
				p.Instance = r.URL.Path
				writeProblem(w, p)
				return
			}
		}
		if h.inFlight != nil {
			if !h.inFlight.acquire(addr) {
				p := problemOf(&loa.Error{Code: loa.ERateLimited, RetryAfter: time.Second,
					Detail: "too many anonymous requests from this address are in progress; retry when one has been read, or sign in"})
				p.Instance = r.URL.Path
				writeProblem(w, p)
				return
			}
			defer h.inFlight.release(addr)
		}
		next.ServeHTTP(w, r)
	})
}

// inFlight counts the anonymous public reads each client address has in
// progress (Deps.PublicReadsInFlight). Safe for concurrent use.
type inFlight struct {
	mu  sync.Mutex
	max int
	n   map[string]int
}

// acquire takes one of addr's places, or reports false when it has max.
func (f *inFlight) acquire(addr string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n[addr] >= f.max {
		return false
	}
	f.n[addr]++
	return true
}

func (f *inFlight) release(addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n[addr]--; f.n[addr] <= 0 {
		delete(f.n, addr)
	}
}

// keyQuota bounds the requests of one authenticated API key through q
// (keyed by the key's id): past it the answer is 429 rate-limited with
// Retry-After, before the body is read. It runs after the route's
// authentication; requests without a principal are not counted (the
// route refused them already).
func (h *handler) keyQuota(q readQuota) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if q == nil {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := principalFrom(r.Context())
			if ok && p.ID != "" {
				if allowed, wait := q.Allow(r.Context(), "key:"+p.ID); !allowed {
					auditDetail(r, "refused", "key quota")
					h.writeError(w, r, &loa.Error{Code: loa.ERateLimited, RetryAfter: max(wait, time.Second),
						Detail: "this API key has sent as many notifications as it may in the window; retry after the Retry-After seconds"})
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}
