package api_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/loa-hub/loa/accounts"
	accredis "github.com/loa-hub/loa/accounts/redis"
	"github.com/loa-hub/loa/api"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/otp"
	"github.com/loa-hub/loa/producer/broadcast"
	"github.com/loa-hub/loa/producer/direct"
)

type bcFixture struct {
	*accFixture
	plans *recorder // what the broadcast service published
}

// newBroadcastFixture is newAccountsFixture with a broadcast service, a
// demo area tree and 40 devices in it.
func newBroadcastFixture(t *testing.T) *bcFixture {
	t.Helper()
	ctx := context.Background()
	store := testenv.OpenStore(t, testenv.SQLiteURL(t))
	mr := testenv.Miniredis(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	clk := &testClock{t: now}
	smsCfg := otp.DefaultSMSConfig()
	smsCfg.Secret, smsCfg.Now = []byte(strings.Repeat("s", 32)), clk.Now
	codes, err := otp.NewSMSCodes(rdb, smsCfg)
	if err != nil {
		t.Fatal(err)
	}
	sealer, _ := otp.NewSealer([]byte(strings.Repeat("k", 32)))
	cfg := accounts.DefaultConfig()
	cfg.RecoveryKey, cfg.Now, cfg.ApprovalUnit = []byte(strings.Repeat("r", 32)), clk.Now, "sotttt"
	rs := accredis.New(rdb, "")
	pub, plans := &recorder{}, &recorder{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := accounts.New(cfg, accounts.Deps{Store: store, Sessions: rs, Challenges: rs, Codes: codes, Throttle: rs,
		TOTP: &otp.TOTPVerifier{Store: store, Redis: rdb, Now: clk.Now}, Sealer: sealer, Publisher: pub,
		Hasher: &accounts.Argon2Hasher{Params: accounts.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLength: 16, KeyLength: 32}}, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	bc, err := broadcast.New(broadcast.DefaultConfig(), broadcast.Deps{Store: store, Publisher: plans,
		Roles: svc, Log: log, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.UpsertAreas(ctx, []accounts.Area{{Code: "49", Name: "Quảng Nam"}, {Code: "20497", Name: "Minh An", Parent: "49"}}); err != nil {
		t.Fatal(err)
	}
	if err := store.SeedAudience(ctx, "bc", 40, 50000, "smart", "20497", now); err != nil {
		t.Fatal(err)
	}
	h := api.NewHandler(api.Deps{Store: store, Direct: direct.New(direct.DefaultConfig(), store, pub, log), Log: log, DevAPIKey: "dev-key",
		MaxBodyBytes: 8 << 10, Now: clk.Now, Accounts: svc, Broadcasts: bc})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &bcFixture{accFixture: &accFixture{fixture: &fixture{srv: srv, pub: pub, store: store}, clock: clk, svc: svc}, plans: plans}
}

const bcBody = `{"title":"Cảnh báo lũ","body":"Hồ Phú Ninh xả lũ lúc 14 giờ","topic":"disaster","audience":{"areas":["49"]},
	"channels":["push","sms"],"request_document":{"number":"123/SNN-TL","date":"2026-11-20"}}`

// TestBroadcastsOverHTTP: the flow over HTTP, with the four-eyes and
// state problems, the audience size and SMS estimate, and the history.
func TestBroadcastsOverHTTP(t *testing.T) {
	f := newBroadcastFixture(t)
	_, sub := f.official(t, "can.bo.snn", "0911000001", "snn", "agency_submitter")
	_, both := f.official(t, "hai.vai", "0911000002", "sotttt", "agency_submitter", "broadcast_approver")
	_, appr := f.official(t, "duyet.tttt", "0911000003", "sotttt", "broadcast_approver")

	if resp, p := f.do(t, "POST", "/v1/broadcasts", "dev-key", bcBody); resp.StatusCode != 403 {
		t.Errorf("an API key drafts: %d %v", resp.StatusCode, p)
	}
	if resp, p := f.do(t, "POST", "/v1/broadcasts", appr, bcBody); resp.StatusCode != 403 || p["type"] != "urn:loa:problem:forbidden" {
		t.Errorf("an approver drafts: %d %v", resp.StatusCode, p)
	}
	resp, b := f.do(t, "POST", "/v1/broadcasts", both, bcBody)
	if resp.StatusCode != 201 || b["status"] != "draft" || resp.Header.Get("Location") != "/v1/broadcasts/"+b["id"].(string) {
		t.Fatalf("draft: %d %v", resp.StatusCode, b)
	}
	id := b["id"].(string)
	if resp, p := f.do(t, "POST", "/v1/broadcasts/"+id+"/approve", appr, ""); resp.StatusCode != 409 || p["type"] != "urn:loa:problem:broadcast-state" {
		t.Errorf("approve a draft: %d %v", resp.StatusCode, p)
	}
	if resp, p := f.do(t, "POST", "/v1/broadcasts/"+id+"/submit", sub, ""); resp.StatusCode != 403 {
		t.Errorf("another submitter submits: %d %v", resp.StatusCode, p)
	}
	if resp, p := f.do(t, "POST", "/v1/broadcasts/"+id+"/submit", both, ""); resp.StatusCode != 200 || p["status"] != "submitted" {
		t.Fatalf("submit: %d %v", resp.StatusCode, p)
	}
	if resp, p := f.do(t, "POST", "/v1/broadcasts/"+id+"/approve", both, ""); resp.StatusCode != 403 || p["type"] != "urn:loa:problem:four-eyes" {
		t.Errorf("own approval: %d %v", resp.StatusCode, p)
	}
	if resp, p := f.do(t, "POST", "/v1/broadcasts/"+id+"/approve", sub, ""); resp.StatusCode != 403 || p["type"] != "urn:loa:problem:forbidden" {
		t.Errorf("a submitter approves: %d %v", resp.StatusCode, p)
	}
	if f.plans.count() != 0 {
		t.Fatal("published before approval")
	}
	resp, g := f.do(t, "GET", "/v1/broadcasts/"+id, appr, "")
	if resp.StatusCode != 200 {
		t.Fatalf("get: %d %v", resp.StatusCode, g)
	}
	size, _ := g["audience_size"].(map[string]any)
	sms, _ := g["sms"].(map[string]any)
	if size["devices"] != 40.0 || size["phones"] != 40.0 || sms["encoding"] != "UCS-2" || sms["segments_per_message"] != 1.0 || sms["total_segments"] != 40.0 {
		t.Errorf("estimate: %v %v", size, sms)
	}
	if st, _ := g["stats"].(map[string]any); st == nil || st["sent"] != 0.0 {
		t.Errorf("stats: %v", g["stats"])
	}
	if resp, p := f.do(t, "POST", "/v1/broadcasts/"+id+"/approve", appr, ""); resp.StatusCode != 200 || p["status"] != "sending" {
		t.Fatalf("approve: %d %v", resp.StatusCode, p)
	}
	if f.plans.count() != 1 {
		t.Errorf("%d plans published", f.plans.count())
	}
	if resp, p := f.do(t, "POST", "/v1/broadcasts/"+id+"/cancel", appr, ""); resp.StatusCode != 409 {
		t.Errorf("cancel while sending: %d %v", resp.StatusCode, p)
	}
	resp, h := f.do(t, "GET", "/v1/broadcasts/"+id+"/history", both, "")
	if items, _ := h["items"].([]any); resp.StatusCode != 200 || len(items) != 4 {
		t.Errorf("history: %d %v", resp.StatusCode, h)
	}
	resp, l := f.do(t, "GET", "/v1/broadcasts?status=sending", appr, "")
	if items, _ := l["items"].([]any); resp.StatusCode != 200 || len(items) != 1 {
		t.Errorf("list: %d %v", resp.StatusCode, l)
	}
	// A submitter of another agency (snn) reads none of it: not the
	// broadcast, its figures, its history, nor its place in the list.
	for _, path := range []string{"/v1/broadcasts/" + id, "/v1/broadcasts/" + id + "?rate_since=0", "/v1/broadcasts/" + id + "/history"} {
		if resp, p := f.do(t, "GET", path, sub, ""); resp.StatusCode != 404 || p["type"] != "urn:loa:problem:not-found" || p["stats"] != nil {
			t.Errorf("%s by a submitter of another agency: %d %v", path, resp.StatusCode, p)
		}
	}
	if resp, l := f.do(t, "GET", "/v1/broadcasts", sub, ""); resp.StatusCode != 200 || len(l["items"].([]any)) != 0 {
		t.Errorf("list by a submitter of another agency: %d %v", resp.StatusCode, l)
	}
	if resp, _ := f.do(t, "GET", "/v1/broadcasts/bc-nope", sub, ""); resp.StatusCode != 404 {
		t.Errorf("unknown: %d", resp.StatusCode)
	}
	if resp, _ := f.do(t, "GET", "/v1/broadcasts", "", ""); resp.StatusCode != 401 {
		t.Errorf("anonymous: %d", resp.StatusCode)
	}
}

// TestBroadcastsBadInputNamesTheField: every broadcast endpoint that takes
// input answers bad input with 400 naming the field, and publishes nothing.
func TestBroadcastsBadInputNamesTheField(t *testing.T) {
	f := newBroadcastFixture(t)
	_, sub := f.official(t, "can.bo.snn", "0911000001", "snn", "agency_submitter")
	_, appr := f.official(t, "duyet.tttt", "0911000003", "sotttt", "broadcast_approver")
	_, b := f.do(t, "POST", "/v1/broadcasts", sub, bcBody)
	id := b["id"].(string)
	f.do(t, "POST", "/v1/broadcasts/"+id+"/submit", sub, "")
	replace := func(old, new string) string { return strings.Replace(bcBody, old, new, 1) }
	cases := []struct {
		method, path, token, body, field string
	}{
		{"POST", "/v1/broadcasts", sub, replace(`"title":"Cảnh báo lũ",`, ``), "title"},
		{"POST", "/v1/broadcasts", sub, replace(`"disaster"`, `"lottery"`), "topic"},
		{"POST", "/v1/broadcasts", sub, replace(`["49"]`, `["49","00000"]`), "audience.areas[1]"},
		{"POST", "/v1/broadcasts", sub, replace(`{"areas":["49"]}`, `{}`), "audience"},
		{"POST", "/v1/broadcasts", sub, replace(`{"areas":["49"]}`, `"everyone"`), "audience"},
		{"POST", "/v1/broadcasts", sub, replace(`"push","sms"`, `"pigeon"`), "channels[0]"},
		{"POST", "/v1/broadcasts", sub, replace(`"channels"`, `"send_at":"tomorrow","channels"`), "send_at"},
		{"POST", "/v1/broadcasts", sub, replace(`"channels"`, `"send_at":"2020-01-01T00:00:00Z","channels"`), "send_at"},
		{"POST", "/v1/broadcasts", sub, replace(`"123/SNN-TL"`, `""`), "request_document.number"},
		{"POST", "/v1/broadcasts", sub, replace(`"2026-11-20"`, `"20/11/2026"`), "request_document.date"},
		{"POST", "/v1/broadcasts", sub, replace(`"topic"`, `"colour":"red","topic"`), "colour"},
		{"GET", "/v1/broadcasts?status=shipped", sub, "", "status"},
		{"GET", "/v1/broadcasts?limit=0", sub, "", "limit"},
		{"POST", "/v1/broadcasts/" + id + "/reject", appr, `{}`, "reason"},
		{"POST", "/v1/broadcasts/" + id + "/reject", appr, `{"reason":7}`, "reason"},
		{"POST", "/v1/broadcasts/" + id + "/cancel", appr, `{"reason":true}`, "reason"},
	}
	for _, c := range cases {
		resp, p := f.do(t, c.method, c.path, c.token, c.body)
		if resp.StatusCode != 400 || p["field"] != c.field || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
			t.Errorf("%s %s %s: %d %v, want 400 naming %s", c.method, c.path, c.body, resp.StatusCode, p, c.field)
		}
	}
	if f.plans.count() != 0 {
		t.Errorf("%d plans published", f.plans.count())
	}
}

// TestDecidedBroadcastKeepsItsAudienceSize: the audience size of a
// broadcast being sent is the figure its approver saw, stored at the
// approval, not a count made again at each read: devices registered in
// the area after the approval, a minute and more later, leave it as it
// was, while a submitted broadcast's size is counted again once its
// count is a minute old.
func TestDecidedBroadcastKeepsItsAudienceSize(t *testing.T) {
	ctx := context.Background()
	f := newBroadcastFixture(t)
	_, sub := f.official(t, "can.bo.snn", "0911000001", "snn", "agency_submitter")
	_, appr := f.official(t, "duyet.tttt", "0911000003", "sotttt", "broadcast_approver")
	size := func(id string) map[string]any {
		t.Helper()
		resp, g := f.do(t, "GET", "/v1/broadcasts/"+id, appr, "")
		if resp.StatusCode != 200 {
			t.Fatalf("get: %d %v", resp.StatusCode, g)
		}
		s, _ := g["audience_size"].(map[string]any)
		return s
	}
	_, b := f.do(t, "POST", "/v1/broadcasts", sub, bcBody)
	id := b["id"].(string)
	f.do(t, "POST", "/v1/broadcasts/"+id+"/submit", sub, "")
	seen := size(id)
	if seen["devices"] != 40.0 || seen["counted_at"] == "" {
		t.Fatalf("submitted: %v, want 40 devices and when they were counted", seen)
	}
	if err := f.store.SeedAudience(ctx, "late", 5, 60000, "smart", "20497", now); err != nil {
		t.Fatal(err)
	}
	if s := size(id); s["devices"] != 40.0 {
		t.Errorf("within the minute: %v, want the count of 40 reused", s)
	}
	f.clock.Advance(61 * time.Second)
	seen = size(id)
	if seen["devices"] != 45.0 {
		t.Fatalf("submitted, a minute later: %v, want 45 counted again", seen)
	}
	if resp, p := f.do(t, "POST", "/v1/broadcasts/"+id+"/approve", appr, ""); resp.StatusCode != 200 {
		t.Fatalf("approve: %d %v", resp.StatusCode, p)
	}
	if err := f.store.SeedAudience(ctx, "later", 7, 70000, "smart", "20497", now); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		f.clock.Advance(10 * time.Minute)
		if s := size(id); s["devices"] != 45.0 || s["counted_at"] != seen["counted_at"] {
			t.Fatalf("sending: %v, want the approver's figure %v", s, seen)
		}
	}
}
