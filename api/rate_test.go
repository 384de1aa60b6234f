package api_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/producer"
)

// TestBroadcastRateFromTheLedger: GET /v1/broadcasts/{id}?rate_since=
// adds to the counters the deliveries per second read from the ledger's
// times — the whole curve with 0, the newer seconds with a later start —
// whoever asks and whenever; a bad start is a 400 naming the field.
func TestBroadcastRateFromTheLedger(t *testing.T) {
	f := newBroadcastFixture(t)
	_, sub := f.official(t, "can.bo.snn", "0911000041", "snn", "agency_submitter")
	resp, b := f.do(t, "POST", "/v1/broadcasts", sub, bcBody)
	if resp.StatusCode != 201 {
		t.Fatalf("draft: %d %v", resp.StatusCode, b)
	}
	id := b["id"].(string)
	t0 := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	for i, st := range []loa.Status{"sent", "sent", "failed", "sent", "expired", "retrying"} {
		at := t0.Add(time.Duration(i/2) * time.Second)
		if err := f.store.RecordDelivery(context.Background(), producer.Delivery{NotificationID: id, Channel: "push", Recipient: fmt.Sprintf("tok-%d", i),
			Status: st, Provider: "fcm", Targets: 1, Attempts: 1, UpdatedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	points := func(since string) ([][2]int64, map[string]any) {
		t.Helper()
		resp, g := f.do(t, "GET", "/v1/broadcasts/"+id+"?rate_since="+since, sub, "")
		if resp.StatusCode != 200 {
			t.Fatalf("rate_since=%s: %d %v", since, resp.StatusCode, g)
		}
		st := g["stats"].(map[string]any)
		var out [][2]int64
		for _, p := range st["rate"].(map[string]any)["points"].([]any) {
			xy := p.([]any)
			out = append(out, [2]int64{int64(xy[0].(float64)), int64(xy[1].(float64))})
		}
		return out, st
	}
	s := t0.Unix()
	if got, st := points("0"); fmt.Sprint(got) != fmt.Sprintf("[[%d 2] [%d 2] [%d 1]]", s, s+1, s+2) || st["sent"] != 3.0 || st["failed"] != 1.0 {
		t.Errorf("the whole curve: %v with %v", got, st)
	}
	if got, _ := points(fmt.Sprint(s + 1)); fmt.Sprint(got) != fmt.Sprintf("[[%d 2] [%d 1]]", s+1, s+2) {
		t.Errorf("from the second second: %v", got)
	}
	if _, g := f.do(t, "GET", "/v1/broadcasts/"+id, sub, ""); g["stats"].(map[string]any)["rate"] != nil {
		t.Errorf("a curve nobody asked for: %v", g["stats"])
	}
	if resp, p := f.do(t, "GET", "/v1/broadcasts/"+id+"?rate_since=yesterday", sub, ""); resp.StatusCode != 400 || p["field"] != "rate_since" && fmt.Sprint(p["errors"]) == "" {
		t.Errorf("a bad rate_since: %d %v", resp.StatusCode, p)
	}
}
