package topics

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"
)

// Consumer names one consumer group reading one topic, for lag reports.
// Lane is how operators call it: a lane's name, or "receipts".
type Consumer struct {
	Lane  string
	Topic string // full name, prefix included
	Group string // full group id, prefix included
}

// Consumers lists the consumer groups of the dispatcher whose lag
// operators watch: one per lane, and the ledger's on the receipts topic.
func (n Names) Consumers() []Consumer {
	out := make([]Consumer, 0, len(Lanes)+1)
	for _, l := range Lanes {
		out = append(out, Consumer{Lane: string(l), Topic: n.Lane(l), Group: n.Group("loa-dispatcher-" + string(l))})
	}
	return append(out, Consumer{Lane: "receipts", Topic: n.Topic(Receipts), Group: n.Group("loa-ledger")})
}

// PartitionLag is one partition's backlog for one consumer group: the
// messages written and not yet committed by the group.
type PartitionLag struct {
	Lane      string
	Topic     string
	Partition int
	// End is the partition's next offset (its high watermark); Committed
	// the group's committed offset, -1 when it has committed none.
	End, Committed int64
	// Lag is End − Committed; for a group that has committed nothing, End
	// less the partition's first retained offset (all of it waits).
	Lag int64
}

// LagReader measures consumer lag on one cluster. It keeps one client;
// safe for concurrent use.
type LagReader struct {
	client *kafka.Client
}

// NewLagReader returns a LagReader for the cluster at brokers.
func NewLagReader(brokers []string) *LagReader {
	return &LagReader{client: &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}}
}

// Lag returns the lag of every partition of each consumer's topic, in the
// order of consumers and partitions. A topic that does not exist yet is
// skipped. It returns the first error the cluster answers with, or
// ctx's.
func (r *LagReader) Lag(ctx context.Context, consumers []Consumer) ([]PartitionLag, error) {
	if len(consumers) == 0 {
		return nil, nil
	}
	names := make([]string, 0, len(consumers))
	for _, c := range consumers {
		if !slices.Contains(names, c.Topic) {
			names = append(names, c.Topic)
		}
	}
	md, err := r.client.Metadata(ctx, &kafka.MetadataRequest{Topics: names})
	if err != nil {
		return nil, fmt.Errorf("topics: lag: metadata: %w", err)
	}
	parts := map[string][]int{}
	for _, t := range md.Topics {
		if t.Error != nil {
			if errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
				continue
			}
			return nil, fmt.Errorf("topics: lag: metadata of %s: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			parts[t.Name] = append(parts[t.Name], p.ID)
		}
		slices.Sort(parts[t.Name])
	}
	ends, err := r.offsets(ctx, parts, kafka.LastOffset)
	if err != nil {
		return nil, err
	}
	starts, err := r.offsets(ctx, parts, kafka.FirstOffset)
	if err != nil {
		return nil, err
	}
	var out []PartitionLag
	for _, c := range consumers {
		ps := parts[c.Topic]
		if len(ps) == 0 {
			continue
		}
		resp, err := r.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: c.Group, Topics: map[string][]int{c.Topic: ps}})
		if err != nil {
			return nil, fmt.Errorf("topics: lag: offsets of group %s: %w", c.Group, err)
		}
		// A group that never committed is unknown to some brokers: all of
		// the partition waits for it.
		if resp.Error != nil && !errors.Is(resp.Error, kafka.GroupIdNotFound) {
			return nil, fmt.Errorf("topics: lag: offsets of group %s: %w", c.Group, resp.Error)
		}
		committed := map[int]int64{}
		for _, p := range resp.Topics[c.Topic] {
			if p.Error == nil {
				committed[p.Partition] = p.CommittedOffset
			}
		}
		for _, p := range ps {
			key := tp{c.Topic, p}
			pl := PartitionLag{Lane: c.Lane, Topic: c.Topic, Partition: p, End: ends[key], Committed: -1}
			if off, ok := committed[p]; ok && off >= 0 {
				pl.Committed = off
				pl.Lag = max(0, pl.End-off)
			} else {
				pl.Lag = max(0, pl.End-starts[key])
			}
			out = append(out, pl)
		}
	}
	return out, nil
}

type tp struct {
	topic     string
	partition int
}

// offsets lists the first or last offset of every partition in parts.
func (r *LagReader) offsets(ctx context.Context, parts map[string][]int, which int64) (map[tp]int64, error) {
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for t, ps := range parts {
		for _, p := range ps {
			req.Topics[t] = append(req.Topics[t], kafka.OffsetRequest{Partition: p, Timestamp: which})
		}
	}
	if len(req.Topics) == 0 {
		return map[tp]int64{}, nil
	}
	resp, err := r.client.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("topics: lag: list offsets: %w", err)
	}
	out := map[tp]int64{}
	for t, ps := range resp.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return nil, fmt.Errorf("topics: lag: offsets of %s/%d: %w", t, p.Partition, p.Error)
			}
			if which == kafka.LastOffset {
				out[tp{t, p.Partition}] = p.LastOffset
			} else {
				out[tp{t, p.Partition}] = p.FirstOffset
			}
		}
	}
	return out, nil
}
