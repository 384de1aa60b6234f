package api

import (
	"net/http"
	"strings"
)

type smsCodeRequest struct {
	Phone   string `json:"phone"`
	Purpose string `json:"purpose"`
}

// sendSMSCode: POST /v1/otp/sms sends a code (limited per phone and per
// client address).
func (h *handler) sendSMSCode(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.accountsService()
	if err != nil {
		return err
	}
	var req smsCodeRequest
	if err := decodeJSON(w, r, h.deps.MaxBodyBytes, &req); err != nil {
		return err
	}
	ch, err := svc.SendCode(r.Context(), req.Phone, req.Purpose, h.clientIP(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"challenge_id": ch.ID, "expires_at": ch.ExpiresAt.UTC()})
	return nil
}

// verifySMSCode: POST /v1/otp/sms/verify.
func (h *handler) verifySMSCode(w http.ResponseWriter, r *http.Request) error {
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
	ch, err := svc.CheckCode(r.Context(), strings.TrimSpace(req.ChallengeID), strings.TrimSpace(req.Code))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"verified": true, "phone": ch.Phone, "purpose": ch.Purpose})
	return nil
}
