package console

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"
)

func (c *Console) portalRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+Prefix+"portal", c.signedIn(c.deskList))
	mux.HandleFunc("GET "+Prefix+"portal/new", c.needs("portal.write", c.articleNew))
	mux.HandleFunc("POST "+Prefix+"portal/new", c.signedIn(c.articleCreate))
	mux.HandleFunc("GET "+Prefix+"portal/{id}", c.signedIn(c.articlePage))
	mux.HandleFunc("POST "+Prefix+"portal/{id}/{action}", c.signedIn(c.articleAction))
}

type articleText struct {
	Title   string `json:"title"`
	Summary string `json:"summary"`
	Body    string `json:"body"`
	Slug    string `json:"slug"`
}

// article is the desk's view of an article (GET /v1/portal/desk/{id}).
type article struct {
	ID          string       `json:"id"`
	Category    string       `json:"category"`
	Status      string       `json:"status"`
	VI          articleText  `json:"vi"`
	EN          *articleText `json:"en"`
	Urgent      bool         `json:"urgent"`
	Revision    int          `json:"revision"`
	CreatedBy   string       `json:"created_by"`
	SubmittedBy string       `json:"submitted_by"`
	ApprovedBy  string       `json:"approved_by"`
	Comment     string       `json:"comment"`
	PublishAt   *time.Time   `json:"publish_at"`
	CreatedAt   time.Time    `json:"created_at"`
	UpdatedAt   time.Time    `json:"updated_at"`
}

type portalCategory struct {
	Code   string `json:"code"`
	Name   string `json:"name"`
	NameEN string `json:"name_en"`
}

// articleForm is the article form as typed.
type articleForm struct {
	Category                   string
	Title, Summary, Body       string
	TitleEN, SummaryEN, BodyEN string
	Categories                 []portalCategory
	Errors                     map[string]string
}

// articleSteps lists, per status, the steps the portal's rules allow from
// it; the console offers them, the API decides whether this official may.
var articleSteps = map[string][]string{
	"draft":     {"submit"},
	"returned":  {"submit"},
	"submitted": {"approve", "return"},
	"scheduled": {"unpublish"},
	"published": {"unpublish"},
}

func (c *Console) deskList(w http.ResponseWriter, r *http.Request) {
	q := url.Values{}
	if s := r.URL.Query().Get("status"); s != "" {
		q.Set("status", s)
	}
	var list struct {
		Items []article `json:"items"`
	}
	if _, err := c.get(r, "/v1/portal/desk", q, &list); err != nil {
		c.fail(w, r, err)
		return
	}
	p := c.basePage(r, "pt.title", "portal")
	p.Data = list.Items
	c.render(w, r, http.StatusOK, "desk", p)
}

func (c *Console) readArticle(r *http.Request) articleForm {
	_ = r.ParseForm()
	g := r.PostForm.Get
	return articleForm{Category: g("category"), Title: g("title"), Summary: g("summary"), Body: g("body"),
		TitleEN: g("title_en"), SummaryEN: g("summary_en"), BodyEN: g("body_en"), Errors: map[string]string{}}
}

func (f articleForm) request() map[string]any {
	req := map[string]any{"category": f.Category, "vi": map[string]string{"title": f.Title, "summary": f.Summary, "body": f.Body}}
	if f.TitleEN != "" || f.BodyEN != "" || f.SummaryEN != "" {
		req["en"] = map[string]string{"title": f.TitleEN, "summary": f.SummaryEN, "body": f.BodyEN}
	}
	return req
}

func (c *Console) articleNew(w http.ResponseWriter, r *http.Request) {
	c.showArticleForm(w, r, http.StatusOK, articleForm{Errors: map[string]string{}})
}

func (c *Console) showArticleForm(w http.ResponseWriter, r *http.Request, status int, f articleForm) {
	var cats struct {
		Items []portalCategory `json:"items"`
	}
	if _, err := c.get(r, "/v1/portal/categories", nil, &cats); err != nil {
		c.fail(w, r, err)
		return
	}
	f.Categories = cats.Items
	p := c.basePage(r, "pt.new", "portal")
	p.Data = f
	c.render(w, r, status, "articlenew", p)
}

// articleCreate: POST /v1/portal/articles (an editor of the category's
// unit, says the portal service).
func (c *Console) articleCreate(w http.ResponseWriter, r *http.Request) {
	f := c.readArticle(r)
	var a article
	_, err := c.api(r, http.MethodPost, "/v1/portal/articles", f.request(), &a)
	var prob *problem
	if errors.As(err, &prob) && prob.Status == http.StatusBadRequest {
		formErrors(prob, f.Errors)
		c.showArticleForm(w, r, prob.Status, f)
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, Prefix+"portal/"+url.PathEscape(a.ID)+"?flash=pt.done", http.StatusSeeOther)
}

func (c *Console) articlePage(w http.ResponseWriter, r *http.Request) {
	c.showArticle(w, r, http.StatusOK, r.PathValue("id"), nil, nil)
}

func (c *Console) showArticle(w http.ResponseWriter, r *http.Request, status int, id string, prob *problem, edit *articleForm) {
	var a article
	if _, err := c.get(r, "/v1/portal/desk/"+url.PathEscape(id), nil, &a); err != nil {
		c.fail(w, r, err)
		return
	}
	var hist struct {
		Items []matterEvent `json:"items"`
	}
	if _, err := c.get(r, "/v1/portal/desk/"+url.PathEscape(id)+"/history", nil, &hist); err != nil {
		c.fail(w, r, err)
		return
	}
	if edit == nil {
		edit = &articleForm{Category: a.Category, Title: a.VI.Title, Summary: a.VI.Summary, Body: a.VI.Body, Errors: map[string]string{}}
		if a.EN != nil {
			edit.TitleEN, edit.SummaryEN, edit.BodyEN = a.EN.Title, a.EN.Summary, a.EN.Body
		}
	}
	p := c.basePage(r, "pt.title", "portal")
	p.Title, p.Problem = a.VI.Title, prob
	if f := r.URL.Query().Get("flash"); f == "pt.done" {
		p.Flash = f
	}
	p.Data = map[string]any{"A": a, "Steps": articleSteps[a.Status], "History": hist.Items, "Edit": edit,
		"Editable": a.Status == "draft" || a.Status == "returned"}
	c.render(w, r, status, "article", p)
}

// articleAction: edit is PUT /v1/portal/desk/{id}; submit, approve,
// return and unpublish go to the API's steps of the same names.
func (c *Console) articleAction(w http.ResponseWriter, r *http.Request) {
	id, action := r.PathValue("id"), r.PathValue("action")
	var err error
	var form *articleForm
	switch {
	case action == "edit":
		f := c.readArticle(r)
		form = &f
		_, err = c.api(r, http.MethodPut, "/v1/portal/desk/"+url.PathEscape(id), f.request(), nil)
	case slices.Contains([]string{"submit", "approve", "return", "unpublish"}, action):
		body := map[string]any{}
		if v := r.PostFormValue("comment"); v != "" {
			body["comment"] = v
		}
		if r.PostFormValue("urgent") == "1" {
			body["urgent"] = true
		}
		if v := r.PostFormValue("publish_at"); v != "" {
			if t, perr := time.ParseInLocation("2006-01-02T15:04", v, c.zone); perr == nil {
				body["publish_at"] = t.Format(time.RFC3339)
			} else {
				body["publish_at"] = v
			}
		}
		_, err = c.api(r, http.MethodPost, "/v1/portal/desk/"+url.PathEscape(id)+"/"+action, body, nil)
	default:
		http.NotFound(w, r)
		return
	}
	var prob *problem
	if errors.As(err, &prob) && (prob.Status == http.StatusBadRequest || prob.Status == http.StatusConflict) {
		if form != nil {
			formErrors(prob, form.Errors)
		}
		c.showArticle(w, r, prob.Status, id, prob, form)
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, Prefix+"portal/"+url.PathEscape(id)+"?flash=pt.done", http.StatusSeeOther)
}
