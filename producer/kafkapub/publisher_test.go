package kafkapub

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

// TestWriteErrorSaysWhy: when the broker went away under a write, the
// writer reports kafka.WriteErrors, one per message; Write's error has
// them in its chain (here a refused connection), so the API can tell a
// caller to retry instead of answering an internal error.
func TestWriteErrorSaysWhy(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	err := writeError([]producer.Record{{Topic: "loa.otp"}, {Topic: "loa.otp"}}, kafka.WriteErrors{nil, refused})
	if _, ok := errors.AsType[*net.OpError](err); !ok {
		t.Errorf("no *net.OpError in the chain of %q", err)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("%q is not ECONNREFUSED", err)
	}
	if want := "producer: write to loa.otp: Kafka write errors (1/2), errors: [" + refused.Error() + "]"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

// standIn replaces the publisher's writes to the brokers: each write
// is sent on calls and waits for an answer on its reply channel.
type standIn struct {
	calls chan standInCall
}

type standInCall struct {
	msgs  []kafka.Message
	reply chan error
}

func newStandIn(t *testing.T, cfg Config) (*Publisher, *standIn) {
	t.Helper()
	if len(cfg.Brokers) == 0 {
		cfg.Brokers = []string{"127.0.0.1:1"}
	}
	p, err := NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &standIn{calls: make(chan standInCall)}
	p.write = func(_ context.Context, msgs ...kafka.Message) error {
		c := standInCall{msgs: msgs, reply: make(chan error)}
		s.calls <- c
		return <-c.reply
	}
	return p, s
}

func record(topic, key string) producer.Record {
	return producer.Record{Topic: topic, Key: key, Value: []byte("v-" + key)}
}

// TestWritesArrivingMeanwhileShareTheNextRequest: while a topic's write
// to the brokers is under way, the writes that arrive wait and then go
// together in one request, each caller answered with its own messages'
// outcome; a caller that gave up before its turn is not written.
func TestWritesArrivingMeanwhileShareTheNextRequest(t *testing.T) {
	p, s := newStandIn(t, Config{})
	first := make(chan error, 1)
	go func() { first <- p.Write(t.Context(), record("loa.otp", "a")) }()
	c1 := <-s.calls // the first write is now with the brokers
	if len(c1.msgs) != 1 {
		t.Fatalf("first request carried %d messages, want 1", len(c1.msgs))
	}

	var waits []*pendingWrite
	for i := range 50 {
		w := pending(t.Context(), record("loa.otp", fmt.Sprint("k", i)))
		if err := p.enqueue(w); err != nil {
			t.Fatal(err)
		}
		waits = append(waits, w)
	}
	gone, cancel := context.WithCancel(t.Context())
	cancel()
	left := pending(gone, record("loa.otp", "gone"))
	if err := p.enqueue(left); err != nil {
		t.Fatal(err)
	}
	c1.reply <- nil
	if err := <-first; err != nil {
		t.Fatal(err)
	}

	c2 := <-s.calls
	if len(c2.msgs) != 50 {
		t.Fatalf("second request carried %d messages, want the 50 that waited", len(c2.msgs))
	}
	for i, m := range c2.msgs {
		if want := fmt.Sprint("k", i); string(m.Key) != want {
			t.Fatalf("message %d has key %q, want %q (the writes' order)", i, m.Key, want)
		}
	}
	refused := errors.New("not leader")
	we := make(kafka.WriteErrors, 50)
	we[7] = refused
	c2.reply <- we
	for i, w := range waits {
		err := <-w.done
		if (err != nil) != (i == 7) || i == 7 && !errors.Is(err, refused) {
			t.Errorf("write %d answered %v", i, err)
		}
	}
	if err := <-left.done; !errors.Is(err, context.Canceled) {
		t.Errorf("a write whose caller had gone answered %v, want context.Canceled", err)
	}

	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := p.Write(t.Context(), record("loa.otp", "late")); err == nil {
		t.Error("a write after Close succeeded")
	}
}

func pending(ctx context.Context, recs ...producer.Record) *pendingWrite {
	w := &pendingWrite{ctx: ctx, recs: recs, done: make(chan error, 1)}
	for _, r := range recs {
		w.msgs = append(w.msgs, kafka.Message{Topic: r.Topic, Key: []byte(r.Key), Value: r.Value})
		w.bytes += len(r.Key) + len(r.Value)
	}
	return w
}

// TestWritesBeyondTheBoundAreRefusedAtOnce: when the brokers are slow, a
// topic holds at most MaxPending messages (and MaxPendingBytes) waiting;
// a write beyond that is refused with ErrBusy at once, so a flood of
// requests cannot grow the process's memory, and another topic's writes
// are not held up by it.
func TestWritesBeyondTheBoundAreRefusedAtOnce(t *testing.T) {
	p, s := newStandIn(t, Config{MaxPending: 3, MaxPendingBytes: 1 << 20})
	release := make(chan struct{}) // the otp brokers answer only then
	go s.answer(func(c standInCall) {
		if c.msgs[0].Topic == "loa.otp" {
			<-release
		}
	})
	if err := p.enqueue(pending(t.Context(), record("loa.otp", "a"), record("loa.otp", "b"))); err != nil {
		t.Fatal(err)
	}
	if err := p.enqueue(pending(t.Context(), record("loa.otp", "c"))); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := p.Write(ctx, record("loa.otp", "d")); !errors.Is(err, ErrBusy) {
		t.Fatalf("a fourth message while three wait: %v, want ErrBusy", err)
	}
	if err := p.Write(ctx, record("loa.alert", "x")); err != nil {
		t.Fatalf("another topic's write: %v", err)
	}
	close(release)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	close(s.calls)

	big, s2 := newStandIn(t, Config{MaxPending: 100, MaxPendingBytes: 10})
	release = make(chan struct{})
	go s2.answer(func(standInCall) { <-release })
	huge := producer.Record{Topic: "loa.bulk", Key: "k", Value: make([]byte, 64)}
	if err := big.enqueue(pending(t.Context(), huge)); err != nil {
		t.Fatalf("a write bigger than the bound on an empty topic: %v, want it taken", err)
	}
	if err := big.Write(ctx, record("loa.bulk", "y")); !errors.Is(err, ErrBusy) {
		t.Fatalf("a write while the topic holds more bytes than the bound: %v, want ErrBusy", err)
	}
	close(release)
	if err := big.Close(); err != nil {
		t.Fatal(err)
	}
	close(s2.calls)
}

// answer answers every write with success, each after before(call)
// returns.
func (s *standIn) answer(before func(standInCall)) {
	for c := range s.calls {
		go func() {
			before(c)
			c.reply <- nil
		}()
	}
}

// TestPublishObservesWhenItsWriteBegan: a code published while its topic's
// write is with the brokers waits for it; the publisher tells when the
// write that carried the code began (not before the write under way was
// answered) and when Kafka acknowledged it, both since the code's
// creation, so that a code's time before Kafka shows whether it waited
// for the topic's turn or for the brokers.
func TestPublishObservesWhenItsWriteBegan(t *testing.T) {
	p, s := newStandIn(t, Config{})
	type seen struct{ writing, published time.Duration }
	observed := make(chan seen, 2)
	p.ObservePublished(func(l topics.Lane, writing, published time.Duration) {
		if l != topics.LaneOTP {
			t.Errorf("lane %q, want otp", l)
		}
		observed <- seen{writing, published}
	})
	code := func(id string) producer.Envelope {
		e, err := producer.NewEnvelope(id, producer.KindDirect, topics.LaneOTP, "849"+id, time.Now(), time.Time{}, "", map[string]string{"code": "1"})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	first := make(chan error, 1)
	go func() { first <- p.Publish(t.Context(), code("1")) }()
	c1 := <-s.calls // the first code's write is with the brokers

	second := code("2")
	errs := make(chan error, 1)
	go func() { errs <- p.Publish(t.Context(), second) }()
	// The second code waits for the first write's answer.
	pollQueued(t, p, 2)
	answered := time.Now()
	c1.reply <- nil
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	o1 := <-observed
	c2 := <-s.calls
	c2.reply <- nil
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	o2 := <-observed
	if o1.writing > o1.published {
		t.Errorf("first code: writing %v after published %v", o1.writing, o1.published)
	}
	if began := second.CreatedAt.Add(o2.writing); began.Before(answered) {
		t.Errorf("the second code's write began %v before the write under way was answered", answered.Sub(began))
	}
	if o2.writing > o2.published {
		t.Errorf("second code: writing %v after published %v", o2.writing, o2.published)
	}
}

// pollQueued waits until the publisher holds n messages (waiting or being
// written) on some topic.
func pollQueued(t *testing.T, p *Publisher, n int) {
	t.Helper()
	for {
		p.mu.Lock()
		got := 0
		for _, q := range p.queues {
			got = max(got, q.n)
		}
		p.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("the publisher holds %d messages, want %d", got, n)
		case <-time.After(time.Millisecond):
		}
	}
}

// TestWritesToALingeringTopicShareARequest: a write that finds a topic
// with a linger idle waits for it, and the writes that arrive meanwhile
// go with it in one request; a write of lingerFull messages goes at
// once; Close ends a linger. Topics without one are written at once.
func TestWritesToALingeringTopicShareARequest(t *testing.T) {
	p, s := newStandIn(t, Config{Linger: map[string]time.Duration{"loa.receipts": time.Hour}})
	lingering := make(chan time.Duration)
	fire := make(chan time.Time)
	p.after = func(d time.Duration) <-chan time.Time {
		lingering <- d
		return fire
	}
	reply := func(c standInCall) { c.reply <- nil }

	var waits []*pendingWrite
	enqueue := func(topic string, keys ...string) *pendingWrite {
		var recs []producer.Record
		for _, k := range keys {
			recs = append(recs, record(topic, k))
		}
		w := pending(t.Context(), recs...)
		if err := p.enqueue(w); err != nil {
			t.Fatal(err)
		}
		return w
	}
	waits = append(waits, enqueue("loa.receipts", "r0"))
	select {
	case d := <-lingering:
		if d != time.Hour {
			t.Fatalf("lingered %v, want the topic's hour", d)
		}
	case c := <-s.calls:
		t.Fatalf("the first write went to the brokers at once, with %d messages", len(c.msgs))
	}
	for i := 1; i < 5; i++ {
		waits = append(waits, enqueue("loa.receipts", fmt.Sprint("r", i)))
	}
	// Another topic is written at once meanwhile.
	other := enqueue("loa.otp", "code")
	c := <-s.calls
	if len(c.msgs) != 1 || c.msgs[0].Topic != "loa.otp" {
		t.Fatalf("a write to a topic without a linger waited: the first request carried %d messages", len(c.msgs))
	}
	reply(c)
	if err := <-other.done; err != nil {
		t.Fatal(err)
	}
	fire <- time.Now()
	c = <-s.calls
	if len(c.msgs) != 5 {
		t.Fatalf("the lingering topic's request carried %d messages, want the 5 written meanwhile", len(c.msgs))
	}
	reply(c)
	for i, w := range waits {
		if err := <-w.done; err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}

	// A write of lingerFull messages does not wait.
	var keys []string
	for i := range lingerFull {
		keys = append(keys, fmt.Sprint("b", i))
	}
	big := enqueue("loa.receipts", keys...)
	select {
	case c := <-s.calls:
		if len(c.msgs) != lingerFull {
			t.Fatalf("the big write's request carried %d messages, want %d", len(c.msgs), lingerFull)
		}
		reply(c)
	case <-lingering:
		t.Fatalf("a write of %d messages lingered", lingerFull)
	}
	if err := <-big.done; err != nil {
		t.Fatal(err)
	}

	// Close ends a linger: what waits is written.
	last := enqueue("loa.receipts", "last")
	<-lingering
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	c = <-s.calls
	if len(c.msgs) != 1 {
		t.Fatalf("the write waiting at Close carried %d messages, want 1", len(c.msgs))
	}
	reply(c)
	if err := <-last.done; err != nil {
		t.Fatal(err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}
