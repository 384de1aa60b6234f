package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/broadcast"
)

type audienceBody struct {
	Everyone   bool     `json:"everyone,omitempty"`
	Areas      []string `json:"areas,omitempty"`
	Topics     []string `json:"topics,omitempty"`
	Accounts   []string `json:"accounts,omitempty"`
	AreaTopics bool     `json:"area_topics,omitempty"`
}

type documentBody struct {
	Number string `json:"number"`
	Date   string `json:"date"`
}

type broadcastRequest struct {
	Title           string        `json:"title"`
	Body            string        `json:"body"`
	TitleEN         string        `json:"title_en"`
	BodyEN          string        `json:"body_en"`
	Topic           string        `json:"topic"`
	Audience        *audienceBody `json:"audience"`
	Channels        []string      `json:"channels"`
	SendAt          string        `json:"send_at"`
	RequestDocument *documentBody `json:"request_document"`
}

type broadcastView struct {
	ID              string                 `json:"id"`
	Status          string                 `json:"status"`
	Title           string                 `json:"title"`
	Body            string                 `json:"body"`
	TitleEN         string                 `json:"title_en,omitempty"`
	BodyEN          string                 `json:"body_en,omitempty"`
	Topic           string                 `json:"topic"`
	Audience        audienceBody           `json:"audience"`
	Channels        []string               `json:"channels"`
	SendAt          *time.Time             `json:"send_at,omitempty"`
	RequestDocument documentBody           `json:"request_document"`
	Unit            string                 `json:"unit,omitempty"`
	CreatedBy       string                 `json:"created_by"`
	SubmittedBy     string                 `json:"submitted_by,omitempty"`
	DecidedBy       string                 `json:"decided_by,omitempty"`
	Reason          string                 `json:"reason,omitempty"`
	CreatedAt       time.Time              `json:"created_at"`
	UpdatedAt       time.Time              `json:"updated_at"`
	AudienceSize    *audienceSize          `json:"audience_size,omitempty"`
	SMS             *broadcast.SMSEstimate `json:"sms,omitempty"`
	Stats           *Stats                 `json:"stats,omitempty"`

	// The names of the officials who drafted, submitted and decided it.
	CreatedByName   string `json:"created_by_name,omitempty"`
	SubmittedByName string `json:"submitted_by_name,omitempty"`
	DecidedByName   string `json:"decided_by_name,omitempty"`
}

// audienceSize is a broadcast's audience: counted (at most once every
// broadcast.Config.CountTTL) while it is a draft or submitted, the figure
// stored at its decision afterwards; CountedAt says when it was counted.
type audienceSize struct {
	Devices   int       `json:"devices"`
	Phones    int       `json:"phones"`
	CountedAt time.Time `json:"counted_at"`
}

func viewBroadcast(b broadcast.Broadcast) broadcastView {
	v := broadcastView{ID: b.ID, Status: b.Status, Title: b.Title, Body: b.Body, TitleEN: b.TitleEN, BodyEN: b.BodyEN, Topic: b.Topic,
		Audience: audienceBody{Everyone: b.Audience.Everyone, Areas: b.Audience.Areas, Topics: b.Audience.Topics, Accounts: b.Audience.Accounts, AreaTopics: b.Audience.AreaTopics}, Channels: b.Channels, RequestDocument: documentBody{Number: b.DocNumber, Date: b.DocDate},
		Unit: b.Unit, CreatedBy: b.CreatedBy, SubmittedBy: b.SubmittedBy, DecidedBy: b.DecidedBy, Reason: b.Reason,
		CreatedAt: b.CreatedAt.UTC(), UpdatedAt: b.UpdatedAt.UTC()}
	if !b.SendAt.IsZero() {
		t := b.SendAt.UTC()
		v.SendAt = &t
	}
	return v
}

func (h *handler) broadcasts() (*broadcast.Service, error) {
	if h.deps.Broadcasts == nil {
		return nil, loa.Unavailable("broadcasts are not configured on this server")
	}
	return h.deps.Broadcasts, nil
}

func (h *handler) broadcastActor(r *http.Request) broadcast.Actor {
	p, _ := principalFrom(r.Context())
	return broadcast.Actor{AccountID: p.AccountID, IP: h.clientIP(r)}
}

// createBroadcast: POST /v1/broadcasts (agency submitters).
func (h *handler) createBroadcast(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.broadcasts()
	if err != nil {
		return err
	}
	var req broadcastRequest
	if err := decodeJSON(w, r, h.deps.MaxBodyBytes, &req); err != nil {
		return err
	}
	d := broadcast.Draft{Title: req.Title, Body: req.Body, TitleEN: req.TitleEN, BodyEN: req.BodyEN, Topic: req.Topic, Channels: req.Channels}
	if req.Audience != nil {
		d.Audience = broadcast.Audience(*req.Audience)
	}
	if req.RequestDocument != nil {
		d.Document = broadcast.Document{Number: req.RequestDocument.Number, Date: req.RequestDocument.Date}
	}
	if req.SendAt != "" {
		t, err := time.Parse(time.RFC3339, req.SendAt)
		if err != nil {
			return loa.InvalidFields(loa.FieldError{Field: "send_at", Detail: "must be an RFC 3339 time, e.g. 2026-11-25T07:00:00+07:00"})
		}
		d.SendAt = t
	}
	b, err := svc.Create(r.Context(), h.broadcastActor(r), d)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/broadcasts/"+b.ID)
	auditTarget(r, b.ID)
	writeJSON(w, http.StatusCreated, viewBroadcast(b))
	return nil
}

// listBroadcasts: GET /v1/broadcasts?status=…&limit=….
func (h *handler) listBroadcasts(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.broadcasts()
	if err != nil {
		return err
	}
	limit := 50
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 500 {
			return loa.InvalidFields(loa.FieldError{Field: "limit", Detail: "must be a number from 1 to 500"})
		}
		limit = n
	}
	bs, err := svc.List(r.Context(), h.broadcastActor(r), r.URL.Query().Get("status"), limit)
	if err != nil {
		return err
	}
	items := make([]broadcastView, len(bs))
	for i, b := range bs {
		items[i] = viewBroadcast(b)
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
	return nil
}

// getBroadcast: GET /v1/broadcasts/{id}, with the audience size, the SMS
// estimate and the live counters. A decided broadcast's audience size is
// the one stored with it (broadcast.Service.Reach): polling a broadcast
// being sent never counts its audience again.
func (h *handler) getBroadcast(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.broadcasts()
	if err != nil {
		return err
	}
	id := chi.URLParam(r, "id")
	var st Stats
	b, err := svc.GetCounted(r.Context(), h.broadcastActor(r), id, func(ctx context.Context) (map[string]int64, []producer.DeliveryStat, error) {
		targeted, rows, rate, err := h.requestCounts(ctx, r, id)
		st = foldStats(targeted, rows)
		st.Rate = rate
		return targeted, rows, err
	})
	if err != nil {
		return err
	}
	est, err := svc.Reach(r.Context(), h.broadcastActor(r), b)
	if err != nil {
		return err
	}
	v := viewBroadcast(b)
	v.AudienceSize, v.SMS, v.Stats = &audienceSize{Devices: est.Devices, Phones: est.Phones, CountedAt: est.CountedAt.UTC()}, est.SMS, &st
	h.names().broadcast(r.Context(), &v)
	writeJSON(w, http.StatusOK, v)
	return nil
}

// broadcastHistory: GET /v1/broadcasts/{id}/history.
func (h *handler) broadcastHistory(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.broadcasts()
	if err != nil {
		return err
	}
	id := chi.URLParam(r, "id")
	evs, err := svc.History(r.Context(), h.broadcastActor(r), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "items": h.names().events(r.Context(), evs)})
	return nil
}

type reasonRequest struct {
	Reason string `json:"reason"`
}

// broadcastAction serves POST /v1/broadcasts/{id}/submit|approve|reject|cancel.
func (h *handler) broadcastAction(action string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		svc, err := h.broadcasts()
		if err != nil {
			return err
		}
		var req reasonRequest
		if action == "reject" || r.ContentLength > 0 {
			if err := decodeJSON(w, r, h.deps.MaxBodyBytes, &req); err != nil {
				return err
			}
		}
		id, a := chi.URLParam(r, "id"), h.broadcastActor(r)
		var b broadcast.Broadcast
		switch action {
		case "submit":
			b, err = svc.Submit(r.Context(), a, id)
		case "approve":
			b, err = svc.Approve(r.Context(), a, id)
		case "reject":
			b, err = svc.Reject(r.Context(), a, id, req.Reason)
		case "cancel":
			b, err = svc.Cancel(r.Context(), a, id, req.Reason)
		}
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, viewBroadcast(b))
		return nil
	}
}
