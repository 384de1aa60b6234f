package broadcast_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/producer/broadcast"
)

// countingStore counts the audience counts asked of the store.
type countingStore struct {
	*sqlstore.DB
	counts atomic.Int32
}

func (s *countingStore) CountRecipients(ctx context.Context, a loa.Audience, app string) (int, int, error) {
	s.counts.Add(1)
	return s.DB.CountRecipients(ctx, a, app)
}

// TestAudienceCountedOnceDecided: on both stores, an audience is counted
// at most once a CountTTL however many read it (at once or one after
// another), a decided broadcast's size is the figure stored at its
// decision, and reading a decided broadcast counts nothing, in this
// process or another: a console polling a broadcast being sent costs
// no count of its audience.
func TestAudienceCountedOnceDecided(t *testing.T) {
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			r := newRig(t, db)
			var (
				mu  sync.Mutex
				now = r.now
			)
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
			store := &countingStore{DB: db}
			newService := func() *broadcast.Service {
				svc, err := broadcast.New(broadcast.DefaultConfig(), broadcast.Deps{Store: store, Publisher: r.pub,
					Roles: roles{submitter.AccountID: {accounts.RoleAgencySubmitter}, approver.AccountID: {accounts.RoleBroadcastApprover}},
					Log:   slog.New(slog.NewTextHandler(io.Discard, nil)), Now: clock})
				if err != nil {
					t.Fatal(err)
				}
				return svc
			}
			svc := newService()
			b, err := svc.Create(ctx, submitter, draft())
			if err != nil {
				t.Fatal(err)
			}
			if b, err = svc.Submit(ctx, submitter, b.ID); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if e, err := svc.Reach(ctx, approver, b); err != nil || e.Devices != 30 {
						t.Errorf("reach: %+v %v, want 30 devices", e, err)
					}
				}()
			}
			wg.Wait()
			if n := store.counts.Load(); n != 1 {
				t.Fatalf("8 readers at once counted %d times, want 1", n)
			}
			if err := db.SeedAudience(ctx, "late", 4, 40000, "smart", "20497", r.now); err != nil {
				t.Fatal(err)
			}
			advance(broadcast.DefaultConfig().CountTTL)
			seen, err := svc.Reach(ctx, approver, b)
			if err != nil || seen.Devices != 34 || !seen.CountedAt.Equal(clock()) || store.counts.Load() != 2 {
				t.Fatalf("submitted, CountTTL later: %+v %v (%d counts), want 34 counted again", seen, err, store.counts.Load())
			}
			if _, err := svc.Approve(ctx, approver, b.ID); err != nil {
				t.Fatal(err)
			}
			if err := db.SeedAudience(ctx, "later", 6, 50000, "smart", "20497", r.now); err != nil {
				t.Fatal(err)
			}
			for _, reader := range []*broadcast.Service{svc, newService()} {
				for range 3 {
					advance(time.Hour)
					got, err := reader.Get(ctx, approver, b.ID)
					if err != nil {
						t.Fatal(err)
					}
					if e, err := reader.Reach(ctx, approver, got); err != nil || e.Devices != 34 || !e.CountedAt.Equal(seen.CountedAt) {
						t.Fatalf("sending: %+v %v, want the approver's %+v", e, err, seen)
					}
				}
			}
			if n := store.counts.Load(); n != 2 {
				t.Errorf("reading the decided broadcast counted %d times more", n-2)
			}

			// Decided where no count was kept (another process, or
			// before sizes were stored): the first read counts and
			// stores, no later read counts.
			b2, err := svc.Create(ctx, submitter, draft())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Submit(ctx, submitter, b2.ID); err != nil {
				t.Fatal(err)
			}
			fresh := newService()
			if _, err := fresh.Approve(ctx, approver, b2.ID); err != nil {
				t.Fatal(err)
			}
			before := store.counts.Load()
			for _, reader := range []*broadcast.Service{fresh, fresh, newService()} {
				got, err := reader.Get(ctx, approver, b2.ID)
				if err != nil {
					t.Fatal(err)
				}
				if e, err := reader.Reach(ctx, approver, got); err != nil || e.Devices != 40 {
					t.Fatalf("decided without a kept count: %+v %v, want 40", e, err)
				}
			}
			if n := store.counts.Load() - before; n != 1 {
				t.Errorf("three reads of a broadcast decided without a kept count counted %d times, want 1", n)
			}
		})
	}
}
