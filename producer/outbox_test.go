package producer_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

// counting records how often each event was published.
type counting struct {
	mu    sync.Mutex
	count map[string]int
	total int
}

func (c *counting) Publish(_ context.Context, e producer.Envelope) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count[e.ID]++
	c.total++
	return nil
}

func (c *counting) snapshot() (int, map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]int, len(c.count))
	for k, v := range c.count {
		m[k] = v
	}
	return c.total, m
}

func scheduleN(t *testing.T, store *sqlstore.DB, n int, due time.Time, prefix string) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		id := fmt.Sprintf("%s-%04d", prefix, i)
		env, err := producer.NewEnvelope(id, producer.KindDirect, topics.LaneBulk, id, due, time.Time{}, "",
			producer.Direct{NotificationID: id, To: producer.Recipient{Type: producer.ToPhone, Value: "84912345678"}, Body: "x", Channels: []string{"sms"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := producer.NewOutbox(store, nil, quietLogger()).Schedule(ctx, id, prefix, due, env); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTwoPollersPublishEachItemOnce: two outbox pollers against
// one store claim 1,000 due items; each is published exactly once, and
// items not yet due, or cancelled, are not published.
func TestTwoPollersPublishEachItemOnce(t *testing.T) {
	for name, store := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			now := time.Now()
			scheduleN(t, store, 1000, now.Add(-time.Minute), "due")
			scheduleN(t, store, 10, now.Add(time.Hour), "later")
			scheduleN(t, store, 10, now.Add(-time.Minute), "cancelled")
			if n, err := store.CancelScheduled(context.Background(), "cancelled"); err != nil || n != 10 {
				t.Fatalf("cancel: %d %v", n, err)
			}
			pub := &counting{count: map[string]int{}}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for range 2 {
				s := producer.NewOutbox(store, pub, quietLogger())
				s.Batch, s.Interval = 50, 10*time.Millisecond
				wg.Add(1)
				go func() { defer wg.Done(); s.Run(ctx) }()
			}
			deadline := time.Now().Add(60 * time.Second)
			for {
				total, _ := pub.snapshot()
				if total >= 1000 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("published %d of 1000", total)
				}
				time.Sleep(10 * time.Millisecond) // polling a counter, not ordering goroutines
			}
			cancel()
			wg.Wait()
			for _, id := range []string{"due-0000", "due-0999"} {
				if st, err := store.ScheduledStatus(context.Background(), id); err != nil || st != sqlstore.ItemPublished {
					t.Errorf("%s: %s %v", id, st, err)
				}
			}
			total, counts := pub.snapshot()
			if total != 1000 || len(counts) != 1000 {
				t.Fatalf("%d publishes of %d items, want 1000 of 1000", total, len(counts))
			}
			for id, c := range counts {
				if c != 1 || id[:3] != "due" {
					t.Fatalf("%s published %d times", id, c)
				}
			}
			if st, _ := store.ScheduledStatus(context.Background(), "later-0000"); st != sqlstore.ItemPending {
				t.Errorf("an item due in an hour is %s", st)
			}
		})
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
