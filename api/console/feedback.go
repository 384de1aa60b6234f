package console

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

func (c *Console) feedbackRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+Prefix+"feedback", c.signedIn(c.feedbackQueue))
	mux.HandleFunc("GET "+Prefix+"feedback/{id}", c.signedIn(c.feedbackPage))
	mux.HandleFunc("POST "+Prefix+"feedback/{id}/{action}", c.signedIn(c.feedbackAction))
	mux.HandleFunc("GET "+Prefix+"feedback/{id}/photos/{n}", c.signedIn(c.feedbackPhoto))
}

// feedbackPhoto passes on GET /v1/feedback/{id}/photos/{n} with the
// official's session (an <img> cannot send it): the feedback service
// decides who sees a photo of a citizen who did not agree to be named.
func (c *Console) feedbackPhoto(w http.ResponseWriter, r *http.Request) {
	c.passImage(w, r, "/v1/feedback/"+url.PathEscape(r.PathValue("id"))+"/photos/"+url.PathEscape(r.PathValue("n")))
}

// passImage answers with the image the API gives for path with the
// official's session: the API's refusal as its bare status, anything but
// an image as an error; never cached, never run as a document.
func (c *Console) passImage(w http.ResponseWriter, r *http.Request, path string) {
	ct, body, err := c.getRaw(r, path)
	var prob *problem
	if errors.As(err, &prob) {
		http.Error(w, http.StatusText(prob.Status), prob.Status)
		return
	}
	if err != nil || !strings.HasPrefix(ct, "image/") {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Cache-Control", "private, no-store")
	h.Set("Content-Security-Policy", "default-src 'none'")
	_, _ = w.Write(body)
}

// matter is the officials' view of one feedback (GET /v1/feedback/{id}).
type matter struct {
	ID           string     `json:"id"`
	Category     string     `json:"category"`
	Title        string     `json:"title"`
	Description  string     `json:"description"`
	Status       string     `json:"status"`
	Agency       string     `json:"agency"`
	DueAt        time.Time  `json:"due_at"`
	Area         string     `json:"area"`
	Address      string     `json:"address"`
	Public       bool       `json:"public"`
	CitizenName  string     `json:"citizen_name"`
	CitizenPhone string     `json:"citizen_phone"`
	Source       string     `json:"source"`
	Answer       string     `json:"answer"`
	RejectReason string     `json:"reject_reason"`
	Note         string     `json:"note"`
	Rating       int        `json:"rating"`
	Reopened     bool       `json:"reopened"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
	AnsweredAt   *time.Time `json:"answered_at"`
	Photos       []struct {
		URL string `json:"url"`
	} `json:"photos"`
	History []matterEvent `json:"-"`
}

type matterEvent struct {
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Agency string    `json:"agency"`
	Note   string    `json:"note"`
}

// Overdue reports whether the matter is open past its due time.
func (m matter) Overdue(now time.Time) bool {
	return !m.DueAt.IsZero() && now.After(m.DueAt) && !slices.Contains([]string{"answered", "closed", "rejected"}, m.Status)
}

// feedbackSteps lists, per status, the actions the service's rules allow
// from it (a coordinator may answer and reject from more statuses). The
// console offers these forms; the API decides whether this official may.
var feedbackSteps = map[string][]string{
	"received":    {"assign", "answer", "reject"},
	"escalated":   {"assign", "answer", "reject"},
	"assigned":    {"start", "answer", "transfer", "escalate", "reject"},
	"transferred": {"start", "answer", "transfer", "escalate", "reject"},
	"in_progress": {"answer", "transfer", "escalate", "reject"},
	"answered":    {"close"},
}

// feedbackQueue: GET /v1/feedback, the official's queue (their agency's
// open matters for a handler; received and escalated ones for the
// coordinator).
func (c *Console) feedbackQueue(w http.ResponseWriter, r *http.Request) {
	q := url.Values{"limit": {"100"}}
	for _, k := range []string{"status", "agency"} {
		if v := r.URL.Query().Get(k); v != "" {
			q.Set(k, v)
		}
	}
	var list struct {
		Items []matter `json:"items"`
	}
	if _, err := c.get(r, "/v1/feedback", q, &list); err != nil {
		c.fail(w, r, err)
		return
	}
	p := c.basePage(r, "fb.title", "feedback")
	if f := r.URL.Query().Get("flash"); f == "fb.done" {
		p.Flash = f
	}
	p.Data = map[string]any{"Items": list.Items, "Status": r.URL.Query().Get("status"), "Now": c.cfg.Now(),
		"Statuses": []string{"received", "assigned", "in_progress", "transferred", "escalated", "answered", "closed", "rejected"}}
	c.render(w, r, http.StatusOK, "feedback", p)
}

func (c *Console) feedbackPage(w http.ResponseWriter, r *http.Request) {
	c.showMatter(w, r, http.StatusOK, r.PathValue("id"), nil)
}

func (c *Console) showMatter(w http.ResponseWriter, r *http.Request, status int, id string, prob *problem) {
	var m matter
	if _, err := c.get(r, "/v1/feedback/"+url.PathEscape(id), nil, &m); err != nil {
		c.fail(w, r, err)
		return
	}
	var hist struct {
		Items []matterEvent `json:"items"`
	}
	if _, err := c.get(r, "/v1/feedback/"+url.PathEscape(id)+"/history", nil, &hist); err != nil {
		c.fail(w, r, err)
		return
	}
	m.History = hist.Items
	p := c.basePage(r, "fb.title", "feedback")
	p.Title, p.Problem = m.Title, prob
	if f := r.URL.Query().Get("flash"); f == "fb.done" {
		p.Flash = f
	}
	p.Data = map[string]any{"M": m, "Steps": feedbackSteps[m.Status], "Now": c.cfg.Now()}
	c.render(w, r, status, "matter", p)
}

// feedbackAction: POST /v1/feedback/{id}/{action} with the step's agency,
// text or reason; the feedback service decides who may.
func (c *Console) feedbackAction(w http.ResponseWriter, r *http.Request) {
	id, action := r.PathValue("id"), r.PathValue("action")
	if !slices.Contains([]string{"assign", "start", "answer", "transfer", "escalate", "reject", "close"}, action) {
		http.NotFound(w, r)
		return
	}
	body := map[string]string{}
	for _, k := range []string{"agency", "text", "reason"} {
		if v := r.PostFormValue(k); v != "" {
			body[k] = v
		}
	}
	_, err := c.api(r, http.MethodPost, "/v1/feedback/"+url.PathEscape(id)+"/"+action, body, nil)
	var prob *problem
	if errors.As(err, &prob) && (prob.Status == http.StatusBadRequest || prob.Status == http.StatusConflict) {
		c.showMatter(w, r, prob.Status, id, prob)
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	next := Prefix + "feedback/" + url.PathEscape(id) + "?flash=fb.done"
	if action == "escalate" || action == "transfer" {
		// The matter leaves the agency: its handlers no longer see it.
		next = Prefix + "feedback?flash=fb.done"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}
