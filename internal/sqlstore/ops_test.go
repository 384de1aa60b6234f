package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/producer"
)

// TestOpsBacklog: the operators' gauges count waiting dead letters (not
// replayed ones) with the oldest's time, and pending scheduled items due
// and overdue (not future, published or cancelled ones).
func TestOpsBacklog(t *testing.T) {
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
			if n, oldest, err := db.DeadLetterBacklog(ctx); err != nil || n != 0 || !oldest.IsZero() {
				t.Fatalf("empty: %d %v %v", n, oldest, err)
			}
			for i, at := range []time.Time{now.Add(-3 * time.Hour), now.Add(-2 * time.Hour), now.Add(-time.Hour)} {
				if err := db.RecordDeadLetter(ctx, producer.DeadLetterRecord{ID: string(rune('a' + i)), Reason: "r", Topic: "loa.direct",
					History: "[]", At: at}); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.MarkReplayed(ctx, "a", "op", now); err != nil {
				t.Fatal(err)
			}
			n, oldest, err := db.DeadLetterBacklog(ctx)
			if err != nil || n != 2 || !oldest.Equal(now.Add(-2*time.Hour)) {
				t.Errorf("dead letters: %d, oldest %v (%v); want 2, %v", n, oldest, err, now.Add(-2*time.Hour))
			}

			for _, it := range []struct {
				id  string
				due time.Duration
			}{{"overdue", -10 * time.Minute}, {"due", -10 * time.Second}, {"future", time.Hour}, {"cancelled", -time.Hour}} {
				if err := db.Schedule(ctx, producer.OutboxItem{ID: it.id, Kind: "k", Subject: "s-" + it.id, DueAt: now.Add(it.due),
					Envelope: []byte("{}")}, now.Add(-24*time.Hour)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := db.CancelScheduled(ctx, "s-cancelled"); err != nil {
				t.Fatal(err)
			}
			due, overdue, err := db.ScheduledBacklog(ctx, now, time.Minute)
			if err != nil || due != 2 || overdue != 1 {
				t.Errorf("scheduled: due %d overdue %d (%v); want 2 and 1", due, overdue, err)
			}
			items, err := db.PendingScheduled(ctx, now.Add(2*time.Hour), 10)
			if err != nil || len(items) != 3 || items[0].ID != "overdue" || items[2].ID != "future" || !items[0].DueAt.Equal(now.Add(-10*time.Minute)) {
				t.Errorf("pending: %+v (%v)", items, err)
			}
		})
	}
}
