package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/loa-hub/loa/internal/testenv"
)

// citizenWithDevice registers and verifies a citizen on loa dev, signs
// them in, subscribes them to topics and registers a Smart app device;
// it returns the session token.
func (in *instance) citizenWithDevice(t *testing.T, name, cccd, phone, token string, topics ...string) string {
	t.Helper()
	const pass = "Cong-dan@2026-quangnam"
	code, reg := in.callAs(t, "", "POST", "/v1/citizens", fmt.Sprintf(`{"full_name":%q,"citizen_id":%q,"phone":%q,"password":%q}`, name, cccd, phone, pass))
	if code != 201 {
		t.Fatalf("register: %d %v", code, reg)
	}
	ch := reg["challenge_id"].(string)
	otpCode, _ := in.codeFor(t, ch)
	if code, v := in.callAs(t, "", "POST", "/v1/citizens/"+reg["id"].(string)+"/verify", fmt.Sprintf(`{"challenge_id":%q,"code":%q}`, ch, otpCode)); code != 200 {
		t.Fatalf("verify: %d %v", code, v)
	}
	_, sess := in.callAs(t, "", "POST", "/v1/sessions", fmt.Sprintf(`{"username":%q,"password":%q}`, phone, pass))
	tok := sess["token"].(string)
	quoted := make([]string, len(topics))
	for i, tp := range topics {
		quoted[i] = fmt.Sprintf("%q", tp)
	}
	if code, s := in.callAs(t, tok, "PUT", "/v1/me/subscriptions", `{"areas":[],"topics":[`+strings.Join(quoted, ",")+`]}`); code != 200 {
		t.Fatalf("subscribe: %d %v", code, s)
	}
	if code, d := in.callAs(t, tok, "POST", "/v1/me/devices", fmt.Sprintf(`{"token":%q,"app":"smart","platform":"android"}`, token)); code != 201 {
		t.Fatalf("device: %d %v", code, d)
	}
	return tok
}

// TestPortalEndToEnd: on `loa dev`, the demo editor drafts an article in
// the news category (topic "general") and submits it, the demo chief
// editor approves it, and the push with its title and deep link reaches
// the device of a citizen subscribed to "general" through the bulk lane,
// the dispatcher and the (sandbox) push channel; the article is then
// public. On the embedded defaults and the real services.
func TestPortalEndToEnd(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			in := startDev(t, accountsEnv(t, b.Name))
			in.citizenWithDevice(t, "Nguyễn Thị Lan", "049195004321", "0905 432 100", "fcm-lan-portal", "general")
			editor := in.signInDemo(t, "demo-editor")
			code, a := in.callAs(t, editor, "POST", "/v1/portal/articles", `{"category":"tin-tuc","vi":{"title":"Quảng Nam mở cổng dịch vụ công mới",
				"summary":"Từ 1/12 người dân nộp hồ sơ trực tuyến.","body":"<p>Cổng mới <a href=\"https://dichvucong.quangnam.gov.vn\">tại đây</a>.</p>"}}`)
			if code != 201 {
				t.Fatalf("draft: %d %v", code, a)
			}
			id := a["id"].(string)
			if code, s := in.callAs(t, editor, "POST", "/v1/portal/desk/"+id+"/submit", ""); code != 200 {
				t.Fatalf("submit: %d %v", code, s)
			}
			chief := in.signInDemo(t, "demo-chief-editor")
			if code, s := in.callAs(t, chief, "POST", "/v1/portal/desk/"+id+"/approve", `{}`); code != 200 || s["status"] != "published" {
				t.Fatalf("approve: %d %v", code, s)
			}
			var push map[string]any
			waitFor(t, "the publication's push to the subscriber", func() bool {
				_, out := in.call(t, "GET", "/v1/dev/outbox?limit=10000", "")
				for _, it := range out["items"].([]any) {
					m := it.(map[string]any)
					if m["to"] == "fcm-lan-portal" && strings.Contains(fmt.Sprint(m["notification_id"]), id) {
						push = m
						return true
					}
				}
				return false
			})
			data, _ := push["data"].(map[string]any)
			if push["title"] != "Quảng Nam mở cổng dịch vụ công mới" || data == nil || data["article_id"] != id ||
				!strings.HasSuffix(fmt.Sprint(data["url"]), "/v1/portal/articles/quang-nam-mo-cong-dich-vu-cong-moi") {
				t.Errorf("push %v", push)
			}
			if code, pub := in.callAs(t, "", "GET", "/v1/portal/articles/quang-nam-mo-cong-dich-vu-cong-moi", ""); code != 200 || pub["id"] != id {
				t.Errorf("public article: %d %v", code, pub)
			}
		})
	}
}
