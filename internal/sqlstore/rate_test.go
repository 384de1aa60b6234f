package sqlstore_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/producer"
)

// TestDeliveryStatsAndRate: one scan of the ledger gives DeliveryStats'
// counts and the outcomes per second from a given second on (retrying is
// no outcome; sub-second times fall in their second; other notifications
// do not count), on both dialects.
func TestDeliveryStatsAndRate(t *testing.T) {
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
			var batch []producer.Delivery
			add := func(n int, at time.Time, st loa.Status, notification string) {
				for i := range n {
					batch = append(batch, producer.Delivery{NotificationID: notification, Channel: "push",
						Recipient: fmt.Sprintf("tok-%s-%d", at.Format("150405.000"), i) + string(st), Status: st, Provider: "fcm",
						Targets: 1, Attempts: 1, UpdatedAt: at})
				}
			}
			add(3, t0, loa.StatusSent, "bc-1")
			add(2, t0.Add(300*time.Millisecond), loa.StatusFailed, "bc-1")
			add(4, t0.Add(2*time.Second+999*time.Millisecond), loa.StatusSent, "bc-1")
			add(1, t0.Add(2*time.Second), loa.StatusRetrying, "bc-1")
			add(5, t0.Add(3*time.Second), loa.StatusExpired, "bc-1")
			add(7, t0.Add(2*time.Second), loa.StatusSent, "bc-other")
			if err := db.RecordDeliveries(ctx, batch); err != nil {
				t.Fatal(err)
			}
			stats, points, err := db.DeliveryStatsAndRate(ctx, "bc-1", time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			want := []sqlstore.RatePoint{{At: t0.Unix(), Count: 5}, {At: t0.Unix() + 2, Count: 4}, {At: t0.Unix() + 3, Count: 5}}
			if !slices.Equal(points, want) {
				t.Errorf("the whole curve: %v, want %v", points, want)
			}
			plain, err := db.DeliveryStats(ctx, "bc-1")
			if err != nil {
				t.Fatal(err)
			}
			sum := func(ss []sqlstore.DeliveryStat) map[string]int64 {
				m := map[string]int64{}
				for _, s := range ss {
					m[s.Channel+"/"+s.Provider+"/"+string(s.Status)] += s.Count
				}
				return m
			}
			if a, b := sum(stats), sum(plain); fmt.Sprint(a) != fmt.Sprint(b) {
				t.Errorf("the counts %v differ from DeliveryStats' %v", a, b)
			}
			_, from, err := db.DeliveryStatsAndRate(ctx, "bc-1", t0.Add(2*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(from, want[1:]) {
				t.Errorf("the curve from the third second: %v, want %v", from, want[1:])
			}
		})
	}
}
