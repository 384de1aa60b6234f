package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/api"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/alert"
	"github.com/loa-hub/loa/producer/direct"
)

// alertNow is when the test alerts arrive: before the golden CAP
// documents expire.
var alertNow = time.Date(2026, 11, 20, 9, 0, 0, 0, time.FixedZone("ICT", 7*3600))

const capDir = "../producer/alert/cap/testdata"

// ackKey signs the test alerts' acknowledgement tokens.
var ackKey = []byte("test-ack-key-of-thirty-two-bytes")

type alertFixture struct {
	*accFixture
	alertPub *recorder
}

// newAlertFixture is the accounts fixture's API with the alert service
// on top, API keys "issue-key" (alerts:issue, relaying every sender),
// "kttv-key" (alerts:issue, for the hydro-met service's sender only),
// "write-key" (alerts:write), "notify-key" (notify:direct) and
// "hoian-key" (alerts:issue bound to Hội An, relaying every sender), and
// the sample areas; the other alerts:issue keys are bound to the province. The keys and
// the official phat.canh.bao have CAP senders configured.
func newAlertFixture(t *testing.T) *alertFixture {
	t.Helper()
	af := newAccountsFixture(t)
	ctx := context.Background()
	if err := af.store.UpsertAreas(ctx, []accounts.Area{{Code: "20194", Name: "Hội An", Parent: "49"},
		{Code: "20197", Name: "Đại Lộc", Parent: "49"}, {Code: "20227", Name: "Tam Kỳ", Parent: "49"}}); err != nil {
		t.Fatal(err)
	}
	for code, ll := range map[string][2]float64{"20194": {15.88, 108.33}, "20197": {15.86, 108.05}, "20227": {15.57, 108.47}} {
		if _, err := af.store.SQL().ExecContext(ctx, `UPDATE areas SET lat = $1, lon = $2 WHERE code = $3`, ll[0], ll[1], code); err != nil {
			t.Fatal(err)
		}
	}
	for id, scope := range map[string]string{"issue": api.ScopeAlertsIssue, "write": api.ScopeAlertsWrite, "notify": api.ScopeNotifyDirect,
		"kttv": api.ScopeAlertsIssue, "hoian": api.ScopeAlertsIssue} {
		var areas []string
		switch id {
		case "issue", "kttv":
			areas = []string{"49"}
		case "hoian":
			areas = []string{"20194"}
		}
		if err := af.store.CreateAPIKey(ctx, sqlstore.APIKey{ID: "k-" + id, Name: id, Hash: api.HashAPIKey(id + "-key"), Scopes: []string{scope},
			AlertAreas: areas, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	pub := &recorder{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := alert.DefaultConfig()
	cfg.Now, cfg.MaxBytes, cfg.AckKey = func() time.Time { return alertNow }, 64<<10, ackKey
	// The pre-authorised key relays every feed; the agency's key and the
	// official phat.canh.bao speak for PCTT and the weather service.
	cfg.Senders = map[string][]string{"apikey:k-issue": {"*"}, "apikey:k-write": {"pctt@quangnam.gov.vn", "dubao@nchmf.gov.vn"},
		"official:phat.canh.bao": {"pctt@quangnam.gov.vn"}, "apikey:k-kttv": {"kttv@quangnam.gov.vn"}, "apikey:k-hoian": {"*"}}
	svc, err := alert.New(cfg, af.store, pub, log)
	if err != nil {
		t.Fatal(err)
	}
	h := api.NewHandler(api.Deps{Store: af.store, Direct: direct.New(direct.DefaultConfig(), af.store, af.pub, log), Log: log, DevAPIKey: "dev-key",
		MaxBodyBytes: 8 << 10, Now: af.clock.Now, Accounts: af.svc, Alerts: svc})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	af.fixture = &fixture{srv: srv, pub: af.pub, store: af.store}
	return &alertFixture{accFixture: af, alertPub: pub}
}

// postCAP posts a document with a content type.
func (f *alertFixture) postCAP(t *testing.T, key, contentType string, body io.Reader) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", f.srv.URL+"/v1/alerts/cap", body)
	req.Header.Set("Authorization", "Bearer "+key)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp, out
}

func (f *alertFixture) postFile(t *testing.T, key, file string) (*http.Response, map[string]any) {
	t.Helper()
	fh, err := os.Open(filepath.Join(capDir, file))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	return f.postCAP(t, key, "application/cap+xml", fh)
}

// TestAlertSenderIsThePosters: a key or an official posting a CAP alert
// under a sender not configured for it — another authority's address, or
// another key's Loa identity — is refused with 403 naming alert/sender;
// nothing is stored or queued. An official whose user name has no sender
// configured posts JSON alerts (sent as itself) but no CAP document.
func TestAlertSenderIsThePosters(t *testing.T) {
	f := newAlertFixture(t)
	doc, err := os.ReadFile(filepath.Join(capDir, "flood_vi_en.xml"))
	if err != nil {
		t.Fatal(err)
	}
	as := func(sender string) io.Reader {
		return strings.NewReader(strings.Replace(string(doc), "<sender>pctt@quangnam.gov.vn</sender>", "<sender>"+sender+"</sender>", 1))
	}
	_, other := f.official(t, "phat.canh.bao.khac", "0933333311", "snn", "alert_issuer")
	for _, c := range []struct{ who, key, sender string }{
		{"the agency's key as the hydrology service", "write-key", "kttv@quangnam.gov.vn"},
		{"the agency's key as the relay key", "write-key", "loa:k-issue"},
		{"the relay key as the agency's key", "issue-key", "loa:k-write"},
		{"an official with no sender configured", other, "pctt@quangnam.gov.vn"},
	} {
		resp, p := f.postCAP(t, c.key, "application/cap+xml", as(c.sender))
		if resp.StatusCode != http.StatusForbidden || p["field"] != "alert/sender" {
			t.Errorf("%s: %d %v, want 403 naming alert/sender", c.who, resp.StatusCode, p)
		}
	}
	if resp, l := f.do(t, "GET", "/v1/alerts", "issue-key", ""); resp.StatusCode != 200 || len(l["items"].([]any)) != 0 {
		t.Errorf("alerts stored after the refusals: %d %v", resp.StatusCode, l)
	}
	if n := f.alertPub.count(); n != 0 {
		t.Errorf("%d published", n)
	}
	if resp, a := f.do(t, "POST", "/v1/alerts", other, `{"identifier":"o-1","msg_type":"alert","severity":"Severe","urgency":"Expected","event":"Lũ",
		"headline":"Lũ","description":"Nước lên.","expires":"2026-11-21T09:00:00+07:00","areas":["20194"]}`); resp.StatusCode != 202 {
		t.Errorf("the same official's JSON alert: %d %v", resp.StatusCode, a)
	}
	if resp, a := f.postFile(t, "write-key", "storm_circle.xml"); resp.StatusCode != 202 {
		t.Errorf("the agency's key as the weather service, configured: %d %v", resp.StatusCode, a)
	}
}

// TestAlertAmendsAtOnceOnlyItsOwnChains: an issuer's pre-authorisation
// covers the chains it speaks for. An Update or a Cancel that refers to
// an alert of a sender its key may not post as — by a CAP reference, by
// a Loa id, or by a reference to an alert not received yet — is stored
// pending approval, never sent at once, and names the senders; so one
// authority's key can neither stop another's life-safety alert nor
// replace its text on the phones, nor cancel in advance an alert that
// has yet to arrive. Its own chains it still amends at once, as does a
// key that relays every sender; an approver may let the other through.
func TestAlertAmendsAtOnceOnlyItsOwnChains(t *testing.T) {
	f := newAlertFixture(t)
	resp, a := f.postFile(t, "issue-key", "flood_vi_en.xml")
	if resp.StatusCode != 202 || a["status"] != alert.StatusSentPreauthorised {
		t.Fatalf("PCTT's alert: %d %v", resp.StatusCode, a)
	}
	pctt := a["id"].(string)
	sent := f.alertPub.count()
	doc, err := os.ReadFile(filepath.Join(capDir, "flood_cancel.xml"))
	if err != nil {
		t.Fatal(err)
	}
	// The hydro-met service's key cancels PCTT's alert 0147 and, in
	// advance, its 0148, which has not arrived.
	asKTTV := strings.NewReplacer("<sender>pctt@quangnam.gov.vn</sender>", "<sender>kttv@quangnam.gov.vn</sender>",
		"VN-49-PCTT-2026-0151", "VN-49-KTTV-2026-0001").Replace(string(doc))
	resp, c := f.postCAP(t, "kttv-key", "application/cap+xml", strings.NewReader(asKTTV))
	if resp.StatusCode != 202 || c["status"] != alert.StatusPendingApproval {
		t.Errorf("another sender's CAP Cancel: %d %v, want 202 %s", resp.StatusCode, c, alert.StatusPendingApproval)
	}
	if fs, _ := c["foreign_senders"].([]any); len(fs) != 1 || fs[0] != "pctt@quangnam.gov.vn" {
		t.Errorf("foreign senders %v, want [pctt@quangnam.gov.vn]", c["foreign_senders"])
	}
	// By Loa id, in JSON.
	resp, j := f.do(t, "POST", "/v1/alerts", "kttv-key", fmt.Sprintf(`{"msg_type":"update","references":[%q],"severity":"Minor","urgency":"Past","event":"Lũ",
		"headline":"Lũ đã rút","description":"Không còn nguy hiểm.","expires":"2026-11-21T09:00:00+07:00"}`, pctt))
	if resp.StatusCode != 202 || j["status"] != alert.StatusPendingApproval {
		t.Errorf("another sender's JSON Update by id: %d %v, want 202 %s", resp.StatusCode, j, alert.StatusPendingApproval)
	}
	if n := f.alertPub.count(); n != sent {
		t.Fatalf("%d published by another authority's key", n-sent)
	}
	if resp, d := f.do(t, "GET", "/v1/alerts/"+pctt, "issue-key", ""); resp.StatusCode != 200 || d["status"] != alert.StatusSentPreauthorised {
		t.Errorf("PCTT's alert after them: %d %v", resp.StatusCode, d["status"])
	}
	// PCTT's 0148 arrives: sent, not taken as cancelled.
	resp, u := f.postFile(t, "issue-key", "flood_update.xml")
	if resp.StatusCode != 202 || u["status"] != alert.StatusSentPreauthorised {
		t.Errorf("PCTT's update 0148 after another's pending Cancel of it: %d %v", resp.StatusCode, u)
	}
	// Its own chain the key amends at once; the relay key any chain.
	resp, own := f.do(t, "POST", "/v1/alerts", "kttv-key", `{"identifier":"kttv-1","msg_type":"alert","severity":"Severe","urgency":"Expected","event":"Mưa lớn",
		"headline":"Mưa lớn","description":"Mưa trên 200 mm.","expires":"2026-11-21T09:00:00+07:00","areas":["20194"]}`)
	if resp.StatusCode != 202 || own["status"] != alert.StatusSentPreauthorised {
		t.Fatalf("its own alert: %d %v", resp.StatusCode, own)
	}
	if resp, x := f.do(t, "POST", "/v1/alerts", "kttv-key", `{"msg_type":"cancel","references":["kttv-1"]}`); resp.StatusCode != 202 || x["status"] != alert.StatusSentPreauthorised {
		t.Errorf("its own Cancel: %d %v", resp.StatusCode, x)
	}
	if resp, x := f.do(t, "POST", "/v1/alerts", "issue-key", fmt.Sprintf(`{"msg_type":"cancel","references":[%q]}`, pctt)); resp.StatusCode != 202 || x["status"] != alert.StatusSentPreauthorised {
		t.Errorf("the relay key's Cancel: %d %v", resp.StatusCode, x)
	}
	// An approver lets the other through.
	_, approverTok := f.official(t, "pheduyet", "0911111111", "sotttt", string(accounts.RoleBroadcastApprover))
	if resp, got := f.do(t, "POST", "/v1/alerts/"+j["id"].(string)+"/approve", approverTok, ""); resp.StatusCode != 200 || got["status"] != alert.StatusSentApproved {
		t.Errorf("approving the other's Update: %d %v", resp.StatusCode, got)
	}
}

// TestAlertCAPRefusalsNameTheElement: every malformed or invalid golden
// document is refused with 400 problem+json whose field is the element
// the parser's golden file names.
func TestAlertCAPRefusalsNameTheElement(t *testing.T) {
	f := newAlertFixture(t)
	files, _ := filepath.Glob(filepath.Join(capDir, "invalid_*.xml"))
	if len(files) < 10 {
		t.Fatalf("only %d invalid documents", len(files))
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			var golden struct {
				Error struct{ Element, Class string }
			}
			b, err := os.ReadFile(strings.TrimSuffix(file, ".xml") + ".golden.json")
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &golden); err != nil || golden.Error.Element == "" {
				t.Fatalf("golden: %v %s", err, b)
			}
			if golden.Error.Class == "expired" || golden.Error.Class == "unknown_area" {
				t.Skip("the service stores an expired alert, or one naming unknown areas (TestAlertCAPStoredNotRefused)")
			}
			resp, p := f.postFile(t, "issue-key", name)
			if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "application/problem+json" || p["field"] != golden.Error.Element {
				t.Errorf("%d %s field %v, want 400 naming %s (%v)", resp.StatusCode, resp.Header.Get("Content-Type"), p["field"], golden.Error.Element, p["detail"])
			}
		})
	}
	if n := f.alertPub.count(); n != 0 {
		t.Errorf("%d events published for refused alerts", n)
	}
}

// TestAlertCAPBodyLimits: a body over the limit is 413; a deeply nested
// or entity-declaring document is 400; none is read whole.
func TestAlertCAPBodyLimits(t *testing.T) {
	f := newAlertFixture(t)
	head, _ := os.ReadFile(filepath.Join(capDir, "flood_vi_en.xml"))
	big := io.MultiReader(strings.NewReader(string(head[:200])), strings.NewReader(strings.Repeat("<code>x</code>", 1<<20)))
	if resp, p := f.postCAP(t, "issue-key", "application/xml", big); resp.StatusCode != 413 {
		t.Errorf("14 MiB: %d %v", resp.StatusCode, p)
	}
	bomb := `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>` +
		`<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&lol2;</identifier></alert>`
	if resp, p := f.postCAP(t, "issue-key", "application/cap+xml", strings.NewReader(bomb)); resp.StatusCode != 400 || p["field"] != "alert" {
		t.Errorf("bomb: %d %v", resp.StatusCode, p)
	}
	deep := `<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">` + strings.Repeat("<a>", 5000) + strings.Repeat("</a>", 5000) + `</alert>`
	if resp, p := f.postCAP(t, "issue-key", "application/cap+xml", strings.NewReader(deep)); resp.StatusCode != 400 {
		t.Errorf("deep: %d %v", resp.StatusCode, p)
	}
}

func TestAlertCAPContentTypeAndScopes(t *testing.T) {
	f := newAlertFixture(t)
	body, _ := os.ReadFile(filepath.Join(capDir, "flood_vi_en.xml"))
	for _, ct := range []string{"text/plain", "application/json", ""} {
		resp, p := f.postCAP(t, "issue-key", ct, strings.NewReader(string(body)))
		if resp.StatusCode != 415 || p["type"] != "urn:loa:problem:unsupported-media-type" {
			t.Errorf("%q: %d %v", ct, resp.StatusCode, p)
		}
	}
	if resp, _ := f.postCAP(t, "notify-key", "application/xml", strings.NewReader(string(body))); resp.StatusCode != 403 {
		t.Errorf("notify key: %d", resp.StatusCode)
	}
	if resp, _ := f.postCAP(t, "", "application/xml", strings.NewReader(string(body))); resp.StatusCode != 401 {
		t.Errorf("no key: %d", resp.StatusCode)
	}
	if f.alertPub.count() != 0 {
		t.Error("published")
	}
}

// TestAlertRepostIsIdempotent: the same CAP identifier and sender posted
// twice answers the same id and sends once.
func TestAlertRepostIsIdempotent(t *testing.T) {
	f := newAlertFixture(t)
	resp, first := f.postFile(t, "issue-key", "flood_vi_en.xml")
	if resp.StatusCode != 202 || first["status"] != alert.StatusSentPreauthorised || first["priority"] != "high" {
		t.Fatalf("%d %v", resp.StatusCode, first)
	}
	resp, again := f.postFile(t, "issue-key", "flood_vi_en.xml")
	if resp.StatusCode != 202 || again["id"] != first["id"] || resp.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("repost: %d %v", resp.StatusCode, again)
	}
	if n := f.alertPub.count(); n != 1 {
		t.Errorf("%d published, want 1", n)
	}
	e := f.alertPub.Envelopes()[0]
	if e.Kind != producer.KindPlan || e.Lane != "alert" || e.ID != first["id"] {
		t.Errorf("published %s on %s id %s", e.Kind, e.Lane, e.ID)
	}
}

// TestAlertIdentifierReused: the identifier of an earlier alert from the
// same sender, posted with other content, is refused with 409 naming the
// identifier, and nothing more is sent; a resend differing only in its
// sent time is a repost.
func TestAlertIdentifierReused(t *testing.T) {
	f := newAlertFixture(t)
	doc, err := os.ReadFile(filepath.Join(capDir, "flood_vi_en.xml"))
	if err != nil {
		t.Fatal(err)
	}
	resp, first := f.postCAP(t, "issue-key", "application/cap+xml", bytes.NewReader(doc))
	if resp.StatusCode != 202 {
		t.Fatalf("%d %v", resp.StatusCode, first)
	}
	resent := bytes.Replace(doc, []byte("<sent>2026-11-20T07:00:00+07:00</sent>"), []byte("<sent>2026-11-20T07:05:00+07:00</sent>"), 1)
	changed := bytes.Replace(doc, []byte("<severity>Severe</severity>"), []byte("<severity>Extreme</severity>"), 1)
	if bytes.Equal(resent, doc) || bytes.Equal(changed, doc) {
		t.Fatal("the test documents are not edited")
	}
	resp, again := f.postCAP(t, "issue-key", "application/cap+xml", bytes.NewReader(resent))
	if resp.StatusCode != 202 || again["id"] != first["id"] || again["replayed"] != true {
		t.Errorf("resend with a new sent time: %d %v", resp.StatusCode, again)
	}
	resp, p := f.postCAP(t, "issue-key", "application/cap+xml", bytes.NewReader(changed))
	if resp.StatusCode != 409 || p["field"] != "alert/identifier" || p["type"] != "urn:loa:problem:idempotency-conflict" {
		t.Errorf("other content under the same identifier: %d %v", resp.StatusCode, p)
	}

	exp := alertNow.Add(3 * time.Hour).Format(time.RFC3339)
	body := func(headline string) string {
		return `{"identifier":"lu-9","msg_type":"alert","severity":"Severe","urgency":"Immediate","event":"Lũ",
			"headline":"` + headline + `","description":"Nước lên nhanh","expires":"` + exp + `","areas":["20194"]}`
	}
	if resp, a := f.do(t, "POST", "/v1/alerts", "issue-key", body("Lũ")); resp.StatusCode != 202 {
		t.Fatalf("%d %v", resp.StatusCode, a)
	}
	if resp, a := f.do(t, "POST", "/v1/alerts", "issue-key", body("Lũ")); resp.StatusCode != 202 || a["replayed"] != true {
		t.Errorf("JSON repost: %d %v", resp.StatusCode, a)
	}
	if resp, p := f.do(t, "POST", "/v1/alerts", "issue-key", body("Lũ lớn")); resp.StatusCode != 409 || p["field"] != "identifier" {
		t.Errorf("JSON identifier reused: %d %v", resp.StatusCode, p)
	}
	if n := f.alertPub.count(); n != 2 {
		t.Errorf("%d published, want 2 (one per accepted alert)", n)
	}
}

// TestAlertApprovalOverHTTP: an alerts:write issuer's alert waits; an API
// key or an official without the role cannot approve; an approver can;
// nothing is published before.
func TestAlertApprovalOverHTTP(t *testing.T) {
	f := newAlertFixture(t)
	resp, a := f.postFile(t, "write-key", "flood_vi_en.xml")
	if resp.StatusCode != 202 || a["status"] != alert.StatusPendingApproval {
		t.Fatalf("%d %v", resp.StatusCode, a)
	}
	id := a["id"].(string)
	_, approverTok := f.official(t, "pheduyet", "0911111111", "sotttt", string(accounts.RoleBroadcastApprover))
	_, submitterTok := f.official(t, "guitin", "0922222222", "sotttt", string(accounts.RoleAgencySubmitter))

	if resp, _ := f.do(t, "POST", "/v1/alerts/"+id+"/approve", "write-key", ""); resp.StatusCode != 403 {
		t.Errorf("issuer key approving: %d", resp.StatusCode)
	}
	if resp, _ := f.do(t, "POST", "/v1/alerts/"+id+"/approve", submitterTok, ""); resp.StatusCode != 403 {
		t.Errorf("submitter approving: %d", resp.StatusCode)
	}
	if resp, l := f.do(t, "GET", "/v1/alerts?status=pending_approval", approverTok, ""); resp.StatusCode != 200 || len(l["items"].([]any)) != 1 {
		t.Errorf("pending list: %d %v", resp.StatusCode, l)
	}
	if f.alertPub.count() != 0 {
		t.Fatal("published before approval")
	}
	resp, got := f.do(t, "POST", "/v1/alerts/"+id+"/approve", approverTok, "")
	if resp.StatusCode != 200 || got["status"] != alert.StatusSentApproved || f.alertPub.count() != 1 {
		t.Fatalf("approve: %d %v, %d published", resp.StatusCode, got, f.alertPub.count())
	}
	if resp, _ := f.do(t, "POST", "/v1/alerts/"+id+"/reject", approverTok, `{"reason":"x"}`); resp.StatusCode != 409 {
		t.Errorf("reject after approve: %d", resp.StatusCode)
	}

	// Another one, rejected: never sent.
	resp, b := f.postFile(t, "write-key", "storm_circle.xml")
	if resp.StatusCode != 202 {
		t.Fatalf("%d %v", resp.StatusCode, b)
	}
	if resp, p := f.do(t, "POST", "/v1/alerts/"+b["id"].(string)+"/reject", approverTok, `{}`); resp.StatusCode != 400 || p["field"] != "reason" {
		t.Errorf("reject without reason: %d %v", resp.StatusCode, p)
	}
	if resp, r := f.do(t, "POST", "/v1/alerts/"+b["id"].(string)+"/reject", approverTok, `{"reason":"chưa có văn bản"}`); resp.StatusCode != 200 || r["status"] != alert.StatusRejected {
		t.Errorf("reject: %d %v", resp.StatusCode, r)
	}
	if f.alertPub.count() != 1 {
		t.Error("a rejected alert was published")
	}

	// The detail, with counters and texts.
	resp, d := f.do(t, "GET", "/v1/alerts/"+id, "write-key", "")
	if resp.StatusCode != 200 || d["stats"] == nil || len(d["texts"].([]any)) != 2 || d["decided_by"] == nil {
		t.Errorf("detail: %d %v", resp.StatusCode, d)
	}
	if resp, _ := f.do(t, "GET", "/v1/alerts/"+id, submitterTok, ""); resp.StatusCode != 403 {
		t.Errorf("submitter reading: %d", resp.StatusCode)
	}
	if resp, _ := f.do(t, "GET", "/v1/alerts/nope", "issue-key", ""); resp.StatusCode != 404 {
		t.Errorf("unknown: %d", resp.StatusCode)
	}
	if resp, p := f.do(t, "GET", "/v1/alerts?status=maybe", "issue-key", ""); resp.StatusCode != 400 || p["field"] != "status" {
		t.Errorf("bad status: %d %v", resp.StatusCode, p)
	}
}

// TestAlertJSONOverHTTP: the JSON form, its refusals naming the field,
// and an update/cancel chain linked on the original.
func TestAlertJSONOverHTTP(t *testing.T) {
	f := newAlertFixture(t)
	exp := alertNow.Add(3 * time.Hour).Format(time.RFC3339)
	for _, tc := range []struct{ body, field string }{
		{`{"msg_type":"alert","severity":"Extreme","urgency":"Immediate","event":"Lũ","headline":"Lũ","description":"d","expires":"` + exp + `","areas":["99999"]}`, "areas[0]"},
		{`{"msg_type":"alert","severity":"Extreme","urgency":"Immediate","event":"Lũ","headline":"Lũ","description":"d","expires":"2026-11-19T00:00:00Z","areas":["20194"]}`, "expires"},
		{`{"msg_type":"alert","urgency":"Immediate","event":"Lũ","headline":"Lũ","description":"d","expires":"` + exp + `","areas":["20194"]}`, "severity"},
		{`{"msg_type":"cancel","references":["nope"]}`, "references[0]"},
		{`{"msg_type":"alert","colour":"red"}`, "colour"},
	} {
		resp, p := f.do(t, "POST", "/v1/alerts", "issue-key", tc.body)
		if resp.StatusCode != 400 || p["field"] != tc.field {
			t.Errorf("%s: %d %v", tc.field, resp.StatusCode, p)
		}
	}
	resp, a := f.do(t, "POST", "/v1/alerts", "issue-key", `{"identifier":"lu-1","msg_type":"alert","severity":"Severe","urgency":"Immediate","event":"Lũ",
		"headline":"Lũ trên sông Thu Bồn","description":"Nước lên nhanh","expires":"`+exp+`","areas":["20194"],"channels":["push","sms"]}`)
	if resp.StatusCode != 202 || a["status"] != alert.StatusSentPreauthorised {
		t.Fatalf("%d %v", resp.StatusCode, a)
	}
	id := a["id"].(string)
	resp, u := f.do(t, "POST", "/v1/alerts", "issue-key", fmt.Sprintf(`{"msg_type":"update","references":[%q],"severity":"Extreme","urgency":"Immediate",
		"event":"Lũ","headline":"Lũ lớn","description":"Sơ tán","expires":%q,"areas":["20227"]}`, id, exp))
	if resp.StatusCode != 202 || fmt.Sprint(u["areas"]) != "[20194 20227]" {
		t.Fatalf("update: %d %v", resp.StatusCode, u)
	}
	resp, c := f.do(t, "POST", "/v1/alerts", "issue-key", `{"msg_type":"cancel","references":["lu-1"]}`)
	if resp.StatusCode != 202 || fmt.Sprint(c["areas"]) != "[20194]" {
		t.Fatalf("cancel: %d %v", resp.StatusCode, c)
	}
	_, d := f.do(t, "GET", "/v1/alerts/"+id, "issue-key", "")
	if fmt.Sprint(d["updates"]) != fmt.Sprint([]any{u["id"]}) || fmt.Sprint(d["cancelled_by"]) != fmt.Sprint([]any{c["id"]}) {
		t.Errorf("links: %v %v", d["updates"], d["cancelled_by"])
	}
	if f.alertPub.count() != 3 {
		t.Errorf("%d published", f.alertPub.count())
	}
}

// TestAlertCAPStoredNotRefused: valid CAP documents that reach no one are
// accepted and stored with a status saying why, visible in GET
// /v1/alerts; a Test alert's answer says it goes only to the test
// audience; a Draft is refused.
func TestAlertCAPStoredNotRefused(t *testing.T) {
	f := newAlertFixture(t)
	for _, c := range []struct {
		file, status, distribution string
	}{
		{"invalid_expired.xml", alert.StatusExpired, alert.DistributionPublic},
		{"unmatched_area.xml", alert.StatusNoRecipients, alert.DistributionPublic},
		{"oasis_a1_homeland_security_advisory.xml", alert.StatusNoRecipients, alert.DistributionPublic},
		{"status_system.xml", alert.StatusNotDistributed, alert.DistributionNone},
		{"status_test.xml", alert.StatusSentPreauthorised, alert.DistributionTest},
	} {
		resp, a := f.postFile(t, "issue-key", c.file)
		if resp.StatusCode != 202 || a["status"] != c.status || a["distribution"] != c.distribution || a["note"] == nil {
			t.Errorf("%s: %d %v, want 202 %s %s with a note", c.file, resp.StatusCode, a, c.status, c.distribution)
		}
		if c.file == "unmatched_area.xml" {
			if um, _ := a["unmatched_areas"].([]any); len(um) != 1 || um[0] != "99999" {
				t.Errorf("unmatched areas %v", a["unmatched_areas"])
			}
		}
		if c.file == "status_test.xml" && !strings.Contains(a["note"].(string), "never to the public") {
			t.Errorf("test alert note %q", a["note"])
		}
	}
	resp, l := f.do(t, "GET", "/v1/alerts?status=no_recipients", "issue-key", "")
	if items, _ := l["items"].([]any); resp.StatusCode != 200 || len(items) != 2 {
		t.Errorf("GET no_recipients: %d %v", resp.StatusCode, l)
	}
	if resp, p := f.postFile(t, "issue-key", "status_draft.xml"); resp.StatusCode != 400 || p["field"] != "alert/status" {
		t.Errorf("draft: %d %v", resp.StatusCode, p)
	}
	// Only the Test alert was sent, to its test audience.
	if n := f.alertPub.count(); n != 1 {
		t.Errorf("%d published, want 1", n)
	}
}

// TestAlertAcknowledgement: an official acknowledges with a session, an
// app without one with the ack token of its push; acknowledging twice
// counts once. Abuse: the session route refuses API keys, anonymous
// callers and accounts the alert is not addressed to (as an unknown
// alert, uncounted); the device form refuses — with one and the same 404 — a
// forged token, another device's token, a token for another alert and an
// unknown alert, so a stranger can neither acknowledge for someone else
// nor learn which alerts or devices exist.
func TestAlertAcknowledgement(t *testing.T) {
	f := newAlertFixture(t)
	resp, a := f.postFile(t, "issue-key", "flood_vi_en.xml")
	if resp.StatusCode != 202 {
		t.Fatalf("%d %v", resp.StatusCode, a)
	}
	id := a["id"].(string)
	accID, tok := f.official(t, "cuuho", "0911111111", "sotttt", string(accounts.RoleAlertResponder))
	ctx := context.Background()
	citizen := "acc-ack-citizen"
	if err := f.store.SeedAccount(ctx, citizen, "citizen", "", "", []string{"tok-phone-a", "tok-phone-b"}, now); err != nil {
		t.Fatal(err)
	}
	path := "/v1/me/alerts/" + id + "/ack"
	if resp, _ := f.do(t, "POST", path, "", ""); resp.StatusCode != 401 {
		t.Errorf("anonymous session ack: %d", resp.StatusCode)
	}
	if resp, _ := f.do(t, "POST", path, "issue-key", ""); resp.StatusCode != 403 {
		t.Errorf("API key on /v1/me: %d", resp.StatusCode)
	}
	// Not addressed to the official (not subscribed to its areas, no role
	// it names): refused as an unknown alert is, and not counted.
	resp, stranger := f.do(t, "POST", path, tok, "")
	_, unknown := f.do(t, "POST", "/v1/me/alerts/no-such-alert/ack", tok, "")
	delete(stranger, "instance")
	delete(unknown, "instance")
	if resp.StatusCode != 404 || fmt.Sprint(stranger) != fmt.Sprint(unknown) {
		t.Errorf("a stranger's ack: %d %v, want the unknown alert's %v", resp.StatusCode, stranger, unknown)
	}
	if _, d := f.do(t, "GET", "/v1/alerts/"+id, "issue-key", ""); d["stats"].(map[string]any)["acknowledged"] != float64(0) {
		t.Errorf("a stranger's ack was counted: %v", d["stats"])
	}
	// Subscribed to one of its areas, the official is in its audience.
	if resp, p := f.do(t, "PUT", "/v1/me/subscriptions", tok, `{"areas":["20194"],"topics":[]}`); resp.StatusCode != 200 {
		t.Fatalf("subscribe: %d %v", resp.StatusCode, p)
	}
	if resp, got := f.do(t, "POST", path, tok, ""); resp.StatusCode != 200 || got["first"] != true {
		t.Errorf("session ack: %d %v", resp.StatusCode, got)
	}
	if resp, got := f.do(t, "POST", path, tok, ""); resp.StatusCode != 200 || got["first"] != false {
		t.Errorf("second session ack: %d %v", resp.StatusCode, got)
	}
	if resp, _ := f.do(t, "POST", "/v1/me/alerts/no-such-alert/ack", tok, ""); resp.StatusCode != 404 {
		t.Errorf("ack of an unknown alert: %d", resp.StatusCode)
	}

	good := producer.AckToken(ackKey, id, "tok-phone-a")
	notFound := []struct{ name, path, body string }{
		{"forged", "/v1/alerts/" + id + "/ack", `{"device_token":"tok-phone-a","ack":"AAAAAAAAAAAAAAAAAAAAAA"}`},
		{"another device's token", "/v1/alerts/" + id + "/ack", `{"device_token":"tok-phone-b","ack":"` + good + `"}`},
		{"a token for another alert", "/v1/alerts/" + id + "/ack", `{"device_token":"tok-phone-a","ack":"` + producer.AckToken(ackKey, "other", "tok-phone-a") + `"}`},
		{"an unknown alert", "/v1/alerts/no-such-alert/ack", `{"device_token":"tok-phone-a","ack":"` + producer.AckToken(ackKey, "no-such-alert", "tok-phone-a") + `"}`},
		{"an unknown device", "/v1/alerts/" + id + "/ack", `{"device_token":"tok-nobody","ack":"` + producer.AckToken(ackKey, id, "tok-nobody") + `"}`},
	}
	var bodies []string
	for _, c := range notFound {
		resp, p := f.do(t, "POST", c.path, "", c.body)
		if resp.StatusCode != 404 {
			t.Errorf("%s: %d %v", c.name, resp.StatusCode, p)
		}
		delete(p, "instance") // the path, which the caller gave
		bodies = append(bodies, fmt.Sprint(p))
	}
	for _, b := range bodies[1:] {
		if b != bodies[0] {
			t.Errorf("refusals differ: %s vs %s", b, bodies[0])
		}
	}
	if resp, p := f.do(t, "POST", "/v1/alerts/"+id+"/ack", "", `{"device_token":"tok-phone-a"}`); resp.StatusCode != 400 || p["field"] != "ack" {
		t.Errorf("missing ack: %d %v", resp.StatusCode, p)
	}
	if resp, got := f.do(t, "POST", "/v1/alerts/"+id+"/ack", "", `{"device_token":"tok-phone-a","ack":"`+good+`"}`); resp.StatusCode != 200 || got["first"] != true {
		t.Errorf("device ack: %d %v", resp.StatusCode, got)
	}
	// The citizen's other device acknowledging too changes no count.
	if resp, got := f.do(t, "POST", "/v1/alerts/"+id+"/ack", "", `{"device_token":"tok-phone-b","ack":"`+producer.AckToken(ackKey, id, "tok-phone-b")+`"}`); resp.StatusCode != 200 || got["first"] != false {
		t.Errorf("second device of the same account: %d %v", resp.StatusCode, got)
	}
	_, d := f.do(t, "GET", "/v1/alerts/"+id, "issue-key", "")
	if st, _ := d["stats"].(map[string]any); st["acknowledged"] != float64(2) || st["escalated"] != float64(0) {
		t.Errorf("stats %v (accounts %s, %s)", d["stats"], accID, citizen)
	}
}

// TestAlertKeysAreBoundToTheirAreas: a pre-authorised key bound to Hội An
// alerts Hội An and is refused, 403 naming the areas field, for any
// other unit, by CAP or JSON, before anything is stored or sent; and no
// route lets the key widen its own areas.
func TestAlertKeysAreBoundToTheirAreas(t *testing.T) {
	f := newAlertFixture(t)
	exp := alertNow.Add(3 * time.Hour).Format(time.RFC3339)
	body := func(id, areas string) string {
		return `{"identifier":"` + id + `","msg_type":"alert","severity":"Extreme","urgency":"Immediate","event":"Lũ",
			"headline":"Lũ","description":"Nước lên nhanh","expires":"` + exp + `","areas":[` + areas + `]}`
	}
	resp, p := f.postFile(t, "hoian-key", "flood_vi_en.xml")
	if resp.StatusCode != 403 || p["type"] != "urn:loa:problem:forbidden" || p["field"] != "alert/info/area" ||
		!strings.Contains(p["detail"].(string), "20197") {
		t.Errorf("CAP outside its areas: %d %v", resp.StatusCode, p)
	}
	for _, areas := range []string{`"20197"`, `"49"`, `"20194","20227"`} {
		if resp, p := f.do(t, "POST", "/v1/alerts", "hoian-key", body("lu-out", areas)); resp.StatusCode != 403 || p["field"] != "areas" {
			t.Errorf("JSON for %s: %d %v", areas, resp.StatusCode, p)
		}
	}
	if n := f.alertPub.count(); n != 0 {
		t.Fatalf("%d envelopes published for refused alerts", n)
	}
	if resp, l := f.do(t, "GET", "/v1/alerts", "hoian-key", ""); resp.StatusCode != 200 || len(l["items"].([]any)) != 0 {
		t.Errorf("refused alerts stored: %d %v", resp.StatusCode, l)
	}
	if resp, a := f.do(t, "POST", "/v1/alerts", "hoian-key", body("lu-in", `"20194"`)); resp.StatusCode != 202 || a["status"] != alert.StatusSentPreauthorised {
		t.Errorf("its own area: %d %v", resp.StatusCode, a)
	}
	// The key reaches no route that changes a key.
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/apikeys", ""},
		{"PATCH", "/v1/apikeys/k-hoian", `{"alert_areas":["49"]}`},
		{"PUT", "/v1/apikeys/k-hoian", `{"alert_areas":["49"]}`},
		{"POST", "/v1/apikeys", `{"name":"x","scopes":["alerts:issue"],"alert_areas":["49"]}`},
	} {
		if resp, _ := f.do(t, c.method, c.path, "hoian-key", c.body); resp.StatusCode < 400 {
			t.Errorf("%s %s: %d", c.method, c.path, resp.StatusCode)
		}
	}
	if k, err := f.store.APIKeyByHash(context.Background(), api.HashAPIKey("hoian-key")); err != nil || !slices.Equal(k.AlertAreas, []string{"20194"}) {
		t.Errorf("the key's areas: %v %v", k.AlertAreas, err)
	}
}

// TestAlertKeysReadOnlyTheirOwnAlerts: an integrating system's key reads
// the alerts it posted and no other sender's — not in the list, and a
// look-up by id is 404 as for an alert that does not exist — so a
// hydro-met station's key learns nothing of the disaster office's
// restricted alerts. Keys with ops read every alert.
func TestAlertKeysReadOnlyTheirOwnAlerts(t *testing.T) {
	f := newAlertFixture(t)
	resp, a := f.postFile(t, "issue-key", "flood_vi_en.xml")
	if resp.StatusCode != 202 {
		t.Fatalf("the relay key's alert: %d %v", resp.StatusCode, a)
	}
	id := a["id"].(string)
	listed := func(key string) bool {
		t.Helper()
		resp, l := f.do(t, "GET", "/v1/alerts", key, "")
		if resp.StatusCode != 200 {
			t.Fatalf("list as %s: %d %v", key, resp.StatusCode, l)
		}
		for _, it := range l["items"].([]any) {
			if it.(map[string]any)["id"] == id {
				return true
			}
		}
		return false
	}
	if !listed("issue-key") || !listed("dev-key") {
		t.Errorf("the poster's key and an ops key must list the alert")
	}
	for _, key := range []string{"kttv-key", "write-key"} {
		if listed(key) {
			t.Errorf("%s lists another sender's alert", key)
		}
		if resp, p := f.do(t, "GET", "/v1/alerts/"+id, key, ""); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s reads another sender's alert: %d %v", key, resp.StatusCode, p)
		}
	}
	for _, key := range []string{"issue-key", "dev-key"} {
		if resp, p := f.do(t, "GET", "/v1/alerts/"+id, key, ""); resp.StatusCode != 200 {
			t.Errorf("%s: %d %v", key, resp.StatusCode, p)
		}
	}
}
