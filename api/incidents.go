package api

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"golang.org/x/text/unicode/norm"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/sqlstore"
)

// The operators' incident log (002:13 "ghi nhật ký sự cố", 000:19,
// 003:18.4): operators open an incident with what they know, add notes as
// they isolate and fix it, and resolve it once with its cause and what
// fixed it. Nothing is edited or deleted; a correction is a later note.
// Every route is requireOps', checked before the body is read.

const (
	maxIncidentTitle      = 200
	maxIncidentText       = 4000
	maxIncidentComponents = 20
	defaultIncidentPage   = 50
	maxIncidentPage       = 200
	// An incident may be logged after the fact, up to a year on; a time
	// ahead of the clock is refused beyond this skew.
	incidentClockSkew = 5 * time.Minute
	incidentPastLimit = 366 * 24 * time.Hour
)

var (
	incidentSeverities = []string{"minor", "major", "critical"}
	componentName      = regexp.MustCompile(`^[a-z0-9][a-z0-9._:-]{0,63}$`)
)

type incidentEntryView struct {
	Seq  int       `json:"seq"`
	At   time.Time `json:"at"`
	By   string    `json:"by"`
	Kind string    `json:"kind"`
	Body string    `json:"body"`
}

type incidentView struct {
	ID         string              `json:"id"`
	Title      string              `json:"title"`
	Severity   string              `json:"severity"`
	Status     string              `json:"status"`
	Components []string            `json:"components"`
	StartedAt  time.Time           `json:"started_at"`
	OpenedAt   time.Time           `json:"opened_at"`
	OpenedBy   string              `json:"opened_by"`
	ResolvedAt *time.Time          `json:"resolved_at"`
	ResolvedBy string              `json:"resolved_by,omitempty"`
	Cause      string              `json:"cause,omitempty"`
	Resolution string              `json:"resolution,omitempty"`
	Duration   float64             `json:"duration_seconds,omitempty"`
	Entries    []incidentEntryView `json:"entries,omitempty"`
}

func incidentOf(in sqlstore.Incident) incidentView {
	v := incidentView{ID: in.ID, Title: in.Title, Severity: in.Severity, Status: "open", Components: in.Components,
		StartedAt: in.StartedAt, OpenedAt: in.OpenedAt, OpenedBy: in.OpenedBy, ResolvedBy: in.ResolvedBy,
		Cause: in.Cause, Resolution: in.Resolution}
	if v.Components == nil {
		v.Components = []string{}
	}
	if !in.ResolvedAt.IsZero() {
		at := in.ResolvedAt
		v.Status, v.ResolvedAt, v.Duration = "resolved", &at, at.Sub(in.StartedAt).Seconds()
	}
	for _, e := range in.Entries {
		v.Entries = append(v.Entries, incidentEntryView(e))
	}
	return v
}

// incidentText is a text field: NFC, trimmed, at most limit characters.
func incidentText(v *loa.Validation, field, s string, limit int, required bool) string {
	s = norm.NFC.String(strings.TrimSpace(s))
	switch n := utf8.RuneCountInString(s); {
	case n == 0 && required:
		v.Add(field, "is required")
	case n > limit:
		v.Add(field, "is %d characters; the limit is %d", n, limit)
	}
	return s
}

// incidentTime is an optional RFC 3339 time, within a year before now and
// not ahead of the clock; def when absent.
func incidentTime(v *loa.Validation, field, s string, now, def time.Time) time.Time {
	if s == "" {
		return def
	}
	t, err := time.Parse(time.RFC3339, s)
	switch {
	case err != nil:
		v.Add(field, "must be an RFC 3339 time, such as 2026-11-30T08:15:00+07:00")
	case t.After(now.Add(incidentClockSkew)):
		v.Add(field, "is in the future")
	case t.Before(now.Add(-incidentPastLimit)):
		v.Add(field, "is more than a year ago")
	}
	return t.UTC()
}

type openIncidentRequest struct {
	Title       string   `json:"title"`
	Severity    string   `json:"severity"`
	Components  []string `json:"components"`
	StartedAt   string   `json:"started_at"`
	Description string   `json:"description"`
}

// openIncident: POST /v1/ops/incidents.
func (h *handler) openIncident(w http.ResponseWriter, r *http.Request) error {
	var req openIncidentRequest
	if err := decodeJSON(w, r, h.deps.MaxBodyBytes, &req); err != nil {
		return err
	}
	now := h.now().UTC()
	var v loa.Validation
	in := sqlstore.Incident{ID: uuid.NewString(), OpenedAt: now, Components: []string{}}
	in.Title = incidentText(&v, "title", req.Title, maxIncidentTitle, true)
	if strings.ContainsAny(in.Title, "\r\n") {
		v.Add("title", "must be one line")
	}
	if in.Severity = req.Severity; !slices.Contains(incidentSeverities, in.Severity) {
		v.Add("severity", "must be one of %s", strings.Join(incidentSeverities, ", "))
	}
	if len(req.Components) > maxIncidentComponents {
		v.Add("components", "has %d items; the limit is %d", len(req.Components), maxIncidentComponents)
	} else {
		for i, c := range req.Components {
			c = strings.ToLower(strings.TrimSpace(c))
			switch {
			case !componentName.MatchString(c):
				v.Add(fmt.Sprintf("components[%d]", i), "must be 1-64 characters a-z, 0-9, '.', '_', ':' or '-' (fcm, sms:viettel, kafka…)")
			case !slices.Contains(in.Components, c):
				in.Components = append(in.Components, c)
			}
		}
	}
	in.StartedAt = incidentTime(&v, "started_at", req.StartedAt, now, now)
	desc := incidentText(&v, "description", req.Description, maxIncidentText, false)
	if err := v.Err(nil); err != nil {
		return err
	}
	in.OpenedBy = h.incidentActor(r)
	if err := h.deps.Store.OpenIncident(r.Context(), in, desc); err != nil {
		return err
	}
	auditTarget(r, in.ID)
	in.Entries = []sqlstore.IncidentEntry{{Seq: 1, At: now, By: in.OpenedBy, Kind: "opened", Body: desc}}
	w.Header().Set("Location", "/v1/ops/incidents/"+in.ID)
	writeJSON(w, http.StatusCreated, incidentOf(in))
	return nil
}

// listIncidents: GET /v1/ops/incidents?status=open|resolved&limit=&before=.
func (h *handler) listIncidents(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var v loa.Validation
	status := q.Get("status")
	if status != "" && status != "open" && status != "resolved" {
		v.Add("status", "must be open or resolved")
	}
	p := pageOf(&v, q, defaultIncidentPage, maxIncidentPage)
	if err := v.Err(nil); err != nil {
		return err
	}
	rows, err := h.deps.Store.Incidents(r.Context(), status, p.beforeAt, p.beforeID, p.limit+1)
	if err != nil {
		return err
	}
	out := struct {
		Items []incidentView `json:"items"`
		Next  string         `json:"next,omitempty"`
	}{Items: []incidentView{}}
	if len(rows) > p.limit {
		rows = rows[:p.limit]
		last := rows[len(rows)-1]
		out.Next = encodeCursor(last.OpenedAt, last.ID)
	}
	for _, in := range rows {
		out.Items = append(out.Items, incidentOf(in))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// getIncident: GET /v1/ops/incidents/{id}, with its timeline.
func (h *handler) getIncident(w http.ResponseWriter, r *http.Request) error {
	id := chi.URLParam(r, "id")
	in, err := h.deps.Store.Incident(r.Context(), id)
	if errors.Is(err, sqlstore.ErrNotFound) {
		return loa.NotFound("incident %s not found", id)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, incidentOf(in))
	return nil
}

// addIncidentNote: POST /v1/ops/incidents/{id}/notes {body}.
func (h *handler) addIncidentNote(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Body string `json:"body"`
	}
	if err := decodeJSON(w, r, h.deps.MaxBodyBytes, &req); err != nil {
		return err
	}
	var v loa.Validation
	body := incidentText(&v, "body", req.Body, maxIncidentText, true)
	if err := v.Err(nil); err != nil {
		return err
	}
	id := chi.URLParam(r, "id")
	e, err := h.deps.Store.AddIncidentNote(r.Context(), id, h.incidentActor(r), body, h.now())
	if err != nil {
		return incidentError(id, err)
	}
	auditTarget(r, id)
	writeJSON(w, http.StatusCreated, incidentEntryView(e))
	return nil
}

// resolveIncident: POST /v1/ops/incidents/{id}/resolve {cause,
// resolution, resolved_at?}. Once: a second is 409.
func (h *handler) resolveIncident(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Cause      string `json:"cause"`
		Resolution string `json:"resolution"`
		ResolvedAt string `json:"resolved_at"`
	}
	if err := decodeJSON(w, r, h.deps.MaxBodyBytes, &req); err != nil {
		return err
	}
	now := h.now().UTC()
	var v loa.Validation
	cause := incidentText(&v, "cause", req.Cause, maxIncidentText, true)
	resolution := incidentText(&v, "resolution", req.Resolution, maxIncidentText, true)
	at := incidentTime(&v, "resolved_at", req.ResolvedAt, now, now)
	if err := v.Err(nil); err != nil {
		return err
	}
	id := chi.URLParam(r, "id")
	in, err := h.deps.Store.Incident(r.Context(), id)
	if err != nil {
		return incidentError(id, err)
	}
	if in.ResolvedAt.IsZero() && at.Before(in.StartedAt) {
		return loa.Invalid("resolved_at", "is before the incident started (%s)", in.StartedAt.Format(time.RFC3339))
	}
	if _, err := h.deps.Store.ResolveIncident(r.Context(), id, h.incidentActor(r), cause, resolution, at, now); err != nil {
		return incidentError(id, err)
	}
	auditTarget(r, id)
	if in, err = h.deps.Store.Incident(r.Context(), id); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, incidentOf(in))
	return nil
}

// incidentActor names who writes to the log as its readers know them: an
// official by user name (user names are never reused), a key as
// "apikey:<id>" as the audit log does.
func (h *handler) incidentActor(r *http.Request) string {
	p, _ := principalFrom(r.Context())
	if p.AccountID != "" {
		if a, err := h.deps.Store.Account(r.Context(), p.AccountID); err == nil && a.Username != "" {
			return a.Username
		}
	}
	return auditActor(p)
}

func incidentError(id string, err error) error {
	switch {
	case errors.Is(err, sqlstore.ErrNotFound):
		return loa.NotFound("incident %s not found", id)
	case errors.Is(err, sqlstore.ErrIncidentResolved):
		return loa.Conflict("incident %s is resolved already; add a note instead", id)
	case errors.Is(err, sqlstore.ErrIncidentFull):
		return loa.Conflict("incident %s has the most entries it keeps; open a new incident", id)
	}
	return err
}
