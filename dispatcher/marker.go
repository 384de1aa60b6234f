package dispatcher

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loa-hub/loa/internal/metrics"
	"github.com/loa-hub/loa/internal/sqlstore"
)

// A delivery the provider accepted is recorded as sent at once, not when
// its batch ends: senders hand it to the marker, which records sends in
// small groups — a few flushers, each taking what has queued for it (up
// to markGroup) — first in the write-ahead record (PostgreSQL), then as
// sent claims in Redis. A dispatcher killed mid-broadcast has therefore at
// most the sends that were in flight, or queued or being recorded here, to
// send again; loa_sends_unmarked shows that window (a send counts from its
// start until it is recorded, or settled as not sent). The queues are
// bounded (markGroup each), so when recording is slow, sending waits for
// it rather than letting the window grow.
//
// A write-ahead row holds one event's keys, and each group is a statement
// and a commit. So each flusher has a queue of its own, an event's marks
// always go to the same one, and there are few flushers with large
// groups: with some 30 fan-out batches in flight, four flushers sharing
// one queue of groups of 64 wrote a broadcast of 100,000 pushes as ~2,000
// commits of ~33,000 rows (2.8 keys a row); four with queues of their own,
// ~3,500 commits of ~18,000 rows; two of groups of 128 take each group
// from half the events, in half as many commits.
//
// The bulk lane's flushers also wait up to bulkMarkLinger for a group to
// fill. When the provider answers after some milliseconds, a broadcast's
// answers come spread out rather than a batch's at once, and a flusher
// that took only what had queued since its last write recorded 100,000
// pushes in 2,300–4,600 groups of 22–44 at 20 ms of latency (each a
// statement, a commit and a Redis round trip); waiting 5 ms, in about
// 1,400. The wait does not widen the window above: a group is still at
// most markGroup, and its queue too.
const (
	markGroup    = 128
	markFlushers = 2
	// bulkMarkLinger is how long the bulk lane's flushers wait for a
	// group to fill (see marker.gather); the urgent lanes' marker records
	// at once: a code's or an alert's mark is on its way's critical path.
	bulkMarkLinger = 5 * time.Millisecond
)

// sentLog is the write-ahead record of sends. *sqlstore.DB implements it.
type sentLog interface {
	LogSent(ctx context.Context, groups []sqlstore.SentGroup, at time.Time) error
	SentKeys(ctx context.Context, eventID string) ([]byte, error)
}

// mark is one accepted send to record.
type mark struct {
	eventID string
	key     deliveryKey
	rkey    string
	// done is called once the send is recorded (in the write-ahead record,
	// or else in Redis), or when the marker gives up on it (stopping); it
	// must not block. A fan-out's sends set batch and index instead, which
	// settles delivery index of batch then (see settled): a push's mark
	// then needs no closure of its own.
	done  func()
	batch *batch
	index int
}

// settled calls m's done, or settles its batch's delivery.
func (m mark) settled() {
	if m.batch != nil {
		m.batch.settled(m.index)
		return
	}
	m.done()
}

// marker records accepted sends. Start it with run; add is safe for
// concurrent use.
type marker struct {
	claims  *Claims
	wal     sentLog // nil: no write-ahead record (no store)
	metrics *metrics.Metrics
	log     *slog.Logger
	now     func() time.Time

	in []chan mark // a queue a flusher; an event's marks go to one (queueOf)
	// linger is how long a flusher waits for a group to fill before
	// recording it (see gather); 0 records what is queued at once.
	linger time.Duration
	stop   chan struct{} // closed when the marker no longer takes marks

	mu      sync.Mutex
	backlog []pendingMark // marks Redis has not taken yet
	wake    chan struct{}
	// unmarked counts sends started and not yet recorded (begin to
	// recorded or notSent), shared with the marker's siblings.
	unmarked *atomic.Int64
	// groups and marks count what flush recorded, logged when the marker
	// stops: how full its groups were.
	groups, marks atomic.Int64
}

func newMarker(claims *Claims, wal sentLog, m *metrics.Metrics, log *slog.Logger, now func() time.Time) *marker {
	in := make([]chan mark, markFlushers)
	for i := range in {
		in[i] = make(chan mark, markGroup)
	}
	return &marker{claims: claims, wal: wal, metrics: m, log: log, now: now,
		in: in, stop: make(chan struct{}), wake: make(chan struct{}, 1), unmarked: new(atomic.Int64)}
}

// queueOf is the queue of the flusher that records eventID's marks.
func (mk *marker) queueOf(eventID string) chan mark {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(eventID); i++ {
		h = (h ^ uint32(eventID[i])) * 16777619
	}
	return mk.in[h%uint32(len(mk.in))]
}

// sibling returns a marker of its own queue and flushers recording
// through claims and wal, counting its unmarked sends with mk's: the
// urgent lanes' sends are recorded by one, never queued behind a
// broadcast's.
func (mk *marker) sibling(claims *Claims, wal sentLog, log *slog.Logger) *marker {
	s := newMarker(claims, wal, mk.metrics, log, mk.now)
	s.unmarked = mk.unmarked
	return s
}

// begin counts a send about to start; it ends with add (accepted) or
// notSent.
func (mk *marker) begin() {
	mk.unmarked.Add(1)
	mk.metrics.UnmarkedSends(1)
}

// notSent settles a begun send the provider did not accept.
func (mk *marker) notSent() { mk.recorded(1) }

// add queues a begun send the provider accepted, to be recorded. It waits
// while the queue is full. After the marker stopped it calls done at once:
// the send stays unmarked.
func (mk *marker) add(m mark) {
	select {
	case <-mk.stop:
		m.settled()
		return
	default:
	}
	select {
	case mk.queueOf(m.eventID) <- m:
	case <-mk.stop:
		m.settled()
	}
}

// run records marks until ctx ends, then stops taking them and records
// what it has. Redis writes that fail are retried until they succeed or
// ctx ends; once ctx has ended, a failed write gives up. ctx should end
// after the senders have stopped, so that every mark is recorded.
func (mk *marker) run(ctx context.Context) {
	retried := make(chan struct{})
	go func() { mk.retryMarks(ctx); close(retried) }()
	var wg sync.WaitGroup
	for _, in := range mk.in {
		wg.Add(1)
		go func() {
			defer wg.Done()
			group := make([]mark, 0, markGroup)
			var gather *time.Timer
			if mk.linger > 0 {
				gather = time.NewTimer(mk.linger)
				gather.Stop()
			}
			for {
				var m mark
				select {
				case m = <-in:
				case <-ctx.Done():
					return
				}
				group = append(group[:0], m)
			drain:
				for len(group) < markGroup {
					select {
					case m := <-in:
						group = append(group, m)
					default:
						break drain
					}
				}
				group = mk.gather(ctx, in, group, gather)
				mk.flush(ctx, group)
			}
		}()
	}
	wg.Wait()
	close(mk.stop)
	// What was queued before the stop: record it.
	for _, in := range mk.in {
		for done := false; !done; {
			select {
			case m := <-in:
				mk.flush(ctx, []mark{m})
			default:
				done = true
			}
		}
	}
	select {
	case mk.wake <- struct{}{}:
	default:
	}
	<-retried
	if n := mk.groups.Load(); n > 0 {
		mk.log.Info("marker stopped", slog.Int64("groups", n), slog.Int64("marks", mk.marks.Load()))
	}
}

// gather adds to a group short of markGroup the marks that reach in
// within mk.linger, so that a group is one write-ahead statement and
// commit, and one Redis round trip, for more marks: when the provider's
// answers come spread out (20 ms of latency spreads a batch's answers
// over its sends), each flush otherwise takes the few marks queued since
// the last. It returns at once when the group fills, when ctx ends, or
// without a linger (t is nil). The marks waiting here and in the queue
// are still at most 2 × markGroup a flusher, as without it.
func (mk *marker) gather(ctx context.Context, in chan mark, group []mark, t *time.Timer) []mark {
	if t == nil || len(group) >= markGroup {
		return group
	}
	t.Reset(mk.linger)
	defer t.Stop()
	for len(group) < markGroup {
		select {
		case m := <-in:
			group = append(group, m)
		case <-t.C:
			return group
		case <-ctx.Done():
			return group
		}
	}
	return group
}

// flush records one group: write-ahead first, then Redis. A group in the
// write-ahead record is done: its senders need not wait for Redis. Marks
// Redis does not take (it is away) wait in the backlog, retried by
// retryMarks, so the flushers go on recording.
func (mk *marker) flush(ctx context.Context, group []mark) {
	mk.groups.Add(1)
	mk.marks.Add(int64(len(group)))
	logged := mk.writeAhead(ctx, group)
	if logged {
		mk.recorded(len(group))
		for _, m := range group {
			m.settled()
		}
	}
	rkeys := make([]string, len(group))
	for i, m := range group {
		rkeys[i] = m.rkey
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	err := mk.claims.MarkSentKeys(wctx, rkeys)
	cancel()
	if err != nil {
		mk.log.Warn("marking sends in Redis failed; retrying", slog.Int("sends", len(group)), slog.Any("error", err))
		mk.mu.Lock()
		for _, m := range group {
			mk.backlog = append(mk.backlog, pendingMark{mark: m, logged: logged})
		}
		mk.mu.Unlock()
		select {
		case mk.wake <- struct{}{}:
		default:
		}
		return
	}
	if !logged {
		mk.recorded(len(group))
		for _, m := range group {
			m.settled()
		}
	}
}

// pendingMark is a mark Redis did not take yet.
type pendingMark struct {
	mark
	logged bool // in the write-ahead record (and done) already
}

// retryMarks marks the backlog in Redis until it is empty, backing off
// while Redis is away, until ctx ends; then it tries once more and gives
// up on what is left.
func (mk *marker) retryMarks(ctx context.Context) {
	backoff := 50 * time.Millisecond
	for {
		select {
		case <-mk.wake:
		case <-ctx.Done():
		}
		for {
			mk.mu.Lock()
			pending := mk.backlog
			mk.backlog = nil
			mk.mu.Unlock()
			if len(pending) == 0 {
				break
			}
			var err error
			for len(pending) > 0 {
				chunk := pending[:min(512, len(pending))]
				rkeys := make([]string, len(chunk))
				for i, p := range chunk {
					rkeys[i] = p.rkey
				}
				wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
				err = mk.claims.MarkSentKeys(wctx, rkeys)
				cancel()
				if err != nil {
					break
				}
				for _, p := range chunk {
					if !p.logged {
						mk.recorded(1)
						p.settled()
					}
				}
				pending = pending[len(chunk):]
			}
			if err == nil {
				backoff = 50 * time.Millisecond
				continue
			}
			if ctx.Err() != nil {
				logged := 0
				for _, p := range pending {
					if p.logged {
						logged++
					} else {
						p.settled()
					}
				}
				mk.log.Error("stopping with sends not marked in Redis", slog.Int("in_write_ahead_record", logged),
					slog.Int("recorded_nowhere", len(pending)-logged), slog.Any("error", err))
				return
			}
			mk.mu.Lock()
			mk.backlog = append(pending, mk.backlog...)
			mk.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
		}
		if ctx.Err() != nil {
			return
		}
	}
}

func (mk *marker) recorded(n int) {
	mk.unmarked.Add(-int64(n))
	mk.metrics.UnmarkedSends(-n)
}

// writeAhead writes the group to the write-ahead record, one row per
// event, retrying briefly; it reports whether the rows are committed. A
// database that stays down does not hold the marks in Redis back.
func (mk *marker) writeAhead(ctx context.Context, group []mark) bool {
	if mk.wal == nil {
		return false
	}
	var rows []sqlstore.SentGroup
	at := map[string]int{}
	for _, m := range group {
		i, ok := at[m.eventID]
		if !ok {
			i = len(rows)
			at[m.eventID] = i
			rows = append(rows, sqlstore.SentGroup{EventID: m.eventID, Keys: make([]byte, 0, len(group)*sqlstore.SentKeySize)})
		}
		rows[i].Keys = append(rows[i].Keys, m.key[:]...)
	}
	var err error
	for try, backoff := 0, 50*time.Millisecond; try < 3; try, backoff = try+1, 4*backoff {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err = mk.wal.LogSent(wctx, rows, mk.now())
		cancel()
		if err == nil {
			return true
		}
		select {
		case <-ctx.Done():
			try = 3
		case <-time.After(backoff):
		}
	}
	mk.metrics.WriteAheadFailed(len(group))
	mk.log.Error("write-ahead record of sends failed; they are marked in Redis only", slog.Int("sends", len(group)), slog.Any("error", err))
	return false
}

// sentKeys is the set of delivery keys the write-ahead record holds for
// an event.
func sentKeys(b []byte) map[deliveryKey]struct{} {
	out := make(map[deliveryKey]struct{}, len(b)/sqlstore.SentKeySize)
	for len(b) >= sqlstore.SentKeySize {
		out[deliveryKey(b[:sqlstore.SentKeySize])] = struct{}{}
		b = b[sqlstore.SentKeySize:]
	}
	return out
}
