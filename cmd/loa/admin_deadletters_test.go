package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/loa-hub/loa/internal/kafkaadmin"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

// TestAdminDeadLetters: `loa admin deadletters list` and `… replay ID`
// through run, on SQLite with the in-process broker and on the real
// services.
func TestAdminDeadLetters(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			env := map[string]string{"LOA_DATA_DIR": t.TempDir(), "LOA_KAFKA_TOPIC_PREFIX": "adm" + testenv.ID() + "."}
			dbURL, brokers := "sqlite:"+env["LOA_DATA_DIR"]+"/loa.db", testenv.Kfake(t)
			if b.Name == "real" {
				rb := testenv.RealBackend(t)
				dbURL, brokers = rb.DatabaseURL, rb.KafkaBrokers
				env["LOA_DATABASE_URL"] = dbURL
			}
			testenv.DeleteTopicsAtEnd(t, brokers, env["LOA_KAFKA_TOPIC_PREFIX"])
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := kafkaadmin.Ensure(ctx, strings.Split(brokers, ","), topics.Names{Prefix: env["LOA_KAFKA_TOPIC_PREFIX"]}, 1); err != nil {
				t.Fatal(err)
			}
			db := testenv.OpenStore(t, dbURL)
			at := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
			e, err := producer.NewEnvelope("ev-1", producer.KindDirect, topics.LaneDirect, "84912345678", at, at.Add(time.Hour), "",
				producer.Direct{NotificationID: "ev-1", To: producer.Recipient{Type: producer.ToPhone, Value: "84912345678"},
					Body: "x", Channels: []string{"sms"}, Priority: "normal"})
			if err != nil {
				t.Fatal(err)
			}
			envJSON, _ := json.Marshal(e)
			for _, r := range []producer.DeadLetterRecord{
				{ID: "dl-sms", Reason: "sms: every retry tier failed: 503", Topic: "loa.direct", Envelope: string(envJSON), Channel: "sms",
					Recipient: "84912345678", Provider: "esms", Attempts: 4, History: "[]", At: at},
				{ID: "dl-raw", Reason: "dispatcher: undecodable envelope", Topic: "loa.direct", Offset: 7, Raw: "/wA=", History: "null", At: at.Add(time.Minute)},
			} {
				if err := db.RecordDeadLetter(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			admin := func(args ...string) (string, error) {
				var out strings.Builder
				err := run(ctx, append([]string{"loa", "admin", "deadletters"}, args...), func(k string) string { return env[k] }, &out)
				return out.String(), err
			}

			out, err := admin("list")
			if err != nil {
				t.Fatalf("list: %v\n%s", err, out)
			}
			for _, want := range []string{"dl-sms", "dl-raw", "84912***678", "esms", "replayable", "not replayable", "2 dead letter(s)"} {
				if !strings.Contains(out, want) {
					t.Errorf("list lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, "84912345678") || strings.Index(out, "dl-raw") > strings.Index(out, "dl-sms") {
				t.Errorf("list shows a phone unmasked or is not newest first:\n%s", out)
			}

			// Replay needs Kafka.
			if _, err := admin("replay", "dl-sms"); err == nil || !strings.Contains(err.Error(), "LOA_KAFKA_BROKERS") {
				t.Errorf("replay without Kafka: %v", err)
			}
			env["LOA_KAFKA_BROKERS"] = brokers
			out, err = admin("replay", "--by", "ops-anh", "dl-sms")
			if err != nil || !strings.Contains(out, "Replayed dead letter dl-sms: event ev-1 is back on the direct lane") {
				t.Fatalf("replay: %v\n%s", err, out)
			}
			if rows, _, _ := db.ListAudit(ctx, sqlstore.AuditFilter{Actor: "cli:ops-anh"}); len(rows) != 1 || rows[0].Action != "deadletter.replay" ||
				rows[0].Subject != "dl-sms" || rows[0].Detail["event_id"] != "ev-1" {
				t.Errorf("the replay's audit entry: %+v", rows)
			}
			if _, err := admin("replay", "dl-sms"); err == nil || !strings.Contains(err.Error(), "already replayed") || !strings.Contains(err.Error(), "ops-anh") {
				t.Errorf("second replay: %v", err)
			}
			if _, err := admin("replay", "dl-raw"); err == nil || !strings.Contains(err.Error(), "cannot be replayed") {
				t.Errorf("replay of undecodable bytes: %v", err)
			}
			if _, err := admin("replay", "nope"); err == nil || !strings.Contains(err.Error(), "no dead letter") {
				t.Errorf("replay unknown: %v", err)
			}
			if out, _ := admin("list", "--limit", "1"); !strings.Contains(out, "1 dead letter(s)") || !strings.Contains(out, "dl-raw") {
				t.Errorf("list --limit 1:\n%s", out)
			}
			if out, _ := admin("list"); !strings.Contains(out, "by ops-anh") {
				t.Errorf("list after replay:\n%s", out)
			}
			for _, args := range [][]string{{}, {"list", "--limit", "0"}, {"replay"}, {"purge"}} {
				if _, err := admin(args...); err == nil || !strings.Contains(err.Error(), "usage") {
					t.Errorf("%v: %v, want the usage", args, err)
				}
			}
		})
	}
}
