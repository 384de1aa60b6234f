package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/loa-hub/loa/internal/fakes/smsfake"
	"github.com/loa-hub/loa/internal/testenv"
)

// browser drives one headless Chromium for a test; each official gets a
// browser context of their own (their own cookies).
type browser struct {
	t       *testing.T
	alloc   context.Context // the browser's first tab; others open beside it
	base    string
	axe     string // axe.min.js
	shots   []string
	visited map[string]bool
}

// newBrowser starts Debian's chromium headless, with a fresh profile and
// without the background traffic that hangs it on a machine without
// internet.
func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	exe := testenv.Tool(t, "LOA_TEST_CHROMIUM")
	axeFile := testenv.Tool(t, "LOA_TEST_AXE_CORE")
	axe, err := os.ReadFile(axeFile)
	if err != nil {
		t.Fatalf("LOA_TEST_AXE_CORE: %v", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("lang", "vi-VN"),
	}
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	root, cancelRoot := chromedp.NewContext(alloc)
	t.Cleanup(cancelRoot)
	if err := chromedp.Do(root); err != nil {
		t.Fatalf("chromium %s: %v", exe, err)
	}
	return &browser{t: t, alloc: root, base: base, axe: string(axe), visited: map[string]bool{}}
}

// tab opens a tab in a browser context of its own.
func (b *browser) tab() context.Context {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.alloc, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("chromium: %v", err)
	}
	return ctx
}

// do runs steps within 60 seconds.
func (b *browser) do(ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	c, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

func eval[T any](b *browser, ctx context.Context, expr string) T {
	b.t.Helper()
	c, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// open navigates and checks the page's answer and its accessibility.
func (b *browser) open(ctx context.Context, path string, wantStatus int) {
	b.t.Helper()
	c, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	resp, err := chromedp.RunResponse(c, chromedp.Navigate(b.base+path))
	if err != nil {
		b.t.Fatalf("open %s: %v", path, err)
	}
	if resp == nil || int(resp.Status) != wantStatus {
		status := 0
		if resp != nil {
			status = int(resp.Status)
		}
		b.t.Fatalf("open %s: status %d, want %d", path, status, wantStatus)
	}
	b.checkA11y(ctx)
}

// waitUntil polls a JavaScript condition in the page until it holds or
// 90 seconds pass. An evaluation the page's navigation interrupts (a
// form's redirect) is tried again in the next document.
func (b *browser) waitUntil(ctx context.Context, what, cond string) {
	b.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		ok, err := chromedp.Run(c, chromedp.Evaluate[bool](cond))
		cancel()
		if err == nil && ok {
			return
		}
		last = err
		time.Sleep(100 * time.Millisecond) // polling the page, not synchronising goroutines
	}
	html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
	b.t.Fatalf("waiting for %s (%s): %v\n%s", what, cond, last, html)
}

// checkA11y runs axe-core in the page: no serious or critical violation.
func (b *browser) checkA11y(ctx context.Context) {
	b.t.Helper()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	u, _ := url.Parse(loc)
	b.visited[u.Path] = true
	if eval[bool](b, ctx, `typeof axe === "undefined"`) {
		eval[chromedp.Void](b, ctx, b.axe+";undefined")
	}
	type violation struct {
		ID     string `json:"id"`
		Impact string `json:"impact"`
		Help   string `json:"help"`
		Nodes  []struct {
			Target []any `json:"target"`
		} `json:"nodes"`
	}
	vs := eval[[]violation](b, ctx, `axe.run(document).then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => ({target: n.target}))})))`)
	for _, v := range vs {
		if v.Impact == "serious" || v.Impact == "critical" {
			b.t.Errorf("accessibility (%s) on %s: %s — %s at %v", v.Impact, u.Path, v.ID, v.Help, v.Nodes)
		}
	}
}

// shot saves a screenshot of the page as a test artefact (and, with
// LOA_SCREENSHOTS_DIR, where the docs take it from).
func (b *browser) shot(ctx context.Context, name string) {
	b.t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	for _, dir := range screenshotDirs(b.t) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
	b.shots = append(b.shots, name)
}

// screenshotDirs: the artefacts directory (LOA_TEST_ARTEFACTS, else the
// system's temporary one), and LOA_SCREENSHOTS_DIR when set (the
// embedded run of `make screenshots` writes docs/console).
func screenshotDirs(t *testing.T) []string {
	art := os.Getenv("LOA_TEST_ARTEFACTS")
	if art == "" {
		art = filepath.Join(os.TempDir(), "loa-artefacts")
	}
	dirs := []string{filepath.Join(art, "console", strings.ReplaceAll(t.Name(), "/", "-"))}
	if d := os.Getenv("LOA_SCREENSHOTS_DIR"); d != "" && strings.HasSuffix(t.Name(), "/embedded") {
		dirs = append(dirs, d)
	}
	return dirs
}

// signIn signs a demo official in through the sign-in form with a TOTP
// code and returns the session token the browser holds.
func (b *browser) signIn(ctx context.Context, user string, shot bool) string {
	b.t.Helper()
	b.open(ctx, "/console/signin", http.StatusOK)
	code, err := totp.GenerateCode(demoTOTPSecret, time.Now())
	if err != nil {
		b.t.Fatal(err)
	}
	b.do(ctx, "fill the sign-in form",
		chromedp.SendKeys(chromedp.ID("username"), user),
		chromedp.SendKeys(chromedp.ID("password"), demoPassword),
		chromedp.SendKeys(chromedp.ID("otp"), code))
	if shot {
		b.shot(ctx, "signin")
	}
	b.do(ctx, "sign in", chromedp.Click(chromedp.ID("signin")))
	b.waitUntil(ctx, "the home page", `location.pathname === "/console/" && document.querySelector("h1") !== null`)
	b.checkA11y(ctx)
	return b.cookie(ctx).Value
}

// cookie returns the console's session cookie of the tab.
func (b *browser) cookie(ctx context.Context) *network.Cookie {
	b.t.Helper()
	res, err := chromedp.Run(ctx, func(ctx context.Context, t *chromedp.Target) (network.GetCookiesResult, error) {
		return cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{URLs: []string{b.base + "/console/"}})
	})
	if err != nil {
		b.t.Fatal(err)
	}
	cs := res.Cookies
	for _, c := range cs {
		if c.Name == "loa_console" {
			return c
		}
	}
	b.t.Fatalf("no loa_console cookie among %d", len(cs))
	return nil
}

// post sends a form from the page with fetch: the session cookie goes
// along (same origin), the CSRF token only if given. It returns the
// status.
func (b *browser) post(ctx context.Context, path, csrf string) int {
	b.t.Helper()
	body := "reason=x"
	if csrf != "" {
		body += "&csrf=" + url.QueryEscape(csrf)
	}
	return eval[int](b, ctx, fmt.Sprintf(`fetch(%q, {method: "POST", credentials: "same-origin", redirect: "manual",
		headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: %q}).then(r => r.status)`, path, body))
}

// apiAs calls the API with a session token.
func apiAs(t *testing.T, base, token, method, path string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestConsoleInBrowser drives the console in a real headless Chromium, on
// `loa dev`'s embedded services and on the real ones: the submitter signs
// in with a TOTP code, drafts a broadcast (watching its audience and SMS
// cost) and submits it; the submitter can neither open the approver's
// queue nor call what it calls, and a form without its CSRF token is
// refused; the approver sees the audience and the cost and approves; the
// live view reaches done with the API's counters and charts the ledger's
// deliveries per second (the whole curve again when opened after it was
// sent); the operator replays a dead letter and it is delivered once.
// axe-core checks every page; each page's screenshot is saved.
func TestConsoleInBrowser(t *testing.T) {
	for _, be := range testenv.Backends(t) {
		t.Run(be.Name, func(t *testing.T) {
			gw, err := smsfake.NewWebhook(smsfake.WebhookOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(gw.Close)
			env := accountsEnv(t, be.Name)
			env["LOA_SMS_PROVIDERS"], env["LOA_SMS_GW_TYPE"], env["LOA_SMS_GW_URL"] = "gw", "webhook", gw.URL()
			env["LOA_SMS_PRICES"], env["LOA_RETRY_TIERS"] = "gw=350", "1s"
			in := startDev(t, env)
			b := newBrowser(t, in.base)
			area := demoAudienceAreas[0]

			// The submitter drafts and submits.
			sub := b.tab()
			subToken := b.signIn(sub, "demo-submitter", true)
			ck := b.cookie(sub)
			if !ck.HTTPOnly || ck.SameSite != network.CookieSameSiteStrict || ck.Secure || ck.Path != "/console/" {
				t.Errorf("session cookie: HttpOnly %v SameSite %v Secure %v (dev: false) Path %s", ck.HTTPOnly, ck.SameSite, ck.Secure, ck.Path)
			}
			b.shot(sub, "home-submitter")
			b.open(sub, "/console/broadcasts/new", http.StatusOK)
			b.do(sub, "fill the draft",
				chromedp.SendKeys(chromedp.ID("title"), "Cảnh báo lũ"),
				chromedp.SendKeys(chromedp.ID("body"), "Hồ Phú Ninh xả lũ lúc 14 giờ; người dân hạ du chú ý an toàn."),
				chromedp.Click(chromedp.CSS(`input[name=channels][value=sms]`)),
				chromedp.Click(chromedp.CSS(fmt.Sprintf(`input[name=areas][value="%s"]`, area))),
				chromedp.SendKeys(chromedp.ID("doc_number"), "123/SNN-TL"),
				chromedp.SetValue(chromedp.ID("doc_date"), "2026-11-20"))
			b.waitUntil(sub, "the live estimate", `(() => { const d = document.querySelector("[data-testid=est-devices]");
				return d !== null && d.textContent !== "0" && document.querySelector("[data-testid=est-cost]") !== null })()`)
			b.checkA11y(sub)
			b.shot(sub, "draft")
			b.do(sub, "save and submit", chromedp.Click(chromedp.ID("save-submit")))
			b.waitUntil(sub, "the broadcast page", `document.getElementById("bc-status") !== null`)
			if st := eval[string](b, sub, `document.getElementById("bc-status").dataset.status`); st != "submitted" {
				t.Fatalf("after save and submit the broadcast is %q", st)
			}
			b.checkA11y(sub)
			loc, _ := chromedp.Run(sub, chromedp.Location())
			id := loc[strings.LastIndex(loc, "/")+1:]
			if got := eval[string](b, sub, `document.querySelector("[data-testid=bc-createdby]").textContent`); !strings.Contains(got, "(demo-submitter)") {
				t.Errorf("the broadcast's page names its drafter %q, want the demo submitter's name", got)
			}
			b.shot(sub, "broadcast-submitted")

			// The approver's queue is not the submitter's: the page and
			// every route it calls refuse.
			b.open(sub, "/console/approvals", http.StatusForbidden)
			b.open(sub, "/console/approvals/broadcasts/"+id, http.StatusForbidden)
			for _, route := range []string{"GET /v1/approvals", "GET /v1/approvals/broadcasts/" + id, "POST /v1/broadcasts/" + id + "/approve"} {
				m, p, _ := strings.Cut(route, " ")
				if code, _ := apiAs(t, in.base, subToken, m, p); code != http.StatusForbidden {
					t.Errorf("the submitter's %s: %d, want 403", route, code)
				}
			}
			// A form without the CSRF token, or with another session's, is
			// refused before anything happens.
			b.open(sub, "/console/broadcasts/"+id, http.StatusOK)
			csrf := eval[string](b, sub, `document.body.dataset.csrf`)
			if code := b.post(sub, "/console/broadcasts/"+id+"/cancel", ""); code != http.StatusForbidden {
				t.Errorf("cancel without the CSRF token: %d, want 403", code)
			}
			if code := b.post(sub, "/console/broadcasts/"+id+"/cancel", csrf+"x"); code != http.StatusForbidden {
				t.Errorf("cancel with a wrong CSRF token: %d, want 403", code)
			}
			if _, g := apiAs(t, in.base, subToken, "GET", "/v1/broadcasts/"+id); g["status"] != "submitted" {
				t.Fatalf("after the refused posts the broadcast is %v", g["status"])
			}

			// The approver sees size and cost, and approves.
			appr := b.tab()
			apprToken := b.signIn(appr, "demo-approver", false)
			_, api := apiAs(t, in.base, apprToken, "GET", "/v1/approvals/broadcasts/"+id)
			est := api["estimate"].(map[string]any)
			devices, phones := int(est["devices"].(float64)), int(est["phones"].(float64))
			sms := est["sms"].(map[string]any)
			cost := sms["cost"].([]any)[0].(map[string]any)["total"].(float64)
			if devices == 0 || phones == 0 || cost != float64(sms["total_segments"].(float64))*350 {
				t.Fatalf("the API's estimate: %v", est)
			}
			b.open(appr, "/console/approvals", http.StatusOK)
			if n := eval[int](b, appr, `document.querySelectorAll("#queue tbody a").length`); n != 1 {
				t.Errorf("the queue shows %d broadcasts, want 1", n)
			}
			b.shot(appr, "approvals")
			b.open(appr, "/console/approvals/broadcasts/"+id, http.StatusOK)
			for sel, want := range map[string]string{"ap-devices": dots(int64(devices)), "ap-phones": dots(int64(phones)), "ap-cost": dots(int64(cost)) + " VND"} {
				if got := eval[string](b, appr, fmt.Sprintf(`document.querySelector("[data-testid=%s]").textContent`, sel)); got != want {
					t.Errorf("approval page %s: %q, want %q", sel, got, want)
				}
			}
			if got := eval[string](b, appr, `document.querySelector("[data-testid=ap-submitter]").textContent`); !strings.Contains(got, "(demo-submitter)") {
				t.Errorf("approval page: submitted by %q, want the submitter's name", got)
			}
			b.shot(appr, "approval")
			b.do(appr, "approve", chromedp.Click(chromedp.ID("approve")))

			// The live view reaches done, with the API's counters.
			b.waitUntil(appr, "the live view", `document.getElementById("live") !== null`)
			b.checkA11y(appr)
			b.waitUntil(appr, "done", `document.getElementById("live").dataset.done === "true"`)
			_, g := apiAs(t, in.base, apprToken, "GET", "/v1/broadcasts/"+id)
			st := g["stats"].(map[string]any)
			for _, k := range []string{"targeted", "sent", "failed", "expired", "cancelled", "pending"} {
				got := eval[string](b, appr, fmt.Sprintf(`document.getElementById("c-%s").textContent`, k))
				if want := dots(int64(st[k].(float64))); got != want {
					t.Errorf("live counter %s: %q, the API says %q", k, got, want)
				}
			}
			if st["sent"].(float64) != float64(devices+phones) || g["status"] != "done" {
				t.Errorf("the broadcast ended %v with stats %v; want %d sent", g["status"], st, devices+phones)
			}
			// The chart is the ledger's curve: its seconds add up to every
			// outcome.
			outcomes := int64(st["sent"].(float64) + st["failed"].(float64) + st["expired"].(float64) + st["cancelled"].(float64))
			b.waitUntil(appr, "the whole curve", fmt.Sprintf(`document.getElementById("live").dataset.charted === "%d"`, outcomes))
			// The chart is drawn, its axis in Vietnam time wherever the
			// browser is.
			if !eval[bool](b, appr, `document.querySelector("#rate-chart canvas") !== null`) {
				t.Error("the live view draws no chart")
			}
			if h := eval[int](b, appr, `window.loaConsole ? loaConsole.chartDate(1764374400).getHours() : -1`); h != 7 {
				t.Errorf("the chart's time axis puts 00:00 UTC at %d o'clock, want 7 (Asia/Ho_Chi_Minh)", h)
			}
			b.shot(appr, "live")
			// The approver rejects another broadcast with a reason: it is
			// never sent, and its page says why.
			code, b2 := in.callAs(t, subToken, "POST", "/v1/broadcasts", fmt.Sprintf(`{"title":"Thông báo thử","body":"Nội dung chưa có văn bản đề nghị.",
				"topic":"general","audience":{"areas":[%q]},"channels":["push"],"request_document":{"number":"7/SNN","date":"2026-11-21"}}`, area))
			if code != http.StatusCreated {
				t.Fatalf("a second broadcast: %d %v", code, b2)
			}
			id2 := b2["id"].(string)
			if code, s2 := in.callAs(t, subToken, "POST", "/v1/broadcasts/"+id2+"/submit", ""); code != http.StatusOK {
				t.Fatalf("submit the second: %d %v", code, s2)
			}
			b.open(appr, "/console/approvals/broadcasts/"+id2, http.StatusOK)
			b.do(appr, "reject", chromedp.SendKeys(chromedp.ID("reason"), "Thiếu văn bản đề nghị của Sở."), chromedp.Click(chromedp.ID("reject")))
			b.waitUntil(appr, "rejected", `(() => { const s = document.getElementById("bc-status"); return s !== null && s.dataset.status === "rejected" })()`)
			b.checkA11y(appr)
			if _, g2 := apiAs(t, in.base, apprToken, "GET", "/v1/broadcasts/"+id2); g2["status"] != "rejected" || g2["reason"] != "Thiếu văn bản đề nghị của Sở." {
				t.Errorf("the rejected broadcast: %v, reason %v", g2["status"], g2["reason"])
			}
			if html := eval[string](b, appr, `document.querySelector("main").textContent`); !strings.Contains(html, "Thiếu văn bản đề nghị của Sở.") {
				t.Error("the rejected broadcast's page does not say why")
			}
			// The other pages an approver reaches, checked by axe too.
			b.open(appr, "/console/broadcasts", http.StatusOK)
			b.open(appr, "/console/alerts", http.StatusOK)
			b.shot(appr, "alerts")
			b.open(appr, "/console/password", http.StatusOK)
			b.shot(appr, "password")
			b.open(appr, "/console/no-such-page", http.StatusNotFound)

			// Dead letters: the gateway refuses three SMS for good; the
			// operator replays one from its page and the two others as a
			// selection from the filtered list, once the gateway is fixed.
			gw.SetStatus(http.StatusBadRequest, 0)
			dlPhones := []string{"0912000111", "0912000112", "0912000113"}
			for _, phone := range dlPhones {
				code, n := in.call(t, "POST", "/v1/notifications", fmt.Sprintf(`{"to":{"phone":%q},"body":"Mã hồ sơ 42","channels":["sms"]}`, phone))
				if code != http.StatusAccepted {
					t.Fatalf("notification: %d %v", code, n)
				}
			}
			var dlIDs []string
			waitFor(t, "the dead letters", func() bool {
				_, l := in.call(t, "GET", "/v1/ops/deadletters", "")
				dlIDs = dlIDs[:0]
				for _, it := range l["items"].([]any) {
					if d := it.(map[string]any); d["channel"] == "sms" {
						dlIDs = append(dlIDs, d["id"].(string))
					}
				}
				return len(dlIDs) == len(dlPhones)
			})
			dlID := dlIDs[0]
			gw.ResetFaults()
			gw.Reset()
			ops := b.tab()
			b.signIn(ops, "demo-ops", false)
			b.shot(ops, "home-ops")
			// The overview's shared gauges are cached for a few seconds.
			waitFor(t, "the dead letters in the overview", func() bool {
				_, o := in.call(t, "GET", "/v1/ops/overview", "")
				n, _ := o["dead_letters"].(float64)
				return n > 0
			})
			b.open(ops, "/console/ops", http.StatusOK)
			if got := eval[string](b, ops, `document.getElementById("ops-deadletters").textContent`); got == "0" {
				t.Error("the overview shows no dead letter waiting")
			}
			if lanes := eval[[]string](b, ops, `[...document.querySelectorAll("#lag-h + table tbody th")].map(th => th.textContent)`); len(lanes) == 0 {
				t.Error("the overview lists no lane's consumer lag")
			}
			b.shot(ops, "ops")
			b.open(ops, "/console/ops/deadletters", http.StatusOK)
			b.shot(ops, "deadletters")
			b.open(ops, "/console/ops/deadletters/"+dlID, http.StatusOK)
			b.shot(ops, "deadletter")
			b.do(ops, "replay", chromedp.Click(chromedp.ID("replay")))
			b.waitUntil(ops, "the replay's notice", `location.pathname === "/console/ops/deadletters" && document.querySelector(".flash") !== null`)
			b.checkA11y(ops)
			_, d := in.call(t, "GET", "/v1/ops/deadletters/"+dlID, "")
			if d["replayed_at"] == nil || d["replayed_by"] == "" {
				t.Errorf("the dead letter after the replay: %v", d)
			}
			// The filter: SMS still waiting are the two others; push none.
			b.open(ops, "/console/ops/deadletters?state=waiting&channel=push", http.StatusOK)
			if n := eval[int](b, ops, `document.querySelectorAll('#replay-form input[name=id]').length`); n != 0 {
				t.Errorf("waiting push dead letters: %d, want 0", n)
			}
			b.open(ops, "/console/ops/deadletters?state=waiting&channel=sms", http.StatusOK)
			waiting := eval[[]string](b, ops, `[...document.querySelectorAll('#replay-form input[name=id]')].map(i => i.value)`)
			if len(waiting) != 2 || slices.Contains(waiting, dlID) {
				t.Fatalf("waiting SMS dead letters %v, want the two not replayed (not %s)", waiting, dlID)
			}
			b.do(ops, "replay the selection",
				chromedp.Click(chromedp.CSS(`#replay-form input[value="`+waiting[0]+`"]`)),
				chromedp.Click(chromedp.CSS(`#replay-form input[value="`+waiting[1]+`"]`)),
				chromedp.Click(chromedp.ID("replay-selected")))
			b.waitUntil(ops, "the selection's notice", `location.pathname === "/console/ops/deadletters" && document.querySelector(".flash") !== null`)
			for _, phone := range dlPhones {
				to := "84" + phone[1:]
				waitFor(t, "the replayed SMS to "+to, func() bool { return gw.CountFor(to) >= 1 })
			}
			for _, id := range dlIDs {
				if _, d := in.call(t, "GET", "/v1/ops/deadletters/"+id, ""); d["replayed_at"] == nil {
					t.Errorf("dead letter %s not replayed: %v", id, d)
				}
			}
			// Each once: replaying the selection again replays nothing.
			csrfOps := eval[string](b, ops, `document.body.dataset.csrf`)
			postForm(b, ops, "/console/ops/deadletters/replay", "csrf="+url.QueryEscape(csrfOps)+"&id="+waiting[0]+"&id="+waiting[1])
			for _, phone := range dlPhones {
				if n := gw.CountFor("84" + phone[1:]); n != 1 {
					t.Errorf("the SMS to %s sent %d times, want once", phone, n)
				}
			}
			// The incident log: the operator records what happened, notes
			// what they find and resolves it, every step through the forms.
			b.open(ops, "/console/ops/incidents", http.StatusOK)
			b.do(ops, "open an incident",
				chromedp.SendKeys(chromedp.ID("title"), "Cổng SMS từ chối tin nhắn"),
				chromedp.SetValue(chromedp.ID("severity"), "major"),
				chromedp.SendKeys(chromedp.ID("components"), "sms, sms:viettel"),
				chromedp.SendKeys(chromedp.ID("description"), "Ba tin nhắn vào thư lỗi lúc 09:00."),
				chromedp.Click(chromedp.ID("open-incident")))
			b.waitUntil(ops, "the incident's page", `location.pathname.startsWith("/console/ops/incidents/") && document.querySelector(".flash") !== null`)
			b.checkA11y(ops)
			b.do(ops, "note", chromedp.SendKeys(chromedp.ID("body"), "Đã gửi lại ba thư lỗi sau khi cổng hoạt động lại."), chromedp.Click(chromedp.ID("add-note")))
			b.waitUntil(ops, "the note", `document.querySelectorAll("#timeline li").length === 2`)
			b.do(ops, "resolve",
				chromedp.SendKeys(chromedp.ID("cause"), "Cổng SMS trả 400 cho mọi tin."),
				chromedp.SendKeys(chromedp.ID("resolution"), "Nhà cung cấp sửa cấu hình; thư lỗi đã gửi lại."),
				chromedp.Click(chromedp.ID("resolve")))
			b.waitUntil(ops, "the resolution", `document.querySelectorAll("#timeline li").length === 3 && document.getElementById("resolve") === null`)
			b.shot(ops, "incident")
			_, incs := in.call(t, "GET", "/v1/ops/incidents?status=resolved", "")
			if items, _ := incs["items"].([]any); len(items) != 1 || items[0].(map[string]any)["cause"] != "Cổng SMS trả 400 cho mọi tin." ||
				fmt.Sprint(items[0].(map[string]any)["components"]) != "[sms sms:viettel]" || items[0].(map[string]any)["opened_by"] != "demo-ops" {
				t.Errorf("the resolved incidents: %v", incs)
			}
			b.open(ops, "/console/ops/incidents", http.StatusOK)
			b.checkA11y(ops)
			b.shot(ops, "incidents")

			// The audit log, searched by target, names who replayed.
			adm := b.tab()
			b.signIn(adm, "demo-admin", false)
			b.open(adm, "/console/audit?target="+url.QueryEscape(dlID), http.StatusOK)
			audit := eval[[]string](b, adm, `[...document.querySelectorAll("main tbody tr")].map(r => r.cells[3].textContent + " " + r.cells[4].textContent)`)
			if len(audit) == 0 || !strings.Contains(strings.Join(audit, "|"), "replay") {
				t.Errorf("the audit log searched for %s: %q, want its replay", dlID, audit)
			}
			for _, row := range audit {
				if !strings.HasPrefix(row, dlID+" ") {
					t.Errorf("the audit search for %s shows %q", dlID, row)
				}
			}
			b.shot(adm, "audit-search")
			b.open(ops, "/console/ops/scheduled", http.StatusOK)
			b.shot(ops, "scheduled")
			// Per-recipient lookup: the operator finds the SMS and the push
			// of one phone of the audience, the phone and the device token
			// masked.
			// Opened long after it was sent, the live view draws the whole
			// curve from the ledger.
			b.open(ops, "/console/broadcasts/"+id+"/live?phone=0900100001", http.StatusOK)
			b.waitUntil(ops, "the finished broadcast's curve", fmt.Sprintf(`document.getElementById("live").dataset.charted === "%d" && document.getElementById("live").dataset.done === "true"`, outcomes))
			rows := eval[[]string](b, ops, `[...document.querySelectorAll("#lookup tbody tr")].map(r => r.cells[0].textContent + " " + r.cells[1].textContent)`)
			html := eval[string](b, ops, `document.querySelector("main").outerHTML`)
			if len(rows) < 2 || strings.Contains(html, "84900100001") || strings.Contains(html, "tok-0000001") {
				t.Errorf("the lookup of 0900100001: rows %q; the page must show the phone and the token masked", rows)
			}
			b.shot(ops, "lookup")

			// English on request; sign-out ends the session.
			b.open(sub, "/console/lang?to=en&back=/console/broadcasts", http.StatusOK)
			if h := eval[string](b, sub, `document.querySelector("h1").textContent`); h != "Broadcasts" {
				t.Errorf("English broadcasts page: h1 %q", h)
			}
			b.shot(sub, "broadcasts-en")
			b.do(sub, "sign out", chromedp.Click(chromedp.CSS(`form[action="/console/signout"] button`)))
			b.waitUntil(sub, "the sign-in page", `location.pathname === "/console/signin"`)
			if code, _ := apiAs(t, in.base, subToken, "GET", "/v1/me"); code != http.StatusUnauthorized {
				t.Errorf("the session after signing out: %d, want 401", code)
			}
			t.Logf("pages checked by axe: %d; screenshots: %s", len(b.visited), strings.Join(b.shots, ", "))
		})
	}
}

// dots writes n as the console does: thousands separated by dots.
func dots(n int64) string {
	s := fmt.Sprint(n)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, '.')
		}
		out = append(out, s[i])
	}
	return string(out)
}
