package console

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// expiredAPI is an API whose official signs in with an expired password:
// the session is restricted (every route but the password change answers
// 403 password-expired) until the password is changed, which opens a new
// session.
type expiredAPI struct {
	mu      sync.Mutex
	changed bool
	calls   []string
}

func (f *expiredAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
	w.Header().Set("Content-Type", "application/json")
	auth := r.Header.Get("Authorization")
	switch r.Method + " " + r.URL.Path {
	case "POST /v1/sessions":
		json.NewEncoder(w).Encode(map[string]any{"token": "loas_restricted", "kind": "official", "password_expired": true,
			"expires_at": time.Now().Add(time.Hour)})
	case "POST /v1/me/password":
		var in map[string]string
		json.NewDecoder(r.Body).Decode(&in)
		if auth != "Bearer loas_restricted" || in["old"] != "old-pw" {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]any{"type": "urn:loa:problem:invalid", "status": 400,
				"errors": []map[string]string{{"field": "old", "detail": "is not the current password"}}})
			return
		}
		f.changed = true
		json.NewEncoder(w).Encode(map[string]any{"token": "loas_fresh", "kind": "official", "expires_at": time.Now().Add(time.Hour)})
	case "GET /v1/me":
		if auth == "Bearer loas_fresh" && f.changed {
			json.NewEncoder(w).Encode(map[string]any{"id": "o1", "kind": "official", "username": "cb"})
			return
		}
		w.WriteHeader(http.StatusForbidden)
		json.NewEncoder(w).Encode(map[string]any{"type": "urn:loa:problem:password-expired", "status": 403})
	case "GET /v1/me/capabilities":
		if auth == "Bearer loas_fresh" && f.changed {
			json.NewEncoder(w).Encode(map[string]any{"capabilities": []string{}})
			return
		}
		w.WriteHeader(http.StatusForbidden)
		json.NewEncoder(w).Encode(map[string]any{"type": "urn:loa:problem:password-expired", "status": 403})
	default:
		w.WriteHeader(http.StatusForbidden)
		json.NewEncoder(w).Encode(map[string]any{"type": "urn:loa:problem:password-expired", "status": 403})
	}
}

// The password-expired flow: sign-in leads to the password page, every
// other page leads back there, a wrong old password is shown on its
// field, and the change opens a fresh session that replaces the cookie.
func TestPasswordExpiredFlow(t *testing.T) {
	api := &expiredAPI{}
	c, err := New(Config{API: api, Secret: []byte(strings.Repeat("k", 32)), Idle: &idle{alive: map[string]bool{}}, Dev: true,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	w := serve(c, httptest.NewRequest("GET", "/console/signin", nil))
	pre := cookieOf(w, preCookie)
	form := url.Values{"csrf": {c.csrfFor("pre", pre.Value)}, "username": {"cb"}, "password": {"old-pw"}, "otp": {"123456"}}
	r := httptest.NewRequest("POST", "/console/signin", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(pre)
	w = serve(c, r)
	ck := cookieOf(w, sessionCookie)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/console/password?expired=1" || ck == nil {
		t.Fatalf("sign-in with an expired password: %d → %s", w.Code, w.Header().Get("Location"))
	}
	for _, path := range []string{"/console/", "/console/broadcasts/new", "/console/ops"} {
		r := httptest.NewRequest("GET", path, nil)
		r.AddCookie(ck)
		if w := serve(c, r); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/console/password" {
			t.Errorf("%s with an expired password: %d → %s", path, w.Code, w.Header().Get("Location"))
		}
	}
	r = httptest.NewRequest("GET", "/console/password", nil)
	r.AddCookie(ck)
	if w := serve(c, r); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `name="old"`) {
		t.Fatalf("the password page: %d", w.Code)
	}
	post := func(old string) *httptest.ResponseRecorder {
		form := url.Values{"csrf": {c.csrfFor("session", ck.Value)}, "old": {old}, "new": {"New-Password-2026!"}, "confirm": {"New-Password-2026!"}}
		r := httptest.NewRequest("POST", "/console/password", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.AddCookie(ck)
		return serve(c, r)
	}
	if w := post("wrong"); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "is not the current password") {
		t.Errorf("a wrong old password: %d", w.Code)
	}
	w = post("old-pw")
	fresh := cookieOf(w, sessionCookie)
	if w.Code != http.StatusSeeOther || fresh == nil || fresh.Value != "loas_fresh" {
		t.Fatalf("the change: %d, cookie %v", w.Code, fresh)
	}
	r = httptest.NewRequest("GET", "/console/", nil)
	r.AddCookie(fresh)
	if w := serve(c, r); w.Code != http.StatusOK {
		t.Errorf("home after the change: %d", w.Code)
	}
}
