package console

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The operators' incident log (GET/POST /v1/ops/incidents…): the list
// with a form to open one, and an incident's page with its timeline, a
// note form and, while it is open, the resolution form. The API decides
// who may (operators); the console shows what it answers.

type incidentEntry struct {
	Seq  int       `json:"seq"`
	At   time.Time `json:"at"`
	By   string    `json:"by"`
	Kind string    `json:"kind"`
	Body string    `json:"body"`
}

type incident struct {
	ID         string          `json:"id"`
	Title      string          `json:"title"`
	Severity   string          `json:"severity"`
	Status     string          `json:"status"`
	Components []string        `json:"components"`
	StartedAt  time.Time       `json:"started_at"`
	OpenedAt   time.Time       `json:"opened_at"`
	OpenedBy   string          `json:"opened_by"`
	ResolvedAt *time.Time      `json:"resolved_at"`
	ResolvedBy string          `json:"resolved_by"`
	Cause      string          `json:"cause"`
	Resolution string          `json:"resolution"`
	Duration   float64         `json:"duration_seconds"`
	Entries    []incidentEntry `json:"entries"`
}

// DurationText is the incident's length, rounded to the minute.
func (i incident) DurationText() string {
	return (time.Duration(i.Duration) * time.Second).Round(time.Minute).String()
}

// incidentForm is what the forms post back, with the API's refusals by
// field.
type incidentForm struct {
	Title, Severity, Components, StartedAt, Description string
	Body, Cause, Resolution, ResolvedAt                 string
	Errors                                              map[string]string
}

var incidentSeverities = []string{"minor", "major", "critical"}

func (c *Console) incidentRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+Prefix+"ops/incidents", c.signedIn(c.incidents))
	mux.HandleFunc("POST "+Prefix+"ops/incidents", c.signedIn(c.incidentOpen))
	mux.HandleFunc("GET "+Prefix+"ops/incidents/{id}", c.signedIn(c.incidentPage))
	mux.HandleFunc("POST "+Prefix+"ops/incidents/{id}/{action}", c.signedIn(c.incidentAction))
}

func (c *Console) incidents(w http.ResponseWriter, r *http.Request) {
	c.showIncidents(w, r, http.StatusOK, incidentForm{Severity: "major", Errors: map[string]string{}})
}

func (c *Console) showIncidents(w http.ResponseWriter, r *http.Request, status int, f incidentForm) {
	var list struct {
		Items []incident `json:"items"`
		Next  string     `json:"next"`
	}
	q := url.Values{"limit": {"100"}}
	if s := r.URL.Query().Get("status"); s == "open" || s == "resolved" {
		q.Set("status", s)
	}
	if b := r.URL.Query().Get("before"); b != "" {
		q.Set("before", b)
	}
	if _, err := c.get(r, "/v1/ops/incidents", q, &list); err != nil {
		c.fail(w, r, err)
		return
	}
	p := c.basePage(r, "in.title", "incidents")
	p.Data = map[string]any{"Items": list.Items, "Next": list.Next, "Status": q.Get("status"), "Form": f, "Severities": incidentSeverities}
	c.render(w, r, status, "incidents", p)
}

// localTime turns a datetime-local value (Vietnam time, as the console
// shows every time) into RFC 3339; anything else goes as it is, for the
// API to name.
func (c *Console) localTime(v string) string {
	if t, err := time.ParseInLocation("2006-01-02T15:04", v, c.zone); err == nil {
		return t.Format(time.RFC3339)
	}
	return v
}

func (c *Console) incidentOpen(w http.ResponseWriter, r *http.Request) {
	f := incidentForm{Title: r.PostFormValue("title"), Severity: r.PostFormValue("severity"), Components: r.PostFormValue("components"),
		StartedAt: r.PostFormValue("started_at"), Description: r.PostFormValue("description"), Errors: map[string]string{}}
	req := map[string]any{"title": f.Title, "severity": f.Severity, "description": f.Description}
	if comps := strings.FieldsFunc(f.Components, func(r rune) bool { return r == ',' || r == ' ' }); len(comps) > 0 {
		req["components"] = comps
	}
	if f.StartedAt != "" {
		req["started_at"] = c.localTime(f.StartedAt)
	}
	var out incident
	_, err := c.api(r, http.MethodPost, "/v1/ops/incidents", req, &out)
	var prob *problem
	if errors.As(err, &prob) && prob.Status == http.StatusBadRequest {
		formErrors(prob, f.Errors)
		c.showIncidents(w, r, prob.Status, f)
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, Prefix+"ops/incidents/"+url.PathEscape(out.ID)+"?flash=in.opened", http.StatusSeeOther)
}

func (c *Console) incidentPage(w http.ResponseWriter, r *http.Request) {
	c.showIncident(w, r, http.StatusOK, r.PathValue("id"), incidentForm{Errors: map[string]string{}}, nil)
}

func (c *Console) showIncident(w http.ResponseWriter, r *http.Request, status int, id string, f incidentForm, prob *problem) {
	var in incident
	if _, err := c.get(r, "/v1/ops/incidents/"+url.PathEscape(id), nil, &in); err != nil {
		c.fail(w, r, err)
		return
	}
	p := c.basePage(r, "in.title", "incidents")
	p.Title, p.Problem = in.Title, prob
	if fl := r.URL.Query().Get("flash"); fl == "in.opened" || fl == "in.noted" || fl == "in.resolved" {
		p.Flash = fl
	}
	p.Data = map[string]any{"I": in, "Form": f}
	c.render(w, r, status, "incident", p)
}

// incidentAction: a note, or the resolution.
func (c *Console) incidentAction(w http.ResponseWriter, r *http.Request) {
	id, action := r.PathValue("id"), r.PathValue("action")
	f := incidentForm{Body: r.PostFormValue("body"), Cause: r.PostFormValue("cause"), Resolution: r.PostFormValue("resolution"),
		ResolvedAt: r.PostFormValue("resolved_at"), Errors: map[string]string{}}
	var (
		path  string
		req   map[string]any
		flash string
	)
	switch action {
	case "note":
		path, req, flash = "/notes", map[string]any{"body": f.Body}, "in.noted"
	case "resolve":
		path, req, flash = "/resolve", map[string]any{"cause": f.Cause, "resolution": f.Resolution}, "in.resolved"
		if f.ResolvedAt != "" {
			req["resolved_at"] = c.localTime(f.ResolvedAt)
		}
	default:
		http.NotFound(w, r)
		return
	}
	_, err := c.api(r, http.MethodPost, "/v1/ops/incidents/"+url.PathEscape(id)+path, req, nil)
	var prob *problem
	if errors.As(err, &prob) && (prob.Status == http.StatusBadRequest || prob.Status == http.StatusConflict) {
		formErrors(prob, f.Errors)
		c.showIncident(w, r, prob.Status, id, f, prob)
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, Prefix+"ops/incidents/"+url.PathEscape(id)+"?flash="+flash, http.StatusSeeOther)
}
