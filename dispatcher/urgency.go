package dispatcher

import (
	"sync"
	"sync/atomic"

	"github.com/loa-hub/loa/internal/topics"
)

// Codes and alerts go ahead of bulk work for the dispatcher's CPU and
// connections too, not only at the providers (rate-limit reserves, FCM's
// reserved streams). Go's scheduler, PostgreSQL and Redis serve whoever
// asks, in turn: with a broadcast's 256 senders, their claims, marks and
// receipts keeping every core busy, a code's own few milliseconds of work
// would queue behind theirs. So the urgent lanes (otp, alert) count the
// work they hold that still needs the dispatcher — a message from when it
// is fetched until it is handled, less the time its sends spend at the
// provider (rate limiter, breaker, provider call: waits that use no CPU
// here) and in back-off after a failure — and while that count is above
// zero, at most BulkShare of the bulk lane's sends are under way: a bulk
// sender waits for a turn before each send. Sends already under way
// finish; a sender that waits holds nothing a code needs (its batch's
// claims are renewed). The bulk lane always keeps BulkShare sends going,
// so a broadcast slows while codes and alerts flow and never stops; with
// no urgent work in hand its senders all send.
type urgency struct {
	share int // bulk sends under way while urgent work is pending; 0: no limit

	pending atomic.Int64
	mu      sync.Mutex
	turn    *sync.Cond // signalled when a bulk send ends or pending falls to zero
	bulk    int        // bulk sends under way
	parked  int        // bulk senders waiting for a turn now
}

func newUrgency(share int) *urgency {
	u := &urgency{share: share}
	u.turn = sync.NewCond(&u.mu)
	return u
}

// add changes the count of urgent work by delta.
func (u *urgency) add(delta int) {
	if u.pending.Add(int64(delta)) <= 0 && delta < 0 {
		u.mu.Lock()
		if u.parked > 0 {
			u.turn.Broadcast()
		}
		u.mu.Unlock()
	}
}

// acquire waits for a turn of a bulk send: at once unless urgent work is
// pending and BulkShare bulk sends are under way. Each acquire is ended by
// release.
func (u *urgency) acquire() {
	if u == nil || u.share <= 0 {
		return
	}
	u.mu.Lock()
	for u.pending.Load() > 0 && u.bulk >= u.share {
		u.parked++
		u.turn.Wait()
		u.parked--
	}
	u.bulk++
	u.mu.Unlock()
}

// release ends a bulk send's turn.
func (u *urgency) release() {
	if u == nil || u.share <= 0 {
		return
	}
	u.mu.Lock()
	u.bulk--
	if u.parked > 0 {
		u.turn.Signal()
	}
	u.mu.Unlock()
}

// waiting returns how many bulk senders wait for a turn now.
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
