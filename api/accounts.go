package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/otp"
)

// accountsService returns the accounts service or a 503 when it is not
// configured (a handler built without it, as some tests do).
func (h *handler) accountsService() (*accounts.Service, error) {
	if h.deps.Accounts == nil {
		return nil, loa.Unavailable("accounts are not configured on this server")
	}
	return h.deps.Accounts, nil
}

// clientIP is the address per-IP limits and the audit log count: see
// TrustedProxies.ClientIP.
func (h *handler) clientIP(r *http.Request) string {
	return h.deps.TrustedProxies.ClientIP(r)
}

type citizenRequest struct {
	FullName  string `json:"full_name"`
	CitizenID string `json:"citizen_id"`
	Phone     string `json:"phone"`
	Password  string `json:"password"`
}

type organisationRequest struct {
	Name     string `json:"name"`
	TaxCode  string `json:"tax_code"`
	Phone    string `json:"phone"`
	Password string `json:"password"`
}

type registrationView struct {
	ID          string     `json:"id"`
	Status      string     `json:"status"`
	ChallengeID string     `json:"challenge_id,omitempty"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	CodeSent    bool       `json:"code_sent"`
	Detail      string     `json:"detail,omitempty"`
}

// registerCitizen: POST /v1/citizens.
func (h *handler) registerCitizen(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.accountsService()
	if err != nil {
		return err
	}
	var req citizenRequest
	if err := decodeJSON(w, r, h.deps.MaxBodyBytes, &req); err != nil {
		return err
	}
	reg, err := svc.RegisterCitizen(r.Context(), accounts.CitizenRegistration{FullName: req.FullName, CitizenID: req.CitizenID,
		Phone: req.Phone, Password: req.Password, IP: h.clientIP(r)})
	if err != nil {
		return err
	}
	h.writeRegistration(w, r, "/v1/citizens/", reg)
	return nil
}

// registerOrganisation: POST /v1/organisations.
func (h *handler) registerOrganisation(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.accountsService()
	if err != nil {
		return err
	}
	var req organisationRequest
	if err := decodeJSON(w, r, h.deps.MaxBodyBytes, &req); err != nil {
		return err
	}
	reg, err := svc.RegisterOrganisation(r.Context(), accounts.OrganisationRegistration{Name: req.Name, TaxCode: req.TaxCode,
		Phone: req.Phone, Password: req.Password, IP: h.clientIP(r)})
	if err != nil {
		return err
	}
	h.writeRegistration(w, r, "/v1/organisations/", reg)
	return nil
}

func (h *handler) writeRegistration(w http.ResponseWriter, r *http.Request, base string, reg accounts.Registration) {
	v := registrationView{ID: reg.AccountID, Status: string(reg.Status), CodeSent: reg.CodeErr == nil}
	if reg.CodeErr == nil {
		exp := reg.Challenge.ExpiresAt.UTC()
		v.ChallengeID, v.ExpiresAt = reg.Challenge.ID, &exp
	} else {
		// The account exists; the code can be asked for again with
		// POST /v1/otp/sms {phone, purpose: "register"}.
		v.Detail = "the account was created but the code could not be sent yet; request one with POST /v1/otp/sms"
		if p, ok := reg.CodeErr.(*loa.Error); ok && p.RetryAfter > 0 {
			w.Header().Set("Retry-After", fmt.Sprint(retryAfterSeconds(p.RetryAfter)))
		} else {
			h.log.Error("sending a registration code failed", "error", reg.CodeErr)
		}
	}
	w.Header().Set("Location", base+reg.AccountID)
	writeJSON(w, http.StatusCreated, v)
}

type verifyRequest struct {
	ChallengeID string `json:"challenge_id"`
	Code        string `json:"code"`
}

func (req verifyRequest) check() error {
	var errs []loa.FieldError
	if strings.TrimSpace(req.ChallengeID) == "" {
		errs = append(errs, loa.FieldError{Field: "challenge_id", Detail: "is required"})
	}
	if c := strings.TrimSpace(req.Code); len(c) != otp.SMSCodeDigits || strings.Trim(c, "0123456789") != "" {
		errs = append(errs, loa.FieldError{Field: "code", Detail: "must be the 6-digit code of the SMS"})
	}
	if errs != nil {
		return loa.InvalidFields(errs...)
	}
	return nil
}

// verifyAccount: POST /v1/citizens/{id}/verify and
// /v1/organisations/{id}/verify.
func (h *handler) verifyAccount(kind accounts.Kind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		svc, err := h.accountsService()
		if err != nil {
			return err
		}
		var req verifyRequest
		if err := decodeJSON(w, r, h.deps.MaxBodyBytes, &req); err != nil {
			return err
		}
		if err := req.check(); err != nil {
			return err
		}
		id := chi.URLParam(r, "id")
		a, err := svc.Account(r.Context(), id)
		if err == nil && a.Kind != kind {
			err = accounts.ErrNotFound
		}
		if err == nil {
			a, err = svc.VerifyRegistration(r.Context(), id, strings.TrimSpace(req.ChallengeID), strings.TrimSpace(req.Code), h.clientIP(r))
		}
		if errors.Is(err, accounts.ErrNotFound) {
			return loa.NotFound("pending %s not found", string(kind)+" "+id)
		}
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]string{"id": a.ID, "status": string(a.Status)})
		return nil
	}
}
