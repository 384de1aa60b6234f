package main

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/producer/alert"
)

// TestAlertChainReachesTheSameDevices: on `loa dev`, an alert to an area
// with devices and phones, then an Update and a Cancel of it; the update
// and the cancellation reach exactly the devices and phones the alert
// reached.
func TestAlertChainReachesTheSameDevices(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			env := backendEnv(t, b.Name)
			if env["LOA_DATABASE_URL"] == "" {
				env["LOA_DATA_DIR"] = t.TempDir()
				env["LOA_DATABASE_URL"] = "sqlite:" + filepath.Join(env["LOA_DATA_DIR"], "loa.db")
			}
			in := startDev(t, env)

			// An area of its own with 6 devices and phones, beside the
			// demo data.
			ctx := context.Background()
			store, err := sqlstore.Open(ctx, env["LOA_DATABASE_URL"])
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			id := testenv.ID()
			area := "e2e" + id
			if err := store.UpsertAreas(ctx, []accounts.Area{{Code: area, Name: "Xã thử nghiệm", Level: "commune"}}); err != nil {
				t.Fatal(err)
			}
			const n = 6
			if err := store.SeedAudience(ctx, "al"+id, n, 10_000_000+rand.IntN(80_000_000), "smart", area, time.Now()); err != nil {
				t.Fatal(err)
			}

			// The issuer's own key, with alerts:issue: pre-authorised by
			// the default policy, for the test's area.
			var out strings.Builder
			getenv := func(k string) string { return env[k] }
			if err := run(ctx, []string{"loa", "admin", "apikey", "create", "--name", "pctt", "--scopes", "alerts:issue", "--alert-areas", area}, getenv, &out); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			in.key = lines[len(lines)-1]

			expires := time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339)
			post := func(body string) string {
				t.Helper()
				code, out := in.call(t, "POST", "/v1/alerts", body)
				if code != 202 || out["status"] != alert.StatusSentPreauthorised {
					t.Fatalf("POST /v1/alerts: %d %v", code, out)
				}
				return out["id"].(string)
			}
			// reached waits until a notification's push and SMS reach n
			// addresses each, and returns them per channel.
			reached := func(nid string) map[string][]string {
				t.Helper()
				var got map[string][]string
				waitFor(t, "the outbox of "+nid, func() bool {
					got = map[string][]string{}
					for _, e := range in.outbox(t, nid) {
						ch := e["channel"].(string)
						got[ch] = append(got[ch], e["to"].(string))
					}
					return len(got["push"]) >= n && len(got["sms"]) >= n
				})
				for ch := range got {
					slices.Sort(got[ch])
				}
				return got
			}

			first := post(fmt.Sprintf(`{"identifier":"lu-%s","msg_type":"alert","severity":"Extreme","urgency":"Immediate","event":"Lũ",
				"headline":"Lũ trên sông Thu Bồn","description":"Nước lên nhanh, sơ tán ngay","expires":%q,"areas":[%q]}`, id, expires, area))
			base := reached(first)
			for _, tok := range base["push"] {
				if !strings.HasPrefix(tok, "al"+id+"-tok-") {
					t.Errorf("the alert reached %s, outside its area", tok)
				}
			}

			update := post(fmt.Sprintf(`{"msg_type":"update","references":[%q],"severity":"Extreme","urgency":"Immediate","event":"Lũ",
				"headline":"Lũ vượt báo động 3","description":"Mực nước 4,2 m","expires":%q}`, first, expires))
			if got := reached(update); !maps.EqualFunc(got, base, slices.Equal) {
				t.Errorf("the update reached %v, the alert %v", got, base)
			}
			// (Posted before the update is out, the cancellation would stop
			// its rest: that is what a Cancel is for.)
			cancel := post(fmt.Sprintf(`{"msg_type":"cancel","references":["lu-%s"],"description":"Nước đã rút"}`, id))
			if got := reached(cancel); !maps.EqualFunc(got, base, slices.Equal) {
				t.Errorf("the cancellation reached %v, the alert %v", got, base)
			}
			for _, e := range in.outbox(t, cancel) {
				if !strings.HasPrefix(e["body"].(string), alert.CancelPrefix) {
					t.Errorf("cancellation body %q", e["body"])
				}
			}
			_, d := in.call(t, "GET", "/v1/alerts/"+first, "")
			if fmt.Sprint(d["updates"]) != fmt.Sprint([]any{update}) || fmt.Sprint(d["cancelled_by"]) != fmt.Sprint([]any{cancel}) {
				t.Errorf("links on the alert: %v %v", d["updates"], d["cancelled_by"])
			}
		})
	}
}
