package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/accounts"
)

// authenticateSession resolves a session token.
func (h *handler) authenticateSession(r *http.Request, token string) (Principal, error) {
	sess, err := h.deps.Accounts.Authenticate(r.Context(), token)
	if errors.Is(err, accounts.ErrNotFound) {
		return Principal{}, errBadSession
	}
	if err != nil {
		return Principal{}, err
	}
	return Principal{ID: sessionPrincipalPrefix + sess.AccountID, Name: string(sess.Kind) + " " + sess.AccountID,
		AccountID: sess.AccountID, Kind: string(sess.Kind), Restricted: sess.Restricted}, nil
}

// sessionPrincipalPrefix begins the principal id of a session: the
// account id follows.
const sessionPrincipalPrefix = "session:"

// requireSession admits signed-in accounts only: 401 without a valid
// session, 403 for an API key, and 403 for a restricted session (expired
// password) unless allowRestricted.
func (h *handler) requireSession(allowRestricted bool) func(http.Handler) http.Handler {
	return h.requirePrincipal(func(p Principal) *loa.Error {
		switch {
		case p.AccountID == "":
			return &loa.Error{Code: loa.EForbidden, Detail: "this route is for signed-in accounts; sign in with POST /v1/sessions and send the session token"}
		case p.Restricted && !allowRestricted:
			return &loa.Error{Code: loa.EPasswordExpired, Detail: "the password has expired; change it with POST /v1/me/password first"}
		}
		return nil
	})
}

// requireActor admits an API key, or an unrestricted session; the accounts
// service decides what each may do.
func (h *handler) requireActor() func(http.Handler) http.Handler {
	return h.requirePrincipal(func(p Principal) *loa.Error {
		if p.Restricted {
			return &loa.Error{Code: loa.EPasswordExpired, Detail: "the password has expired; change it with POST /v1/me/password first"}
		}
		return nil
	})
}

func (h *handler) requirePrincipal(check func(Principal) *loa.Error) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, err := h.authenticate(r)
			if err != nil {
				h.writeAuthError(w, r, err)
				return
			}
			if prob := check(p); prob != nil {
				h.writeError(w, r, prob)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
		})
	}
}

// actorOf is the accounts service's view of the caller.
func (h *handler) actorOf(r *http.Request) accounts.Actor {
	p, _ := principalFrom(r.Context())
	a := accounts.Actor{IP: h.clientIP(r)}
	if p.AccountID != "" {
		a.AccountID = p.AccountID
	} else {
		a.APIKeyID, a.Admin = p.ID, p.Has(ScopeAdmin)
	}
	return a
}

type sessionRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	IDToken  string `json:"id_token"`
	OTP      string `json:"otp"`
	SendCode string `json:"send_code"`
	// ClientKey is the client_key of this client's last sign-in.
	ClientKey string `json:"client_key"`
}

type sessionView struct {
	Token           string    `json:"token"`
	ExpiresAt       time.Time `json:"expires_at"`
	PasswordExpired bool      `json:"password_expired"`
	AccountID       string    `json:"account_id"`
	Kind            string    `json:"kind"`
	// ClientKey, after a password sign-in: send it with the next
	// sign-ins, whose failures then count apart from strangers'.
	ClientKey string `json:"client_key,omitempty"`
}

// createSession: POST /v1/sessions.
func (h *handler) createSession(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.accountsService()
	if err != nil {
		return err
	}
	var req sessionRequest
	if err := decodeJSON(w, r, h.deps.MaxBodyBytes, &req); err != nil {
		return err
	}
	res, err := svc.SignIn(r.Context(), accounts.SignInRequest{Username: req.Username, Password: req.Password, IDToken: req.IDToken,
		OTP: req.OTP, SendCode: req.SendCode, ClientKey: req.ClientKey, IP: h.clientIP(r)})
	if err != nil {
		return err
	}
	if res.CodeSent != nil {
		writeJSON(w, http.StatusAccepted, map[string]any{"second_factor_required": true, "code_sent": res.CodeSent.Method,
			"expires_at": res.CodeSent.ExpiresAt.UTC()})
		return nil
	}
	writeJSON(w, http.StatusCreated, sessionView{Token: res.Token, ExpiresAt: res.ExpiresAt.UTC(), PasswordExpired: res.PasswordExpired,
		AccountID: res.Account.ID, Kind: string(res.Account.Kind), ClientKey: res.ClientKey})
	return nil
}

// deleteSession: DELETE /v1/sessions/current signs out.
func (h *handler) deleteSession(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.accountsService()
	if err != nil {
		return err
	}
	_, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if err := svc.SignOut(r.Context(), strings.TrimSpace(token), h.clientIP(r)); err != nil {
		if errors.Is(err, accounts.ErrNotFound) {
			return errBadSession
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
