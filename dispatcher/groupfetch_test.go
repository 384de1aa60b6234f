package dispatcher

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	fetchAPI "github.com/segmentio/kafka-go/protocol/fetch"

	"github.com/loa-hub/loa/internal/kafkaadmin"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/kafkapub"
)

// fetchRig is a topic of six partitions (loa.otp's) on the real Kafka or
// on kfake, and a publisher to it.
func fetchRig(t *testing.T, backend string) (brokers []string, topic string, pub *kafkapub.Publisher) {
	t.Helper()
	addrs := testenv.Kfake(t)
	if backend == "real" {
		addrs = testenv.KafkaBrokers(t)
	}
	names := topics.Names{Prefix: "t" + testenv.ID() + "."}
	testenv.DeleteTopicsAtEnd(t, addrs, names.Prefix)
	brokers = strings.Split(addrs, ",")
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := kafkaadmin.Ensure(ctx, brokers, names, 1); err != nil {
		t.Fatal(err)
	}
	pub, err := kafkapub.NewPublisher(kafkapub.Config{Brokers: brokers, Names: names})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close() })
	return brokers, names.Lane(topics.LaneOTP), pub
}

// publishKeys writes n records to topic, keys k0…k(n-1) spread over its
// partitions, values "from+i".
func publishKeys(t *testing.T, pub *kafkapub.Publisher, topic string, from, n int) {
	t.Helper()
	recs := make([]producer.Record, n)
	for i := range recs {
		recs[i] = producer.Record{Topic: topic, Key: fmt.Sprint("k", i%20), Value: fmt.Appendf(nil, "%d", from+i)}
	}
	if err := pub.Write(t.Context(), recs...); err != nil {
		t.Fatal(err)
	}
}

// fetchN fetches n messages from r, or fails.
func fetchN(t *testing.T, r messageReader, n int) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var out []kafka.Message
	for len(out) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("after %d of %d messages: %v", len(out), n, err)
		}
		out = append(out, m)
	}
	return out
}

// TestOneFetchRequestReadsEveryPartition: a groupFetcher asks for all
// the partitions it holds in one fetch request (kafka-go's Reader sends
// one a partition, each on a connection of its own), hands every message
// on in its partition's order, and commits: a member that joins the
// group after it closed starts after what it committed.
func TestOneFetchRequestReadsEveryPartition(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			brokers, topic, pub := fetchRig(t, b.Name)
			publishKeys(t, pub, topic, 0, 60)

			f, err := newGroupFetcher(brokers, topic, "g-one", 50*time.Millisecond, quietLogger())
			if err != nil {
				t.Fatal(err)
			}
			var (
				mu       sync.Mutex
				requests []*fetchAPI.Request
			)
			f.requests = func(r *fetchAPI.Request) {
				mu.Lock()
				requests = append(requests, r)
				mu.Unlock()
			}
			f.start()
			got := fetchN(t, f, 60)
			last := map[int]int64{}
			seen := map[string]bool{}
			for _, m := range got {
				if o, ok := last[m.Partition]; ok && m.Offset <= o {
					t.Errorf("partition %d: offset %d after %d", m.Partition, m.Offset, o)
				}
				last[m.Partition] = m.Offset
				seen[string(m.Value)] = true
			}
			if len(seen) != 60 || len(last) != 6 {
				t.Fatalf("%d distinct messages from %d partitions, want 60 from 6", len(seen), len(last))
			}
			mu.Lock()
			n := len(requests)
			for i, r := range requests {
				if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 6 {
					t.Errorf("request %d asked for %+v, want the topic's 6 partitions", i, r.Topics)
				}
			}
			mu.Unlock()
			// All 60 were there before the first request: it brought them.
			if n > 2 {
				t.Errorf("%d fetch requests for 60 messages already written, want 1 (and the next under way)", n)
			}
			for _, m := range got {
				if err := f.CommitMessages(t.Context(), m); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}

			publishKeys(t, pub, topic, 60, 12)
			g, err := newGroupFetcher(brokers, topic, "g-one", 50*time.Millisecond, quietLogger())
			if err != nil {
				t.Fatal(err)
			}
			g.start()
			defer g.Close()
			for _, m := range fetchN(t, g, 12) {
				if seen[string(m.Value)] {
					t.Errorf("message %s read again after it was committed", m.Value)
				}
			}
		})
	}
}

// TestGroupFetchersShareTheTopic: two members of one group hold
// partitions of their own, and between them read every message once.
func TestGroupFetchersShareTheTopic(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			brokers, topic, pub := fetchRig(t, b.Name)
			var fs []*groupFetcher
			for range 2 {
				f, err := newGroupFetcher(brokers, topic, "g-two", 50*time.Millisecond, quietLogger())
				if err != nil {
					t.Fatal(err)
				}
				f.start()
				defer f.Close()
				fs = append(fs, f)
			}
			// Wait until the group has given each member partitions.
			held := func(f *groupFetcher) map[int]bool {
				f.mu.Lock()
				defer f.mu.Unlock()
				out := map[int]bool{}
				for p := range f.held {
					out[p] = true
				}
				return out
			}
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				a, b := held(fs[0]), held(fs[1])
				if len(a) > 0 && len(b) > 0 && len(a)+len(b) == 6 {
					break
				}
				select {
				case <-ctx.Done():
					t.Fatalf("the group never shared the partitions: %v and %v", a, b)
				case <-tick.C:
				}
			}
			publishKeys(t, pub, topic, 0, 60)
			var (
				mu   sync.Mutex
				seen = map[string]int{}
				wg   sync.WaitGroup
			)
			total := make(chan struct{}, 60)
			for i, f := range fs {
				wg.Go(func() {
					mine := held(f)
					for {
						m, err := f.FetchMessage(ctx)
						if err != nil {
							return
						}
						if !mine[m.Partition] {
							t.Errorf("member %d read partition %d, not its own", i, m.Partition)
						}
						mu.Lock()
						seen[string(m.Value)]++
						mu.Unlock()
						total <- struct{}{}
					}
				})
			}
			for range 60 {
				select {
				case <-total:
				case <-ctx.Done():
					t.Fatal("not every message was read")
				}
			}
			cancel()
			wg.Wait()
			if len(seen) != 60 {
				t.Errorf("%d distinct messages, want 60", len(seen))
			}
			for v, n := range seen {
				if n != 1 {
					t.Errorf("message %s read %d times", v, n)
				}
			}
		})
	}
}

// TestUrgentLanesCanReadThroughTheReader: the urgent lanes read through
// one fetch a broker by default and through kafka-go's Reader with
// UrgentReader (LOA_DISPATCHER_URGENT_FETCH=reader), the bulk lane through
// the Reader either way; with the Reader, the urgent lanes still deliver
// each notification once across a restart.
func TestUrgentLanesCanReadThroughTheReader(t *testing.T) {
	for _, reader := range []bool{false, true} {
		cfg := DefaultConfig()
		cfg.Brokers, cfg.UrgentReader = []string{"127.0.0.1:9"}, reader
		d, err := New(cfg, nil, nil, nil, nil, quietLogger())
		if err != nil {
			t.Fatal(err)
		}
		for _, lane := range []topics.Lane{topics.LaneOTP, topics.LaneAlert, topics.LaneDirect, topics.LaneBulk} {
			want := lane != topics.LaneBulk && !reader
			if got := d.laneConsumer(lane).cfg.OneFetch; got != want {
				t.Errorf("UrgentReader %v: lane %s reads through one fetch: %v, want %v", reader, lane, got, want)
			}
		}
	}
	forEachBackend(t, func(t *testing.T, r *rig) {
		const n = 300
		ids := r.publishDirect(t, n, "reader")
		reader := func(d *Dispatcher) { d.cfg.UrgentReader = true }
		stop := r.start(t, reader)
		if err := r.outbox.WaitTotal(waitCtx(t), 100); err != nil {
			t.Fatalf("first dispatcher delivered %d: %v", r.outbox.Total(), err)
		}
		stop()
		stop = r.start(t, reader)
		if err := r.outbox.WaitTotal(waitCtx(t), n); err != nil {
			t.Fatalf("delivered %d of %d: %v", r.outbox.Total(), n, err)
		}
		waitLedger(t, r, ids)
		stop()
		assertEachOnce(t, r, ids)
	})
}
