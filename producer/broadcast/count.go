package broadcast

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/loa-hub/loa"
)

// Counting an audience reads every device and account it holds: about
// 6 s of PostgreSQL at 1,000,000 devices. Consoles ask for the same
// figures again and again (the approval queue, a broadcast's page, the
// form being typed), so the service keeps each count for a while and
// lets the callers asking meanwhile share it.
const (
	// maxConcurrentCounts bounds the counts one process runs at once;
	// the others wait for a slot (or for their request to end).
	maxConcurrentCounts = 2
	// countTimeout bounds one count, whoever is still waiting for it.
	countTimeout = 2 * time.Minute
	// maxKeptCounts bounds the counts kept in memory.
	maxKeptCounts = 4096
)

type counted struct {
	devices, phones int
	at              time.Time
}

// counter counts audiences through count, keeping each result for ttl.
// One count of an audience runs at a time: callers asking for the same
// audience while it runs wait for its result. A caller (an official)
// waits for a count at most one at a time: their next one that is not
// kept waits for the last to end, even when their request ended and it
// runs on. So one official, with any number of tabs or requests naming a
// new audience each, holds at most one of the maxConcurrentCounts slots,
// and leaves the others to everyone else. It is safe for concurrent use.
type counter struct {
	ttl   time.Duration
	now   func() time.Time
	count func(ctx context.Context, a loa.Audience) (devices, phones int, err error)
	slots chan struct{}
	group singleflight.Group

	mu    sync.Mutex
	kept  map[string]counted
	turns map[string]*turn // by caller, while one of theirs waits or counts
	// waits, when set (tests), is called when a caller waits for their turn.
	waits func(who string)
}

// turn is one caller's right to wait for a count; refs counts those
// holding or waiting for it.
type turn struct {
	ch   chan struct{}
	refs int
}

func newCounter(ttl time.Duration, now func() time.Time, count func(context.Context, loa.Audience) (int, int, error)) *counter {
	return &counter{ttl: ttl, now: now, count: count, slots: make(chan struct{}, maxConcurrentCounts), kept: map[string]counted{},
		turns: map[string]*turn{}}
}

// takeTurn waits until no other count of who's is waited for, or ctx
// ends; the caller calls the returned release when their count ends.
func (c *counter) takeTurn(ctx context.Context, who string) (release func(), err error) {
	c.mu.Lock()
	t := c.turns[who]
	if t == nil {
		t = &turn{ch: make(chan struct{}, 1)}
		c.turns[who] = t
	}
	t.refs++
	waits := c.waits
	c.mu.Unlock()
	drop := func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if t.refs--; t.refs == 0 {
			delete(c.turns, who)
		}
	}
	select {
	case t.ch <- struct{}{}:
		return func() { <-t.ch; drop() }, nil
	default:
	}
	if waits != nil {
		waits(who)
	}
	select {
	case t.ch <- struct{}{}:
		return func() { <-t.ch; drop() }, nil
	case <-ctx.Done():
		drop()
		return nil, ctx.Err()
	}
}

// countKey names an audience whatever the order of its lists.
func countKey(a loa.Audience) string {
	a.Areas, a.Topics, a.Accounts, a.Roles = sortedCopy(a.Areas), sortedCopy(a.Topics), sortedCopy(a.Accounts), sortedCopy(a.Roles)
	a.AreaTopics = false // how it is sent, not whom it reaches
	b, _ := json.Marshal(a)
	return string(b)
}

func sortedCopy(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return slices.Compact(slices.Sorted(slices.Values(s)))
}

// kept returns the audience's count if one younger than ttl is kept.
func (c *counter) fresh(key string) (counted, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.kept[key]
	if !ok || c.now().Sub(k.at) >= c.ttl {
		return counted{}, false
	}
	return k, true
}

func (c *counter) keep(key string, k counted) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.kept) >= maxKeptCounts {
		now := c.now()
		for key, old := range c.kept {
			if now.Sub(old.at) >= c.ttl {
				delete(c.kept, key)
			}
		}
		if len(c.kept) >= maxKeptCounts {
			clear(c.kept)
		}
	}
	c.kept[key] = k
}

// peek returns a kept count of a younger than ttl, without counting.
func (c *counter) peek(a loa.Audience) (counted, bool) { return c.fresh(countKey(a)) }

// get returns a count of a no older than ttl, counting it when none is
// kept. The count runs on, up to countTimeout, when ctx ends before it
// does: the callers waiting with it, and those asking next, use it. who
// names the caller ("" for none: the service's own reads): a count that
// is not kept waits for who's turn (takeTurn), held until the count ends.
// Errors: ctx's, or the count's.
func (c *counter) get(ctx context.Context, who string, a loa.Audience) (counted, error) {
	key := countKey(a)
	if k, ok := c.fresh(key); ok {
		return k, nil
	}
	release := func() {}
	if who != "" {
		var err error
		if release, err = c.takeTurn(ctx, who); err != nil {
			return counted{}, err
		}
		if k, ok := c.fresh(key); ok { // counted while who waited
			release()
			return k, nil
		}
	}
	ch := c.group.DoChan(key, func() (any, error) {
		if k, ok := c.fresh(key); ok { // counted while this caller looked
			return k, nil
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), countTimeout)
		defer cancel()
		select {
		case c.slots <- struct{}{}:
		case <-cctx.Done():
			return nil, cctx.Err()
		}
		defer func() { <-c.slots }()
		devices, phones, err := c.count(cctx, a)
		if err != nil {
			return nil, err
		}
		k := counted{devices: devices, phones: phones, at: c.now().UTC()}
		c.keep(key, k)
		return k, nil
	})
	// The turn is released when the count ends, not when ctx does.
	done := make(chan singleflight.Result, 1)
	go func() {
		r := <-ch
		release()
		done <- r
	}()
	select {
	case r := <-done:
		if r.Err != nil {
			return counted{}, r.Err
		}
		return r.Val.(counted), nil
	case <-ctx.Done():
		return counted{}, ctx.Err()
	}
}
