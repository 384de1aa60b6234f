package dispatcher

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
)

// TestTrackerCommits drives the offset tracker through fetches ("+p:o"),
// finished messages ("-p:o") and rewinds, and checks which offsets it
// commits, in order ("p:o"): always the highest offset below which every
// fetched message of the partition is done, never one that is not.
func TestTrackerCommits(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  string
		want string
	}{
		{"in order", "+0:0 +0:1 +0:2 -0:0 -0:1 -0:2", "0:0 0:1 0:2"},
		{"out of order waits for the oldest", "+0:0 +0:1 +0:2 -0:2 -0:1 -0:0", "0:2"},
		{"a slow head holds the partition back", "+0:0 +0:1 +0:2 -0:1 -0:2", ""},
		{"gaps in the offsets (compaction, transaction markers)", "+0:10 +0:12 +0:15 -0:12 -0:10 -0:15", "0:12 0:15"},
		{"partitions are independent", "+0:0 +1:0 +0:1 +1:1 -1:1 -0:0 -1:0 -0:1", "0:0 1:1 0:1"},
		{"a finished message the tracker never fetched", "-3:7 +0:0 -0:0", "0:0"},
		{"finished twice commits once", "+0:0 +0:1 -0:0 -0:0 -0:1 -0:1", "0:0 0:1"},

		// A rebalance hands the partition back from its committed offset:
		// what was pending from there on is fetched again.
		{"rewound: offsets from the committed one are fetched again", "+0:5 +0:6 +0:7 -0:5 +0:6 +0:7 -0:6 -0:7", "0:5 0:6 0:7"},
		{"rewound to the start of what is pending", "+0:5 +0:6 +0:7 +0:5 +0:6 -0:5 -0:6", "0:5 0:6"},
		// The first fetch's copy of 6 finishes after the rewind: it was
		// handled, so it counts once its offset is pending again.
		{"rewound while in flight: the old copy finishing counts", "+0:5 +0:6 +0:7 -0:5 +0:6 -0:6 +0:7 -0:7 -0:6 -0:7", "0:5 0:6 0:7"},
		// The first fetch's copy of 7 finishes before 7 is fetched again:
		// not pending, it is forgotten; the second copy commits it.
		{"rewound: an old copy finishing before its refetch is forgotten", "+0:5 +0:6 +0:7 -0:5 +0:6 -0:7 +0:7 -0:6 -0:7", "0:5 0:6 0:7"},
		{"rewound on one partition leaves the other alone", "+0:1 +1:1 +0:2 +1:2 +0:1 -1:1 -1:2 -0:2 -0:1", "1:1 1:2 0:1"},
		// After a rebalance another member may have moved the partition on:
		// it comes back at a later offset than what is pending here.
		{"rebalanced forward", "+0:5 +0:6 -0:5 -0:6 +0:40 +0:41 -0:41 -0:40", "0:5 0:6 0:41"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			tr := newTracker(func(m kafka.Message) {
				if m.Topic != "lane" {
					t.Errorf("commit on topic %q", m.Topic)
				}
				got = append(got, fmt.Sprintf("%d:%d", m.Partition, m.Offset))
			})
			for _, op := range strings.Fields(tc.ops) {
				p, o, ok := strings.Cut(op[1:], ":")
				if !ok {
					t.Fatalf("bad op %q", op)
				}
				part, _ := strconv.Atoi(p)
				off, _ := strconv.ParseInt(o, 10, 64)
				m := kafka.Message{Topic: "lane", Partition: part, Offset: off}
				switch op[0] {
				case '+':
					tr.add(m)
				case '-':
					tr.done(m)
				default:
					t.Fatalf("bad op %q", op)
				}
			}
			if want := strings.Fields(tc.want); !slices.Equal(got, want) {
				t.Fatalf("committed %v, want %v", got, want)
			}
			for part, p := range tr.parts {
				if len(p.done) > len(p.pending) {
					t.Errorf("partition %d remembers %d finished offsets for %d pending", part, len(p.done), len(p.pending))
				}
			}
		})
	}
}

// TestByteBudget: a consumer holds at most its budget of fetched
// messages; a message that does not fit waits for bytes to be given back,
// and one larger than the whole budget is taken when nothing else is held.
// (A context that has ended shows whether acquire would wait.)
func TestByteBudget(t *testing.T) {
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	b := newByteBudget(10)
	if err := b.acquire(ended, 6); err != nil {
		t.Fatalf("6 of 10 bytes: %v", err)
	}
	if err := b.acquire(ended, 6); err == nil {
		t.Fatal("6 more bytes than fit were taken without waiting")
	}
	if err := b.acquire(ended, 4); err != nil {
		t.Fatalf("the 4 bytes left: %v", err)
	}
	b.release(6)
	waited := make(chan error)
	go func() { waited <- b.acquire(context.Background(), 7) }() // 4 held: must wait for the other 4
	b.release(4)
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	b.release(7)
	if err := b.acquire(ended, 100); err != nil {
		t.Fatalf("a message over the whole budget, nothing held: %v", err)
	}
	if newByteBudget(0).max != DefaultQueueBytes {
		t.Error("no default budget")
	}
}

// TestReaderReadAheadIsBounded: a Kafka reader holds only a few fetched
// messages for its consumer (kafka-go's default is 100), so what the
// dispatcher reads ahead of its workers and its ledger is bounded by the
// consumer's byte budget, not by how far behind a large broadcast puts
// them: 100 receipt records of a batch each are up to 25 MB.
func TestReaderReadAheadIsBounded(t *testing.T) {
	c := &consumer{cfg: consumerConfig{Brokers: []string{"127.0.0.1:1"}, Topic: "lane", Group: "g"}, log: quietLogger()}
	r := c.newReader()
	defer r.Close()
	// A record of receipts is up to maxReceiptRecordBytes.
	if got := r.Config().QueueCapacity; got*maxReceiptRecordBytes > 2<<20 {
		t.Fatalf("the reader queues %d messages ahead of its consumer: up to %d MiB of receipts; want at most 2 MiB", got, got*maxReceiptRecordBytes>>20)
	}
}
