package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/producer/broadcast"
	"github.com/loa-hub/loa/producer/feedback"
)

// routes lists every route. openapi.json describes exactly these; a test
// holds the two together.
func (h *handler) routes(r chi.Router) {
	r.Get("/healthz", h.wrap(h.healthz))
	r.Get("/readyz", h.wrap(h.readyz))
	r.With(h.publicRead).Get("/v1/openapi.json", h.wrap(h.openAPI))
	if h.deps.Metrics != nil {
		// Internal figures (queues, rates, errors): a key with
		// metrics:read, or LOA_METRICS_ADDR's listener.
		r.With(h.requireScope(ScopeMetricsRead)).Method(http.MethodGet, "/metrics", h.deps.Metrics)
	}

	r.With(h.requireScope(ScopeNotifyDirect), h.keyQuota(h.deps.KeyNotifications)).Post("/v1/notifications", h.wrap(h.createNotification))
	r.With(h.requireScope(ScopeNotifyDirect)).Get("/v1/notifications/{id}", h.wrap(h.getNotification))
	r.With(h.requireScope(ScopeNotifyDirect)).Delete("/v1/notifications/{id}", h.wrap(h.cancelNotification))
	r.With(h.requireOps()).Get("/v1/notifications/{id}/recipients", h.wrap(h.notificationRecipients))

	r.With(h.requireOps()).Get("/v1/ops/deadletters", h.wrap(h.listDeadLetters))
	r.With(h.requireOps()).Get("/v1/ops/deadletters/{id}", h.wrap(h.getDeadLetter))
	r.With(h.requireOps()).Post("/v1/ops/deadletters/{id}/replay", h.wrap(h.replayDeadLetter))
	// Gateways authenticate with the provider's callback token, not a key.
	r.Post("/v1/callbacks/sms/{provider}", h.wrap(h.smsCallback))

	// Accounts. Registration, sign-in and SMS codes are public
	// (limited per phone and per client address); /v1/me/* needs a
	// session; officials are administered by admins and unit admins.
	r.Post("/v1/citizens", h.wrap(h.registerCitizen))
	r.Post("/v1/citizens/{id}/verify", h.wrap(h.verifyAccount(accounts.KindCitizen)))
	r.Post("/v1/organisations", h.wrap(h.registerOrganisation))
	r.Post("/v1/organisations/{id}/verify", h.wrap(h.verifyAccount(accounts.KindOrganisation)))
	r.Post("/v1/sessions", h.wrap(h.createSession))
	r.With(h.requireSession(false)).Delete("/v1/sessions/current", h.wrap(h.deleteSession))
	r.Post("/v1/otp/sms", h.wrap(h.sendSMSCode))
	r.Post("/v1/otp/sms/verify", h.wrap(h.verifySMSCode))
	r.Post("/v1/password-reset", h.wrap(h.requestPasswordReset))
	r.Post("/v1/password-reset/confirm", h.wrap(h.confirmPasswordReset))
	r.With(h.requireScope(ScopeMFAVerify)).Post("/v1/mfa/challenge", h.wrap(h.mfaChallenge))
	r.With(h.requireScope(ScopeMFAVerify)).Post("/v1/mfa/verify", h.wrap(h.mfaVerify))
	r.With(h.requireSession(false)).Get("/v1/me", h.wrap(h.getMe))
	r.With(h.requireSession(true)).Post("/v1/me/password", h.wrap(h.changePassword))
	r.With(h.requireOfficial(nil)).Post("/v1/me/totp", h.wrap(h.beginTOTP))
	r.With(h.requireOfficial(nil)).Post("/v1/me/totp/confirm", h.wrap(h.confirmTOTP))
	r.With(h.requireSession(false)).Post("/v1/me/devices", h.wrap(h.registerDevice))
	r.With(h.requireSession(false)).Delete("/v1/me/devices/{id}", h.wrap(h.deleteDevice))
	r.With(h.requireSession(false)).Put("/v1/me/subscriptions", h.wrap(h.putSubscriptions))
	r.With(h.requireOfficialsAdmin()).Post("/v1/officials", h.wrap(h.createOfficial))
	r.With(h.requireOfficialsAdmin()).Post("/v1/officials/{id}/roles", h.wrap(h.grantRole))
	r.With(h.requireOfficialsAdmin()).Delete("/v1/officials/{id}/roles/{unit}/{role}", h.wrap(h.revokeRole))
	r.With(h.requireOfficialsAdmin()).Post("/v1/officials/{id}/close", h.wrap(h.closeOfficial))
	r.With(h.requireOfficialsAdmin()).Post("/v1/officials/{id}/password-reset", h.wrap(h.resetOfficialPassword))

	// Broadcasts: officials with a session only; the role is
	// checked before the body is read, four eyes and the approval unit by
	// the broadcast service.
	submitter, readers := h.requireRole(accounts.RoleAgencySubmitter), h.requireRole(broadcast.Readers()...)
	r.With(submitter).Post("/v1/broadcasts", h.wrap(h.createBroadcast))
	r.With(readers).Get("/v1/broadcasts", h.wrap(h.listBroadcasts))
	r.With(readers).Get("/v1/broadcasts/{id}", h.wrap(h.getBroadcast))
	r.With(readers).Get("/v1/broadcasts/{id}/history", h.wrap(h.broadcastHistory))
	r.With(submitter).Post("/v1/broadcasts/{id}/submit", h.wrap(h.broadcastAction("submit")))
	r.With(h.requireApprover()).Post("/v1/broadcasts/{id}/approve", h.wrap(h.broadcastAction("approve")))
	r.With(h.requireApprover()).Post("/v1/broadcasts/{id}/reject", h.wrap(h.broadcastAction("reject")))
	r.With(h.requireRole(accounts.RoleAgencySubmitter, accounts.RoleBroadcastApprover)).Post("/v1/broadcasts/{id}/cancel", h.wrap(h.broadcastAction("cancel")))

	// Disaster alerts: posted by integrating systems' keys,
	// decided by approvers' sessions (four eyes).
	r.With(h.requireAlertIssuer()).Post("/v1/alerts/cap", h.wrap(h.postCAPAlert))
	r.With(h.requireAlertIssuer()).Post("/v1/alerts", h.wrap(h.postJSONAlert))
	r.With(h.requireAlertReader()).Get("/v1/alerts", h.wrap(h.listAlerts))
	r.With(h.requireAlertReader()).Get("/v1/alerts/{id}", h.wrap(h.getAlert))
	r.With(h.requireApprover()).Post("/v1/alerts/{id}/approve", h.wrap(h.approveAlert))
	r.With(h.requireApprover()).Post("/v1/alerts/{id}/reject", h.wrap(h.rejectAlert))
	// Acknowledgements: a session's, or an app's without one proved by the
	// ack token of its push (checked before anything is looked up).
	r.With(h.requireSession(false)).Post("/v1/me/alerts/{id}/ack", h.wrap(h.ackMyAlert))
	r.Post("/v1/alerts/{id}/ack", h.wrap(h.ackAlertByDevice))

	// Areas (public reference data) and the power company's outage
	// schedules. Public reads (h.publicRead) are bounded per client
	// address for callers without valid credentials.
	r.With(h.publicRead).Get("/v1/areas", h.wrap(h.listAreas))
	r.With(h.requireScope(ScopeOutagesWrite)).Post("/v1/outages", h.wrap(h.postOutages))
	r.With(h.requireScope(ScopeOutagesWrite)).Get("/v1/outages/{id}", h.wrap(h.getOutage))
	r.With(h.requireScope(ScopeOutagesWrite)).Delete("/v1/outages/{id}", h.wrap(h.cancelOutage))

	// The audit log and the integrating systems' keys.
	r.With(h.requireScopeOrAdmin(ScopeAudit)).Get("/v1/audit", h.wrap(h.listAudit))
	r.With(h.requireScopeOrAdmin(ScopeAdmin)).Get("/v1/apikeys", h.wrap(h.listAPIKeys))
	r.With(h.requireScopeOrAdmin(ScopeAdmin)).Delete("/v1/apikeys/{id}", h.wrap(h.revokeAPIKey))

	// The console's needs, as API routes with the same rules for every
	// client: a draft's audience and cost while typing, the approver's
	// queue, the operators' overview and scheduled items, and what the
	// signed-in official may do (by the checks of these routes).
	r.With(h.requireRole(accounts.RoleAgencySubmitter, accounts.RoleBroadcastApprover)).Post("/v1/broadcasts/estimate", h.wrap(h.estimateBroadcast))
	r.With(h.requireApprover()).Get("/v1/approvals", h.wrap(h.listApprovals))
	r.With(h.requireApprover()).Get("/v1/approvals/broadcasts/{id}", h.wrap(h.getApproval))
	r.With(h.requireOps()).Get("/v1/ops/overview", h.wrap(h.opsOverview))
	r.With(h.requireOps()).Get("/v1/ops/scheduled", h.wrap(h.listScheduled))
	r.With(h.requireOps()).Get("/v1/ops/incidents", h.wrap(h.listIncidents))
	r.With(h.requireOps()).Post("/v1/ops/incidents", h.wrap(h.openIncident))
	r.With(h.requireOps()).Get("/v1/ops/incidents/{id}", h.wrap(h.getIncident))
	r.With(h.requireOps()).Post("/v1/ops/incidents/{id}/notes", h.wrap(h.addIncidentNote))
	r.With(h.requireOps()).Post("/v1/ops/incidents/{id}/resolve", h.wrap(h.resolveIncident))
	r.With(h.requireOfficial(nil)).Get("/v1/me/capabilities", h.wrap(h.myCapabilities))

	// Citizen feedback: sent by citizens' sessions or feedback:write keys,
	// moved by officials (roles checked by the service before the body is
	// read), followed by anyone through the public view.
	r.With(h.requireFeedbackSender()).Post("/v1/feedback", h.wrap(h.postFeedback))
	r.With(h.requireActor()).Get("/v1/feedback", h.wrap(h.listFeedback))
	r.With(h.requireActor()).Get("/v1/feedback/{id}", h.wrap(h.getFeedback))
	r.With(h.requireActor()).Get("/v1/feedback/{id}/history", h.wrap(h.feedbackHistory))
	r.With(h.publicRead).Get("/v1/feedback/{id}/photos/{n}", h.wrap(h.feedbackPhoto))
	for _, action := range feedback.Actions() {
		r.With(h.requireSession(false)).Post("/v1/feedback/{id}/"+action, h.wrap(h.feedbackAction(action)))
	}
	r.With(h.requireSession(false)).Post("/v1/feedback/{id}/rating", h.wrap(h.rateFeedback))
	r.With(h.requireSession(false)).Get("/v1/me/feedback", h.wrap(h.myFeedback))
	r.With(h.requireActor()).Put("/v1/feedback/categories/{code}", h.wrap(h.putFeedbackCategory))
	r.With(h.requireActor()).Get("/v1/feedback/categories/{code}/routes", h.wrap(h.feedbackRoutes))
	r.With(h.requireActor()).Put("/v1/feedback/categories/{code}/routes/{area}", h.wrap(h.putFeedbackRoute))
	r.With(h.requireActor()).Delete("/v1/feedback/categories/{code}/routes/{area}", h.wrap(h.deleteFeedbackRoute))
	r.With(h.publicRead).Get("/v1/public/feedback", h.wrap(h.publicFeedbackList))
	r.With(h.publicRead).Get("/v1/public/feedback/stats", h.wrap(h.feedbackStats))
	r.With(h.publicRead).Get("/v1/public/feedback/categories", h.wrap(h.feedbackCategories))
	r.With(h.publicRead).Get("/v1/public/feedback/{id}", h.wrap(h.publicFeedback))

	// Portal articles: editors and chief editors at the desk (roles checked
	// before the body), the public reads live articles and Atom feeds.
	desk := r.With(h.requireSession(false), h.requireEditor)
	desk.Post("/v1/portal/articles", h.wrap(h.createArticle))
	desk.Get("/v1/portal/desk", h.wrap(h.deskArticles))
	desk.Get("/v1/portal/desk/{id}", h.wrap(h.deskArticle))
	desk.Put("/v1/portal/desk/{id}", h.wrap(h.reviseArticle("edit")))
	desk.Put("/v1/portal/desk/{id}/correction", h.wrap(h.reviseArticle("correct")))
	desk.Put("/v1/portal/desk/{id}/cover", h.wrap(h.putArticleCover))
	desk.Get("/v1/portal/desk/{id}/cover", h.wrap(h.deskCover))
	for _, action := range []string{"submit", "approve", "return", "unpublish"} {
		desk.Post("/v1/portal/desk/{id}/"+action, h.wrap(h.articleStep(action)))
	}
	desk.Get("/v1/portal/desk/{id}/revisions", h.wrap(h.articleRevisions))
	desk.Get("/v1/portal/desk/{id}/history", h.wrap(h.articleHistory))
	r.With(h.requireActor()).Put("/v1/portal/categories/{code}", h.wrap(h.putPortalCategory))
	r.With(h.publicRead).Get("/v1/portal/categories", h.wrap(h.portalCategories))
	r.With(h.publicRead).Get("/v1/portal/articles", h.wrap(h.publicArticles))
	r.With(h.publicRead).Get("/v1/portal/articles/{slug}", h.wrap(h.publicArticle))
	r.With(h.publicRead).Get("/v1/portal/articles/{slug}/cover", h.wrap(h.articleCover))
	r.With(h.publicRead).Get("/v1/portal/feeds/{category}/{lang}", h.wrap(h.portalFeed))

	// Open311 GeoReport v2: public reads, posts with a feedback:write key
	// (api_key); JSON or XML by suffix.
	read311 := r.With(h.publicRead)
	read311.Get("/open311/v2/discovery.{format}", h.open311(h.open311Discovery))
	read311.Get("/open311/v2/services.{format}", h.open311(h.open311Services))
	read311.Get("/open311/v2/services/{name}.{format}", h.open311(h.open311Definition))
	read311.Get("/open311/v2/requests.{format}", h.open311(h.open311Requests))
	r.Post("/open311/v2/requests.{format}", h.open311(h.open311Post))
	read311.Get("/open311/v2/requests/{name}.{format}", h.open311(h.open311Request))
	read311.Get("/open311/v2/tokens/{name}.{format}", h.open311(h.open311Token))

	if h.deps.Outbox != nil {
		r.With(h.requireScope("")).Get("/v1/dev/outbox", h.wrap(h.devOutbox))
	}
}
