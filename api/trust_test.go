package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/api"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/otp"
)

// Abuse cases of the trust rules: who becomes an official, who grants
// which role, who approves. Each is what an attacker tried against loa
// dev.

// signIn signs an official in with a texted code and returns the session.
func (f *accFixture) signIn(t *testing.T, username, password string) string {
	t.Helper()
	resp, p := f.do(t, "POST", "/v1/sessions", "", fmt.Sprintf(`{"username":%q,"password":%q,"send_code":"sms"}`, username, password))
	if resp.StatusCode != 202 {
		t.Fatalf("send code to %s: %d %v", username, resp.StatusCode, p)
	}
	resp, s := f.do(t, "POST", "/v1/sessions", "", fmt.Sprintf(`{"username":%q,"password":%q,"otp":%q}`, username, password, f.lastCode(t)))
	if resp.StatusCode != 201 {
		t.Fatalf("sign in %s: %d %v", username, resp.StatusCode, s)
	}
	f.clock.Advance(time.Minute)
	return s["token"].(string)
}

type auditRow struct{ actor, action, subject, detail string }

// audit returns the audit log's rows of an action, oldest first.
func (f *accFixture) audit(t *testing.T, action string) []auditRow {
	t.Helper()
	rows, err := f.store.SQL().QueryContext(context.Background(), `SELECT actor, action, subject, detail FROM audit_log WHERE action = $1 ORDER BY at`, action)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []auditRow
	for rows.Next() {
		var r auditRow
		if err := rows.Scan(&r.actor, &r.action, &r.subject, &r.detail); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// TestOfficialsNeedTheRightBeforeTheBody: only an administrator (a
// session with the admin role, or an admin-scoped key) or a unit
// administrator (for their unit) creates officials, with or without
// roles; anyone else gets 403 whatever the body says — also an empty
// role list, a malformed body or an unknown official.
func TestOfficialsNeedTheRightBeforeTheBody(t *testing.T) {
	f := newAccountsFixture(t)
	ctx := context.Background()
	if err := f.store.CreateAPIKey(ctx, sqlstore.APIKey{ID: "k-notify", Name: "notify", Hash: api.HashAPIKey("notify-key"),
		Scopes: []string{api.ScopeNotifyDirect}, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	_, citizen := f.citizen(t, "049095000123", "0912345678")
	staffID, staff := f.official(t, "staff", "0922222222", "snn", "agency_submitter")
	_, unitAdmin := f.official(t, "unit.admin", "0911111111", "snn", "unit_admin")
	newOfficial := func(username, unit string) string {
		return fmt.Sprintf(`{"username":%q,"full_name":"Con Rối","phone":"0933333333","unit":%q,"roles":[]}`, username, unit)
	}
	for _, c := range []struct{ name, key, method, path, body string }{
		{"citizen, no roles", citizen, "POST", "/v1/officials", newOfficial("puppet1", "snn")},
		{"citizen, malformed body", citizen, "POST", "/v1/officials", `{"roles":`},
		{"citizen, invalid body", citizen, "POST", "/v1/officials", `{"username":"1"}`},
		{"key without admin scope", "notify-key", "POST", "/v1/officials", newOfficial("puppet2", "snn")},
		{"official without an admin role", staff, "POST", "/v1/officials", newOfficial("puppet3", "snn")},
		{"unit admin, another unit", unitAdmin, "POST", "/v1/officials", newOfficial("puppet4", "soyte")},
		{"citizen grants", citizen, "POST", "/v1/officials/" + staffID + "/roles", `{"unit":`},
		{"citizen grants to nobody", citizen, "POST", "/v1/officials/nobody/roles", `{"unit":"snn","role":"ops"}`},
		{"key without admin scope revokes", "notify-key", "DELETE", "/v1/officials/nobody/roles/snn/ops", ""},
		{"official closes nobody", staff, "POST", "/v1/officials/nobody/close", ""},
	} {
		if resp, p := f.do(t, c.method, c.path, c.key, c.body); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d, want 403: %v", c.name, resp.StatusCode, p)
		}
	}
	var n int
	if err := f.store.SQL().QueryRowContext(ctx, `SELECT COUNT(*) FROM accounts WHERE username LIKE 'puppet%'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d puppet officials created (%v)", n, err)
	}
	if resp, p := f.do(t, "POST", "/v1/officials", unitAdmin, newOfficial("new.staff", "snn")); resp.StatusCode != 201 {
		t.Errorf("unit admin in their unit: %d %v", resp.StatusCode, p)
	}
	if resp, p := f.do(t, "POST", "/v1/officials", "dev-key", newOfficial("other.staff", "soyte")); resp.StatusCode != 201 {
		t.Errorf("admin key: %d %v", resp.StatusCode, p)
	}
}

// TestRoleGrantRules: nobody grants themself a role; a unit admin grants
// only roles of their unit to officials of their unit, never admin nor
// the province's approval role; every grant and revoke is audited with
// actor and target.
func TestRoleGrantRules(t *testing.T) {
	f := newAccountsFixture(t)
	adminID, unitAdmin := f.official(t, "unit.admin", "0911111111", "snn", "unit_admin")
	staffID, _ := f.official(t, "staff", "0922222222", "snn")
	otherID, _ := f.official(t, "other", "0933333333", "soyte")
	for _, c := range []struct{ name, id, body string }{
		{"self: approver", adminID, `{"unit":"snn","role":"broadcast_approver"}`},
		{"self: approver in the approval unit", adminID, `{"unit":"sotttt","role":"broadcast_approver"}`},
		{"self: submitter in own unit", adminID, `{"unit":"snn","role":"agency_submitter"}`},
		{"staff: approver", staffID, `{"unit":"snn","role":"broadcast_approver"}`},
		{"staff: admin", staffID, `{"unit":"snn","role":"admin"}`},
		{"staff: role in another unit", staffID, `{"unit":"soyte","role":"ops"}`},
		{"official of another unit", otherID, `{"unit":"snn","role":"ops"}`},
	} {
		if resp, p := f.do(t, "POST", "/v1/officials/"+c.id+"/roles", unitAdmin, c.body); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d, want 403: %v", c.name, resp.StatusCode, p)
		}
	}
	if resp, p := f.do(t, "POST", "/v1/officials", unitAdmin,
		`{"username":"puppet","full_name":"Con Rối","phone":"0944444444","unit":"snn","roles":["broadcast_approver"]}`); resp.StatusCode != http.StatusForbidden {
		t.Errorf("unit admin creates an approver: %d %v", resp.StatusCode, p)
	}
	before := len(f.audit(t, "role.grant"))
	if resp, p := f.do(t, "POST", "/v1/officials/"+staffID+"/roles", unitAdmin, `{"unit":"snn","role":"agency_submitter"}`); resp.StatusCode != 200 {
		t.Fatalf("unit admin grants in their unit: %d %v", resp.StatusCode, p)
	}
	if resp, p := f.do(t, "POST", "/v1/officials/"+staffID+"/roles", "dev-key", `{"unit":"snn","role":"broadcast_approver"}`); resp.StatusCode != 200 {
		t.Fatalf("admin grants the approval role: %d %v", resp.StatusCode, p)
	}
	if resp, p := f.do(t, "DELETE", "/v1/officials/"+staffID+"/roles/snn/broadcast_approver", unitAdmin, ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("unit admin revokes the approval role: %d %v", resp.StatusCode, p)
	}
	if resp, p := f.do(t, "DELETE", "/v1/officials/"+staffID+"/roles/snn/agency_submitter", unitAdmin, ""); resp.StatusCode != 204 {
		t.Errorf("unit admin revokes: %d %v", resp.StatusCode, p)
	}
	grants := f.audit(t, "role.grant")[before:]
	revokes := f.audit(t, "role.revoke")
	if len(grants) != 2 || grants[0].actor != adminID || grants[0].subject != staffID || grants[1].actor != "apikey:dev" || grants[1].subject != staffID {
		t.Errorf("grants audited: %+v", grants)
	}
	if len(revokes) != 1 || revokes[0].actor != adminID || revokes[0].subject != staffID {
		t.Errorf("revokes audited: %+v", revokes)
	}
}

// TestUnitAdminClosesNoProvinceLevelRole: closing an account takes
// every role it holds, so a unit admin, who may not revoke the
// province-level roles, may not close an official holding one either:
// the unit admin of an agency cannot lock out an administrator, an
// approver or an alert issuer who works there. Administrators close
// anyone; a refused close ends no session.
func TestUnitAdminClosesNoProvinceLevelRole(t *testing.T) {
	f := newAccountsFixture(t)
	_, unitAdmin := f.official(t, "unit.admin", "0911111111", "snn", "unit_admin")
	adminID, adminTok := f.official(t, "quan.tri", "0922222222", "snn", "admin")
	approverID, _ := f.official(t, "phe.duyet", "0933333333", "snn", "broadcast_approver")
	issuerID, _ := f.official(t, "canh.bao", "0944444444", "snn", "alert_issuer")
	staffID, staffTok := f.official(t, "nhan.vien", "0966666666", "snn", "agency_submitter")
	for _, c := range []struct{ name, id string }{
		{"an administrator of the unit", adminID},
		{"an approver of the unit", approverID},
		{"an alert issuer of the unit", issuerID},
	} {
		if resp, p := f.do(t, "POST", "/v1/officials/"+c.id+"/close", unitAdmin, ""); resp.StatusCode != http.StatusForbidden {
			t.Errorf("unit admin closes %s: %d, want 403: %v", c.name, resp.StatusCode, p)
		}
	}
	if resp, p := f.do(t, "GET", "/v1/me", adminTok, ""); resp.StatusCode != 200 {
		t.Errorf("the administrator's session after the refusals: %d %v", resp.StatusCode, p)
	}
	if resp, p := f.do(t, "POST", "/v1/officials/"+staffID+"/close", unitAdmin, ""); resp.StatusCode != http.StatusNoContent {
		t.Errorf("unit admin closes their staff: %d %v", resp.StatusCode, p)
	}
	if resp, _ := f.do(t, "GET", "/v1/me", staffTok, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the closed official's session: %d", resp.StatusCode)
	}
	if resp, p := f.do(t, "POST", "/v1/officials/"+approverID+"/close", "dev-key", ""); resp.StatusCode != http.StatusNoContent {
		t.Errorf("an administrator closes the approver: %d %v", resp.StatusCode, p)
	}
}

// TestPasswordChangeGuessesAreThrottled: a stolen session must not be a
// free oracle for the account's password. Wrong old passwords at POST
// /v1/me/password are throttled per account as failed sign-ins are (the
// right one too, while the wait lasts: 429 with Retry-After); the wait
// is the password change's own, so a stranger failing sign-ins with the
// account's user name cannot keep its owner — say one whose password
// expired, with a session that may do nothing else — from changing it.
func TestPasswordChangeGuessesAreThrottled(t *testing.T) {
	f := newAccountsFixture(t)
	_, tok := f.citizen(t, "049095000123", "0912345678")
	var statuses []int
	for range 7 {
		resp, _ := f.do(t, "POST", "/v1/me/password", tok, `{"old":"Sai-mật-khẩu-9","new":"Mat-khau-moi-2"}`)
		statuses = append(statuses, resp.StatusCode)
	}
	if fmt.Sprint(statuses) != "[400 400 400 400 400 400 429]" {
		t.Errorf("wrong old passwords: %v, want six 400s then 429", statuses)
	}
	if resp, p := f.do(t, "POST", "/v1/me/password", tok, `{"old":"Mật-khẩu-1","new":"Mat-khau-moi-2"}`); resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("the right old password during the wait: %d %v", resp.StatusCode, p)
	}
	// A stranger's failed sign-ins throttle sign-in, not the change.
	for i := range 8 {
		f.signInWith(t, "049095000123", "Sai-mật-khẩu-9", "", fmt.Sprintf("198.51.100.%d", i))
	}
	f.clock.Advance(time.Minute)
	if resp, p := f.do(t, "POST", "/v1/me/password", tok, `{"old":"Mật-khẩu-1","new":"Mat-khau-moi-2"}`); resp.StatusCode != 200 {
		t.Errorf("after the wait, with sign-in throttled by a stranger: %d %v", resp.StatusCode, p)
	}
}

// TestReplacingTheAuthenticatorNeedsTheCurrentOne: a session alone — a
// stolen one — does not swap an official's authenticator for one of its
// own (voiding the official's recovery codes): confirming a new one needs
// current, a code of the enrolled authenticator or a recovery code (400
// without it, 401 when wrong, each naming current), and the enrolled
// authenticator keeps working meanwhile. Wrong current codes lock only
// their own path, never the official's sign-in. The first enrolment
// needs none.
func TestReplacingTheAuthenticatorNeedsTheCurrentOne(t *testing.T) {
	f := newAccountsFixture(t)
	_, tok := f.official(t, "can.bo", "0911111111", "snn")
	secret, recovery := f.enrol(t, tok)
	replace := func(current string) (*http.Response, map[string]any) {
		t.Helper()
		resp, en := f.do(t, "POST", "/v1/me/totp", tok, "")
		if resp.StatusCode != 201 {
			t.Fatalf("begin: %d %v", resp.StatusCode, en)
		}
		code, _ := totp.GenerateCode(en["secret"].(string), f.clock.Now())
		body := fmt.Sprintf(`{"code":%q,"current":%q}`, code, current)
		if current == "" {
			body = fmt.Sprintf(`{"code":%q}`, code)
		}
		return f.do(t, "POST", "/v1/me/totp/confirm", tok, body)
	}
	if resp, p := replace(""); resp.StatusCode != 401 || p["field"] != "current" {
		t.Fatalf("the session alone replaces the authenticator: %d %v, want 401 naming current", resp.StatusCode, p)
	}
	for i := range 8 {
		resp, p := replace(fmt.Sprintf("%06d", i))
		if resp.StatusCode == 200 || i == 0 && (resp.StatusCode != 401 || p["field"] != "current") {
			t.Errorf("wrong current code %d: %d %v, want 401 naming current (then locked)", i, resp.StatusCode, p)
		}
	}
	good, _ := totp.GenerateCode(secret, f.clock.Now())
	if resp, p := f.signInWith(t, "can.bo", "Mật-khẩu-1", good, "203.0.113.9"); resp.StatusCode != 201 {
		t.Fatalf("the enrolled authenticator after the attempts: %d %v", resp.StatusCode, p)
	}
	f.clock.Advance(otp.TOTPPeriod)
	resp, p := replace(recovery[0])
	if resp.StatusCode != 200 {
		t.Fatalf("with a recovery code: %d %v", resp.StatusCode, p)
	}
	f.clock.Advance(otp.TOTPPeriod)
	if resp, _ := f.signInWith(t, "can.bo", "Mật-khẩu-1", recovery[1], "203.0.113.9"); resp.StatusCode == 201 {
		t.Error("an old recovery code still signs in after the replacement")
	}
}

// TestRoleCheckFailsClosed: when an official's roles cannot be read (the
// store is down), a route that needs a role refuses before reading the
// body (5xx) instead of letting the request through to a handler that
// may not check again.
func TestRoleCheckFailsClosed(t *testing.T) {
	f := newBroadcastFixture(t)
	_, sub := f.official(t, "can.bo.snn", "0911000001", "snn", "agency_submitter")
	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/broadcasts/estimate", "/v1/broadcasts"} {
		if resp, p := f.do(t, "POST", path, sub, `{"malformed`); resp.StatusCode < 500 {
			t.Errorf("%s with the roles unreadable: %d %v, want 5xx before the body", path, resp.StatusCode, p)
		}
	}
}

// TestApproverRule: an approval needs broadcast_approver in the approval
// unit (not in any unit), and an approver who created the submitter's
// account or granted the submitter's role may not approve their
// broadcast.
func TestApproverRule(t *testing.T) {
	f := newBroadcastFixture(t)
	_, sub := f.official(t, "can.bo.snn", "0911000001", "snn", "agency_submitter")
	// An approver of another unit, granted by an administrator.
	_, elsewhere := f.official(t, "duyet.snn", "0911000002", "snn", "broadcast_approver")
	// The DoIC's approver, also the DoIC's unit administrator.
	_, appr := f.official(t, "duyet.tttt", "0911000003", "sotttt", "broadcast_approver", "unit_admin")

	id := f.submitted(t, sub)
	for _, action := range []string{"approve", "reject"} {
		if resp, p := f.do(t, "POST", "/v1/broadcasts/"+id+"/"+action, elsewhere, `{"reason":"không"}`); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s by an approver of another unit: %d %v", action, resp.StatusCode, p)
		}
	}

	// A puppet submitter the approver created in their own unit.
	resp, o := f.do(t, "POST", "/v1/officials", appr,
		`{"username":"con.roi","full_name":"Con Rối","phone":"0911000004","unit":"sotttt","roles":["agency_submitter"],"password":"Mật-khẩu-1"}`)
	if resp.StatusCode != 201 {
		t.Fatalf("approver creates a submitter: %d %v", resp.StatusCode, o)
	}
	puppet := f.signIn(t, "con.roi", "Mật-khẩu-1")
	pid := f.submitted(t, puppet)
	if resp, p := f.do(t, "POST", "/v1/broadcasts/"+pid+"/approve", appr, ""); resp.StatusCode != http.StatusForbidden || p["type"] != "urn:loa:problem:four-eyes" {
		t.Errorf("approver approves their puppet's broadcast: %d %v", resp.StatusCode, p)
	}

	// A submitter whose role the approver granted.
	gid, _ := f.official(t, "nhan.vien", "0911000005", "sotttt")
	if resp, p := f.do(t, "POST", "/v1/officials/"+gid+"/roles", appr, `{"unit":"sotttt","role":"agency_submitter"}`); resp.StatusCode != 200 {
		t.Fatalf("grant: %d %v", resp.StatusCode, p)
	}
	granted := f.signIn(t, "nhan.vien", "Mật-khẩu-1")
	gbid := f.submitted(t, granted)
	if resp, p := f.do(t, "POST", "/v1/broadcasts/"+gbid+"/approve", appr, ""); resp.StatusCode != http.StatusForbidden || p["type"] != "urn:loa:problem:four-eyes" {
		t.Errorf("approver approves a broadcast of an official they granted: %d %v", resp.StatusCode, p)
	}
	if f.plans.count() != 0 {
		t.Fatalf("%d plans published", f.plans.count())
	}
	// The independent approver of the approval unit approves.
	if resp, p := f.do(t, "POST", "/v1/broadcasts/"+id+"/approve", appr, ""); resp.StatusCode != 200 {
		t.Errorf("approve: %d %v", resp.StatusCode, p)
	}
}

// TestApproverRuleFollowsTheLineOfAppointment: a puppet's puppet is a
// puppet. An approver who is also a unit admin creates a unit admin
// (with a password and a phone of their choosing), who creates a
// submitter, or grants a submitter's role; neither account was created,
// nor its role granted, by the approver, yet both trace back to them, so
// the approver may not approve what they submit. An approver who merely
// shares an ancestor with the submitter (both created by the same
// administrator) is independent.
func TestApproverRuleFollowsTheLineOfAppointment(t *testing.T) {
	f := newBroadcastFixture(t)
	_, appr := f.official(t, "duyet.tttt", "0911000003", "sotttt", "broadcast_approver", "unit_admin")
	create := func(by, username, phone, roles string) string {
		t.Helper()
		resp, o := f.do(t, "POST", "/v1/officials", by, fmt.Sprintf(`{"username":%q,"full_name":"Con Rối","phone":%q,"unit":"sotttt","roles":%s,"password":"Mật-khẩu-1"}`,
			username, phone, roles))
		if resp.StatusCode != 201 {
			t.Fatalf("create %s: %d %v", username, resp.StatusCode, o)
		}
		return o["id"].(string)
	}
	create(appr, "trung.gian", "0911000006", `["unit_admin"]`)
	middle := f.signIn(t, "trung.gian", "Mật-khẩu-1")
	create(middle, "con.roi.2", "0911000007", `["agency_submitter"]`)
	made := f.submitted(t, f.signIn(t, "con.roi.2", "Mật-khẩu-1"))
	gid, _ := f.official(t, "nhan.vien.2", "0911000008", "sotttt")
	if resp, p := f.do(t, "POST", "/v1/officials/"+gid+"/roles", middle, `{"unit":"sotttt","role":"agency_submitter"}`); resp.StatusCode != 200 {
		t.Fatalf("grant: %d %v", resp.StatusCode, p)
	}
	granted := f.submitted(t, f.signIn(t, "nhan.vien.2", "Mật-khẩu-1"))
	for name, id := range map[string]string{"created by the approver's appointee": made, "granted by the approver's appointee": granted} {
		if resp, p := f.do(t, "POST", "/v1/broadcasts/"+id+"/approve", appr, ""); resp.StatusCode != http.StatusForbidden || p["type"] != "urn:loa:problem:four-eyes" {
			t.Errorf("approving the broadcast of a submitter %s: %d %v", name, resp.StatusCode, p)
		}
	}
	if f.plans.count() != 0 {
		t.Fatalf("%d plans published", f.plans.count())
	}
	// Created by the same administrator as the approver: independent.
	_, sub := f.official(t, "can.bo.snn", "0911000001", "snn", "agency_submitter")
	if resp, p := f.do(t, "POST", "/v1/broadcasts/"+f.submitted(t, sub)+"/approve", appr, ""); resp.StatusCode != 200 {
		t.Errorf("approving an independent submitter's broadcast: %d %v", resp.StatusCode, p)
	}
}

// TestAlertApprovalNeedsTheApprovalUnit: a pending alert is approved only
// by an approver of the approval unit.
func TestAlertApprovalNeedsTheApprovalUnit(t *testing.T) {
	f := newAlertFixture(t)
	_, elsewhere := f.official(t, "duyet.snn", "0911000002", "snn", "broadcast_approver")
	_, appr := f.official(t, "duyet.tttt", "0911000003", "sotttt", "broadcast_approver")
	resp, a := f.postFile(t, "write-key", "flood_vi_en.xml")
	if resp.StatusCode != 202 || a["status"] != "pending_approval" {
		t.Fatalf("post: %d %v", resp.StatusCode, a)
	}
	id := a["id"].(string)
	if resp, p := f.do(t, "POST", "/v1/alerts/"+id+"/approve", elsewhere, ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("approver of another unit: %d %v", resp.StatusCode, p)
	}
	if n := f.alertPub.count(); n != 0 {
		t.Fatalf("%d published before approval", n)
	}
	if resp, p := f.do(t, "POST", "/v1/alerts/"+id+"/approve", appr, ""); resp.StatusCode != 200 {
		t.Errorf("approve: %d %v", resp.StatusCode, p)
	}
}

// TestPasswordMaximum: a password over 1,024 bytes is refused, naming the
// field, at registration, change, official creation and sign-in alike; one
// of exactly 1,024 bytes is a password like any other.
func TestPasswordMaximum(t *testing.T) {
	f := newAccountsFixture(t)
	_, tok := f.citizen(t, "049095000123", "0912345678")
	long := "Aa1-" + strings.Repeat("x", 1021) // 1,025 bytes
	for _, c := range []struct{ name, path, key, body, field string }{
		{"registration", "/v1/citizens", "", fmt.Sprintf(`{"full_name":"Trần B","citizen_id":"049095000456","phone":"0912345679","password":%q}`, long), "password"},
		{"organisation", "/v1/organisations", "", fmt.Sprintf(`{"name":"Công ty A","tax_code":"0100109106","phone":"0912345679","password":%q}`, long), "password"},
		{"change, new", "/v1/me/password", tok, fmt.Sprintf(`{"old":"Mật-khẩu-1","new":%q}`, long), "new"},
		{"change, old", "/v1/me/password", tok, fmt.Sprintf(`{"old":%q,"new":"Mat-khau-moi-2"}`, long), "old"},
		{"official", "/v1/officials", "dev-key", fmt.Sprintf(`{"username":"can.bo","full_name":"Cán bộ","phone":"0922222222","unit":"snn","roles":[],"password":%q}`, long), "password"},
		{"sign-in", "/v1/sessions", "", fmt.Sprintf(`{"username":"049095000123","password":%q}`, long), "password"},
	} {
		if resp, p := f.do(t, "POST", c.path, c.key, c.body); resp.StatusCode != 400 || p["field"] != c.field {
			t.Errorf("%s: %d %v, want 400 naming %s", c.name, resp.StatusCode, p, c.field)
		}
	}
	exact := "Aa1-" + strings.Repeat("x", 1020)
	if resp, p := f.do(t, "POST", "/v1/me/password", tok, fmt.Sprintf(`{"old":"Mật-khẩu-1","new":%q}`, exact)); resp.StatusCode != 200 {
		t.Errorf("1,024 bytes: %d %v", resp.StatusCode, p)
	}
}

// register posts a citizen registration and returns the answer.
func (f *accFixture) register(t *testing.T, citizenID, phone, ip string) (*http.Response, map[string]any) {
	t.Helper()
	return f.do(t, "POST", "/v1/citizens", "", fmt.Sprintf(`{"full_name":"Nguyễn Văn A","citizen_id":%q,"phone":%q,"password":"Mật-khẩu-1"}`, citizenID, phone),
		"X-Forwarded-For", ip)
}

// TestPendingNeverShadowsActive: an organisation whose tax code equals a
// citizen's phone digits, pending or active, never keeps the citizen from
// signing in with the phone; a pending registration is never a sign-in
// candidate.
func TestPendingNeverShadowsActive(t *testing.T) {
	f := newAccountsFixture(t)
	const both = "0912345604" // a Vinaphone number, and a tax code with its check digit
	citizenID, _ := f.citizen(t, "049095000123", both)
	signIn := func(password string) (int, map[string]any) {
		resp, p := f.do(t, "POST", "/v1/sessions", "", fmt.Sprintf(`{"username":%q,"password":%q}`, both, password))
		return resp.StatusCode, p
	}
	// A stranger registers an organisation with that tax code, and never
	// verifies it.
	f.clock.Advance(time.Minute)
	resp, org := f.do(t, "POST", "/v1/organisations", "", fmt.Sprintf(`{"name":"Công ty Bóng","tax_code":%q,"phone":"0987654321","password":"Khác-mật-khẩu-2"}`, both))
	if resp.StatusCode != 201 {
		t.Fatalf("organisation: %d %v", resp.StatusCode, org)
	}
	if code, p := signIn("Mật-khẩu-1"); code != 201 || p["account_id"] != citizenID {
		t.Errorf("citizen by phone beside a pending organisation: %d %v", code, p)
	}
	if code, p := signIn("Khác-mật-khẩu-2"); code != 401 {
		t.Errorf("the pending organisation signs in: %d %v", code, p)
	}
	// Once the organisation is active, the user name names both accounts:
	// each signs in with its own password.
	resp, v := f.do(t, "POST", "/v1/organisations/"+org["id"].(string)+"/verify", "", fmt.Sprintf(`{"challenge_id":%q,"code":%q}`, org["challenge_id"], f.lastCode(t)))
	if resp.StatusCode != 200 {
		t.Fatalf("verify organisation: %d %v", resp.StatusCode, v)
	}
	if code, p := signIn("Mật-khẩu-1"); code != 201 || p["account_id"] != citizenID {
		t.Errorf("citizen by phone beside an active organisation: %d %v", code, p)
	}
	if code, p := signIn("Khác-mật-khẩu-2"); code != 201 || p["account_id"] != org["id"] {
		t.Errorf("organisation by tax code: %d %v", code, p)
	}
}

// TestPendingRegistrationReservesNothing: a stranger's unverified claim
// on a citizen ID does not keep the owner out; pending registrations
// expire and are removed; registrations past the per-address SMS limit
// are refused with 429 before anything is stored.
func TestPendingRegistrationReservesNothing(t *testing.T) {
	f := newAccountsFixture(t)
	ctx := context.Background()
	resp, squat := f.register(t, "049095000123", "0987654321", "198.51.100.66")
	if resp.StatusCode != 201 {
		t.Fatalf("stranger: %d %v", resp.StatusCode, squat)
	}
	f.clock.Advance(time.Minute)
	resp, reg := f.register(t, "049095000123", "0912345678", "203.0.113.7")
	if resp.StatusCode != 201 {
		t.Fatalf("owner: %d %v", resp.StatusCode, reg)
	}
	if resp, v := f.do(t, "POST", "/v1/citizens/"+reg["id"].(string)+"/verify", "", fmt.Sprintf(`{"challenge_id":%q,"code":%q}`, reg["challenge_id"], f.lastCode(t))); resp.StatusCode != 200 {
		t.Fatalf("owner verifies: %d %v", resp.StatusCode, v)
	}
	// The stranger's registration expires: not verifiable, then removed.
	f.clock.Advance(30 * time.Minute)
	if resp, v := f.do(t, "POST", "/v1/citizens/"+squat["id"].(string)+"/verify", "", fmt.Sprintf(`{"challenge_id":%q,"code":"123456"}`, squat["challenge_id"])); resp.StatusCode != 404 {
		t.Errorf("expired registration verified: %d %v", resp.StatusCode, v)
	}
	if n, err := f.svc.RemoveExpiredRegistrations(ctx); err != nil || n != 1 {
		t.Errorf("removed %d: %v", n, err)
	}
	count := func() int {
		var n int
		if err := f.store.SQL().QueryRowContext(ctx, `SELECT COUNT(*) FROM accounts`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 1 {
		t.Errorf("%d accounts after the clean-up, want the owner's", n)
	}
}

// TestRegistrationPastTheAddressLimitStoresNothing: one address registers
// until its SMS allowance (6 an hour here) is spent; the next is 429 with
// Retry-After, and stores nothing.
func TestRegistrationPastTheAddressLimitStoresNothing(t *testing.T) {
	f := newAccountsFixture(t)
	ctx := context.Background()
	count := func() int {
		var n int
		if err := f.store.SQL().QueryRowContext(ctx, `SELECT COUNT(*) FROM accounts`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for i := range 6 {
		if resp, p := f.register(t, fmt.Sprintf("0490950002%02d", i), fmt.Sprintf("09230000%02d", i), "198.51.100.7"); resp.StatusCode != 201 {
			t.Fatalf("registration %d: %d %v", i, resp.StatusCode, p)
		}
	}
	before := count()
	resp, p := f.register(t, "049095000299", "0923000099", "198.51.100.7")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("past the limit: %d %v", resp.StatusCode, p)
	}
	if n := count(); n != before {
		t.Errorf("a refused registration stored %d accounts", n-before)
	}
}

// enrol enrols an authenticator for the official of tok and returns its
// secret and recovery codes; the clock moves a step on.
func (f *accFixture) enrol(t *testing.T, tok string) (string, []string) {
	t.Helper()
	resp, en := f.do(t, "POST", "/v1/me/totp", tok, "")
	if resp.StatusCode != 201 {
		t.Fatalf("begin: %d %v", resp.StatusCode, en)
	}
	secret := en["secret"].(string)
	code, _ := totp.GenerateCode(secret, f.clock.Now())
	resp, conf := f.do(t, "POST", "/v1/me/totp/confirm", tok, fmt.Sprintf(`{"code":%q}`, code))
	if resp.StatusCode != 200 {
		t.Fatalf("confirm: %d %v", resp.StatusCode, conf)
	}
	var rc []string
	for _, c := range conf["recovery_codes"].([]any) {
		rc = append(rc, c.(string))
	}
	f.clock.Advance(otp.TOTPPeriod)
	return secret, rc
}

func (f *accFixture) signInWith(t *testing.T, username, password, otpCode, ip string) (*http.Response, map[string]any) {
	t.Helper()
	body := fmt.Sprintf(`{"username":%q,"password":%q}`, username, password)
	if otpCode != "" {
		body = fmt.Sprintf(`{"username":%q,"password":%q,"otp":%q}`, username, password, otpCode)
	}
	return f.do(t, "POST", "/v1/sessions", "", body, "X-Forwarded-For", ip)
}

// TestAnonymousCodesCannotTouchSignIn: the anonymous code endpoint does
// not issue sign-in (or reset, or second-factor) codes, and what it does
// issue neither voids an official's pending sign-in code nor spends its
// send window.
func TestAnonymousCodesCannotTouchSignIn(t *testing.T) {
	f := newAccountsFixture(t)
	f.official(t, "can.bo", "0911111111", "snn")
	f.clock.Advance(time.Hour)
	resp, p := f.do(t, "POST", "/v1/sessions", "", `{"username":"can.bo","password":"Mật-khẩu-1","send_code":"sms"}`)
	if resp.StatusCode != 202 {
		t.Fatalf("send code: %d %v", resp.StatusCode, p)
	}
	code := f.lastCode(t)
	for _, purpose := range []string{"login", "reset", "mfa"} {
		if resp, p := f.do(t, "POST", "/v1/otp/sms", "", fmt.Sprintf(`{"phone":"0911111111","purpose":%q}`, purpose)); resp.StatusCode != 400 || p["field"] != "purpose" {
			t.Errorf("anonymous %s code: %d %v", purpose, resp.StatusCode, p)
		}
	}
	// A stranger asks for phone-confirmation codes for the official's
	// phone until that purpose's window is full.
	for i := range 5 {
		if resp, p := f.do(t, "POST", "/v1/otp/sms", "", `{"phone":"0911111111","purpose":"verify_phone"}`, "X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i)); resp.StatusCode != 202 {
			t.Fatalf("verify_phone %d: %d %v", i, resp.StatusCode, p)
		}
		f.clock.Advance(31 * time.Second)
	}
	if resp, p := f.signInWith(t, "can.bo", "Mật-khẩu-1", code, "203.0.113.1"); resp.StatusCode != 201 {
		t.Errorf("the official's pending code after a stranger's requests: %d %v", resp.StatusCode, p)
	}
	if resp, p := f.do(t, "POST", "/v1/sessions", "", `{"username":"can.bo","password":"Mật-khẩu-1","send_code":"sms"}`); resp.StatusCode != 202 {
		t.Errorf("the official's own send window: %d %v", resp.StatusCode, p)
	}
}

// TestSecondFactorClientsAreSeparate: a code sent for Loa's sign-in is not
// valid at /v1/mfa/verify and the reverse; a shared app's wrong guesses
// lock the TOTP and recovery paths for that app only; wrong recovery
// codes are limited like codes.
func TestSecondFactorClientsAreSeparate(t *testing.T) {
	f := newAccountsFixture(t)
	_, tok := f.official(t, "can.bo", "0911111111", "snn")
	secret, recovery := f.enrol(t, tok)
	f.clock.Advance(time.Hour)

	// A sign-in code at /v1/mfa/verify.
	if resp, p := f.do(t, "POST", "/v1/sessions", "", `{"username":"can.bo","password":"Mật-khẩu-1","send_code":"sms"}`); resp.StatusCode != 202 {
		t.Fatalf("send code: %d %v", resp.StatusCode, p)
	}
	signInCode := f.lastCode(t)
	if resp, p := f.do(t, "POST", "/v1/mfa/verify", "dev-key", fmt.Sprintf(`{"user":"can.bo","code":%q}`, signInCode)); resp.StatusCode != 422 {
		t.Errorf("sign-in code at /v1/mfa/verify: %d %v", resp.StatusCode, p)
	}
	// A shared app's code at sign-in.
	f.clock.Advance(time.Minute)
	if resp, p := f.do(t, "POST", "/v1/mfa/challenge", "dev-key", `{"user":"can.bo","method":"sms"}`); resp.StatusCode != 202 {
		t.Fatalf("challenge: %d %v", resp.StatusCode, p)
	}
	appCode := f.lastCode(t)
	if appCode != signInCode {
		if resp, p := f.signInWith(t, "can.bo", "Mật-khẩu-1", appCode, "203.0.113.1"); resp.StatusCode != 401 {
			t.Errorf("shared app's code at sign-in: %d %v", resp.StatusCode, p)
		}
	}
	if resp, p := f.do(t, "POST", "/v1/mfa/verify", "dev-key", fmt.Sprintf(`{"user":"can.bo","code":%q}`, appCode)); resp.StatusCode != 200 {
		t.Errorf("shared app's code at /v1/mfa/verify: %d %v", resp.StatusCode, p)
	}
	if resp, p := f.signInWith(t, "can.bo", "Mật-khẩu-1", signInCode, "203.0.113.1"); resp.StatusCode != 201 {
		t.Errorf("sign-in code at sign-in: %d %v", resp.StatusCode, p)
	}

	// The shared app guesses TOTP codes and recovery codes until locked.
	for range 5 {
		f.do(t, "POST", "/v1/mfa/verify", "dev-key", `{"user":"can.bo","code":"000000"}`)
		f.do(t, "POST", "/v1/mfa/verify", "dev-key", `{"user":"can.bo","code":"aaaaa-aaaaa"}`)
	}
	good, _ := totp.GenerateCode(secret, f.clock.Now())
	if resp, p := f.do(t, "POST", "/v1/mfa/verify", "dev-key", fmt.Sprintf(`{"user":"can.bo","code":%q}`, recovery[0])); resp.StatusCode != 429 {
		t.Errorf("recovery code after 5 wrong ones: %d %v", resp.StatusCode, p)
	}
	if resp, p := f.do(t, "POST", "/v1/mfa/verify", "dev-key", fmt.Sprintf(`{"user":"can.bo","code":%q}`, good)); resp.StatusCode != 429 {
		t.Errorf("TOTP after 5 wrong ones: %d %v", resp.StatusCode, p)
	}
	// The official's own sign-in is not locked by the app's guesses.
	if resp, p := f.signInWith(t, "can.bo", "Mật-khẩu-1", good, "203.0.113.1"); resp.StatusCode != 201 {
		t.Errorf("official's TOTP sign-in after the app's guesses: %d %v", resp.StatusCode, p)
	}
	if resp, p := f.signInWith(t, "can.bo", "Mật-khẩu-1", recovery[1], "203.0.113.1"); resp.StatusCode != 201 {
		t.Errorf("official's recovery sign-in after the app's guesses: %d %v", resp.StatusCode, p)
	}
}

// TestSignInThrottling: failures cost nothing five times, then each one
// doubles the wait (answered 429 with Retry-After, before any password
// work), the same for an unknown user; a client address is throttled on
// its own; an official locked by a stranger's failures still signs in
// with a recovery code.
func TestSignInThrottling(t *testing.T) {
	f := newAccountsFixture(t)
	f.citizen(t, "049095000123", "0912345678")
	for _, user := range []string{"049095000123", "001099000456"} { // exists, does not
		var statuses []int
		var retry []string
		for i := range 7 {
			resp, _ := f.signInWith(t, user, "Sai-mật-khẩu-9", "", fmt.Sprintf("198.51.100.%d", i))
			statuses = append(statuses, resp.StatusCode)
			retry = append(retry, resp.Header.Get("Retry-After"))
		}
		if fmt.Sprint(statuses) != "[401 401 401 401 401 401 429]" || retry[6] != "1" {
			t.Errorf("%s: %v, Retry-After %q", user, statuses, retry[6])
		}
		f.clock.Advance(time.Second)
		if resp, _ := f.signInWith(t, user, "Sai-mật-khẩu-9", "", "198.51.100.9"); resp.StatusCode != 401 {
			t.Errorf("%s after the wait: %d", user, resp.StatusCode)
		}
		if resp, _ := f.signInWith(t, user, "Mật-khẩu-1", "", "198.51.100.9"); resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "2" {
			t.Errorf("%s: the next wait doubles: %d %q", user, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	f.clock.Advance(time.Minute)
	if resp, p := f.signInWith(t, "049095000123", "Mật-khẩu-1", "", "203.0.113.5"); resp.StatusCode != 201 {
		t.Errorf("after the wait: %d %v", resp.StatusCode, p)
	}

	// One address failing against many user names is throttled itself.
	for i := range 20 {
		f.signInWith(t, fmt.Sprintf("0490950009%02d", i), "Sai-mật-khẩu-9", "", "192.0.2.66")
	}
	f.signInWith(t, "049095000999", "Sai-mật-khẩu-9", "", "192.0.2.66")
	if resp, _ := f.signInWith(t, "049095000123", "Mật-khẩu-1", "", "192.0.2.66"); resp.StatusCode != 429 {
		t.Errorf("a failing address: %d", resp.StatusCode)
	}
	if resp, _ := f.signInWith(t, "049095000123", "Mật-khẩu-1", "", "203.0.113.5"); resp.StatusCode != 201 {
		t.Errorf("another address: %d", resp.StatusCode)
	}

	// A stranger keeps an official's account throttled; the official signs
	// in with a recovery code all the same.
	_, tok := f.official(t, "can.bo", "0911111111", "snn")
	secret, recovery := f.enrol(t, tok)
	for i := range 8 {
		f.signInWith(t, "can.bo", "Sai-mật-khẩu-9", "", fmt.Sprintf("198.51.100.%d", 100+i))
	}
	good, _ := totp.GenerateCode(secret, f.clock.Now())
	if resp, _ := f.signInWith(t, "can.bo", "Mật-khẩu-1", good, "203.0.113.9"); resp.StatusCode != 429 {
		t.Errorf("throttled official with TOTP: %d", resp.StatusCode)
	}
	if resp, p := f.signInWith(t, "can.bo", "Mật-khẩu-1", recovery[0], "203.0.113.9"); resp.StatusCode != 201 {
		t.Errorf("throttled official with a recovery code: %d %v", resp.StatusCode, p)
	}
}

// TestRegistrationAnswersAlike: a registration with a fresh phone and
// citizen ID, with the phone of an active account, and with the citizen
// ID of an active account all get the same answer. The phone's owner
// gets a notice instead of a code; the citizen ID is refused only once
// the registrant has proved their own phone (409), and its owner is told
// by SMS, a bounded number of times.
func TestRegistrationAnswersAlike(t *testing.T) {
	f := newAccountsFixture(t)
	f.citizen(t, "049095000123", "0912345678")
	f.clock.Advance(time.Minute)
	shape := func(p map[string]any) string {
		return fmt.Sprint(len(p), p["status"], p["code_sent"], p["id"] != nil, p["challenge_id"] != nil, p["expires_at"] == f.clock.Now().Add(5*time.Minute).Format(time.RFC3339))
	}
	want := fmt.Sprint(5, "pending", true, true, true, true)
	for _, c := range []struct{ name, citizenID, phone, to string }{
		{"fresh", "049095000456", "0987654321", "84987654321"},
		{"phone of an active account", "049095000789", "0912345678", "84912345678"},
		{"citizen ID of an active account", "049095000123", "0977777777", "84977777777"},
	} {
		n := f.pub.count()
		resp, p := f.register(t, c.citizenID, c.phone, "198.51.100.1")
		if resp.StatusCode != 201 || shape(p) != want {
			t.Errorf("%s: %d %v", c.name, resp.StatusCode, p)
		}
		sent := f.published(t, n)
		if len(sent) != 1 || sent[0].To.Value != c.to {
			t.Fatalf("%s: sent %+v", c.name, sent)
		}
		if isNotice := !strings.ContainsAny(sent[0].Body[:6], "0123456789"); isNotice != (c.name == "phone of an active account") {
			t.Errorf("%s: %q", c.name, sent[0].Body)
		}
	}
	// The stranger proves a phone of their own for the owner's citizen
	// ID, five times from five phones: 409 each time; the owner hears of
	// it, but not five times.
	notices := 0
	for i := range 5 {
		f.clock.Advance(time.Minute)
		resp, reg := f.register(t, "049095000123", fmt.Sprintf("09777777%02d", i), fmt.Sprintf("198.51.100.%d", 10+i))
		if resp.StatusCode != 201 {
			t.Fatalf("register %d: %d %v", i, resp.StatusCode, reg)
		}
		n := f.pub.count()
		resp, v := f.do(t, "POST", "/v1/citizens/"+reg["id"].(string)+"/verify", "", fmt.Sprintf(`{"challenge_id":%q,"code":%q}`, reg["challenge_id"], f.lastCode(t)))
		if resp.StatusCode != 409 || v["field"] != "citizen_id" {
			t.Errorf("verify %d: %d %v", i, resp.StatusCode, v)
		}
		for _, d := range f.published(t, n) {
			if d.To.Value != "84912345678" || !strings.Contains(d.Body, "CCCD") {
				t.Errorf("verify %d sent %+v", i, d)
			}
			notices++
		}
	}
	if notices == 0 || notices >= 5 {
		t.Errorf("the owner got %d notices for 5 attempts", notices)
	}
}

// TestMFAChallengeAnswersAlike: /v1/mfa/challenge answers an official, a
// user name that names nobody, and a citizen alike, with the same limits;
// only the official's phone gets a code.
func TestMFAChallengeAnswersAlike(t *testing.T) {
	f := newAccountsFixture(t)
	f.citizen(t, "049095000123", "0912345678")
	f.official(t, "staff", "0911111111", "snn")
	f.clock.Advance(time.Hour)
	for _, c := range []struct{ name, user string }{{"official", "staff"}, {"nobody", "nobody"}, {"citizen", "049095000123"}} {
		n := f.pub.count()
		resp, p := f.do(t, "POST", "/v1/mfa/challenge", "dev-key", fmt.Sprintf(`{"user":%q,"method":"sms"}`, c.user))
		if resp.StatusCode != 202 || len(p) != 2 || p["method"] != "sms" || p["expires_at"] != f.clock.Now().Add(5*time.Minute).Format(time.RFC3339) {
			t.Errorf("%s: %d %v", c.name, resp.StatusCode, p)
		}
		if sent := f.published(t, n); len(sent) != map[string]int{"official": 1}[c.name] {
			t.Errorf("%s: sent %+v", c.name, sent)
		}
		if resp, p := f.do(t, "POST", "/v1/mfa/challenge", "dev-key", fmt.Sprintf(`{"user":%q,"method":"sms"}`, c.user)); resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "30" {
			t.Errorf("%s at once again: %d %v", c.name, resp.StatusCode, p)
		}
	}
}

// busyHasher refuses every hash, as the bounded hasher does when its
// slots and queue are full.
type busyHasher struct{}

func (busyHasher) Hash(string) (string, error)         { return "", accounts.ErrBusy }
func (busyHasher) Verify(string, string) (bool, error) { return false, accounts.ErrBusy }
func (busyHasher) DummyVerify(string) error            { return accounts.ErrBusy }

// TestHashingBusyIs503: when no password hash can be had, sign-in,
// registration, password change and reset answer 503 with Retry-After,
// not 500 and not a wrong-password 401.
func TestHashingBusyIs503(t *testing.T) {
	f := newAccountsFixture(t, func(d *accounts.Deps) { d.Hasher = busyHasher{} })
	for _, c := range []struct{ name, path, body string }{
		{"sign-in", "/v1/sessions", `{"username":"049095000123","password":"Mật-khẩu-1"}`},
		{"registration", "/v1/citizens", `{"full_name":"Nguyễn Văn A","citizen_id":"049095000123","phone":"0912345678","password":"Mật-khẩu-1"}`},
	} {
		if resp, p := f.do(t, "POST", c.path, "", c.body); resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || p["type"] != "urn:loa:problem:unavailable" {
			t.Errorf("%s: %d %v", c.name, resp.StatusCode, p)
		}
	}
}

// submitted drafts bcBody as the holder of tok and submits it; it
// returns the broadcast's id.
func (f *bcFixture) submitted(t *testing.T, tok string) string {
	t.Helper()
	resp, b := f.do(t, "POST", "/v1/broadcasts", tok, bcBody)
	if resp.StatusCode != 201 {
		t.Fatalf("draft: %d %v", resp.StatusCode, b)
	}
	id := b["id"].(string)
	if resp, p := f.do(t, "POST", "/v1/broadcasts/"+id+"/submit", tok, ""); resp.StatusCode != 200 {
		t.Fatalf("submit: %d %v", resp.StatusCode, p)
	}
	return id
}

// TestUnitAdminMakesNoOperator: the ops role, held in any unit, is the
// province's operator: every broadcast and alert, every notification's
// recipients, the dead letters (messages as they were sent) and their
// replay, the incident log. It was not among the roles only
// administrators grant, so the unit admin of any agency made one of
// their staff an operator, or created one (a puppet with the unit
// admin's own phone for its codes) and read the province's dead letters
// through it. Now ops is granted, revoked, and its holders closed and
// reset, by administrators only.
func TestUnitAdminMakesNoOperator(t *testing.T) {
	f := newAccountsFixture(t)
	_, unitAdmin := f.official(t, "unit.admin", "0911111111", "snn", "unit_admin")
	staffID, staffTok := f.official(t, "nhan.vien", "0922222222", "snn")
	opsID, _ := f.official(t, "van.hanh", "0933333333", "snn", "ops")
	if resp, p := f.do(t, "POST", "/v1/officials/"+staffID+"/roles", unitAdmin, `{"unit":"snn","role":"ops"}`); resp.StatusCode != http.StatusForbidden {
		t.Errorf("unit admin grants ops in their unit: %d, want 403: %v", resp.StatusCode, p)
	}
	if resp, p := f.do(t, "GET", "/v1/ops/deadletters", staffTok, ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("the staff member reads the dead letters: %d, want 403: %v", resp.StatusCode, p)
	}
	if resp, p := f.do(t, "POST", "/v1/officials", unitAdmin,
		`{"username":"puppet","full_name":"Con Rối","phone":"0911111111","unit":"snn","roles":["ops"]}`); resp.StatusCode != http.StatusForbidden {
		t.Errorf("unit admin creates an operator: %d, want 403: %v", resp.StatusCode, p)
	}
	for _, c := range []struct{ name, method, path string }{
		{"revokes ops", "DELETE", "/v1/officials/" + opsID + "/roles/snn/ops"},
		{"closes an operator", "POST", "/v1/officials/" + opsID + "/close"},
		{"resets an operator's password", "POST", "/v1/officials/" + opsID + "/password-reset"},
	} {
		if resp, p := f.do(t, c.method, c.path, unitAdmin, ""); resp.StatusCode != http.StatusForbidden {
			t.Errorf("unit admin %s: %d, want 403: %v", c.name, resp.StatusCode, p)
		}
	}
	if resp, p := f.do(t, "POST", "/v1/officials/"+staffID+"/roles", "dev-key", `{"unit":"snn","role":"ops"}`); resp.StatusCode != 200 {
		t.Fatalf("an administrator grants ops: %d %v", resp.StatusCode, p)
	}
	if resp, p := f.do(t, "GET", "/v1/ops/deadletters", staffTok, ""); resp.StatusCode != 200 {
		t.Errorf("the operator an administrator made reads the dead letters: %d %v", resp.StatusCode, p)
	}
}

// TestApproverIsNotTheSubmittersAppointee: the approver rule traced the
// submitter's line of appointment back to the approver, not the
// approver's back to the submitter. A unit admin of the approval unit
// who also submits created an official there (with the unit admin's own
// phone for its codes and a password the unit admin chose); once an
// administrator granted that official the approval role, the unit admin
// signed in as it and approved their own broadcast. Now an approver
// whose account the submitter created, or one of whose roles the
// submitter granted, at any depth, is not independent either.
func TestApproverIsNotTheSubmittersAppointee(t *testing.T) {
	f := newBroadcastFixture(t)
	_, ua := f.official(t, "quan.tri.don.vi", "0911000003", "sotttt", "unit_admin", "agency_submitter")
	resp, o := f.do(t, "POST", "/v1/officials", ua, `{"username":"con.roi","full_name":"Con Rối","phone":"0911000003","unit":"sotttt","roles":[],"password":"Mật-khẩu-1"}`)
	if resp.StatusCode != 201 {
		t.Fatalf("the unit admin creates an official: %d %v", resp.StatusCode, o)
	}
	puppetID := o["id"].(string)
	// An official the unit admin granted a role of the unit.
	grantedID, _ := f.official(t, "nhan.vien", "0911000004", "sotttt")
	if resp, p := f.do(t, "POST", "/v1/officials/"+grantedID+"/roles", ua, `{"unit":"sotttt","role":"alert_tester"}`); resp.StatusCode != 200 {
		t.Fatalf("the unit admin grants a role: %d %v", resp.StatusCode, p)
	}
	for _, id := range []string{puppetID, grantedID} {
		if resp, p := f.do(t, "POST", "/v1/officials/"+id+"/roles", "dev-key", `{"unit":"sotttt","role":"broadcast_approver"}`); resp.StatusCode != 200 {
			t.Fatalf("an administrator grants the approval role: %d %v", resp.StatusCode, p)
		}
	}
	puppet := f.signIn(t, "con.roi", "Mật-khẩu-1")
	granted := f.signIn(t, "nhan.vien", "Mật-khẩu-1")
	for name, tok := range map[string]string{"created": puppet, "granted a role": granted} {
		if resp, p := f.do(t, "POST", "/v1/broadcasts/"+f.submitted(t, ua)+"/approve", tok, ""); resp.StatusCode != http.StatusForbidden || p["type"] != "urn:loa:problem:four-eyes" {
			t.Errorf("an approver the submitter %s approves: %d %v", name, resp.StatusCode, p)
		}
	}
	if f.plans.count() != 0 {
		t.Fatalf("%d plans published", f.plans.count())
	}
	// An approver the submitter did not appoint approves.
	_, appr := f.official(t, "duyet.tttt", "0911000005", "sotttt", "broadcast_approver")
	if resp, p := f.do(t, "POST", "/v1/broadcasts/"+f.submitted(t, ua)+"/approve", appr, ""); resp.StatusCode != 200 {
		t.Errorf("an independent approver: %d %v", resp.StatusCode, p)
	}
}
