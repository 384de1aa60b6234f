package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/internal/phone"
)

// me returns the signed-in account id (routes are behind requireSession).
func me(r *http.Request) string {
	p, _ := principalFrom(r.Context())
	return p.AccountID
}

type roleView struct {
	Unit string `json:"unit"`
	Role string `json:"role"`
}

func rolesView(gs []accounts.RoleGrant) []roleView {
	out := make([]roleView, len(gs))
	for i, g := range gs {
		out[i] = roleView{Unit: g.Unit, Role: string(g.Role)}
	}
	return out
}

// getMe: GET /v1/me.
func (h *handler) getMe(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.accountsService()
	if err != nil {
		return err
	}
	a, err := svc.Account(r.Context(), me(r))
	if err != nil {
		return err
	}
	roles, err := svc.Roles(r.Context(), a.ID)
	if err != nil {
		return err
	}
	subs, err := svc.Subscriptions(r.Context(), a.ID)
	if err != nil {
		return err
	}
	v := map[string]any{"id": a.ID, "kind": a.Kind, "status": a.Status, "full_name": a.FullName, "phone": phone.Mask(a.Phone),
		"roles": rolesView(roles), "subscriptions": subs}
	for k, s := range map[string]string{"username": a.Username, "citizen_id": a.CitizenID, "tax_code": a.TaxCode, "unit": a.Unit} {
		if s != "" {
			v[k] = s
		}
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

type passwordRequest struct {
	Old string `json:"old"`
	New string `json:"new"`
}

// changePassword: POST /v1/me/password; allowed to restricted sessions.
// Every session of the account ends; the answer holds a new one.
func (h *handler) changePassword(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.accountsService()
	if err != nil {
		return err
	}
	var req passwordRequest
	if err := decodeJSON(w, r, h.deps.MaxBodyBytes, &req); err != nil {
		return err
	}
	res, err := svc.ChangePassword(r.Context(), me(r), req.Old, req.New, h.clientIP(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sessionView{Token: res.Token, ExpiresAt: res.ExpiresAt.UTC(), AccountID: res.Account.ID, Kind: string(res.Account.Kind)})
	return nil
}

// beginTOTP: POST /v1/me/totp.
func (h *handler) beginTOTP(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.accountsService()
	if err != nil {
		return err
	}
	en, err := svc.BeginTOTP(r.Context(), me(r), h.clientIP(r))
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, map[string]any{"factor_id": en.FactorID, "otpauth_uri": en.URI, "secret": en.Secret,
		"qr_png": base64.StdEncoding.EncodeToString(en.PNG), "status": "pending"})
	return nil
}

type codeRequest struct {
	Code string `json:"code"`
	// Current proves the authenticator being replaced: one of its codes,
	// or a recovery code.
	Current string `json:"current"`
}

// confirmTOTP: POST /v1/me/totp/confirm.
func (h *handler) confirmTOTP(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.accountsService()
	if err != nil {
		return err
	}
	var req codeRequest
	if err := decodeJSON(w, r, h.deps.MaxBodyBytes, &req); err != nil {
		return err
	}
	codes, err := svc.ConfirmTOTP(r.Context(), me(r), req.Code, req.Current, h.clientIP(r))
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"status": "active", "recovery_codes": codes})
	return nil
}

type deviceRequest struct {
	Token    string `json:"token"`
	App      string `json:"app"`
	Platform string `json:"platform"`
	// Proof is the device_proof pushed to the token when it was
	// registered to another account.
	Proof string `json:"proof"`
}

type deviceView struct {
	ID        string    `json:"id"`
	App       string    `json:"app"`
	Platform  string    `json:"platform"`
	CreatedAt time.Time `json:"created_at"`
}

// registerDevice: POST /v1/me/devices.
func (h *handler) registerDevice(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.accountsService()
	if err != nil {
		return err
	}
	var req deviceRequest
	if err := decodeJSON(w, r, h.deps.MaxBodyBytes, &req); err != nil {
		return err
	}
	d, err := svc.RegisterDevice(r.Context(), me(r), accounts.Device{Token: req.Token, App: req.App, Platform: req.Platform}, req.Proof, h.clientIP(r))
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/me/devices/"+d.ID)
	auditTarget(r, d.ID)
	writeJSON(w, http.StatusCreated, deviceView{ID: d.ID, App: d.App, Platform: d.Platform, CreatedAt: d.CreatedAt.UTC()})
	return nil
}

// deleteDevice: DELETE /v1/me/devices/{id}.
func (h *handler) deleteDevice(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.accountsService()
	if err != nil {
		return err
	}
	id := chi.URLParam(r, "id")
	if err := svc.RemoveDevice(r.Context(), me(r), id, h.clientIP(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type subscriptionsRequest struct {
	Areas  *[]string `json:"areas"`
	Topics *[]string `json:"topics"`
	// QuietHours: an object sets them, null clears them, absent keeps
	// what was set (an app that does not know them does not clear them).
	QuietHours json.RawMessage `json:"quiet_hours"`
}

// putSubscriptions: PUT /v1/me/subscriptions replaces both lists.
func (h *handler) putSubscriptions(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.accountsService()
	if err != nil {
		return err
	}
	var req subscriptionsRequest
	if err := decodeJSON(w, r, h.deps.MaxBodyBytes, &req); err != nil {
		return err
	}
	var errs []loa.FieldError
	if req.Areas == nil {
		errs = append(errs, loa.FieldError{Field: "areas", Detail: "is required (an empty list unsubscribes from every area)"})
	}
	if req.Topics == nil {
		errs = append(errs, loa.FieldError{Field: "topics", Detail: "is required (an empty list unsubscribes from every topic)"})
	}
	if errs != nil {
		return loa.InvalidFields(errs...)
	}
	sub := accounts.Subscriptions{Areas: *req.Areas, Topics: *req.Topics}
	switch q := bytes.TrimSpace(req.QuietHours); {
	case len(q) == 0:
		cur, err := h.deps.Store.Subscriptions(r.Context(), me(r))
		if err != nil {
			return err
		}
		sub.QuietHours = cur.QuietHours
	case string(q) != "null":
		var qh accounts.QuietHours
		dec := json.NewDecoder(bytes.NewReader(q))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&qh); err != nil {
			errs = append(errs, loa.FieldError{Field: "quiet_hours", Detail: `must be {"start": "HH:MM", "end": "HH:MM", "time_zone": "Asia/Ho_Chi_Minh"} or null`})
		}
		sub.QuietHours = &qh
	}
	if errs != nil {
		return loa.InvalidFields(errs...)
	}
	s, err := svc.SetSubscriptions(r.Context(), me(r), sub, h.clientIP(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s)
	return nil
}
