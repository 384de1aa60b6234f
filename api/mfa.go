package api

import (
	"errors"
	"net/http"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/accounts"
)

type mfaChallengeRequest struct {
	User   string `json:"user"`
	Method string `json:"method"`
}

// mfaChallenge: POST /v1/mfa/challenge sends an official a code (scope
// mfa:verify).
func (h *handler) mfaChallenge(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.accountsService()
	if err != nil {
		return err
	}
	var req mfaChallengeRequest
	if err := decodeJSON(w, r, h.deps.MaxBodyBytes, &req); err != nil {
		return err
	}
	sent, err := svc.Challenge(r.Context(), h.actorOf(r), req.User, req.Method)
	if errors.Is(err, accounts.ErrNotFound) {
		return loa.NotFound("official not found")
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"method": sent.Method, "expires_at": sent.ExpiresAt.UTC()})
	return nil
}

type mfaVerifyRequest struct {
	User string `json:"user"`
	Code string `json:"code"`
}

// mfaVerify: POST /v1/mfa/verify checks an official's code for a shared
// app (scope mfa:verify). A wrong code is 422, not 401: the calling
// system's own credentials are fine.
func (h *handler) mfaVerify(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.accountsService()
	if err != nil {
		return err
	}
	var req mfaVerifyRequest
	if err := decodeJSON(w, r, h.deps.MaxBodyBytes, &req); err != nil {
		return err
	}
	a, err := svc.VerifyMFA(r.Context(), h.actorOf(r), req.User, req.Code)
	if err != nil {
		return err
	}
	auditTarget(r, a.ID)
	writeJSON(w, http.StatusOK, map[string]any{"verified": true, "account_id": a.ID, "username": a.Username})
	return nil
}
