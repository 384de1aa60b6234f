package broadcast

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/loa-hub/loa"
)

// TestAnOfficialHoldsOneCountingSlot: counting an audience costs seconds
// of PostgreSQL at a million devices, and a process runs
// maxConcurrentCounts at once. One submitter naming a new audience in
// each of many requests (tabs, a script, requests dropped as soon as
// sent, whose counts run on) must not take every slot: while one of
// theirs counts, their others wait for it and never reach the store,
// another official's count runs at once, and a request that ends stops
// waiting and leaves nothing behind.
func TestAnOfficialHoldsOneCountingSlot(t *testing.T) {
	var (
		mu      sync.Mutex
		counted []string
		began   = make(chan string, 100)
		waited  = make(chan string, 100)
		release = make(chan struct{}) // closed: the slow audience's count ends
	)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	c := newCounter(time.Minute, func() time.Time { return time.Date(2026, 11, 30, 15, 0, 0, 0, time.UTC) }, func(ctx context.Context, a loa.Audience) (int, int, error) {
		mu.Lock()
		counted = append(counted, a.Areas[0])
		mu.Unlock()
		began <- a.Areas[0]
		if a.Areas[0] == "slow" {
			<-release
		}
		return 10, 5, nil
	})
	c.waits = func(who string) { waited <- who }
	area := func(code string) loa.Audience { return loa.Audience{Areas: []string{code}} }

	// The submitter's first count, whose request is dropped once it began:
	// the count runs on.
	ctx, drop := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { _, err := c.get(ctx, "submitter", area("slow")); first <- err }()
	if got := <-began; got != "slow" {
		t.Fatalf("began %q", got)
	}
	drop()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("the dropped request: %v", err)
	}

	// Ten more of the submitter's requests, each a new audience: each waits
	// for the count that runs on, none reaches the store.
	tabs, closeTabs := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.get(tabs, "submitter", area(fmt.Sprintf("tab-%d", i)))
			errs <- err
		}()
	}
	for range 10 {
		select {
		case who := <-waited:
			if who != "submitter" {
				t.Fatalf("%q waited", who)
			}
		case a := <-began:
			t.Fatalf("a second count of one official's reached the store (%s) while the first ran", a)
		}
	}

	// The approver's count runs at once beside it.
	if k, err := c.get(context.Background(), "approver", area("approval")); err != nil || k.devices != 10 {
		t.Fatalf("the approver's count: %+v %v", k, err)
	}
	if got := <-began; got != "approval" {
		t.Fatalf("began %q, want the approver's", got)
	}

	// The tabs are closed: they stop waiting, and leave nothing to count.
	closeTabs()
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("a closed tab: %v", err)
		}
	}
	close(release)
	// The submitter's turn comes back once their count ends; a kept
	// count needs no turn.
	if k, err := c.get(context.Background(), "submitter", area("next")); err != nil || k.phones != 5 {
		t.Fatalf("the submitter's next count: %+v %v", k, err)
	}
	if _, err := c.get(context.Background(), "submitter", area("approval")); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := fmt.Sprint(counted); got != "[slow approval next]" {
		t.Errorf("counted %s, want [slow approval next]", got)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.turns) != 0 {
		t.Errorf("%d turns left behind", len(c.turns))
	}
}
