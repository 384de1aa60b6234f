package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/loa-hub/loa/internal/testenv"
)

// capDocument is a CAP 1.2 alert for area, valid for six hours.
func capDocument(identifier, area string, now time.Time) string {
	ict := time.FixedZone("ICT", 7*3600)
	return fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>%s</identifier>
  <sender>canhbao@pctt.quangnam.gov.vn</sender>
  <sent>%s</sent>
  <status>Actual</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <info>
    <language>vi-VN</language>
    <category>Met</category>
    <event>Sạt lở đất</event>
    <urgency>Immediate</urgency>
    <severity>Severe</severity>
    <certainty>Likely</certainty>
    <expires>%s</expires>
    <headline>Nguy cơ sạt lở đất tại vùng núi</headline>
    <description>Mưa lớn kéo dài; nguy cơ sạt lở đất cao.</description>
    <area>
      <areaDesc>Xã vùng núi</areaDesc>
      <geocode><valueName>VN-ADMIN</valueName><value>%s</value></geocode>
    </area>
  </info>
</alert>`, identifier, now.In(ict).Format(time.RFC3339), now.Add(6*time.Hour).In(ict).Format(time.RFC3339), area)
}

// TestConsoleRolesInBrowser drives the pages of the roles beyond the
// broadcast flow in a real headless Chromium, on `loa dev`'s embedded
// services and on the real ones, with axe-core on every page:
//
//   - the alert issuer fills the alert form and uploads a CAP file, sees
//     each accepted and stored and waiting; the approver approves one and
//     its page shows it distributed, live, with the API's counters; the
//     issuer sends an Update and a Cancel from the alert's page. An
//     official without the role sees no form, and posting one anyway is
//     refused by the API (nothing stored); a form without its CSRF token
//     is refused.
func TestConsoleRolesInBrowser(t *testing.T) {
	for _, be := range testenv.Backends(t) {
		t.Run(be.Name, func(t *testing.T) {
			in := startDev(t, accountsEnv(t, be.Name))
			b := newBrowser(t, in.base)
			area := demoAudienceAreas[0]
			countAlerts := func() int {
				_, l := in.call(t, "GET", "/v1/alerts?limit=500", "")
				items, _ := l["items"].([]any)
				return len(items)
			}

			// The issuer fills the form: the alert is accepted, stored and
			// waits for an approver.
			iss := b.tab()
			issToken := b.signIn(iss, "demo-issuer", false)
			b.shot(iss, "home-issuer")
			b.open(iss, "/console/alerts/new", http.StatusOK)
			b.do(iss, "fill the alert form",
				chromedp.SendKeys(chromedp.ID("event"), "Lũ quét"),
				chromedp.SendKeys(chromedp.ID("headline"), "Cảnh báo lũ quét khẩn cấp"),
				chromedp.SendKeys(chromedp.ID("description"), "Mưa lớn trên 200 mm; nguy cơ lũ quét ở các suối."),
				chromedp.SendKeys(chromedp.ID("instruction"), "Không qua suối; di chuyển lên vùng cao."),
				chromedp.Click(chromedp.CSS(fmt.Sprintf(`input[name=areas][value="%s"]`, area))))
			b.shot(iss, "alert-new")
			b.do(iss, "send the alert", chromedp.Click(chromedp.ID("send-alert")))
			b.waitUntil(iss, "the alert's page", `document.getElementById("alert-status") !== null`)
			b.checkA11y(iss)
			if st := eval[string](b, iss, `document.getElementById("alert-status").dataset.status`); st != "pending_approval" {
				t.Fatalf("the issuer's alert is %q, want pending_approval", st)
			}
			if d := eval[string](b, iss, `document.getElementById("step-distributed").dataset.distributed`); d != "false" {
				t.Errorf("a pending alert shows distributed %q", d)
			}
			loc, _ := chromedp.Run(iss, chromedp.Location())
			alertID := strings.TrimSuffix(loc[strings.LastIndex(loc, "/")+1:], "?flash=al.received")
			b.shot(iss, "alert-pending")

			// A CAP file, uploaded.
			capFile := filepath.Join(t.TempDir(), "landslide.xml")
			if err := os.WriteFile(capFile, []byte(capDocument("QN-PCTT-"+be.Name+"-1", area, time.Now())), 0o644); err != nil {
				t.Fatal(err)
			}
			b.open(iss, "/console/alerts/new", http.StatusOK)
			b.do(iss, "upload the CAP file", chromedp.SetUploadFiles(chromedp.ID("cap"), []string{capFile}), chromedp.Click(chromedp.ID("upload")))
			b.waitUntil(iss, "the uploaded alert's page", `document.getElementById("alert-status") !== null && location.pathname !== "/console/alerts/`+alertID+`"`)
			b.checkA11y(iss)
			if st := eval[string](b, iss, `document.getElementById("alert-status").dataset.status`); st != "pending_approval" {
				t.Errorf("the uploaded alert is %q, want pending_approval", st)
			}
			if code, a := apiAs(t, in.base, issToken, "GET", "/v1/alerts/"+alertID); code != http.StatusOK || !strings.HasPrefix(fmt.Sprint(a["sender"]), "loa:session:") {
				t.Errorf("the issuer reading the form's alert: %d %v", code, a)
			}
			b.open(iss, "/console/alerts", http.StatusOK)
			b.shot(iss, "alerts-issuer")

			// Not the submitter's: no form, and the API refuses the post;
			// a form without the CSRF token is refused before anything.
			sub := b.tab()
			b.signIn(sub, "demo-submitter", false)
			b.open(sub, "/console/alerts/new", http.StatusForbidden)
			before := countAlerts()
			csrf := eval[string](b, sub, `document.body.dataset.csrf`)
			if code := postForm(b, sub, "/console/alerts/new", "csrf="+csrf+"&event=x&headline=x&description=x&severity=Severe&urgency=Immediate&expires=2030-01-01T00:00&areas="+area); code != http.StatusForbidden {
				t.Errorf("a submitter posting an alert: %d, want 403", code)
			}
			if code := postForm(b, iss, "/console/alerts/new", "event=x&headline=x&description=x&severity=Severe&urgency=Immediate&expires=2030-01-01T00:00&areas="+area); code != http.StatusForbidden {
				t.Errorf("the issuer posting without the CSRF token: %d, want 403", code)
			}
			if n := countAlerts(); n != before {
				t.Errorf("%d alerts after the refused posts, want %d", n, before)
			}

			// The approver approves the form's alert; its page shows it
			// distributed and its counters reach the API's.
			appr := b.tab()
			apprToken := b.signIn(appr, "demo-approver", false)
			b.open(appr, "/console/approvals", http.StatusOK)
			b.open(appr, "/console/alerts/"+alertID, http.StatusOK)
			b.do(appr, "approve the alert", chromedp.Click(chromedp.ID("approve")))
			b.waitUntil(appr, "the approved alert", `document.getElementById("alert-status").dataset.status === "sent_approved"`)
			b.waitUntil(appr, "the alert distributed", `document.getElementById("step-distributed").dataset.distributed === "true"`)
			b.open(appr, "/console/alerts/"+alertID, http.StatusOK)
			b.waitUntil(appr, "the alert's live view done", `document.getElementById("live").dataset.done === "true"`)
			_, g := apiAs(t, in.base, apprToken, "GET", "/v1/alerts/"+alertID)
			st := g["stats"].(map[string]any)
			for _, k := range []string{"targeted", "sent", "failed", "expired", "pending"} {
				got := eval[string](b, appr, fmt.Sprintf(`document.getElementById("c-%s").textContent`, k))
				if want := dots(int64(st[k].(float64))); got != want {
					t.Errorf("alert counter %s: %q, the API says %q", k, got, want)
				}
			}
			if st["sent"].(float64) == 0 {
				t.Errorf("the approved alert reached no one: %v", st)
			}
			b.shot(appr, "alert-distributed")

			// Update and Cancel from the alert's page; each waits for an
			// approver and refers to the alert.
			b.open(iss, "/console/alerts/"+alertID, http.StatusOK)
			eval[chromedp.Void](b, iss, `document.getElementById("update-form").closest("details").open = true; undefined`)
			b.checkA11y(iss)
			b.shot(iss, "alert-update")
			b.do(iss, "send the update", chromedp.SetValue(chromedp.ID("headline"), "Lũ quét: mực nước đang lên"), chromedp.Click(chromedp.ID("send-update")))
			b.waitUntil(iss, "the update's page", `document.getElementById("alert-status") !== null && !location.pathname.endsWith("/`+alertID+`")`)
			b.checkA11y(iss)
			if st := eval[string](b, iss, `document.getElementById("alert-status").dataset.status`); st != "pending_approval" {
				t.Errorf("the update is %q, want pending_approval", st)
			}
			b.open(iss, "/console/alerts/"+alertID, http.StatusOK)
			eval[chromedp.Void](b, iss, `document.getElementById("cancel-form").closest("details").open = true; undefined`)
			b.do(iss, "send the cancel", chromedp.SendKeys(chromedp.ID("cancel-note"), "Mưa đã ngớt; hủy cảnh báo."), chromedp.Click(chromedp.ID("send-cancel")))
			b.waitUntil(iss, "the cancel's page", `document.getElementById("alert-status") !== null && !location.pathname.endsWith("/`+alertID+`")`)
			if st := eval[string](b, iss, `document.getElementById("alert-status").dataset.status`); st != "pending_approval" {
				t.Errorf("the cancel is %q, want pending_approval", st)
			}
			_, g = apiAs(t, in.base, issToken, "GET", "/v1/alerts/"+alertID)
			if u, _ := g["updates"].([]any); len(u) != 1 {
				t.Errorf("the alert's updates: %v, want one", g["updates"])
			}
			if c, _ := g["cancelled_by"].([]any); len(c) != 1 {
				t.Errorf("the alert's cancels: %v, want one", g["cancelled_by"])
			}
			t.Logf("pages checked by axe: %d; screenshots: %s", len(b.visited), strings.Join(b.shots, ", "))
		})
	}
}

// postForm posts an urlencoded body from the page with fetch (the
// session cookie goes along) and returns the status.
func postForm(b *browser, ctx context.Context, path, body string) int {
	b.t.Helper()
	return eval[int](b, ctx, fmt.Sprintf(`fetch(%q, {method: "POST", credentials: "same-origin", redirect: "manual",
		headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: %q}).then(r => r.status)`, path, body))
}
