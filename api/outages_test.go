package api_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/loa-hub/loa/api"
	"github.com/loa-hub/loa/internal/areas"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/direct"
	"github.com/loa-hub/loa/producer/outage"
)

// newOutageFixture serves the API with the sample areas loaded and the
// outage service on a clock the test controls.
func newOutageFixture(t *testing.T) (f *fixture, clock *time.Time, notifyKey string) {
	t.Helper()
	store := testenv.OpenStore(t, testenv.SQLiteURL(t))
	if err := store.LoadAreas(context.Background(), areas.Sample()); err != nil {
		t.Fatal(err)
	}
	pub := &recorder{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	at := time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)
	clock = &at
	svc := outage.New(store, pub, outage.DefaultConfig(), log)
	svc.Now = func() time.Time { return *clock }
	h := api.NewHandler(api.Deps{Store: store, Direct: direct.New(direct.DefaultConfig(), store, pub, log), Log: log, DevAPIKey: "dev-key",
		MaxBodyBytes: 8 << 10, Outages: svc, Now: svc.Now})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	key, hash, err := api.NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CreateAPIKey(context.Background(), sqlstore.APIKey{ID: "k-notify", Name: "n", Hash: hash, Scopes: []string{api.ScopeNotifyDirect}, CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	return &fixture{srv: srv, pub: pub, store: store}, clock, key
}

func TestAreasRoute(t *testing.T) {
	f, _, _ := newOutageFixture(t)
	resp, body := f.do(t, "GET", "/v1/areas", "", "")
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") == "" {
		t.Fatalf("GET /v1/areas: %d %v", resp.StatusCode, body)
	}
	items := body["items"].([]any)
	if len(items) != 1 {
		t.Fatalf("top level %v", items)
	}
	qn := items[0].(map[string]any)
	if qn["code"] != "49" || qn["level"] != "province" || qn["children"].(float64) != 3 || qn["lat"] == nil || qn["parent"] != "" {
		t.Errorf("province %v", qn)
	}
	_, body = f.do(t, "GET", "/v1/areas?parent=503", "", "")
	items = body["items"].([]any)
	if len(items) != 6 || items[0].(map[string]any)["name"] != "Phường Minh An" || items[0].(map[string]any)["parent"] != "503" {
		t.Errorf("Hội An: %v", items)
	}
	if resp, body := f.do(t, "GET", "/v1/areas?parent=20497", "", ""); resp.StatusCode != 200 || len(body["items"].([]any)) != 0 {
		t.Errorf("a commune has no children: %d %v", resp.StatusCode, body)
	}
	if resp, body := f.do(t, "GET", "/v1/areas?parent=nope", "", ""); resp.StatusCode != 404 || body["type"] != "urn:loa:problem:not-found" {
		t.Errorf("unknown parent: %d %v", resp.StatusCode, body)
	}
}

// TestOutageKeysAreBoundToTheirAreas: a power company's key posts for
// its areas (and the units below them) and is refused with 403 naming the
// row's areas anywhere else, in JSON and CSV, before anything is stored;
// the province above its district does not widen it.
func TestOutageKeysAreBoundToTheirAreas(t *testing.T) {
	f, _, _ := newOutageFixture(t)
	key, hash, err := api.NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.CreateAPIKey(context.Background(), sqlstore.APIKey{ID: "k-evn-hoian", Name: "EVN Hội An", Hash: hash,
		Scopes: []string{api.ScopeOutagesWrite}, Areas: []string{"503"}, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if resp, body := f.do(t, "POST", "/v1/outages", key, outageJSON); resp.StatusCode != 200 || len(body["accepted"].([]any)) != 1 {
		t.Fatalf("its own wards: %d %v", resp.StatusCode, body)
	}
	for _, c := range []struct{ name, ctype, body, field string }{
		{"another district", "application/json", strings.Replace(outageJSON, `"20497","20500"`, `"20470"`, 1), "areas"},
		{"the province above", "application/json", strings.Replace(outageJSON, `"20497","20500"`, `"49"`, 1), "areas"},
		{"the second of a list", "application/json",
			`{"outages":[` + strings.Replace(outageJSON, "PC-QNA-01", "PC-QNA-02", 1) + `,` +
				strings.Replace(strings.Replace(outageJSON, "PC-QNA-01", "PC-QNA-03", 1), `"20497","20500"`, `"20497","505"`, 1) + `]}`,
			"outages[1].areas"},
		{"CSV", "text/csv", "id,areas,location,start,end,reason\nPC-QNA-04,20497;502,x,2026-11-25 07:00,2026-11-25 17:00,y\n", "areas"},
	} {
		resp, body := f.do(t, "POST", "/v1/outages", key, c.body, "Content-Type", c.ctype)
		if resp.StatusCode != 403 || body["type"] != "urn:loa:problem:forbidden" || body["field"] != c.field {
			t.Errorf("%s: %d %v; want 403 naming %s", c.name, resp.StatusCode, body, c.field)
		}
	}
	for _, id := range []string{"PC-QNA-02", "PC-QNA-03", "PC-QNA-04"} {
		if resp, _ := f.do(t, "GET", "/v1/outages/"+id, key, ""); resp.StatusCode != 404 {
			t.Errorf("%s was stored: %d", id, resp.StatusCode)
		}
	}
	if n := f.pub.count(); n != 0 {
		t.Errorf("%d notices published", n)
	}
}

const outageJSON = `{"id":"PC-QNA-01","areas":["20497","20500"],"location":"Đường Trần Phú","start":"2026-11-25 07:00","end":"2026-11-25 17:00","reason":"Bảo trì"}`

func TestPostOutagesJSON(t *testing.T) {
	f, clock, notifyKey := newOutageFixture(t)
	if resp, _ := f.do(t, "POST", "/v1/outages", "", outageJSON); resp.StatusCode != 401 {
		t.Errorf("no key: %d", resp.StatusCode)
	}
	if resp, _ := f.do(t, "POST", "/v1/outages", notifyKey, outageJSON); resp.StatusCode != 403 {
		t.Errorf("key without outages:write: %d", resp.StatusCode)
	}
	resp, body := f.do(t, "POST", "/v1/outages", "dev-key", outageJSON)
	if resp.StatusCode != 200 {
		t.Fatalf("post: %d %v", resp.StatusCode, body)
	}
	acc := body["accepted"].([]any)[0].(map[string]any)
	if acc["status"] != "created" || acc["version"].(float64) != 1 || len(acc["notices"].([]any)) != 2 || len(body["rejected"].([]any)) != 0 {
		t.Fatalf("accepted %v", body)
	}
	// The same again: unchanged, nothing published.
	_, body = f.do(t, "POST", "/v1/outages", "dev-key", `{"outages":[`+outageJSON+`]}`)
	if body["accepted"].([]any)[0].(map[string]any)["status"] != "unchanged" || f.pub.count() != 0 {
		t.Errorf("repost: %v, %d published", body, f.pub.count())
	}
	// A change: a change notice at once.
	*clock = clock.Add(time.Hour)
	_, body = f.do(t, "POST", "/v1/outages", "dev-key", strings.Replace(outageJSON, "17:00", "16:00", 1))
	if body["accepted"].([]any)[0].(map[string]any)["status"] != "changed" || f.pub.count() != 1 {
		t.Fatalf("change: %v", body)
	}
	e := f.pub.Envelopes()[0]
	if e.Kind != producer.KindPlan || e.Lane != topics.LaneBulk || !strings.HasSuffix(e.ID, "-v2-change") ||
		!e.ExpiresAt.Equal(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("change notice %+v", e)
	}
	// GET shows the version and every notice with its status.
	resp, body = f.do(t, "GET", "/v1/outages/PC-QNA-01", "dev-key", "")
	if resp.StatusCode != 200 || body["version"].(float64) != 2 || body["status"] != "scheduled" {
		t.Fatalf("get: %d %v", resp.StatusCode, body)
	}
	st := map[string]int{}
	for _, n := range body["notices"].([]any) {
		n := n.(map[string]any)
		st[n["kind"].(string)+"/"+n["status"].(string)]++
	}
	if st["reminder/cancelled"] != 2 || st["reminder/scheduled"] != 2 || st["change/sent"] != 1 {
		t.Errorf("notices %v", st)
	}
	// An id this key never posted is 404 (another key's: TestAnOutageIsItsKeysOwn).
	if resp, _ := f.do(t, "GET", "/v1/outages/nope", "dev-key", ""); resp.StatusCode != 404 {
		t.Errorf("unknown: %d", resp.StatusCode)
	}
	// DELETE cancels, once.
	resp, body = f.do(t, "DELETE", "/v1/outages/PC-QNA-01", "dev-key", "")
	if resp.StatusCode != 200 || body["status"] != "cancelled" || f.pub.count() != 2 || !strings.HasSuffix(f.pub.Envelopes()[1].ID, "-v3-cancel") {
		t.Fatalf("delete: %d %v", resp.StatusCode, body)
	}
	if resp, _ := f.do(t, "DELETE", "/v1/outages/PC-QNA-01", "dev-key", ""); resp.StatusCode != 200 || f.pub.count() != 2 {
		t.Errorf("second delete: %d, %d published", resp.StatusCode, f.pub.count())
	}
	if resp, _ := f.do(t, "DELETE", "/v1/outages/never", "dev-key", ""); resp.StatusCode != 404 {
		t.Errorf("delete unknown: %d", resp.StatusCode)
	}
}

func TestPostOutagesRowsAndErrors(t *testing.T) {
	f, _, _ := newOutageFixture(t)
	// One good row, two bad: 200 with the bad ones reported.
	resp, body := f.do(t, "POST", "/v1/outages", "dev-key", `{"outages":[
		{"id":"a","areas":["99999"],"location":"x","start":"2026-11-25 07:00","end":"2026-11-25 09:00"},
		`+outageJSON+`,
		{"id":"c","areas":["49"],"location":"x","start":"2026-11-25 09:00","end":"2026-11-25 08:00"}]}`)
	if resp.StatusCode != 200 || len(body["accepted"].([]any)) != 1 {
		t.Fatalf("mixed: %d %v", resp.StatusCode, body)
	}
	rej := body["rejected"].([]any)
	if len(rej) != 2 || rej[0].(map[string]any)["row"].(float64) != 1 || rej[1].(map[string]any)["id"] != "c" ||
		rej[1].(map[string]any)["errors"].([]any)[0].(map[string]any)["field"] != "end" {
		t.Errorf("rejected %v", rej)
	}
	tests := []struct {
		name, ctype, body, field string
		status                   int
	}{
		{"every row bad", "application/json", `{"outages":[{"id":"x","areas":["49"],"location":"l","start":"2026-11-25 07:00","end":"soon"}]}`, "outages[0].end", 400},
		{"single object, missing start", "application/json", `{"id":"x","areas":["49"],"location":"l","end":"2026-11-25 07:00"}`, "start", 400},
		{"unknown area", "application/json", `{"id":"x","areas":["zz"],"location":"l","start":"2026-11-25 07:00","end":"2026-11-25 08:00"}`, "areas", 400},
		{"empty list", "application/json", `{"outages":[]}`, "outages", 400},
		{"both shapes", "application/json", `{"id":"x","outages":[]}`, "outages", 400},
		{"unknown field", "application/json", `{"id":"x","colour":"red"}`, "colour", 400},
		{"wrong type", "application/json", `{"id":"x","areas":"49"}`, "areas", 400},
		{"CSV, bad row", "text/csv", "id,areas,location,start,end,reason\nx,49,l,2026-11-25 09:00,2026-11-25 08:00,r\n", "end", 400},
		{"CSV, missing column", "text/csv", "id,areas,location,start\nx,49,l,2026-11-25 09:00\n", "end", 400},
		{"CSV, unknown column", "text/csv", "id,areas,colour\n", "colour", 400},
		{"CSV, ragged", "text/csv", "id,areas,location,start,end,reason\nx,49\n", "", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.do(t, "POST", "/v1/outages", "dev-key", tt.body, "Content-Type", tt.ctype)
			if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%d %v", resp.StatusCode, body)
			}
			if tt.field != "" && body["field"] != tt.field {
				t.Errorf("field %v, want %s: %v", body["field"], tt.field, body)
			}
		})
	}
	if f.pub.count() != 0 {
		t.Errorf("bad input published %d events", f.pub.count())
	}
}

func TestPostOutagesCSV(t *testing.T) {
	f, _, _ := newOutageFixture(t)
	csv := "id,areas,location,start,end,reason\n" +
		"PC-1,20497;20500,\"Đường Trần Phú, Lê Lợi\",2026-11-25 07:00,2026-11-25 17:00,Bảo trì lưới điện\n" +
		"PC-2,502 505,Khối phố 3,2026-11-26T07:00:00+07:00,2026-11-26T11:00:00+07:00,Thay máy biến áp\n" +
		"PC-3,20497,,2026-11-26 07:00,2026-11-26 08:00,\n"
	resp, body := f.do(t, "POST", "/v1/outages", "dev-key", csv, "Content-Type", "text/csv; charset=utf-8")
	if resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, body)
	}
	acc, rej := body["accepted"].([]any), body["rejected"].([]any)
	if len(acc) != 2 || len(rej) != 1 || rej[0].(map[string]any)["row"].(float64) != 3 {
		t.Fatalf("accepted %v rejected %v", acc, rej)
	}
	two := acc[1].(map[string]any)
	if areas := two["areas"].([]any); len(areas) != 2 || areas[0] != "502" || two["location"] != "Khối phố 3" {
		t.Errorf("second row %v", two)
	}
	if one := acc[0].(map[string]any); one["location"] != "Đường Trần Phú, Lê Lợi" || one["start"] != "2026-11-25T00:00:00Z" {
		t.Errorf("first row %v", one)
	}
	// The same CSV again: nothing new.
	_, body = f.do(t, "POST", "/v1/outages", "dev-key", csv, "Content-Type", "text/csv")
	for _, a := range body["accepted"].([]any) {
		if a.(map[string]any)["status"] != "unchanged" {
			t.Errorf("repost %v", a)
		}
	}
	// A cancellation by CSV.
	_, body = f.do(t, "POST", "/v1/outages", "dev-key", "id,areas,location,start,end,reason,cancelled\nPC-2,,,,,,true\n", "Content-Type", "text/csv")
	if a := body["accepted"].([]any)[0].(map[string]any); a["status"] != "cancelled" || f.pub.count() != 1 {
		t.Errorf("cancel by CSV: %v", body)
	}
}

// TestAnOutageIsItsKeysOwn: two power companies' keys, both allowed the
// same district, post the same outage id. Neither reads, cancels (DELETE
// or a cancelled row) nor changes the other's: the other's id is 404 or
// a row refused, its reminders stay scheduled and nothing is sent about
// it; a post of the same id is a schedule of the poster's own.
func TestAnOutageIsItsKeysOwn(t *testing.T) {
	f, _, _ := newOutageFixture(t)
	keys := map[string]string{}
	for _, id := range []string{"evn-a", "evn-b"} {
		key, hash, err := api.NewAPIKey()
		if err != nil {
			t.Fatal(err)
		}
		if err := f.store.CreateAPIKey(context.Background(), sqlstore.APIKey{ID: "k-" + id, Name: id, Hash: hash,
			Scopes: []string{api.ScopeOutagesWrite}, Areas: []string{"503"}, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		keys[id] = key
	}
	a, b := keys["evn-a"], keys["evn-b"]
	if resp, body := f.do(t, "POST", "/v1/outages", a, outageJSON); resp.StatusCode != 200 {
		t.Fatalf("a posts: %d %v", resp.StatusCode, body)
	}
	sent := f.pub.count()
	if resp, body := f.do(t, "GET", "/v1/outages/PC-QNA-01", b, ""); resp.StatusCode != 404 {
		t.Errorf("b reads a's outage: %d %v", resp.StatusCode, body)
	}
	if resp, body := f.do(t, "DELETE", "/v1/outages/PC-QNA-01", b, ""); resp.StatusCode != 404 {
		t.Errorf("b deletes a's outage: %d %v", resp.StatusCode, body)
	}
	if resp, body := f.do(t, "POST", "/v1/outages", b, `{"id":"PC-QNA-01","cancelled":true}`); resp.StatusCode != 400 || body["field"] != "id" {
		t.Errorf("b cancels a's outage by a row: %d %v", resp.StatusCode, body)
	}
	if n := f.pub.count(); n != sent {
		t.Errorf("%d notices sent about a's outage by b", n-sent)
	}
	changed := strings.Replace(outageJSON, "Bảo trì", "Sửa chữa", 1)
	resp, body := f.do(t, "POST", "/v1/outages", b, changed)
	if acc, _ := body["accepted"].([]any); resp.StatusCode != 200 || len(acc) != 1 ||
		acc[0].(map[string]any)["status"] != "created" || acc[0].(map[string]any)["version"] != float64(1) {
		t.Fatalf("b posts the same id: %d %v; want a schedule of its own, version 1", resp.StatusCode, body)
	}
	resp, body = f.do(t, "GET", "/v1/outages/PC-QNA-01", a, "")
	if resp.StatusCode != 200 || body["status"] != "scheduled" || body["version"] != float64(1) || body["reason"] != "Bảo trì" {
		t.Errorf("a's outage after b's posts: %d %v", resp.StatusCode, body)
	}
	for _, n := range body["notices"].([]any) {
		if st := n.(map[string]any)["status"]; st != "scheduled" {
			t.Errorf("a's notice %v is %v, want scheduled", n.(map[string]any)["notification_id"], st)
		}
	}
}
