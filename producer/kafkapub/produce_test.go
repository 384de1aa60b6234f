package kafkapub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	metadataAPI "github.com/segmentio/kafka-go/protocol/metadata"
	produceAPI "github.com/segmentio/kafka-go/protocol/produce"

	"github.com/loa-hub/loa/internal/kafkaadmin"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

// TestAWriteIsOneProduceRequest: a write whose messages go to every
// partition of a topic is one produce request to its leader (kafka-go's
// Writer sent one a partition), and the messages land where the Writer
// and the Java client put them — Murmur2 of the key over the topic's
// partitions — each partition's in the order written.
func TestAWriteIsOneProduceRequest(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			brokers := testenv.Kfake(t)
			if b.Name == "real" {
				brokers = testenv.KafkaBrokers(t)
			}
			names := topics.Names{Prefix: "t" + testenv.ID() + "."}
			testenv.DeleteTopicsAtEnd(t, brokers, names.Prefix)
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			if err := kafkaadmin.Ensure(ctx, strings.Split(brokers, ","), names, 1); err != nil {
				t.Fatal(err)
			}
			p, err := NewPublisher(Config{Brokers: strings.Split(brokers, ","), Names: names})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.Close() })
			var (
				mu       sync.Mutex
				requests []*produceAPI.Request
			)
			p.bw.requests = func(r *produceAPI.Request) {
				mu.Lock()
				requests = append(requests, r)
				mu.Unlock()
			}

			topic := names.Lane(topics.LaneOTP)
			const n = 60
			recs := make([]producer.Record, n)
			for i := range recs {
				recs[i] = producer.Record{Topic: topic, Key: fmt.Sprint("+8490000", i%20), Value: fmt.Appendf(nil, "%d", i)}
			}
			if err := p.Write(ctx, recs...); err != nil {
				t.Fatal(err)
			}
			if len(requests) != 1 {
				t.Fatalf("%d produce requests for one write, want 1", len(requests))
			}
			if parts := len(requests[0].Topics[0].Partitions); parts != 6 {
				t.Errorf("the request carried %d partitions, want all 6 of %s", parts, topic)
			}

			partitions := []int{0, 1, 2, 3, 4, 5}
			want := map[int][]string{}
			for _, r := range recs {
				p := kafka.Murmur2Balancer{}.Balance(kafka.Message{Key: []byte(r.Key)}, partitions...)
				want[p] = append(want[p], r.Key+"="+string(r.Value))
			}
			client := &kafka.Client{Addr: kafka.TCP(strings.Split(brokers, ",")...), Timeout: 10 * time.Second}
			for _, part := range partitions {
				res, err := client.Fetch(ctx, &kafka.FetchRequest{Topic: topic, Partition: part, Offset: 0, MinBytes: 1, MaxBytes: 1 << 20})
				if err != nil {
					t.Fatal(err)
				}
				if res.Error != nil {
					t.Fatal(res.Error)
				}
				var got []string
				for {
					r, err := res.Records.ReadRecord()
					if err != nil {
						break
					}
					k, _ := kafka.ReadAll(r.Key)
					v, _ := kafka.ReadAll(r.Value)
					got = append(got, string(k)+"="+string(v))
				}
				if fmt.Sprint(got) != fmt.Sprint(want[part]) {
					t.Errorf("partition %d holds %v, want %v", part, got, want[part])
				}
			}

			// Over a MiB for one partition: taken in turns, in order.
			big := names.Lane(topics.LaneAlert)
			var bigs []producer.Record
			for i := range 3 {
				bigs = append(bigs, producer.Record{Topic: big, Key: "same", Value: append(fmt.Appendf(nil, "%d", i), make([]byte, 600<<10)...)})
			}
			if err := p.Write(ctx, bigs...); err != nil {
				t.Fatalf("writing 1.8 MB to one partition: %v", err)
			}
			part := kafka.Murmur2Balancer{}.Balance(kafka.Message{Key: []byte("same")}, partitions...)
			var got []string
			for offset := int64(0); len(got) < 3; {
				res, err := client.Fetch(ctx, &kafka.FetchRequest{Topic: big, Partition: part, Offset: offset, MinBytes: 1, MaxBytes: 4 << 20})
				if err != nil {
					t.Fatal(err)
				}
				if res.Error != nil {
					t.Fatal(res.Error)
				}
				n := len(got)
				for {
					r, err := res.Records.ReadRecord()
					if err != nil {
						break
					}
					v, _ := kafka.ReadAll(r.Value)
					got, offset = append(got, string(v[:1])), r.Offset+1
				}
				if len(got) == n {
					t.Fatalf("partition %d of %s holds %v, want [0 1 2]", part, big, got)
				}
			}
			if fmt.Sprint(got) != "[0 1 2]" {
				t.Errorf("partition %d of %s holds %v, want [0 1 2]", part, big, got)
			}
		})
	}
}

// scripted is a RoundTripper that answers metadata for one topic of six
// partitions led by broker 1, and each produce request with what answer
// says for each of its partitions.
type scripted struct {
	mu       sync.Mutex
	requests []*produceAPI.Request
	answer   func(call int, partition int32) int16 // the partition's error code
	fail     func(call int) error                  // the whole request's error
	unknown  bool                                  // the topic is not known
	metadata int                                   // metadata requests answered
}

func (s *scripted) RoundTrip(_ context.Context, _ net.Addr, m protocol.Message) (protocol.Message, error) {
	switch req := m.(type) {
	case *metadataAPI.Request:
		s.mu.Lock()
		s.metadata++
		s.mu.Unlock()
		t := metadataAPI.ResponseTopic{Name: req.TopicNames[0]}
		if s.unknown {
			t.ErrorCode = int16(kafka.UnknownTopicOrPartition)
		}
		for i := range int32(6) {
			t.Partitions = append(t.Partitions, metadataAPI.ResponsePartition{PartitionIndex: i, LeaderID: 1})
		}
		return &metadataAPI.Response{Topics: []metadataAPI.ResponseTopic{t}}, nil
	case *produceAPI.Request:
		s.mu.Lock()
		call := len(s.requests)
		s.requests = append(s.requests, req)
		s.mu.Unlock()
		if s.fail != nil {
			if err := s.fail(call); err != nil {
				return nil, err
			}
		}
		res := &produceAPI.Response{}
		for _, rt := range req.Topics {
			t := produceAPI.ResponseTopic{Topic: rt.Topic}
			for _, rp := range rt.Partitions {
				t.Partitions = append(t.Partitions, produceAPI.ResponsePartition{Partition: rp.Partition, ErrorCode: s.answer(call, rp.Partition)})
			}
			res.Topics = append(res.Topics, t)
		}
		return res, nil
	}
	return nil, fmt.Errorf("unexpected request %T", m)
}

func scriptedWriter(s *scripted) *brokerWriter {
	return &brokerWriter{addr: kafka.TCP("127.0.0.1:1"), rt: s, timeout: time.Second, maxAttempts: 3,
		backoffMin: time.Millisecond, backoffMax: time.Millisecond}
}

// messagesOnEveryPartition returns messages with keys that Murmur2 puts
// on each of six partitions, and the partition of each.
func messagesOnEveryPartition() ([]kafka.Message, []int) {
	var (
		msgs  []kafka.Message
		parts []int
		seen  = map[int]bool{}
	)
	for i := 0; len(seen) < 6; i++ {
		m := kafka.Message{Topic: "loa.otp", Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v")}
		p := kafka.Murmur2Balancer{}.Balance(m, 0, 1, 2, 3, 4, 5)
		if !seen[p] {
			seen[p] = true
			msgs, parts = append(msgs, m), append(parts, p)
		}
	}
	return msgs, parts
}

// TestAPartitionRefusedForAWhileIsWrittenAgainAlone: a partition whose
// leader is moving (a temporary error) is written again, alone, and the
// write succeeds; a partition refused for good (the message too large)
// fails its own messages only, at once.
func TestAPartitionRefusedForAWhileIsWrittenAgainAlone(t *testing.T) {
	msgs, parts := messagesOnEveryPartition()
	moving, tooLarge := int32(parts[2]), int32(parts[4])

	s := &scripted{answer: func(call int, p int32) int16 {
		if call == 0 && p == moving {
			return int16(kafka.NotLeaderForPartition)
		}
		return 0
	}}
	if err := scriptedWriter(s).write(t.Context(), msgs...); err != nil {
		t.Fatalf("write: %v", err)
	}
	if len(s.requests) != 2 {
		t.Fatalf("%d produce requests, want 2 (the write, then the moving partition again)", len(s.requests))
	}
	if ps := s.requests[1].Topics[0].Partitions; len(ps) != 1 || ps[0].Partition != moving {
		t.Errorf("the second request carried %v, want partition %d alone", ps, moving)
	}

	s = &scripted{answer: func(call int, p int32) int16 {
		if p == tooLarge {
			return int16(kafka.MessageSizeTooLarge)
		}
		return 0
	}}
	err := scriptedWriter(s).write(t.Context(), msgs...)
	we, ok := errors.AsType[kafka.WriteErrors](err)
	if !ok || len(we) != len(msgs) {
		t.Fatalf("write: %v, want kafka.WriteErrors of %d", err, len(msgs))
	}
	for i, e := range we {
		if (e != nil) != (parts[i] == int(tooLarge)) || e != nil && !errors.Is(e, kafka.MessageSizeTooLarge) {
			t.Errorf("message %d (partition %d): %v", i, parts[i], e)
		}
	}
	if len(s.requests) != 1 {
		t.Errorf("%d produce requests, want 1: a message too large is not tried again", len(s.requests))
	}
}

// TestALostConnectionIsTriedAgainThenReported: a request whose connection
// was lost is sent again up to the attempts allowed; then every message
// of it reports why.
func TestALostConnectionIsTriedAgainThenReported(t *testing.T) {
	msgs, _ := messagesOnEveryPartition()
	lost := &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
	s := &scripted{answer: func(int, int32) int16 { return 0 }, fail: func(int) error { return fmt.Errorf("%w: %w", lost, io.ErrUnexpectedEOF) }}
	err := scriptedWriter(s).write(t.Context(), msgs...)
	we, ok := errors.AsType[kafka.WriteErrors](err)
	if !ok || we.Count() != len(msgs) {
		t.Fatalf("write: %v, want every message failed", err)
	}
	if len(s.requests) != 3 {
		t.Errorf("%d produce requests, want 3 (the attempts allowed)", len(s.requests))
	}
	if !errors.Is(we[0], lost) {
		t.Errorf("message 0 failed with %v, want the lost connection", we[0])
	}
}

// TestAPartitionOverABatchGoesInTurns: a partition's messages over
// maxBatchBytes go in requests one after the other, in order (the broker
// refuses a record batch over its message.max.bytes), and after one of
// them failed for a while the later ones wait for it: the partition's
// messages are written in the order given, however the attempts went.
func TestAPartitionOverABatchGoesInTurns(t *testing.T) {
	big := make([]byte, 600<<10)
	var msgs []kafka.Message
	for i := range 3 {
		msgs = append(msgs, kafka.Message{Topic: "loa.otp", Key: []byte("same"), Value: append([]byte(fmt.Sprint(i)), big...)})
	}
	other, _ := messagesOnEveryPartition()
	same := kafka.Murmur2Balancer{}.Balance(msgs[0], 0, 1, 2, 3, 4, 5)
	for _, m := range other {
		if (kafka.Murmur2Balancer{}).Balance(m, 0, 1, 2, 3, 4, 5) != same {
			msgs = append(msgs, m)
			break
		}
	}

	var written []string // the values' first byte written to the big partition, in order
	s := &scripted{answer: func(call int, p int32) int16 {
		if call == 0 && p == int32(same) {
			return int16(kafka.NotEnoughReplicas)
		}
		return 0
	}}
	w := scriptedWriter(s)
	w.requests = func(r *produceAPI.Request) {
		for _, tp := range r.Topics {
			for _, p := range tp.Partitions {
				if p.Partition != int32(same) {
					continue
				}
				for {
					rec, err := p.RecordSet.Records.ReadRecord()
					if err != nil {
						break
					}
					v, _ := kafka.ReadAll(rec.Value)
					written = append(written, string(v[:1]))
				}
			}
		}
	}
	if err := w.write(t.Context(), msgs...); err != nil {
		t.Fatalf("write: %v", err)
	}
	// Attempt 1: message 0 refused for a while, 1 and 2 not sent after
	// it. Attempt 2: 0, then 1, then 2, a request each.
	if got := fmt.Sprint(written); got != "[0 0 1 2]" {
		t.Errorf("the big partition was written %s, want [0 0 1 2]", got)
	}
	if len(s.requests) != 4 {
		t.Errorf("%d produce requests, want 4", len(s.requests))
	}
}

// TestAnUnknownTopicFailsAtOnce: a write to a topic the brokers do not
// know fails at once, every message with the reason, and asks them
// nothing more, as kafka-go's Writer did (the callers retry).
func TestAnUnknownTopicFailsAtOnce(t *testing.T) {
	s := &scripted{answer: func(int, int32) int16 { return 0 }, unknown: true}
	msgs, _ := messagesOnEveryPartition()
	err := scriptedWriter(s).write(t.Context(), msgs...)
	we, ok := errors.AsType[kafka.WriteErrors](err)
	if !ok || we.Count() != len(msgs) || !errors.Is(we[0], kafka.UnknownTopicOrPartition) {
		t.Fatalf("write: %v, want every message failed with UnknownTopicOrPartition", err)
	}
	if s.metadata != 1 || len(s.requests) != 0 {
		t.Errorf("%d metadata and %d produce requests, want 1 and 0", s.metadata, len(s.requests))
	}
}
