package api_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestAnonymousCodesCannotFloodAPhone: registrations and POST
// /v1/otp/sms for one phone, from many addresses, each within its
// purpose's window, text the phone 10 times, not without end; the
// eleventh is a 429 with Retry-After whatever the flow, and the phone's
// own bound reopens after its wait.
func TestAnonymousCodesCannotFloodAPhone(t *testing.T) {
	f := newAccountsFixture(t)
	const phone = "0912345678"
	n := f.pub.count()
	var statuses []int
	for i := range 14 {
		ip := fmt.Sprintf("198.51.100.%d", 10+i)
		var status int
		switch i % 3 {
		case 0:
			resp, _ := f.register(t, fmt.Sprintf("0490950004%02d", i), phone, ip)
			status = resp.StatusCode
		case 1:
			resp, _ := f.do(t, "POST", "/v1/otp/sms", "", fmt.Sprintf(`{"phone":%q,"purpose":"verify_phone"}`, phone), "X-Forwarded-For", ip)
			status = resp.StatusCode
		default:
			resp, _ := f.do(t, "POST", "/v1/otp/sms", "", fmt.Sprintf(`{"phone":%q,"purpose":"register"}`, phone), "X-Forwarded-For", ip)
			status = resp.StatusCode
		}
		statuses = append(statuses, status)
		f.clock.Advance(2 * time.Minute) // past each purpose's cooldown and within its window
	}
	if got := fmt.Sprint(statuses); got != "[201 202 202 201 202 202 201 202 202 201 429 429 429 429]" {
		t.Errorf("statuses %s", got)
	}
	sent := f.published(t, n)
	if len(sent) != 10 {
		t.Errorf("%d SMS to the phone, want 10", len(sent))
	}
	resp, p := f.do(t, "POST", "/v1/otp/sms", "", fmt.Sprintf(`{"phone":%q,"purpose":"verify_phone"}`, phone), "X-Forwarded-For", "203.0.113.1")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || p["type"] != "urn:loa:problem:rate-limited" {
		t.Errorf("past the bound: %d %v", resp.StatusCode, p)
	}
	// Another phone is not touched; this one is served again after its wait.
	if resp, p := f.do(t, "POST", "/v1/otp/sms", "", `{"phone":"0987654321","purpose":"verify_phone"}`, "X-Forwarded-For", "203.0.113.1"); resp.StatusCode != 202 {
		t.Errorf("another phone: %d %v", resp.StatusCode, p)
	}
	f.clock.Advance(31 * time.Minute)
	if resp, p := f.do(t, "POST", "/v1/otp/sms", "", fmt.Sprintf(`{"phone":%q,"purpose":"verify_phone"}`, phone), "X-Forwarded-For", "203.0.113.2"); resp.StatusCode != 202 {
		t.Errorf("after the wait: %d %v", resp.StatusCode, p)
	}
}

// TestRefusalsDoNotFloodTheAuditLog: a request refused at no cost to its
// sender — a sign-in or a reset from an address that must wait, a
// registration's verification or a reset naming a challenge that does
// not exist — repeated 50 times writes a bounded number of audit rows,
// not one per request.
func TestRefusalsDoNotFloodTheAuditLog(t *testing.T) {
	f := newAccountsFixture(t)
	const stranger = "192.0.2.66"
	count := func(action, reason string) int {
		n := 0
		for _, r := range f.audit(t, action) {
			if strings.Contains(r.detail, reason) {
				n++
			}
		}
		return n
	}

	// Sign-in: the address fails 21 times and must wait; 50 more tries.
	for i := range 21 {
		f.signInWith(t, fmt.Sprintf("0490950009%02d", i), "Sai-mật-khẩu-9", "", stranger)
	}
	for range 50 {
		if resp, _ := f.signInWith(t, "049095000123", "Sai-mật-khẩu-9", "", stranger); resp.StatusCode != 429 {
			t.Fatalf("a throttled address: %d", resp.StatusCode)
		}
	}
	if n := count("session.failure", `"throttled"`); n != 1 {
		t.Errorf("%d audit rows for 50 throttled sign-ins in one minute, want 1", n)
	}
	f.clock.Advance(61 * time.Second)
	f.signInWith(t, "049095000123", "Sai-mật-khẩu-9", "", stranger) // the wait is over: one more failure
	if resp, _ := f.signInWith(t, "049095000123", "Sai-mật-khẩu-9", "", stranger); resp.StatusCode != 429 {
		t.Fatalf("throttled again: %d", resp.StatusCode)
	}
	if n := count("session.failure", `"throttled"`); n != 2 {
		t.Errorf("%d audit rows after another minute, want 2", n)
	}

	// Reset: challenge IDs that name nothing count against the address.
	const guesser = "192.0.2.77"
	for i := range 50 {
		f.resetConfirm(t, fmt.Sprintf("AAAAAAAAAAAAAAAAAAAA%02d", i), "123456", newPassword, "", guesser)
	}
	if n := count("password.reset.failure", ""); n > 22 {
		t.Errorf("%d audit rows for 50 made-up reset challenges, want at most 22", n)
	}

	// A registration's verification with made-up challenge IDs.
	resp, reg := f.register(t, "049095000123", "0912345678", "198.51.100.1")
	if resp.StatusCode != 201 {
		t.Fatalf("register: %d %v", resp.StatusCode, reg)
	}
	for i := range 50 {
		f.do(t, "POST", "/v1/citizens/"+reg["id"].(string)+"/verify", "", fmt.Sprintf(`{"challenge_id":"BBBBBBBBBBBBBBBBBBBBBB%02d","code":"123456"}`, i), "X-Forwarded-For", stranger)
	}
	if n := count("account.verify.failure", ""); n != 1 {
		t.Errorf("%d audit rows for 50 made-up registration challenges, want 1", n)
	}
}

// TestDevicesPerAccountAreBounded: a citizen registering made-up push
// tokens one after another keeps only the last 10; the earliest go, so a
// broadcast to the citizen's area never fans out to thousands of them.
func TestDevicesPerAccountAreBounded(t *testing.T) {
	f := newAccountsFixture(t)
	id, tok := f.citizen(t, "049095000123", "0912345678")
	for i := range 12 {
		f.clock.Advance(time.Second)
		if resp, p := f.do(t, "POST", "/v1/me/devices", tok, fmt.Sprintf(`{"token":"made-up-%02d","app":"egov","platform":"android"}`, i)); resp.StatusCode != 201 {
			t.Fatalf("device %d: %d %v", i, resp.StatusCode, p)
		}
	}
	rows, err := f.store.SQL().QueryContext(context.Background(), `SELECT token FROM devices WHERE account_id = $1 ORDER BY token`, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var tokens []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, s)
	}
	if len(tokens) != 10 || tokens[0] != "made-up-02" || tokens[9] != "made-up-11" {
		t.Errorf("kept %d: %v", len(tokens), tokens)
	}
}
