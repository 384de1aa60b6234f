package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/internal/sqlstore"
)

// ActionCall is the audit log's action of an API call.
const ActionCall = "call"

// auditWriteTimeout bounds the audit write of one call.
const auditWriteTimeout = 5 * time.Second

// callRecord is what the audit of one call learns while the call is
// served: who authenticated (set by authenticate, whatever route
// middleware called it) and, where the handler names it, the target.
type callRecord struct {
	principal *Principal
	target    string
	detail    map[string]string
}

type callRecordKey struct{}

func callRecordFrom(ctx context.Context) *callRecord {
	rec, _ := ctx.Value(callRecordKey{}).(*callRecord)
	return rec
}

// auditTarget names what the call acted on, for routes where the path
// does not (a created notification, alert, broadcast, official…).
func auditTarget(r *http.Request, id string) {
	if rec := callRecordFrom(r.Context()); rec != nil {
		rec.target = id
	}
}

// auditDetail adds a detail to the call's audit row. Never a secret, a
// code or an unmasked phone number.
func auditDetail(r *http.Request, key, value string) {
	if rec := callRecordFrom(r.Context()); rec != nil {
		if rec.detail == nil {
			rec.detail = map[string]string{}
		}
		rec.detail[key] = value
	}
}

// audited reports whether calls by p are written to the audit log:
// integrating systems' keys and officials. Citizens' and organisations'
// own changes are recorded by the accounts domain; their reads are not
// kept.
func audited(p Principal) bool {
	return p.AccountID == "" || p.Kind == string(accounts.KindOfficial)
}

// auditActor is how the audit log names p: the account id of a session,
// "apikey:<id>" of a key (as the accounts domain names them).
func auditActor(p Principal) string {
	if p.AccountID != "" {
		return p.AccountID
	}
	return "apikey:" + p.ID
}

type unauditedReadKey struct{}

// UnauditedRead marks a read the console makes in process on its own
// behalf, which auditCalls then does not write: the session check of
// every console page (GET /v1/me and GET /v1/me/capabilities), and a live
// view's poll of a broadcast or alert that the same session's poll had
// audited within the last minute. Without it one open live view wrote
// three rows every 2 s. Only GET and HEAD are ever left out: on any other
// method the mark is ignored. It is a context value, so only code in the
// process can set it, never a request.
func UnauditedRead(ctx context.Context) context.Context {
	return context.WithValue(ctx, unauditedReadKey{}, true)
}

func unauditedRead(r *http.Request) bool {
	marked, _ := r.Context().Value(unauditedReadKey{}).(bool)
	return marked && (r.Method == http.MethodGet || r.Method == http.MethodHead)
}

// auditCalls writes one audit row for every call made with an integrating
// system's key or an official's session, reads included, whatever its
// outcome (a 403 too): who, the route pattern, the target, the status,
// the client address, the time and the request id. It wraps the whole
// router, and authenticate reports the caller to it, so a new route is
// audited as soon as it authenticates; calls that authenticate nobody
// (public routes, a missing or unknown key) write nothing, so a stranger
// cannot fill the log.
//
// The row is written after the handler, before the response is complete;
// a failed write is logged at Error with the whole row and does not
// change the answer, whose action has already happened.
func (h *handler) auditCalls(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &callRecord{}
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r.WithContext(context.WithValue(r.Context(), callRecordKey{}, rec)))
		if rec.principal == nil || !audited(*rec.principal) || unauditedRead(r) {
			return
		}
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
		e := accounts.AuditEntry{At: h.now().UTC(), Actor: auditActor(*rec.principal), Action: ActionCall, Subject: rec.target,
			Detail: rec.detail, IP: h.clientIP(r), Route: r.Method + " " + r.URL.Path, Status: status,
			RequestID: middleware.GetReqID(r.Context())}
		if rctx := chi.RouteContext(r.Context()); rctx != nil {
			if p := rctx.RoutePattern(); p != "" {
				e.Route = r.Method + " " + p
			}
			for i, k := range rctx.URLParams.Keys {
				v := rctx.URLParams.Values[i]
				switch {
				case k == "*" || v == "":
				case k == "id" && e.Subject == "":
					e.Subject = v
				case k != "id":
					if e.Detail == nil {
						e.Detail = map[string]string{}
					}
					if _, set := e.Detail[k]; !set {
						e.Detail[k] = v
					}
				}
			}
		}
		e.Subject, e.Route = auditText(e.Subject), auditText(e.Route)
		for k, v := range e.Detail {
			e.Detail[k] = auditText(v)
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), auditWriteTimeout)
		defer cancel()
		if err := h.deps.Store.AppendAudit(ctx, e); err != nil {
			h.log.Error("api: audit log write failed", slog.String("actor", e.Actor), slog.String("route", e.Route),
				slog.String("target", e.Subject), slog.Int("status", e.Status), slog.String("ip", e.IP),
				slog.String("request_id", e.RequestID), slog.Time("at", e.At), slog.Any("error", err))
		}
	})
}

// ScopeAudit lets an integrating system (a SIEM, the province's
// monitoring) read the audit log.
const ScopeAudit = "audit"

// requireScopeOrAdmin admits an API key holding scope, or the session of
// an official holding the admin role (in any unit: admin applies
// everywhere): 401 without valid credentials, 403 otherwise. It looks at
// nothing of the request but its credentials.
func (h *handler) requireScopeOrAdmin(scope string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, err := h.authenticate(r)
			if err != nil {
				h.writeAuthError(w, r, err)
				return
			}
			ok, err := h.scopeOrAdmin(r.Context(), p, scope)
			if err != nil {
				h.writeError(w, r, err)
				return
			}
			if !ok {
				h.writeError(w, r, &loa.Error{Code: loa.EForbidden, Detail: fmt.Sprintf("this route needs an API key with the scope %q or an official with the role %q", scope, accounts.RoleAdmin)})
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
		})
	}
}

func (h *handler) scopeOrAdmin(ctx context.Context, p Principal, scope string) (bool, error) {
	if p.AccountID == "" {
		return p.Has(scope), nil
	}
	if p.Restricted || p.Kind != string(accounts.KindOfficial) || h.deps.Accounts == nil {
		return false, nil
	}
	grants, err := h.deps.Accounts.Roles(ctx, p.AccountID)
	if err != nil {
		return false, err
	}
	for _, g := range grants {
		if g.Role == accounts.RoleAdmin {
			return true, nil
		}
	}
	return false, nil
}

const (
	defaultAuditPage = 100
	maxAuditPage     = 1000
)

// auditView is one audit entry as GET /v1/audit shows it.
type auditView struct {
	ID        string            `json:"id"`
	At        time.Time         `json:"at"`
	Actor     string            `json:"actor"`
	Action    string            `json:"action"`
	Target    string            `json:"target,omitempty"`
	Route     string            `json:"route,omitempty"`
	Status    int               `json:"status,omitempty"`
	IP        string            `json:"ip,omitempty"`
	RequestID string            `json:"request_id,omitempty"`
	Detail    map[string]string `json:"detail,omitempty"`
}

// listAudit: GET /v1/audit, newest first, filtered by ?actor=, ?target=,
// ?route=, ?since= and ?until= (RFC 3339), a page at a time (?limit=,
// ?before= the previous page's next).
func (h *handler) listAudit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var errs []loa.FieldError
	f := sqlstore.AuditFilter{Actor: q.Get("actor"), Target: q.Get("target"), Route: q.Get("route"), Limit: defaultAuditPage}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxAuditPage {
			errs = append(errs, loa.FieldError{Field: "limit", Detail: fmt.Sprintf("must be a whole number from 1 to %d", maxAuditPage)})
		} else {
			f.Limit = n
		}
	}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if s := q.Get(t.name); s != "" {
			v, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				errs = append(errs, loa.FieldError{Field: t.name, Detail: "must be an RFC 3339 time such as 2026-11-22T09:00:00Z"})
				continue
			}
			*t.dst = v
		}
	}
	if s := q.Get("before"); s != "" {
		at, id, err := decodeCursor(s)
		if err != nil {
			errs = append(errs, loa.FieldError{Field: "before", Detail: "is not a cursor from a previous page's next"})
		}
		f.Before = sqlstore.AuditCursor{At: at, ID: id}
	}
	for _, name := range []string{"actor", "target", "route"} {
		if len(q.Get(name)) > 512 {
			errs = append(errs, loa.FieldError{Field: name, Detail: "must be at most 512 bytes"})
		}
	}
	if len(errs) > 0 {
		return loa.InvalidFields(errs...)
	}
	entries, next, err := h.deps.Store.ListAudit(r.Context(), f)
	if err != nil {
		return err
	}
	out := struct {
		Items []auditView `json:"items"`
		Next  string      `json:"next,omitempty"`
	}{Items: make([]auditView, 0, len(entries))}
	for _, e := range entries {
		out.Items = append(out.Items, auditView{ID: e.ID, At: e.At, Actor: e.Actor, Action: e.Action, Target: e.Subject, Route: e.Route,
			Status: e.Status, IP: e.IP, RequestID: e.RequestID, Detail: e.Detail})
	}
	if !next.IsZero() {
		out.Next = encodeCursor(next.At, next.ID)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// maskToken keeps the first characters of a device token: enough to tell
// two look-ups apart in the audit log, not enough to push to it.
func maskToken(t string) string {
	if len(t) <= 8 {
		return "***"
	}
	return t[:8] + "***"
}

// maskEmail keeps the first letter of the local part and the domain.
func maskEmail(e string) string {
	local, domain, ok := strings.Cut(e, "@")
	if !ok || local == "" {
		return "***"
	}
	return local[:1] + "***@" + domain
}

// maxAuditText bounds each text of a call's audit row that the caller
// chose (a path parameter, a detail).
const maxAuditText = 256

// auditText makes a caller-chosen string storable on every dialect and
// bounded: invalid UTF-8 and NUL become U+FFFD, and it is cut at
// maxAuditText bytes (on a rune boundary).
func auditText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	if len(s) > maxAuditText {
		cut := maxAuditText
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}
