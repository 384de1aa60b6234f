// Package console is Loa's web console at /console/: server-rendered
// pages (html/template) for submitters, approvers, alert issuers and
// operators, progressively enhanced with htmx (partial updates) and uPlot
// (the deliveries-per-second chart), both vendored and embedded, so the
// binary serves everything and nothing is built.
//
// The console is a client of Loa's own API, called in process: every page
// calls the same routes an integrating system or the apps call, with the
// signed-in official's session. The API's permission rules are therefore
// the only rules — a page the API refuses is refused — and every call is
// in the audit log like any other.
//
// Sessions: sign-in goes through POST /v1/sessions (throttling, second
// factor and password expiry are the accounts service's); the session
// token lives in an HttpOnly, SameSite=Strict cookie (Secure outside dev),
// every form carries a CSRF token bound to the session, and a session
// unused for the idle timeout is ended.
package console
