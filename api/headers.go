package api

import (
	"net/http"
	"sort"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/loa-hub/loa"
)

// secureHeaders sets what every response carries: X-Content-Type-Options:
// nosniff, so that no browser reads a JSON answer as something else, and
// Cache-Control: no-store, so that no cache keeps what Loa answers —
// session tokens, one-time passwords, TOTP secrets, recovery codes,
// codes in the dev outbox, personal data. A handler whose answer may be
// cached sets its own Cache-Control.
func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// checkRequestText refuses a path or a query parameter that is not valid
// UTF-8 or holds NUL, naming the parameter, before anything looks it up.
func (h *handler) checkRequestText(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fe := checkText("(path)", r.URL.Path); fe != nil {
			h.writeError(w, r, loa.InvalidFields(*fe))
			return
		}
		q := r.URL.Query()
		keys := make([]string, 0, len(q))
		for k := range q {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if fe := checkText("(query)", k); fe != nil {
				h.writeError(w, r, loa.InvalidFields(*fe))
				return
			}
			for _, v := range q[k] {
				if fe := checkText(k, v); fe != nil {
					h.writeError(w, r, loa.InvalidFields(*fe))
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// routedMethods are the methods Loa routes.
var routedMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// methodNotAllowed answers 405 with the Allow header listing the methods
// the path takes (RFC 9110 §15.5.6).
func (h *handler) methodNotAllowed(routes chi.Routes) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range routedMethods {
			if routes.Match(chi.NewRouteContext(), m, r.URL.Path) {
				allow = append(allow, m)
			}
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		h.writeError(w, r, &loa.Error{Code: codeMethod,
			Detail: r.Method + " is not allowed on " + r.URL.Path + "; it takes " + strings.Join(allow, ", ")})
	}
}
