package api

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/accounts"

	"github.com/loa-hub/loa/producer/broadcast"
)

// areaSize is the audience of one part of an audience: an area (with
// every unit below it), or the topics, or the accounts.
type areaSize struct {
	Area    string `json:"area,omitempty"`
	Name    string `json:"name,omitempty"`
	Part    string `json:"part"` // area | topics | accounts | everyone
	Devices int    `json:"devices"`
	Phones  int    `json:"phones"`
}

// smsView is the SMS estimate with what it costs at each priced provider.
type smsView struct {
	*broadcast.SMSEstimate
	Cost []broadcast.Cost `json:"cost"`
}

// estimateView is what an approver needs to decide, and what a
// submitter sees while drafting.
type estimateView struct {
	Devices int        `json:"devices"`
	Phones  int        `json:"phones"`
	ByArea  []areaSize `json:"by_area"`
	SMS     *smsView   `json:"sms,omitempty"`
	// CountedAt is when the total was counted (counts are reused for
	// broadcast.Config.CountTTL).
	CountedAt time.Time `json:"counted_at"`
}

// estimate sizes b's audience in total and part by part, and prices its
// SMS segments. The total of a stored broadcast is its Reach (the figure
// stored once it is decided); the parts are counted, each count reused
// for broadcast.Config.CountTTL.
func (h *handler) estimate(r *http.Request, svc *broadcast.Service, b broadcast.Broadcast) (estimateView, error) {
	total := svc.Estimate
	if b.ID != "" {
		total = svc.Reach
	}
	est, err := total(r.Context(), h.broadcastActor(r), b)
	if err != nil {
		return estimateView{}, err
	}
	v := estimateView{Devices: est.Devices, Phones: est.Phones, ByArea: []areaSize{}, CountedAt: est.CountedAt.UTC()}
	if est.SMS != nil {
		v.SMS = &smsView{SMSEstimate: est.SMS, Cost: broadcast.Costs(est.SMS.TotalSegments, h.deps.SMSPrices, h.smsCurrency())}
	}
	a := b.Audience
	part := func(kind, area string, aud loa.Audience) error {
		one := b
		one.Audience = aud
		e, err := svc.Estimate(r.Context(), h.broadcastActor(r), one)
		if err != nil {
			return err
		}
		v.ByArea = append(v.ByArea, areaSize{Area: area, Part: kind, Devices: e.Devices, Phones: e.Phones})
		return nil
	}
	if a.Everyone {
		v.ByArea = append(v.ByArea, areaSize{Part: "everyone", Devices: est.Devices, Phones: est.Phones})
		return v, nil
	}
	// Each area once, capped so a long list costs a bounded number of
	// counts; the total above counts each recipient once.
	areas := slices.Compact(slices.Sorted(slices.Values(a.Areas)))
	if len(areas) > 50 {
		areas = areas[:50]
	}
	for _, code := range areas {
		if err := part("area", code, loa.Audience{Areas: []string{code}}); err != nil {
			return estimateView{}, err
		}
	}
	if len(a.Topics) > 0 {
		if err := part("topics", "", loa.Audience{Topics: a.Topics}); err != nil {
			return estimateView{}, err
		}
	}
	if len(a.Accounts) > 0 {
		if err := part("accounts", "", loa.Audience{Accounts: a.Accounts}); err != nil {
			return estimateView{}, err
		}
	}
	names, err := h.deps.Store.AreaNames(r.Context(), areas)
	if err != nil {
		return estimateView{}, err
	}
	for i := range v.ByArea {
		v.ByArea[i].Name = names[v.ByArea[i].Area]
	}
	return v, nil
}

func (h *handler) smsCurrency() string {
	if h.deps.SMSCurrency == "" {
		return "VND"
	}
	return h.deps.SMSCurrency
}

// estimateBroadcast: POST /v1/broadcasts/estimate — the audience size
// (in total and per area) and the SMS segments and cost of a broadcast
// being drafted, before it is saved. Submitters and approvers.
func (h *handler) estimateBroadcast(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.broadcasts()
	if err != nil {
		return err
	}
	var req broadcastRequest
	if err := decodeJSON(w, r, h.deps.MaxBodyBytes, &req); err != nil {
		return err
	}
	b := broadcast.Broadcast{Body: req.Body, Channels: req.Channels}
	if req.Audience != nil {
		b.Audience = loa.Audience{Everyone: req.Audience.Everyone, Areas: req.Audience.Areas, Topics: req.Audience.Topics,
			Accounts: req.Audience.Accounts}
	}
	var v loa.Validation
	if len(b.Audience.Areas) > 200 {
		v.Add("audience.areas", "at most 200 areas")
	}
	if len(b.Audience.Accounts) > 1000 {
		v.Add("audience.accounts", "at most 1000 accounts")
	}
	if err := v.Err(nil); err != nil {
		return err
	}
	est, err := h.estimate(r, svc, b)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, est)
	return nil
}

// approvalView is a broadcast as its approver sees it.
type approvalView struct {
	broadcastView
	Estimate estimateView `json:"estimate"`
	History  []namedEvent `json:"history,omitempty"`
}

// officialName is an official's full name and user name ("" when the
// account cannot be read: the page then shows the id).
func (h *handler) officialName(ctx context.Context, id string) string {
	if id == "" || h.deps.Accounts == nil {
		return ""
	}
	a, err := h.deps.Accounts.Account(ctx, id)
	if err != nil || a.Kind != accounts.KindOfficial {
		return ""
	}
	if a.Username != "" {
		return a.FullName + " (" + a.Username + ")"
	}
	return a.FullName
}

// approval is b as its approver sees it.
func (h *handler) approval(ctx context.Context, b broadcast.Broadcast, est estimateView) approvalView {
	v := approvalView{broadcastView: viewBroadcast(b), Estimate: est}
	h.names().broadcast(ctx, &v.broadcastView)
	return v
}

// listApprovals: GET /v1/approvals — the approver's queue: submitted
// broadcasts with their audience and cost, and alerts waiting for
// approval. Approvers of the approval unit only.
func (h *handler) listApprovals(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.broadcasts()
	if err != nil {
		return err
	}
	bs, err := svc.List(r.Context(), h.broadcastActor(r), string(broadcast.StatusSubmitted), 200)
	if err != nil {
		return err
	}
	items := make([]approvalView, 0, len(bs))
	for _, b := range bs {
		est, err := h.estimate(r, svc, b)
		if err != nil {
			return err
		}
		items = append(items, h.approval(r.Context(), b, est))
	}
	alerts := []alertView{}
	if h.deps.Alerts != nil {
		list, err := h.deps.Alerts.List(r.Context(), "pending_approval", "", 200)
		if err != nil {
			return err
		}
		names := h.names()
		for _, a := range list {
			v := newAlertView(a)
			names.alert(r.Context(), &v)
			alerts = append(alerts, v)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"broadcasts": items, "alerts": alerts})
	return nil
}

// getApproval: GET /v1/approvals/broadcasts/{id} — one broadcast with its
// audience per area, SMS segments and cost, and its history.
func (h *handler) getApproval(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.broadcasts()
	if err != nil {
		return err
	}
	id := chi.URLParam(r, "id")
	b, err := svc.Get(r.Context(), h.broadcastActor(r), id)
	if err != nil {
		return err
	}
	est, err := h.estimate(r, svc, b)
	if err != nil {
		return err
	}
	hist, err := svc.History(r.Context(), h.broadcastActor(r), id)
	if err != nil {
		return err
	}
	v := h.approval(r.Context(), b, est)
	v.History = h.names().events(r.Context(), hist)
	writeJSON(w, http.StatusOK, v)
	return nil
}
