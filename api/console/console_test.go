package console

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAPI answers the few API routes the tests reach and records every
// call the console makes.
type fakeAPI struct {
	mu    sync.Mutex
	calls []string
	// locked: a stranger's failures keep the account waiting; a sign-in
	// passes only with the client key the fake gave out (as the accounts
	// service counts a key's failures apart from the account's).
	locked bool
}

// fakeClientKey is the client_key the fake's sign-ins return.
const fakeClientKey = "ck1.browser-id.mac_0"

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch r.Method + " " + r.URL.Path {
	case "POST /v1/sessions":
		var req struct {
			ClientKey string `json:"client_key"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		f.mu.Lock()
		locked := f.locked
		f.mu.Unlock()
		if locked && req.ClientKey != fakeClientKey {
			w.Header().Set("Retry-After", "900")
			w.WriteHeader(http.StatusTooManyRequests)
			json.NewEncoder(w).Encode(map[string]any{"type": "urn:loa:problem:rate-limited", "status": 429})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"token": "loas_secret-token", "kind": "official",
			"expires_at": time.Now().Add(time.Hour), "client_key": fakeClientKey})
	case "GET /v1/me":
		if r.Header.Get("Authorization") != "Bearer loas_secret-token" {
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(map[string]any{"type": "urn:loa:problem:unauthorized", "status": 401})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"id": "o1", "kind": "official", "full_name": "Cán bộ",
			"roles": []map[string]string{{"unit": "u", "role": "agency_submitter"}}})
	case "DELETE /v1/sessions/current":
		w.WriteHeader(http.StatusNoContent)
	default:
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, `{}`)
	}
}

func (f *fakeAPI) called(call string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.calls {
		if c == call {
			return true
		}
	}
	return false
}

// idle is an IdleStore in memory whose marks lapse when told.
type idle struct {
	mu    sync.Mutex
	alive map[string]bool
}

func (s *idle) Start(_ context.Context, key string, _ time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.alive[key] = true
	return nil
}
func (s *idle) Touch(_ context.Context, key string, _ time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.alive[key], nil
}
func (s *idle) End(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.alive, key)
	return nil
}
func (s *idle) lapse() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.alive)
}

func newTestConsole(t *testing.T, dev bool) (*Console, *fakeAPI, *idle) {
	t.Helper()
	api, id := &fakeAPI{}, &idle{alive: map[string]bool{}}
	c, err := New(Config{API: api, Secret: []byte(strings.Repeat("k", 32)), Idle: id, Dev: dev,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return c, api, id
}

func serve(c *Console, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	Mount(http.NotFoundHandler(), c).ServeHTTP(w, r)
	return w
}

func cookieOf(w *httptest.ResponseRecorder, name string) *http.Cookie {
	for _, ck := range w.Result().Cookies() {
		if ck.Name == name {
			return ck
		}
	}
	return nil
}

// signIn goes through the sign-in form and returns the session cookie.
func signIn(t *testing.T, c *Console) *http.Cookie {
	t.Helper()
	w := serve(c, httptest.NewRequest("GET", "/console/signin", nil))
	pre := cookieOf(w, preCookie)
	if pre == nil {
		t.Fatal("the sign-in page sets no pre-session cookie")
	}
	form := url.Values{"csrf": {c.csrfFor("pre", pre.Value)}, "username": {"a"}, "password": {"b"}, "otp": {"123456"}}
	r := httptest.NewRequest("POST", "/console/signin", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(pre)
	w = serve(c, r)
	ck := cookieOf(w, sessionCookie)
	if w.Code != http.StatusSeeOther || ck == nil {
		t.Fatalf("sign-in: %d, cookie %v\n%s", w.Code, ck, w.Body)
	}
	return ck
}

// TestSignInKeepsTheClientKey: the console keeps the client_key of a
// password sign-in in a long-lived cookie (HttpOnly, SameSite=Strict,
// the console's path, Secure outside dev) and sends it with the next
// sign-in, so a stranger's failures at the official's user name, which
// make the account wait, do not lock the official's browser out; another
// browser, without the key, waits.
func TestSignInKeepsTheClientKey(t *testing.T) {
	for _, dev := range []bool{false, true} {
		c, api, _ := newTestConsole(t, dev)
		signInWith := func(extra ...*http.Cookie) *httptest.ResponseRecorder {
			t.Helper()
			w := serve(c, httptest.NewRequest("GET", "/console/signin", nil))
			pre := cookieOf(w, preCookie)
			form := url.Values{"csrf": {c.csrfFor("pre", pre.Value)}, "username": {"a"}, "password": {"b"}, "otp": {"123456"}}
			r := httptest.NewRequest("POST", "/console/signin", strings.NewReader(form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.AddCookie(pre)
			for _, ck := range extra {
				r.AddCookie(ck)
			}
			return serve(c, r)
		}
		w := signInWith()
		ck := cookieOf(w, clientCookie)
		if w.Code != http.StatusSeeOther || ck == nil || ck.Value != fakeClientKey {
			t.Fatalf("dev=%v: sign-in %d kept client key %v", dev, w.Code, ck)
		}
		if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/console/" || ck.Secure == dev || ck.MaxAge < 365*24*3600 {
			t.Errorf("dev=%v: client key cookie %+v", dev, ck)
		}
		api.mu.Lock()
		api.locked = true
		api.mu.Unlock()
		if w := signInWith(&http.Cookie{Name: clientCookie, Value: ck.Value}); w.Code != http.StatusSeeOther || cookieOf(w, sessionCookie) == nil {
			t.Errorf("dev=%v: the official's browser, with its key, while the account waits: %d\n%s", dev, w.Code, w.Body)
		}
		if w := signInWith(); w.Code != http.StatusTooManyRequests {
			t.Errorf("dev=%v: a browser without the key: %d, want 429", dev, w.Code)
		}
		if w := signInWith(&http.Cookie{Name: clientCookie, Value: "ck1.<script>"}); w.Code != http.StatusTooManyRequests {
			t.Errorf("dev=%v: a forged cookie: %d, want 429", dev, w.Code)
		}
	}
}

// The session cookie is HttpOnly, SameSite=Strict, limited to the
// console, and Secure outside dev; the page never contains the token.
func TestSessionCookieFlags(t *testing.T) {
	for _, dev := range []bool{false, true} {
		c, _, _ := newTestConsole(t, dev)
		ck := signIn(t, c)
		if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != Prefix || ck.Secure == dev {
			t.Errorf("dev %v: cookie HttpOnly %v SameSite %v Path %q Secure %v", dev, ck.HttpOnly, ck.SameSite, ck.Path, ck.Secure)
		}
		r := httptest.NewRequest("GET", "/console/", nil)
		r.AddCookie(ck)
		w := serve(c, r)
		if w.Code != http.StatusOK || strings.Contains(w.Body.String(), "secret-token") {
			t.Errorf("home: %d; the page holds the session token: %v", w.Code, strings.Contains(w.Body.String(), "secret-token"))
		}
		if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("CSP %q", csp)
		}
	}
}

// A form without its CSRF token, with another's, or from another origin
// is refused before the API is called; the sign-in form too.
func TestCSRFRefused(t *testing.T) {
	c, api, _ := newTestConsole(t, true)
	ck := signIn(t, c)
	good := c.csrfFor("session", ck.Value)
	for name, tc := range map[string]struct{ token, origin string }{
		"missing":      {"", ""},
		"wrong":        {good + "x", ""},
		"pre-session":  {c.csrfFor("pre", ck.Value), ""},
		"other origin": {good, "https://evil.example"},
	} {
		form := url.Values{"reason": {"x"}}
		if tc.token != "" {
			form.Set("csrf", tc.token)
		}
		r := httptest.NewRequest("POST", "/console/broadcasts/b1/cancel", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		r.AddCookie(ck)
		if w := serve(c, r); w.Code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, w.Code)
		}
	}
	if api.called("POST /v1/broadcasts/b1/cancel") {
		t.Error("a refused form reached the API")
	}
	// The sign-in form without its token never reaches POST /v1/sessions.
	api2 := &fakeAPI{}
	c.cfg.API = api2
	r := httptest.NewRequest("POST", "/console/signin", strings.NewReader("username=a&password=b"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if w := serve(c, r); w.Code != http.StatusForbidden || api2.called("POST /v1/sessions") {
		t.Errorf("sign-in without a token: %d, API called %v", w.Code, api2.calls)
	}
	// With the token the form goes through.
	form := url.Values{"csrf": {good}, "reason": {"x"}}
	r = httptest.NewRequest("POST", "/console/broadcasts/b1/cancel", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(ck)
	c.cfg.API = api
	if w := serve(c, r); w.Code != http.StatusSeeOther || !api.called("POST /v1/broadcasts/b1/cancel") {
		t.Errorf("with the token: %d", w.Code)
	}
}

// Every page without a session goes to the sign-in page without calling
// the API; after the idle timeout the session is ended at the API.
func TestSignedInOnly(t *testing.T) {
	c, api, id := newTestConsole(t, true)
	for _, path := range []string{"/console/", "/console/approvals", "/console/ops", "/console/ops/deadletters", "/console/broadcasts/new", "/console/audit"} {
		w := serve(c, httptest.NewRequest("GET", path, nil))
		if w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/console/signin") {
			t.Errorf("%s without a session: %d %s", path, w.Code, w.Header().Get("Location"))
		}
	}
	if len(api.calls) != 0 {
		t.Errorf("pages without a session called the API: %v", api.calls)
	}
	ck := signIn(t, c)
	id.lapse()
	r := httptest.NewRequest("GET", "/console/approvals", nil)
	r.AddCookie(ck)
	w := serve(c, r)
	if loc := w.Header().Get("Location"); w.Code != http.StatusSeeOther || !strings.Contains(loc, "reason=idle") {
		t.Errorf("after the idle timeout: %d %s", w.Code, loc)
	}
	if !api.called("DELETE /v1/sessions/current") {
		t.Error("the idle session was not ended at the API")
	}
	if out := cookieOf(w, sessionCookie); out == nil || out.MaxAge >= 0 {
		t.Errorf("the cookie was not cleared: %v", out)
	}
}

// The console redirects only within itself.
func TestNoOpenRedirect(t *testing.T) {
	for _, next := range []string{"https://evil.example/", "//evil.example/console/", "/console/\\evil", "/v1/me", ""} {
		if got := localPath(next); got != Prefix {
			t.Errorf("localPath(%q) = %q", next, got)
		}
	}
	if got := localPath("/console/broadcasts"); got != "/console/broadcasts" {
		t.Errorf("localPath kept no console path: %q", got)
	}
	c, _, _ := newTestConsole(t, true)
	w := serve(c, httptest.NewRequest("GET", "/console/lang?to=en&back=//evil.example/", nil))
	if loc := w.Header().Get("Location"); loc != Prefix {
		t.Errorf("lang back to %q", loc)
	}
}

// A form larger than the limit is refused, not read into memory.
func TestFormBodyBounded(t *testing.T) {
	c, api, _ := newTestConsole(t, true)
	ck := signIn(t, c)
	body := "csrf=" + c.csrfFor("session", ck.Value) + "&title=" + strings.Repeat("a", maxFormBytes)
	r := httptest.NewRequest("POST", "/console/broadcasts/new", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(ck)
	if w := serve(c, r); w.Code < 400 || api.called("POST /v1/broadcasts") {
		t.Errorf("oversized form: %d, API called %v", w.Code, api.called("POST /v1/broadcasts"))
	}
}

// The console speaks Vietnamese unless asked for English, and writes
// every time in Vietnam's zone, whatever the server's.
func TestVietnameseByDefaultTimesInVietnam(t *testing.T) {
	c, _, _ := newTestConsole(t, true)
	w := serve(c, httptest.NewRequest("GET", "/console/signin", nil))
	if body := w.Body.String(); !strings.Contains(body, `<html lang="vi"`) || !strings.Contains(body, "Đăng nhập") {
		t.Errorf("the sign-in page by default is not in Vietnamese:\n%.400s", body)
	}
	r := httptest.NewRequest("GET", "/console/signin", nil)
	r.AddCookie(&http.Cookie{Name: langCookie, Value: "en"})
	if body := serve(c, r).Body.String(); !strings.Contains(body, `<html lang="en"`) || !strings.Contains(body, "Sign in") {
		t.Errorf("the sign-in page with English chosen:\n%.400s", body)
	}
	at := time.Date(2026, 11, 28, 17, 30, 0, 0, time.UTC)
	if got := c.formatTime(at); got != "00:30:00 29/11/2026" {
		t.Errorf("17:30 UTC on 28/11 is written %q, want 00:30:00 29/11/2026 (Asia/Ho_Chi_Minh)", got)
	}
	if got := c.formatDate(at.In(time.FixedZone("EST", -5*3600))); got != "29/11/2026" {
		t.Errorf("the date of that instant is written %q, want 29/11/2026", got)
	}
}

// GET / leads to the console; the console's files are embedded and
// served, and each vendored library is named with its version in the
// vendor README and carries its licence.
func TestRootAndVendoredFiles(t *testing.T) {
	c, _, _ := newTestConsole(t, true)
	w := serve(c, httptest.NewRequest("GET", "/", nil))
	if w.Code != http.StatusFound || w.Header().Get("Location") != "/console/" {
		t.Errorf("GET /: %d %s, want 302 to /console/", w.Code, w.Header().Get("Location"))
	}
	readme, err := fs.ReadFile(staticFS, "static/vendor/README.md")
	if err != nil {
		t.Fatal(err)
	}
	err = fs.WalkDir(staticFS, "static/vendor", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path == "static/vendor/README.md" {
			return err
		}
		rel := strings.TrimPrefix(path, "static/vendor/")
		pkg, file, _ := strings.Cut(rel, "/")
		if lic, err := fs.ReadFile(staticFS, "static/vendor/"+pkg+"/LICENSE"); err != nil || len(lic) < 100 {
			t.Errorf("%s: no licence beside it (%v)", path, err)
		}
		if file != "LICENSE" && !strings.Contains(string(readme), file) {
			t.Errorf("%s is not named in the vendor README", path)
		}
		if w := serve(c, httptest.NewRequest("GET", "/console/"+path, nil)); w.Code != http.StatusOK || w.Body.Len() == 0 {
			t.Errorf("GET /console/%s: %d", path, w.Code)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The draft form's audience (areas ticked and typed, topics, accounts),
// channels, send time (typed in Vietnam time) and request document reach
// POST /v1/broadcasts as the API names them.
func TestDraftFormToRequest(t *testing.T) {
	c, _, _ := newTestConsole(t, true)
	form := url.Values{"title": {"Cảnh báo lũ"}, "body": {"Xả lũ lúc 14 giờ."}, "topic": {"disaster"}, "areas": {"20470"},
		"area_codes": {"20473, 20470"}, "topics": {"disaster", "power"}, "accounts": {"acc-1, acc-2;"}, "channels": {"push", "sms"},
		"send_at": {"2026-11-30T07:30"}, "doc_number": {"123/SNN-TL"}, "doc_date": {"2026-11-20"}}
	r := httptest.NewRequest("POST", "/console/broadcasts/new", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	got, _ := json.Marshal(c.request(c.readDraft(r)))
	var req map[string]any
	json.Unmarshal(got, &req)
	aud := req["audience"].(map[string]any)
	for k, want := range map[string]string{
		"areas": "[20470 20473]", "topics": "[disaster power]", "accounts": "[acc-1 acc-2]",
	} {
		if fmt.Sprint(aud[k]) != want {
			t.Errorf("audience %s: %v, want %s", k, aud[k], want)
		}
	}
	if fmt.Sprint(req["channels"]) != "[push sms]" || req["send_at"] != "2026-11-30T07:30:00+07:00" ||
		fmt.Sprint(req["request_document"]) != "map[date:2026-11-20 number:123/SNN-TL]" {
		t.Errorf("the request: %s", got)
	}
}
