package portal_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/producer/portal"
)

// countingStore counts the reads of public lists and categories.
type countingStore struct {
	*sqlstore.DB
	lists, cats atomic.Int64
}

func (c *countingStore) Articles(ctx context.Context, f portal.Filter) ([]portal.Article, error) {
	c.lists.Add(1)
	return c.DB.Articles(ctx, f)
}

func (c *countingStore) PortalCategories(ctx context.Context) ([]portal.Category, error) {
	c.cats.Add(1)
	return c.DB.PortalCategories(ctx)
}

// TestPublicListsAreShared: anyone may list the portal's articles (GET
// /v1/portal/articles, the Atom feeds), and each list read whole articles
// (bodies of up to 200,000 characters in each language) from the store,
// every request. Now a process reads a category's list once a
// portal.PublicTTL and its callers share it, whatever limit they ask;
// a category that does not exist reads no article; a change this
// process stores shows at once, one of another process within the TTL.
func TestPublicListsAreShared(t *testing.T) {
	r := newRig(t, testenv.Stores(t)["sqlite"])
	ctx := context.Background()
	cs := &countingStore{DB: r.db}
	svc, err := portal.New(portal.DefaultConfig(), portal.Deps{Store: cs, Roles: grants{r.db}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: func() time.Time { return r.now }})
	if err != nil {
		t.Fatal(err)
	}
	// Published by another process (the rig's service).
	a := r.publish(ctx, article)
	for i := range 100 {
		list, err := svc.Public(ctx, "tin-tuc", "vi", 1+i%200)
		if err != nil || len(list) != 1 || list[0].ID != a.ID {
			t.Fatalf("list %d: %v %v", i, list, err)
		}
		if list, err := svc.Public(ctx, fmt.Sprintf("made-up-%d", i), "vi", 200); err != nil || len(list) != 0 {
			t.Fatalf("a made-up category: %v %v", list, err)
		}
	}
	if n, c := cs.lists.Load(), cs.cats.Load(); n != 1 || c != 1 {
		t.Errorf("200 public lists read the store's articles %d times and its categories %d, want once each", n, c)
	}
	// Unpublished by another process: gone from this one's list within
	// the TTL.
	if _, err := r.svc.Unpublish(ctx, ed("chief"), a.ID); err != nil {
		t.Fatal(err)
	}
	r.now = r.now.Add(portal.PublicTTL)
	if list, _ := svc.Public(ctx, "tin-tuc", "vi", 10); len(list) != 0 {
		t.Errorf("still listed %v after the TTL", list)
	}
	// A change this process stores shows at once.
	second := article
	second.VI.Slug, second.EN = "bai-thu-hai", nil
	b, err := r.svc.Create(ctx, ed("editor-1"), second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Submit(ctx, ed("editor-1"), b.ID); err != nil {
		t.Fatal(err)
	}
	if list, _ := svc.Public(ctx, "tin-tuc", "vi", 10); len(list) != 0 {
		t.Fatalf("listed before approval: %v", list)
	}
	if _, err := svc.Approve(ctx, ed("chief"), b.ID, portal.Approval{}); err != nil {
		t.Fatal(err)
	}
	if list, _ := svc.Public(ctx, "tin-tuc", "vi", 10); len(list) != 1 || list[0].ID != b.ID {
		t.Errorf("approved by this process, listed %v", list)
	}
}
