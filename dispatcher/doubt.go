package dispatcher

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

// Codes and alerts are sent at most once, even when their sender dies in
// the middle of a send. Before the provider is called for such a
// delivery (after any wait for its turn), its attempt is written ahead (a row of the write-ahead record under
// "attempt:<event>"; a code's is recorded in its Redis claim first and its
// row written behind the call, see attempt); when the provider refused it, or it was not
// attempted after all, that is written too ("unsent:<event>"), and
// when the provider took it the marker records it sent as for any send. A
// sender that takes a delivery over from one that died (or handles its
// message again after Redis lost its marks) and finds an attempt that is
// neither sent nor unsent (more attempts than unsent ones, whatever the
// retry tier) does not send it: the send had begun, and the
// provider may have taken it. The delivery is recorded failed with the
// class in_doubt and a dead letter saying why, and its claim is marked
// "d", so that no redelivery sends it either. Loa never repeats a code or
// an alert; it does not lose one silently either: the ledger, the
// alert's counts and the dead letters show every delivery in doubt (at
// most the sends that were under way at the crash, see
// loa_sends_unmarked), and a person acts on it — asks for a new code,
// issues an update of the alert.
//
// A provider call that fails without the provider saying it did not take
// the message (no answer within the timeout, a connection lost mid-call:
// channels.MaybeDelivered) leaves the same doubt without a crash. Such a
// code or alert is not retried either, in place, in a retry tier or at
// another SMS gateway: it is recorded failed (in_doubt) with a dead letter
// at once, and its claim marked "d". Other lanes retry it: a broadcast
// may then repeat what such a provider did deliver.

// ClassInDoubt is the class of a delivery whose send had begun when its
// sender died: recorded failed, never sent again.
const ClassInDoubt channels.Class = "in_doubt"

// atMostOnce reports whether a lane's deliveries are sent at most once
// across crashes (see above): codes and alerts.
func atMostOnce(l topics.Lane) bool { return l == topics.LaneOTP || l == topics.LaneAlert }

// attemptEvent and unsentEvent name the write-ahead rows of an event's
// attempts, and of those that came to nothing. Retries of the event (its
// retry tiers) keep its id, so its rows count every try.
func attemptEvent(env producer.Envelope) string { return "attempt:" + env.ID }

func unsentEvent(env producer.Envelope) string { return "unsent:" + env.ID }

// attempt is the write-ahead record of one delivery's attempt on an
// at-most-once lane, written when the channel stack is about to call the
// provider (channels.Calling): a send that is still waiting for its turn
// when its sender dies is not in doubt, only one the provider may have.
//
// A code's attempt (claims set) is recorded first in Redis, in its
// claim: a code is claimed calling ("a:", see Claims.MarkCalling) in its
// claim's own round trip, and the provider is called as soon as its turn
// comes; its row in the write-ahead record is queued behind the call, in
// the attempt log that also writes the code's sent mark (or its unsent
// record) after it, so the row is committed before the code's outcome is
// — and its Kafka offset with it. A sender that takes over a calling
// claim, or handles its message again, takes the code for in doubt unless
// the record says it was sent, even when the row was not committed (the
// sender died first). So a code waits for no round trip of its own
// between its claim and its provider call; a code that waited long for
// its turn (a third of the lease) has its claim checked and renewed
// first, and is not sent if the claim is no longer its sender's. The cost:
// a sender that dies between a code's claim and its call leaves the code
// in doubt rather than sent by the next, and a Redis that loses its data
// while a sender dies in the same moment could let a code be sent again.
// LOA_CODE_ATTEMPT_FIRST=postgres commits the row before the call
// instead, as for an alert; so does a code whose claim could not be
// checked (Redis away).
type attempt struct {
	d       *Dispatcher
	env     producer.Envelope
	key     deliveryKey
	once    sync.Once
	written bool
	// err, once begun: the send must not go on (the claim is not the
	// sender's any more).
	err error
	// claims, rkey and owner: the code's claim, taken calling at
	// claimedAt, when its attempt is recorded in Redis first.
	claims      *Claims
	rkey, owner string
	claimedAt   time.Time
	// behind is closed once the row queued behind the call is written
	// (or its write failed); nil when it was written before the call.
	behind chan struct{}
	// clock observes when the send got its turn and its attempt was
	// written.
	clock *stageClock
}

// errClaimLost is an attempt's error when the delivery's claim is no
// longer its sender's at the moment of the call.
var errClaimLost = errors.New("dispatcher: the delivery's claim lapsed before its provider call; not sent, handled again")

// attempting returns ctx for the send of delivery k of env, which writes
// the attempt ahead of the provider call, and the attempt; ctx itself and
// nil when the lane is not at-most-once or there is no write-ahead record.
//
// A failure to write (PostgreSQL away) is logged and the send goes on: an
// alert is not held back for the record, and a crash then may repeat it,
// as any send whose record is in Redis only.
func (d *Dispatcher) attempting(ctx context.Context, env producer.Envelope, k deliveryKey) (context.Context, *attempt) {
	if d.wal == nil || !atMostOnce(env.Lane) {
		return ctx, nil
	}
	a := &attempt{d: d, env: env, key: k}
	return channels.WithCalling(ctx, a.begin), a
}

// callsAtClaim reports whether env's delivery is claimed calling at once,
// its attempt recorded in its claim (see attempt): a code's, unless the
// configuration asks for the row first.
func (d *Dispatcher) callsAtClaim(env producer.Envelope) bool {
	return d.wal != nil && env.Lane == topics.LaneOTP && !d.cfg.CodeAttemptRowFirst
}

// attemptingClaimed is attempting for a code held by owner's claim rkey
// in claims, taken at claimedAt: when it was claimed calling, its row is
// written behind the call (see attempt).
func (d *Dispatcher) attemptingClaimed(ctx context.Context, env producer.Envelope, k deliveryKey, claims *Claims, rkey, owner string, claimedAt time.Time) (context.Context, *attempt) {
	ctx, a := d.attempting(ctx, env, k)
	if a != nil && d.callsAtClaim(env) {
		a.claims, a.rkey, a.owner, a.claimedAt = claims, rkey, owner, claimedAt
	}
	return ctx, a
}

func (a *attempt) begin() error {
	a.once.Do(func() {
		// The send steps out of the urgent work while at its provider
		// (see urgency); writing its attempt is the dispatcher's work.
		a.d.urgency.add(1)
		defer a.d.urgency.add(-1)
		a.clock.mark(stageCalling)
		if a.claims != nil && a.inClaim() {
			a.behind = make(chan struct{})
			done := a.d.attempts.queue(a.d, []sqlstore.SentGroup{{EventID: attemptEvent(a.env), Keys: a.key[:]}})
			go func() {
				err := <-done
				if err != nil {
					a.d.log.Warn("write-ahead record of a code's attempt failed; its claim in Redis still says the send began", slog.Any("error", err))
				}
				a.written = err == nil // read after behind is closed
				close(a.behind)
			}()
			a.clock.mark(stageWritten)
			return
		}
		if a.err != nil {
			return
		}
		a.written = a.d.logKeys(attemptEvent(a.env), a.key,
			"write-ahead record of an attempt failed; a crash during this send may repeat it")
		a.clock.mark(stageWritten)
	})
	return a.err
}

// inClaim reports whether the code's claim records its attempt: at once
// when it was claimed a moment ago; when it waited a third of its lease
// or more for its turn, after a round trip that checks the claim is still
// its sender's and renews it (MarkCalling) — if it is not, a.err says the
// code must not be sent. False when Redis could not be asked: the row is
// then committed first.
func (a *attempt) inClaim() bool {
	if a.d.now().Sub(a.claimedAt) < a.claims.Lease/3 {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	held, err := a.claims.MarkCalling(ctx, a.rkey, a.owner)
	cancel()
	switch {
	case err != nil:
		a.d.log.Warn("checking a code's claim before its call failed; writing its attempt ahead in PostgreSQL", slog.Any("error", err))
		return false
	case !held:
		a.err = errClaimLost
		return false
	}
	return true
}

// wait returns once the attempt's row queued behind the call is written
// (at once when there is none): before the delivery's outcome, and so its
// Kafka offset, is committed.
func (a *attempt) wait() {
	if a != nil && a.behind != nil {
		<-a.behind
	}
}

// unsent records that the attempt did not reach the provider after all,
// or the provider refused it, so that handling the message again sends
// it. Nothing is written when no attempt was.
func (a *attempt) unsent() {
	a.wait()
	if a == nil || !a.written {
		return
	}
	a.d.logKeys(unsentEvent(a.env), a.key,
		"write-ahead record of an unsent attempt failed; if the message is handled again, it is taken for in doubt")
}

// logKeys writes one key under event, reporting whether it is committed.
// Concurrent calls are written together (see attemptLog).
func (d *Dispatcher) logKeys(event string, k deliveryKey, failure string) bool {
	if err := d.attempts.write(d, event, k); err != nil {
		d.log.Warn(failure, slog.Any("error", err))
		return false
	}
	return true
}

// attemptLog writes the attempts (and unsent records) of concurrent
// senders in one statement, group-commit style: the first caller writes
// what has queued, again and again while more comes, and each caller
// waits for the write that holds its rows. A lane's senders (an alert's
// 128) then cost a few statements, not one each. The urgent lanes'
// marker writes their sends through it too (attemptLogWAL): a code's
// sent mark goes in the statement of other codes' attempts, not in one
// of its own.
type attemptLog struct {
	mu      sync.Mutex
	pending []attemptRows
	writing bool
}

// attemptRows are one caller's rows, as one event's keys each.
type attemptRows struct {
	groups []sqlstore.SentGroup
	done   chan error
}

func (l *attemptLog) write(d *Dispatcher, event string, k deliveryKey) error {
	return l.writeGroups(d, []sqlstore.SentGroup{{EventID: event, Keys: k[:]}})
}

// writeGroups writes groups with what other callers have queued, and
// returns once they are committed (or the write failed).
func (l *attemptLog) writeGroups(d *Dispatcher, groups []sqlstore.SentGroup) error {
	row := attemptRows{groups: groups, done: make(chan error, 1)}
	l.mu.Lock()
	l.pending = append(l.pending, row)
	if l.writing {
		l.mu.Unlock()
		return <-row.done
	}
	l.writing = true
	l.mu.Unlock()
	l.drain(d)
	return <-row.done
}

// queue is writeGroups without the wait: the returned channel has the
// write's outcome. Rows queued later are written in the same statement or
// a later one, never before.
func (l *attemptLog) queue(d *Dispatcher, groups []sqlstore.SentGroup) <-chan error {
	row := attemptRows{groups: groups, done: make(chan error, 1)}
	l.mu.Lock()
	l.pending = append(l.pending, row)
	if l.writing {
		l.mu.Unlock()
		return row.done
	}
	l.writing = true
	l.mu.Unlock()
	go l.drain(d)
	return row.done
}

// drain writes what has queued, again and again while more comes, by
// the caller that set writing.
func (l *attemptLog) drain(d *Dispatcher) {
	l.mu.Lock()
	for {
		rows := l.pending
		l.pending = nil
		l.mu.Unlock()
		var groups []sqlstore.SentGroup
		at := map[string]int{}
		for _, r := range rows {
			for _, g := range r.groups {
				i, ok := at[g.EventID]
				if !ok {
					i = len(groups)
					at[g.EventID] = i
					groups = append(groups, sqlstore.SentGroup{EventID: g.EventID})
				}
				groups[i].Keys = append(groups[i].Keys, g.Keys...)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := d.attemptWAL().LogSent(ctx, groups, d.now())
		cancel()
		for _, r := range rows {
			r.done <- err
		}
		l.mu.Lock()
		if len(l.pending) == 0 {
			l.writing = false
			l.mu.Unlock()
			return
		}
	}
}

// attemptLogWAL is the urgent lanes' write-ahead record of sends as their
// marker sees it: written through the attempt log, read from the record
// itself.
type attemptLogWAL struct{ d *Dispatcher }

func (w attemptLogWAL) LogSent(_ context.Context, groups []sqlstore.SentGroup, _ time.Time) error {
	return w.d.attempts.writeGroups(w.d, groups)
}

func (w attemptLogWAL) SentKeys(ctx context.Context, eventID string) ([]byte, error) {
	return w.d.attemptWAL().SentKeys(ctx, eventID)
}

// inDoubt reports whether delivery k of env had an attempt that is
// neither recorded sent (the caller checked) nor unsent: more attempts
// than unsent ones.
func (w *walCheck) inDoubt(ctx context.Context, d *Dispatcher, env producer.Envelope, k deliveryKey) (bool, error) {
	if d.wal == nil || !atMostOnce(env.Lane) {
		return false, nil
	}
	if !w.attemptsLoaded {
		a, err := d.wal.SentKeys(ctx, attemptEvent(env))
		if err != nil {
			return false, err
		}
		u, err := d.wal.SentKeys(ctx, unsentEvent(env))
		if err != nil {
			return false, err
		}
		w.attempts, w.attemptsLoaded = keyCounts(a), true
		for k, n := range keyCounts(u) {
			w.attempts[k] -= n
		}
	}
	return w.attempts[k] > 0, nil
}

// keyCounts counts each delivery key in concatenated keys.
func keyCounts(b []byte) map[deliveryKey]int {
	out := map[deliveryKey]int{}
	for len(b) >= sqlstore.SentKeySize {
		out[deliveryKey(b[:sqlstore.SentKeySize])]++
		b = b[sqlstore.SentKeySize:]
	}
	return out
}

// doubted is the outcome of a delivery found in doubt: failed, class
// in_doubt; the first finding (first) gets a dead letter, a later one
// (the claim already says "d") only its receipt again.
func doubted(first bool) outcome {
	return outcome{status: loa.StatusFailed, class: ClassInDoubt, deadLetter: first, duplicate: !first,
		reason: "in doubt: its sender stopped in the middle of the send, so the provider may or may not have it; " +
			"a code or an alert is never sent twice, so it is not sent again"}
}

// noAnswer is the outcome of a code's or an alert's send that failed in a
// way that leaves it maybe delivered (channels.MaybeDelivered): failed,
// class in_doubt, with a dead letter; never sent again.
func noAnswer(o outcome) outcome {
	o.status, o.class, o.deadLetter, o.redelivery, o.unanswered = loa.StatusFailed, ClassInDoubt, true, nil, true
	o.reason = "in doubt: the provider call failed without an answer saying the message was not taken (" + o.reason +
		"), so the provider may or may not have it; a code or an alert is never sent twice, so it is not sent again"
	return o
}

// markDoubted marks the claims of deliveries found in doubt, or left in
// doubt by their send, so that no redelivery sends them, and reports them.
func (d *Dispatcher) markDoubted(ctx context.Context, notificationID string, rkeys []string) {
	if len(rkeys) == 0 {
		return
	}
	d.log.Warn("deliveries in doubt (a sender stopped mid-send, or the provider did not answer): recorded failed (in_doubt), not sent again",
		slog.String("notification_id", notificationID), slog.Int("deliveries", len(rkeys)))
	if err := d.claims.MarkInDoubtKeys(ctx, rkeys); err != nil {
		d.log.Warn("marking deliveries in doubt in Redis failed; the write-ahead record still holds their attempts", slog.Any("error", err))
	}
}

// reportUnanswered logs the deliveries of one message whose provider
// calls failed without an answer: resent ones were tried again (their
// recipients may get them twice), inDoubt ones recorded in doubt.
func (d *Dispatcher) reportUnanswered(env producer.Envelope, notificationID string, outcomes []outcome) {
	resent, inDoubt := 0, 0
	for _, o := range outcomes {
		resent += o.resent
		if o.unanswered {
			inDoubt++
		}
	}
	if resent == 0 && inDoubt == 0 {
		return
	}
	d.log.Warn("provider calls failed without an answer; the provider may have had those messages",
		slog.String("lane", string(env.Lane)), slog.String("notification_id", notificationID),
		slog.Int("sent_again", resent), slog.Int("in_doubt", inDoubt))
}
