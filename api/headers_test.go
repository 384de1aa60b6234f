package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/loa-hub/loa/api"
	"github.com/loa-hub/loa/channels/sandbox"
)

// TestHeaders: nosniff on every answer; no-store on every answer, and so
// on those that carry a token, a code or a secret; Allow on 405; the API
// document's servers relative to wherever it is served.
func TestHeaders(t *testing.T) {
	f := newAccountsFixture(t, func(d *api.Deps) { d.Outbox = sandbox.NewOutbox(10) })
	_, citizenTok := f.citizen(t, "049095000123", "0912345678")
	_, officialTok := f.official(t, "tran.van.b", "0911222333", "snn", "agency_submitter")
	for _, c := range []struct {
		name, method, path, key, body string
		status                        int
	}{
		{"a session token", "POST", "/v1/sessions", "", `{"username":"049095000123","password":"Mật-khẩu-1"}`, 201},
		{"a TOTP secret", "POST", "/v1/me/totp", officialTok, "", 201},
		{"a one-time password", "POST", "/v1/officials", "dev-key", `{"username":"le.thi.c","full_name":"Lê Thị C","phone":"0911222444","unit":"snn","roles":[]}`, 201},
		{"codes in the dev outbox", "GET", "/v1/dev/outbox", "dev-key", "", 200},
		{"a challenge", "POST", "/v1/otp/sms", "", `{"phone":"0987654321","purpose":"verify_phone"}`, 202},
		{"the account", "GET", "/v1/me", citizenTok, "", 200},
		{"a problem", "GET", "/v1/me", "", "", 401},
		{"no route", "GET", "/v1/nowhere", "", "", 404},
		{"the API document", "GET", "/v1/openapi.json", "", "", 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, p := f.do(t, c.method, c.path, c.key, c.body)
			if resp.StatusCode != c.status {
				t.Fatalf("%d %v, want %d", resp.StatusCode, p, c.status)
			}
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", got)
			}
			if got := resp.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", got)
			}
		})
	}

	for _, c := range []struct{ method, path, allow string }{
		{"PUT", "/v1/notifications", "POST"},
		{"DELETE", "/v1/officials/x/close", "POST"},
		{"POST", "/v1/outages/x", "GET, DELETE"},
		{"PATCH", "/v1/me/devices/x", "DELETE"},
	} {
		resp, p := f.do(t, c.method, c.path, "dev-key", "")
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != c.allow || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s %s: %d, Allow %q, want 405 with %q (%v)", c.method, c.path, resp.StatusCode, resp.Header.Get("Allow"), c.allow, p)
		}
	}

	resp, err := http.Get(f.srv.URL + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Servers []struct{ URL string } `json:"servers"`
	}
	json.NewDecoder(resp.Body).Decode(&doc)
	for _, s := range doc.Servers {
		if strings.Contains(s.URL, "://") {
			t.Errorf("servers names %q: a client that fetched the document from elsewhere would call another host", s.URL)
		}
	}
	if len(doc.Servers) == 0 {
		t.Error("no servers")
	}
}

// TestPathAndQueryText: NUL and invalid UTF-8 in a path or a query are a
// 400 naming the parameter, before anything is looked up (PostgreSQL
// would refuse them with a 500, SQLite would store them).
func TestPathAndQueryText(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct{ path, field string }{
		{"/v1/notifications/a%00b", "(path)"},
		{"/v1/notifications/a%FFb", "(path)"},
		{"/v1/dev/outbox?notification_id=a%00b", "notification_id"},
		{"/v1/dev/outbox?notification_id=%C3", "notification_id"},
		{"/v1/dev/outbox?a%00=1", "(query)"},
	} {
		resp, p := f.do(t, "GET", c.path, "dev-key", "")
		if resp.StatusCode != 400 || p["field"] != c.field {
			t.Errorf("%s: %d %v, want 400 naming %s", c.path, resp.StatusCode, p, c.field)
		}
	}
}
