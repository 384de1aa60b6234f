package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/loa-hub/loa/internal/testenv"
)

// callAs is instance.call with another bearer token ("" for none).
func (in *instance) callAs(t *testing.T, token, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, in.base+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// codeFor waits for the code of a challenge in the dev outbox and returns
// it with the entry's channel.
func (in *instance) codeFor(t *testing.T, challengeID string) (string, string) {
	t.Helper()
	var items []map[string]any
	waitFor(t, "the code in the outbox", func() bool {
		items = in.outbox(t, "code-"+challengeID)
		return len(items) > 0
	})
	body := items[0]["body"].(string)
	if !regexp.MustCompile(`^[0-9]{6} `).MatchString(body) {
		t.Fatalf("outbox body %q does not start with a code", body)
	}
	return body[:6], items[0]["channel"].(string)
}

func accountsEnv(t *testing.T, backend string) map[string]string {
	env := backendEnv(t, backend)
	// Cheap argon2: the policy is tested elsewhere; here the flow is.
	env["LOA_ARGON2_MEMORY_KIB"], env["LOA_ARGON2_TIME"] = "1024", "1"
	return env
}

// TestRegistrationEndToEnd: on `loa dev`, register → the code appears in
// the dev outbox → verify → sign in → register a device → set
// subscriptions; on the embedded defaults and on the real services.
func TestRegistrationEndToEnd(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			in := startDev(t, accountsEnv(t, b.Name))
			code, reg := in.callAs(t, "", "POST", "/v1/citizens",
				`{"full_name":"Nguyễn Thị Hoa","citizen_id":"049195001234","phone":"0905 123 456","password":"Hoa@2026-quangnam"}`)
			if code != 201 || reg["status"] != "pending" || reg["challenge_id"] == nil {
				t.Fatalf("register: %d %v", code, reg)
			}
			id, ch := reg["id"].(string), reg["challenge_id"].(string)
			otpCode, channel := in.codeFor(t, ch)
			if channel != "sms" {
				t.Errorf("registration code went by %s", channel)
			}
			if code, v := in.callAs(t, "", "POST", "/v1/citizens/"+id+"/verify", fmt.Sprintf(`{"challenge_id":%q,"code":%q}`, ch, otpCode)); code != 200 || v["status"] != "active" {
				t.Fatalf("verify: %d %v", code, v)
			}
			code, sess := in.callAs(t, "", "POST", "/v1/sessions", `{"username":"0905123456","password":"Hoa@2026-quangnam"}`)
			if code != 201 || sess["token"] == nil {
				t.Fatalf("sign in: %d %v", code, sess)
			}
			tok := sess["token"].(string)
			if code, d := in.callAs(t, tok, "POST", "/v1/me/devices", `{"token":"fcm-hoa-1","app":"smart","platform":"android"}`); code != 201 || d["id"] == nil {
				t.Fatalf("device: %d %v", code, d)
			}
			// Another citizen cannot take the token unless they hold the
			// phone: the proof is pushed to the token, through the
			// dispatcher, and moves it when sent back.
			other := registerAndSignIn(t, in, "049195001235", "0905123457")
			if code, p := in.callAs(t, other, "POST", "/v1/me/devices", `{"token":"fcm-hoa-1","app":"smart","platform":"android"}`); code != 409 || p["field"] != "token" {
				t.Fatalf("another account registering the token: %d %v", code, p)
			}
			var proof string
			waitFor(t, "the device proof pushed to the token", func() bool {
				for _, it := range in.outbox(t, "") {
					if data, _ := it["data"].(map[string]any); it["to"] == "fcm-hoa-1" && data["type"] == "device_proof" {
						proof, _ = data["device_proof"].(string)
					}
				}
				return proof != ""
			})
			if code, d := in.callAs(t, other, "POST", "/v1/me/devices", fmt.Sprintf(`{"token":"fcm-hoa-1","app":"smart","platform":"android","proof":%q}`, proof)); code != 201 {
				t.Fatalf("with the proof: %d %v", code, d)
			}
			if code, d := in.callAs(t, tok, "POST", "/v1/me/devices", `{"token":"fcm-hoa-1","app":"smart","platform":"android"}`); code != 409 {
				t.Fatalf("the token back without proof: %d %v", code, d)
			}
			proof = ""
			waitFor(t, "the second device proof", func() bool {
				n := 0
				for _, it := range in.outbox(t, "") {
					if data, _ := it["data"].(map[string]any); it["to"] == "fcm-hoa-1" && data["type"] == "device_proof" {
						if n++; n == 2 {
							proof, _ = data["device_proof"].(string)
						}
					}
				}
				return proof != ""
			})
			if code, d := in.callAs(t, tok, "POST", "/v1/me/devices", fmt.Sprintf(`{"token":"fcm-hoa-1","app":"smart","platform":"android","proof":%q}`, proof)); code != 201 {
				t.Fatalf("the token back with its proof: %d %v", code, d)
			}
			if code, s := in.callAs(t, tok, "PUT", "/v1/me/subscriptions", `{"areas":["49","20194"],"topics":["power","disaster"]}`); code != 200 {
				t.Fatalf("subscriptions: %d %v", code, s)
			}
			code, me := in.callAs(t, tok, "GET", "/v1/me", "")
			subs, _ := me["subscriptions"].(map[string]any)
			if code != 200 || me["id"] != id || len(subs["areas"].([]any)) != 2 || len(subs["topics"].([]any)) != 2 {
				t.Errorf("me: %d %v", code, me)
			}
			// The registered device is reachable through the account.
			code, n := in.call(t, "POST", "/v1/notifications", fmt.Sprintf(`{"to":{"account_id":%q},"title":"Mất điện","body":"Lịch cắt điện ngày mai","channels":["push"]}`, id))
			if code != 202 {
				t.Fatalf("notify: %d %v", code, n)
			}
			waitFor(t, "the push", func() bool {
				items := in.outbox(t, n["id"].(string))
				return len(items) == 1 && items[0]["to"] == "fcm-hoa-1"
			})
			if code, _ := in.callAs(t, tok, "DELETE", "/v1/sessions/current", ""); code != 204 {
				t.Errorf("sign out: %d", code)
			}
			if code, _ := in.callAs(t, tok, "GET", "/v1/me", ""); code != 401 {
				t.Errorf("after sign-out: %d", code)
			}
			if strings.Contains(in.logs.String(), "Hoa@2026-quangnam") {
				t.Error("the password is in the log")
			}
		})
	}
}

// registerAndSignIn registers and verifies a citizen on in and returns
// a session token.
func registerAndSignIn(t *testing.T, in *instance, citizenID, phone string) string {
	t.Helper()
	pw := "Hoa@2026-quangnam"
	code, reg := in.callAs(t, "", "POST", "/v1/citizens", fmt.Sprintf(`{"full_name":"Lê Văn Nam","citizen_id":%q,"phone":%q,"password":%q}`, citizenID, phone, pw))
	if code != 201 {
		t.Fatalf("register: %d %v", code, reg)
	}
	id, ch := reg["id"].(string), reg["challenge_id"].(string)
	otpCode, _ := in.codeFor(t, ch)
	if code, v := in.callAs(t, "", "POST", "/v1/citizens/"+id+"/verify", fmt.Sprintf(`{"challenge_id":%q,"code":%q}`, ch, otpCode)); code != 200 {
		t.Fatalf("verify: %d %v", code, v)
	}
	code, sess := in.callAs(t, "", "POST", "/v1/sessions", fmt.Sprintf(`{"username":%q,"password":%q}`, phone, pw))
	if code != 201 {
		t.Fatalf("sign in: %d %v", code, sess)
	}
	return sess["token"].(string)
}

// TestAdminOfficialCreateAndPushedCode: `loa admin official create`
// prints a one-time password; the official signs in with a code sent to
// the Egov app, which falls back to SMS without an Egov device, and must
// change the password first.
func TestAdminOfficialCreateAndPushedCode(t *testing.T) {
	env := accountsEnv(t, "embedded")
	env["LOA_DATA_DIR"] = t.TempDir()
	var out strings.Builder
	err := run(context.Background(), []string{"loa", "admin", "official", "create", "--username", "tran.van.b", "--full-name", "Trần Văn B",
		"--phone", "0911222333", "--unit", "sotttt", "--roles", "unit_admin,broadcast_approver"}, func(k string) string { return env[k] }, &out)
	if err != nil {
		t.Fatalf("official create: %v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	pw := lines[len(lines)-1]
	if len(pw) != 16 {
		t.Fatalf("no one-time password printed: %q", out.String())
	}
	if err := run(context.Background(), []string{"loa", "admin", "official", "create", "--username", "x", "--full-name", "A", "--phone", "1", "--unit", "u"},
		func(k string) string { return env[k] }, &strings.Builder{}); err == nil || !strings.Contains(err.Error(), "--username") || !strings.Contains(err.Error(), "--phone") {
		t.Errorf("bad flags: %v", err)
	}
	in := startDev(t, env)
	if code, p := in.callAs(t, "", "POST", "/v1/sessions", fmt.Sprintf(`{"username":"tran.van.b","password":%q}`, pw)); code != 401 || p["type"] != "urn:loa:problem:second-factor-required" {
		t.Fatalf("without a second factor: %d %v", code, p)
	}
	code, sent := in.callAs(t, "", "POST", "/v1/sessions", fmt.Sprintf(`{"username":"tran.van.b","password":%q,"send_code":"push"}`, pw))
	if code != 202 || sent["code_sent"] != "push" {
		t.Fatalf("send code: %d %v", code, sent)
	}
	// The challenge id is not returned (the code is bound to the account);
	// find the newest code in the outbox.
	var otpCode string
	waitFor(t, "the pushed code", func() bool {
		_, ob := in.call(t, "GET", "/v1/dev/outbox?limit=50", "")
		for _, it := range ob["items"].([]any) {
			e := it.(map[string]any)
			if strings.HasPrefix(e["notification_id"].(string), "code-") && e["to"] == "84911222333" && e["channel"] == "sms" {
				otpCode = e["body"].(string)[:6]
			}
		}
		return otpCode != ""
	})
	code, sess := in.callAs(t, "", "POST", "/v1/sessions", fmt.Sprintf(`{"username":"tran.van.b","password":%q,"otp":%q}`, pw, otpCode))
	if code != 201 || sess["password_expired"] != true {
		t.Fatalf("sign in with the pushed code: %d %v", code, sess)
	}
	tok := sess["token"].(string)
	if code, _ := in.callAs(t, tok, "GET", "/v1/me", ""); code != 403 {
		t.Errorf("restricted session reads /v1/me: %d", code)
	}
	code, fresh := in.callAs(t, tok, "POST", "/v1/me/password", fmt.Sprintf(`{"old":%q,"new":"Tr@n-van-b-2026"}`, pw))
	if code != 200 {
		t.Fatalf("change password: %d %v", code, fresh)
	}
	if code, me := in.callAs(t, fresh["token"].(string), "GET", "/v1/me", ""); code != 200 || len(me["roles"].([]any)) != 2 {
		t.Errorf("me: %d %v", code, me)
	}
}

// TestPasswordResetEndToEnd: on `loa dev`, on the embedded defaults and
// on the real services: a reset code arrives in the outbox for the
// account's phone, the new password works, the old one and the sessions
// open before the reset do not; a user name that names nobody gets the
// same answer.
func TestPasswordResetEndToEnd(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			in := startDev(t, accountsEnv(t, b.Name))
			code, reg := in.callAs(t, "", "POST", "/v1/citizens",
				`{"full_name":"Nguyễn Thị Hoa","citizen_id":"049195001234","phone":"0905123456","password":"Hoa@2026-quangnam"}`)
			if code != 201 {
				t.Fatalf("register: %d %v", code, reg)
			}
			otpCode, _ := in.codeFor(t, reg["challenge_id"].(string))
			if code, v := in.callAs(t, "", "POST", "/v1/citizens/"+reg["id"].(string)+"/verify", fmt.Sprintf(`{"challenge_id":%q,"code":%q}`, reg["challenge_id"], otpCode)); code != 200 {
				t.Fatalf("verify: %d %v", code, v)
			}
			code, sess := in.callAs(t, "", "POST", "/v1/sessions", `{"username":"049195001234","password":"Hoa@2026-quangnam"}`)
			if code != 201 {
				t.Fatalf("sign in: %d %v", code, sess)
			}
			code, nobody := in.callAs(t, "", "POST", "/v1/password-reset", `{"username":"001099000789"}`)
			if code != 202 || len(nobody) != 2 || nobody["challenge_id"] == nil {
				t.Errorf("reset for nobody: %d %v", code, nobody)
			}
			code, ch := in.callAs(t, "", "POST", "/v1/password-reset", `{"username":"0905123456"}`)
			if code != 202 || len(ch) != 2 {
				t.Fatalf("reset: %d %v", code, ch)
			}
			resetCode, channel := in.codeFor(t, ch["challenge_id"].(string))
			items := in.outbox(t, "code-"+ch["challenge_id"].(string))
			if channel != "sms" || items[0]["to"] != "84905123456" {
				t.Errorf("the reset code went to %v", items[0])
			}
			if code, p := in.callAs(t, "", "POST", "/v1/password-reset/confirm",
				fmt.Sprintf(`{"challenge_id":%q,"code":%q,"password":"Hoa@2027-hoian"}`, ch["challenge_id"], resetCode)); code != 204 {
				t.Fatalf("confirm: %d %v", code, p)
			}
			if code, _ := in.callAs(t, sess["token"].(string), "GET", "/v1/me", ""); code != 401 {
				t.Errorf("the session before the reset: %d", code)
			}
			if code, _ := in.callAs(t, "", "POST", "/v1/sessions", `{"username":"049195001234","password":"Hoa@2026-quangnam"}`); code != 401 {
				t.Errorf("the old password: %d", code)
			}
			if code, p := in.callAs(t, "", "POST", "/v1/sessions", `{"username":"049195001234","password":"Hoa@2027-hoian"}`); code != 201 {
				t.Errorf("the new password: %d %v", code, p)
			}
			if len(in.outbox(t, "code-"+nobody["challenge_id"].(string))) != 0 {
				t.Error("a code was sent for nobody")
			}
			if strings.Contains(in.logs.String(), "Hoa@2027-hoian") {
				t.Error("the password is in the log")
			}
		})
	}
}
