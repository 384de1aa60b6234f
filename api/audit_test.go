package api_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/api"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/producer/direct"
)

// calls returns the audit rows of API calls, oldest first.
func calls(t *testing.T, store *sqlstore.DB) []accounts.AuditEntry {
	t.Helper()
	all, err := store.AuditLog(context.Background(), "", 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []accounts.AuditEntry
	for _, e := range all {
		if e.Action == api.ActionCall {
			out = append(out, e)
		}
	}
	return out
}

func trustLoopback(d *api.Deps) {
	tp, err := api.ParseTrustedProxies("127.0.0.1, ::1")
	if err != nil {
		panic(err)
	}
	d.TrustedProxies = tp
}

// TestEveryCallIsAudited: each call made with a key or an official's
// session writes one row — reads, refusals and failures too — with who,
// the route pattern, the target, the status, the client address (from a
// trusted proxy's X-Forwarded-For), the time and the request id. Calls
// that authenticate nobody, and citizens' calls, write none. Before the
// audit middleware, notifications, recipient look-ups, dead-letter
// replays and outages wrote no row at all.
func TestEveryCallIsAudited(t *testing.T) {
	f := newAccountsFixture(t, trustLoopback)
	ctx := context.Background()
	key, hash, _ := api.NewAPIKey()
	if err := f.store.CreateAPIKey(ctx, sqlstore.APIKey{ID: "k-notify", Name: "reporting", Hash: hash, Scopes: []string{api.ScopeNotifyDirect}, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	_, citizenTok := f.citizen(t, "049095000123", "0912345678")
	officialID, officialTok := f.official(t, "tran.van.b", "0911222333", "snn", "agency_submitter")
	before := len(calls(t, f.store))

	xff := []string{"X-Forwarded-For", "203.0.113.9", "X-Request-Id", "req-42"}
	resp, n := f.do(t, "POST", "/v1/notifications", key, `{"to":{"phone":"0912345678"},"body":"x"}`, xff...)
	if resp.StatusCode != 202 || resp.Header.Get("X-Request-Id") != "req-42" {
		t.Fatalf("notify: %d %v, request id %q", resp.StatusCode, n, resp.Header.Get("X-Request-Id"))
	}
	id := n["id"].(string)
	type want struct {
		actor, route, target string
		status               int
	}
	var wants []want
	wants = append(wants, want{"apikey:k-notify", "POST /v1/notifications", id, 202})
	f.do(t, "GET", "/v1/notifications/"+id, key, "")
	wants = append(wants, want{"apikey:k-notify", "GET /v1/notifications/{id}", id, 200})
	f.do(t, "GET", "/v1/notifications/"+id+"/recipients?phone=0912345678", "dev-key", "")
	wants = append(wants, want{"apikey:dev", "GET /v1/notifications/{id}/recipients", id, 200})
	f.do(t, "GET", "/v1/notifications/"+id+"/recipients", key, "") // no ops scope
	wants = append(wants, want{"apikey:k-notify", "GET /v1/notifications/{id}/recipients", id, 403})
	f.do(t, "POST", "/v1/ops/deadletters/dl-1/replay", "dev-key", "") // no replayer here: 503
	wants = append(wants, want{"apikey:dev", "POST /v1/ops/deadletters/{id}/replay", "dl-1", 503})
	f.do(t, "POST", "/v1/outages", "dev-key", `[]`) // no outage service here: 503
	wants = append(wants, want{"apikey:dev", "POST /v1/outages", "", 503})
	f.do(t, "GET", "/v1/me", officialTok, "")
	wants = append(wants, want{officialID, "GET /v1/me", "", 200})
	f.do(t, "GET", "/v1/ops/deadletters", officialTok, "") // a session on a key's route
	wants = append(wants, want{officialID, "GET /v1/ops/deadletters", "", 403})

	// None of these writes a row: nobody authenticated, or a citizen.
	f.do(t, "GET", "/v1/notifications/"+id, "", "")
	f.do(t, "GET", "/v1/notifications/"+id, "loa_unknown", "")
	f.do(t, "GET", "/v1/areas", key, "")
	f.do(t, "GET", "/v1/me", citizenTok, "")

	got := calls(t, f.store)[before:]
	if len(got) != len(wants) {
		for _, e := range got {
			t.Logf("row: %s %s %s %d", e.Actor, e.Route, e.Subject, e.Status)
		}
		t.Fatalf("%d audit rows, want %d", len(got), len(wants))
	}
	for i, w := range wants {
		e := got[i]
		if e.Actor != w.actor || e.Route != w.route || e.Subject != w.target || e.Status != w.status {
			t.Errorf("row %d: %s %q %q %d, want %s %q %q %d", i, e.Actor, e.Route, e.Subject, e.Status, w.actor, w.route, w.target, w.status)
		}
		if e.IP != "203.0.113.9" && i == 0 {
			t.Errorf("row %d: ip %q, want the trusted proxy's client 203.0.113.9", i, e.IP)
		}
		if e.IP == "" || e.RequestID == "" || e.At.IsZero() {
			t.Errorf("row %d lacks ip, request id or time: %+v", i, e)
		}
	}
	if got[0].RequestID != "req-42" {
		t.Errorf("request id %q, want the caller's req-42", got[0].RequestID)
	}
	if got[2].Detail["lookup"] != "phone 84912***678" {
		t.Errorf("recipient look-up detail %v, want the masked phone", got[2].Detail)
	}
}

// TestRequestIDIsBounded: a caller's X-Request-Id goes into the audit log
// only when it is a short token.
func TestRequestIDIsBounded(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		sent string
		kept bool
	}{{"abc-123_x.y:z", true}, {strings.Repeat("a", 65), false}, {"a b", false}, {"ü", false}} {
		resp, _ := f.do(t, "GET", "/v1/dev/outbox", "dev-key", "", "X-Request-Id", c.sent)
		got := resp.Header.Get("X-Request-Id")
		if (got == c.sent) != c.kept || got == "" {
			t.Errorf("sent %q, answered %q (kept %v)", c.sent, got, c.kept)
		}
	}
}

// TestAuditLogOverHTTP: GET /v1/audit for the audit scope and for admins,
// filtered and paginated; everyone else is refused before anything is
// read.
func TestAuditLogOverHTTP(t *testing.T) {
	f := newAccountsFixture(t)
	ctx := context.Background()
	auditKey, hash, _ := api.NewAPIKey()
	f.store.CreateAPIKey(ctx, sqlstore.APIKey{ID: "k-siem", Name: "siem", Hash: hash, Scopes: []string{api.ScopeAudit}, CreatedAt: now})
	opsKey, hash2, _ := api.NewAPIKey()
	f.store.CreateAPIKey(ctx, sqlstore.APIKey{ID: "k-ops", Name: "ops", Hash: hash2, Scopes: []string{api.ScopeOps, api.ScopeAdmin}, CreatedAt: now})
	_, adminTok := f.official(t, "quan.tri", "0911222334", "ttcntt", "admin")
	_, submitterTok := f.official(t, "nop.don", "0911222335", "snn", "agency_submitter")
	_, citizenTok := f.citizen(t, "049095000123", "0912345678")
	for i := range 5 {
		f.do(t, "GET", fmt.Sprintf("/v1/ops/deadletters/dl-%d", i), opsKey, "")
	}

	for _, c := range []struct {
		name, tok string
		want      int
	}{
		{"no key", "", 401}, {"ops and admin scopes, no audit scope", opsKey, 403}, {"citizen", citizenTok, 403},
		{"official without admin", submitterTok, 403}, {"audit scope", auditKey, 200}, {"admin official", adminTok, 200},
	} {
		if resp, p := f.do(t, "GET", "/v1/audit", c.tok, ""); resp.StatusCode != c.want {
			t.Errorf("%s: %d %v, want %d", c.name, resp.StatusCode, p, c.want)
		}
	}

	q := url.Values{"actor": {"apikey:k-ops"}, "route": {"GET /v1/ops/deadletters/{id}"}, "limit": {"2"}}
	var targets []any
	next := ""
	for page := 0; page < 5; page++ {
		if next != "" {
			q.Set("before", next)
		}
		resp, out := f.do(t, "GET", "/v1/audit?"+q.Encode(), auditKey, "")
		if resp.StatusCode != 200 {
			t.Fatalf("page %d: %d %v", page, resp.StatusCode, out)
		}
		for _, it := range out["items"].([]any) {
			e := it.(map[string]any)
			if e["actor"] != "apikey:k-ops" || e["action"] != "call" || e["status"] != float64(404) {
				t.Errorf("entry %v", e)
			}
			targets = append(targets, e["target"])
		}
		n, _ := out["next"].(string)
		if n == "" {
			break
		}
		next = n
	}
	if fmt.Sprint(targets) != "[dl-4 dl-3 dl-2 dl-1 dl-0]" {
		t.Errorf("targets over the pages: %v", targets)
	}
	resp, out := f.do(t, "GET", "/v1/audit?target=dl-2&since="+url.QueryEscape(now.Add(-time.Hour).Format(time.RFC3339)), auditKey, "")
	if resp.StatusCode != 200 || len(out["items"].([]any)) != 1 {
		t.Errorf("by target: %d %v", resp.StatusCode, out)
	}
	for _, bad := range []struct{ query, field string }{
		{"limit=0", "limit"}, {"since=yesterday", "since"}, {"before=zzz", "before"}, {"until=2026-13-01T00:00:00Z", "until"},
	} {
		resp, p := f.do(t, "GET", "/v1/audit?"+bad.query, auditKey, "")
		if resp.StatusCode != 400 || p["field"] != bad.field {
			t.Errorf("%s: %d %v, want 400 naming %s", bad.query, resp.StatusCode, p, bad.field)
		}
	}
}

// TestAPIKeysListAndRevoke: keys are listed with their last use and
// never their hash; a revoked key is refused at once by every replica
// (two handlers on one database), since keys are cached nowhere.
func TestAPIKeysListAndRevoke(t *testing.T) {
	f := newAccountsFixture(t)
	ctx := context.Background()
	key, hash, _ := api.NewAPIKey()
	f.store.CreateAPIKey(ctx, sqlstore.APIKey{ID: "k-notify", Name: "reporting", Hash: hash, Scopes: []string{api.ScopeNotifyDirect}, CreatedAt: now})
	adminKey, hash2, _ := api.NewAPIKey()
	f.store.CreateAPIKey(ctx, sqlstore.APIKey{ID: "k-admin", Name: "admin", Hash: hash2, Scopes: []string{api.ScopeAdmin}, CreatedAt: now})
	_, hash3, _ := api.NewAPIKey()
	f.store.CreateAPIKey(ctx, sqlstore.APIKey{ID: "k-evn", Name: "EVN Hội An", Hash: hash3, Scopes: []string{api.ScopeOutagesWrite}, Areas: []string{"503", "505"}, CreatedAt: now})
	_, submitterTok := f.official(t, "nop.don", "0911222335", "snn", "agency_submitter")
	_, adminTok := f.official(t, "quan.tri", "0911222334", "ttcntt", "admin")

	// A second replica: another handler on the same database.
	replica := httptest.NewServer(api.NewHandler(api.Deps{Store: f.store, Direct: direct.New(direct.DefaultConfig(), f.store, &recorder{}, slog.New(slog.NewTextHandler(io.Discard, nil))), Log: slog.New(slog.NewTextHandler(io.Discard, nil)), DevAPIKey: "dev-key", Now: f.clock.Now}))
	t.Cleanup(replica.Close)
	other := &fixture{srv: replica, store: f.store}

	if resp, _ := f.do(t, "GET", "/v1/notifications/n-1", key, ""); resp.StatusCode != 404 {
		t.Fatalf("the key before revocation: %d", resp.StatusCode)
	}
	if resp, _ := other.do(t, "GET", "/v1/notifications/n-1", key, ""); resp.StatusCode != 404 {
		t.Fatalf("the key on the replica before revocation: %d", resp.StatusCode)
	}
	for _, c := range []struct {
		name, tok string
		want      int
	}{{"notify key", key, 403}, {"submitter", submitterTok, 403}, {"admin key", adminKey, 200}, {"admin official", adminTok, 200}} {
		if resp, _ := f.do(t, "GET", "/v1/apikeys", c.tok, ""); resp.StatusCode != c.want {
			t.Errorf("list as %s: %d, want %d", c.name, resp.StatusCode, c.want)
		}
	}
	resp, out := f.do(t, "GET", "/v1/apikeys", adminKey, "")
	if resp.StatusCode != 200 {
		t.Fatalf("list: %d %v", resp.StatusCode, out)
	}
	listed := map[string]map[string]any{}
	for _, it := range out["items"].([]any) {
		k := it.(map[string]any)
		if _, leaked := k["hash"]; leaked {
			t.Errorf("a hash is listed: %v", k)
		}
		listed[k["id"].(string)] = k
	}
	if k := listed["k-notify"]; k == nil || k["last_used_at"] == nil || k["revoked_at"] != nil || k["name"] != "reporting" ||
		fmt.Sprint(k["areas"]) != "[]" {
		t.Fatalf("k-notify listed as %v", k)
	}
	// The areas an outages:write key may publish for, for the operators
	// to review after migration 0157.
	if k := listed["k-evn"]; k == nil || fmt.Sprint(k["areas"]) != "[503 505]" {
		t.Errorf("k-evn listed as %v", k)
	}

	if resp, _ := f.do(t, "DELETE", "/v1/apikeys/k-notify", submitterTok, ""); resp.StatusCode != 403 {
		t.Errorf("a submitter revoked a key: %d", resp.StatusCode)
	}
	if resp, p := f.do(t, "DELETE", "/v1/apikeys/k-notify", adminTok, ""); resp.StatusCode != 204 {
		t.Fatalf("revoke: %d %v", resp.StatusCode, p)
	}
	if resp, _ := f.do(t, "DELETE", "/v1/apikeys/k-notify", adminKey, ""); resp.StatusCode != 204 {
		t.Errorf("revoke again: %d", resp.StatusCode)
	}
	if resp, _ := f.do(t, "DELETE", "/v1/apikeys/nope", adminKey, ""); resp.StatusCode != 404 {
		t.Errorf("revoke unknown: %d", resp.StatusCode)
	}
	for name, fx := range map[string]*fixture{"this replica": f.fixture, "the other replica": other} {
		if resp, _ := fx.do(t, "GET", "/v1/notifications/n-1", key, ""); resp.StatusCode != 401 {
			t.Errorf("the revoked key on %s: %d, want 401", name, resp.StatusCode)
		}
	}
	_, out = f.do(t, "GET", "/v1/apikeys", adminKey, "")
	for _, it := range out["items"].([]any) {
		if k := it.(map[string]any); k["id"] == "k-notify" && k["revoked_at"] == nil {
			t.Errorf("not shown revoked: %v", k)
		}
	}
}

// TestUnauditedReadIsOnlyForReads: api.UnauditedRead, which only code in
// the process can set (the console, for its own session checks and for
// a live view's repeated polls), leaves a read out of the audit log; on
// a write it is ignored.
func TestUnauditedReadIsOnlyForReads(t *testing.T) {
	f := newAccountsFixture(t, trustLoopback)
	officialID, tok := f.official(t, "tran.van.b", "0911222333", "snn", "agency_submitter")
	serve := func(method, path, body string, marked bool) int {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		if marked {
			req = req.WithContext(api.UnauditedRead(req.Context()))
		}
		rr := httptest.NewRecorder()
		f.srv.Config.Handler.ServeHTTP(rr, req)
		return rr.Code
	}
	before := len(calls(t, f.store))
	for _, c := range []struct {
		method, path, body string
		marked             bool
		status             int
	}{
		{"GET", "/v1/me", "", true, 200},
		{"GET", "/v1/me/capabilities", "", true, 200},
		{"GET", "/v1/me", "", false, 200},
		{"POST", "/v1/broadcasts", "{}", true, 0}, // refused or not, a write
	} {
		if got := serve(c.method, c.path, c.body, c.marked); c.status != 0 && got != c.status {
			t.Fatalf("%s %s: %d, want %d", c.method, c.path, got, c.status)
		}
	}
	got := calls(t, f.store)[before:]
	var rows []string
	for _, e := range got {
		if e.Actor != officialID {
			t.Errorf("a row of %s", e.Actor)
		}
		rows = append(rows, e.Route)
	}
	if want := []string{"GET /v1/me", "POST /v1/broadcasts"}; fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Errorf("audit rows %q, want %q (the unmarked read and the marked write)", rows, want)
	}
}
