// Package gate admits work to a resource with a fixed number of slots —
// FCM's HTTP/2 streams, an SMPP session's window — in the order of the
// lane's rank, first come first served within a rank, and keeps the last
// few slots for urgent work (codes and alerts), so a code or an alert
// never waits behind a queue of bulk sends for a slot.
package gate

import (
	"context"
	"sync"
	"time"

	"github.com/loa-hub/loa/channels"
)

// Gate is a counting semaphore that admits by rank. Safe for concurrent
// use.
type Gate struct {
	capacity int
	reserve  int

	mu    sync.Mutex
	inUse int
	queue [channels.Ranks]fifo
}

// New returns a gate of capacity slots (at least 1), of which the last
// reserve (at most capacity-1) only Urgent work may take.
func New(capacity, reserve int) *Gate {
	capacity = max(capacity, 1)
	return &Gate{capacity: capacity, reserve: min(max(reserve, 0), capacity-1)}
}

// Capacity returns the number of slots.
func (g *Gate) Capacity() int { return g.capacity }

// waiter is one caller waiting for a slot.
type waiter struct {
	ready   chan struct{}
	granted bool
	gone    bool
}

// fifo is a queue of waiters; those that gave up stay in it, marked,
// until they reach the head.
type fifo struct {
	items []*waiter
	head  int
	live  int
}

func (q *fifo) peek() *waiter {
	for q.head < len(q.items) {
		if w := q.items[q.head]; !w.gone {
			return w
		}
		q.items[q.head] = nil
		q.head++
	}
	q.items, q.head = q.items[:0], 0
	return nil
}

func (q *fifo) pop() {
	q.items[q.head] = nil
	q.head++
	q.live--
	if q.head > 1024 && q.head*2 > len(q.items) {
		q.items = append(q.items[:0], q.items[q.head:]...)
		q.head = 0
	}
}

// freeLocked reports whether work of rank r may take a slot now.
func (g *Gate) freeLocked(r channels.Rank) bool {
	if r <= channels.Urgent {
		return g.inUse < g.capacity
	}
	return g.inUse < g.capacity-g.reserve
}

// TryAcquire takes a slot for work of rank r if one is free to it and no
// work of its rank or above waits; it reports whether it took one.
func (g *Gate) TryAcquire(r channels.Rank) bool {
	r = min(max(r, channels.Urgent), channels.Bulk)
	g.mu.Lock()
	defer g.mu.Unlock()
	for q := channels.Urgent; q <= r; q++ {
		if g.queue[q].live > 0 {
			return false
		}
	}
	if !g.freeLocked(r) {
		return false
	}
	g.inUse++
	return true
}

// Acquire takes a slot for work of rank r, waiting behind the work of its
// rank and above, until ctx ends. It returns how long it waited (zero
// when a slot was free), and ctx's error when it gave up. Each successful
// Acquire must be followed by one Release.
func (g *Gate) Acquire(ctx context.Context, r channels.Rank) (time.Duration, error) {
	r = min(max(r, channels.Urgent), channels.Bulk)
	g.mu.Lock()
	ahead := false
	for q := channels.Urgent; q <= r; q++ {
		ahead = ahead || g.queue[q].live > 0
	}
	if !ahead && g.freeLocked(r) {
		g.inUse++
		g.mu.Unlock()
		return 0, nil
	}
	start := time.Now()
	w := &waiter{ready: make(chan struct{})}
	g.queue[r].items = append(g.queue[r].items, w)
	g.queue[r].live++
	g.mu.Unlock()
	select {
	case <-w.ready:
		return time.Since(start), nil
	case <-ctx.Done():
		g.mu.Lock()
		if w.granted {
			g.releaseLocked() // granted as it gave up: pass it on
		} else {
			w.gone = true
			g.queue[r].live--
		}
		g.mu.Unlock()
		return time.Since(start), ctx.Err()
	}
}

// Release frees a slot, handing it to the most urgent work waiting that
// may take it.
func (g *Gate) Release() {
	g.mu.Lock()
	g.releaseLocked()
	g.mu.Unlock()
}

func (g *Gate) releaseLocked() {
	g.inUse--
	for r := channels.Urgent; r <= channels.Bulk; r++ {
		for g.freeLocked(r) {
			w := g.queue[r].peek()
			if w == nil {
				break
			}
			g.queue[r].pop()
			w.granted = true
			g.inUse++
			close(w.ready)
		}
		if !g.freeLocked(r) {
			return // no lower rank may take one either
		}
	}
}

// Queued returns how many of rank r wait for a slot.
func (g *Gate) Queued(r channels.Rank) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.queue[r].live
}

// InUse returns how many slots are taken.
func (g *Gate) InUse() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.inUse
}
