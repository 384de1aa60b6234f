package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/loa-hub/loa/api"
	"github.com/loa-hub/loa/dispatcher"
	"github.com/loa-hub/loa/internal/kafkaadmin"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/direct"
	"github.com/loa-hub/loa/producer/kafkapub"
)

type opsFixture struct {
	*fixture
	names   topics.Names
	brokers []string
}

// newOpsFixture serves the API with a real dead-letter replayer: SQLite
// and the in-process broker, or the real PostgreSQL and Kafka.
func newOpsFixture(t *testing.T, backend string) *opsFixture {
	t.Helper()
	dbURL, brokers := testenv.SQLiteURL(t), testenv.Kfake(t)
	if backend == "real" {
		b := testenv.RealBackend(t)
		dbURL, brokers = b.DatabaseURL, b.KafkaBrokers
	}
	store := testenv.OpenStore(t, dbURL)
	f := &opsFixture{names: topics.Names{Prefix: "ops" + testenv.ID() + "."}, brokers: strings.Split(brokers, ",")}
	testenv.DeleteTopicsAtEnd(t, brokers, f.names.Prefix)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := kafkaadmin.Ensure(ctx, f.brokers, f.names, 1); err != nil {
		t.Fatal(err)
	}
	pub, err := kafkapub.NewPublisher(kafkapub.Config{Brokers: f.brokers, Names: f.names})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := api.NewHandler(api.Deps{
		Store: store, Direct: direct.New(direct.DefaultConfig(), store, &recorder{}, log), Log: log, DevAPIKey: "dev-key",
		DeadLetters: dispatcher.NewDeadLetters(store, pub), Now: func() time.Time { return now },
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	f.fixture = &fixture{srv: srv, store: store}
	return f
}

// seedDeadLetters stores n replayable dead letters one second apart (the
// last two at the same instant, to exercise the cursor's tie-break), and
// one of undecodable bytes, the newest.
func seedDeadLetters(t *testing.T, store *sqlstore.DB, n int) (ids []string, raw string) {
	t.Helper()
	ctx := context.Background()
	base := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	for i := range n {
		at := base.Add(time.Duration(min(i, n-2)) * time.Second)
		env, err := producer.NewEnvelope(fmt.Sprintf("ev-%02d", i), producer.KindDirect, topics.LaneDirect, "84912345678", base, base.Add(24*time.Hour), "",
			producer.Direct{NotificationID: fmt.Sprintf("ev-%02d", i), To: producer.Recipient{Type: producer.ToPhone, Value: "84912345678"},
				Body: "Nội dung", Channels: []string{"sms"}, Priority: "normal"})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(env)
		id := fmt.Sprintf("loa.direct-0-%d-sms-%08x", i, i)
		err = store.RecordDeadLetter(ctx, producer.DeadLetterRecord{ID: id, Reason: "sms: gateway answered 503 after the last retry tier",
			Topic: "loa.direct", Offset: int64(i), Key: "84912345678", Envelope: string(b), Channel: "sms", Recipient: "84912345678",
			Provider: "esms", Attempts: 4, History: `[{"at":"2026-11-22T07:59:00Z","provider":"esms","class":"transient","reason":"503"}]`, At: at})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	raw = "loa.direct-0-999"
	err := store.RecordDeadLetter(ctx, producer.DeadLetterRecord{ID: raw, Reason: "dispatcher: undecodable envelope", Topic: "loa.direct",
		Offset: 999, Raw: base64.StdEncoding.EncodeToString([]byte{0xff, 0x00}), History: "null", At: base.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return ids, raw
}

func TestOpsDeadLetters(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newOpsFixture(t, b.Name)
			ids, raw := seedDeadLetters(t, f.store, 5)

			// Newest first, a page at a time, every item once.
			var seen []string
			cursor := ""
			for page := 0; ; page++ {
				path := "/v1/ops/deadletters?limit=2"
				if cursor != "" {
					path += "&before=" + cursor
				}
				resp, out := f.do(t, "GET", path, "dev-key", "")
				if resp.StatusCode != 200 {
					t.Fatalf("page %d: %d %v", page, resp.StatusCode, out)
				}
				for _, it := range out["items"].([]any) {
					item := it.(map[string]any)
					seen = append(seen, item["id"].(string))
					if item["id"] == raw {
						if item["replayable"] != false {
							t.Errorf("undecodable dead letter listed as replayable: %v", item)
						}
						if h, ok := item["history"].([]any); !ok || len(h) != 0 {
							t.Errorf("history of a dead letter without one: %v", item["history"])
						}
						continue
					}
					if item["recipient"] != "84912***678" {
						t.Errorf("recipient %v, want it masked", item["recipient"])
					}
					if item["replayable"] != true || item["provider"] != "esms" || item["channel"] != "sms" || item["attempts"] != float64(4) || item["replayed_at"] != nil {
						t.Errorf("item %v", item)
					}
					if h, ok := item["history"].([]any); !ok || len(h) != 1 || h[0].(map[string]any)["class"] != "transient" {
						t.Errorf("history %v, want the parsed list", item["history"])
					}
				}
				next, _ := out["next"].(string)
				if next == "" {
					break
				}
				cursor = next
				if page > 5 {
					t.Fatal("the cursor does not advance")
				}
			}
			want := []string{raw, ids[4], ids[3], ids[2], ids[1], ids[0]}
			if fmt.Sprint(seen) != fmt.Sprint(want) {
				t.Errorf("listed %v, want %v", seen, want)
			}

			for _, c := range []struct{ query, field string }{{"limit=0", "limit"}, {"limit=501", "limit"}, {"limit=x", "limit"}, {"before=!!!", "before"}, {"before=bm90LWEtY3Vyc29y", "before"}} {
				resp, out := f.do(t, "GET", "/v1/ops/deadletters?"+c.query, "dev-key", "")
				if resp.StatusCode != 400 || out["field"] != c.field {
					t.Errorf("%s: %d %v", c.query, resp.StatusCode, out)
				}
			}

			// One, in full.
			resp, one := f.do(t, "GET", "/v1/ops/deadletters/"+ids[1], "dev-key", "")
			if resp.StatusCode != 200 || one["recipient"] != "84912345678" || one["event_id"] != "ev-01" || one["lane"] != "direct" || one["kind"] != producer.KindDirect {
				t.Errorf("GET one: %d %v", resp.StatusCode, one)
			}
			if resp, _ := f.do(t, "GET", "/v1/ops/deadletters/nope", "dev-key", ""); resp.StatusCode != 404 {
				t.Errorf("GET unknown: %d", resp.StatusCode)
			}

			// Replay: 202 once, then 409.
			resp, out := f.do(t, "POST", "/v1/ops/deadletters/"+ids[1]+"/replay", "dev-key", "")
			if resp.StatusCode != 202 || out["id"] != ids[1] || out["event_id"] != "ev-01" || out["lane"] != "direct" {
				t.Fatalf("replay: %d %v", resp.StatusCode, out)
			}
			resp, out = f.do(t, "POST", "/v1/ops/deadletters/"+ids[1]+"/replay", "dev-key", "")
			if resp.StatusCode != 409 || out["type"] != "urn:loa:problem:already-replayed" {
				t.Errorf("second replay: %d %v", resp.StatusCode, out)
			}
			resp, out = f.do(t, "POST", "/v1/ops/deadletters/"+raw+"/replay", "dev-key", "")
			if resp.StatusCode != 409 || out["type"] != "urn:loa:problem:not-replayable" {
				t.Errorf("replay of undecodable bytes: %d %v", resp.StatusCode, out)
			}
			if resp, out := f.do(t, "POST", "/v1/ops/deadletters/nope/replay", "dev-key", ""); resp.StatusCode != 404 || out["type"] != "urn:loa:problem:not-found" {
				t.Errorf("replay unknown: %d %v", resp.StatusCode, out)
			}
			_, one = f.do(t, "GET", "/v1/ops/deadletters/"+ids[1], "dev-key", "")
			if one["replayed_by"] != "dev" || one["replayed_at"] == nil || one["replayable"] != false {
				t.Errorf("after replay: %v", one)
			}

			// The event is back on its lane, once, narrowed to the delivery.
			envs := readLane(t, f, topics.LaneDirect, 1)
			if envs[0].ID != "ev-01" || envs[0].Redelivery == nil || envs[0].Redelivery.Channel != "sms" || envs[0].Redelivery.Recipient != "84912345678" {
				t.Errorf("replayed event %+v", envs[0])
			}
		})
	}
}

// readLane reads n events from a lane topic.
func readLane(t *testing.T, f *opsFixture, lane topics.Lane, n int) []producer.Envelope {
	t.Helper()
	rd := kafka.NewReader(kafka.ReaderConfig{Brokers: f.brokers, GroupID: f.names.Group("test-ops"), Topic: f.names.Lane(lane),
		StartOffset: kafka.FirstOffset, MaxWait: 100 * time.Millisecond})
	defer rd.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []producer.Envelope
	for len(out) < n {
		m, err := rd.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("reading %s (%d of %d): %v", lane, len(out), n, err)
		}
		env, err := producer.Decode(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, env)
	}
	return out
}

// TestOpsNeedsTheOpsScope: a key without ops is refused, and a process
// without a replayer says so.
func TestOpsNeedsTheOpsScope(t *testing.T) {
	f := newFixture(t)
	key, hash, err := api.NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.CreateAPIKey(context.Background(), sqlstore.APIKey{ID: "k-notify", Name: "notify only", Hash: hash,
		Scopes: []string{api.ScopeNotifyDirect}, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/ops/deadletters"}, {"GET", "/v1/ops/deadletters/x"}, {"POST", "/v1/ops/deadletters/x/replay"},
	} {
		if resp, out := f.do(t, c.method, c.path, key, ""); resp.StatusCode != 403 || out["type"] != "urn:loa:problem:forbidden" {
			t.Errorf("%s %s without ops: %d %v", c.method, c.path, resp.StatusCode, out)
		}
		if resp, _ := f.do(t, c.method, c.path, "", ""); resp.StatusCode != 401 {
			t.Errorf("%s %s without a key: %d", c.method, c.path, resp.StatusCode)
		}
	}
	// newFixture has no replayer.
	if resp, out := f.do(t, "POST", "/v1/ops/deadletters/x/replay", "dev-key", ""); resp.StatusCode != 503 {
		t.Errorf("replay without a replayer: %d %v", resp.StatusCode, out)
	}
	if resp, out := f.do(t, "GET", "/v1/ops/deadletters", "dev-key", ""); resp.StatusCode != 200 || len(out["items"].([]any)) != 0 {
		t.Errorf("empty list: %d %v", resp.StatusCode, out)
	}
}
