package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/loa-hub/loa/internal/testenv"
)

// TestFeedbackEndToEnd: on `loa dev`, a registered citizen sends feedback
// with the Smart app's session; the demo handler answers it; the answer
// reaches the citizen's device through the direct lane, the dispatcher
// and the (sandbox) push channel; the public view and Open311 show it
// without the citizen's data. On the embedded defaults and the real
// services.
func TestFeedbackEndToEnd(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			in := startDev(t, accountsEnv(t, b.Name))
			code, reg := in.callAs(t, "", "POST", "/v1/citizens",
				`{"full_name":"Nguyễn Thị Hoa","citizen_id":"049195001234","phone":"0905 123 456","password":"Hoa@2026-quangnam"}`)
			if code != 201 {
				t.Fatalf("register: %d %v", code, reg)
			}
			ch := reg["challenge_id"].(string)
			otpCode, _ := in.codeFor(t, ch)
			if code, v := in.callAs(t, "", "POST", "/v1/citizens/"+reg["id"].(string)+"/verify", fmt.Sprintf(`{"challenge_id":%q,"code":%q}`, ch, otpCode)); code != 200 {
				t.Fatalf("verify: %d %v", code, v)
			}
			_, sess := in.callAs(t, "", "POST", "/v1/sessions", `{"username":"0905123456","password":"Hoa@2026-quangnam"}`)
			cit := sess["token"].(string)
			if code, d := in.callAs(t, cit, "POST", "/v1/me/devices", `{"token":"fcm-hoa-fb","app":"smart","platform":"android"}`); code != 201 {
				t.Fatalf("device: %d %v", code, d)
			}
			code, fb := in.callAs(t, cit, "POST", "/v1/feedback", `{"category":"rac-thai","title":"Rác ở chợ Hội An",
				"description":"Rác tồn đọng ba ngày, gọi tôi 0905123456","lat":15.8768,"long":108.3291,"address":"12 Trần Phú"}`)
			if code != 201 || fb["agency"] != "so-tnmt" || fb["area"] != "20497" {
				t.Fatalf("feedback: %d %v", code, fb)
			}
			id := fb["id"].(string)
			handler := in.signInDemo(t, "demo-handler")
			if code, a := in.callAs(t, handler, "POST", "/v1/feedback/"+id+"/answer", `{"text":"Đã thu gom rác sáng 24/11."}`); code != 200 || a["status"] != "answered" {
				t.Fatalf("answer: %d %v", code, a)
			}
			// The receipt of the submission and the answer both reach the device.
			waitFor(t, "the answer's push", func() bool {
				_, out := in.call(t, "GET", "/v1/dev/outbox?limit=10000", "")
				n := 0
				for _, it := range out["items"].([]any) {
					m := it.(map[string]any)
					if m["to"] == "fcm-hoa-fb" && strings.Contains(fmt.Sprint(m["notification_id"]), id) {
						n++
					}
				}
				return n == 2
			})
			_, pub := in.callAs(t, "", "GET", "/v1/public/feedback/"+id, "")
			if pub["status"] != "answered" || pub["answer"] != "Đã thu gom rác sáng 24/11." {
				t.Errorf("public view: %v", pub)
			}
			for _, path := range []string{"/v1/public/feedback/" + id, "/open311/v2/requests/" + id + ".json", "/open311/v2/requests/" + id + ".xml"} {
				body := in.raw(t, path)
				for _, secret := range []string{"Hoa", "0905123456", "84905123456", "049195001234", "Trần Phú", "15.8768"} {
					if strings.Contains(body, secret) {
						t.Errorf("%s holds %q: %s", path, secret, body)
					}
				}
			}
			if code, r := in.callAs(t, cit, "POST", "/v1/feedback/"+id+"/rating", `{"rating":5}`); code != 200 || r["status"] != "closed" {
				t.Errorf("rating: %d %v", code, r)
			}
		})
	}
}

// raw GETs a path without credentials and returns the body.
func (in *instance) raw(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get(in.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}
