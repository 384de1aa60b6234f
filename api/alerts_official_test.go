package api_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/loa-hub/loa/producer/alert"
)

// TestAlertIssuedByAnOfficial: an official with alert_issuer posts alerts
// (JSON and CAP), Updates and Cancels from a session, as the console does;
// each waits for an approver whatever the key policy says, and the
// approver must be independent of the issuer. An official without the role
// is refused before the body is read; the issuer follows the alerts but
// cannot decide on them.
func TestAlertIssuedByAnOfficial(t *testing.T) {
	f := newAlertFixture(t)
	_, issuerTok := f.official(t, "phat.canh.bao", "0933333301", "snn", "alert_issuer")
	_, plainTok := f.official(t, "gui.tin", "0933333302", "snn", "agency_submitter")
	_, approverTok := f.official(t, "phe.duyet", "0933333303", "sotttt", "broadcast_approver")
	_, citizenTok := f.citizen(t, "049095000777", "0933333304")

	// Refused before the body is read (a malformed body would be 400).
	for who, tok := range map[string]string{"an official without the role": plainTok, "an approver": approverTok, "a citizen": citizenTok} {
		for _, path := range []string{"/v1/alerts", "/v1/alerts/cap"} {
			if resp, p := f.do(t, "POST", path, tok, "{"); resp.StatusCode != 403 {
				t.Errorf("%s posting %s: %d %v, want 403", who, path, resp.StatusCode, p)
			}
		}
	}
	if f.alertPub.count() != 0 {
		t.Fatal("a refused post published")
	}

	// The issuer's alert waits for approval.
	body := `{"identifier":"console-1","msg_type":"alert","severity":"Extreme","urgency":"Immediate","event":"Lũ","headline":"Lũ khẩn cấp",
		"description":"Nước sông Thu Bồn lên nhanh.","expires":"2026-11-21T09:00:00+07:00","areas":["20194"]}`
	resp, a := f.do(t, "POST", "/v1/alerts", issuerTok, body)
	if resp.StatusCode != 202 || a["status"] != alert.StatusPendingApproval {
		t.Fatalf("the issuer's alert: %d %v", resp.StatusCode, a)
	}
	id := a["id"].(string)
	if resp, again := f.do(t, "POST", "/v1/alerts", issuerTok, body); resp.StatusCode != 202 || again["id"] != id || again["replayed"] != true {
		t.Errorf("the same form again: %d %v, want the same alert replayed", resp.StatusCode, again)
	}
	resp, c := f.postFile(t, issuerTok, "flood_vi_en.xml")
	if resp.StatusCode != 202 || c["status"] != alert.StatusPendingApproval {
		t.Fatalf("the issuer's CAP file: %d %v", resp.StatusCode, c)
	}
	if f.alertPub.count() != 0 {
		t.Fatal("an official's alert was published before approval")
	}

	// The issuer follows alerts but does not decide; the approver does.
	if resp, d := f.do(t, "GET", "/v1/alerts/"+id, issuerTok, ""); resp.StatusCode != 200 || d["issuer"] == nil {
		t.Errorf("the issuer reading the alert: %d %v", resp.StatusCode, d)
	}
	if resp, l := f.do(t, "GET", "/v1/alerts", issuerTok, ""); resp.StatusCode != 200 || len(l["items"].([]any)) != 2 {
		t.Errorf("the issuer's list: %d %v", resp.StatusCode, l)
	}
	if resp, _ := f.do(t, "GET", "/v1/alerts", plainTok, ""); resp.StatusCode != 403 {
		t.Errorf("an official without the role reading alerts: %d, want 403", resp.StatusCode)
	}
	if resp, _ := f.do(t, "POST", "/v1/alerts/"+id+"/approve", issuerTok, ""); resp.StatusCode != 403 {
		t.Errorf("the issuer approving: %d, want 403", resp.StatusCode)
	}
	if resp, got := f.do(t, "POST", "/v1/alerts/"+id+"/approve", approverTok, ""); resp.StatusCode != 200 || got["status"] != alert.StatusSentApproved {
		t.Fatalf("approve: %d %v", resp.StatusCode, got)
	}
	if f.alertPub.count() != 1 {
		t.Fatalf("%d published after the approval, want 1", f.alertPub.count())
	}

	// Update and Cancel from the alert: each waits for approval too.
	resp, u := f.do(t, "POST", "/v1/alerts", issuerTok, fmt.Sprintf(`{"msg_type":"update","references":[%q],"severity":"Extreme","urgency":"Immediate",
		"event":"Lũ","headline":"Lũ đang lên","description":"Mực nước đã vượt báo động 3.","expires":"2026-11-21T12:00:00+07:00"}`, id))
	if resp.StatusCode != 202 || u["status"] != alert.StatusPendingApproval {
		t.Fatalf("update: %d %v", resp.StatusCode, u)
	}
	resp, x := f.do(t, "POST", "/v1/alerts", issuerTok, fmt.Sprintf(`{"msg_type":"cancel","references":[%q],"description":"Nước đã rút."}`, id))
	if resp.StatusCode != 202 || x["status"] != alert.StatusPendingApproval {
		t.Fatalf("cancel: %d %v", resp.StatusCode, x)
	}
	if resp, d := f.do(t, "GET", "/v1/alerts/"+id, issuerTok, ""); resp.StatusCode != 200 || len(d["updates"].([]any)) != 1 || len(d["cancelled_by"].([]any)) != 1 {
		t.Errorf("the alert's chain: %d updates %v cancelled_by %v", resp.StatusCode, d["updates"], d["cancelled_by"])
	}

	// Four eyes: an administrator who granted the issuer's role may not
	// approve that issuer's alert, even holding broadcast_approver.
	_, adminTok := f.official(t, "quan.tri", "0933333305", "sotttt", "admin", "broadcast_approver")
	issuer2, issuer2Tok := f.official(t, "phat.canh.bao.2", "0933333306", "snn")
	if resp, g := f.do(t, "POST", "/v1/officials/"+issuer2+"/roles", adminTok, `{"unit":"snn","role":"alert_issuer"}`); resp.StatusCode != 200 {
		t.Fatalf("grant alert_issuer: %d %v", resp.StatusCode, g)
	}
	resp, a2 := f.do(t, "POST", "/v1/alerts", issuer2Tok, strings.Replace(body, "console-1", "console-2", 1))
	if resp.StatusCode != 202 {
		t.Fatalf("the second issuer's alert: %d %v", resp.StatusCode, a2)
	}
	if resp, p := f.do(t, "POST", "/v1/alerts/"+a2["id"].(string)+"/approve", adminTok, ""); resp.StatusCode != 403 || !strings.Contains(fmt.Sprint(p["type"]), "four-eyes") {
		t.Errorf("the granter approving: %d %v, want 403 four-eyes", resp.StatusCode, p)
	}
	if f.alertPub.count() != 1 {
		t.Errorf("%d published, want still 1", f.alertPub.count())
	}
}
