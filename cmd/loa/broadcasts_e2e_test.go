package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/loa-hub/loa/internal/testenv"
)

// signInDemo signs a demo official in with the known password and TOTP
// secret and returns the session token.
func (in *instance) signInDemo(t *testing.T, username string) string {
	t.Helper()
	code, err := totp.GenerateCode(demoTOTPSecret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	status, s := in.callAs(t, "", "POST", "/v1/sessions", fmt.Sprintf(`{"username":%q,"password":%q,"otp":%q}`, username, demoPassword, code))
	if status != 201 || s["token"] == nil {
		t.Fatalf("sign in as %s: %d %v", username, status, s)
	}
	return s["token"].(string)
}

// TestBroadcastEndToEnd: on `loa dev`, docs/api.md's flow with the demo
// officials — the submitter drafts a broadcast to a demo area and submits
// it, the approver sees the audience size and approves, and the counters
// reach every device of the audience (the dev outbox receives them).
func TestBroadcastEndToEnd(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			env := accountsEnv(t, b.Name)
			in := startDev(t, env)
			if !strings.Contains(in.logs.String(), "demo-submitter") || !strings.Contains(in.logs.String(), demoTOTPSecret) {
				t.Error("the banner does not name the demo officials")
			}
			sub := in.signInDemo(t, "demo-submitter")
			appr := in.signInDemo(t, "demo-approver")
			ops := in.signInDemo(t, "demo-ops")

			// The first demo area that holds devices.
			var id string
			var devices float64
			for _, area := range demoAudienceAreas {
				status, d := in.callAs(t, sub, "POST", "/v1/broadcasts", fmt.Sprintf(`{"title":"Cảnh báo lũ","body":"Hồ Phú Ninh xả lũ lúc 14 giờ.",
					"topic":"disaster","audience":{"areas":[%q]},"channels":["push"],"request_document":{"number":"123/SNN-TL","date":"2026-11-20"}}`, area))
				if status != 201 {
					continue
				}
				_, g := in.callAs(t, appr, "GET", "/v1/broadcasts/"+d["id"].(string), "")
				if n := g["audience_size"].(map[string]any)["devices"].(float64); n > 0 {
					id, devices = d["id"].(string), n
					t.Logf("broadcast %s to area %s: %v devices", id, area, n)
					break
				}
			}
			if id == "" {
				t.Fatal("no demo area holds demo devices")
			}
			if status, p := in.callAs(t, sub, "POST", "/v1/broadcasts/"+id+"/submit", ""); status != 200 {
				t.Fatalf("submit: %d %v", status, p)
			}
			if status, p := in.callAs(t, sub, "POST", "/v1/broadcasts/"+id+"/approve", ""); status != 403 {
				t.Errorf("the submitter approves: %d %v", status, p)
			}
			if status, p := in.callAs(t, ops, "POST", "/v1/broadcasts/"+id+"/approve", ""); status != 403 {
				t.Errorf("ops approves: %d %v", status, p)
			}
			if items := in.outbox(t, id); len(items) != 0 {
				t.Fatalf("%d messages before approval", len(items))
			}
			if status, p := in.callAs(t, appr, "POST", "/v1/broadcasts/"+id+"/approve", ""); status != 200 {
				t.Fatalf("approve: %d %v", status, p)
			}
			var g map[string]any
			waitFor(t, "stats.sent to reach the audience", func() bool {
				_, g = in.callAs(t, ops, "GET", "/v1/broadcasts/"+id, "")
				st, _ := g["stats"].(map[string]any)
				return st != nil && st["sent"] == devices
			})
			if st := g["stats"].(map[string]any); st["targeted"] != devices || st["failed"] != 0.0 {
				t.Errorf("stats: %v", st)
			}
			waitFor(t, "the broadcast to be done", func() bool {
				_, g = in.callAs(t, ops, "GET", "/v1/broadcasts/"+id, "")
				return g["status"] == "done"
			})
			if items := in.outbox(t, id); len(items) == 0 {
				t.Error("nothing in the dev outbox")
			}
			// A scheduled one: the outbox poller publishes it at
			// send_at.
			sendAt := time.Now().Add(3 * time.Second).UTC().Format(time.RFC3339Nano)
			status, d := in.callAs(t, sub, "POST", "/v1/broadcasts", fmt.Sprintf(`{"title":"Lịch cắt điện","body":"Ngày mai 8:00–12:00.",
				"topic":"power","audience":{"areas":[%q]},"send_at":%q,"request_document":{"number":"45/PC-QNA","date":"2026-11-21"}}`,
				g["audience"].(map[string]any)["areas"].([]any)[0], sendAt))
			if status != 201 {
				t.Fatalf("scheduled draft: %d %v", status, d)
			}
			sid := d["id"].(string)
			in.callAs(t, sub, "POST", "/v1/broadcasts/"+sid+"/submit", "")
			if status, p := in.callAs(t, appr, "POST", "/v1/broadcasts/"+sid+"/approve", ""); status != 200 || p["status"] != "scheduled" {
				t.Fatalf("approve scheduled: %d %v", status, p)
			}
			waitFor(t, "the scheduled broadcast to be sent", func() bool {
				_, g = in.callAs(t, ops, "GET", "/v1/broadcasts/"+sid, "")
				st, _ := g["stats"].(map[string]any)
				return st != nil && st["sent"] == devices
			})

			_, h := in.callAs(t, ops, "GET", "/v1/broadcasts/"+id+"/history", "")
			if items, _ := h["items"].([]any); len(items) < 4 {
				t.Errorf("history: %v", h)
			}
		})
	}
}
