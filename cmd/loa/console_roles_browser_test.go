package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"mime/multipart"
	"net/http"
	"net/textproto"
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
//   - the feedback handler of the assigned agency starts a matter (the
//     citizen's phone masked) and escalates it; the DoIC's coordinator
//     finds it in their queue and assigns it back; the handler answers.
//     A submitter gets 403 for the queue and for an action.
//   - an editor writes an article, sets its cover (shown at the desk
//     before it is public) and submits it; the editor cannot approve it;
//     the chief editor approves the version their page shows (an older
//     one is refused) and it is public, then corrects it (a new
//     revision, live at once at the same address). An official who both
//     writes and approves cannot approve their own article: the page
//     shows the API's four-eyes refusal. A submitter gets 403 for the
//     desk.
//   - the administrator reads the audit log and is offered neither the
//     alert form nor the operators' pages, which refuse them.
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
			// The queue sizes the public alert as it sizes a broadcast.
			if got := eval[string](b, appr, `(() => { const a = document.querySelector('#alert-queue a[href="/console/alerts/`+alertID+`"]');
				const c = a && a.closest("tr").querySelector("[data-testid=apa-devices]"); return c ? c.textContent : "none" })()`); got != "500" {
				t.Errorf("the approver's queue sizes the alert at %q devices, want 500 (the demo area's)", got)
			}
			// Who issued it: the official's name, not their session's id.
			if got := eval[string](b, appr, `(() => { const a = document.querySelector('#alert-queue a[href="/console/alerts/`+alertID+`"]');
				const c = a && a.closest("tr").querySelector("[data-testid=apa-issuer]"); return c ? c.textContent : "none" })()`); !strings.Contains(got, "(demo-issuer)") {
				t.Errorf("the approver's queue names the issuer %q, want the demo issuer's name", got)
			}
			b.shot(appr, "approvals-alerts")
			b.open(appr, "/console/alerts/"+alertID, http.StatusOK)
			if got := eval[string](b, appr, `(() => { const d = document.querySelector("#aest-h + dl [data-testid=est-devices]"); return d ? d.textContent : "none" })()`); got != "500" {
				t.Errorf("the pending alert's page sizes it at %q devices, want 500", got)
			}
			b.shot(appr, "alert-review")
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
			alertOutcomes := int64(st["sent"].(float64) + st["failed"].(float64) + st["expired"].(float64))
			if c, ok := st["cancelled"].(float64); ok {
				alertOutcomes += int64(c)
			}
			b.waitUntil(appr, "the alert's curve", fmt.Sprintf(`document.getElementById("live").dataset.charted === "%d"`, alertOutcomes))
			if !eval[bool](b, appr, `document.querySelector("#rate-chart canvas") !== null && document.querySelector("#live table") !== null`) {
				t.Error("the alert's page draws no chart or no table per channel")
			}
			for sel, want := range map[string]string{"al-issuer": "(demo-issuer)", "al-sender": "(demo-issuer)", "al-decidedby": "(demo-approver)"} {
				if got := eval[string](b, appr, `document.querySelector("[data-testid=`+sel+`]").textContent`); !strings.Contains(got, want) || strings.Contains(got, "session:") {
					t.Errorf("the alert's page shows %s as %q, want the official's name %s", sel, got, want)
				}
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

			// Feedback: sent for a citizen by a key with a photo, routed to
			// so-tnmt.
			code, fb := postFeedbackWithPhoto(t, in, `{"category":"rac-thai","title":"Rác ở chợ Hội An",
				"description":"Rác tồn đọng ba ngày.","lat":15.8768,"long":108.3291,"address":"12 Trần Phú","phone":"0905123456","name":"Nguyễn Thị Hoa"}`)
			if code != http.StatusCreated || fb["agency"] != "so-tnmt" {
				t.Fatalf("feedback: %d %v", code, fb)
			}
			fbID := fb["id"].(string)
			fbStatus := func() string {
				_, f := in.call(t, "GET", "/v1/feedback/"+fbID, "")
				return fmt.Sprint(f["status"])
			}
			hand := b.tab()
			b.signIn(hand, "demo-handler", false)
			b.open(hand, "/console/feedback", http.StatusOK)
			if n := eval[int](b, hand, `document.querySelectorAll('#feedback-list a[href="/console/feedback/`+fbID+`"]').length`); n != 1 {
				t.Errorf("the handler's queue lists the matter %d times, want 1", n)
			}
			b.shot(hand, "feedback-queue")
			b.open(hand, "/console/feedback/"+fbID, http.StatusOK)
			if got := eval[string](b, hand, `document.querySelector("[data-testid=fb-phone]").textContent`); got != "84905***456" {
				t.Errorf("the citizen's phone shows as %q, want it masked", got)
			}
			// The photo, through the console with the handler's session.
			b.waitUntil(hand, "the photo", `(() => { const i = document.querySelector("img.thumb"); return i !== null && i.complete && i.naturalWidth === 8 })()`)
			b.do(hand, "start", chromedp.Click(chromedp.ID("do-start")))
			b.waitUntil(hand, "in progress", `document.getElementById("fb-status").dataset.status === "in_progress"`)
			b.checkA11y(hand)
			b.shot(hand, "feedback-matter")
			b.do(hand, "escalate", chromedp.SendKeys(chromedp.ID("escalate-note"), "Vượt thẩm quyền của Sở."), chromedp.Click(chromedp.ID("do-escalate")))
			b.waitUntil(hand, "back to the queue", `location.pathname === "/console/feedback" && document.querySelector(".flash") !== null`)
			if st := fbStatus(); st != "escalated" {
				t.Fatalf("after escalating the matter is %s", st)
			}

			coord := b.tab()
			b.signIn(coord, "demo-coordinator", false)
			b.open(coord, "/console/feedback", http.StatusOK)
			if n := eval[int](b, coord, `document.querySelectorAll('#feedback-list a[href="/console/feedback/`+fbID+`"]').length`); n != 1 {
				t.Errorf("the coordinator's queue lists the escalated matter %d times, want 1", n)
			}
			b.open(coord, "/console/feedback/"+fbID, http.StatusOK)
			b.do(coord, "assign", chromedp.SendKeys(chromedp.ID("assign-agency"), "so-tnmt"), chromedp.Click(chromedp.ID("do-assign")))
			b.waitUntil(coord, "assigned", `document.getElementById("fb-status").dataset.status === "assigned"`)
			b.checkA11y(coord)
			b.shot(coord, "feedback-coordinator")

			b.open(hand, "/console/feedback/"+fbID, http.StatusOK)
			b.do(hand, "answer", chromedp.SendKeys(chromedp.ID("answer-text"), "Đã thu gom rác sáng 24/11."), chromedp.Click(chromedp.ID("do-answer")))
			b.waitUntil(hand, "answered", `document.getElementById("fb-status").dataset.status === "answered"`)
			if st := fbStatus(); st != "answered" {
				t.Errorf("the API says the matter is %s, want answered", st)
			}
			// Not the submitter's: the queue and an action are refused.
			b.open(sub, "/console/feedback", http.StatusForbidden)
			b.open(sub, "/console/feedback/"+fbID, http.StatusForbidden)
			if code := eval[int](b, sub, `fetch("/console/feedback/`+fbID+`/photos/0", {credentials: "same-origin"}).then(r => r.status)`); code != http.StatusForbidden {
				t.Errorf("a submitter fetching the photo of a citizen not named publicly: %d, want 403", code)
			}
			if code := postForm(b, sub, "/console/feedback/"+fbID+"/close", "csrf="+csrf); code != http.StatusForbidden {
				t.Errorf("a submitter closing feedback: %d, want 403", code)
			}
			if code := postForm(b, hand, "/console/feedback/"+fbID+"/close", ""); code != http.StatusForbidden {
				t.Errorf("the handler closing without the CSRF token: %d, want 403", code)
			}
			if st := fbStatus(); st != "answered" {
				t.Errorf("after the refused posts the matter is %s, want answered", st)
			}

			// The portal: the editor writes and submits; the chief editor
			// approves.
			ed := b.tab()
			b.signIn(ed, "demo-editor", false)
			b.open(ed, "/console/portal", http.StatusOK)
			b.open(ed, "/console/portal/new", http.StatusOK)
			b.do(ed, "write the article",
				chromedp.SendKeys(chromedp.ID("title"), "Khai trương Trung tâm hành chính công"),
				chromedp.SendKeys(chromedp.ID("summary"), "Người dân làm thủ tục tại một nơi."),
				chromedp.SendKeys(chromedp.ID("body"), "Sáng nay, Trung tâm phục vụ hành chính công tỉnh chính thức đi vào hoạt động."))
			b.shot(ed, "article-new")
			b.do(ed, "save the article", chromedp.Click(chromedp.ID("save-article")))
			b.waitUntil(ed, "the draft", `document.getElementById("article-status") !== null`)
			b.checkA11y(ed)
			loc, _ = chromedp.Run(ed, chromedp.Location())
			artID := strings.TrimSuffix(loc[strings.LastIndex(loc, "/")+1:], "?flash=pt.done")
			// The editor sets the draft's cover; the desk shows it before
			// it is public.
			coverFile := filepath.Join(t.TempDir(), "cover.png")
			writePNG(t, coverFile, 480, 200)
			eval[chromedp.Void](b, ed, `document.getElementById("cover-form").closest("details").open = true; undefined`)
			b.do(ed, "upload the cover", chromedp.SetUploadFiles(chromedp.ID("cover"), []string{coverFile}), chromedp.Click(chromedp.ID("upload-cover")))
			b.waitUntil(ed, "the cover", `(() => { const i = document.getElementById("article-cover"); return i !== null && i.complete && i.naturalWidth === 480 })()`)
			b.checkA11y(ed)
			b.shot(ed, "article-cover")
			b.do(ed, "submit the article", chromedp.Click(chromedp.ID("do-submit")))
			b.waitUntil(ed, "submitted", `document.getElementById("article-status").dataset.status === "submitted"`)
			edCSRF := eval[string](b, ed, `document.body.dataset.csrf`)
			if code := postForm(b, ed, "/console/portal/"+artID+"/approve", "csrf="+edCSRF); code != http.StatusForbidden {
				t.Errorf("the editor approving their article: %d, want 403", code)
			}
			b.open(sub, "/console/portal", http.StatusForbidden)

			chief := b.tab()
			chiefToken := b.signIn(chief, "demo-chief-editor", false)
			b.open(chief, "/console/portal", http.StatusOK)
			b.shot(chief, "desk")
			b.open(chief, "/console/portal/"+artID, http.StatusOK)
			b.shot(chief, "article-review")
			// The approval names the version the page showed: one read
			// before a change (the draft's first) is refused, nothing
			// published.
			if v := eval[string](b, chief, `document.querySelector("#pt-approve input[name=version]").value`); v == "" || v == "0" || v == "1" {
				t.Errorf("the approval form's version %q, want the article's current one", v)
			}
			chiefCSRF := eval[string](b, chief, `document.body.dataset.csrf`)
			if code := postForm(b, chief, "/console/portal/"+artID+"/approve", "csrf="+chiefCSRF+"&version=1"); code != http.StatusConflict {
				t.Errorf("approving the draft's first version after it changed: %d, want 409", code)
			}
			b.open(chief, "/console/portal/"+artID, http.StatusOK)
			b.do(chief, "approve the article", chromedp.Click(chromedp.ID("do-approve")))
			b.waitUntil(chief, "published", `document.getElementById("article-status").dataset.status === "published"`)
			b.checkA11y(chief)
			_, art := apiAs(t, in.base, chiefToken, "GET", "/v1/portal/desk/"+artID)
			slug := fmt.Sprint(art["vi"].(map[string]any)["slug"])
			if code, _ := apiAs(t, in.base, "", "GET", "/v1/portal/articles/"+slug); code != http.StatusOK {
				t.Errorf("the published article %s: %d, want 200", slug, code)
			}
			if got := eval[string](b, chief, `document.querySelector("[data-testid=pt-createdby]").textContent`); !strings.Contains(got, "(demo-editor)") {
				t.Errorf("the article names its writer %q, want the demo editor's name", got)
			}
			if code, _ := apiAs(t, in.base, "", "GET", "/v1/portal/articles/"+slug+"/cover"); code != http.StatusOK {
				t.Errorf("the published article's cover: %d, want 200", code)
			}
			// The chief editor corrects the live article: a new revision,
			// live at once at the same address.
			eval[chromedp.Void](b, chief, `document.getElementById("correct-form").closest("details").open = true; undefined`)
			b.checkA11y(chief)
			b.do(chief, "correct the article", chromedp.SetValue(chromedp.ID("title"), "Khai trương Trung tâm phục vụ hành chính công tỉnh"),
				chromedp.Click(chromedp.ID("save-correction")))
			b.waitUntil(chief, "the correction", `document.querySelector('#revisions tr[data-note="correction"]') !== null`)
			b.checkA11y(chief)
			if h := eval[string](b, chief, `document.querySelector("h1").textContent`); h != "Khai trương Trung tâm phục vụ hành chính công tỉnh" {
				t.Errorf("after the correction the article is titled %q", h)
			}
			eval[chromedp.Void](b, chief, `document.querySelector('#revisions tr[data-note="correction"] details').open = true; undefined`)
			b.shot(chief, "article-revisions")
			if _, pub := apiAs(t, in.base, "", "GET", "/v1/portal/articles/"+slug); fmt.Sprint(pub["vi"].(map[string]any)["title"]) != "Khai trương Trung tâm phục vụ hành chính công tỉnh" {
				t.Errorf("the public article after the correction: %v", pub["vi"])
			}

			// Four eyes at the desk: an official who both writes and
			// approves submits an article and cannot approve it; the
			// console shows the API's refusal, and nothing changes.
			if code, o := in.call(t, "POST", "/v1/officials", `{"username":"bien-tap-va-duyet","full_name":"Biên tập và duyệt (thử)","phone":"0900000199",
				"unit":"sotttt","roles":["editor","chief_editor"],"password":"`+demoPassword+`"}`); code != http.StatusCreated {
				t.Fatalf("an editor and chief editor: %d %v", code, o)
			}
			both := b.tab()
			b.signInByCode(both, in, "bien-tap-va-duyet", "84900000199")
			b.open(both, "/console/portal/new", http.StatusOK)
			b.do(both, "write an article",
				chromedp.SendKeys(chromedp.ID("title"), "Lịch tiếp công dân tháng 12"),
				chromedp.SendKeys(chromedp.ID("body"), "Lãnh đạo Sở tiếp công dân vào thứ Năm hằng tuần."),
				chromedp.Click(chromedp.ID("save-article")))
			b.waitUntil(both, "the draft", `document.getElementById("article-status") !== null`)
			b.do(both, "submit it", chromedp.Click(chromedp.ID("do-submit")))
			b.waitUntil(both, "submitted", `document.getElementById("article-status").dataset.status === "submitted"`)
			b.do(both, "approve it", chromedp.Click(chromedp.ID("do-approve")))
			b.waitUntil(both, "the refusal", `document.getElementById("step-refusal") !== null`)
			if ty := eval[string](b, both, `document.getElementById("step-refusal").dataset.type`); ty != "urn:loa:problem:four-eyes" {
				t.Errorf("the refusal of an author's approval is %q, want four-eyes", ty)
			}
			if st := eval[string](b, both, `document.getElementById("article-status").dataset.status`); st != "submitted" {
				t.Errorf("after the refused approval the article is %q, want submitted", st)
			}
			b.checkA11y(both)
			b.shot(both, "article-foureyes")
			// The audit log, for administrators.
			adm := b.tab()
			b.signIn(adm, "demo-admin", false)
			b.open(adm, "/console/audit", http.StatusOK)
			if n := eval[int](b, adm, `document.querySelectorAll("main tbody tr").length`); n == 0 {
				t.Error("the audit log shows nothing")
			}
			b.shot(adm, "audit")
			// The API admits alert_issuer alone to issue; an administrator
			// is shown no form either.
			b.open(adm, "/console/alerts/new", http.StatusForbidden)
			// Nor the operators' pages: the role admin is not the role ops.
			if n := eval[int](b, adm, `document.querySelectorAll('nav a[href^="/console/ops"]').length`); n != 0 {
				t.Errorf("the administrator is offered %d operators' pages", n)
			}
			b.open(adm, "/console/ops", http.StatusForbidden)
			b.open(sub, "/console/audit", http.StatusForbidden)

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

// postFeedbackWithPhoto sends feedback with the dev key as
// multipart/form-data: the JSON, then an 8×8 PNG photo.
func postFeedbackWithPhoto(t *testing.T, in *instance, data string) (int, map[string]any) {
	t.Helper()
	var img bytes.Buffer
	if err := png.Encode(&img, image.NewRGBA(image.Rect(0, 0, 8, 8))); err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	d, _ := mw.CreateFormField("data")
	d.Write([]byte(data))
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="photos"; filename="rac.png"`)
	h.Set("Content-Type", "image/png")
	p, _ := mw.CreatePart(h)
	p.Write(img.Bytes())
	mw.Close()
	req, _ := http.NewRequest("POST", in.base+"/v1/feedback", &body)
	req.Header.Set("Authorization", "Bearer "+in.key)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// writePNG writes a w×h PNG image to path: sky over rice fields.
func writePNG(t *testing.T, path string, w, h int) {
	t.Helper()
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{R: 90, G: 160, B: 230, A: 255}
			if y > h/2 {
				c = color.RGBA{R: 60, G: uint8(140 + (x+y)%40), B: 60, A: 255}
			}
			m.Set(x, y, c)
		}
	}
	var img bytes.Buffer
	if err := png.Encode(&img, m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, img.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// signInByCode signs an official in through the sign-in form with a code
// sent by SMS (read from the dev outbox, to phone in 84… form) and the
// demo password.
func (b *browser) signInByCode(ctx context.Context, in *instance, user, phone string) {
	b.t.Helper()
	b.open(ctx, "/console/signin", http.StatusOK)
	b.do(ctx, "ask for a code",
		chromedp.SendKeys(chromedp.ID("username"), user),
		chromedp.SendKeys(chromedp.ID("password"), demoPassword),
		chromedp.Click(chromedp.CSS(`button[name=send_code][value=sms]`)))
	b.waitUntil(ctx, "the code sent", `location.pathname === "/console/signin" && document.querySelector(".flash") !== null`)
	var code string
	waitFor(b.t, "the code in the outbox", func() bool {
		_, ob := in.call(b.t, "GET", "/v1/dev/outbox?limit=50", "")
		items, _ := ob["items"].([]any)
		for _, it := range items {
			e := it.(map[string]any)
			if strings.HasPrefix(fmt.Sprint(e["notification_id"]), "code-") && e["to"] == phone && e["channel"] == "sms" {
				code = fmt.Sprint(e["body"])[:6]
			}
		}
		return code != ""
	})
	b.do(ctx, "sign in with the code",
		chromedp.SendKeys(chromedp.ID("password"), demoPassword),
		chromedp.SendKeys(chromedp.ID("otp"), code),
		chromedp.Click(chromedp.ID("signin")))
	b.waitUntil(ctx, "the home page", `location.pathname === "/console/" && document.querySelector("h1") !== null`)
}
