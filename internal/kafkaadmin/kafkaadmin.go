// Package kafkaadmin is what Loa asks of a Kafka cluster besides
// publishing and consuming: creating the topics internal/topics defines,
// checking that a broker answers, and reading consumer lag.
package kafkaadmin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/loa-hub/loa/internal/topics"
)

// Ensure creates every topic in topics.Specs that does not exist yet on the
// cluster at brokers, with the given replication factor. Existing topics
// are left as they are. It returns when the controller has accepted the
// requests.
func Ensure(ctx context.Context, brokers []string, names topics.Names, replication int) error {
	if len(brokers) == 0 {
		return errors.New("topics: ensure: no brokers")
	}
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 15 * time.Second}
	var cfgs []kafka.TopicConfig
	for _, s := range topics.Specs() {
		cfgs = append(cfgs, kafka.TopicConfig{
			Topic:             names.Topic(s.Name),
			NumPartitions:     s.Partitions,
			ReplicationFactor: replication,
			ConfigEntries:     configEntries(s, replication),
		})
	}
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: cfgs})
	if err != nil {
		return fmt.Errorf("topics: ensure: %w", err)
	}
	for topic, terr := range resp.Errors {
		if terr != nil && !errors.Is(terr, kafka.TopicAlreadyExists) {
			return fmt.Errorf("topics: ensure %s: %w", topic, terr)
		}
	}
	return waitReady(ctx, client, cfgs)
}

// configEntries are a topic's settings: its retention, and with more than
// one replica, min.insync.replicas one below the replication factor (2 of
// 3): a write with acks=all, as Loa's publisher makes, is acknowledged
// only once another broker has it too, so losing a broker loses no
// acknowledged event, and a topic keeps taking writes while one replica is
// down.
func configEntries(s topics.Spec, replication int) []kafka.ConfigEntry {
	entries := []kafka.ConfigEntry{
		{ConfigName: "retention.ms", ConfigValue: strconv.FormatInt(s.Retention.Milliseconds(), 10)},
	}
	if replication > 1 {
		entries = append(entries,
			kafka.ConfigEntry{ConfigName: "min.insync.replicas", ConfigValue: strconv.Itoa(replication - 1)},
			kafka.ConfigEntry{ConfigName: "unclean.leader.election.enable", ConfigValue: "false"})
	}
	return entries
}

// waitReady polls until every partition of every topic is served by its
// leader: a topic just created may not accept writes yet. Metadata naming
// a leader is not enough: the broker named may not have taken the
// partition up yet and refuse a write with "Not Leader For Partition"
// (the publisher's retries then run out on a loaded machine). A partition
// is ready when its leader answers for its offsets.
func waitReady(ctx context.Context, client *kafka.Client, cfgs []kafka.TopicConfig) error {
	want := make([]string, len(cfgs))
	for i, c := range cfgs {
		want[i] = c.Topic
	}
	for {
		if ready(ctx, client, want) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topics: waiting for %s: %w", strings.Join(want, ", "), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ready reports whether every partition of the topics has a leader that
// answers a ListOffsets request for it.
func ready(ctx context.Context, client *kafka.Client, topics []string) bool {
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil || len(md.Topics) != len(topics) {
		return false
	}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, t := range md.Topics {
		if t.Error != nil || len(t.Partitions) == 0 {
			return false
		}
		for _, p := range t.Partitions {
			if p.Error != nil || p.Leader.Host == "" {
				return false
			}
			req.Topics[t.Name] = append(req.Topics[t.Name], kafka.OffsetRequest{Partition: p.ID, Timestamp: kafka.LastOffset})
		}
	}
	resp, err := client.ListOffsets(ctx, req)
	if err != nil {
		return false
	}
	for _, t := range md.Topics {
		got := resp.Topics[t.Name]
		if len(got) != len(t.Partitions) {
			return false
		}
		for _, p := range got {
			if p.Error != nil {
				return false
			}
		}
	}
	return true
}

// Ping checks that at least one broker answers a metadata request.
func Ping(ctx context.Context, brokers []string) error {
	for _, b := range brokers {
		conn, err := kafka.DialContext(ctx, "tcp", b)
		if err != nil {
			continue
		}
		_, err = conn.Brokers()
		conn.Close()
		if err == nil {
			return nil
		}
	}
	return fmt.Errorf("topics: no broker of %s answers", strings.Join(brokers, ","))
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
func (r *LagReader) Lag(ctx context.Context, consumers []topics.Consumer) ([]topics.PartitionLag, error) {
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
	var out []topics.PartitionLag
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
			pl := topics.PartitionLag{Lane: c.Lane, Topic: c.Topic, Partition: p, End: ends[key], Committed: -1}
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
