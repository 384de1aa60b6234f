package console

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/loa-hub/loa/api"
)

// addressAPI is fakeAPI that also records the client address the API
// would compute for each call the console makes.
type addressAPI struct {
	fakeAPI
	proxies api.TrustedProxies
	mu      sync.Mutex
	seen    []string
}

func (a *addressAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.seen = append(a.seen, r.Method+" "+r.URL.Path+" "+a.proxies.ClientIP(r))
	a.mu.Unlock()
	a.fakeAPI.ServeHTTP(w, r)
}

// TestTheAPISeesTheBrowsersAddress: the console calls the API in process
// with the browser's peer address and forwarded headers, and the API
// believes X-Forwarded-For from a trusted proxy, reading every line of
// it from the right. The console passed on only the first line. A proxy
// that adds its entry as a line of its own (HAProxy's option forwardfor
// does) puts the browser's own line first, so a stranger at the sign-in
// form chose the address the API counted sign-in failures on and wrote
// in the audit log: another one each try (the per-address waits never
// reached), or an office's (making it wait). Now every line goes on, in
// order, and the API computes the address it would for the browser.
func TestTheAPISeesTheBrowsersAddress(t *testing.T) {
	proxies, err := api.ParseTrustedProxies("10.0.0.5")
	if err != nil {
		t.Fatal(err)
	}
	fake := &addressAPI{proxies: proxies}
	c, err := New(Config{API: fake, Secret: []byte(strings.Repeat("k", 32)), Idle: &idle{alive: map[string]bool{}},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	// The browser's request as the proxy passes it on: the stranger's
	// own line first, the proxy's after it.
	viaProxy := func(r *http.Request) *http.Request {
		r.RemoteAddr = "10.0.0.5:40000"
		r.Header.Add("X-Forwarded-For", "203.0.113.66")
		r.Header.Add("X-Forwarded-For", "198.51.100.7")
		return r
	}
	const want = "198.51.100.7"
	if got := proxies.ClientIP(viaProxy(httptest.NewRequest("GET", "/", nil))); got != want {
		t.Fatalf("the API's own address of the browser's request: %s, want %s", got, want)
	}

	w := serve(c, viaProxy(httptest.NewRequest("GET", "/console/signin", nil)))
	pre := cookieOf(w, preCookie)
	form := url.Values{"csrf": {c.csrfFor("pre", pre.Value)}, "username": {"a"}, "password": {"b"}, "otp": {"123456"}}
	r := viaProxy(httptest.NewRequest("POST", "/console/signin", strings.NewReader(form.Encode())))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(pre)
	w = serve(c, r)
	session := cookieOf(w, sessionCookie)
	if w.Code != http.StatusSeeOther || session == nil {
		t.Fatalf("sign-in: %d\n%s", w.Code, w.Body)
	}
	// A signed-in page's calls, and a photo passed on (getRaw).
	for _, path := range []string{"/console/", "/console/feedback/f-1/photos/0"} {
		r := viaProxy(httptest.NewRequest("GET", path, nil))
		r.AddCookie(session)
		serve(c, r)
	}

	fake.mu.Lock()
	defer fake.mu.Unlock()
	paths := map[string]bool{}
	for _, s := range fake.seen {
		call, addr, _ := strings.Cut(s[strings.Index(s, " ")+1:], " ")
		paths[call] = true
		if addr != want {
			t.Errorf("%s: the API saw the browser as %s, want %s", strings.SplitN(s, " ", 2)[0]+" "+call, addr, want)
		}
	}
	for _, p := range []string{"/v1/sessions", "/v1/me", "/v1/feedback/f-1/photos/0"} {
		if !paths[p] {
			t.Errorf("the console did not call %s (calls: %v)", p, fake.seen)
		}
	}
}
