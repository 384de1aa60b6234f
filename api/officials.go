package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/loa-hub/loa/accounts"
)

// requireOfficialsAdmin admits callers who administer officials: an API
// key with the admin scope, or an unrestricted session of an official
// with the admin or unit_admin role. It runs before the body is read, so
// anyone else gets 401 or 403 whatever they send; which unit and which
// role each may touch is the accounts service's decision.
func (h *handler) requireOfficialsAdmin() func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return h.requireActor()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			svc, err := h.accountsService()
			if err != nil {
				h.writeError(w, r, err)
				return
			}
			if err := svc.MayAdministerOfficials(r.Context(), h.actorOf(r)); err != nil {
				h.writeError(w, r, err)
				return
			}
			next.ServeHTTP(w, r)
		}))
	}
}

type officialRequest struct {
	Username string   `json:"username"`
	FullName string   `json:"full_name"`
	Phone    string   `json:"phone"`
	Email    string   `json:"email"`
	Unit     string   `json:"unit"`
	Roles    []string `json:"roles"`
	Password string   `json:"password"`
}

// createOfficial: POST /v1/officials (admin anywhere, unit_admin in their
// unit, or an API key with the admin scope).
func (h *handler) createOfficial(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.accountsService()
	if err != nil {
		return err
	}
	var req officialRequest
	if err := decodeJSON(w, r, h.deps.MaxBodyBytes, &req); err != nil {
		return err
	}
	roles := make([]accounts.Role, len(req.Roles))
	for i, x := range req.Roles {
		roles[i] = accounts.Role(x)
	}
	out, err := svc.CreateOfficial(r.Context(), h.actorOf(r), accounts.NewOfficial{Username: req.Username, FullName: req.FullName,
		Phone: req.Phone, Email: req.Email, Unit: req.Unit, Roles: roles, Password: req.Password})
	if err != nil {
		return err
	}
	v := map[string]any{"id": out.Account.ID, "username": out.Account.Username, "unit": out.Account.Unit, "status": out.Account.Status,
		"roles": rolesView(out.Roles)}
	if out.OneTimePassword != "" {
		w.Header().Set("Cache-Control", "no-store")
		v["one_time_password"] = out.OneTimePassword
	}
	auditTarget(r, out.Account.ID)
	w.Header().Set("Location", "/v1/officials/"+out.Account.ID)
	writeJSON(w, http.StatusCreated, v)
	return nil
}

type roleRequest struct {
	Unit string `json:"unit"`
	Role string `json:"role"`
}

// grantRole: POST /v1/officials/{id}/roles.
func (h *handler) grantRole(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.accountsService()
	if err != nil {
		return err
	}
	var req roleRequest
	if err := decodeJSON(w, r, h.deps.MaxBodyBytes, &req); err != nil {
		return err
	}
	id := chi.URLParam(r, "id")
	grants, err := svc.GrantRole(r.Context(), h.actorOf(r), id, accounts.RoleGrant{Unit: req.Unit, Role: accounts.Role(req.Role)})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "roles": rolesView(grants)})
	return nil
}

// revokeRole: DELETE /v1/officials/{id}/roles/{unit}/{role}.
func (h *handler) revokeRole(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.accountsService()
	if err != nil {
		return err
	}
	id := chi.URLParam(r, "id")
	g := accounts.RoleGrant{Unit: chi.URLParam(r, "unit"), Role: accounts.Role(chi.URLParam(r, "role"))}
	if err := svc.RevokeRole(r.Context(), h.actorOf(r), id, g); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// closeOfficial: POST /v1/officials/{id}/close.
func (h *handler) closeOfficial(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.accountsService()
	if err != nil {
		return err
	}
	id := chi.URLParam(r, "id")
	if err := svc.CloseOfficial(r.Context(), h.actorOf(r), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// resetOfficialPassword: POST /v1/officials/{id}/password-reset. It reads
// no body; the one-time password is in the answer, once.
func (h *handler) resetOfficialPassword(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.accountsService()
	if err != nil {
		return err
	}
	id := chi.URLParam(r, "id")
	pw, err := svc.ResetOfficialPassword(r.Context(), h.actorOf(r), id)
	if err != nil {
		return err
	}
	auditTarget(r, id)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "one_time_password": pw})
	return nil
}
