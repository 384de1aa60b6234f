package api_test

import (
	"context"
	"testing"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/api"
	"github.com/loa-hub/loa/producer"
)

func TestStatsAndRecipientLookup(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := time.Now()
	if err := f.store.SeedAccount(ctx, "acc-1", "citizen", "84912345678", "", []string{"tok-a", "tok-b"}, now); err != nil {
		t.Fatal(err)
	}
	p, err := f.store.Plan(ctx, "bc-1", "push", now)
	if err != nil {
		t.Fatal(err)
	}
	p.Targeted, p.Done = 10, true
	if err := f.store.AdvancePlan(ctx, "bc-1", "push", p, now); err != nil {
		t.Fatal(err)
	}
	rec := func(to, status, provider string) {
		if err := f.store.RecordDelivery(ctx, producer.Delivery{NotificationID: "bc-1", Channel: "push", Recipient: to, Status: loa.Status(status),
			Provider: provider, Targets: 1, Attempts: 1, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	rec("tok-a", "sent", "fcm:p")
	rec("tok-b", "token_dead", "fcm:p")
	rec("tok-c", "sent", "fcm:p")
	rec("tok-d", "expired", "")
	rec("tok-e", "retrying", "fcm:p")

	resp, out := f.do(t, "GET", "/v1/notifications/bc-1/recipients?phone=0912345678", "dev-key", "")
	if resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, out)
	}
	items := out["items"].([]any)
	if len(items) != 2 {
		t.Fatalf("the phone's accounts have two devices; got %v", items)
	}
	if resp, _ := f.do(t, "GET", "/v1/notifications/bc-1/recipients", "dev-key", ""); resp.StatusCode != 400 {
		t.Errorf("no recipient given: %d", resp.StatusCode)
	}
	if resp, _ := f.do(t, "GET", "/v1/notifications/bc-1/recipients?phone=12", "dev-key", ""); resp.StatusCode != 400 {
		t.Errorf("bad phone: %d", resp.StatusCode)
	}
	st, err := statsOf(f, "bc-1")
	if err != nil {
		t.Fatal(err)
	}
	if st.Targeted != 10 || st.Sent != 2 || st.Failed != 1 || st.Expired != 1 || st.Pending != 6 {
		t.Errorf("stats %+v; want targeted 10, sent 2, failed 1, expired 1, pending 6", st)
	}
	if st.Channels["push"].Providers["fcm:p"]["sent"] != 2 {
		t.Errorf("per provider: %+v", st.Channels["push"].Providers)
	}
}

func statsOf(f *fixture, id string) (api.Stats, error) { return api.StatsOf(f.store, id) }
