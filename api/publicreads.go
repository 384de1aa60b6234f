package api

import (
	"context"
	"net/http"
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
	if h.deps.PublicReads == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			if _, err := h.resolveCredentials(r); err == nil {
				next.ServeHTTP(w, r)
				return
			}
		}
		if ok, wait := h.deps.PublicReads.Allow(r.Context(), quota.AddrKey(h.clientIP(r))); !ok {
			p := problemOf(&loa.Error{Code: loa.ERateLimited, RetryAfter: max(wait, time.Second),
				Detail: "too many anonymous requests from this address; retry after the Retry-After seconds, or sign in"})
			p.Instance = r.URL.Path
			writeProblem(w, p)
			return
		}
		next.ServeHTTP(w, r)
	})
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
