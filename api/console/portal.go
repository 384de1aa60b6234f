package console

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

func (c *Console) portalRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+Prefix+"portal", c.signedIn(c.deskList))
	mux.HandleFunc("GET "+Prefix+"portal/new", c.needs("portal.write", c.articleNew))
	mux.HandleFunc("POST "+Prefix+"portal/new", c.signedIn(c.articleCreate))
	mux.HandleFunc("GET "+Prefix+"portal/{id}", c.signedIn(c.articlePage))
	mux.HandleFunc("GET "+Prefix+"portal/{id}/cover", c.signedIn(c.articleCover))
	mux.HandleFunc("POST "+Prefix+"portal/{id}/cover", c.signedIn(c.articleCoverUpload))
	mux.HandleFunc("POST "+Prefix+"portal/{id}/{action}", c.signedIn(c.articleAction))
}

// maxCoverBytes bounds a cover upload's request: the API's limit on an
// image and the form around it.
const maxCoverBytes = 5<<20 + 64<<10

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
	Version     int          `json:"version"`
	Cover       string       `json:"cover"`
	CreatedBy   string       `json:"created_by"`
	SubmittedBy string       `json:"submitted_by"`
	ApprovedBy  string       `json:"approved_by"`
	// The officials' names (the ids when an account cannot be read).
	CreatedByName   string     `json:"created_by_name"`
	SubmittedByName string     `json:"submitted_by_name"`
	ApprovedByName  string     `json:"approved_by_name"`
	Comment         string     `json:"comment"`
	PublishAt       *time.Time `json:"publish_at"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
}

type portalCategory struct {
	Code   string `json:"code"`
	Name   string `json:"name"`
	NameEN string `json:"name_en"`
}

// revision is one kept version of an article's texts
// (GET /v1/portal/desk/{id}/revisions).
type revision struct {
	Number int          `json:"number"`
	At     time.Time    `json:"at"`
	By     string       `json:"by"`
	ByName string       `json:"by_name"`
	Note   string       `json:"note"`
	VI     articleText  `json:"vi"`
	EN     *articleText `json:"en"`
}

// articleEvent is one step of an article's history.
type articleEvent struct {
	At        time.Time `json:"at"`
	Actor     string    `json:"actor"`
	ActorName string    `json:"actor_name"`
	Action    string    `json:"action"`
	From      string    `json:"from"`
	To        string    `json:"to"`
	Note      string    `json:"note"`
}

// articleForm is the article form as typed.
type articleForm struct {
	Category                   string
	Title, Summary, Body       string
	TitleEN, SummaryEN, BodyEN string
	// Slug and SlugEN are sent when set: a correction keeps the live
	// article's addresses (without them the portal derives new ones from
	// the titles).
	Slug, SlugEN string
	Categories   []portalCategory
	Errors       map[string]string
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
		TitleEN: g("title_en"), SummaryEN: g("summary_en"), BodyEN: g("body_en"), Slug: g("slug"), SlugEN: g("slug_en"), Errors: map[string]string{}}
}

func (f articleForm) request() map[string]any {
	req := map[string]any{"category": f.Category, "vi": map[string]string{"title": f.Title, "summary": f.Summary, "body": f.Body, "slug": f.Slug}}
	if f.TitleEN != "" || f.BodyEN != "" || f.SummaryEN != "" {
		req["en"] = map[string]string{"title": f.TitleEN, "summary": f.SummaryEN, "body": f.BodyEN, "slug": f.SlugEN}
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
	c.showArticle(w, r, http.StatusOK, r.PathValue("id"), nil, nil, "")
}

// showArticle renders an article's page; prob is the refusal or error of
// a step just tried, edit the texts of the edit or correction form (the
// article's own when nil), open the form to show open.
func (c *Console) showArticle(w http.ResponseWriter, r *http.Request, status int, id string, prob *problem, edit *articleForm, open string) {
	var a article
	if _, err := c.get(r, "/v1/portal/desk/"+url.PathEscape(id), nil, &a); err != nil {
		c.fail(w, r, err)
		return
	}
	var hist struct {
		Items []articleEvent `json:"items"`
	}
	if _, err := c.get(r, "/v1/portal/desk/"+url.PathEscape(id)+"/history", nil, &hist); err != nil {
		c.fail(w, r, err)
		return
	}
	var revs struct {
		Items []revision `json:"items"`
	}
	if _, err := c.get(r, "/v1/portal/desk/"+url.PathEscape(id)+"/revisions", nil, &revs); err != nil {
		c.fail(w, r, err)
		return
	}
	slices.Reverse(revs.Items) // newest first
	if edit == nil {
		edit = &articleForm{Category: a.Category, Title: a.VI.Title, Summary: a.VI.Summary, Body: a.VI.Body, Errors: map[string]string{}}
		if a.EN != nil {
			edit.TitleEN, edit.SummaryEN, edit.BodyEN = a.EN.Title, a.EN.Summary, a.EN.Body
		}
		if a.Status == "published" || a.Status == "scheduled" {
			edit.Slug = a.VI.Slug
			if a.EN != nil {
				edit.SlugEN = a.EN.Slug
			}
		}
	}
	p := c.basePage(r, "pt.title", "portal")
	p.Title, p.Problem = a.VI.Title, prob
	if f := r.URL.Query().Get("flash"); f == "pt.done" {
		p.Flash = f
	}
	live := a.Status == "published" || a.Status == "scheduled"
	p.Data = map[string]any{"A": a, "Steps": articleSteps[a.Status], "History": hist.Items, "Revisions": revs.Items, "Edit": edit,
		"Editable": a.Status == "draft" || a.Status == "returned", "Correctable": live,
		"Coverable": a.Status == "draft" || a.Status == "returned" || live, "Open": open}
	c.render(w, r, status, "article", p)
}

// articleAction: edit is PUT /v1/portal/desk/{id}, correct is PUT
// /v1/portal/desk/{id}/correction; submit, approve, return and unpublish
// go to the API's steps of the same names. A refusal — four eyes above
// all: whoever wrote an article neither approves nor corrects it — is
// shown on the article's page with the API's reason.
func (c *Console) articleAction(w http.ResponseWriter, r *http.Request) {
	id, action := r.PathValue("id"), r.PathValue("action")
	var err error
	var form *articleForm
	switch {
	case action == "edit" || action == "correct":
		f := c.readArticle(r)
		form = &f
		path := "/v1/portal/desk/" + url.PathEscape(id)
		if action == "correct" {
			path += "/correction"
		}
		_, err = c.api(r, http.MethodPut, path, f.request(), nil)
	case slices.Contains([]string{"submit", "approve", "return", "unpublish"}, action):
		body := map[string]any{}
		if v := r.PostFormValue("comment"); v != "" {
			body["comment"] = v
		}
		// The approver approves the version their page showed.
		if v, perr := strconv.Atoi(r.PostFormValue("version")); action == "approve" && perr == nil && v > 0 {
			body["version"] = v
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
	c.afterStep(w, r, id, action, form, err)
}

// afterStep shows the outcome of a step on the article: back to its page
// with a notice, or its page with the refusal (403), the conflict (409)
// or the fields to fix (400).
func (c *Console) afterStep(w http.ResponseWriter, r *http.Request, id, action string, form *articleForm, err error) {
	var prob *problem
	if errors.As(err, &prob) && (prob.Status == http.StatusBadRequest || prob.Status == http.StatusConflict ||
		prob.Status == http.StatusForbidden || prob.Status == http.StatusRequestEntityTooLarge) {
		if form != nil {
			formErrors(prob, form.Errors)
		}
		c.showArticle(w, r, prob.Status, id, prob, form, action)
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, Prefix+"portal/"+url.PathEscape(id)+"?flash=pt.done", http.StatusSeeOther)
}

// articleCoverUpload: the image of the form's file field, streamed to
// PUT /v1/portal/desk/{id}/cover (the API checks it is a JPEG, PNG or
// WebP, removes its metadata, and who may set it now).
func (c *Console) articleCoverUpload(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	file, hdr, err := r.FormFile("cover")
	if err != nil {
		c.showArticle(w, r, http.StatusBadRequest, id, &problem{Status: http.StatusBadRequest, Field: "cover",
			Detail: translator(lang(r))("pt.nofile")}, nil, "cover")
		return
	}
	defer file.Close()
	ct := hdr.Header.Get("Content-Type")
	if ct == "" {
		ct = "application/octet-stream"
	}
	_, err = c.callBody(r.Context(), r, sessionFrom(r.Context()).token, http.MethodPut, "/v1/portal/desk/"+url.PathEscape(id)+"/cover", ct, file, nil)
	c.afterStep(w, r, id, "cover", nil, err)
}

// articleCover passes on GET /v1/portal/desk/{id}/cover with the
// official's session (an <img> cannot send it): the cover of an article
// not yet public.
func (c *Console) articleCover(w http.ResponseWriter, r *http.Request) {
	c.passImage(w, r, "/v1/portal/desk/"+url.PathEscape(r.PathValue("id"))+"/cover")
}
