package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/blob"
	"github.com/loa-hub/loa/internal/photo"
	"github.com/loa-hub/loa/producer/feedback"
)

// ScopeFeedbackWrite lets an integrating system send feedback on a
// citizen's behalf (and post Open311 requests).
const ScopeFeedbackWrite = "feedback:write"

// Blobs keeps uploaded files; *blob.Dir and *s3.Store are.
type Blobs interface {
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	Open(ctx context.Context, key string) (io.ReadCloser, int64, error)
	Delete(ctx context.Context, key string) error
}

// MaxPhotoBytes bounds one uploaded photo.
const MaxPhotoBytes = 5 << 20

var errNoFeedback = loa.Unavailable("feedback is not configured on this server")

func (h *handler) feedbackService() (*feedback.Service, error) {
	if h.deps.Feedback == nil {
		return nil, errNoFeedback
	}
	return h.deps.Feedback, nil
}

// feedbackActor is the feedback service's view of the caller.
func (h *handler) feedbackActor(r *http.Request) feedback.Actor {
	p, _ := principalFrom(r.Context())
	a := feedback.Actor{IP: h.clientIP(r)}
	if p.AccountID != "" {
		a.AccountID, a.Kind = p.AccountID, p.Kind
	} else if p.ID != "" {
		a.APIKeyID = p.ID
	}
	return a
}

// requireFeedbackSender admits citizens' and organisations' sessions and
// keys holding feedback:write, before anything of the body is read.
func (h *handler) requireFeedbackSender() func(http.Handler) http.Handler {
	return h.requirePrincipal(func(p Principal) *loa.Error {
		switch {
		case p.Restricted:
			return &loa.Error{Code: loa.EPasswordExpired, Detail: "the password has expired; change it with POST /v1/me/password first"}
		case p.AccountID == "" && !p.Has(ScopeFeedbackWrite):
			return &loa.Error{Code: loa.EForbidden, Detail: fmt.Sprintf("this API key lacks the scope %q", ScopeFeedbackWrite)}
		case p.AccountID != "" && p.Kind != "citizen" && p.Kind != "organisation":
			return &loa.Error{Code: loa.EForbidden, Detail: "feedback is sent by citizens and organisations; officials act on it"}
		}
		return nil
	})
}

type feedbackInput struct {
	Category    string   `json:"category"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	Lat         *float64 `json:"lat"`
	Long        *float64 `json:"long"`
	Area        string   `json:"area"`
	Address     string   `json:"address"`
	Public      bool     `json:"public"`
	Phone       string   `json:"phone"`
	Name        string   `json:"name"`
	MediaURL    string   `json:"media_url"`
}

func (in feedbackInput) domain(source string) feedback.Input {
	return feedback.Input{Category: in.Category, Title: in.Title, Description: in.Description, Lat: in.Lat, Lon: in.Long,
		Area: in.Area, Address: in.Address, Public: in.Public, Phone: in.Phone, Name: in.Name, MediaURL: in.MediaURL, Source: source}
}

type photoView struct {
	URL         string `json:"url"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
}

type feedbackEventView struct {
	Seq    int       `json:"seq"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	From   string    `json:"from,omitempty"`
	To     string    `json:"to"`
	Agency string    `json:"agency,omitempty"`
	Note   string    `json:"note,omitempty"`
}

// feedbackView is a matter in full, for those who may see it.
type feedbackView struct {
	ID           string      `json:"id"`
	Category     string      `json:"category"`
	Title        string      `json:"title"`
	Description  string      `json:"description"`
	Status       string      `json:"status"`
	Agency       string      `json:"agency,omitempty"`
	DueAt        time.Time   `json:"due_at"`
	Lat          *float64    `json:"lat,omitempty"`
	Long         *float64    `json:"long,omitempty"`
	Area         string      `json:"area,omitempty"`
	Address      string      `json:"address,omitempty"`
	Public       bool        `json:"public"`
	CitizenID    string      `json:"citizen_account_id,omitempty"`
	CitizenName  string      `json:"citizen_name,omitempty"`
	CitizenPhone string      `json:"citizen_phone,omitempty"`
	Photos       []photoView `json:"photos"`
	MediaURL     string      `json:"media_url,omitempty"`
	Source       string      `json:"source"`
	Answer       string      `json:"answer,omitempty"`
	RejectReason string      `json:"reject_reason,omitempty"`
	Note         string      `json:"note,omitempty"`
	Rating       int         `json:"rating,omitempty"`
	RatingNote   string      `json:"rating_comment,omitempty"`
	Reopened     bool        `json:"reopened"`
	CreatedAt    time.Time   `json:"created_at"`
	UpdatedAt    time.Time   `json:"updated_at"`
	AnsweredAt   *time.Time  `json:"answered_at,omitempty"`
	ClosedAt     *time.Time  `json:"closed_at,omitempty"`
}

func viewFeedback(f feedback.Feedback) feedbackView {
	v := feedbackView{ID: f.ID, Category: f.Category, Title: f.Title, Description: f.Description, Status: string(f.Status),
		Agency: f.Agency, DueAt: f.DueAt.UTC(), Area: f.Location.Area, Address: f.Location.Address, Public: f.Citizen.Public,
		CitizenID: f.Citizen.AccountID, CitizenName: f.Citizen.Name, CitizenPhone: f.Citizen.Phone, Photos: []photoView{},
		MediaURL: f.MediaURL, Source: f.Source, Answer: f.Answer, RejectReason: f.RejectReason, Note: f.Note, Rating: f.Rating,
		RatingNote: f.RatingNote, Reopened: f.Reopened, CreatedAt: f.CreatedAt.UTC(), UpdatedAt: f.UpdatedAt.UTC(),
		AnsweredAt: timePtr(f.AnsweredAt), ClosedAt: timePtr(f.ClosedAt)}
	if f.Location.HasPoint {
		lat, lon := f.Location.Lat, f.Location.Lon
		v.Lat, v.Long = &lat, &lon
	}
	for i, p := range f.Photos {
		v.Photos = append(v.Photos, photoView{URL: fmt.Sprintf("/v1/feedback/%s/photos/%d", f.ID, i), ContentType: p.ContentType, Size: p.Size})
	}
	return v
}

// publicFeedbackView is what anyone sees: never the citizen's person
// unless they agreed (name, address and photos are then present).
type publicFeedbackView struct {
	ID           string     `json:"id"`
	Category     string     `json:"category"`
	CategoryName string     `json:"category_name,omitempty"`
	Title        string     `json:"title"`
	Description  string     `json:"description"`
	Status       string     `json:"status"`
	Agency       string     `json:"agency,omitempty"`
	Answer       string     `json:"answer,omitempty"`
	RejectReason string     `json:"reject_reason,omitempty"`
	Rating       int        `json:"rating,omitempty"`
	Area         string     `json:"area,omitempty"`
	AreaName     string     `json:"area_name,omitempty"`
	Lat          *float64   `json:"lat,omitempty"`
	Long         *float64   `json:"long,omitempty"`
	Named        bool       `json:"named"`
	Name         string     `json:"name,omitempty"`
	Address      string     `json:"address,omitempty"`
	Photos       []string   `json:"photos,omitempty"`
	MediaURL     string     `json:"media_url,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
	DueAt        time.Time  `json:"due_at"`
	AnsweredAt   *time.Time `json:"answered_at,omitempty"`
}

func viewPublic(v feedback.PublicView) publicFeedbackView {
	p := publicFeedbackView{ID: v.ID, Category: v.Category, CategoryName: v.CategoryName, Title: v.Title, Description: v.Description,
		Status: string(v.Status), Agency: v.Agency, Answer: v.Answer, RejectReason: v.RejectReason, Rating: v.Rating, Area: v.Area,
		AreaName: v.AreaName, Named: v.Named, Name: v.Name, Address: v.Address, MediaURL: v.MediaURL, CreatedAt: v.CreatedAt.UTC(),
		UpdatedAt: v.UpdatedAt.UTC(), DueAt: v.DueAt.UTC(), AnsweredAt: timePtr(v.AnsweredAt)}
	if v.HasPoint {
		lat, lon := v.Lat, v.Lon
		p.Lat, p.Long = &lat, &lon
	}
	for i := 0; i < v.Photos; i++ {
		p.Photos = append(p.Photos, fmt.Sprintf("/v1/feedback/%s/photos/%d", v.ID, i))
	}
	return p
}

// postFeedback: POST /v1/feedback. JSON, or multipart/form-data with a
// "data" part (the JSON) first and up to five "photos" parts; photos
// stream through a temporary file to the blob store, never whole in
// memory.
func (h *handler) postFeedback(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.feedbackService()
	if err != nil {
		return err
	}
	a := h.feedbackActor(r)
	source := "app"
	if a.APIKeyID != "" {
		source = "system"
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		var in feedbackInput
		if err := decodeJSON(w, r, h.deps.MaxBodyBytes, &in); err != nil {
			return err
		}
		d, err := svc.Prepare(r.Context(), a, in.domain(source))
		if err != nil {
			return err
		}
		f, err := svc.Submit(r.Context(), a, d)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, h.viewFeedbackOf(r, f))
		return nil
	}
	limit := h.deps.MaxBodyBytes + int64(svc.Config().MaxPhotos)*(MaxPhotoBytes+16<<10)
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	mr, err := r.MultipartReader()
	if err != nil {
		return &loa.Error{Code: loa.EMalformed, Detail: "malformed multipart body: " + err.Error()}
	}
	part, err := mr.NextPart()
	if err != nil || part.FormName() != "data" {
		return loa.Invalid("data", "the first part must be \"data\": the feedback as JSON")
	}
	var in feedbackInput
	dec := json.NewDecoder(io.LimitReader(part, h.deps.MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return jsonError(err, h.deps.MaxBodyBytes)
	}
	d, err := svc.Prepare(r.Context(), a, in.domain(source))
	if err != nil {
		return err
	}
	f, err := h.submitWithPhotos(r.Context(), svc, a, d, mr, "photos", limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, h.viewFeedbackOf(r, f))
	return nil
}

// submitWithPhotos stores the photo parts named field of mr for draft d,
// then submits it; on any failure the stored photos are deleted.
func (h *handler) submitWithPhotos(ctx context.Context, svc *feedback.Service, a feedback.Actor, d *feedback.Draft, mr *multipart.Reader, field string, limit int64) (feedback.Feedback, error) {
	if h.deps.Blobs == nil && svc.Config().MaxPhotos > 0 {
		// Without a blob store photos are refused, not dropped.
		if p, err := mr.NextPart(); err == nil {
			p.Close()
			return feedback.Feedback{}, loa.Unavailable("photos cannot be stored on this server (no blob store configured)")
		}
		return svc.Submit(ctx, a, d)
	}
	ok := false
	defer func() {
		if !ok {
			for _, p := range d.Photos() {
				h.deps.Blobs.Delete(context.WithoutCancel(ctx), p.Key)
			}
		}
	}()
	for n := 0; ; n++ {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return feedback.Feedback{}, bodyError(&loa.Error{Code: loa.EMalformed, Detail: "malformed multipart body: " + err.Error(), Err: err}, limit)
		}
		if part.FormName() != field {
			part.Close()
			return feedback.Feedback{}, loa.Invalid(part.FormName(), "unknown part; send %q then %q", "data", field)
		}
		if err := svc.MayAddPhoto(d); err != nil {
			part.Close()
			return feedback.Feedback{}, err
		}
		p, err := h.storePhoto(ctx, fmt.Sprintf("feedback/%s/%d", strings.ToLower(d.ID()), n), part, fmt.Sprintf("%s[%d]", field, n))
		part.Close()
		if err != nil {
			return feedback.Feedback{}, err
		}
		if err := svc.AddPhoto(d, p); err != nil {
			h.deps.Blobs.Delete(context.WithoutCancel(ctx), p.Key)
			return feedback.Feedback{}, err
		}
	}
	f, err := svc.Submit(ctx, a, d)
	if err != nil {
		return f, err
	}
	ok = true
	return f, nil
}

// storePhoto cleans one photo into a temporary file and stores it under
// key + its extension.
func (h *handler) storePhoto(ctx context.Context, key string, r io.Reader, field string) (feedback.Photo, error) {
	tmp, err := os.CreateTemp("", "loa-photo-*")
	if err != nil {
		return feedback.Photo{}, err
	}
	defer func() { tmp.Close(); os.Remove(tmp.Name()) }()
	info, err := photo.Clean(tmp, r, MaxPhotoBytes)
	switch {
	case errors.Is(err, photo.ErrNotPhoto):
		return feedback.Photo{}, loa.Invalid(field, "must be a JPEG, PNG or WebP image")
	case errors.Is(err, photo.ErrTooLarge):
		return feedback.Photo{}, loa.Invalid(field, "must be at most %d bytes", MaxPhotoBytes)
	case errors.Is(err, photo.ErrTooManyPixels):
		return feedback.Photo{}, loa.Invalid(field, "must have at most %d pixels (width × height)", photo.MaxPixels)
	case cut(err):
		return feedback.Photo{}, loa.Errorf(loa.ETooLarge, "the request body is over the limit for %s", field)
	case err != nil:
		return feedback.Photo{}, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return feedback.Photo{}, err
	}
	key += "." + info.Ext
	if err := h.deps.Blobs.Put(ctx, key, tmp, info.Size, info.ContentType); err != nil {
		return feedback.Photo{}, loa.Unavailable("the photo could not be stored; retry").Wrap(err)
	}
	return feedback.Photo{Key: key, ContentType: info.ContentType, Size: info.Size}, nil
}

// getFeedback: GET /v1/feedback/{id}, in full.
func (h *handler) getFeedback(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.feedbackService()
	if err != nil {
		return err
	}
	f, err := svc.Get(r.Context(), h.feedbackActor(r), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h.viewFeedbackOf(r, f))
	return nil
}

// viewFeedbackOf is viewFeedback as the caller of r sees it: an API key
// does not see which account a matter it filed is linked to (a key
// files for any phone, so the link would tell it which numbers are
// Loa's citizens').
func (h *handler) viewFeedbackOf(r *http.Request, f feedback.Feedback) feedbackView {
	v := viewFeedback(f)
	if h.feedbackActor(r).APIKeyID != "" {
		v.CitizenID = ""
	}
	return v
}

// feedbackHistory: GET /v1/feedback/{id}/history.
func (h *handler) feedbackHistory(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.feedbackService()
	if err != nil {
		return err
	}
	evs, err := svc.History(r.Context(), h.feedbackActor(r), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	out := []feedbackEventView{}
	for _, e := range evs {
		out = append(out, feedbackEventView{Seq: e.Seq, At: e.At.UTC(), Actor: e.Actor, Action: e.Action, From: string(e.From), To: string(e.To),
			Agency: e.Agency, Note: e.Note})
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
	return nil
}

// feedbackPhoto: GET /v1/feedback/{id}/photos/{n}. Public when the citizen
// agreed to be named; otherwise for those who see the matter in full.
// The session or key is optional.
func (h *handler) feedbackPhoto(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.feedbackService()
	if err != nil {
		return err
	}
	var a feedback.Actor
	if r.Header.Get("Authorization") != "" {
		p, err := h.authenticate(r)
		if err != nil {
			return err
		}
		ctx := context.WithValue(r.Context(), principalKey{}, p)
		a = h.feedbackActor(r.WithContext(ctx))
	}
	n, err := strconv.Atoi(chi.URLParam(r, "n"))
	if err != nil {
		return loa.NotFound("no such photo")
	}
	p, err := svc.PhotoOf(r.Context(), a, chi.URLParam(r, "id"), n)
	if err != nil {
		return err
	}
	if h.deps.Blobs == nil {
		return errNoFeedback
	}
	rc, size, err := h.deps.Blobs.Open(r.Context(), p.Key)
	if errors.Is(err, blob.ErrNotFound) {
		return loa.NotFound("photo %d of feedback %s is gone", n, chi.URLParam(r, "id"))
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	w.Header().Set("Content-Type", p.ContentType)
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'")
	w.Header().Set("Cache-Control", "private, max-age=300")
	w.WriteHeader(http.StatusOK)
	io.Copy(w, rc)
	return nil
}

type stepBody struct {
	Agency string `json:"agency"`
	Text   string `json:"text"`
	Reason string `json:"reason"`
}

// feedbackAction: POST /v1/feedback/{id}/{action}, an official's step. The
// role is checked before the body is read.
func (h *handler) feedbackAction(action string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		svc, err := h.feedbackService()
		if err != nil {
			return err
		}
		a, id := h.feedbackActor(r), chi.URLParam(r, "id")
		if err := svc.Check(r.Context(), a, id, action); err != nil {
			return err
		}
		var b stepBody
		if r.ContentLength != 0 {
			if err := decodeJSON(w, r, h.deps.MaxBodyBytes, &b); err != nil {
				return err
			}
		}
		f, err := svc.Act(r.Context(), a, id, feedback.Step{Action: action, Agency: b.Agency, Text: b.Text, Reason: b.Reason})
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, viewFeedback(f))
		return nil
	}
}

// rateFeedback: POST /v1/feedback/{id}/rating {rating, comment}; only the
// citizen who sent it, checked before the body is read.
func (h *handler) rateFeedback(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.feedbackService()
	if err != nil {
		return err
	}
	a, id := h.feedbackActor(r), chi.URLParam(r, "id")
	if err := svc.MayRate(r.Context(), a, id); err != nil {
		return err
	}
	var b struct {
		Rating  int    `json:"rating"`
		Comment string `json:"comment"`
	}
	if err := decodeJSON(w, r, h.deps.MaxBodyBytes, &b); err != nil {
		return err
	}
	f, err := svc.Rate(r.Context(), a, id, b.Rating, b.Comment)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewFeedback(f))
	return nil
}

// feedbackFilter reads ?status=&agency=&category=&area=&before=&limit=.
func feedbackFilter(r *http.Request) (feedback.Filter, error) {
	q := r.URL.Query()
	f := feedback.Filter{Agency: q.Get("agency"), Category: q.Get("category"), Area: q.Get("area"), Before: q.Get("before"), Limit: 100}
	for _, s := range strings.Split(q.Get("status"), ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		ok := false
		for _, k := range feedback.Statuses() {
			ok = ok || string(k) == s
		}
		if !ok {
			return f, loa.Invalid("status", "unknown status %q", s)
		}
		f.Statuses = append(f.Statuses, feedback.Status(s))
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 500 {
			return f, loa.Invalid("limit", "must be 1 to 500")
		}
		f.Limit = n
	}
	return f, nil
}

func nextCursor[T any](items []T, limit int, id func(T) string) string {
	if len(items) < limit || len(items) == 0 {
		return ""
	}
	return id(items[len(items)-1])
}

// listFeedback: GET /v1/feedback, an official's queue.
func (h *handler) listFeedback(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.feedbackService()
	if err != nil {
		return err
	}
	a := h.feedbackActor(r)
	if err := svc.MayHandle(r.Context(), a); err != nil {
		return err
	}
	f, err := feedbackFilter(r)
	if err != nil {
		return err
	}
	list, err := svc.Queue(r.Context(), a, f)
	if err != nil {
		return err
	}
	writeFeedbackList(w, list, f.Limit)
	return nil
}

// myFeedback: GET /v1/me/feedback.
func (h *handler) myFeedback(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.feedbackService()
	if err != nil {
		return err
	}
	f, err := feedbackFilter(r)
	if err != nil {
		return err
	}
	list, err := svc.Mine(r.Context(), h.feedbackActor(r), f)
	if err != nil {
		return err
	}
	writeFeedbackList(w, list, f.Limit)
	return nil
}

// publicFeedbackList: GET /v1/public/feedback.
func (h *handler) publicFeedbackList(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.feedbackService()
	if err != nil {
		return err
	}
	f, err := feedbackFilter(r)
	if err != nil {
		return err
	}
	list, err := svc.PublicList(r.Context(), f)
	if err != nil {
		return err
	}
	out := []publicFeedbackView{}
	for _, x := range list {
		out = append(out, viewPublic(x))
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out, "next": nextCursor(list, f.Limit, func(x feedback.PublicView) string { return x.ID })})
	return nil
}

// publicFeedback: GET /v1/public/feedback/{id}.
func (h *handler) publicFeedback(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.feedbackService()
	if err != nil {
		return err
	}
	v, err := svc.Public(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewPublic(v))
	return nil
}

// feedbackStats: GET /v1/public/feedback/stats.
func (h *handler) feedbackStats(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.feedbackService()
	if err != nil {
		return err
	}
	st, err := svc.Stats(r.Context())
	if err != nil {
		return err
	}
	if st == nil {
		st = []feedback.AgencyStat{}
	}
	w.Header().Set("Cache-Control", "public, max-age=60") // as feedback.StatsTTL
	writeJSON(w, http.StatusOK, map[string]any{"agencies": st})
	return nil
}

type categoryView struct {
	Code         string `json:"code"`
	Name         string `json:"name"`
	NameEN       string `json:"name_en,omitempty"`
	Group        string `json:"group,omitempty"`
	Agency       string `json:"agency,omitempty"`
	HandlingDays int    `json:"handling_days"`
	Active       bool   `json:"active"`
}

func viewCategory(c feedback.Category) categoryView {
	return categoryView{Code: c.Code, Name: c.Name, NameEN: c.NameEN, Group: c.Group, Agency: c.Agency, HandlingDays: c.HandlingDays, Active: c.Active}
}

// feedbackCategories: GET /v1/public/feedback/categories.
func (h *handler) feedbackCategories(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.feedbackService()
	if err != nil {
		return err
	}
	cs, err := svc.Categories(r.Context(), false)
	if err != nil {
		return err
	}
	out := []categoryView{}
	for _, c := range cs {
		out = append(out, viewCategory(c))
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
	return nil
}

// feedbackAdmin: the caller must edit categories and routes (coordinator,
// administrator, or an admin key), checked before the body is read.
func (h *handler) feedbackAdmin(r *http.Request) (*feedback.Service, feedback.Actor, bool, error) {
	svc, err := h.feedbackService()
	if err != nil {
		return nil, feedback.Actor{}, false, err
	}
	p, _ := principalFrom(r.Context())
	a := h.feedbackActor(r)
	adminKey := p.AccountID == "" && p.Has(ScopeAdmin)
	return svc, a, adminKey, svc.MayAdminister(r.Context(), a, adminKey)
}

// putFeedbackCategory: PUT /v1/feedback/categories/{code}.
func (h *handler) putFeedbackCategory(w http.ResponseWriter, r *http.Request) error {
	svc, a, adminKey, err := h.feedbackAdmin(r)
	if err != nil {
		return err
	}
	var b struct {
		Name         string `json:"name"`
		NameEN       string `json:"name_en"`
		Group        string `json:"group"`
		Agency       string `json:"agency"`
		HandlingDays int    `json:"handling_days"`
		Active       *bool  `json:"active"`
	}
	if err := decodeJSON(w, r, h.deps.MaxBodyBytes, &b); err != nil {
		return err
	}
	c := feedback.Category{Code: chi.URLParam(r, "code"), Name: b.Name, NameEN: b.NameEN, Group: b.Group, Agency: b.Agency,
		HandlingDays: b.HandlingDays, Active: b.Active == nil || *b.Active}
	c, err = svc.PutCategory(r.Context(), a, adminKey, c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewCategory(c))
	return nil
}

// feedbackRoutes: GET /v1/feedback/categories/{code}/routes.
func (h *handler) feedbackRoutes(w http.ResponseWriter, r *http.Request) error {
	svc, _, _, err := h.feedbackAdmin(r)
	if err != nil {
		return err
	}
	rs, err := svc.Routes(r.Context(), chi.URLParam(r, "code"))
	if err != nil {
		return err
	}
	out := []map[string]string{}
	for _, x := range rs {
		out = append(out, map[string]string{"area": x.Area, "agency": x.Agency})
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
	return nil
}

// putFeedbackRoute: PUT /v1/feedback/categories/{code}/routes/{area}.
func (h *handler) putFeedbackRoute(w http.ResponseWriter, r *http.Request) error {
	svc, a, adminKey, err := h.feedbackAdmin(r)
	if err != nil {
		return err
	}
	var b struct {
		Agency string `json:"agency"`
	}
	if err := decodeJSON(w, r, h.deps.MaxBodyBytes, &b); err != nil {
		return err
	}
	rt := feedback.Route{Category: chi.URLParam(r, "code"), Area: chi.URLParam(r, "area"), Agency: b.Agency}
	if err := svc.PutRoute(r.Context(), a, adminKey, rt); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"category": rt.Category, "area": rt.Area, "agency": rt.Agency})
	return nil
}

// deleteFeedbackRoute: DELETE /v1/feedback/categories/{code}/routes/{area}.
func (h *handler) deleteFeedbackRoute(w http.ResponseWriter, r *http.Request) error {
	svc, a, adminKey, err := h.feedbackAdmin(r)
	if err != nil {
		return err
	}
	if err := svc.DeleteRoute(r.Context(), a, adminKey, chi.URLParam(r, "code"), chi.URLParam(r, "area")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// writeFeedbackList answers a page of feedback in the officials' and the
// sender's view, with the cursor of the next page.
func writeFeedbackList(w http.ResponseWriter, list []feedback.Feedback, limit int) {
	out := make([]feedbackView, 0, len(list))
	for _, x := range list {
		out = append(out, viewFeedback(x))
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out, "next": nextCursor(list, limit, func(x feedback.Feedback) string { return x.ID })})
}
