// Package kafkapub is the Kafka adapter of producer: a Publisher that
// writes envelopes to their lane topic and raw records to any topic.
// Producing services depend on producer's interfaces, not on it.
package kafkapub

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

// Config configures a Publisher.
type Config struct {
	Brokers []string
	Names   topics.Names
	// WriteTimeout bounds one write to the brokers. Default 10s.
	WriteTimeout time.Duration
	// MaxPending bounds the messages of one topic the publisher holds at
	// once, waiting or being written; a write that would go over it fails
	// at once with ErrBusy. Default 4096.
	MaxPending int
	// MaxPendingBytes bounds the same messages' keys and values. Default
	// 32 MiB.
	MaxPendingBytes int
	// Linger, for the topics it names, is how long a write that finds its
	// topic idle waits for others to join it before it goes to the
	// brokers: for topics nobody waits on in a hurry (receipts), so that
	// writes that come one at a time — a code's receipt, 500 a second —
	// share produce requests instead of each costing the brokers and the
	// process a request of its own. A write of lingerFull messages or
	// more goes at once; writes that arrive while one is under way go in
	// the next, as for any topic. Close ends a linger.
	Linger map[string]time.Duration
}

// lingerFull is how many waiting messages end a topic's linger at once.
const lingerFull = 100

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return fmt.Errorf("producer: no Kafka brokers configured")
	}
	return nil
}

// Publisher writes envelopes to their lane topic and raw records to any
// topic, waiting for every in-sync replica to acknowledge. It is safe for
// concurrent use.
//
// Concurrent writes to a topic share one produce request: each topic has
// one write to the brokers under way at a time, and the writes that arrive
// meanwhile go together in the next. The number of requests then follows
// the brokers' pace instead of the callers': a request that takes longer
// carries more messages rather than queueing more requests behind it.
// What a topic holds waiting is bounded (Config.MaxPending and
// MaxPendingBytes), so callers that outrun the brokers are refused with
// ErrBusy instead of growing the process's memory.
type Publisher struct {
	tr    *kafka.Transport
	bw    *brokerWriter
	write func(context.Context, ...kafka.Message) error // bw.write; a test may stand in
	after func(time.Duration) <-chan time.Time          // time.After; a test may stand in
	names topics.Names

	maxPending, maxBytes int
	linger               map[string]time.Duration

	mu      sync.Mutex
	queues  map[string]*topicQueue
	closed  bool
	closing chan struct{} // closed by Close: lingers end
	wg      sync.WaitGroup

	// published, when set, is told of each direct notification Kafka
	// acknowledged (see ObservePublished).
	published func(lane topics.Lane, writing, published time.Duration)
}

// ErrBusy is the error of a write refused because its topic already holds
// as many messages as the publisher may hold waiting for the brokers. The
// write was not made; try again later.
var ErrBusy = errors.New("producer: too many messages waiting for Kafka")

// maxFlush bounds the messages of one write to the brokers.
const maxFlush = 1000

// topicQueue is one topic's writes waiting for the brokers.
type topicQueue struct {
	pending []*pendingWrite
	// n and bytes count the messages waiting or being written.
	n, bytes int
	wake     chan struct{}
	linger   time.Duration // see Config.Linger
}

// pendingWrite is one caller's messages to one topic.
type pendingWrite struct {
	ctx   context.Context
	recs  []producer.Record
	msgs  []kafka.Message
	bytes int
	done  chan error
	// began is when the write to the brokers that carries these messages
	// began; set before done is sent.
	began time.Time
}

// ObservePublished has f told, after each Publish of a direct
// notification (a code, an alert) that Kafka acknowledged, two times
// since the envelope's creation: when the write to the brokers that
// carried it began (writing; before it, the envelope waited for the
// topic's write under way), and when Kafka acknowledged it (published):
// how long the caller waited for Kafka, and for what. Call it before the
// first Publish.
func (p *Publisher) ObservePublished(f func(lane topics.Lane, writing, published time.Duration)) {
	p.published = f
}

// NewPublisher returns a Publisher. It does not connect until the first
// publish.
func NewPublisher(cfg Config) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 4096
	}
	if cfg.MaxPendingBytes <= 0 {
		cfg.MaxPendingBytes = 32 << 20
	}
	// A transport of the publisher's own: its connections and metadata
	// go with it on Close. Its metadata is that of Loa's topics only: by
	// default kafka-go's transport reads every topic's of the cluster,
	// every few seconds (a random time below 6 s), which on a cluster
	// Loa shares with other systems is a response of thousands of
	// partitions for each refresh, decoded by each process.
	tr := &kafka.Transport{Dial: (&net.Dialer{Timeout: 3 * time.Second}).DialContext, MetadataTopics: cfg.Names.All()}
	bw := &brokerWriter{
		addr: kafka.TCP(cfg.Brokers...),
		rt:   tr,
		// Every in-sync replica acknowledges (acks=all), within the
		// write's timeout.
		timeout:     cfg.WriteTimeout,
		maxAttempts: 5,
		backoffMin:  100 * time.Millisecond,
		backoffMax:  time.Second,
	}
	return &Publisher{names: cfg.Names, tr: tr, bw: bw, write: bw.write, after: time.After, maxPending: cfg.MaxPending,
		maxBytes: cfg.MaxPendingBytes, linger: cfg.Linger, queues: map[string]*topicQueue{}, closing: make(chan struct{})}, nil
}

// Publish writes e to its lane, keyed by e.Key. It returns when the
// brokers acknowledged the write, or with an error; on error the event may
// or may not have been written (consumers are idempotent).
func (p *Publisher) Publish(ctx context.Context, e producer.Envelope) error {
	rec, err := producer.EnvelopeRecord(p.names, e)
	if err != nil {
		return err
	}
	began, err := p.writeRecords(ctx, []producer.Record{rec})
	if err != nil {
		return err
	}
	if p.published != nil && e.Kind == producer.KindDirect && !e.CreatedAt.IsZero() {
		p.published(e.Lane, began.Sub(e.CreatedAt), time.Since(e.CreatedAt))
	}
	return nil
}

// Write writes records (to any topics) and waits for acknowledgement. On
// error some of them may have been written; with ErrBusy, none of the
// topic it names was.
func (p *Publisher) Write(ctx context.Context, recs ...producer.Record) error {
	_, err := p.writeRecords(ctx, recs)
	return err
}

// writeRecords is Write; it also returns when the last of the writes to
// the brokers that carried recs began.
func (p *Publisher) writeRecords(ctx context.Context, recs []producer.Record) (time.Time, error) {
	var writes []*pendingWrite
	for _, group := range byTopic(recs) {
		w := &pendingWrite{ctx: ctx, recs: group, msgs: make([]kafka.Message, len(group)), done: make(chan error, 1)}
		for i, r := range group {
			m := kafka.Message{Topic: r.Topic, Key: []byte(r.Key), Value: r.Value}
			for k, v := range r.Headers {
				m.Headers = append(m.Headers, kafka.Header{Key: k, Value: []byte(v)})
			}
			w.msgs[i], w.bytes = m, w.bytes+len(m.Key)+len(m.Value)
		}
		if err := p.enqueue(w); err != nil {
			return time.Time{}, writeError(group, err)
		}
		writes = append(writes, w)
	}
	var began time.Time
	for _, w := range writes {
		select {
		case err := <-w.done:
			if err != nil {
				return time.Time{}, err
			}
			if w.began.After(began) {
				began = w.began
			}
		case <-ctx.Done():
			return time.Time{}, writeError(w.recs, ctx.Err())
		}
	}
	return began, nil
}

// byTopic splits recs by topic, keeping their order within each.
func byTopic(recs []producer.Record) [][]producer.Record {
	if len(recs) == 0 {
		return nil
	}
	same := true
	for _, r := range recs[1:] {
		same = same && r.Topic == recs[0].Topic
	}
	if same {
		return [][]producer.Record{recs}
	}
	var out [][]producer.Record
	at := map[string]int{}
	for _, r := range recs {
		i, ok := at[r.Topic]
		if !ok {
			i = len(out)
			at[r.Topic] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], r)
	}
	return out
}

// enqueue hands w to its topic's queue, starting the queue's writer when
// it is the topic's first write, or refuses it with ErrBusy. A write
// bigger than the bound is taken when its topic holds nothing else.
func (p *Publisher) enqueue(w *pendingWrite) error {
	topic := w.recs[0].Topic
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("producer: publisher closed")
	}
	q := p.queues[topic]
	if q == nil {
		q = &topicQueue{wake: make(chan struct{}, 1), linger: p.linger[topic]}
		p.queues[topic] = q
		p.wg.Add(1)
		go p.run(q)
	}
	if q.n > 0 && (q.n+len(w.msgs) > p.maxPending || q.bytes+w.bytes > p.maxBytes) {
		return ErrBusy
	}
	q.pending = append(q.pending, w)
	q.n, q.bytes = q.n+len(w.msgs), q.bytes+w.bytes
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return nil
}

// run writes q's waiting messages to the brokers, one write at a time,
// until the publisher is closed and q is empty.
func (p *Publisher) run(q *topicQueue) {
	defer p.wg.Done()
	for range q.wake {
		p.lingerOn(q)
		for p.flush(q) {
		}
	}
}

// lingerOn waits for q's linger, unless q has none, holds nothing or
// already lingerFull messages or more, or the publisher is closing.
func (p *Publisher) lingerOn(q *topicQueue) {
	if q.linger <= 0 {
		return
	}
	p.mu.Lock()
	// Nothing waiting: a wake-up left by writes an earlier flush took.
	skip := q.n == 0 || q.n >= lingerFull
	p.mu.Unlock()
	if skip {
		return
	}
	select {
	case <-p.after(q.linger):
	case <-p.closing:
	}
}

// flush writes what q holds waiting, up to maxFlush messages, and answers
// each write's caller; false when there was nothing to write.
func (p *Publisher) flush(q *topicQueue) bool {
	var (
		batch []*pendingWrite
		msgs  []kafka.Message
		n, b  int
	)
	p.mu.Lock()
	for len(q.pending) > 0 && (len(msgs) == 0 || len(msgs)+len(q.pending[0].msgs) <= maxFlush) {
		w := q.pending[0]
		q.pending[0] = nil
		q.pending = q.pending[1:]
		n, b = n+len(w.msgs), b+w.bytes
		if err := w.ctx.Err(); err != nil {
			// Its caller has gone: not written, and said so.
			w.done <- writeError(w.recs, err)
			continue
		}
		batch, msgs = append(batch, w), append(msgs, w.msgs...)
	}
	if len(q.pending) == 0 {
		q.pending = nil // let the backing array go
	}
	p.mu.Unlock()
	if n == 0 {
		return false
	}
	if len(msgs) > 0 {
		began := time.Now()
		for _, w := range batch {
			w.began = began
		}
		// Not any one caller's context: the write carries others' messages.
		err := p.write(context.Background(), msgs...)
		we, perMessage := errors.AsType[kafka.WriteErrors](err)
		at := 0
		for _, w := range batch {
			var werr error
			switch {
			case err == nil:
			case perMessage && len(we) == len(msgs):
				if sub := we[at : at+len(w.msgs)]; sub.Count() > 0 {
					werr = writeError(w.recs, sub)
				}
			default:
				werr = writeError(w.recs, err)
			}
			w.done <- werr
			at += len(w.msgs)
		}
	}
	p.mu.Lock()
	q.n, q.bytes = q.n-n, q.bytes-b
	p.mu.Unlock()
	return true
}

// writeError is the error of a write of recs that failed with err.
func writeError(recs []producer.Record, err error) error {
	if we, ok := errors.AsType[kafka.WriteErrors](err); ok {
		err = writeErrors(we)
	}
	return fmt.Errorf("producer: write to %s: %w", topicsOf(recs), err)
}

// writeErrors is kafka.WriteErrors with its messages' errors in the
// chain, so that a caller sees what they were (a broker that refused the
// connection is a reason to answer "retry", not an internal error).
type writeErrors kafka.WriteErrors

func (e writeErrors) Error() string { return kafka.WriteErrors(e).Error() }

func (e writeErrors) Unwrap() []error {
	var out []error
	for _, err := range e {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// Names returns the topic names the publisher writes to.
func (p *Publisher) Names() topics.Names { return p.names }

// Close writes what is waiting, then releases connections. Writes after
// Close fail.
func (p *Publisher) Close() error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.closing)
		for _, q := range p.queues {
			close(q.wake)
		}
	}
	p.mu.Unlock()
	p.wg.Wait()
	p.tr.CloseIdleConnections()
	return nil
}

func topicsOf(recs []producer.Record) string {
	seen := map[string]bool{}
	var out []string
	for _, r := range recs {
		if !seen[r.Topic] {
			seen[r.Topic] = true
			out = append(out, r.Topic)
		}
	}
	return strings.Join(out, ",")
}
