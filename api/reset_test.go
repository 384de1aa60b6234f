package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/loa-hub/loa/otp"
	"github.com/loa-hub/loa/producer"
)

// Password reset by SMS code, and the abuse cases an attacker tries
// against it.

const newPassword = "Mật-khẩu-mới-7"

// resetRequest asks for a reset code from ip.
func (f *accFixture) resetRequest(t *testing.T, username, ip string) (*http.Response, map[string]any) {
	t.Helper()
	return f.do(t, "POST", "/v1/password-reset", "", fmt.Sprintf(`{"username":%q}`, username), "X-Forwarded-For", ip)
}

// resetConfirm sets a password with a reset code from ip; otpCode is an
// official's second factor ("" for none).
func (f *accFixture) resetConfirm(t *testing.T, challengeID, code, password, otpCode, ip string) (*http.Response, map[string]any) {
	t.Helper()
	body := fmt.Sprintf(`{"challenge_id":%q,"code":%q,"password":%q}`, challengeID, code, password)
	if otpCode != "" {
		body = fmt.Sprintf(`{"challenge_id":%q,"code":%q,"password":%q,"otp":%q}`, challengeID, code, password, otpCode)
	}
	return f.do(t, "POST", "/v1/password-reset/confirm", "", body, "X-Forwarded-For", ip)
}

// published returns what was published from the n-th message on, after
// the service's detached sends.
func (f *accFixture) published(t *testing.T, from int) []producer.Direct {
	t.Helper()
	f.flush(t)
	var out []producer.Direct
	for _, e := range f.pub.Envelopes()[from:] {
		var d producer.Direct
		if err := json.Unmarshal(e.Payload, &d); err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// TestPasswordReset: a code to the account's verified phone, a new
// password under the policy and the history, every session ended, no new
// one opened, the phone told; the code is single use.
func TestPasswordReset(t *testing.T) {
	f := newAccountsFixture(t)
	id, tok1 := f.citizen(t, "049095000123", "0912345678")
	_, s := f.signInWith(t, "0912345678", "Mật-khẩu-1", "", "203.0.113.1")
	tok2 := s["token"].(string)
	f.clock.Advance(time.Minute)

	n := f.pub.count()
	resp, ch := f.resetRequest(t, "049095000123", "203.0.113.1")
	if resp.StatusCode != 202 || ch["challenge_id"] == nil || ch["expires_at"] != f.clock.Now().Add(5*time.Minute).Format(time.RFC3339) {
		t.Fatalf("request: %d %v", resp.StatusCode, ch)
	}
	sent := f.published(t, n)
	if len(sent) != 1 || sent[0].To.Value != "84912345678" || !strings.Contains(sent[0].Body, "dat lai mat khau") {
		t.Fatalf("the code went: %+v", sent)
	}
	code, chID := sent[0].Body[:6], ch["challenge_id"].(string)

	// The generic code check neither accepts nor spends a reset code.
	if resp, p := f.do(t, "POST", "/v1/otp/sms/verify", "", fmt.Sprintf(`{"challenge_id":%q,"code":%q}`, chID, code)); resp.StatusCode != 422 {
		t.Errorf("a reset code at /v1/otp/sms/verify: %d %v", resp.StatusCode, p)
	}
	// The policy and the history are checked, and a refusal keeps the
	// code.
	for _, pw := range []string{"ngắn", "Mật-khẩu-1"} {
		if resp, p := f.resetConfirm(t, chID, code, pw, "", "203.0.113.1"); resp.StatusCode != 400 || p["field"] != "password" {
			t.Errorf("password %q: %d %v", pw, resp.StatusCode, p)
		}
	}
	n = f.pub.count()
	if resp, p := f.resetConfirm(t, chID, code, newPassword, "", "203.0.113.1"); resp.StatusCode != 204 {
		t.Fatalf("confirm: %d %v", resp.StatusCode, p)
	}
	// Every session ended; the old password is gone; the new one works.
	for _, tok := range []string{tok1, tok2} {
		if resp, _ := f.do(t, "GET", "/v1/me", tok, ""); resp.StatusCode != 401 {
			t.Errorf("a session survived the reset: %d", resp.StatusCode)
		}
	}
	if resp, _ := f.signInWith(t, "049095000123", "Mật-khẩu-1", "", "203.0.113.1"); resp.StatusCode != 401 {
		t.Errorf("old password: %d", resp.StatusCode)
	}
	if resp, p := f.signInWith(t, "049095000123", newPassword, "", "203.0.113.1"); resp.StatusCode != 201 || p["account_id"] != id || p["password_expired"] != false {
		t.Errorf("new password: %d %v", resp.StatusCode, p)
	}
	if sent := f.published(t, n); len(sent) != 1 || sent[0].To.Value != "84912345678" || strings.ContainsAny(sent[0].Body, "0123456789") {
		t.Errorf("the notice: %+v", sent)
	}
	// The code is spent.
	if resp, p := f.resetConfirm(t, chID, code, "Lại-mật-khẩu-8", "", "203.0.113.1"); resp.StatusCode != 422 || p["field"] != "code" {
		t.Errorf("the code again: %d %v", resp.StatusCode, p)
	}
	if rows := f.audit(t, "password.reset"); len(rows) != 1 || rows[0].subject != id {
		t.Errorf("audit: %v", rows)
	}
}

// TestPasswordResetRace: twenty confirmations with the right code at once
// reset the password once.
func TestPasswordResetRace(t *testing.T) {
	f := newAccountsFixture(t)
	f.citizen(t, "049095000123", "0912345678")
	f.clock.Advance(time.Minute)
	_, ch := f.resetRequest(t, "0912345678", "203.0.113.1")
	code := f.lastCode(t)
	var (
		mu  sync.Mutex
		got = map[int]int{}
		wg  sync.WaitGroup
	)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := f.resetConfirm(t, ch["challenge_id"].(string), code, fmt.Sprintf("Mật-khẩu-đua-%d", i), "", "203.0.113.1")
			mu.Lock()
			got[resp.StatusCode]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if got[204] != 1 || got[422] != 19 {
		t.Errorf("statuses: %v", got)
	}
	if rows := f.audit(t, "password.reset"); len(rows) != 1 {
		t.Errorf("%d resets", len(rows))
	}
}

// TestPasswordResetAnswersAlike: a user name that names an active account,
// none, or only a pending registration gets the same answer, the same
// limits and the same wrong-code throttling; only a real account's phone
// gets an SMS. Two identifiers of one account do not share a send window,
// so a window does not tell that they belong together.
func TestPasswordResetAnswersAlike(t *testing.T) {
	f := newAccountsFixture(t)
	f.citizen(t, "049095000123", "0912345678")
	f.clock.Advance(time.Minute)
	resp, pending := f.register(t, "049095000456", "0987654321", "198.51.100.1")
	if resp.StatusCode != 201 {
		t.Fatalf("pending: %d %v", resp.StatusCode, pending)
	}
	f.clock.Advance(time.Minute)

	pendingCode := f.lastCode(t)
	users := map[string]string{"active": "049095000123", "unknown": "001099000789", "pending": "049095000456"}
	for i, name := range []string{"active", "unknown", "pending"} {
		user, ip := users[name], fmt.Sprintf("203.0.113.%d", 10+i)
		n := f.pub.count()
		resp, ch := f.resetRequest(t, user, ip)
		keys := fmt.Sprint(len(ch), ch["challenge_id"] != nil, ch["expires_at"])
		if resp.StatusCode != 202 || keys != fmt.Sprint(2, true, f.clock.Now().Add(5*time.Minute).Format(time.RFC3339)) {
			t.Errorf("%s: %d %v", name, resp.StatusCode, ch)
		}
		sent := f.published(t, n)
		if want := map[string]int{"active": 1}[name]; len(sent) != want {
			t.Errorf("%s: %d messages sent: %+v", name, len(sent), sent)
		}
		right := ""
		if len(sent) > 0 {
			right = sent[0].Body[:6]
		}
		// The same cooldown.
		if resp, p := f.resetRequest(t, user, ip); resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "30" {
			t.Errorf("%s again at once: %d %v", name, resp.StatusCode, p)
		}
		// The same throttling after wrong codes: 5 are free, the 6th
		// makes the user name wait a minute.
		id := ch["challenge_id"].(string)
		for j := range 5 {
			if resp, p := f.resetConfirm(t, id, wrongCode(right, j), newPassword, "", "198.51.100.50"); resp.StatusCode != 422 || p["field"] != "code" {
				t.Errorf("%s: wrong code %d: %d %v", name, j, resp.StatusCode, p)
			}
		}
		f.clock.Advance(31 * time.Second)
		n = f.pub.count()
		_, ch = f.resetRequest(t, user, ip)
		if sent := f.published(t, n); len(sent) > 0 {
			right = sent[0].Body[:6]
		}
		if resp, p := f.resetConfirm(t, ch["challenge_id"].(string), wrongCode(right, 0), newPassword, "", "198.51.100.51"); resp.StatusCode != 422 {
			t.Errorf("%s: 6th wrong code: %d %v", name, resp.StatusCode, p)
		}
		f.clock.Advance(31 * time.Second)
		if resp, p := f.resetRequest(t, user, ip); resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "29" {
			t.Errorf("%s: a new code after 6 wrong ones: %d %v %q", name, resp.StatusCode, p, resp.Header.Get("Retry-After"))
		}
	}
	// Nothing about the pending registration changed: it verifies with
	// its own code and signs in with its own password.
	if resp, p := f.do(t, "POST", "/v1/citizens/"+pending["id"].(string)+"/verify", "", fmt.Sprintf(`{"challenge_id":%q,"code":%q}`, pending["challenge_id"], pendingCode)); resp.StatusCode != 200 {
		t.Errorf("pending verifies: %d %v", resp.StatusCode, p)
	}
	if resp, p := f.signInWith(t, "049095000456", "Mật-khẩu-1", "", "203.0.113.20"); resp.StatusCode != 201 {
		t.Errorf("pending signs in: %d %v", resp.StatusCode, p)
	}
	// The citizen ID and the phone of one account: each its own window.
	f.clock.Advance(time.Hour)
	for _, user := range []string{"049095000123", "0912345678"} {
		if resp, p := f.resetRequest(t, user, "203.0.113.3"); resp.StatusCode != 202 {
			t.Errorf("%s: %d %v", user, resp.StatusCode, p)
		}
	}
}

// wrongCode is a 6-digit code other than right ("" when unknown).
func wrongCode(right string, i int) string {
	return fmt.Sprintf("%06d", (mustAtoi(right)+1+i)%1_000_000)
}

// TestPasswordResetAbuse: someone else's account (the code goes to its
// owner, and an attacker's own codes do not fit), codes of other flows,
// brute force (5 wrong void a code; an address guessing across user
// names waits, refused before its body is read).
func TestPasswordResetAbuse(t *testing.T) {
	f := newAccountsFixture(t)
	victimID, victimTok := f.citizen(t, "049095000123", "0912345678")
	f.clock.Advance(time.Minute)
	f.citizen(t, "049095000456", "0987654321") // the attacker
	f.clock.Advance(time.Minute)

	// The attacker asks to reset the victim's account: the code goes to
	// the victim's phone, not to the attacker.
	n := f.pub.count()
	_, vch := f.resetRequest(t, "049095000123", "198.51.100.66")
	if sent := f.published(t, n); len(sent) != 1 || sent[0].To.Value != "84912345678" {
		t.Fatalf("the victim's code went: %+v", sent)
	}
	// The attacker's own reset code does not open the victim's challenge,
	// and the attacker's own challenge resets only the attacker.
	_, ach := f.resetRequest(t, "049095000456", "198.51.100.66")
	attackerCode := f.lastCode(t)
	if resp, p := f.resetConfirm(t, vch["challenge_id"].(string), attackerCode, newPassword, "", "198.51.100.66"); resp.StatusCode != 422 {
		t.Errorf("the attacker's code on the victim's challenge: %d %v", resp.StatusCode, p)
	}
	if resp, p := f.resetConfirm(t, ach["challenge_id"].(string), attackerCode, newPassword, "", "198.51.100.66"); resp.StatusCode != 204 {
		t.Errorf("the attacker's own reset: %d %v", resp.StatusCode, p)
	}
	if resp, _ := f.do(t, "GET", "/v1/me", victimTok, ""); resp.StatusCode != 200 {
		t.Errorf("the victim's session after the attacker's reset: %d", resp.StatusCode)
	}
	if resp, p := f.signInWith(t, "049095000123", "Mật-khẩu-1", "", "203.0.113.1"); resp.StatusCode != 201 || p["account_id"] != victimID {
		t.Errorf("the victim's password after the attacker's tries: %d %v", resp.StatusCode, p)
	}
	// A code of another flow, to a phone the attacker holds, is not a
	// reset code.
	f.clock.Advance(time.Minute)
	resp, reg := f.register(t, "049095000789", "0977777777", "198.51.100.66")
	if resp.StatusCode != 201 {
		t.Fatalf("register: %d %v", resp.StatusCode, reg)
	}
	if resp, p := f.resetConfirm(t, reg["challenge_id"].(string), f.lastCode(t), newPassword, "", "198.51.100.67"); resp.StatusCode != 422 {
		t.Errorf("a registration code as a reset code: %d %v", resp.StatusCode, p)
	}

	// Brute force of one code: the 5th wrong try voids it; the right one
	// is refused afterwards.
	f.clock.Advance(time.Minute)
	_, vch = f.resetRequest(t, "0912345678", "198.51.100.70")
	right := f.lastCode(t)
	for i := range 5 {
		if resp, p := f.resetConfirm(t, vch["challenge_id"].(string), wrongCode(right, i), newPassword, "", fmt.Sprintf("198.51.100.%d", 71+i)); resp.StatusCode != 422 {
			t.Errorf("wrong code %d: %d %v", i, resp.StatusCode, p)
		}
	}
	if resp, p := f.resetConfirm(t, vch["challenge_id"].(string), right, newPassword, "", "203.0.113.9"); resp.StatusCode != 422 {
		t.Errorf("the right code after 5 wrong ones: %d %v", resp.StatusCode, p)
	}
	if resp, p := f.signInWith(t, "049095000123", "Mật-khẩu-1", "", "203.0.113.1"); resp.StatusCode != 201 {
		t.Errorf("the victim's password after the brute force: %d %v", resp.StatusCode, p)
	}

	// One address guessing across many user names is throttled after 20
	// wrong codes, before its body is read (a malformed one included).
	const guesser = "192.0.2.99"
	for i := range 21 {
		_, ch := f.resetRequest(t, fmt.Sprintf("0490950003%02d", i), fmt.Sprintf("203.0.113.%d", 100+i))
		f.resetConfirm(t, ch["challenge_id"].(string), "000000", newPassword, "", guesser)
	}
	if resp, p := f.do(t, "POST", "/v1/password-reset/confirm", "", `{"challenge_id":`, "X-Forwarded-For", guesser); resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a guessing address, malformed body: %d %v", resp.StatusCode, p)
	}
	if resp, p := f.do(t, "POST", "/v1/password-reset", "", `not json`, "X-Forwarded-For", guesser); resp.StatusCode != 429 {
		t.Errorf("a guessing address asks for codes: %d %v", resp.StatusCode, p)
	}
	if resp, p := f.resetRequest(t, "049095000123", "203.0.113.51"); resp.StatusCode != 202 {
		t.Errorf("another address: %d %v", resp.StatusCode, p)
	}
}

func mustAtoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// TestPasswordResetOfficial: the phone alone does not reset an official's
// password (an authenticator or recovery code is needed too, and a code
// sent to the phone is not one); an official a stranger has locked out of
// sign-in resets and signs in again.
func TestPasswordResetOfficial(t *testing.T) {
	f := newAccountsFixture(t)
	_, tok := f.official(t, "can.bo", "0911111111", "snn")
	secret, recovery := f.enrol(t, tok)
	f.clock.Advance(time.Hour)
	// A code for sign-in, texted to the official's phone.
	if resp, p := f.do(t, "POST", "/v1/sessions", "", `{"username":"can.bo","password":"Mật-khẩu-1","send_code":"sms"}`); resp.StatusCode != 202 {
		t.Fatalf("send code: %d %v", resp.StatusCode, p)
	}
	texted := f.lastCode(t)
	// A stranger throttles the official's sign-in.
	for i := range 8 {
		f.signInWith(t, "can.bo", "Sai-mật-khẩu-9", "", fmt.Sprintf("198.51.100.%d", 100+i))
	}
	good, _ := totp.GenerateCode(secret, f.clock.Now())
	if resp, _ := f.signInWith(t, "can.bo", "Mật-khẩu-1", good, "203.0.113.9"); resp.StatusCode != 429 {
		t.Fatalf("throttled official: %d", resp.StatusCode)
	}

	_, ch := f.resetRequest(t, "can.bo", "203.0.113.9")
	id, code := ch["challenge_id"].(string), f.lastCode(t)
	if resp, p := f.resetConfirm(t, id, code, newPassword, "", "203.0.113.9"); resp.StatusCode != 401 || p["type"] != "urn:loa:problem:second-factor-required" {
		t.Errorf("official without a second factor: %d %v", resp.StatusCode, p)
	}
	// A code texted to the same phone is not a second factor here.
	if resp, p := f.resetConfirm(t, id, code, newPassword, texted, "203.0.113.9"); resp.StatusCode != 401 || p["type"] != "urn:loa:problem:second-factor-rejected" {
		t.Errorf("official with a texted code as the second factor: %d %v", resp.StatusCode, p)
	}
	// The reset code survived the refusals; with a recovery code it works.
	if resp, p := f.resetConfirm(t, id, code, newPassword, recovery[0], "203.0.113.9"); resp.StatusCode != 204 {
		t.Fatalf("official with a recovery code: %d %v", resp.StatusCode, p)
	}
	f.clock.Advance(otp.TOTPPeriod)
	good, _ = totp.GenerateCode(secret, f.clock.Now())
	if resp, p := f.signInWith(t, "can.bo", newPassword, good, "203.0.113.9"); resp.StatusCode != 201 {
		t.Errorf("official after the reset: %d %v", resp.StatusCode, p)
	}
}

// TestPasswordResetCannotFloodAPhone: a stranger spelling one citizen's
// phone number (and citizen ID) many ways, from many addresses, each
// spelling with its own send window, gets the phone 5 reset codes, not
// one per spelling; every answer is the same, and the account's own
// bound reopens after its wait.
func TestPasswordResetCannotFloodAPhone(t *testing.T) {
	f := newAccountsFixture(t)
	f.citizen(t, "049095000123", "0912345678")
	f.clock.Advance(time.Minute)
	spellings := []string{"0912345678", "+84912345678", "84912345678", "0912 345 678", "0912.345.678",
		"0912-345-678", "+84 912 345 678", "049095000123", "+84-912-345-678", "(0912) 345678"}
	n := f.pub.count()
	for i, user := range spellings {
		resp, ch := f.resetRequest(t, user, fmt.Sprintf("198.51.100.%d", 100+i))
		if resp.StatusCode != 202 || len(ch) != 2 || ch["challenge_id"] == nil {
			t.Errorf("%q: %d %v", user, resp.StatusCode, ch)
		}
	}
	sent := f.published(t, n)
	if len(sent) != 5 {
		t.Errorf("%d reset codes sent to the phone for %d requests, want 5", len(sent), len(spellings))
	}
	for _, d := range sent {
		if d.To.Value != "84912345678" {
			t.Errorf("sent to %s", d.To.Value)
		}
	}
	// The owner's next code comes after the account's wait (30 minutes).
	f.clock.Advance(31 * time.Minute)
	n = f.pub.count()
	if resp, ch := f.resetRequest(t, "0912345678", "203.0.113.7"); resp.StatusCode != 202 {
		t.Fatalf("the owner: %d %v", resp.StatusCode, ch)
	}
	if sent := f.published(t, n); len(sent) != 1 || sent[0].To.Value != "84912345678" {
		t.Errorf("the owner's code after the wait: %+v", sent)
	}
}

// TestResetKeyPassesTheAddressWait: while an office's address waits after
// a stranger's wrong reset codes, a reset without a client_key, with a
// made-up one, or in a body over what is read from a waiting address is
// 429 with Retry-After; the citizen's app behind the same address, with
// the client_key of its sign-in, asks and confirms its reset.
func TestResetKeyPassesTheAddressWait(t *testing.T) {
	f := newAccountsFixture(t)
	const office = "192.0.2.50"
	f.citizen(t, "049095000123", "0912345678")
	resp, s := f.signInWith(t, "049095000123", "Mật-khẩu-1", "", office)
	key, _ := s["client_key"].(string)
	if resp.StatusCode != 201 || key == "" {
		t.Fatalf("sign in: %d %v", resp.StatusCode, s)
	}
	for i := range 21 {
		f.resetConfirm(t, fmt.Sprintf("guess-%d", i), "000000", "Mật-khẩu-2", "", office)
	}
	for name, body := range map[string]string{
		"no key":         `{"username":"049095000123"}`,
		"a made-up key":  `{"username":"049095000123","client_key":"ck1.AAAA.AAAA"}`,
		"an 8 KiB body":  `{"username":"049095000123","client_key":"` + key + `","pad":"` + strings.Repeat("x", 8<<10) + `"}`,
		"malformed JSON": `{"username":"049095000123","client_key":"` + key,
	} {
		if resp, p := f.do(t, "POST", "/v1/password-reset", "", body, "X-Forwarded-For", office); resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" ||
			p["type"] != "urn:loa:problem:rate-limited" {
			t.Errorf("%s from the waiting address: %d %v", name, resp.StatusCode, p)
		}
	}
	resp, ch := f.do(t, "POST", "/v1/password-reset", "", `{"username":"049095000123","client_key":"`+key+`"}`, "X-Forwarded-For", office)
	if resp.StatusCode != 202 {
		t.Fatalf("the app with its key: %d %v", resp.StatusCode, ch)
	}
	code := f.lastCode(t)
	confirm := func(key string) (*http.Response, map[string]any) {
		return f.do(t, "POST", "/v1/password-reset/confirm", "", fmt.Sprintf(`{"challenge_id":%q,"code":%q,"password":"Mật-khẩu-2","client_key":%q}`,
			ch["challenge_id"], code, key), "X-Forwarded-For", office)
	}
	if resp, p := confirm(""); resp.StatusCode != 429 {
		t.Errorf("confirming without the key: %d %v", resp.StatusCode, p)
	}
	if resp, p := confirm(key); resp.StatusCode != 204 {
		t.Fatalf("confirming with the key: %d %v", resp.StatusCode, p)
	}
	if resp, p := f.signInWith(t, "049095000123", "Mật-khẩu-2", "", "203.0.113.60"); resp.StatusCode != 201 {
		t.Errorf("the new password: %d %v", resp.StatusCode, p)
	}
}
