package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/loa-hub/loa/api"
	"github.com/loa-hub/loa/internal/fakes/smsfake"
	"github.com/loa-hub/loa/internal/testenv"
)

// want is what one kind of caller must get from a route.
type want int

const (
	// pass: the caller gets past the authorisation check. Not exercised
	// (a pass may change state: signing out, closing an account); the
	// entry says the route is meant to admit this caller.
	pass want = iota
	deny401
	deny403
)

func (w want) String() string {
	return map[want]string{pass: "pass", deny401: "401", deny403: "403"}[w]
}

// access is one route's row of the authorisation table: what each of the
// five kinds of caller gets.
type access struct {
	none       want // no credentials
	wrongScope want // an API key with every scope but the route's
	citizen    want // a citizen's session
	noRole     want // an official without any role
	otherUnit  want // an official with the route's role, in another unit
	// scopes are the scopes that admit a key; the wrong-scope key holds
	// every other one. Empty: no key is admitted, the key holds them all.
	scopes []string
	// otherUnitAs names the official of the other-unit case: "unitAdmin"
	// (unit_admin of unit snn, acting on unit sxd) or "approverElsewhere"
	// (broadcast_approver of unit snn, not the approval unit).
	otherUnitAs string
	// path fills the route's parameters (default: "x" for each); body is
	// the other-unit case's body, valid but for the unit. Every other case
	// sends a malformed body: the check must come before the body is read.
	path func(fx *authzFixture) string
	body func(fx *authzFixture) string
	// token: a route authenticated by a provider's callback token, not a
	// bearer credential; every case here carries none.
	token bool
}

var (
	public = access{}
	// anySession: any unrestricted session, no key.
	anySession = access{none: deny401, wrongScope: deny403}
	// official: an official's session, no key; no role needed.
	official = access{none: deny401, wrongScope: deny403, citizen: deny403}
)

// keyOnly: an API key with one of scopes; sessions are refused.
func keyOnly(scopes ...string) access {
	return access{none: deny401, wrongScope: deny403, citizen: deny403, noRole: deny403, otherUnit: deny403, scopes: scopes, otherUnitAs: "approverElsewhere"}
}

// withRole: an official holding the role in any unit (nothing depends on the
// unit), no key.
func withRole() access {
	return access{none: deny401, wrongScope: deny403, citizen: deny403, noRole: deny403}
}

// approver: broadcast_approver in the approval unit.
func approver(path func(*authzFixture) string, body func(*authzFixture) string) access {
	return access{none: deny401, wrongScope: deny403, citizen: deny403, noRole: deny403, otherUnit: deny403,
		otherUnitAs: "approverElsewhere", path: path, body: body}
}

// officialsAdmin: an admin key, an admin, or a unit_admin for their own
// unit.
func officialsAdmin(path func(*authzFixture) string, body func(*authzFixture) string) access {
	return access{none: deny401, wrongScope: deny403, citizen: deny403, noRole: deny403, otherUnit: deny403,
		scopes: []string{api.ScopeAdmin}, otherUnitAs: "unitAdmin", path: path, body: body}
}

// scopeOrAdmin: a key with scope, or an official with the admin role
// (which holds in every unit, so the other-unit case passes).
func scopeOrAdmin(scope string) access {
	return access{none: deny401, wrongScope: deny403, citizen: deny403, noRole: deny403, scopes: []string{scope}}
}

func constant(s string) func(*authzFixture) string { return func(*authzFixture) string { return s } }

// feedbackOfficial: an official whom the feedback service admits (a
// handler of the matter's agency, a coordinator, an administrator); the
// other official is a broadcast approver, who is none of them. path, when
// set, names a real matter (one sent for another citizen), so that the
// refusal is not a 404.
func feedbackOfficial(path func(*authzFixture) string) access {
	return access{none: deny401, wrongScope: deny403, citizen: deny403, noRole: deny403, otherUnit: deny403,
		otherUnitAs: "approverElsewhere", path: path}
}

// feedbackPath is the path of the fixture's matter, with suffix.
func feedbackPath(suffix string) func(*authzFixture) string {
	return func(fx *authzFixture) string { return "/v1/feedback/" + fx.feedbackID + suffix }
}

// feedbackAdmin: categories and routes of feedback, by a coordinator, an
// administrator or a key with admin.
func feedbackAdmin() access {
	return access{none: deny401, wrongScope: deny403, citizen: deny403, noRole: deny403, otherUnit: deny403,
		scopes: []string{api.ScopeAdmin}, otherUnitAs: "approverElsewhere"}
}

// authorisation is the expected access of every route in the OpenAPI
// document. A route without an entry fails TestAuthorisationMatrix: add
// its row here when you add the route.
var authorisation = map[string]access{
	"GET /healthz":                       public,
	"GET /readyz":                        public,
	"GET /metrics":                       keyOnly(api.ScopeMetricsRead),
	"GET /v1/openapi.json":               public,
	"GET /v1/areas":                      public,
	"POST /v1/citizens":                  public,
	"POST /v1/organisations":             public,
	"POST /v1/citizens/{id}/verify":      public,
	"POST /v1/organisations/{id}/verify": public,
	"POST /v1/sessions":                  public,
	"POST /v1/otp/sms":                   public,
	"POST /v1/otp/sms/verify":            public,
	"POST /v1/password-reset":            public,
	"POST /v1/password-reset/confirm":    public,
	// An app acknowledges an alert with the ack token of its push, in the
	// body; no bearer credential is involved (a wrong token is a 404).
	"POST /v1/alerts/{id}/ack": public,

	"POST /v1/callbacks/sms/{provider}": {none: deny401, wrongScope: deny401, citizen: deny401, noRole: deny401, otherUnit: deny401,
		token: true, path: constant("/v1/callbacks/sms/gw")},

	"POST /v1/notifications":                keyOnly(api.ScopeNotifyDirect),
	"GET /v1/notifications/{id}":            keyOnly(api.ScopeNotifyDirect),
	"GET /v1/notifications/{id}/recipients": keyOnly(api.ScopeOps),
	"GET /v1/ops/deadletters":               keyOnly(api.ScopeOps),
	"GET /v1/ops/deadletters/{id}":          keyOnly(api.ScopeOps),
	"POST /v1/ops/deadletters/{id}/replay":  keyOnly(api.ScopeOps),
	"POST /v1/mfa/challenge":                keyOnly(api.ScopeMFAVerify),
	"POST /v1/mfa/verify":                   keyOnly(api.ScopeMFAVerify),
	"POST /v1/outages":                      keyOnly(api.ScopeOutagesWrite),
	"GET /v1/outages/{id}":                  keyOnly(api.ScopeOutagesWrite),
	"DELETE /v1/outages/{id}":               keyOnly(api.ScopeOutagesWrite),
	// Alerts are posted by keys with an alerts scope, or by officials
	// with alert_issuer (none of the callers here holds it).
	"POST /v1/alerts/cap": keyOnly(api.ScopeAlertsIssue, api.ScopeAlertsWrite),
	"POST /v1/alerts":     keyOnly(api.ScopeAlertsIssue, api.ScopeAlertsWrite),
	// Dev mode only: any key at all; no scope is wrong.
	"GET /v1/dev/outbox": {none: deny401, wrongScope: pass, citizen: deny403, noRole: deny403, otherUnit: deny403, otherUnitAs: "approverElsewhere"},

	"DELETE /v1/sessions/current": anySession,
	"GET /v1/me":                  anySession,
	"POST /v1/me/password":        anySession,
	"POST /v1/me/devices":         anySession,
	"DELETE /v1/me/devices/{id}":  anySession,
	"PUT /v1/me/subscriptions":    anySession,
	"POST /v1/me/alerts/{id}/ack": anySession,
	"POST /v1/me/totp":            official,
	"POST /v1/me/totp/confirm":    official,
	// What the official may do: any official's own session.
	"GET /v1/me/capabilities": official,

	"POST /v1/officials": officialsAdmin(nil, func(fx *authzFixture) string {
		return `{"username":"other.unit.new","full_name":"Cán bộ","phone":"0911000999","unit":"sxd","roles":[],"password":"Mật-khẩu-2026!"}`
	}),
	"POST /v1/officials/{id}/roles": officialsAdmin(func(fx *authzFixture) string { return "/v1/officials/" + fx.targetID + "/roles" },
		constant(`{"unit":"sxd","role":"agency_submitter"}`)),
	"DELETE /v1/officials/{id}/roles/{unit}/{role}": officialsAdmin(func(fx *authzFixture) string {
		return "/v1/officials/" + fx.targetID + "/roles/sxd/agency_submitter"
	}, nil),
	"POST /v1/officials/{id}/close": officialsAdmin(func(fx *authzFixture) string { return "/v1/officials/" + fx.targetID + "/close" }, nil),
	"POST /v1/officials/{id}/password-reset": officialsAdmin(func(fx *authzFixture) string {
		return "/v1/officials/" + fx.targetID + "/password-reset"
	}, nil),

	// Broadcasts: the role in any unit; approval only in the approval unit;
	// cancelling by an approver only in the approval unit too.
	"POST /v1/broadcasts":              withRole(),
	"GET /v1/broadcasts":               withRole(),
	"GET /v1/broadcasts/{id}":          withRole(),
	"GET /v1/broadcasts/{id}/history":  withRole(),
	"POST /v1/broadcasts/{id}/submit":  withRole(),
	"POST /v1/broadcasts/{id}/approve": approver(func(fx *authzFixture) string { return "/v1/broadcasts/" + fx.broadcastID + "/approve" }, nil),
	"POST /v1/broadcasts/{id}/reject": approver(func(fx *authzFixture) string { return "/v1/broadcasts/" + fx.broadcastID + "/reject" },
		constant(`{"reason":"thiếu văn bản"}`)),
	"POST /v1/broadcasts/{id}/cancel": approver(func(fx *authzFixture) string { return "/v1/broadcasts/" + fx.broadcastID + "/cancel" },
		constant(`{"reason":"huỷ"}`)),

	// Alerts are read by keys with an alerts scope or ops, by approvers
	// (approval unit) and by alert issuers; they are decided by approvers.
	"GET /v1/alerts": {none: deny401, wrongScope: deny403, citizen: deny403, noRole: deny403, otherUnit: deny403,
		scopes: []string{api.ScopeAlertsIssue, api.ScopeAlertsWrite, api.ScopeOps}, otherUnitAs: "approverElsewhere"},
	"GET /v1/alerts/{id}": {none: deny401, wrongScope: deny403, citizen: deny403, noRole: deny403, otherUnit: deny403,
		scopes: []string{api.ScopeAlertsIssue, api.ScopeAlertsWrite, api.ScopeOps}, otherUnitAs: "approverElsewhere",
		path: func(fx *authzFixture) string { return "/v1/alerts/" + fx.alertID }},
	"POST /v1/alerts/{id}/approve": approver(func(fx *authzFixture) string { return "/v1/alerts/" + fx.alertID + "/approve" }, nil),
	"POST /v1/alerts/{id}/reject": approver(func(fx *authzFixture) string { return "/v1/alerts/" + fx.alertID + "/reject" },
		constant(`{"reason":"sai vùng"}`)),

	// The console's routes. Operators' routes take an ops key or an
	// official with the role ops (none of the callers here holds it).
	"POST /v1/broadcasts/estimate":      withRole(),
	"GET /v1/approvals":                 approver(nil, nil),
	"GET /v1/approvals/broadcasts/{id}": approver(func(fx *authzFixture) string { return "/v1/approvals/broadcasts/" + fx.broadcastID }, nil),
	"GET /v1/ops/overview":              keyOnly(api.ScopeOps),
	"GET /v1/ops/scheduled":             keyOnly(api.ScopeOps),
	// The incident log: operators alone, like the dead letters.
	"GET /v1/ops/incidents":               keyOnly(api.ScopeOps),
	"POST /v1/ops/incidents":              keyOnly(api.ScopeOps),
	"GET /v1/ops/incidents/{id}":          keyOnly(api.ScopeOps),
	"POST /v1/ops/incidents/{id}/notes":   keyOnly(api.ScopeOps),
	"POST /v1/ops/incidents/{id}/resolve": keyOnly(api.ScopeOps),

	"GET /v1/audit":           scopeOrAdmin(api.ScopeAudit),
	"GET /v1/apikeys":         scopeOrAdmin(api.ScopeAdmin),
	"DELETE /v1/apikeys/{id}": scopeOrAdmin(api.ScopeAdmin),

	// A scheduled notification is cancelled by the key that could send it.
	"DELETE /v1/notifications/{id}": keyOnly(api.ScopeNotifyDirect),

	// Feedback is sent by citizens (and organisations) or by a key with
	// feedback:write for a citizen's phone; officials are refused.
	"POST /v1/feedback": {none: deny401, wrongScope: deny403, noRole: deny403, otherUnit: deny403,
		scopes: []string{api.ScopeFeedbackWrite}, otherUnitAs: "approverElsewhere"},
	"GET /v1/me/feedback": anySession,
	// Officials of the feedback service work it; the citizen who sent a
	// matter reads it and rates it, nobody else.
	"GET /v1/feedback":                                    feedbackOfficial(nil),
	"GET /v1/feedback/{id}":                               feedbackOfficial(feedbackPath("")),
	"GET /v1/feedback/{id}/history":                       feedbackOfficial(feedbackPath("/history")),
	"POST /v1/feedback/{id}/assign":                       feedbackOfficial(nil),
	"POST /v1/feedback/{id}/start":                        feedbackOfficial(nil),
	"POST /v1/feedback/{id}/answer":                       feedbackOfficial(nil),
	"POST /v1/feedback/{id}/transfer":                     feedbackOfficial(nil),
	"POST /v1/feedback/{id}/escalate":                     feedbackOfficial(nil),
	"POST /v1/feedback/{id}/reject":                       feedbackOfficial(nil),
	"POST /v1/feedback/{id}/close":                        feedbackOfficial(nil),
	"POST /v1/feedback/{id}/rating":                       feedbackOfficial(feedbackPath("/rating")),
	"PUT /v1/feedback/categories/{code}":                  feedbackAdmin(),
	"GET /v1/feedback/categories/{code}/routes":           feedbackAdmin(),
	"PUT /v1/feedback/categories/{code}/routes/{area}":    feedbackAdmin(),
	"DELETE /v1/feedback/categories/{code}/routes/{area}": feedbackAdmin(),
	// The public view, and photos of citizens who agreed to be named
	// (others' photos are a 404 to strangers).
	"GET /v1/public/feedback":            public,
	"GET /v1/public/feedback/{id}":       public,
	"GET /v1/public/feedback/stats":      public,
	"GET /v1/public/feedback/categories": public,
	"GET /v1/feedback/{id}/photos/{n}":   public,

	// Open311 GeoReport v2: public reads; a request is posted with a
	// feedback:write key (api_key, or a bearer key checked before the
	// body is read).
	"GET /open311/v2/discovery.{format}":       public,
	"GET /open311/v2/services.{format}":        public,
	"GET /open311/v2/services/{name}.{format}": public,
	"GET /open311/v2/requests.{format}":        public,
	"GET /open311/v2/requests/{name}.{format}": public,
	"GET /open311/v2/tokens/{name}.{format}":   public,
	"POST /open311/v2/requests.{format}": {none: deny401, wrongScope: deny403, citizen: deny403, noRole: deny403, otherUnit: deny403,
		scopes: []string{api.ScopeFeedbackWrite}, otherUnitAs: "approverElsewhere", path: constant("/open311/v2/requests.json")},

	// Portal: the desk is for editors and chief editors (their unit and
	// four eyes are the service's checks); categories are set by
	// administrators; the public reads live articles and feeds.
	"POST /v1/portal/articles":               withRole(),
	"GET /v1/portal/desk":                    withRole(),
	"GET /v1/portal/desk/{id}":               withRole(),
	"PUT /v1/portal/desk/{id}":               withRole(),
	"PUT /v1/portal/desk/{id}/correction":    withRole(),
	"PUT /v1/portal/desk/{id}/cover":         withRole(),
	"GET /v1/portal/desk/{id}/cover":         withRole(),
	"GET /v1/portal/desk/{id}/revisions":     withRole(),
	"GET /v1/portal/desk/{id}/history":       withRole(),
	"POST /v1/portal/desk/{id}/submit":       withRole(),
	"POST /v1/portal/desk/{id}/approve":      withRole(),
	"POST /v1/portal/desk/{id}/return":       withRole(),
	"POST /v1/portal/desk/{id}/unpublish":    withRole(),
	"PUT /v1/portal/categories/{code}":       scopeOrAdmin(api.ScopeAdmin),
	"GET /v1/portal/categories":              public,
	"GET /v1/portal/articles":                public,
	"GET /v1/portal/articles/{slug}":         public,
	"GET /v1/portal/articles/{slug}/cover":   public,
	"GET /v1/portal/feeds/{category}/{lang}": public,
}

// authzFixture holds the callers and the objects the matrix acts on.
type authzFixture struct {
	in          *instance
	gw          *smsfake.Webhook
	keys        map[string]string // wrong-scope key per route, by the scopes it lacks
	keyIDs      map[string]string // key → its id
	citizen     string
	noRole      string
	unitAdmin   string // unit_admin of snn
	approverEls string // broadcast_approver of snn (the approval unit is sotttt)
	officialIDs map[string]string
	targetID    string // an official of unit sxd
	broadcastID string // a submitted broadcast
	alertID     string // an alert waiting for approval
	feedbackID  string // a matter sent by a key for another citizen's phone
}

func scopeSetName(scopes []string) string {
	s := slices.Clone(scopes)
	sort.Strings(s)
	return strings.Join(s, ",")
}

// TestAuthorisationMatrix: every route of the OpenAPI document × {no
// credentials, a key with the wrong scope, a citizen, an official without
// the role, an official with the role in another unit} gets the 401 or 403
// the table above expects — before its body is read (a malformed body is
// sent) — and every refusal of a key or an official is in the audit log.
// A route missing from the table fails the test.
func TestAuthorisationMatrix(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			env := accountsEnv(t, b.Name)
			env["LOA_DATA_DIR"] = t.TempDir()
			// A fake SMS gateway that takes delivery reports, so that the
			// callback route checks a token; the codes of the callers'
			// sign-ins are read from it.
			gw, err := smsfake.NewWebhook(smsfake.WebhookOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(gw.Close)
			env["LOA_SMS_PROVIDERS"], env["LOA_SMS_GW_TYPE"], env["LOA_SMS_GW_URL"] = "gw", "webhook", gw.URL()
			env["LOA_SMS_GW_CALLBACK_TOKEN"] = "callback-token-0123456789"
			fx := &authzFixture{gw: gw, keys: map[string]string{}, keyIDs: map[string]string{}, officialIDs: map[string]string{}}

			// A wrong-scope key for every set of scopes the table names,
			// and one with every scope for the routes no key may call.
			sets := map[string][]string{"": nil}
			for _, a := range authorisation {
				sets[scopeSetName(a.scopes)] = a.scopes
			}
			ctx := context.Background()
			// Keys with outages:write or alerts:issue are given the sample
			// province.
			var loaded strings.Builder
			if err := run(ctx, []string{"loa", "admin", "areas", "load", "../../internal/areas/sample/quang-nam.csv"},
				func(k string) string { return env[k] }, &loaded); err != nil {
				t.Fatalf("areas load: %v\n%s", err, loaded.String())
			}
			mkKey := func(name string, scopes []string) string {
				var out strings.Builder
				args := []string{"loa", "admin", "apikey", "create", "--name", name, "--scopes", strings.Join(scopes, ",")}
				if slices.Contains(scopes, api.ScopeOutagesWrite) {
					args = append(args, "--areas", "49")
				}
				if slices.Contains(scopes, api.ScopeAlertsIssue) {
					args = append(args, "--alert-areas", "49")
				}
				if err := run(ctx, args, func(k string) string { return env[k] }, &out); err != nil {
					t.Fatalf("apikey create: %v\n%s", err, out.String())
				}
				key := regexp.MustCompile(`loa_[a-z0-9]+`).FindString(out.String())
				fx.keyIDs[key] = regexp.MustCompile(`id ([0-9a-f-]{36})`).FindStringSubmatch(out.String())[1]
				return key
			}
			for name, lacking := range sets {
				var holds []string
				for _, s := range api.KnownScopes {
					if !slices.Contains(lacking, s) {
						holds = append(holds, s)
					}
				}
				fx.keys[name] = mkKey("wrong scope for "+name, holds)
			}
			alertsWrite := mkKey("alerts awaiting approval", []string{api.ScopeAlertsWrite})
			feedbackWrite := mkKey("feedback for citizens", []string{api.ScopeFeedbackWrite})

			in := startDev(t, env)
			fx.in = in
			fx.setUp(t, alertsWrite, feedbackWrite)

			var doc struct {
				Paths map[string]map[string]json.RawMessage `json:"paths"`
			}
			resp, err := http.Get(in.base + "/v1/openapi.json")
			if err != nil {
				t.Fatal(err)
			}
			json.NewDecoder(resp.Body).Decode(&doc)
			resp.Body.Close()
			var routes []string
			for path, ops := range doc.Paths {
				for method := range ops {
					if method != "parameters" {
						routes = append(routes, strings.ToUpper(method)+" "+path)
					}
				}
			}
			sort.Strings(routes)
			if len(routes) < 40 {
				t.Fatalf("the document lists %d routes; reading it is broken", len(routes))
			}
			for _, r := range routes {
				if _, ok := authorisation[r]; !ok {
					t.Errorf("%s has no row in the authorisation table (cmd/loa/authz_test.go): say who may call it", r)
				}
			}
			for r := range authorisation {
				if !slices.Contains(routes, r) {
					t.Errorf("the authorisation table names %s, which the API document does not list", r)
				}
			}

			refusals := 0
			for _, route := range routes {
				a, ok := authorisation[route]
				if !ok {
					continue
				}
				method, pattern, _ := strings.Cut(route, " ")
				path := regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(pattern, "x")
				if a.path != nil {
					path = a.path(fx)
				}
				otherUnit := fx.approverEls
				if a.otherUnitAs == "unitAdmin" {
					otherUnit = fx.unitAdmin
				}
				for _, c := range []struct {
					name  string
					want  want
					token string
					valid bool
				}{
					{"no credentials", a.none, "", false},
					{"wrong scope", a.wrongScope, fx.keys[scopeSetName(a.scopes)], false},
					{"citizen", a.citizen, fx.citizen, false},
					{"official without the role", a.noRole, fx.noRole, false},
					{"official with the role in another unit", a.otherUnit, otherUnit, true},
				} {
					if c.want == pass {
						continue
					}
					body := "{"
					if c.valid && a.body != nil {
						body = a.body(fx)
					}
					code, p := in.callAs(t, c.token, method, path, body)
					if code != int(map[want]int{deny401: 401, deny403: 403}[c.want]) {
						t.Errorf("%s as %s: %d %v, want %s", route, c.name, code, p, c.want)
						continue
					}
					if c.token != "" && !a.token && c.name != "citizen" {
						refusals++
						fx.checkAudited(t, c.token, route, code, c.name)
					}
				}
			}
			t.Logf("%d routes, %d audited refusals checked", len(routes), refusals)
		})
	}
}

// setUp makes the callers and the objects the matrix acts on.
func (fx *authzFixture) setUp(t *testing.T, alertsWrite, feedbackWrite string) {
	in := fx.in
	fx.citizen = fx.citizenSession(t, "049195001234", "0905123456")
	fx.noRole = fx.officialSession(t, "khong.vai.tro", "0911000001", "snn")
	fx.unitAdmin = fx.officialSession(t, "qt.don.vi", "0911000002", "snn", "unit_admin")
	fx.approverEls = fx.officialSession(t, "duyet.noi.khac", "0911000003", "snn", "broadcast_approver")
	fx.targetID = fx.createOfficial(t, "can.bo.sxd", "0911000004", "sxd", "agency_submitter")

	sub := in.signInDemo(t, "demo-submitter")
	code, d := in.callAs(t, sub, "POST", "/v1/broadcasts", `{"title":"Thông báo","body":"Nội dung","topic":"general",
		"audience":{"areas":["49"]},"channels":["push"],"request_document":{"number":"1/SNN","date":"2026-11-20"}}`)
	if code != 201 {
		t.Fatalf("draft a broadcast: %d %v", code, d)
	}
	fx.broadcastID = d["id"].(string)
	if code, s := in.callAs(t, sub, "POST", "/v1/broadcasts/"+fx.broadcastID+"/submit", ""); code != 200 {
		t.Fatalf("submit: %d %v", code, s)
	}
	expires := time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339)
	code, al := in.callAs(t, alertsWrite, "POST", "/v1/alerts", fmt.Sprintf(`{"identifier":"authz-%s","msg_type":"alert","severity":"Severe",
		"urgency":"Expected","event":"Lũ","headline":"Lũ","description":"Nước lên","expires":%q,"areas":["49"]}`, testenv.ID(), expires))
	if code != 202 {
		t.Fatalf("post an alert for approval: %d %v", code, al)
	}
	fx.alertID = al["id"].(string)
	code, fb := in.callAs(t, feedbackWrite, "POST", "/v1/feedback", `{"category":"rac-thai","title":"Rác ở chợ",
		"description":"Rác tồn đọng nhiều ngày","lat":15.8768,"long":108.3291,"phone":"0905999888"}`)
	if code != 201 {
		t.Fatalf("send feedback for a citizen: %d %v", code, fb)
	}
	fx.feedbackID = fb["id"].(string)
}

func (fx *authzFixture) createOfficial(t *testing.T, username, phone, unit string, roles ...string) string {
	t.Helper()
	rs, _ := json.Marshal(append([]string{}, roles...))
	code, o := fx.in.call(t, "POST", "/v1/officials", fmt.Sprintf(`{"username":%q,"full_name":"Cán bộ","phone":%q,"unit":%q,"roles":%s,"password":"Mật-khẩu-2026!"}`,
		username, phone, unit, rs))
	if code != 201 {
		t.Fatalf("create official %s: %d %v", username, code, o)
	}
	return o["id"].(string)
}

// officialSession creates an official and signs them in with a code sent
// by SMS (read from the dev outbox).
func (fx *authzFixture) officialSession(t *testing.T, username, phone, unit string, roles ...string) string {
	t.Helper()
	id := fx.createOfficial(t, username, phone, unit, roles...)
	in := fx.in
	cred := fmt.Sprintf(`"username":%q,"password":"Mật-khẩu-2026!"`, username)
	if code, sent := in.callAs(t, "", "POST", "/v1/sessions", "{"+cred+`,"send_code":"sms"}`); code != 202 {
		t.Fatalf("send a code to %s: %d %v", username, code, sent)
	}
	code, s := in.callAs(t, "", "POST", "/v1/sessions", "{"+cred+fmt.Sprintf(`,"otp":%q}`, fx.codeTo(t, phone)))
	if code != 201 {
		t.Fatalf("sign in %s: %d %v", username, code, s)
	}
	tok := s["token"].(string)
	fx.officialIDs[tok] = id
	return tok
}

// codeTo waits for the newest code the SMS gateway got for phone
// (0… form) and takes it off the list.
func (fx *authzFixture) codeTo(t *testing.T, phone string) string {
	t.Helper()
	to := "84" + phone[1:]
	var code string
	waitFor(t, "a code to "+phone, func() bool {
		for _, m := range fx.gw.Messages() {
			if strings.TrimPrefix(m.Phone, "+") == to && regexp.MustCompile(`^[0-9]{6} `).MatchString(m.Content) {
				code = m.Content[:6]
			}
		}
		return code != ""
	})
	fx.gw.Reset()
	return code
}

// citizenSession registers, verifies and signs in a citizen.
func (fx *authzFixture) citizenSession(t *testing.T, citizenID, phone string) string {
	t.Helper()
	in := fx.in
	code, reg := in.callAs(t, "", "POST", "/v1/citizens",
		fmt.Sprintf(`{"full_name":"Nguyễn Thị Hoa","citizen_id":%q,"phone":%q,"password":"Hoa@2026-quangnam"}`, citizenID, phone))
	if code != 201 {
		t.Fatalf("register: %d %v", code, reg)
	}
	otpCode := fx.codeTo(t, phone)
	if code, v := in.callAs(t, "", "POST", "/v1/citizens/"+reg["id"].(string)+"/verify",
		fmt.Sprintf(`{"challenge_id":%q,"code":%q}`, reg["challenge_id"], otpCode)); code != 200 {
		t.Fatalf("verify: %d %v", code, v)
	}
	code, s := in.callAs(t, "", "POST", "/v1/sessions", fmt.Sprintf(`{"username":%q,"password":"Hoa@2026-quangnam"}`, citizenID))
	if code != 201 {
		t.Fatalf("sign in: %d %v", code, s)
	}
	return s["token"].(string)
}

// checkAudited looks for the audit row of a refused call.
func (fx *authzFixture) checkAudited(t *testing.T, token, route string, status int, who string) {
	t.Helper()
	actor := fx.officialIDs[token]
	if id, ok := fx.keyIDs[token]; ok {
		actor = "apikey:" + id
	}
	q := url.Values{"actor": {actor}, "route": {route}, "limit": {"1"}}
	code, out := fx.in.call(t, "GET", "/v1/audit?"+q.Encode(), "")
	items, _ := out["items"].([]any)
	if code != 200 || len(items) != 1 || items[0].(map[string]any)["status"] != float64(status) {
		t.Errorf("%s as %s: the refusal is not in the audit log (%d %v)", route, who, code, out)
	}
}
