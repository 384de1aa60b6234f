package api

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/blob"
	"github.com/loa-hub/loa/producer/portal"
)

var errNoPortal = loa.Unavailable("the portal is not configured on this server")

func (h *handler) portalService() (*portal.Service, error) {
	if h.deps.Portal == nil {
		return nil, errNoPortal
	}
	return h.deps.Portal, nil
}

func (h *handler) portalActor(r *http.Request) portal.Actor {
	p, _ := principalFrom(r.Context())
	return portal.Actor{AccountID: p.AccountID, AdminKey: p.AccountID == "" && p.Has(ScopeAdmin), IP: h.clientIP(r)}
}

type textBody struct {
	Title   string `json:"title"`
	Summary string `json:"summary"`
	Body    string `json:"body"`
	Slug    string `json:"slug"`
}

type articleBody struct {
	Category string    `json:"category"`
	VI       textBody  `json:"vi"`
	EN       *textBody `json:"en"`
}

func (b articleBody) input() portal.Input {
	in := portal.Input{Category: b.Category, VI: portal.TextInput(b.VI)}
	if b.EN != nil {
		t := portal.TextInput(*b.EN)
		in.EN = &t
	}
	return in
}

type textView struct {
	Title   string `json:"title"`
	Summary string `json:"summary,omitempty"`
	Body    string `json:"body"`
	Slug    string `json:"slug"`
}

type articleView struct {
	ID       string    `json:"id"`
	Category string    `json:"category"`
	Status   string    `json:"status"`
	VI       textView  `json:"vi"`
	EN       *textView `json:"en,omitempty"`
	Cover    string    `json:"cover,omitempty"`
	Urgent   bool      `json:"urgent"`
	Revision int       `json:"revision"`
	// Version counts every change of the article (at the desk only): an
	// approval may name the version read.
	Version     int    `json:"version,omitempty"`
	CreatedBy   string `json:"created_by,omitempty"`
	SubmittedBy string `json:"submitted_by,omitempty"`
	ApprovedBy  string `json:"approved_by,omitempty"`
	// The officials' names, at the desk.
	CreatedByName   string     `json:"created_by_name,omitempty"`
	SubmittedByName string     `json:"submitted_by_name,omitempty"`
	ApprovedByName  string     `json:"approved_by_name,omitempty"`
	Comment         string     `json:"comment,omitempty"`
	PublishAt       *time.Time `json:"publish_at,omitempty"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
}

func viewText(t portal.Text) textView { return textView(t) }

// viewArticle is an article for officials (public: without who did what).
func viewArticle(a portal.Article, public bool) articleView {
	v := articleView{ID: a.ID, Category: a.Category, Status: string(a.Status), VI: viewText(a.VI), Urgent: a.Urgent, Revision: a.Revision, Version: a.Version,
		CreatedBy: a.CreatedBy, SubmittedBy: a.SubmittedBy, ApprovedBy: a.ApprovedBy, Comment: a.Comment, PublishAt: timePtr(a.PublishAt),
		CreatedAt: a.CreatedAt.UTC(), UpdatedAt: a.UpdatedAt.UTC()}
	if a.EN != nil {
		t := viewText(*a.EN)
		v.EN = &t
	}
	if a.Cover != nil {
		v.Cover = "/v1/portal/articles/" + a.VI.Slug + "/cover"
	}
	if public {
		v.Status, v.Version, v.CreatedBy, v.SubmittedBy, v.ApprovedBy, v.Comment = "published", 0, "", "", "", ""
	}
	return v
}

// requireEditor admits officials who edit or approve articles, before the
// body is read.
func (h *handler) requireEditor(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		svc, err := h.portalService()
		if err == nil {
			err = svc.MayEdit(r.Context(), h.portalActor(r))
		}
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// createArticle: POST /v1/portal/articles.
func (h *handler) createArticle(w http.ResponseWriter, r *http.Request) error {
	var b articleBody
	if err := decodeJSON(w, r, h.deps.MaxBodyBytes, &b); err != nil {
		return err
	}
	a, err := h.deps.Portal.Create(r.Context(), h.portalActor(r), b.input())
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/portal/desk/"+a.ID)
	writeJSON(w, http.StatusCreated, viewArticle(a, false))
	return nil
}

// deskArticles: GET /v1/portal/desk?status=&category=.
func (h *handler) deskArticles(w http.ResponseWriter, r *http.Request) error {
	f := portal.Filter{Category: r.URL.Query().Get("category"), Limit: 200}
	for _, s := range strings.Split(r.URL.Query().Get("status"), ",") {
		if s = strings.TrimSpace(s); s != "" {
			f.Statuses = append(f.Statuses, portal.Status(s))
		}
	}
	list, err := h.deps.Portal.Desk(r.Context(), h.portalActor(r), f)
	if err != nil {
		return err
	}
	out := []articleView{}
	names := h.names()
	for _, a := range list {
		v := viewArticle(a, false)
		names.article(r.Context(), &v)
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
	return nil
}

// deskArticle: GET /v1/portal/desk/{id}.
func (h *handler) deskArticle(w http.ResponseWriter, r *http.Request) error {
	a, err := h.deps.Portal.Get(r.Context(), h.portalActor(r), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	v := viewArticle(a, false)
	h.names().article(r.Context(), &v)
	writeJSON(w, http.StatusOK, v)
	return nil
}

// reviseArticle: PUT /v1/portal/desk/{id} (edit) and
// PUT /v1/portal/desk/{id}/correction (correct); the role and state are
// checked before the body is read.
func (h *handler) reviseArticle(action string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		svc, a, id := h.deps.Portal, h.portalActor(r), chi.URLParam(r, "id")
		if err := svc.Check(r.Context(), a, id, action); err != nil {
			return err
		}
		var b articleBody
		if err := decodeJSON(w, r, h.deps.MaxBodyBytes, &b); err != nil {
			return err
		}
		var art portal.Article
		var err error
		if action == "correct" {
			art, err = svc.Correct(r.Context(), a, id, b.input())
		} else {
			art, err = svc.Edit(r.Context(), a, id, b.input())
		}
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, viewArticle(art, false))
		return nil
	}
}

// articleStep: POST /v1/portal/desk/{id}/{submit|approve|return|unpublish}.
func (h *handler) articleStep(action string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		svc, a, id := h.deps.Portal, h.portalActor(r), chi.URLParam(r, "id")
		if err := svc.Check(r.Context(), a, id, action); err != nil {
			return err
		}
		var b struct {
			PublishAt string `json:"publish_at"`
			Urgent    bool   `json:"urgent"`
			Comment   string `json:"comment"`
			Version   int    `json:"version"`
		}
		if r.ContentLength != 0 {
			if err := decodeJSON(w, r, h.deps.MaxBodyBytes, &b); err != nil {
				return err
			}
		}
		var (
			art portal.Article
			err error
		)
		switch action {
		case "submit":
			art, err = svc.Submit(r.Context(), a, id)
		case "approve":
			ap := portal.Approval{Urgent: b.Urgent, Version: b.Version}
			if b.PublishAt != "" {
				if ap.PublishAt, err = time.Parse(time.RFC3339, b.PublishAt); err != nil {
					return loa.Invalid("publish_at", "must be an RFC 3339 time")
				}
			}
			art, err = svc.Approve(r.Context(), a, id, ap)
		case "return":
			art, err = svc.Return(r.Context(), a, id, b.Comment)
		case "unpublish":
			art, err = svc.Unpublish(r.Context(), a, id)
		}
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, viewArticle(art, false))
		return nil
	}
}

// articleRevisions: GET /v1/portal/desk/{id}/revisions.
func (h *handler) articleRevisions(w http.ResponseWriter, r *http.Request) error {
	revs, err := h.deps.Portal.Revisions(r.Context(), h.portalActor(r), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	type revView struct {
		Number int       `json:"number"`
		At     time.Time `json:"at"`
		By     string    `json:"by"`
		ByName string    `json:"by_name,omitempty"`
		Note   string    `json:"note"`
		VI     textView  `json:"vi"`
		EN     *textView `json:"en,omitempty"`
	}
	out := []revView{}
	names := h.names()
	for _, x := range revs {
		v := revView{Number: x.Number, At: x.At.UTC(), By: x.By, ByName: names.account(r.Context(), x.By), Note: x.Note, VI: viewText(x.VI)}
		if x.EN != nil {
			t := viewText(*x.EN)
			v.EN = &t
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
	return nil
}

// articleHistory: GET /v1/portal/desk/{id}/history.
func (h *handler) articleHistory(w http.ResponseWriter, r *http.Request) error {
	evs, err := h.deps.Portal.History(r.Context(), h.portalActor(r), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	out := []map[string]any{}
	names := h.names()
	for _, e := range evs {
		out = append(out, map[string]any{"at": e.At.UTC(), "actor": e.Actor, "actor_name": names.account(r.Context(), e.Actor), "action": e.Action,
			"from": e.From, "to": e.To, "note": e.Note})
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
	return nil
}

// putArticleCover: PUT /v1/portal/desk/{id}/cover, the image as the body
// (JPEG, PNG or WebP by content, ≤ 5 MiB, metadata removed), streamed to
// the blob store.
func (h *handler) putArticleCover(w http.ResponseWriter, r *http.Request) error {
	svc, a, id := h.deps.Portal, h.portalActor(r), chi.URLParam(r, "id")
	if err := svc.CoverCheck(r.Context(), a, id); err != nil {
		return err
	}
	if h.deps.Blobs == nil {
		return loa.Unavailable("images cannot be stored on this server (no blob store configured)")
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxPhotoBytes+1)
	// Each cover has a key of its own: the one it replaces is deleted
	// once the article points to the new one.
	ph, err := h.storePhoto(r.Context(), fmt.Sprintf("portal/%s/cover-%s", id, uuid.NewString()), r.Body, "body")
	if err != nil {
		return err
	}
	art, old, err := svc.SetCover(r.Context(), a, id, portal.Image{Key: ph.Key, ContentType: ph.ContentType, Size: ph.Size})
	if err != nil {
		h.deps.Blobs.Delete(context.WithoutCancel(r.Context()), ph.Key)
		return err
	}
	if old != nil && old.Key != ph.Key {
		h.deps.Blobs.Delete(context.WithoutCancel(r.Context()), old.Key)
	}
	writeJSON(w, http.StatusOK, viewArticle(art, false))
	return nil
}

// deskCover: GET /v1/portal/desk/{id}/cover — the cover of an article at
// any stage, to those who may read it at the desk.
func (h *handler) deskCover(w http.ResponseWriter, r *http.Request) error {
	a, err := h.deps.Portal.Get(r.Context(), h.portalActor(r), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	return h.writeCover(w, r, a)
}

// writeCover sends an article's cover image.
func (h *handler) writeCover(w http.ResponseWriter, r *http.Request, a portal.Article) error {
	if a.Cover == nil || h.deps.Blobs == nil {
		return loa.NotFound("article %s has no cover", a.ID)
	}
	rc, size, err := h.deps.Blobs.Open(r.Context(), a.Cover.Key)
	if errors.Is(err, blob.ErrNotFound) {
		return loa.NotFound("the cover of %s is gone", a.ID)
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	w.Header().Set("Content-Type", a.Cover.ContentType)
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'")
	io.Copy(w, rc)
	return nil
}

// publicArticles: GET /v1/portal/articles?category=&lang=&limit=.
func (h *handler) publicArticles(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.portalService()
	if err != nil {
		return err
	}
	lang, err := portalLang(r.URL.Query().Get("lang"))
	if err != nil {
		return err
	}
	limit := 50
	if l := r.URL.Query().Get("limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil || limit < 1 || limit > 200 {
			return loa.Invalid("limit", "must be 1 to 200")
		}
	}
	list, err := svc.Public(r.Context(), r.URL.Query().Get("category"), lang, limit)
	if err != nil {
		return err
	}
	type item struct {
		ID          string    `json:"id"`
		Category    string    `json:"category"`
		Title       string    `json:"title"`
		Summary     string    `json:"summary,omitempty"`
		Slug        string    `json:"slug"`
		Cover       string    `json:"cover,omitempty"`
		PublishedAt time.Time `json:"published_at"`
	}
	out := []item{}
	for _, a := range list {
		t := pick(a, lang)
		it := item{ID: a.ID, Category: a.Category, Title: t.Title, Summary: t.Summary, Slug: t.Slug, PublishedAt: a.PublishAt.UTC()}
		if a.Cover != nil {
			it.Cover = "/v1/portal/articles/" + a.VI.Slug + "/cover"
		}
		out = append(out, it)
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
	return nil
}

func portalLang(l string) (string, error) {
	switch l {
	case "", "vi":
		return "vi", nil
	case "en":
		return "en", nil
	}
	return "", loa.Invalid("lang", "must be vi or en")
}

func pick(a portal.Article, lang string) portal.Text {
	if lang == "en" && a.EN != nil {
		return *a.EN
	}
	return a.VI
}

// publicArticle: GET /v1/portal/articles/{slug}.
func (h *handler) publicArticle(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.portalService()
	if err != nil {
		return err
	}
	a, err := svc.PublicArticle(r.Context(), chi.URLParam(r, "slug"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewArticle(a, true))
	return nil
}

// articleCover: GET /v1/portal/articles/{slug}/cover.
func (h *handler) articleCover(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.portalService()
	if err != nil {
		return err
	}
	a, err := svc.PublicArticle(r.Context(), chi.URLParam(r, "slug"))
	if err != nil {
		return err
	}
	return h.writeCover(w, r, a)
}

// portalCategories: GET /v1/portal/categories.
func (h *handler) portalCategories(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.portalService()
	if err != nil {
		return err
	}
	cs, err := svc.Categories(r.Context())
	if err != nil {
		return err
	}
	out := []map[string]string{}
	for _, c := range cs {
		out = append(out, map[string]string{"code": c.Code, "name": c.Name, "name_en": c.NameEN, "unit": c.Unit, "topic": c.Topic})
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
	return nil
}

// putPortalCategory: PUT /v1/portal/categories/{code} (administrators).
func (h *handler) putPortalCategory(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.portalService()
	if err != nil {
		return err
	}
	a := h.portalActor(r)
	if err := svc.MayAdminister(r.Context(), a); err != nil {
		return err
	}
	var b struct {
		Name   string `json:"name"`
		NameEN string `json:"name_en"`
		Unit   string `json:"unit"`
		Topic  string `json:"topic"`
	}
	if err := decodeJSON(w, r, h.deps.MaxBodyBytes, &b); err != nil {
		return err
	}
	c, err := svc.PutCategory(r.Context(), a, portal.Category{Code: chi.URLParam(r, "code"), Name: b.Name, NameEN: b.NameEN, Unit: b.Unit, Topic: b.Topic})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"code": c.Code, "name": c.Name, "name_en": c.NameEN, "unit": c.Unit, "topic": c.Topic})
	return nil
}

// Atom (RFC 4287) documents.
type atomLink struct {
	Rel  string `xml:"rel,attr"`
	Type string `xml:"type,attr,omitempty"`
	Href string `xml:"href,attr"`
}

type atomText struct {
	Type string `xml:"type,attr,omitempty"`
	Text string `xml:",chardata"`
}

type atomEntry struct {
	ID        string     `xml:"id"`
	Title     atomText   `xml:"title"`
	Updated   string     `xml:"updated"`
	Published string     `xml:"published"`
	Links     []atomLink `xml:"link"`
	Summary   *atomText  `xml:"summary,omitempty"`
	Content   atomText   `xml:"content"`
}

type atomFeed struct {
	XMLName xml.Name   `xml:"http://www.w3.org/2005/Atom feed"`
	Lang    string     `xml:"xml:lang,attr"`
	ID      string     `xml:"id"`
	Title   atomText   `xml:"title"`
	Updated string     `xml:"updated"`
	Links   []atomLink `xml:"link"`
	Author  struct {
		Name string `xml:"name"`
	} `xml:"author"`
	Generator string      `xml:"generator"`
	Entries   []atomEntry `xml:"entry"`
}

// portalFeed: GET /v1/portal/feeds/{category}/{lang}, an Atom feed of the
// category's live articles in that language.
func (h *handler) portalFeed(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.portalService()
	if err != nil {
		return err
	}
	lang, err := portalLang(chi.URLParam(r, "lang"))
	if err != nil {
		return err
	}
	cat, err := svc.Category(r.Context(), chi.URLParam(r, "category"))
	if err != nil {
		return err
	}
	list, err := svc.Public(r.Context(), cat.Code, lang, 50)
	if err != nil {
		return err
	}
	base := svc.Config().BaseURL
	f := atomFeed{Lang: lang, ID: base + "/v1/portal/feeds/" + cat.Code + "/" + lang, Title: atomText{Type: "text", Text: cat.Name},
		Links: []atomLink{{Rel: "self", Type: "application/atom+xml", Href: base + "/v1/portal/feeds/" + cat.Code + "/" + lang},
			{Rel: "alternate", Type: "application/json", Href: base + "/v1/portal/articles?category=" + cat.Code + "&lang=" + lang}},
		Generator: "Loa"}
	if lang == "en" && cat.NameEN != "" {
		f.Title.Text = cat.NameEN
	}
	f.Author.Name = "Cổng thông tin điện tử tỉnh"
	updated := time.Unix(0, 0).UTC()
	for _, a := range list {
		t := pick(a, lang)
		up := a.UpdatedAt
		if a.PublishAt.After(up) {
			up = a.PublishAt
		}
		if up.After(updated) {
			updated = up
		}
		e := atomEntry{ID: "urn:uuid:" + a.ID, Title: atomText{Type: "text", Text: t.Title}, Updated: up.UTC().Format(time.RFC3339),
			Published: a.PublishAt.UTC().Format(time.RFC3339),
			Links:     []atomLink{{Rel: "alternate", Type: "application/json", Href: base + "/v1/portal/articles/" + t.Slug}},
			Content:   atomText{Type: "html", Text: t.Body}}
		if t.Summary != "" {
			e.Summary = &atomText{Type: "text", Text: t.Summary}
		}
		f.Entries = append(f.Entries, e)
	}
	f.Updated = updated.Format(time.RFC3339)
	w.Header().Set("Content-Type", "application/atom+xml; charset=utf-8")
	io.WriteString(w, xml.Header)
	enc := xml.NewEncoder(w)
	enc.Indent("", " ")
	return enc.Encode(f)
}
