package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/producer/broadcast"
	"github.com/loa-hub/loa/producer/feedback"
	"github.com/loa-hub/loa/producer/portal"
)

// A capability names what a client (the console) may offer an official:
// each is answered by the very check that guards the API routes behind
// it, so a client that offers exactly these never offers a route the API
// refuses, nor hides one it allows. What a check cannot know before the
// request — four eyes on one broadcast, the unit of one category — stays
// the route's answer.
type capability struct {
	name string
	// may is the routes' check: nil admits, an EForbidden refuses.
	may func(ctx context.Context, h *handler, r *http.Request, p Principal, grants []accounts.RoleGrant) error
}

func roleCheck(roles ...accounts.Role) func(context.Context, *handler, *http.Request, Principal, []accounts.RoleGrant) error {
	return func(_ context.Context, _ *handler, _ *http.Request, _ Principal, grants []accounts.RoleGrant) error {
		if e := lacksRole(grants, roles); e != nil {
			return e
		}
		return nil
	}
}

var capabilities = []capability{
	// GET /v1/broadcasts, /v1/broadcasts/{id}, …/history (requireRole).
	{"broadcasts.read", roleCheck(broadcast.Readers()...)},
	// POST /v1/broadcasts, …/submit (requireRole).
	{"broadcasts.draft", roleCheck(accounts.RoleAgencySubmitter)},
	// POST /v1/broadcasts/{id}/cancel (requireRole; the service then
	// admits the author or an approver).
	{"broadcasts.cancel", roleCheck(accounts.RoleAgencySubmitter, accounts.RoleBroadcastApprover)},
	// GET /v1/approvals, POST …/approve|reject (requireApprover).
	{"approvals", func(ctx context.Context, h *handler, _ *http.Request, p Principal, _ []accounts.RoleGrant) error {
		return h.checkApprover(ctx, p)
	}},
	// GET /v1/alerts, /v1/alerts/{id} (checkAlertReader).
	{"alerts.read", func(ctx context.Context, h *handler, _ *http.Request, _ Principal, _ []accounts.RoleGrant) error {
		return h.checkAlertReader(ctx)
	}},
	// POST /v1/alerts, /v1/alerts/cap (requireAlertIssuer).
	{"alerts.issue", func(ctx context.Context, h *handler, _ *http.Request, p Principal, _ []accounts.RoleGrant) error {
		return h.checkOfficialRole(ctx, p, accounts.RoleAlertIssuer)
	}},
	// GET /v1/feedback and a matter's steps (the feedback service).
	{"feedback", func(ctx context.Context, h *handler, r *http.Request, _ Principal, _ []accounts.RoleGrant) error {
		if h.deps.Feedback == nil {
			return errNoService
		}
		return h.deps.Feedback.MayHandle(ctx, h.feedbackActor(r))
	}},
	// GET /v1/portal/desk and the steps (requireEditor).
	{"portal", func(ctx context.Context, h *handler, r *http.Request, _ Principal, _ []accounts.RoleGrant) error {
		if h.deps.Portal == nil {
			return errNoService
		}
		return h.deps.Portal.MayEdit(ctx, h.portalActor(r))
	}},
	// POST /v1/portal/articles in some category (the portal service).
	{"portal.write", func(ctx context.Context, h *handler, r *http.Request, _ Principal, _ []accounts.RoleGrant) error {
		if h.deps.Portal == nil {
			return errNoService
		}
		if err := h.deps.Portal.MayEdit(ctx, h.portalActor(r)); err != nil {
			return err
		}
		return h.deps.Portal.MayWrite(ctx, h.portalActor(r))
	}},
	// /v1/ops/*, /v1/notifications/{id}/recipients (requireOps).
	{"ops", func(ctx context.Context, h *handler, _ *http.Request, p Principal, _ []accounts.RoleGrant) error {
		ok, err := h.mayOperate(ctx, p)
		if err == nil && !ok {
			err = loa.Forbidden("not an operator")
		}
		return err
	}},
	// GET /v1/audit (requireScopeOrAdmin).
	{"audit", func(ctx context.Context, h *handler, _ *http.Request, p Principal, _ []accounts.RoleGrant) error {
		ok, err := h.scopeOrAdmin(ctx, p, ScopeAudit)
		if err == nil && !ok {
			err = loa.Forbidden("not an administrator")
		}
		return err
	}},
}

// errNoService refuses a capability whose service this server lacks (its
// routes answer 503).
var errNoService = loa.Forbidden("not configured on this server")

// myCapabilities: GET /v1/me/capabilities — what the signed-in official
// may do, by the checks of the routes that do it.
func (h *handler) myCapabilities(w http.ResponseWriter, r *http.Request) error {
	p, _ := principalFrom(r.Context())
	grants, err := h.deps.Accounts.Roles(r.Context(), p.AccountID)
	if err != nil {
		return err
	}
	out := []string{}
	for _, c := range capabilities {
		err := c.may(r.Context(), h, r, p, grants)
		var le *loa.Error
		switch {
		case err == nil:
			out = append(out, c.name)
		case errors.As(err, &le) && (le.Code == loa.EForbidden || le.Code == loa.EFourEyes),
			errors.Is(err, accounts.ErrForbidden), errors.Is(err, feedback.ErrForbidden), errors.Is(err, portal.ErrForbidden):
		default:
			return err
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"capabilities": out})
	return nil
}
