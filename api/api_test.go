package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/loa-hub/loa/api"
	"github.com/loa-hub/loa/channels/sandbox"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/direct"
	"github.com/loa-hub/loa/producer/producertest"
)

// recorder records what is published (see producertest.Recorder).
type recorder struct{ producertest.Recorder }

func (r *recorder) count() int { return r.Len() }

type fixture struct {
	srv   *httptest.Server
	pub   *recorder
	store *sqlstore.DB
}

var now = time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	store := testenv.OpenStore(t, testenv.SQLiteURL(t))
	pub := &recorder{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := api.NewHandler(api.Deps{
		Store: store, Direct: direct.New(direct.DefaultConfig(), store, pub, log), Log: log,
		Outbox: sandbox.NewOutbox(10), DevAPIKey: "dev-key", MaxBodyBytes: 8 << 10,
		Now: func() time.Time { return now },
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, pub: pub, store: store}
}

func (f *fixture) do(t *testing.T, method, path, key, body string, headers ...string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("response is not JSON: %q", b)
		}
	}
	return resp, out
}

// TestOpenAPIMatchesRoutes fails when a route exists that the document
// lacks, or the document names a route that does not exist.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	f := newFixture(t)
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	resp, err := http.Get(f.srv.URL + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi %q, want 3.1.0", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	routed := map[string]bool{}
	store := testenv.OpenStore(t, testenv.SQLiteURL(t))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// Every optional route on: dev outbox, metrics.
	h := api.NewHandler(api.Deps{Store: store, Direct: direct.New(direct.DefaultConfig(), store, &recorder{}, log), Log: log, Outbox: sandbox.NewOutbox(1), DevAPIKey: "k",
		Metrics: http.NotFoundHandler()})
	err = chi.Walk(h.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routed[method+" "+strings.TrimSuffix(route, "/*")] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !routed["POST /v1/notifications"] || !routed["GET /v1/dev/outbox"] {
		t.Fatalf("walking the router found %v; the walk itself is broken", routed)
	}
	var missing, extra []string
	for r := range routed {
		if !documented[r] {
			missing = append(missing, r)
		}
	}
	for d := range documented {
		if !routed[d] {
			extra = append(extra, d)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("routes missing from openapi.json: %v", missing)
	}
	if len(extra) > 0 {
		t.Errorf("openapi.json documents routes that do not exist: %v", extra)
	}
}

func TestBadInputNamesTheFieldAndPublishesNothing(t *testing.T) {
	f := newFixture(t)
	long := strings.Repeat("a", 4001)
	cases := []struct {
		name, body string
		status     int
		field      string
		typ        string
	}{
		{"missing recipient", `{"body":"x","channels":["sms"]}`, 400, "to", "urn:loa:problem:invalid-field"},
		{"empty recipient", `{"to":{},"body":"x"}`, 400, "to", "urn:loa:problem:invalid-field"},
		{"two recipients", `{"to":{"phone":"0912345678","email":"a@b.vn"},"body":"x"}`, 400, "to", "urn:loa:problem:invalid-field"},
		{"bad phone", `{"to":{"phone":"0212345678"},"body":"x"}`, 400, "to.phone", "urn:loa:problem:invalid-field"},
		{"bad email", `{"to":{"email":"not-an-email"},"title":"t","body":"x"}`, 400, "to.email", "urn:loa:problem:invalid-field"},
		{"unknown account", `{"to":{"account_id":"nobody"},"title":"t","body":"x"}`, 400, "to.account_id", "urn:loa:problem:invalid-field"},
		{"unknown channel", `{"to":{"phone":"0912345678"},"body":"x","channels":["fax"]}`, 400, "channels[0]", "urn:loa:problem:invalid-field"},
		{"incompatible channel", `{"to":{"phone":"0912345678"},"body":"x","channels":["push"]}`, 400, "channels[0]", "urn:loa:problem:invalid-field"},
		{"malformed JSON", `{"to":{"phone":"0912345678"},"body":`, 400, "", "urn:loa:problem:malformed-json"},
		{"syntax error", `{"to" {}}`, 400, "", "urn:loa:problem:malformed-json"},
		{"trailing data", `{"to":{"phone":"0912345678"},"body":"x"} {}`, 400, "", "urn:loa:problem:malformed-json"},
		{"wrong type", `{"to":{"phone":912345678},"body":"x"}`, 400, "to.phone", "urn:loa:problem:invalid-field"},
		{"unknown field", `{"to":{"phone":"0912345678"},"body":"x","colour":"red"}`, 400, "colour", "urn:loa:problem:invalid-field"},
		{"missing body", `{"to":{"phone":"0912345678"}}`, 400, "body", "urn:loa:problem:invalid-field"},
		{"body over the limit", `{"to":{"phone":"0912345678"},"body":"` + long + `"}`, 400, "body", "urn:loa:problem:invalid-field"},
		{"title missing for push", `{"to":{"device_token":"tok"},"body":"x"}`, 400, "title", "urn:loa:problem:invalid-field"},
		{"bad topic", `{"to":{"topic":"mưa lớn"},"title":"t","body":"x"}`, 400, "to.topic", "urn:loa:problem:invalid-field"},
		{"topic by sms", `{"to":{"topic":"disaster"},"title":"t","body":"x","channels":["sms"]}`, 400, "channels[0]", "urn:loa:problem:invalid-field"},
		{"ttl in the past", `{"to":{"phone":"0912345678"},"body":"x","ttl_seconds":-1}`, 400, "ttl_seconds", "urn:loa:problem:invalid-field"},
		{"ttl zero", `{"to":{"phone":"0912345678"},"body":"x","ttl_seconds":0}`, 400, "ttl_seconds", "urn:loa:problem:invalid-field"},
		{"expires_at in the past", `{"to":{"phone":"0912345678"},"body":"x","expires_at":"2026-11-22T08:00:00Z"}`, 400, "expires_at", "urn:loa:problem:invalid-field"},
		{"reserved data key", `{"to":{"phone":"0912345678"},"body":"x","data":{"google.x":"1"}}`, 400, "data.google.x", "urn:loa:problem:invalid-field"},
		{"bad priority", `{"to":{"phone":"0912345678"},"body":"x","priority":"urgent"}`, 400, "priority", "urn:loa:problem:invalid-field"},
		{"request over the size limit", `{"to":{"phone":"0912345678"},"body":"` + strings.Repeat("a", 9000) + `"}`, 413, "", "urn:loa:problem:body-too-large"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, p := f.do(t, "POST", "/v1/notifications", "dev-key", c.body)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %v", resp.StatusCode, c.status, p)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("content type %q", ct)
			}
			if p["type"] != c.typ {
				t.Errorf("type %v, want %s", p["type"], c.typ)
			}
			if c.field != "" && p["field"] != c.field {
				t.Errorf("field %v, want %s (problem %v)", p["field"], c.field, p)
			}
			if p["detail"] == "" || p["status"] != float64(c.status) {
				t.Errorf("problem lacks detail or status: %v", p)
			}
		})
	}
	if n := f.pub.count(); n != 0 {
		t.Fatalf("%d events published for bad input", n)
	}
}

// TestTopicNotification: a notification to an FCM topic is one push to
// "/topics/<name>"; the "/topics/" prefix may be given or not. A topic
// reaches everyone subscribed to it — area-49 is the whole province's
// public — with no approval, so it needs the scope notify:topic besides
// notify:direct: the reporting system's key, which reminds officials of
// deadlines, cannot broadcast to the public (403 naming to.topic, nothing
// published).
func TestTopicNotification(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for id, scopes := range map[string][]string{"direct": {api.ScopeNotifyDirect}, "topic": {api.ScopeNotifyDirect, api.ScopeNotifyTopic}} {
		if err := f.store.CreateAPIKey(ctx, sqlstore.APIKey{ID: "k-" + id, Name: id, Hash: api.HashAPIKey(id + "-key"), Scopes: scopes, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	for _, topic := range []string{"area-49", "/topics/disaster"} {
		resp, p := f.do(t, "POST", "/v1/notifications", "direct-key", `{"to":{"topic":"`+topic+`"},"title":"Bão","body":"Sơ tán ngay"}`)
		if resp.StatusCode != 403 || p["field"] != "to.topic" {
			t.Errorf("%s by a notify:direct key: %d %v, want 403 naming to.topic", topic, resp.StatusCode, p)
		}
	}
	if n := f.pub.count(); n != 0 {
		t.Fatalf("%d published by a key without notify:topic", n)
	}
	if resp, out := f.do(t, "POST", "/v1/notifications", "direct-key", `{"to":{"phone":"0912345678"},"body":"Hạn nộp báo cáo"}`); resp.StatusCode != 202 {
		t.Errorf("the notify:direct key to a phone: %d %v", resp.StatusCode, out)
	}
	for _, topic := range []string{"area-20497", "/topics/disaster"} {
		resp, out := f.do(t, "POST", "/v1/notifications", "topic-key", `{"to":{"topic":"`+topic+`"},"title":"Thông báo","body":"Nội dung"}`)
		if resp.StatusCode != 202 {
			t.Fatalf("%s: %d %v", topic, resp.StatusCode, out)
		}
	}
	envs := f.pub.Envelopes()[1:]
	if len(envs) != 2 {
		t.Fatalf("%d published", len(envs))
	}
	for i, want := range []string{"area-20497", "disaster"} {
		var d producer.Direct
		if err := json.Unmarshal(envs[i].Payload, &d); err != nil {
			t.Fatal(err)
		}
		if d.To != (producer.Recipient{Type: producer.ToTopic, Value: want}) || !slices.Equal(d.Channels, []string{"push"}) {
			t.Errorf("published to %+v on %v", d.To, d.Channels)
		}
	}
}

func TestAuth(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	key, hash, err := api.NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.CreateAPIKey(ctx, sqlstore.APIKey{ID: "k-ops", Name: "ops only", Hash: hash, Scopes: []string{api.ScopeMFAVerify}, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	good := `{"to":{"phone":"0912345678"},"body":"x"}`
	for _, c := range []struct {
		name, key string
		want      int
	}{
		{"no key", "", 401},
		{"unknown key", "loa_nope", 401},
		{"key without the scope", key, 403},
		{"dev key", "dev-key", 202},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, p := f.do(t, "POST", "/v1/notifications", c.key, good)
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d: %v", resp.StatusCode, c.want, p)
			}
			if c.want == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	if resp, _ := f.do(t, "GET", "/v1/dev/outbox", "", ""); resp.StatusCode != 401 {
		t.Errorf("outbox without a key: %d", resp.StatusCode)
	}
}

func TestIdempotencyKey(t *testing.T) {
	f := newFixture(t)
	body := `{"to":{"phone":"0912345678"},"body":"x","idempotency_key":"k-1"}`
	r1, a := f.do(t, "POST", "/v1/notifications", "dev-key", body)
	r2, b := f.do(t, "POST", "/v1/notifications", "dev-key", body)
	if r1.StatusCode != 202 || r2.StatusCode != 202 || a["id"] != b["id"] {
		t.Fatalf("same key: %d %v, %d %v", r1.StatusCode, a, r2.StatusCode, b)
	}
	if r2.Header.Get("Idempotent-Replayed") != "true" {
		t.Error("replay not flagged")
	}
	if f.pub.count() != 1 {
		t.Errorf("published %d times", f.pub.count())
	}
	// Same key, different request: refused.
	r3, c := f.do(t, "POST", "/v1/notifications", "dev-key", `{"to":{"phone":"0912345678"},"body":"other","idempotency_key":"k-1"}`)
	if r3.StatusCode != 409 || c["field"] != "idempotency_key" {
		t.Errorf("reused key: %d %v", r3.StatusCode, c)
	}
	// The header works as well, and agrees with the body.
	r4, d := f.do(t, "POST", "/v1/notifications", "dev-key", `{"to":{"phone":"0912345678"},"body":"x"}`, "Idempotency-Key", "k-1")
	if r4.StatusCode != 202 || d["id"] != a["id"] {
		t.Errorf("header key: %d %v", r4.StatusCode, d)
	}
}

func TestPublishFailureKeepsTheNotification(t *testing.T) {
	f := newFixture(t)
	f.pub.Fail(true)
	body := `{"to":{"phone":"0912345678"},"body":"x","idempotency_key":"k-fail"}`
	resp, p := f.do(t, "POST", "/v1/notifications", "dev-key", body)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("publish failure: %d %v", resp.StatusCode, p)
	}
	f.pub.Fail(false)
	resp, p = f.do(t, "POST", "/v1/notifications", "dev-key", body)
	if resp.StatusCode != 202 || f.pub.count() != 1 {
		t.Fatalf("retry after failure: %d %v, published %d", resp.StatusCode, p, f.pub.count())
	}
	un, err := f.store.Unpublished(context.Background(), now.Add(time.Hour), 10)
	if err != nil || len(un) != 0 {
		t.Errorf("still unpublished after the retry: %v %v", un, err)
	}
}

func TestStatusOfUnknownAndForeignNotification(t *testing.T) {
	f := newFixture(t)
	if resp, p := f.do(t, "GET", "/v1/notifications/nope", "dev-key", ""); resp.StatusCode != 404 || p["type"] != "urn:loa:problem:not-found" {
		t.Errorf("unknown: %d %v", resp.StatusCode, p)
	}
	_, a := f.do(t, "POST", "/v1/notifications", "dev-key", `{"to":{"phone":"0912345678"},"body":"x"}`)
	key, hash, _ := api.NewAPIKey()
	f.store.CreateAPIKey(context.Background(), sqlstore.APIKey{ID: "other", Name: "other", Hash: hash, Scopes: []string{api.ScopeNotifyDirect}, CreatedAt: now})
	if resp, _ := f.do(t, "GET", "/v1/notifications/"+a["id"].(string), key, ""); resp.StatusCode != 404 {
		t.Errorf("another client's notification: %d, want 404", resp.StatusCode)
	}
	resp, v := f.do(t, "GET", "/v1/notifications/"+a["id"].(string), "dev-key", "")
	if resp.StatusCode != 200 || v["status"] != "queued" {
		t.Errorf("own notification before dispatch: %d %v", resp.StatusCode, v)
	}
}
