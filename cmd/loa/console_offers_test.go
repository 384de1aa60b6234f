package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/loa-hub/loa/internal/testenv"
)

// consoleClient signs user in through the console's sign-in form (with a
// TOTP code) and returns a client holding the console's cookies and the
// API session token the console keeps for it.
func consoleClient(t *testing.T, base, user string) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 60 * time.Second}
	resp, err := c.Get(base + "/console/signin")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token on the sign-in page")
	}
	code, err := totp.GenerateCode(demoTOTPSecret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp, err = c.PostForm(base+"/console/signin", url.Values{"csrf": {string(m[1])}, "username": {user}, "password": {demoPassword}, "otp": {code}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/console/" {
		t.Fatalf("%s signing in to the console: %d at %s", user, resp.StatusCode, resp.Request.URL)
	}
	u, _ := url.Parse(base + "/console/")
	for _, ck := range jar.Cookies(u) {
		if ck.Name == "loa_console" {
			return c, ck.Value
		}
	}
	t.Fatalf("%s: no session cookie", user)
	return nil, ""
}

var consoleHref = regexp.MustCompile(`href="(/console/[^"?#]*)"`)

// TestConsoleOffersWhatTheAPIAllows: for every demo official — the
// administrator included, who holds no other role — each console page
// is linked from the pages the official can open exactly when it opens
// (200, else 403), and it opens exactly when the API route it calls
// admits the official's session (anything but 403); on the pages it
// opens, an action (cancelling a broadcast, the recipient lookup) is
// offered exactly when the API's route admits it. So the console never
// offers a page or form the API then refuses, nor hides one it allows.
func TestConsoleOffersWhatTheAPIAllows(t *testing.T) {
	for _, be := range testenv.Backends(t) {
		t.Run(be.Name, func(t *testing.T) {
			in := startDev(t, accountsEnv(t, be.Name))
			pages := []struct{ page, method, route, body string }{
				{"/console/broadcasts", "GET", "/v1/broadcasts", ""},
				{"/console/broadcasts/new", "POST", "/v1/broadcasts", "{}"},
				{"/console/approvals", "GET", "/v1/approvals", ""},
				{"/console/alerts", "GET", "/v1/alerts", ""},
				{"/console/alerts/new", "POST", "/v1/alerts", "{}"},
				{"/console/feedback", "GET", "/v1/feedback", ""},
				{"/console/portal", "GET", "/v1/portal/desk", ""},
				{"/console/portal/new", "POST", "/v1/portal/articles", `{"category":"tin-tuc"}`},
				{"/console/ops", "GET", "/v1/ops/overview", ""},
				{"/console/ops/deadletters", "GET", "/v1/ops/deadletters", ""},
				{"/console/ops/scheduled", "GET", "/v1/ops/scheduled", ""},
				{"/console/audit", "GET", "/v1/audit", ""},
			}
			want := map[string][]string{
				"demo-submitter":    {"/console/broadcasts", "/console/broadcasts/new"},
				"demo-approver":     {"/console/broadcasts", "/console/approvals", "/console/alerts"},
				"demo-ops":          {"/console/broadcasts", "/console/alerts", "/console/ops", "/console/ops/deadletters", "/console/ops/scheduled"},
				"demo-issuer":       {"/console/alerts", "/console/alerts/new"},
				"demo-handler":      {"/console/feedback"},
				"demo-coordinator":  {"/console/feedback"},
				"demo-editor":       {"/console/portal", "/console/portal/new"},
				"demo-chief-editor": {"/console/portal"},
				"demo-admin":        {"/console/broadcasts", "/console/feedback", "/console/audit"},
			}
			// A submitted broadcast (the submitter, first of the demo
			// officials, drafts it), whose page offers cancelling it and
			// whose live view offers the recipient lookup.
			var bcID string
			submitted := func(token string) {
				code, bc := in.callAs(t, token, "POST", "/v1/broadcasts", fmt.Sprintf(`{"title":"Thông báo","body":"Nội dung.","topic":"general",
					"audience":{"areas":[%q]},"channels":["push"],"request_document":{"number":"1/SNN","date":"2026-11-21"}}`, demoAudienceAreas[0]))
				if code != http.StatusCreated {
					t.Fatalf("a broadcast: %d %v", code, bc)
				}
				bcID = bc["id"].(string)
				if code, s := in.callAs(t, token, "POST", "/v1/broadcasts/"+bcID+"/submit", ""); code != http.StatusOK {
					t.Fatalf("submit: %d %v", code, s)
				}
			}
			for _, o := range demoOfficials {
				user := o.Username
				c, token := consoleClient(t, in.base, user)
				if user == "demo-submitter" {
					submitted(token)
				}
				actions := []struct{ name, page, form, method, route string }{
					{"cancel", "/console/broadcasts/" + bcID, `action="/console/broadcasts/` + bcID + `/cancel"`, "POST", "/v1/broadcasts/no-such-broadcast/cancel"},
					{"lookup", "/console/broadcasts/" + bcID + "/live", `id="lookup-h"`, "GET", "/v1/notifications/" + bcID + "/recipients?phone=0900100001"},
				}
				get := func(path string) (int, string) {
					resp, err := c.Get(in.base + path)
					if err != nil {
						t.Fatal(err)
					}
					defer resp.Body.Close()
					b, _ := io.ReadAll(resp.Body)
					return resp.StatusCode, string(b)
				}
				_, home := get("/console/")
				linked := map[string]bool{}
				addLinks := func(html string) {
					for _, m := range consoleHref.FindAllStringSubmatch(html, -1) {
						linked[m[1]] = true
					}
				}
				addLinks(home)
				opens := map[string]int{}
				for _, p := range pages {
					code, html := get(p.page)
					opens[p.page] = code
					if code == http.StatusOK {
						addLinks(html)
					}
				}
				var open []string
				for _, p := range pages {
					code := opens[p.page]
					if code != http.StatusOK && code != http.StatusForbidden {
						t.Errorf("%s: %s answers %d, want 200 or 403", user, p.page, code)
					}
					apiCode, out := in.callAs(t, token, p.method, p.route, p.body)
					apiAllows := apiCode != http.StatusForbidden && apiCode != http.StatusUnauthorized
					if (code == http.StatusOK) != apiAllows {
						t.Errorf("%s: the console answers %s with %d, the API answers %s %s with %d %v", user, p.page, code, p.method, p.route, apiCode, out)
					}
					if linked[p.page] != (code == http.StatusOK) {
						t.Errorf("%s: %s is linked %v but opens with %d", user, p.page, linked[p.page], code)
					}
					if code == http.StatusOK {
						open = append(open, p.page)
					}
				}
				// The actions on a page the official opens: offered exactly
				// when the API's route admits them (a broadcast that does
				// not exist: the role is checked first, then 404).
				for _, a := range actions {
					code, html := get(a.page)
					if code != http.StatusOK {
						continue
					}
					apiCode, out := in.callAs(t, token, a.method, a.route, "")
					apiAllows := apiCode != http.StatusForbidden && apiCode != http.StatusUnauthorized
					if offered := strings.Contains(html, a.form); offered != apiAllows {
						t.Errorf("%s: %s offered %v on %s, the API answers %s %s with %d %v", user, a.name, offered, a.page, a.method, a.route, apiCode, out)
					}
				}
				if w := want[user]; !slices.Equal(open, w) {
					t.Errorf("%s opens %s, want %s", user, strings.Join(open, " "), strings.Join(w, " "))
				}
			}
		})
	}
}
