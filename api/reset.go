package api

import (
	"net/http"

	"github.com/loa-hub/loa/accounts"
)

type resetRequest struct {
	Username string `json:"username"`
	// ClientKey is the client_key of this client's last sign-in.
	ClientKey string `json:"client_key"`
}

type resetConfirmation struct {
	ChallengeID string `json:"challenge_id"`
	Code        string `json:"code"`
	Password    string `json:"password"`
	OTP         string `json:"otp"`
}

// requestPasswordReset: POST /v1/password-reset. An address that must
// wait after wrong reset codes is refused before the body is read.
func (h *handler) requestPasswordReset(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.accountsService()
	if err != nil {
		return err
	}
	ip := h.clientIP(r)
	if err := svc.CheckResetAddress(r.Context(), ip); err != nil {
		return err
	}
	var req resetRequest
	if err := decodeJSON(w, r, h.deps.MaxBodyBytes, &req); err != nil {
		return err
	}
	ch, err := svc.RequestResetWith(r.Context(), accounts.ResetRequest{Username: req.Username, ClientKey: req.ClientKey, IP: ip})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"challenge_id": ch.ID, "expires_at": ch.ExpiresAt.UTC()})
	return nil
}

// confirmPasswordReset: POST /v1/password-reset/confirm. An address that
// must wait after wrong reset codes is refused before the body is read.
func (h *handler) confirmPasswordReset(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.accountsService()
	if err != nil {
		return err
	}
	ip := h.clientIP(r)
	if err := svc.CheckResetAddress(r.Context(), ip); err != nil {
		return err
	}
	var req resetConfirmation
	if err := decodeJSON(w, r, h.deps.MaxBodyBytes, &req); err != nil {
		return err
	}
	err = svc.ConfirmReset(r.Context(), accounts.ResetConfirmation{ChallengeID: req.ChallengeID, Code: req.Code,
		Password: req.Password, OTP: req.OTP, IP: ip})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
