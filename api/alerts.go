package api

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/producer/alert"
)

// requireAlertIssuer admits API keys that may post alerts: alerts:issue
// (pre-authorised by default) or alerts:write (approval needed); and the
// unrestricted session of an official holding alert_issuer (in any unit),
// whose alerts always wait for an approver. Both before the body is read.
func (h *handler) requireAlertIssuer() func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return h.requirePrincipal(func(p Principal) *loa.Error {
			if p.AccountID != "" {
				return nil // an official: the role is checked below
			}
			if !p.Has(ScopeAlertsIssue) && !p.Has(ScopeAlertsWrite) {
				return &loa.Error{Code: loa.EForbidden, Detail: fmt.Sprintf("posting alerts needs an API key with the scope %q or %q, or an official with the role %s", ScopeAlertsIssue, ScopeAlertsWrite, accounts.RoleAlertIssuer)}
			}
			return nil
		})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, _ := principalFrom(r.Context())
			if p.AccountID == "" {
				next.ServeHTTP(w, r)
				return
			}
			if err := h.checkOfficialRole(r.Context(), p, accounts.RoleAlertIssuer); err != nil {
				h.writeError(w, r, err)
				return
			}
			next.ServeHTTP(w, r)
		}))
	}
}

// checkOfficialRole refuses a session that is restricted, not an
// official's, or whose official holds none of roles in any unit.
func (h *handler) checkOfficialRole(ctx context.Context, p Principal, roles ...accounts.Role) error {
	switch {
	case p.Restricted:
		return &loa.Error{Code: loa.EPasswordExpired, Detail: "the password has expired; change it with POST /v1/me/password first"}
	case p.Kind != string(accounts.KindOfficial):
		return &loa.Error{Code: loa.EForbidden, Detail: "this route is for officials"}
	case h.deps.Accounts == nil:
		return loa.Unavailable("accounts are not configured on this server")
	}
	grants, err := h.deps.Accounts.Roles(ctx, p.AccountID)
	if err != nil {
		return err
	}
	if e := lacksRole(grants, roles); e != nil {
		return e
	}
	return nil
}

// requireAlertReader admits API keys with an alerts scope or ops, and
// signed-in officials (whose role the handler checks).
func (h *handler) requireAlertReader() func(http.Handler) http.Handler {
	return h.requirePrincipal(func(p Principal) *loa.Error {
		if p.Restricted {
			return &loa.Error{Code: loa.EPasswordExpired, Detail: "the password has expired; change it with POST /v1/me/password first"}
		}
		if p.AccountID == "" && !p.Has(ScopeAlertsIssue) && !p.Has(ScopeAlertsWrite) && !p.Has(ScopeOps) {
			return &loa.Error{Code: loa.EForbidden, Detail: fmt.Sprintf("reading alerts needs the scope %q, %q or %q, or an approver's or alert issuer's session", ScopeAlertsIssue, ScopeAlertsWrite, ScopeOps)}
		}
		return nil
	})
}

func (h *handler) alerts() (*alert.Service, error) {
	if h.deps.Alerts == nil {
		return nil, loa.Unavailable("disaster alerts are not configured on this server")
	}
	return h.deps.Alerts, nil
}

// postCAPAlert: POST /v1/alerts/cap, a CAP 1.2 document.
func (h *handler) postCAPAlert(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.alerts()
	if err != nil {
		return err
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/cap+xml" && mt != "application/xml") {
		return &loa.Error{Code: codeMediaType, Detail: fmt.Sprintf("Content-Type %q is not CAP; send application/cap+xml or application/xml", r.Header.Get("Content-Type"))}
	}
	areaTopics := false
	if v := r.URL.Query().Get("area_topics"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return loa.InvalidFields(loa.FieldError{Field: "area_topics", Detail: "must be true or false"})
		}
		areaTopics = b
	}
	a, err := svc.ParseCAP(r.Context(), http.MaxBytesReader(w, r.Body, svc.MaxBytes()))
	if err != nil {
		return bodyError(err, svc.MaxBytes())
	}
	return h.submitAlert(w, r, svc, alert.Input{Alert: a, AreaTopics: areaTopics})
}

// postJSONAlert: POST /v1/alerts, Loa's JSON form of an alert.
func (h *handler) postJSONAlert(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.alerts()
	if err != nil {
		return err
	}
	var req alert.JSONAlert
	if err := decodeJSON(w, r, h.deps.MaxBodyBytes, &req); err != nil {
		return err
	}
	p, _ := principalFrom(r.Context())
	in, err := svc.FromJSON(r.Context(), req, "loa:"+p.ID)
	if err != nil {
		return err
	}
	return h.submitAlert(w, r, svc, in)
}

func (h *handler) submitAlert(w http.ResponseWriter, r *http.Request, svc *alert.Service, in alert.Input) error {
	p, _ := principalFrom(r.Context())
	iss := alert.Issuer{ID: p.ID, Actor: "apikey:" + p.ID, Scopes: p.Scopes, Identity: "apikey:" + p.ID,
		Areas: p.AlertAreas, AnyArea: p.Has("*")}
	if p.AccountID != "" {
		// An official's alert holds no scope, so the pre-authorisation
		// policy never applies: an approver decides. The senders an
		// official may post as are configured by user name.
		acc, err := h.deps.Accounts.Account(r.Context(), p.AccountID)
		if err != nil {
			return err
		}
		iss = alert.Issuer{ID: p.ID, Actor: p.AccountID, Identity: "official:" + acc.Username}
	}
	res, err := svc.Submit(r.Context(), iss, in)
	if errors.Is(err, alert.ErrPublish) {
		h.log.Error("publishing an alert failed", "alert", res.Alert.ID, "error", err)
		return loa.Unavailable("the alert %s is stored but could not be queued; post the same alert again to retry", res.Alert.ID)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/alerts/"+res.Alert.ID)
	if res.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	auditTarget(r, res.Alert.ID)
	body := map[string]any{"id": res.Alert.ID, "status": res.Alert.Status, "distribution": res.Alert.Distribution,
		"priority": res.Alert.Priority, "areas": res.Alert.AreaCodes, "channels": res.Alert.Channels,
		"expires": res.Alert.ExpiresAt, "replayed": res.Replayed}
	addAlertNotes(body, res.Alert)
	writeJSON(w, http.StatusAccepted, body)
	return nil
}

// addAlertNotes adds to an answer what Loa made of the alert beyond its
// status: who it goes to when that is not the public, and what it named
// that matched nothing.
func addAlertNotes(body map[string]any, a alert.StoredAlert) {
	if note := alertNote(a); note != "" {
		body["note"] = note
	}
	if len(a.Audience.Roles) > 0 {
		body["roles"] = a.Audience.Roles
	}
	if a.Audience.AreaTopics {
		body["area_topics"] = true
	}
	if len(a.Audience.Accounts) > 0 {
		body["accounts"] = len(a.Audience.Accounts)
	}
	if n := a.Notes.UnmatchedAreas; len(n) > 0 {
		body["unmatched_areas"] = n
	}
	if n := a.Notes.UnmatchedAddresses; len(n) > 0 {
		body["unmatched_addresses"] = n
	}
	if n := a.Notes.UnmatchedRefs; len(n) > 0 {
		body["unmatched_references"] = n
	}
	if n := a.Notes.ForeignSenders; len(n) > 0 {
		body["foreign_senders"] = n
	}
}

// alertNote says in a sentence why an alert is not (or not publicly)
// distributed.
func alertNote(a alert.StoredAlert) string {
	switch a.Status {
	case alert.StatusExpired:
		return "the alert had expired when it arrived: stored, never sent"
	case alert.StatusNotDistributed:
		return "a System message: stored, never distributed"
	case alert.StatusNoRecipients:
		return "the alert reaches no one (no known area, account or role matches it): stored, nothing sent"
	case alert.StatusCancelled:
		return "a Cancel of this alert arrived before it: stored, never sent"
	case alert.StatusSuperseded:
		return "an Update of this alert arrived before it: stored, never sent"
	}
	if a.Status == alert.StatusPendingApproval && len(a.Notes.ForeignSenders) > 0 {
		return "it refers to alerts of " + strings.Join(a.Notes.ForeignSenders, ", ") + ", which its issuer does not post as: it waits for an approver, whatever the issuer's pre-authorisation"
	}
	switch a.Distribution {
	case alert.DistributionTest:
		return "a Test or Exercise alert: sent only to the test audience (roles " + strings.Join(a.Audience.Roles, ", ") + "), never to the public"
	case alert.DistributionRestricted:
		return "a Restricted alert: sent only to holders of the roles its restriction maps to, never to public devices"
	case alert.DistributionPrivate:
		return "a Private alert: sent only to the accounts its addresses name"
	}
	return ""
}

type alertText struct {
	Language    string `json:"language"`
	Event       string `json:"event"`
	Severity    string `json:"severity"`
	Urgency     string `json:"urgency"`
	Certainty   string `json:"certainty"`
	Headline    string `json:"headline,omitempty"`
	Description string `json:"description,omitempty"`
	Instruction string `json:"instruction,omitempty"`
}

type alertView struct {
	ID          string     `json:"id"`
	Identifier  string     `json:"identifier"`
	Sender      string     `json:"sender"`
	Sent        time.Time  `json:"sent"`
	MsgType     string     `json:"msg_type"`
	Status      string     `json:"status"`
	Priority    string     `json:"priority"`
	Areas       []string   `json:"areas"`
	Channels    []string   `json:"channels"`
	Expires     time.Time  `json:"expires"`
	Issuer      string     `json:"issuer"`
	CreatedAt   time.Time  `json:"created_at"`
	PublishedAt *time.Time `json:"published_at,omitempty"`
	DecidedBy   string     `json:"decided_by,omitempty"`
	DecidedAt   *time.Time `json:"decided_at,omitempty"`
	Reason      string     `json:"reason,omitempty"`
	References  []string   `json:"references"`
	// Distribution is public, restricted, private, test or none.
	Distribution string `json:"distribution"`
	// ChainKey is the identifier of the chain's first alert: what makes an
	// Update or Cancel replace the earlier notification on the phone.
	ChainKey            string   `json:"chain_key"`
	Roles               []string `json:"roles,omitempty"`
	Note                string   `json:"note,omitempty"`
	UnmatchedAreas      []string `json:"unmatched_areas,omitempty"`
	UnmatchedAddresses  []string `json:"unmatched_addresses,omitempty"`
	UnmatchedReferences []string `json:"unmatched_references,omitempty"`
	// ForeignSenders: the senders of referenced alerts its issuer may not
	// post as (the alert then waits for an approver).
	ForeignSenders []string `json:"foreign_senders,omitempty"`
	// Detail only.
	Texts       []alertText `json:"texts,omitempty"`
	Updates     []string    `json:"updates,omitempty"`
	CancelledBy []string    `json:"cancelled_by,omitempty"`
	Stats       *Stats      `json:"stats,omitempty"`

	// The names of the officials behind Issuer, Sender and DecidedBy
	// (their sessions' principal ids), when an official it was.
	IssuerName    string `json:"issuer_name,omitempty"`
	SenderName    string `json:"sender_name,omitempty"`
	DecidedByName string `json:"decided_by_name,omitempty"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func newAlertView(a alert.StoredAlert) alertView {
	refs := a.RefIDs
	if refs == nil {
		refs = []string{}
	}
	return alertView{ID: a.ID, Identifier: a.CAPIdentifier, Sender: a.Sender, Sent: a.Sent.UTC(), MsgType: a.MsgType, Status: a.Status,
		Priority: a.Priority, Areas: a.AreaCodes, Channels: a.Channels, Expires: a.ExpiresAt, Issuer: a.Issuer, CreatedAt: a.CreatedAt,
		PublishedAt: optTime(a.PublishedAt), DecidedBy: a.DecidedBy, DecidedAt: optTime(a.DecidedAt), Reason: a.Reason, References: refs,
		Distribution: a.Distribution, ChainKey: a.ChainKey, Roles: a.Audience.Roles, Note: alertNote(a),
		UnmatchedAreas: a.Notes.UnmatchedAreas, UnmatchedAddresses: a.Notes.UnmatchedAddresses, UnmatchedReferences: a.Notes.UnmatchedRefs,
		ForeignSenders: a.Notes.ForeignSenders}
}

// checkAlertReader refuses a session whose official is neither an
// approver, nor an alert issuer (who follows the alerts, and updates or
// cancels them), nor an operator (who watches them being sent, as an ops
// key may).
func (h *handler) checkAlertReader(ctx context.Context) error {
	p, _ := principalFrom(ctx)
	if p.AccountID == "" {
		return nil
	}
	err := h.checkApprover(ctx, p)
	if err == nil || !errors.Is(err, accounts.ErrForbidden) {
		return err
	}
	if h.checkOfficialRole(ctx, p, accounts.RoleAlertIssuer, accounts.RoleOps) == nil {
		return nil
	}
	return err
}

// ownAlertsOnly is the principal id whose alerts alone the caller may
// read, or "" for every alert. An integrating system's key (alerts:issue
// or alerts:write, without ops) reads only what it posted itself: other
// senders' alerts, restricted and private ones among them, are none of
// its business. Officials allowed to read alerts (approvers, alert
// issuers, operators) and ops keys read them all.
func ownAlertsOnly(ctx context.Context) string {
	p, _ := principalFrom(ctx)
	if p.AccountID != "" || p.Has(ScopeOps) {
		return ""
	}
	return p.ID
}

func (h *handler) checkApprover(ctx context.Context, p Principal) error {
	if p.AccountID == "" {
		return &loa.Error{Code: loa.EForbidden, Detail: "approving alerts needs a signed-in official with the role broadcast_approver in the approval unit"}
	}
	if h.deps.Accounts == nil {
		return loa.Unavailable("accounts are not configured on this server")
	}
	return h.deps.Accounts.CheckApprover(ctx, p.AccountID)
}

// getAlert: GET /v1/alerts/{id}, with live counters and links.
func (h *handler) getAlert(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.alerts()
	if err != nil {
		return err
	}
	if err := h.checkAlertReader(r.Context()); err != nil {
		return err
	}
	d, err := svc.Get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	if own := ownAlertsOnly(r.Context()); own != "" && d.Issuer != own {
		return alert.ErrNotFound // another sender's alert: as if there were none
	}
	v := newAlertView(d.StoredAlert)
	for _, in := range d.Doc.Infos {
		v.Texts = append(v.Texts, alertText{Language: in.Language, Event: in.Event, Severity: string(in.Severity), Urgency: string(in.Urgency),
			Certainty: string(in.Certainty), Headline: in.Headline, Description: in.Description, Instruction: in.Instruction})
	}
	v.Updates, v.CancelledBy = d.Updates, d.CancelledBy
	h.names().alert(r.Context(), &v)
	st, err := h.requestStats(r, d.ID)
	if err != nil {
		return err
	}
	acks, err := svc.Acks(r.Context(), d.StoredAlert)
	if err != nil {
		return err
	}
	st.Acknowledged, st.Escalated = &acks.Acknowledged, &acks.Escalated
	v.Stats = &st
	writeJSON(w, http.StatusOK, v)
	return nil
}

// listAlerts: GET /v1/alerts?status=…&limit=…, newest first.
func (h *handler) listAlerts(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.alerts()
	if err != nil {
		return err
	}
	if err := h.checkAlertReader(r.Context()); err != nil {
		return err
	}
	status := r.URL.Query().Get("status")
	if status != "" && !slices.Contains(alert.Statuses, status) {
		return loa.InvalidFields(loa.FieldError{Field: "status", Detail: "must be one of " + strings.Join(alert.Statuses, ", ")})
	}
	limit := 50
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 500 {
			return loa.InvalidFields(loa.FieldError{Field: "limit", Detail: "must be a whole number from 1 to 500"})
		}
		limit = n
	}
	list, err := svc.List(r.Context(), status, ownAlertsOnly(r.Context()), limit)
	if err != nil {
		return err
	}
	items := make([]alertView, len(list))
	names := h.names()
	for i, a := range list {
		items[i] = newAlertView(a)
		names.alert(r.Context(), &items[i])
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
	return nil
}

// approveAlert: POST /v1/alerts/{id}/approve by an approver who is not
// the issuer; the alert is sent.
func (h *handler) approveAlert(w http.ResponseWriter, r *http.Request) error {
	return h.decideAlert(w, r, true)
}

// rejectAlert: POST /v1/alerts/{id}/reject {reason}.
func (h *handler) rejectAlert(w http.ResponseWriter, r *http.Request) error {
	return h.decideAlert(w, r, false)
}

func (h *handler) decideAlert(w http.ResponseWriter, r *http.Request, approve bool) error {
	svc, err := h.alerts()
	if err != nil {
		return err
	}
	p, _ := principalFrom(r.Context())
	if err := h.checkApprover(r.Context(), p); err != nil {
		return err
	}
	by := alert.Approver{ID: p.ID, Actor: p.AccountID}
	id := chi.URLParam(r, "id")
	// An official's alert: the approver must also be independent of the
	// issuer (never created their account nor granted their roles).
	if d, err := svc.Get(r.Context(), id); err == nil && strings.HasPrefix(d.Issuer, sessionPrincipalPrefix) {
		if err := h.deps.Accounts.CheckApprover(r.Context(), p.AccountID, strings.TrimPrefix(d.Issuer, sessionPrincipalPrefix)); err != nil {
			return err
		}
	}
	var st alert.StoredAlert
	if approve {
		st, err = svc.Approve(r.Context(), id, by)
		if errors.Is(err, alert.ErrPublish) {
			h.log.Error("publishing an approved alert failed", "alert", id, "error", err)
			return loa.Unavailable("the alert is approved but could not be queued; approve it again to retry")
		}
	} else {
		var req struct {
			Reason string `json:"reason"`
		}
		if err := decodeJSON(w, r, h.deps.MaxBodyBytes, &req); err != nil {
			return err
		}
		req.Reason = strings.TrimSpace(req.Reason)
		if req.Reason == "" || len([]rune(req.Reason)) > 1000 {
			return loa.InvalidFields(loa.FieldError{Field: "reason", Detail: "a reason of at most 1000 characters is required"})
		}
		st, err = svc.Reject(r.Context(), id, by, req.Reason)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newAlertView(st))
	return nil
}

// ackMyAlert: POST /v1/me/alerts/{id}/ack — a citizen or an official
// acknowledges an alert they received; their phone is then left out of
// the alert's escalation. Acknowledging again is fine.
func (h *handler) ackMyAlert(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.alerts()
	if err != nil {
		return err
	}
	id := chi.URLParam(r, "id")
	first, err := svc.Ack(r.Context(), id, me(r), alert.AckViaSession)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"alert_id": id, "acknowledged": true, "first": first})
	return nil
}

type deviceAckRequest struct {
	DeviceToken string `json:"device_token"`
	Ack         string `json:"ack"`
}

// ackAlertByDevice: POST /v1/alerts/{id}/ack {device_token, ack} — the
// acknowledgement of an app without a session, proved by the ack token
// its push carried. Anything else — an unknown alert, a token the alert
// did not go to, a forged ack — is the same 404, so the form tells a
// stranger nothing about alerts or devices.
func (h *handler) ackAlertByDevice(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.alerts()
	if err != nil {
		return err
	}
	var req deviceAckRequest
	if err := decodeJSON(w, r, 4096, &req); err != nil {
		return err
	}
	var errs []loa.FieldError
	if req.DeviceToken == "" {
		errs = append(errs, loa.FieldError{Field: "device_token", Detail: "is required"})
	}
	if req.Ack == "" {
		errs = append(errs, loa.FieldError{Field: "ack", Detail: "is required: the \"ack\" value of the alert's push"})
	}
	if errs != nil {
		return loa.InvalidFields(errs...)
	}
	id := chi.URLParam(r, "id")
	first, err := svc.AckByDevice(r.Context(), id, req.DeviceToken, req.Ack)
	if errors.Is(err, alert.ErrNoAck) {
		return loa.NotFound("acknowledgement not found")
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"alert_id": id, "acknowledged": true, "first": first})
	return nil
}
