package dispatcher

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/loa-hub/loa/producer"
)

// handleFunc handles one Kafka message, as a watermill handler does: it
// returns the records its outcome is to be published as (receipts, a
// retry, a dead letter), and the consumer publishes them and only then
// marks the message done, so its offset may be committed. An error means
// the outcome is unknown (a store or Redis failed) and the message is
// handed to the handler again after a back-off. Poison messages are the
// handler's to dead-letter (by returning the dead letter): it must not
// return an error for them.
type handleFunc func(ctx context.Context, m kafka.Message) ([]producer.Record, error)

// recordWriter publishes records and waits for Kafka's acknowledgement.
// *kafkapub.Publisher implements it.
type recordWriter interface {
	Write(ctx context.Context, recs ...producer.Record) error
}

// consumerConfig configures one consumer group member on one topic.
type consumerConfig struct {
	Brokers []string
	Topic   string
	Group   string
	// Workers is the concurrency budget. Messages with one key go to one
	// worker, in order.
	Workers int
	// ShutdownTimeout bounds how long in-flight messages may take to
	// finish once the consumer is told to stop; what is unfinished then is
	// not committed and will be redelivered.
	ShutdownTimeout time.Duration
	// CommitInterval batches offset commits. Default 500ms.
	CommitInterval time.Duration
	// Long, when set, picks messages that take long (a plan streaming a
	// million-device audience). They run in their own pool of LongWorkers
	// instead of a keyed worker, so the messages queued behind one never
	// stall the lane. They are committed, like any other, only when done.
	Long        func(kafka.Message) bool
	LongWorkers int
	// QueueBytes bounds the bytes of the messages fetched and not yet
	// handled (queued for a worker or in its hands): the fetcher waits
	// beyond it. DefaultQueueBytes when zero.
	QueueBytes int
	// OneFetch reads the topic through a groupFetcher, which fetches all
	// the partitions a broker leads in one request, instead of kafka-go's
	// Reader, which fetches each on a connection of its own.
	OneFetch bool
	// Pending, when set, counts the messages in the consumer's hands: +1
	// when one is queued for a worker, -1 when it is done (or handed
	// back); while one waits out a back-off after a failure it does not
	// count. The dispatcher's urgent lanes count their work this way.
	Pending func(delta int)
}

// pending changes the count of Pending, if any.
func (c *consumer) pending(delta int) {
	if c.cfg.Pending != nil {
		c.cfg.Pending(delta)
	}
}

// DefaultQueueBytes is what a consumer holds of messages fetched ahead
// of its workers. Without a bound, a lane whose sending is slower than
// Kafka fills every worker's queue: a million-device broadcast held
// 19 MB of fan-out batches read ahead of its 128 workers.
const DefaultQueueBytes = 4 << 20

// readerQueue is how many fetched messages a Kafka reader holds for its
// consumer to take (kafka-go's QueueCapacity; its default is 100). The
// consumer's own budget (QueueBytes) bounds what waits for the workers;
// this queue only hands messages over, so a few are enough. At 100, a
// reader whose consumer fell behind held up to 100 messages of its own —
// fan-out batches of 500 recipients, or receipts of a whole batch each:
// about 14 MB of receipts ahead of a ledger that lagged a million-device
// broadcast by seconds — and more the longer the broadcast.
const readerQueue = 8

// consumer reads one topic as a member of a group, hands messages to a
// keyed worker pool, and commits each partition's offset only up to the
// last message all of whose predecessors are done.
type consumer struct {
	cfg    consumerConfig
	handle handleFunc
	// pub publishes what the handler returns.
	pub recordWriter
	log *slog.Logger
	// noCommit, for tests, makes the consumer never commit, simulating a
	// crash after sending and before committing.
	noCommit bool
}

func (c *consumer) newReader() *kafka.Reader {
	ci := c.cfg.CommitInterval
	if ci == 0 {
		ci = 500 * time.Millisecond
	}
	return kafka.NewReader(kafka.ReaderConfig{
		Brokers:  c.cfg.Brokers,
		GroupID:  c.cfg.Group,
		Topic:    c.cfg.Topic,
		MinBytes: 1,
		MaxBytes: 1 << 20, // per fetch; what readers buffer ahead is a few of these

		QueueCapacity: readerQueue,

		// A fetch returns as soon as one byte is there (MinBytes), so
		// MaxWait adds no latency; it only sets how often an idle reader
		// asks again. A dispatcher reads about 70 partitions: at 250 ms it
		// spent 18 ms of CPU a second doing nothing (and made the broker
		// answer 280 empty fetches a second), at 1 s 7 ms.
		MaxWait:           time.Second,
		CommitInterval:    ci,
		StartOffset:       kafka.FirstOffset,
		HeartbeatInterval: 2 * time.Second,
		SessionTimeout:    20 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		ReadBackoffMin:    50 * time.Millisecond,
		ReadBackoffMax:    500 * time.Millisecond,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			c.log.Debug("kafka reader", slog.String("topic", c.cfg.Topic), slog.Any("detail", []any{msg, args}))
		}),
	})
}

// newMessageReader returns the reader Run reads through: a groupFetcher
// with OneFetch, else newReader's.
func (c *consumer) newMessageReader() (messageReader, error) {
	if !c.cfg.OneFetch {
		return c.newReader(), nil
	}
	ci := c.cfg.CommitInterval
	if ci == 0 {
		ci = 500 * time.Millisecond
	}
	f, err := newGroupFetcher(c.cfg.Brokers, c.cfg.Topic, c.cfg.Group, ci, c.log)
	if err != nil {
		return nil, err
	}
	f.start()
	return f, nil
}

// Run consumes until ctx ends, then stops fetching, lets in-flight
// messages finish within ShutdownTimeout, commits what is done and leaves
// the group. Messages fetched but not finished are handed back (their
// offsets stay uncommitted).
func (c *consumer) Run(ctx context.Context) error {
	workers := max(c.cfg.Workers, 1)
	longWorkers := 0
	if c.cfg.Long != nil {
		longWorkers = max(c.cfg.LongWorkers, 1)
	}
	r, err := c.newMessageReader()
	if err != nil {
		return err
	}
	budget := newByteBudget(c.cfg.QueueBytes)
	tr := newTracker(func(m kafka.Message) {
		if c.noCommit {
			return
		}
		// With a CommitInterval the call only queues the commit; the reader
		// flushes it on Close.
		if err := r.CommitMessages(context.Background(), m); err != nil {
			c.log.Warn("commit failed; the messages will be redelivered", slog.String("topic", m.Topic), slog.Any("error", err))
		}
	})

	// workCtx outlives ctx by up to ShutdownTimeout so in-flight sends
	// finish.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	run := func(f fetched) {
		m := f.m
		// Stopping: what has not started is handed back.
		if ctx.Err() == nil && c.process(withFetched(workCtx, f.at), ctx.Done(), m) {
			tr.done(m)
		}
		c.pending(-1)
		budget.release(len(m.Value))
	}
	keyed := newKeyedPool(workers, run)
	var (
		wg   sync.WaitGroup
		long chan fetched
	)
	if longWorkers > 0 {
		long = make(chan fetched, longWorkers)
		for range longWorkers {
			wg.Go(func() {
				for f := range long {
					run(f)
				}
			})
		}
	}

	var fetchErr error
fetch:
	for {
		m, err := r.FetchMessage(ctx)
		at := time.Now()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if errors.Is(err, io.EOF) {
				fetchErr = err
				break
			}
			c.log.Warn("fetch failed", slog.String("topic", c.cfg.Topic), slog.Any("error", err))
			select {
			case <-ctx.Done():
				break fetch
			case <-time.After(500 * time.Millisecond):
			}
			continue
		}
		tr.add(m)
		if err := budget.acquire(ctx, len(m.Value)); err != nil {
			break fetch
		}
		c.pending(1)
		f := fetched{m: m, at: at}
		if long != nil && c.cfg.Long(m) {
			select {
			case long <- f:
			case <-ctx.Done():
				c.pending(-1)
				break fetch
			}
			continue
		}
		if !keyed.add(ctx, f) {
			c.pending(-1)
			break fetch
		}
	}

	if long != nil {
		close(long)
	}
	finished := make(chan struct{})
	go func() { keyed.wait(); keyed.close(); wg.Wait(); close(finished) }()
	timeout := c.cfg.ShutdownTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	select {
	case <-finished:
	case <-time.After(timeout):
		c.log.Warn("shutdown timeout: handing back unfinished messages", slog.String("topic", c.cfg.Topic))
		cancelWork()
		<-finished
	}
	if err := r.Close(); err != nil {
		c.log.Warn("closing reader", slog.String("topic", c.cfg.Topic), slog.Any("error", err))
	}
	return fetchErr
}

// process runs the handler until it succeeds, then publishes its records
// until Kafka acknowledges them, and reports the message done. It gives
// up — the message is handed back, not done — when the work context ends,
// or after a failure once the consumer is stopping. A failed publish is
// retried with the same records; the handler is not run again for it.
func (c *consumer) process(ctx context.Context, stopping <-chan struct{}, m kafka.Message) bool {
	backoff := 100 * time.Millisecond
	var (
		recs    []producer.Record
		handled bool
	)
	for {
		var err error
		if !handled {
			recs, err = c.handle(ctx, m)
			handled = err == nil
		}
		if handled {
			if len(recs) == 0 {
				return true
			}
			if err = c.pub.Write(ctx, recs...); err == nil {
				return true
			}
		}
		select {
		case <-stopping:
			return false
		default:
		}
		if ctx.Err() != nil {
			return false
		}
		what := "handling failed; retrying"
		if handled {
			what = "publishing the outcome failed; retrying"
		}
		c.log.Warn(what, slog.String("topic", m.Topic), slog.Int("partition", m.Partition),
			slog.Int64("offset", m.Offset), slog.Duration("backoff", backoff), slog.Any("error", err))
		c.pending(-1) // waiting out the back-off needs nothing
		select {
		case <-ctx.Done():
			c.pending(1)
			return false
		case <-stopping:
			c.pending(1)
			return false
		case <-time.After(backoff):
		}
		c.pending(1)
		backoff = min(backoff*2, 10*time.Second)
	}
}

// fetched is a message on its way to a worker, with when it was fetched.
type fetched struct {
	m  kafka.Message
	at time.Time
}

// keyedPool runs up to n messages at a time, those of one key (of one
// partition, for messages without a key) one after the other in their
// order. A worker takes a key when a message of it comes and none is
// running, and lets it go when its key has no more: a message waits only
// for those of its own key, or for a free worker when n keys are running —
// never behind another key that happened to share a worker. (With a
// fixed worker per hash of the key, 500 codes a second over 256 workers
// met a busy worker about a third of the time, and a code waited for
// another's whole round trip.)
//
// Workers are goroutines that outlive their key: a key is handed to the
// worker that went idle last, whose stack has grown to what a message
// needs already. A goroutine started for each key began with the
// smallest stack and copied it to a larger one several times on the way
// of every code. At most maxIdleWorkers wait for a key; others end.
type keyedPool struct {
	run  func(fetched)
	sem  chan struct{}
	mu   sync.Mutex
	keys map[poolKey][]fetched // running keys → their messages waiting, in order
	idle []chan keyRun         // idle workers, the last to go idle last
	done bool                  // closed: workers end when idle
	wg   sync.WaitGroup        // keys running
}

// keyRun is a key handed to a worker with its first message.
type keyRun struct {
	k poolKey
	f fetched
}

// maxIdleWorkers bounds the workers a pool keeps waiting for a key.
const maxIdleWorkers = 64

type poolKey struct {
	key       string
	partition int // for messages without a key; -1 otherwise
}

func newKeyedPool(n int, run func(fetched)) *keyedPool {
	return &keyedPool{run: run, sem: make(chan struct{}, n), keys: map[poolKey][]fetched{}}
}

func keyOfMessage(m kafka.Message) poolKey {
	if len(m.Key) > 0 {
		return poolKey{key: string(m.Key), partition: -1}
	}
	return poolKey{partition: m.Partition}
}

// add runs f after the messages of its key before it, waiting for a free
// worker when its key has none; false when ctx ended first (f was not
// taken). Only one goroutine calls add, never after close.
func (p *keyedPool) add(ctx context.Context, f fetched) bool {
	k := keyOfMessage(f.m)
	p.mu.Lock()
	if q, running := p.keys[k]; running {
		p.keys[k] = append(q, f)
		p.mu.Unlock()
		return true
	}
	p.mu.Unlock()
	// k cannot start running meanwhile: only add starts keys.
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	p.mu.Lock()
	p.keys[k] = nil
	p.wg.Add(1)
	var w chan keyRun
	if n := len(p.idle); n > 0 {
		w = p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
	}
	p.mu.Unlock()
	if w != nil {
		w <- keyRun{k, f} // buffered: the worker takes it when it gets there
		return true
	}
	// Every worker holds a key: a worker lists itself idle before it
	// gives its place back, so there are fewer than n of them.
	go p.work(keyRun{k, f})
	return true
}

// work runs keys, one after the other, until the pool closes or enough
// other workers are idle.
func (p *keyedPool) work(r keyRun) {
	in := make(chan keyRun, 1)
	for {
		p.runKey(r.k, r.f)
		p.mu.Lock()
		stay := !p.done && len(p.idle) < maxIdleWorkers
		if stay {
			p.idle = append(p.idle, in)
		}
		p.mu.Unlock()
		<-p.sem
		p.wg.Done()
		if !stay {
			return
		}
		var ok bool
		if r, ok = <-in; !ok {
			return
		}
	}
}

// runKey runs f and then its key's messages as they come, until it has
// none waiting.
func (p *keyedPool) runKey(k poolKey, f fetched) {
	for {
		p.run(f)
		p.mu.Lock()
		q := p.keys[k]
		if len(q) == 0 {
			delete(p.keys, k)
			p.mu.Unlock()
			return
		}
		f = q[0]
		q[0] = fetched{}
		p.keys[k] = q[1:]
		p.mu.Unlock()
	}
}

// close ends the idle workers, and the others once their key is done.
// Call it once, after the last add.
func (p *keyedPool) close() {
	p.mu.Lock()
	p.done = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, w := range idle {
		close(w)
	}
}

// wait waits for every message added to have run.
func (p *keyedPool) wait() { p.wg.Wait() }

// tracker remembers, per partition, the offsets fetched in order and which
// are done, and calls commit with the highest offset below which
// everything is done.
type tracker struct {
	mu     sync.Mutex
	parts  map[int]*partState
	commit func(kafka.Message)
}

type partState struct {
	pending []int64 // fetched, ascending, not yet committed
	done    map[int64]bool
	topic   string
}

func newTracker(commit func(kafka.Message)) *tracker {
	return &tracker{parts: map[int]*partState{}, commit: commit}
}

func (t *tracker) add(m kafka.Message) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.parts[m.Partition]
	if p == nil {
		p = &partState{done: map[int64]bool{}, topic: m.Topic}
		t.parts[m.Partition] = p
	}
	// A rebalance may rewind the partition to its committed offset: forget
	// what was pending from there on; it is being fetched again.
	if n := len(p.pending); n > 0 && m.Offset <= p.pending[n-1] {
		i := 0
		for i < n && p.pending[i] < m.Offset {
			i++
		}
		for _, o := range p.pending[i:] {
			delete(p.done, o)
		}
		p.pending = p.pending[:i]
	}
	p.pending = append(p.pending, m.Offset)
}

func (t *tracker) done(m kafka.Message) {
	t.mu.Lock()
	p := t.parts[m.Partition]
	if p == nil {
		t.mu.Unlock()
		return
	}
	// Only a pending offset counts. One that a rewind forgot (or that is
	// committed already) is fetched again or needs nothing: remembering it
	// would only leak.
	if _, ok := slices.BinarySearch(p.pending, m.Offset); !ok {
		t.mu.Unlock()
		return
	}
	p.done[m.Offset] = true
	last := int64(-1)
	for len(p.pending) > 0 && p.done[p.pending[0]] {
		last = p.pending[0]
		delete(p.done, last)
		p.pending = p.pending[1:]
	}
	t.mu.Unlock()
	if last >= 0 {
		t.commit(kafka.Message{Topic: p.topic, Partition: m.Partition, Offset: last})
	}
}

// byteBudget counts the bytes of the messages a consumer holds; acquire
// waits while taking more would go over the budget.
type byteBudget struct {
	mu    sync.Mutex
	max   int
	used  int
	freed chan struct{} // closed and replaced on each release
}

func newByteBudget(max int) *byteBudget {
	if max <= 0 {
		max = DefaultQueueBytes
	}
	return &byteBudget{max: max, freed: make(chan struct{})}
}

// acquire takes n bytes of the budget, waiting until they fit or ctx ends.
// When nothing is held, any n fits: a message larger than the budget is
// taken alone.
func (b *byteBudget) acquire(ctx context.Context, n int) error {
	for {
		b.mu.Lock()
		if b.used == 0 || b.used+n <= b.max {
			b.used += n
			b.mu.Unlock()
			return nil
		}
		freed := b.freed
		b.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// release gives n bytes back.
func (b *byteBudget) release(n int) {
	b.mu.Lock()
	b.used -= n
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}
