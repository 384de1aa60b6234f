package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

func (c *Console) pageRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+Prefix+"broadcasts", c.signedIn(c.broadcastList))
	mux.HandleFunc("GET "+Prefix+"broadcasts/new", c.needs("broadcasts.draft", c.broadcastNew))
	mux.HandleFunc("POST "+Prefix+"broadcasts/new", c.signedIn(c.broadcastCreate))
	mux.HandleFunc("POST "+Prefix+"broadcasts/estimate", c.signedIn(c.broadcastEstimate))
	mux.HandleFunc("GET "+Prefix+"areas", c.signedIn(c.areaChildren))
	mux.HandleFunc("GET "+Prefix+"broadcasts/{id}", c.signedIn(c.broadcastPage))
	mux.HandleFunc("POST "+Prefix+"broadcasts/{id}/{action}", c.signedIn(c.broadcastAction))
	mux.HandleFunc("GET "+Prefix+"broadcasts/{id}/live", c.signedIn(c.livePage))
	mux.HandleFunc("GET "+Prefix+"broadcasts/{id}/live.json", c.signedIn(c.liveJSON))
	mux.HandleFunc("GET "+Prefix+"approvals", c.signedIn(c.approvals))
	mux.HandleFunc("GET "+Prefix+"approvals/broadcasts/{id}", c.signedIn(c.approvalPage))
	c.alertRoutes(mux)
	c.feedbackRoutes(mux)
	c.portalRoutes(mux)
	mux.HandleFunc("GET "+Prefix+"ops", c.signedIn(c.opsOverview))
	mux.HandleFunc("GET "+Prefix+"ops/deadletters", c.signedIn(c.deadLetters))
	mux.HandleFunc("POST "+Prefix+"ops/deadletters/replay", c.signedIn(c.replaySelected))
	mux.HandleFunc("GET "+Prefix+"ops/deadletters/{id}", c.signedIn(c.deadLetter))
	mux.HandleFunc("POST "+Prefix+"ops/deadletters/{id}/replay", c.signedIn(c.replayOne))
	mux.HandleFunc("GET "+Prefix+"ops/scheduled", c.signedIn(c.scheduled))
	c.incidentRoutes(mux)
	mux.HandleFunc("GET "+Prefix+"audit", c.signedIn(c.audit))
}

// broadcast is the API's view of a broadcast (GET /v1/broadcasts/{id}).
type broadcast struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Title    string `json:"title"`
	Body     string `json:"body"`
	TitleEN  string `json:"title_en"`
	BodyEN   string `json:"body_en"`
	Topic    string `json:"topic"`
	Audience struct {
		Everyone bool     `json:"everyone"`
		Areas    []string `json:"areas"`
		Topics   []string `json:"topics"`
		Accounts []string `json:"accounts"`
	} `json:"audience"`
	Channels        []string   `json:"channels"`
	SendAt          *time.Time `json:"send_at"`
	RequestDocument struct {
		Number string `json:"number"`
		Date   string `json:"date"`
	} `json:"request_document"`
	Unit            string    `json:"unit"`
	CreatedBy       string    `json:"created_by"`
	SubmittedBy     string    `json:"submitted_by"`
	CreatedByName   string    `json:"created_by_name"`
	SubmittedByName string    `json:"submitted_by_name"`
	DecidedBy       string    `json:"decided_by"`
	Reason          string    `json:"reason"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
	AudienceSize    *struct {
		Devices int `json:"devices"`
		Phones  int `json:"phones"`
	} `json:"audience_size"`
	SMS *struct {
		Encoding           string `json:"encoding"`
		SegmentsPerMessage int    `json:"segments_per_message"`
		TotalSegments      int    `json:"total_segments"`
	} `json:"sms"`
	Stats    *stats    `json:"stats"`
	Estimate *estimate `json:"estimate"`
	History  []event   `json:"history"`
}

type event struct {
	At        time.Time `json:"at"`
	Actor     string    `json:"actor"`
	ActorName string    `json:"actor_name"`
	From      string    `json:"from"`
	To        string    `json:"to"`
	Reason    string    `json:"reason"`
}

type estimate struct {
	Devices int `json:"devices"`
	Phones  int `json:"phones"`
	ByArea  []struct {
		Area    string `json:"area"`
		Name    string `json:"name"`
		Part    string `json:"part"`
		Devices int    `json:"devices"`
		Phones  int    `json:"phones"`
	} `json:"by_area"`
	SMS *struct {
		Encoding           string `json:"encoding"`
		SegmentsPerMessage int    `json:"segments_per_message"`
		TotalSegments      int    `json:"total_segments"`
		Cost               []struct {
			Provider   string  `json:"provider"`
			PerSegment float64 `json:"price_per_segment"`
			Currency   string  `json:"currency"`
			Total      float64 `json:"total"`
		} `json:"cost"`
	} `json:"sms"`
}

type stats struct {
	Targeted  int64                   `json:"targeted"`
	Sent      int64                   `json:"sent"`
	Failed    int64                   `json:"failed"`
	Expired   int64                   `json:"expired"`
	Cancelled int64                   `json:"cancelled"`
	Pending   int64                   `json:"pending"`
	Channels  map[string]channelStats `json:"channels"`
	// Rate is the deliveries per second from the ledger, when asked for.
	Rate *struct {
		Since  int64      `json:"since"`
		Points [][2]int64 `json:"points"`
	} `json:"rate,omitempty"`
}

type channelStats struct {
	Targeted  int64                       `json:"targeted"`
	Sent      int64                       `json:"sent"`
	Failed    int64                       `json:"failed"`
	Expired   int64                       `json:"expired"`
	Cancelled int64                       `json:"cancelled"`
	Pending   int64                       `json:"pending"`
	Providers map[string]map[string]int64 `json:"providers"`
}

func (c *Console) broadcastList(w http.ResponseWriter, r *http.Request) {
	items, err := listByStatus[broadcast](c, r, "/v1/broadcasts")
	if err != nil {
		c.fail(w, r, err)
		return
	}
	p := c.basePage(r, "bc.list", "broadcasts")
	p.Data = items
	c.render(w, r, http.StatusOK, "broadcasts", p)
}

// listByStatus reads the newest 100 items of a list route, narrowed to the
// page's ?status= when it has one.
func listByStatus[T any](c *Console, r *http.Request, path string) ([]T, error) {
	var list struct {
		Items []T `json:"items"`
	}
	q := url.Values{"limit": {"100"}}
	if s := r.URL.Query().Get("status"); s != "" {
		q.Set("status", s)
	}
	if _, err := c.get(r, path, q, &list); err != nil {
		return nil, err
	}
	return list.Items, nil
}

// areaNode is one unit of the area picker.
type areaNode struct {
	Code     string `json:"code"`
	Name     string `json:"name"`
	Level    string `json:"level"`
	Children int    `json:"children"`
	Sub      []areaNode
	Lazy     bool // children not loaded: htmx fetches them when opened
	Checked  bool
}

// areaTree reads the area tree breadth first from GET /v1/areas, up to a
// few hundred units; deeper units load when their parent is opened.
func (c *Console) areaTree(r *http.Request, checked []string) ([]areaNode, error) {
	var top struct {
		Items []areaNode `json:"items"`
	}
	if _, err := c.get(r, "/v1/areas", nil, &top); err != nil {
		return nil, err
	}
	budget := 300
	var expand func(nodes []areaNode, depth int) error
	expand = func(nodes []areaNode, depth int) error {
		for i := range nodes {
			nodes[i].Checked = slices.Contains(checked, nodes[i].Code)
			if nodes[i].Children == 0 {
				continue
			}
			if budget <= 0 || depth >= 3 {
				nodes[i].Lazy = true
				continue
			}
			var sub struct {
				Items []areaNode `json:"items"`
			}
			if _, err := c.get(r, "/v1/areas", url.Values{"parent": {nodes[i].Code}}, &sub); err != nil {
				return err
			}
			budget -= len(sub.Items)
			nodes[i].Sub = sub.Items
			if err := expand(nodes[i].Sub, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return top.Items, expand(top.Items, 1)
}

// areaChildren: GET /console/areas?parent=CODE, the picker's fragment
// for a unit opened in the browser.
func (c *Console) areaChildren(w http.ResponseWriter, r *http.Request) {
	var sub struct {
		Items []areaNode `json:"items"`
	}
	if _, err := c.get(r, "/v1/areas", url.Values{"parent": {r.URL.Query().Get("parent")}}, &sub); err != nil {
		c.fail(w, r, err)
		return
	}
	for i := range sub.Items {
		sub.Items[i].Lazy = sub.Items[i].Children > 0
	}
	p := c.basePage(r, "", "")
	p.Data = sub.Items
	c.render(w, r, http.StatusOK, "areas", p)
}

// draftForm is the broadcast form as typed.
type draftForm struct {
	Title, Body, TitleEN, BodyEN, Topic string
	Everyone                            bool
	Areas, Topics, Channels             []string
	Accounts                            string
	SendAt, DocNumber, DocDate          string
	Errors                              map[string]string
	Tree                                []areaNode
	AllTopics                           []string
}

func (c *Console) readDraft(r *http.Request) draftForm {
	_ = r.ParseForm()
	f := draftForm{Title: r.PostForm.Get("title"), Body: r.PostForm.Get("body"), TitleEN: r.PostForm.Get("title_en"),
		BodyEN: r.PostForm.Get("body_en"), Topic: r.PostForm.Get("topic"), Everyone: r.PostForm.Get("everyone") == "1",
		Areas: r.PostForm["areas"], Topics: r.PostForm["topics"], Channels: r.PostForm["channels"],
		Accounts: r.PostForm.Get("accounts"), SendAt: r.PostForm.Get("send_at"), DocNumber: r.PostForm.Get("doc_number"),
		DocDate: r.PostForm.Get("doc_date"), Errors: map[string]string{}}
	for _, code := range strings.FieldsFunc(r.PostForm.Get("area_codes"), func(r rune) bool { return r == ',' || r == ' ' || r == ';' || r == '\n' }) {
		if !slices.Contains(f.Areas, code) {
			f.Areas = append(f.Areas, code)
		}
	}
	return f
}

// request is the API body of the draft.
func (c *Console) request(f draftForm) map[string]any {
	aud := map[string]any{}
	if f.Everyone {
		aud["everyone"] = true
	}
	if len(f.Areas) > 0 {
		aud["areas"] = f.Areas
	}
	if len(f.Topics) > 0 {
		aud["topics"] = f.Topics
	}
	var accs []string
	for _, a := range strings.Fields(f.Accounts) {
		accs = append(accs, strings.Trim(a, ",;"))
	}
	if len(accs) > 0 {
		aud["accounts"] = accs
	}
	req := map[string]any{"title": f.Title, "body": f.Body, "title_en": f.TitleEN, "body_en": f.BodyEN, "topic": f.Topic,
		"audience": aud, "channels": f.Channels, "request_document": map[string]string{"number": f.DocNumber, "date": f.DocDate}}
	if f.SendAt != "" {
		// datetime-local is Vietnam time, as the console shows every time.
		if t, err := time.ParseInLocation("2006-01-02T15:04", f.SendAt, c.zone); err == nil {
			req["send_at"] = t.Format(time.RFC3339)
		} else {
			req["send_at"] = f.SendAt
		}
	}
	return req
}

var defaultTopics = []string{"disaster", "power", "transport", "health", "education", "jobs", "market", "general"}

func (c *Console) broadcastNew(w http.ResponseWriter, r *http.Request) {
	f := draftForm{Channels: []string{"push"}, Errors: map[string]string{}, AllTopics: defaultTopics, Topic: "general"}
	c.showDraft(w, r, http.StatusOK, f)
}

func (c *Console) showDraft(w http.ResponseWriter, r *http.Request, status int, f draftForm) {
	tree, err := c.areaTree(r, f.Areas)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	f.Tree, f.AllTopics = tree, defaultTopics
	p := c.basePage(r, "bc.new", "new")
	p.Data = f
	c.render(w, r, status, "draft", p)
}

// broadcastCreate: POST /v1/broadcasts, then (Save and submit)
// POST /v1/broadcasts/{id}/submit.
func (c *Console) broadcastCreate(w http.ResponseWriter, r *http.Request) {
	f := c.readDraft(r)
	var b broadcast
	_, err := c.api(r, http.MethodPost, "/v1/broadcasts", c.request(f), &b)
	var prob *problem
	if errors.As(err, &prob) && prob.Status == http.StatusBadRequest {
		for _, fe := range prob.Errors {
			f.Errors[fe.Field] = fe.Detail
		}
		if len(f.Errors) == 0 {
			f.Errors[""] = prob.Detail
		}
		c.showDraft(w, r, http.StatusBadRequest, f)
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if r.PostForm.Get("action") == "submit" {
		if _, err := c.api(r, http.MethodPost, "/v1/broadcasts/"+url.PathEscape(b.ID)+"/submit", nil, nil); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	http.Redirect(w, r, Prefix+"broadcasts/"+url.PathEscape(b.ID), http.StatusSeeOther)
}

// broadcastEstimate: the live audience size and SMS segments of the form
// being typed (htmx), from POST /v1/broadcasts/estimate.
func (c *Console) broadcastEstimate(w http.ResponseWriter, r *http.Request) {
	f := c.readDraft(r)
	var est estimate
	p := c.basePage(r, "", "")
	if _, err := c.api(r, http.MethodPost, "/v1/broadcasts/estimate", c.request(f), &est); err != nil {
		var prob *problem
		if errors.As(err, &prob) && prob.Status < 500 {
			p.Problem = prob
		} else {
			c.fail(w, r, err)
			return
		}
	}
	p.Data = est
	c.render(w, r, http.StatusOK, "estimate", p)
}

func (c *Console) broadcastPage(w http.ResponseWriter, r *http.Request) {
	id := url.PathEscape(r.PathValue("id"))
	var b broadcast
	if _, err := c.get(r, "/v1/broadcasts/"+id, nil, &b); err != nil {
		c.fail(w, r, err)
		return
	}
	var hist struct {
		Items []event `json:"items"`
	}
	if _, err := c.get(r, "/v1/broadcasts/"+id+"/history", nil, &hist); err != nil {
		c.fail(w, r, err)
		return
	}
	b.History = hist.Items
	p := c.basePage(r, "bc.list", "broadcasts")
	p.Title = b.Title
	if f := r.URL.Query().Get("flash"); f == "ap.decided" {
		p.Flash = f
	}
	p.Data = b
	c.render(w, r, http.StatusOK, "broadcast", p)
}

// broadcastAction: submit, approve, reject and cancel go to the API's
// routes of the same names, which decide who may.
func (c *Console) broadcastAction(w http.ResponseWriter, r *http.Request) {
	id, action := r.PathValue("id"), r.PathValue("action")
	if !slices.Contains([]string{"submit", "approve", "reject", "cancel"}, action) {
		http.NotFound(w, r)
		return
	}
	var body any
	if action == "reject" || action == "cancel" {
		body = map[string]string{"reason": r.PostFormValue("reason")}
	}
	_, err := c.api(r, http.MethodPost, "/v1/broadcasts/"+url.PathEscape(id)+"/"+action, body, nil)
	var prob *problem
	if errors.As(err, &prob) && prob.Status == http.StatusBadRequest && action == "reject" {
		c.showApproval(w, r, id, prob)
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	next := Prefix + "broadcasts/" + url.PathEscape(id)
	switch action {
	case "approve":
		next += "/live"
	case "reject":
		next += "?flash=ap.decided"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

type approvalQueue struct {
	Broadcasts []broadcast `json:"broadcasts"`
	Alerts     []alertItem `json:"alerts"`
	// Estimates of the public alerts, by id.
	Estimates map[string]*estimate `json:"-"`
}

// approvals: the approver's queue, GET /v1/approvals (refused to anyone
// but approvers of the approval unit).
func (c *Console) approvals(w http.ResponseWriter, r *http.Request) {
	var q approvalQueue
	if _, err := c.get(r, "/v1/approvals", nil, &q); err != nil {
		c.fail(w, r, err)
		return
	}
	// The queue lists alerts without their texts: each is read in full
	// (its headline, and the text its SMS would carry).
	q.Estimates = map[string]*estimate{}
	for i, a := range q.Alerts {
		var full alertItem
		if _, err := c.get(r, "/v1/alerts/"+url.PathEscape(a.ID), nil, &full); err == nil {
			q.Alerts[i] = full
		}
		q.Estimates[a.ID] = c.alertEstimate(r, q.Alerts[i])
	}
	p := c.basePage(r, "ap.title", "approvals")
	p.Data = q
	c.render(w, r, http.StatusOK, "approvals", p)
}

func (c *Console) approvalPage(w http.ResponseWriter, r *http.Request) {
	c.showApproval(w, r, r.PathValue("id"), nil)
}

func (c *Console) showApproval(w http.ResponseWriter, r *http.Request, id string, prob *problem) {
	var b broadcast
	if _, err := c.get(r, "/v1/approvals/broadcasts/"+url.PathEscape(id), nil, &b); err != nil {
		c.fail(w, r, err)
		return
	}
	p := c.basePage(r, "ap.title", "approvals")
	p.Title, p.Problem = b.Title, prob
	p.Data = b
	status := http.StatusOK
	if prob != nil {
		status = prob.Status
	}
	c.render(w, r, status, "approval", p)
}

// liveData is the live view's JSON: the status and the counters.
type liveData struct {
	Status      string `json:"status"`
	StatusLabel string `json:"status_label"`
	Final       bool   `json:"final"`
	Stats       stats  `json:"stats"`
}

// rateQuery asks the API for the deliveries per second from the second
// the live view's script names (?since=, a Unix second; 0 the whole
// curve); nil when it names none (the page itself).
func rateQuery(r *http.Request) url.Values {
	s := r.URL.Query().Get("since")
	if s == "" {
		return nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err != nil || n < 0 {
		s = "0"
	}
	return url.Values{"rate_since": {s}}
}

func (c *Console) live(r *http.Request, id string) (broadcast, liveData, error) {
	var b broadcast
	if _, err := c.get(r, "/v1/broadcasts/"+url.PathEscape(id), rateQuery(r), &b); err != nil {
		return b, liveData{}, err
	}
	d := liveData{Status: b.Status, StatusLabel: translator(lang(r))("st." + b.Status)}
	if b.Stats != nil {
		d.Stats = *b.Stats
	}
	d.Final = slices.Contains([]string{"done", "cancelled", "rejected"}, b.Status) && d.Stats.Pending == 0
	return b, d, nil
}

// livePage: targeted / sent / failed / expired / cancelled per channel
// and provider, the chart of deliveries per second (console.js polls
// live.json: the whole curve from the ledger first, then the newer
// seconds while it sends), and the recipient lookup.
func (c *Console) livePage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	b, d, err := c.live(r, id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	data := map[string]any{"B": b, "L": d}
	if ph := strings.TrimSpace(r.URL.Query().Get("phone")); ph != "" {
		var rec json.RawMessage
		_, err := c.get(r, "/v1/notifications/"+url.PathEscape(id)+"/recipients", url.Values{"phone": {ph}}, &rec)
		var prob *problem
		switch {
		case err == nil:
			var v struct {
				Deliveries []map[string]any `json:"deliveries"`
				Items      []map[string]any `json:"items"`
			}
			_ = json.Unmarshal(rec, &v)
			data["Lookup"] = append(v.Deliveries, v.Items...)
			data["Phone"] = ph
		case errors.As(err, &prob) && prob.Status == http.StatusForbidden:
			data["LookupForbidden"] = true
		case errors.As(err, &prob) && prob.Status < 500:
			data["LookupError"] = prob.Detail
		default:
			c.fail(w, r, err)
			return
		}
	}
	p := c.basePage(r, "lv.title", "broadcasts")
	p.Data = data
	c.render(w, r, http.StatusOK, "live", p)
}

func (c *Console) liveJSON(w http.ResponseWriter, r *http.Request) {
	r = c.quietPoll(r, "broadcast/"+r.PathValue("id"))
	_, d, err := c.live(r, r.PathValue("id"))
	if err != nil {
		var prob *problem
		if !errors.As(err, &prob) {
			prob = &problem{Status: http.StatusInternalServerError}
		}
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(prob.Status)
		_ = json.NewEncoder(w).Encode(prob)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(d)
}
