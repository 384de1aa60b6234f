package dispatcher

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loa-hub/loa/internal/topics"
)

// Codes and alerts go ahead of bulk work for the dispatcher's CPU and
// connections too, not only at the providers (rate-limit reserves, FCM's
// reserved streams). Go's scheduler, PostgreSQL and Redis serve whoever
// asks, in turn: with a broadcast's 256 senders, its claims, marks and
// ledger writes keeping every core busy, a code's own few milliseconds of
// work would queue behind theirs. So the urgent lanes (otp, alert) count
// the work they hold that still needs the dispatcher — a message from when
// it is fetched until it is handled, less the time its sends spend at the
// provider (rate limiter, breaker, provider call: waits that use no CPU
// here) and in back-off after a failure — and bulk work does not start
// while that count is above zero: each bulk sender before each send, the
// planner of a bulk plan before each page, the ledger before each batch.
// Bulk work that started goes on; what waits holds nothing a code needs.
//
// Bulk waits at most BulkYield each time, so a broadcast slows while codes
// and alerts flow and never stops: with urgent work always pending, each
// of the bulk lane's senders still sends once per BulkYield.
type urgency struct {
	maxWait time.Duration // 0: bulk never waits

	pending atomic.Int64
	mu      sync.Mutex
	clear   chan struct{} // closed when pending falls to zero
	parked  int           // bulk work waiting now
	parks   int64         // bulk work that waited, in all
}

func newUrgency(maxWait time.Duration) *urgency {
	c := make(chan struct{})
	close(c)
	return &urgency{maxWait: maxWait, clear: c}
}

// add changes the count of urgent work by delta.
func (u *urgency) add(delta int) {
	u.mu.Lock()
	was := u.pending.Load()
	now := u.pending.Add(int64(delta))
	switch {
	case was <= 0 && now > 0:
		u.clear = make(chan struct{})
	case was > 0 && now <= 0:
		close(u.clear)
	}
	u.mu.Unlock()
}

// yield waits while urgent work is pending, at most maxWait, or until ctx
// ends. Bulk work calls it before it starts.
func (u *urgency) yield(ctx context.Context) {
	if u == nil || u.maxWait <= 0 || u.pending.Load() <= 0 {
		return
	}
	u.mu.Lock()
	if u.pending.Load() <= 0 {
		u.mu.Unlock()
		return
	}
	clear := u.clear
	u.parked++
	u.parks++
	u.mu.Unlock()
	t := time.NewTimer(u.maxWait)
	select {
	case <-clear:
	case <-t.C:
	case <-ctx.Done():
	}
	t.Stop()
	u.mu.Lock()
	u.parked--
	u.mu.Unlock()
}

// waiting returns how much bulk work is waiting now.
func (u *urgency) waiting() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.parked
}

// urgentLane reports whether a lane's work goes ahead of bulk work.
func urgentLane(l topics.Lane) bool { return l == topics.LaneOTP || l == topics.LaneAlert }

// pendingHook is the consumer's count of a lane's work: the urgency's
// for urgent lanes, none for the others.
func (d *Dispatcher) pendingHook(l topics.Lane) func(int) {
	if !urgentLane(l) {
		return nil
	}
	return d.urgency.add
}

// yield makes work of lane l wait for urgent work (see urgency); only
// bulk work waits.
func (d *Dispatcher) yield(ctx context.Context, l topics.Lane) {
	if l == topics.LaneBulk {
		d.urgency.yield(ctx)
	}
}

// atProvider brackets an urgent send's time with the provider (rate
// limiter, breaker, the call itself): it uses no CPU here, so bulk work
// need not wait for it. The returned func ends it.
func (d *Dispatcher) atProvider(l topics.Lane) func() {
	if !urgentLane(l) {
		return func() {}
	}
	d.urgency.add(-1)
	return func() { d.urgency.add(1) }
}

// claimsOf, markerOf: the claims and the marker of lane l's sends.
func (d *Dispatcher) claimsOf(l topics.Lane) *Claims {
	if urgentLane(l) && d.urgentClaims != nil {
		return d.urgentClaims
	}
	return d.claims
}

func (d *Dispatcher) markerOf(l topics.Lane) *marker {
	if urgentLane(l) && d.urgentMarker != nil {
		return d.urgentMarker
	}
	return d.marker
}

// attemptWAL is where the attempts of codes and alerts are written ahead.
func (d *Dispatcher) attemptWAL() sentLog {
	if d.urgentWAL != nil {
		return d.urgentWAL
	}
	return d.wal
}
