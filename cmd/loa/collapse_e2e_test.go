package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/internal/fakes/fcmfake"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/producer/alert"
)

// TestAlertChainIsOneNotificationOnThePhone: on `loa dev` pushing through
// the FCM fake, an alert, its Update and its Cancel reach every device
// with one collapse key and one notification tag — the chain's first
// identifier — so the phone shows one notification, replaced by the
// update and then by the cancellation text.
func TestAlertChainIsOneNotificationOnThePhone(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			fake, err := fcmfake.New(fcmfake.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer fake.Close()
			env := backendEnv(t, b.Name)
			if env["LOA_DATABASE_URL"] == "" {
				env["LOA_DATA_DIR"] = t.TempDir()
				env["LOA_DATABASE_URL"] = "sqlite:" + filepath.Join(env["LOA_DATA_DIR"], "loa.db")
			}
			env["LOA_FCM_PROJECT_ID"], env["LOA_FCM_ENDPOINT"], env["LOA_FCM_INSECURE_TLS"] = "loa-test", fake.Endpoint(), "1"
			env["LOA_ALERT_SMS_SEVERITIES"] = "none"
			in := startDev(t, env)

			ctx := context.Background()
			store, err := sqlstore.Open(ctx, env["LOA_DATABASE_URL"])
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			id := testenv.ID()
			area := "col" + id
			if err := store.UpsertAreas(ctx, []accounts.Area{{Code: area, Name: "Xã thử nghiệm", Level: "commune"}}); err != nil {
				t.Fatal(err)
			}
			const n = 5
			if err := store.SeedAudience(ctx, "co"+id, n, 10_000_000+rand.IntN(80_000_000), "smart", area, time.Now()); err != nil {
				t.Fatal(err)
			}
			expires := time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339)
			post := func(body string) string {
				t.Helper()
				code, out := in.call(t, "POST", "/v1/alerts", body)
				if code != 202 || out["status"] != alert.StatusSentPreauthorised {
					t.Fatalf("POST /v1/alerts: %d %v", code, out)
				}
				return out["id"].(string)
			}
			// pushes waits for the fake to hold n pushes of an alert.
			pushes := func(alertID string) []fcmfake.Message {
				t.Helper()
				var got []fcmfake.Message
				waitFor(t, "the pushes of "+alertID, func() bool {
					got = got[:0]
					for _, m := range fake.Messages() {
						if m.Data["alert_id"] == alertID {
							got = append(got, m)
						}
					}
					return len(got) >= n
				})
				return got
			}
			chain := "lu-" + id
			first := post(fmt.Sprintf(`{"identifier":%q,"msg_type":"alert","severity":"Extreme","urgency":"Immediate","event":"Lũ",
				"headline":"Lũ trên sông Thu Bồn","description":"Nước lên nhanh","instruction":"Sơ tán ngay","expires":%q,"areas":[%q]}`, chain, expires, area))
			update := post(fmt.Sprintf(`{"msg_type":"update","references":[%q],"severity":"Extreme","urgency":"Immediate","event":"Lũ",
				"headline":"Lũ vượt báo động 3","description":"Mực nước 4,2 m","expires":%q}`, first, expires))
			all := map[string][]fcmfake.Message{"alert": pushes(first), "update": pushes(update)}
			cancel := post(fmt.Sprintf(`{"msg_type":"cancel","references":[%q],"description":"Nước đã rút"}`, chain))
			all["cancel"] = pushes(cancel)
			for step, msgs := range all {
				for _, m := range msgs {
					if m.Android == nil || m.Android.CollapseKey != chain || m.Android.Tag() != chain ||
						m.APNSHeaders()["apns-collapse-id"] != chain || m.APNSThreadID() != chain || m.WebpushHeaders()["Topic"] != chain {
						t.Errorf("%s to %s: android %s apns %s webpush %s, want the chain key %q everywhere",
							step, m.Token, m.Android.Raw, m.APNS, m.Webpush, chain)
					}
				}
			}
			for _, m := range all["cancel"] {
				if m.Notification == nil || m.Notification.Title != alert.CancelPrefix+"Lũ trên sông Thu Bồn" {
					t.Errorf("cancellation shows %+v", m.Notification)
				}
			}
		})
	}
}
