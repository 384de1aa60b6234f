package api_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-hub/loa/api"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/producer/direct"
)

// newIncidentFixture serves the API on SQLite or the real PostgreSQL,
// with a key holding only the ops scope ("ops-key") and one holding every
// other scope ("other-key").
func newIncidentFixture(t *testing.T, backend string) *fixture {
	t.Helper()
	dbURL := testenv.SQLiteURL(t)
	if backend == "postgres" {
		dbURL = testenv.PostgresURL(t)
	}
	store := testenv.OpenStore(t, dbURL)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := api.NewHandler(api.Deps{Store: store, Direct: direct.New(direct.DefaultConfig(), store, &recorder{}, log), Log: log, DevAPIKey: "dev-key",
		Now: func() time.Time { return now }})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	var others []string
	for _, s := range api.KnownScopes {
		if s != api.ScopeOps {
			others = append(others, s)
		}
	}
	ctx := context.Background()
	for id, scopes := range map[string][]string{"ops": {api.ScopeOps}, "other": others} {
		if err := store.CreateAPIKey(ctx, sqlstore.APIKey{ID: "k-" + id, Name: id, Hash: api.HashAPIKey(id + "-key"), Scopes: scopes, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	return &fixture{srv: srv, store: store}
}

// TestIncidentLog: operators open an incident, note what they find and
// resolve it once; nothing is edited, bad input is named, and only
// operators read or write the log.
func TestIncidentLog(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			f := newIncidentFixture(t, backend)
			// Who: a key without ops is refused before its body is read.
			if resp, p := f.do(t, "POST", "/v1/ops/incidents", "other-key", `{`); resp.StatusCode != 403 {
				t.Errorf("a key without ops: %d %v", resp.StatusCode, p)
			}
			if resp, _ := f.do(t, "GET", "/v1/ops/incidents", "", ""); resp.StatusCode != 401 {
				t.Errorf("anonymous list: %d", resp.StatusCode)
			}
			// Bad input is named, every field at once.
			resp, p := f.do(t, "POST", "/v1/ops/incidents", "ops-key",
				`{"title":"","severity":"awful","components":["FCM ok","sms"],"started_at":"yesterday","description":"`+strings.Repeat("x", 4001)+`"}`)
			if resp.StatusCode != 400 || !strings.Contains(fmt.Sprint(p["errors"]), "components[0]") {
				t.Fatalf("bad incident: %d %v", resp.StatusCode, p)
			}
			for _, field := range []string{"title", "severity", "components[0]", "started_at", "description"} {
				if !strings.Contains(fmt.Sprint(p["errors"]), "field:"+field+"]") {
					t.Errorf("the problem does not name %s: %v", field, p["errors"])
				}
			}
			if resp, p := f.do(t, "POST", "/v1/ops/incidents", "ops-key", `{"title":"FCM","severity":"minor","started_at":"`+now.Add(time.Hour).Format(time.RFC3339)+`"}`); resp.StatusCode != 400 || p["field"] != "started_at" {
				t.Errorf("a start in the future: %d %v", resp.StatusCode, p)
			}
			if resp, p := f.do(t, "POST", "/v1/ops/incidents", "ops-key", `{"title":"a\nb","severity":"minor"}`); resp.StatusCode != 400 || p["field"] != "title" {
				t.Errorf("a two-line title: %d %v", resp.StatusCode, p)
			}

			// Open, note, resolve.
			started := now.Add(-20 * time.Minute)
			resp, in := f.do(t, "POST", "/v1/ops/incidents", "ops-key", `{"title":"FCM trả lỗi 503","severity":"major","components":["fcm","FCM","sms:viettel"],`+
				`"started_at":"`+started.Format(time.RFC3339)+`","description":"Cầu dao FCM mở lúc 08:40."}`)
			if resp.StatusCode != 201 || in["status"] != "open" || fmt.Sprint(in["components"]) != "[fcm sms:viettel]" || in["opened_by"] != "apikey:k-ops" {
				t.Fatalf("open: %d %v", resp.StatusCode, in)
			}
			id := in["id"].(string)
			if resp.Header.Get("Location") != "/v1/ops/incidents/"+id {
				t.Errorf("Location: %q", resp.Header.Get("Location"))
			}
			if resp, p := f.do(t, "POST", "/v1/ops/incidents/"+id+"/notes", "ops-key", `{"body":"  "}`); resp.StatusCode != 400 || p["field"] != "body" {
				t.Errorf("empty note: %d %v", resp.StatusCode, p)
			}
			if resp, p := f.do(t, "POST", "/v1/ops/incidents/nope/notes", "ops-key", `{"body":"x"}`); resp.StatusCode != 404 {
				t.Errorf("note on nothing: %d %v", resp.StatusCode, p)
			}
			// Two operators note at once: both kept, numbered one after the other.
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Go(func() {
					if resp, p := f.do(t, "POST", "/v1/ops/incidents/"+id+"/notes", "ops-key", fmt.Sprintf(`{"body":"ghi chú %d"}`, i)); resp.StatusCode != 201 {
						t.Errorf("note %d: %d %v", i, resp.StatusCode, p)
					}
				})
			}
			wg.Wait()
			if resp, p := f.do(t, "POST", "/v1/ops/incidents/"+id+"/resolve", "ops-key", `{"cause":"x","resolution":"y","resolved_at":"`+started.Add(-time.Minute).Format(time.RFC3339)+`"}`); resp.StatusCode != 400 || p["field"] != "resolved_at" {
				t.Errorf("resolved before it started: %d %v", resp.StatusCode, p)
			}
			if resp, p := f.do(t, "POST", "/v1/ops/incidents/"+id+"/resolve", "ops-key", `{"resolution":"y"}`); resp.StatusCode != 400 || p["field"] != "cause" {
				t.Errorf("resolved without a cause: %d %v", resp.StatusCode, p)
			}
			// Two resolutions race: one wins, the other is 409.
			codes := make([]int, 2)
			for i := range codes {
				wg.Go(func() {
					resp, _ := f.do(t, "POST", "/v1/ops/incidents/"+id+"/resolve", "dev-key", fmt.Sprintf(`{"cause":"Hết hạn chứng chỉ %d","resolution":"Gia hạn chứng chỉ"}`, i))
					codes[i] = resp.StatusCode
				})
			}
			wg.Wait()
			if !(codes[0] == 200 && codes[1] == 409 || codes[0] == 409 && codes[1] == 200) {
				t.Errorf("two resolutions: %v, want one 200 and one 409", codes)
			}
			if resp, p := f.do(t, "POST", "/v1/ops/incidents/"+id+"/notes", "ops-key", `{"body":"Rút kinh nghiệm: theo dõi hạn chứng chỉ."}`); resp.StatusCode != 201 || p["seq"] != float64(11) {
				t.Errorf("a note after the resolution: %d %v", resp.StatusCode, p)
			}
			resp, got := f.do(t, "GET", "/v1/ops/incidents/"+id, "ops-key", "")
			if resp.StatusCode != 200 || got["status"] != "resolved" || got["duration_seconds"] != float64(20*60) || got["resolved_by"] != "apikey:dev" {
				t.Fatalf("get: %d %v", resp.StatusCode, got)
			}
			entries := got["entries"].([]any)
			if len(entries) != 11 {
				t.Fatalf("%d entries, want opened + 8 notes + resolved + 1 note: %v", len(entries), entries)
			}
			kinds := ""
			for i, e := range entries {
				e := e.(map[string]any)
				if e["seq"] != float64(i+1) {
					t.Errorf("entry %d has seq %v", i, e["seq"])
				}
				kinds += e["kind"].(string)[:1]
			}
			if kinds != "onnnnnnnnrn" {
				t.Errorf("kinds %q", kinds)
			}
			if entries[0].(map[string]any)["body"] != "Cầu dao FCM mở lúc 08:40." {
				t.Errorf("opened: %v", entries[0])
			}

			// The list: open and resolved apart, pages by cursor.
			for i := range 3 {
				if resp, p := f.do(t, "POST", "/v1/ops/incidents", "ops-key", fmt.Sprintf(`{"title":"Kafka chậm %d","severity":"minor"}`, i)); resp.StatusCode != 201 {
					t.Fatalf("open %d: %d %v", i, resp.StatusCode, p)
				}
			}
			if resp, l := f.do(t, "GET", "/v1/ops/incidents?status=open", "ops-key", ""); resp.StatusCode != 200 || len(l["items"].([]any)) != 3 {
				t.Errorf("open ones: %d %v", resp.StatusCode, l)
			}
			if resp, l := f.do(t, "GET", "/v1/ops/incidents?status=resolved", "ops-key", ""); resp.StatusCode != 200 || len(l["items"].([]any)) != 1 {
				t.Errorf("resolved ones: %d %v", resp.StatusCode, l)
			}
			seen := map[string]bool{}
			cursor := ""
			for pages := 0; ; pages++ {
				if pages > 4 {
					t.Fatal("the pages do not end")
				}
				resp, l := f.do(t, "GET", "/v1/ops/incidents?limit=3"+cursor, "ops-key", "")
				if resp.StatusCode != 200 {
					t.Fatalf("page: %d %v", resp.StatusCode, l)
				}
				for _, it := range l["items"].([]any) {
					seen[it.(map[string]any)["id"].(string)] = true
					if it.(map[string]any)["entries"] != nil {
						t.Errorf("the list carries timelines")
					}
				}
				next, _ := l["next"].(string)
				if next == "" {
					break
				}
				cursor = "&before=" + next
			}
			if len(seen) != 4 {
				t.Errorf("the pages held %d incidents, want 4", len(seen))
			}
			if resp, p := f.do(t, "GET", "/v1/ops/incidents?status=closed&limit=0", "ops-key", ""); resp.StatusCode != 400 || !strings.Contains(fmt.Sprint(p["errors"]), "limit") {
				t.Errorf("bad list query: %d %v", resp.StatusCode, p)
			}
		})
	}
}
