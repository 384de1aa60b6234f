package console

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// maxCAPBytes bounds an uploaded CAP file's request: the API's own limit
// on a CAP document (1 MiB by default) and the form around it.
const maxCAPBytes = 1<<20 + 64<<10

func (c *Console) alertRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+Prefix+"alerts", c.signedIn(c.alertList))
	mux.HandleFunc("GET "+Prefix+"alerts/new", c.needs("alerts.issue", c.alertNew))
	mux.HandleFunc("POST "+Prefix+"alerts/new", c.signedIn(c.alertCreate))
	mux.HandleFunc("POST "+Prefix+"alerts/cap", c.signedIn(c.alertUpload))
	mux.HandleFunc("GET "+Prefix+"alerts/{id}", c.signedIn(c.alertPage))
	mux.HandleFunc("GET "+Prefix+"alerts/{id}/live.json", c.signedIn(c.alertLiveJSON))
	mux.HandleFunc("POST "+Prefix+"alerts/{id}/{action}", c.signedIn(c.alertAction))
}

// alertItem is the API's view of an alert, as far as the console shows it.
type alertItem struct {
	ID           string     `json:"id"`
	Identifier   string     `json:"identifier"`
	Status       string     `json:"status"`
	MsgType      string     `json:"msg_type"`
	Priority     string     `json:"priority"`
	Distribution string     `json:"distribution"`
	Areas        []string   `json:"areas"`
	Channels     []string   `json:"channels"`
	Sender       string     `json:"sender"`
	Issuer       string     `json:"issuer"`
	IssuerName   string     `json:"issuer_name"`
	SenderName   string     `json:"sender_name"`
	CreatedAt    time.Time  `json:"created_at"`
	PublishedAt  *time.Time `json:"published_at"`
	Expires      time.Time  `json:"expires"`
	DecidedBy    string     `json:"decided_by"`
	DecidedName  string     `json:"decided_by_name"`
	DecidedAt    *time.Time `json:"decided_at"`
	Reason       string     `json:"reason"`
	Note         string     `json:"note"`
	References   []string   `json:"references"`
	Updates      []string   `json:"updates"`
	CancelledBy  []string   `json:"cancelled_by"`
	Texts        []struct {
		Language    string `json:"language"`
		Event       string `json:"event"`
		Severity    string `json:"severity"`
		Urgency     string `json:"urgency"`
		Certainty   string `json:"certainty"`
		Headline    string `json:"headline"`
		Description string `json:"description"`
		Instruction string `json:"instruction"`
	} `json:"texts"`
	Stats *stats `json:"stats"`
}

// Headline is the first text's headline (the Vietnamese one first).
func (a alertItem) Headline() string {
	if len(a.Texts) > 0 && a.Texts[0].Headline != "" {
		return a.Texts[0].Headline
	}
	if len(a.Texts) > 0 && a.Texts[0].Event != "" {
		return a.Texts[0].Event
	}
	return a.Identifier
}

// Sendable reports whether the alert goes out (or has gone out).
func (a alertItem) Sendable() bool {
	return a.Status == "sent_preauthorised" || a.Status == "sent_approved"
}

// Amendable reports whether an Update or a Cancel of the alert makes
// sense: an alert or update, sent or waiting, not cancelled yet.
func (a alertItem) Amendable() bool {
	return !strings.EqualFold(a.MsgType, "cancel") && len(a.CancelledBy) == 0 &&
		(a.Sendable() || a.Status == "pending_approval")
}

// alertEstimate sizes a public alert's audience and prices its SMS as
// POST /v1/broadcasts/estimate does for a broadcast to the same areas
// with the same text and channels (approvers and submitters may call
// it). Nil when the alert is not public, names no area, or the caller
// may not estimate.
func (c *Console) alertEstimate(r *http.Request, a alertItem) *estimate {
	if a.Distribution != "public" || len(a.Areas) == 0 || len(a.Texts) == 0 {
		return nil
	}
	t := a.Texts[0]
	body := t.Description
	if body == "" {
		body = t.Headline
	}
	if t.Instruction != "" {
		body += "\n" + t.Instruction
	}
	req := map[string]any{"title": t.Headline, "body": body, "channels": a.Channels, "audience": map[string]any{"areas": a.Areas}}
	var est estimate
	if _, err := c.api(r, http.MethodPost, "/v1/broadcasts/estimate", req, &est); err != nil {
		return nil
	}
	return &est
}

// Final reports whether the alert's counters will not change any more.
func (a alertItem) Final() bool {
	pending := int64(0)
	if a.Stats != nil {
		pending = a.Stats.Pending
	}
	return a.Status != "pending_approval" && pending == 0 && (!a.Sendable() || a.PublishedAt != nil)
}

func (c *Console) alertList(w http.ResponseWriter, r *http.Request) {
	items, err := listByStatus[alertItem](c, r, "/v1/alerts")
	if err != nil {
		c.fail(w, r, err)
		return
	}
	p := c.basePage(r, "al.title", "alerts")
	if f := r.URL.Query().Get("flash"); f == "al.received" {
		p.Flash = f
	}
	p.Data = items
	c.render(w, r, http.StatusOK, "alerts", p)
}

// alertForm is the alert form as typed (an alert, or an Update of one).
type alertForm struct {
	Identifier                                string
	Event, Headline, Description, Instruction string
	Severity, Urgency, Certainty, Expires     string
	Areas, Channels                           []string
	Errors                                    map[string]string
	Tree                                      []areaNode
	Severities, Urgencies, Certainties        []string
}

var (
	severities  = []string{"Extreme", "Severe", "Moderate", "Minor", "Unknown"}
	urgencies   = []string{"Immediate", "Expected", "Future", "Past", "Unknown"}
	certainties = []string{"Observed", "Likely", "Possible", "Unlikely", "Unknown"}
)

// newIdentifier names a form's alert, so that posting the same form twice
// is one alert (the API replays it).
func newIdentifier() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "console-" + hex.EncodeToString(b)
}

func (c *Console) readAlertForm(r *http.Request) alertForm {
	_ = r.ParseForm()
	f := alertForm{Identifier: r.PostForm.Get("identifier"), Event: r.PostForm.Get("event"), Headline: r.PostForm.Get("headline"),
		Description: r.PostForm.Get("description"), Instruction: r.PostForm.Get("instruction"), Severity: r.PostForm.Get("severity"),
		Urgency: r.PostForm.Get("urgency"), Certainty: r.PostForm.Get("certainty"), Expires: r.PostForm.Get("expires"),
		Areas: r.PostForm["areas"], Channels: r.PostForm["channels"], Errors: map[string]string{}}
	for _, code := range strings.FieldsFunc(r.PostForm.Get("area_codes"), func(r rune) bool { return r == ',' || r == ' ' || r == ';' || r == '\n' }) {
		if !slices.Contains(f.Areas, code) {
			f.Areas = append(f.Areas, code)
		}
	}
	return f
}

// alertRequest is the JSON alert (POST /v1/alerts) of the form.
func (c *Console) alertRequest(f alertForm, msgType string, refs []string) map[string]any {
	req := map[string]any{"msg_type": msgType, "event": f.Event, "headline": f.Headline, "description": f.Description,
		"instruction": f.Instruction, "severity": f.Severity, "urgency": f.Urgency, "certainty": f.Certainty}
	if f.Identifier != "" {
		req["identifier"] = f.Identifier
	}
	if len(refs) > 0 {
		req["references"] = refs
	}
	if len(f.Areas) > 0 {
		req["areas"] = f.Areas
	}
	if len(f.Channels) > 0 {
		req["channels"] = f.Channels // none: the SMS policy decides
	}
	if f.Expires != "" {
		// datetime-local is Vietnam time, as the console shows every time.
		if t, err := time.ParseInLocation("2006-01-02T15:04", f.Expires, c.zone); err == nil {
			req["expires"] = t.Format(time.RFC3339)
		} else {
			req["expires"] = f.Expires
		}
	}
	return req
}

// formErrors puts a refusal's fields into errs (the form's field names
// are the JSON ones); a refusal naming no field goes under "".
func formErrors(p *problem, errs map[string]string) {
	for _, fe := range p.Errors {
		errs[fieldName(fe.Field)] = fe.Detail
	}
	if p.Field != "" && len(p.Errors) == 0 {
		errs[fieldName(p.Field)] = p.Detail
	}
	if len(errs) == 0 {
		errs[""] = p.Detail
	}
}

// fieldName is the form field of a JSON field: "areas[2]" is "areas".
func fieldName(f string) string {
	if i := strings.IndexAny(f, "[."); i > 0 {
		return f[:i]
	}
	return f
}

// alertNew shows the form to officials who may issue alerts. That is
// presentation only: posting it is refused by the API to anyone else.
func (c *Console) alertNew(w http.ResponseWriter, r *http.Request) {
	f := alertForm{Identifier: newIdentifier(), Severity: "Severe", Urgency: "Immediate", Certainty: "Likely",
		Expires: c.cfg.Now().In(c.zone).Add(6 * time.Hour).Format("2006-01-02T15:04"), Errors: map[string]string{}}
	c.showAlertForm(w, r, http.StatusOK, f, "")
}

func (c *Console) showAlertForm(w http.ResponseWriter, r *http.Request, status int, f alertForm, capError string) {
	tree, err := c.areaTree(r, f.Areas)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	f.Tree, f.Severities, f.Urgencies, f.Certainties = tree, severities, urgencies, certainties
	p := c.basePage(r, "al.issue", "alertnew")
	p.Error = capError
	p.Data = f
	c.render(w, r, status, "alertnew", p)
}

// alertCreate: the form's alert, POST /v1/alerts (the API decides who may,
// and an official's alert waits for an approver).
func (c *Console) alertCreate(w http.ResponseWriter, r *http.Request) {
	f := c.readAlertForm(r)
	var a alertItem
	_, err := c.api(r, http.MethodPost, "/v1/alerts", c.alertRequest(f, "alert", nil), &a)
	var prob *problem
	if errors.As(err, &prob) && (prob.Status == http.StatusBadRequest || prob.Status == http.StatusConflict) {
		formErrors(prob, f.Errors)
		c.showAlertForm(w, r, prob.Status, f, "")
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, Prefix+"alerts/"+url.PathEscape(a.ID)+"?flash=al.received", http.StatusSeeOther)
}

// alertUpload: a CAP file, POST /v1/alerts/cap as it is.
func (c *Console) alertUpload(w http.ResponseWriter, r *http.Request) {
	file, _, err := r.FormFile("cap")
	if err != nil {
		f := alertForm{Identifier: newIdentifier(), Errors: map[string]string{}}
		c.showAlertForm(w, r, http.StatusBadRequest, f, "al.nofile")
		return
	}
	defer file.Close()
	doc, err := io.ReadAll(file)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	var a alertItem
	_, err = c.callBody(r.Context(), r, sessionFrom(r.Context()).token, http.MethodPost, "/v1/alerts/cap", "application/cap+xml", bytes.NewReader(doc), &a)
	var prob *problem
	if errors.As(err, &prob) && prob.Status < 500 && prob.Status != http.StatusUnauthorized && prob.Status != http.StatusForbidden {
		f := alertForm{Identifier: newIdentifier(), Errors: map[string]string{}}
		msg := prob.Detail
		if prob.Field != "" {
			msg = prob.Field + ": " + prob.Detail
		}
		c.showAlertForm(w, r, prob.Status, f, msg)
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, Prefix+"alerts/"+url.PathEscape(a.ID)+"?flash=al.received", http.StatusSeeOther)
}

func (c *Console) alertPage(w http.ResponseWriter, r *http.Request) {
	var a alertItem
	if _, err := c.get(r, "/v1/alerts/"+url.PathEscape(r.PathValue("id")), nil, &a); err != nil {
		c.fail(w, r, err)
		return
	}
	c.showAlert(w, r, http.StatusOK, a, alertForm{Errors: map[string]string{}}, "")
}

// showAlert renders the alert's page; upd is the Update form (prefilled
// from the alert when empty), open names the form to show open.
func (c *Console) showAlert(w http.ResponseWriter, r *http.Request, status int, a alertItem, upd alertForm, open string) {
	if upd.Identifier == "" {
		upd.Identifier = newIdentifier()
		if len(a.Texts) > 0 {
			t := a.Texts[0]
			upd.Event, upd.Headline, upd.Description, upd.Instruction = t.Event, t.Headline, t.Description, t.Instruction
			upd.Severity, upd.Urgency, upd.Certainty = t.Severity, t.Urgency, t.Certainty
		}
		upd.Expires = a.Expires.In(c.zone).Format("2006-01-02T15:04")
	}
	upd.Severities, upd.Urgencies, upd.Certainties = severities, urgencies, certainties
	p := c.basePage(r, "al.title", "alerts")
	p.Title = a.Headline()
	if f := r.URL.Query().Get("flash"); f == "al.received" || f == "al.amended" || f == "ap.decided" {
		p.Flash = f
	}
	var est *estimate
	if a.Status == "pending_approval" {
		est = c.alertEstimate(r, a)
	}
	p.Data = map[string]any{"A": a, "Update": upd, "Open": open, "CancelID": newIdentifier(), "Estimate": est}
	c.render(w, r, status, "alert", p)
}

// alertAction: approve and reject go to the API's routes of the same
// names; update and cancel post an Update or a Cancel referring to the
// alert (POST /v1/alerts). The API decides who may.
func (c *Console) alertAction(w http.ResponseWriter, r *http.Request) {
	id, action := r.PathValue("id"), r.PathValue("action")
	var (
		err error
		ans alertItem
	)
	switch action {
	case "approve":
		_, err = c.api(r, http.MethodPost, "/v1/alerts/"+url.PathEscape(id)+"/approve", nil, nil)
	case "reject":
		_, err = c.api(r, http.MethodPost, "/v1/alerts/"+url.PathEscape(id)+"/reject", map[string]string{"reason": r.PostFormValue("reason")}, nil)
	case "update", "cancel":
		f := c.readAlertForm(r)
		req := c.alertRequest(f, action, []string{id})
		if action == "cancel" {
			req = map[string]any{"msg_type": "cancel", "references": []string{id}, "identifier": f.Identifier, "description": f.Description}
		}
		_, err = c.api(r, http.MethodPost, "/v1/alerts", req, &ans)
		var prob *problem
		if errors.As(err, &prob) && (prob.Status == http.StatusBadRequest || prob.Status == http.StatusConflict) {
			var a alertItem
			if _, gerr := c.get(r, "/v1/alerts/"+url.PathEscape(id), nil, &a); gerr != nil {
				c.fail(w, r, gerr)
				return
			}
			formErrors(prob, f.Errors)
			c.showAlert(w, r, prob.Status, a, f, action)
			return
		}
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	next := Prefix + "alerts/" + url.PathEscape(id) + "?flash=ap.decided"
	if ans.ID != "" {
		next = Prefix + "alerts/" + url.PathEscape(ans.ID) + "?flash=al.amended"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// alertLiveJSON is the alert's counters for the live view (console.js).
func (c *Console) alertLiveJSON(w http.ResponseWriter, r *http.Request) {
	r = c.quietPoll(r, "alert/"+r.PathValue("id"))
	var a alertItem
	if _, err := c.get(r, "/v1/alerts/"+url.PathEscape(r.PathValue("id")), rateQuery(r), &a); err != nil {
		var prob *problem
		if !errors.As(err, &prob) {
			prob = &problem{Status: http.StatusInternalServerError}
		}
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(prob.Status)
		_ = json.NewEncoder(w).Encode(prob)
		return
	}
	d := liveData{Status: a.Status, StatusLabel: translator(lang(r))("st." + a.Status), Final: a.Final()}
	if a.Stats != nil {
		d.Stats = *a.Stats
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(d)
}
