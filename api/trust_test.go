package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/loa-hub/loa/api"
	"github.com/loa-hub/loa/internal/sqlstore"
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

	submit := func(tok string) string {
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
	id := submit(sub)
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
	pid := submit(puppet)
	if resp, p := f.do(t, "POST", "/v1/broadcasts/"+pid+"/approve", appr, ""); resp.StatusCode != http.StatusForbidden || p["type"] != "urn:loa:problem:four-eyes" {
		t.Errorf("approver approves their puppet's broadcast: %d %v", resp.StatusCode, p)
	}

	// A submitter whose role the approver granted.
	gid, _ := f.official(t, "nhan.vien", "0911000005", "sotttt")
	if resp, p := f.do(t, "POST", "/v1/officials/"+gid+"/roles", appr, `{"unit":"sotttt","role":"agency_submitter"}`); resp.StatusCode != 200 {
		t.Fatalf("grant: %d %v", resp.StatusCode, p)
	}
	granted := f.signIn(t, "nhan.vien", "Mật-khẩu-1")
	gbid := submit(granted)
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
