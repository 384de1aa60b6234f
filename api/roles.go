package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/accounts"
)

// requireRole admits the unrestricted session of an official holding one
// of roles (in any unit): 401 without a valid session, 403 for an API key,
// a citizen, or an official without the role. It runs before the body is
// read; what the role allows in which unit (four eyes, the approval unit)
// stays the domain's decision.
func (h *handler) requireRole(roles ...accounts.Role) func(http.Handler) http.Handler {
	return h.requireOfficial(func(ctx context.Context, p Principal) *loa.Error {
		grants, err := h.deps.Accounts.Roles(ctx, p.AccountID)
		if err != nil {
			return unchecked(err)
		}
		return lacksRole(grants, roles)
	})
}

// lacksRole is nil when grants hold one of roles (in any unit), and
// otherwise the refusal naming them.
func lacksRole(grants []accounts.RoleGrant, roles []accounts.Role) *loa.Error {
	for _, g := range grants {
		if slices.Contains(roles, g.Role) {
			return nil
		}
	}
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r)
	}
	return &loa.Error{Code: loa.EForbidden, Detail: "this route needs an official with the role " + strings.Join(names, " or ")}
}

// requireApprover admits an official who may approve (the
// broadcast_approver role in the approval unit), before the body is read;
// whether they may decide on one request in particular is checked later.
func (h *handler) requireApprover() func(http.Handler) http.Handler {
	return h.requireOfficial(func(ctx context.Context, p Principal) *loa.Error {
		err := h.checkApprover(ctx, p)
		if err == nil {
			return nil
		}
		if prob, ok := errors.AsType[*loa.Error](err); ok && prob.Code != loa.EInternal {
			return prob
		}
		return unchecked(err)
	})
}

// unchecked is the refusal of a request whose caller's roles could not be
// read: the check fails closed, before the body is read, never passing
// the request on to a handler that may not check again.
func unchecked(err error) *loa.Error {
	return &loa.Error{Code: loa.EUnavailable, Detail: "the caller's roles could not be checked; retry", Err: err}
}

// requireOfficial admits an unrestricted official's session that passes
// check (nil: any official).
func (h *handler) requireOfficial(check func(context.Context, Principal) *loa.Error) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return h.requireSession(false)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, _ := principalFrom(r.Context())
			if p.Kind != string(accounts.KindOfficial) {
				h.writeError(w, r, &loa.Error{Code: loa.EForbidden, Detail: "this route is for officials"})
				return
			}
			if h.deps.Accounts == nil {
				h.writeError(w, r, loa.Unavailable("accounts are not configured on this server"))
				return
			}
			if check == nil {
				next.ServeHTTP(w, r)
				return
			}
			if prob := check(r.Context(), p); prob != nil {
				h.writeError(w, r, prob)
				return
			}
			next.ServeHTTP(w, r)
		}))
	}
}
