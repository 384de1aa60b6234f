package api

import (
	"errors"
	"net/http"
	"strings"

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
	// ClientKey is the client_key the reset was requested with.
	ClientKey string `json:"client_key"`
}

// resetWaitBodyBytes bounds what is read of a reset request or
// confirmation from an address that must wait: enough for a user name,
// a password, the codes and a client key, read only to find the key that
// lets the account's own client pass the wait.
const resetWaitBodyBytes = 8 << 10

// readReset decodes a reset body. While the client's address must wait
// after wrong reset codes (a stranger's, behind the same NAT) the body
// is read only up to resetWaitBodyBytes, and a body without a client_key
// is refused with the address's wait: only the account's own client,
// whose key the service then checks, passes it.
func (h *handler) readReset(w http.ResponseWriter, r *http.Request, svc *accounts.Service, ip string, v any, key func() string) error {
	wait := svc.CheckResetAddress(r.Context(), ip)
	if wait == nil {
		return decodeJSON(w, r, h.deps.MaxBodyBytes, v)
	}
	if !errors.Is(wait, accounts.ErrTooManyWrongCodes) {
		return wait
	}
	if err := decodeJSON(w, r, min(h.deps.MaxBodyBytes, resetWaitBodyBytes), v); err != nil || strings.TrimSpace(key()) == "" {
		return wait
	}
	return nil
}

// requestPasswordReset: POST /v1/password-reset. An address that must
// wait after wrong reset codes is refused unless the body (read up to
// resetWaitBodyBytes) carries a client_key, which the service checks.
func (h *handler) requestPasswordReset(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.accountsService()
	if err != nil {
		return err
	}
	ip := h.clientIP(r)
	var req resetRequest
	if err := h.readReset(w, r, svc, ip, &req, func() string { return req.ClientKey }); err != nil {
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
// must wait after wrong reset codes is refused as for the request.
func (h *handler) confirmPasswordReset(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.accountsService()
	if err != nil {
		return err
	}
	ip := h.clientIP(r)
	var req resetConfirmation
	if err := h.readReset(w, r, svc, ip, &req, func() string { return req.ClientKey }); err != nil {
		return err
	}
	err = svc.ConfirmReset(r.Context(), accounts.ResetConfirmation{ChallengeID: req.ChallengeID, Code: req.Code,
		Password: req.Password, OTP: req.OTP, ClientKey: req.ClientKey, IP: ip})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
