package api_test

import (
	"strings"
	"testing"
)

// TestAlertNamesTheOfficials: an alert an official issued names them —
// full name and user name — beside the principal id of their session, in
// the alert, the list and the approver's queue, and names the approver
// who decided it; an API key's alert names nobody.
func TestAlertNamesTheOfficials(t *testing.T) {
	f := newAlertFixture(t)
	_, issuerTok := f.official(t, "phat.canh.bao", "0933333311", "snn", "alert_issuer")
	_, approverTok := f.official(t, "phe.duyet", "0933333313", "sotttt", "broadcast_approver")
	body := `{"identifier":"names-1","msg_type":"alert","severity":"Extreme","urgency":"Immediate","event":"Lũ","headline":"Lũ khẩn cấp",
		"description":"Nước sông Thu Bồn lên nhanh.","expires":"2026-11-21T09:00:00+07:00","areas":["20194"]}`
	resp, a := f.do(t, "POST", "/v1/alerts", issuerTok, body)
	if resp.StatusCode != 202 {
		t.Fatalf("the issuer's alert: %d %v", resp.StatusCode, a)
	}
	id := a["id"].(string)
	const issuer, approver = "Cán bộ (phat.canh.bao)", "Cán bộ (phe.duyet)"
	if resp, got := f.do(t, "POST", "/v1/alerts/"+id+"/approve", approverTok, ""); resp.StatusCode != 200 {
		t.Fatalf("approve: %d %v", resp.StatusCode, got)
	}
	_, d := f.do(t, "GET", "/v1/alerts/"+id, approverTok, "")
	if d["issuer_name"] != issuer || d["sender_name"] != issuer || d["decided_by_name"] != approver {
		t.Errorf("the alert names issuer %q, sender %q, decided by %q; want %q, %q, %q (ids %v %v %v)",
			d["issuer_name"], d["sender_name"], d["decided_by_name"], issuer, issuer, approver, d["issuer"], d["sender"], d["decided_by"])
	}
	_, l := f.do(t, "GET", "/v1/alerts", issuerTok, "")
	if items, _ := l["items"].([]any); len(items) != 1 || items[0].(map[string]any)["issuer_name"] != issuer {
		t.Errorf("the list: %v", l["items"])
	}
	// A key's alert: nobody to name.
	resp, k := f.do(t, "POST", "/v1/alerts", "dev-key", strings.Replace(body, "names-1", "names-key-1", 1))
	if resp.StatusCode != 202 {
		t.Fatalf("the key's alert: %d %v", resp.StatusCode, k)
	}
	_, kd := f.do(t, "GET", "/v1/alerts/"+k["id"].(string), approverTok, "")
	if kd["issuer_name"] != nil || kd["sender_name"] != nil {
		t.Errorf("a key's alert names %v / %v", kd["issuer_name"], kd["sender_name"])
	}
}

// TestBroadcastNamesTheOfficials: a broadcast and its history name the
// officials who drafted, submitted and decided it, beside their ids.
func TestBroadcastNamesTheOfficials(t *testing.T) {
	f := newBroadcastFixture(t)
	_, sub := f.official(t, "can.bo.snn", "0911000051", "snn", "agency_submitter")
	_, appr := f.official(t, "phe.duyet", "0911000052", "sotttt", "broadcast_approver")
	resp, b := f.do(t, "POST", "/v1/broadcasts", sub, bcBody)
	if resp.StatusCode != 201 {
		t.Fatalf("draft: %d %v", resp.StatusCode, b)
	}
	id := b["id"].(string)
	if resp, s := f.do(t, "POST", "/v1/broadcasts/"+id+"/submit", sub, ""); resp.StatusCode != 200 {
		t.Fatalf("submit: %d %v", resp.StatusCode, s)
	}
	if resp, a := f.do(t, "POST", "/v1/broadcasts/"+id+"/reject", appr, `{"reason":"Thiếu văn bản."}`); resp.StatusCode != 200 {
		t.Fatalf("reject: %d %v", resp.StatusCode, a)
	}
	const drafter, approver = "Cán bộ (can.bo.snn)", "Cán bộ (phe.duyet)"
	_, g := f.do(t, "GET", "/v1/broadcasts/"+id, sub, "")
	if g["created_by_name"] != drafter || g["submitted_by_name"] != drafter || g["decided_by_name"] != approver {
		t.Errorf("the broadcast names %v / %v / %v", g["created_by_name"], g["submitted_by_name"], g["decided_by_name"])
	}
	_, h := f.do(t, "GET", "/v1/broadcasts/"+id+"/history", sub, "")
	names := map[any]bool{}
	for _, e := range h["items"].([]any) {
		names[e.(map[string]any)["actor_name"]] = true
	}
	if !names[drafter] || !names[approver] {
		t.Errorf("the history names %v", names)
	}
}
