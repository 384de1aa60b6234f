package kafkapub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	metadataAPI "github.com/segmentio/kafka-go/protocol/metadata"
	produceAPI "github.com/segmentio/kafka-go/protocol/produce"
)

// brokerWriter writes messages to the brokers in one produce request a
// leader broker, whatever the number of partitions they go to (more
// only when a partition has over maxBatchBytes of them).
//
// kafka-go's Writer sends one produce request a partition: a write that
// carried five codes to five of loa.otp's six partitions was five
// requests, each a round trip the broker answers on its own, with its
// own log append and acknowledgement. A produce request may carry any
// number of partitions of any topics led by one broker; the broker then
// answers them together. Messages are placed as the Writer placed them
// (Murmur2 of the key over the topic's partitions, as the Java client
// does), and a partition's messages keep their order.
//
// Partitions whose write failed with a temporary error (a leader
// changing, too few in-sync replicas, a timeout) or a connection lost
// are written again, alone, up to maxAttempts in all, as the Writer did;
// a message may then be written twice (the consumers are idempotent).
type brokerWriter struct {
	addr        net.Addr
	rt          kafka.RoundTripper
	timeout     time.Duration // of one produce request, and the brokers' wait for their replicas
	maxAttempts int
	backoffMin  time.Duration
	backoffMax  time.Duration
	balancer    kafka.Murmur2Balancer

	// requests, when set, is told of each produce request sent (tests).
	requests func(*produceAPI.Request)
}

// target is one partition's messages in one write, as indexes into the
// write's messages, in order.
type target struct {
	topic     string
	partition int32
	msgs      []int
}

// write writes msgs and returns nil, or kafka.WriteErrors with an error
// for each message not written (nil for those written).
func (b *brokerWriter) write(ctx context.Context, msgs ...kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	errs := make(kafka.WriteErrors, len(msgs))
	todo := make([]int, len(msgs))
	for i := range msgs {
		todo[i] = i
	}
	for attempt := 0; ; attempt++ {
		retry := b.attempt(ctx, msgs, todo, errs)
		if len(retry) == 0 || attempt+1 >= b.maxAttempts || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff(attempt+1, b.backoffMin, b.backoffMax)):
		}
		for _, i := range retry {
			errs[i] = nil
		}
		todo = retry
	}
	if errs.Count() == 0 {
		return nil
	}
	return errs
}

// attempt writes the messages todo once, sets errs of those that failed,
// and returns those worth writing again.
func (b *brokerWriter) attempt(ctx context.Context, msgs []kafka.Message, todo []int, errs kafka.WriteErrors) (retry []int) {
	fail := func(idx []int, err error) {
		for _, i := range idx {
			errs[i] = err
		}
		if temporary(err) {
			retry = append(retry, idx...)
		}
	}
	rounds, err := b.place(ctx, msgs, todo)
	if err != nil {
		// The topic's layout is not known (a topic not created yet, the
		// brokers away): fail at once, as the Writer did; the callers
		// retry their writes.
		for _, i := range todo {
			errs[i] = err
		}
		return nil
	}
	var (
		mu     sync.Mutex
		failed = map[topicPartition]error{} // partitions with a batch not written
	)
	send := func(ts []target) {
		req := b.request(msgs, ts)
		if b.requests != nil {
			b.requests(req)
		}
		rctx, cancel := context.WithTimeout(ctx, b.timeout)
		res, err := b.rt.RoundTrip(rctx, b.addr, req)
		cancel()
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			for _, t := range ts {
				fail(t.msgs, err)
				failed[topicPartition{t.topic, t.partition}] = err
			}
			return
		}
		answered := map[topicPartition]error{}
		for _, rt := range res.(*produceAPI.Response).Topics {
			for _, rp := range rt.Partitions {
				var perr error
				if rp.ErrorCode != 0 {
					perr = kafka.Error(rp.ErrorCode)
					if rp.ErrorMessage != "" {
						perr = fmt.Errorf("%w: %s", perr, rp.ErrorMessage)
					}
				}
				answered[topicPartition{rt.Topic, rp.Partition}] = perr
			}
		}
		for _, t := range ts {
			tp := topicPartition{t.topic, t.partition}
			perr, ok := answered[tp]
			if !ok {
				perr = fmt.Errorf("kafkapub: no answer for %s/%d in the produce response: %w", t.topic, t.partition, io.ErrUnexpectedEOF)
			}
			if perr != nil {
				fail(t.msgs, perr)
				failed[tp] = perr
			}
		}
	}
	for _, byLeader := range rounds {
		// A partition's later batch is not written after an earlier one
		// failed: its messages would be out of order. It fails with the
		// earlier one's error, and is tried again with it if that may help.
		for leader, ts := range byLeader {
			kept := ts[:0]
			for _, t := range ts {
				if err := failed[topicPartition{t.topic, t.partition}]; err != nil {
					fail(t.msgs, err)
					continue
				}
				kept = append(kept, t)
			}
			if len(kept) == 0 {
				delete(byLeader, leader)
			} else {
				byLeader[leader] = kept
			}
		}
		if len(byLeader) == 1 {
			for _, ts := range byLeader {
				send(ts)
			}
			continue
		}
		var wg sync.WaitGroup
		for _, ts := range byLeader {
			wg.Go(func() { send(ts) })
		}
		wg.Wait()
	}
	slices.Sort(retry)
	return retry
}

type topicPartition struct {
	topic     string
	partition int32
}

// maxBatchBytes bounds the keys, values and headers of one partition's
// messages in one produce request, as the Writer's BatchBytes did: the
// broker refuses a record batch over its message.max.bytes (1 MiB and a
// little by default). A partition with more waits for the next request,
// sent once this one is answered, so that its messages keep their order.
// It leaves a KiB of the MiB for the batch's own header and what
// recordOverhead underestimates.
const maxBatchBytes = 1<<20 - 1<<10

// recordOverhead is about what a record adds to its key, value and
// headers in a batch (lengths, offset and time deltas).
const recordOverhead = 32

// place assigns the messages todo to their partitions and groups the
// partitions by their leader, in rounds: each round is a request a
// leader, a partition's messages in order over the rounds, at most
// maxBatchBytes of them in a round (or one larger message alone).
func (b *brokerWriter) place(ctx context.Context, msgs []kafka.Message, todo []int) ([]map[int32][]target, error) {
	var names []string
	for _, i := range todo {
		if !slices.Contains(names, msgs[i].Topic) {
			names = append(names, msgs[i].Topic)
		}
	}
	mctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	r, err := b.rt.RoundTrip(mctx, b.addr, &metadataAPI.Request{TopicNames: names})
	if err != nil {
		return nil, err
	}
	type layout struct {
		ids     []int
		leaders map[int32]int32
	}
	layouts := map[string]layout{}
	for _, t := range r.(*metadataAPI.Response).Topics {
		if t.ErrorCode != 0 {
			return nil, fmt.Errorf("kafkapub: topic %s: %w", t.Name, kafka.Error(t.ErrorCode))
		}
		l := layout{leaders: map[int32]int32{}}
		for _, p := range t.Partitions {
			l.ids = append(l.ids, int(p.PartitionIndex))
			l.leaders[p.PartitionIndex] = p.LeaderID
		}
		slices.Sort(l.ids)
		layouts[t.Name] = l
	}
	type place struct {
		round, at, bytes int // its current round, its target's index there, the bytes in it
	}
	places := map[topicPartition]*place{}
	var rounds []map[int32][]target
	for _, i := range todo {
		m := msgs[i]
		l, ok := layouts[m.Topic]
		if !ok || len(l.ids) == 0 {
			return nil, fmt.Errorf("kafkapub: topic %s: %w", m.Topic, kafka.UnknownTopicOrPartition)
		}
		tp := topicPartition{m.Topic, int32(b.balancer.Balance(m, l.ids...))}
		leader := l.leaders[tp.partition]
		size := len(m.Key) + len(m.Value) + recordOverhead
		for _, h := range m.Headers {
			size += len(h.Key) + len(h.Value)
		}
		pl := places[tp]
		if pl == nil || pl.bytes+size > maxBatchBytes {
			round := 0
			if pl != nil {
				round = pl.round + 1
			}
			for len(rounds) <= round {
				rounds = append(rounds, map[int32][]target{})
			}
			pl = &place{round: round, at: len(rounds[round][leader])}
			places[tp] = pl
			rounds[round][leader] = append(rounds[round][leader], target{topic: tp.topic, partition: tp.partition})
		}
		pl.bytes += size
		t := &rounds[pl.round][leader][pl.at]
		t.msgs = append(t.msgs, i)
	}
	return rounds, nil
}

// request is the produce request of the targets ts (of one leader).
func (b *brokerWriter) request(msgs []kafka.Message, ts []target) *produceAPI.Request {
	req := &produceAPI.Request{Acks: int16(kafka.RequireAll), Timeout: int32(b.timeout / time.Millisecond)}
	at := map[string]int{}
	for _, t := range ts {
		j, ok := at[t.topic]
		if !ok {
			j = len(req.Topics)
			at[t.topic] = j
			req.Topics = append(req.Topics, produceAPI.RequestTopic{Topic: t.topic})
		}
		recs := make([]kafka.Record, len(t.msgs))
		for k, i := range t.msgs {
			m := msgs[i]
			recs[k] = kafka.Record{Time: m.Time, Headers: m.Headers}
			if m.Key != nil {
				recs[k].Key = kafka.NewBytes(m.Key)
			}
			if m.Value != nil {
				recs[k].Value = kafka.NewBytes(m.Value)
			}
		}
		req.Topics[j].Partitions = append(req.Topics[j].Partitions, produceAPI.RequestPartition{
			Partition: t.partition,
			RecordSet: protocol.RecordSet{Records: kafka.NewRecordReader(recs...)},
		})
	}
	return req
}

// temporary reports whether a write that failed with err may succeed if
// tried again: what kafka-go's Writer retried.
func temporary(err error) bool {
	var t interface{ Temporary() bool }
	if errors.As(err, &t) && t.Temporary() {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// backoff is the wait before attempt (1 for the first retry): doubling
// from min, at most max.
func backoff(attempt int, min, max time.Duration) time.Duration {
	d := min << (attempt - 1)
	if d <= 0 || d > max {
		d = max
	}
	return d
}
