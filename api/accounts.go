package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/otp"
)

// Problem types of the accounts routes.
const (
	typeConflict2       = "urn:loa:problem:conflict"
	typeRateLimited     = "urn:loa:problem:rate-limited"
	typeBadCredentials  = "urn:loa:problem:invalid-credentials"
	typePending         = "urn:loa:problem:account-pending"
	typeFactorRequired  = "urn:loa:problem:second-factor-required"
	typeFactorRejected  = "urn:loa:problem:second-factor-rejected"
	typeLocked          = "urn:loa:problem:locked"
	typeCodeRejected    = "urn:loa:problem:code-rejected"
	typePasswordExpired = "urn:loa:problem:password-expired"
)

// accountsService returns the accounts service or a 503 when it is not
// configured (a handler built without it, as some tests do).
func (h *handler) accountsService() (*accounts.Service, error) {
	if h.deps.Accounts == nil {
		return nil, unavailable("accounts are not configured on this server")
	}
	return h.deps.Accounts, nil
}

// clientIP is the address per-IP limits and the audit log count: see
// TrustedProxies.ClientIP.
func (h *handler) clientIP(r *http.Request) string {
	return h.deps.TrustedProxies.ClientIP(r)
}

// accountsProblem turns the accounts domain's errors into problems; other
// errors pass through (and become 500).
func accountsProblem(err error) error {
	var (
		ve *accounts.ValidationError
		ce *accounts.ConflictError
		rl *accounts.RateLimitError
	)
	switch {
	case errors.As(err, &ve):
		fes := make([]FieldError, len(ve.Fields))
		for i, f := range ve.Fields {
			fes[i] = FieldError{Field: f.Field, Detail: f.Detail}
		}
		return invalid(fes...)
	case errors.As(err, &ce):
		return &Problem{Type: typeConflict2, Title: "Already registered", Status: http.StatusConflict, Field: ce.Field,
			Detail: fmt.Sprintf("an account with this %s already exists", strings.ReplaceAll(ce.Field, "_", " "))}
	case errors.As(err, &rl):
		secs := int((rl.RetryAfter + time.Second - 1) / time.Second)
		detail := "too many codes requested; retry later"
		switch {
		case errors.Is(err, accounts.ErrThrottled):
			detail = "too many failed sign-ins; wait before trying again"
		case errors.Is(err, otp.ErrCooldown):
			detail = "a code was sent to this phone moments ago; wait before asking for another"
		case errors.Is(err, otp.ErrTooManySends):
			detail = "too many codes were sent to this phone recently"
		case errors.Is(err, otp.ErrTooManyFromIP):
			detail = "too many codes were requested from this address recently"
		}
		return &Problem{Type: typeRateLimited, Title: "Too many requests", Status: http.StatusTooManyRequests, Detail: detail, RetryAfter: max(secs, 1)}
	case errors.Is(err, accounts.ErrBusy):
		return &Problem{Type: typeUnavailable, Title: "Busy", Status: http.StatusServiceUnavailable, RetryAfter: 1,
			Detail: "too many password checks are under way; retry in a moment"}
	case errors.Is(err, accounts.ErrBadCredentials):
		return &Problem{Type: typeBadCredentials, Title: "Sign-in failed", Status: http.StatusUnauthorized,
			Detail: "the user name or the password is wrong"}
	case errors.Is(err, accounts.ErrPending):
		return &Problem{Type: typePending, Title: "Account not verified", Status: http.StatusForbidden,
			Detail: "the account's phone is not verified yet; verify it with the SMS code"}
	case errors.Is(err, accounts.ErrSecondFactorRequired):
		return &Problem{Type: typeFactorRequired, Title: "Second factor required", Status: http.StatusUnauthorized, Field: "otp",
			Detail: "officials sign in with a second factor: send otp (authenticator or recovery code), or send_code push|sms to be sent one"}
	case errors.Is(err, accounts.ErrSecondFactor):
		return &Problem{Type: typeFactorRejected, Title: "Second factor rejected", Status: http.StatusUnauthorized, Field: "otp",
			Detail: "the code is wrong, already used or expired"}
	case errors.Is(err, accounts.ErrLocked):
		return &Problem{Type: typeLocked, Title: "Locked", Status: http.StatusTooManyRequests, RetryAfter: int(otp.DefaultTOTPLockDuration / time.Second),
			Detail: "too many wrong codes; the factor is locked for a while"}
	case errors.Is(err, accounts.ErrCode):
		detail := "the code is wrong"
		switch {
		case errors.Is(err, otp.ErrExpired):
			detail = "the code has expired; ask for a new one"
		case errors.Is(err, otp.ErrVoid):
			detail = "the code can no longer be used (already used, replaced by a newer code, or too many wrong tries); ask for a new one"
		case errors.Is(err, otp.ErrNotFound):
			detail = "no such challenge; ask for a new code"
		case !errors.Is(err, otp.ErrWrongCode):
			detail = "the code was not sent for this purpose"
		}
		return &Problem{Type: typeCodeRejected, Title: "Code rejected", Status: http.StatusUnprocessableEntity, Field: "code", Detail: detail}
	case errors.Is(err, accounts.ErrNoFactor):
		return &Problem{Type: typeConflict2, Title: "No enrolment in progress", Status: http.StatusConflict,
			Detail: "start an enrolment with POST /v1/me/totp first"}
	case errors.Is(err, accounts.ErrFourEyes):
		return &Problem{Type: typeFourEyes, Title: "Four eyes", Status: http.StatusForbidden,
			Detail: strings.TrimPrefix(err.Error(), accounts.ErrFourEyes.Error()+": ")}
	case errors.Is(err, accounts.ErrForbidden):
		return &Problem{Type: typeForbidden, Title: "Forbidden", Status: http.StatusForbidden,
			Detail: strings.TrimPrefix(strings.TrimPrefix(err.Error(), accounts.ErrForbidden.Error()), ": ")}
	case errors.Is(err, accounts.ErrNotFound):
		return notFound("account")
	}
	return err
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
		return accountsProblem(err)
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
		return accountsProblem(err)
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
		if p, ok := accountsProblem(reg.CodeErr).(*Problem); ok && p.RetryAfter > 0 {
			w.Header().Set("Retry-After", fmt.Sprint(p.RetryAfter))
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
	var errs []FieldError
	if strings.TrimSpace(req.ChallengeID) == "" {
		errs = append(errs, FieldError{Field: "challenge_id", Detail: "is required"})
	}
	if c := strings.TrimSpace(req.Code); len(c) != otp.SMSCodeDigits || strings.Trim(c, "0123456789") != "" {
		errs = append(errs, FieldError{Field: "code", Detail: "must be the 6-digit code of the SMS"})
	}
	if errs != nil {
		return invalid(errs...)
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
			return notFound("pending " + string(kind) + " " + id)
		}
		if err != nil {
			return accountsProblem(err)
		}
		writeJSON(w, http.StatusOK, map[string]string{"id": a.ID, "status": string(a.Status)})
		return nil
	}
}
