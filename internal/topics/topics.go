// Package topics is the one place where Loa's Kafka topics are defined —
// names, partitions, retention — and where they are created.
package topics

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// Lane is a class of traffic with its own topic, consumer group and
// worker budget, so a million-device broadcast never delays a code.
type Lane string

// The lanes, from most to least urgent.
const (
	LaneOTP    Lane = "otp"
	LaneAlert  Lane = "alert"
	LaneDirect Lane = "direct"
	LaneBulk   Lane = "bulk"
)

// Lanes lists every lane.
var Lanes = []Lane{LaneOTP, LaneAlert, LaneDirect, LaneBulk}

// Valid reports whether l is a known lane.
func (l Lane) Valid() bool {
	for _, x := range Lanes {
		if x == l {
			return true
		}
	}
	return false
}

// Base topic names, before the deployment's prefix.
const (
	Receipts   = "loa.receipts"
	DeadLetter = "loa.deadletter"
)

// MaxRetryTiers is how many retry-tier topics exist; a deployment uses
// the first len(its tier delays) of them.
const MaxRetryTiers = 5

// RetryTier returns the base topic name of retry tier i (0-based) of the
// direct and bulk lanes.
func RetryTier(i int) string { return fmt.Sprintf("loa.retry.%d", i+1) }

// UrgentRetryTier returns the base topic name of retry tier i (0-based)
// of the otp and alert lanes: their retries never queue behind bulk ones.
func UrgentRetryTier(i int) string { return fmt.Sprintf("loa.retry.urgent.%d", i+1) }

// LaneTopic returns the base topic name of a lane.
func LaneTopic(l Lane) string { return "loa." + string(l) }

// Spec describes one topic.
type Spec struct {
	Name       string // base name; the deployment prefix is added by Names
	Partitions int
	Retention  time.Duration
}

// Specs lists every topic Loa uses. Lane retention only needs to outlive
// an outage of the dispatcher; receipts and dead letters are kept longer
// for audit and replay.
func Specs() []Spec {
	specs := []Spec{
		{LaneTopic(LaneOTP), 6, 24 * time.Hour},
		{LaneTopic(LaneAlert), 6, 7 * 24 * time.Hour},
		{LaneTopic(LaneDirect), 6, 7 * 24 * time.Hour},
		{LaneTopic(LaneBulk), 12, 7 * 24 * time.Hour},
		{Receipts, 6, 14 * 24 * time.Hour},
		{DeadLetter, 3, 30 * 24 * time.Hour},
	}
	for i := range MaxRetryTiers {
		specs = append(specs, Spec{RetryTier(i), 6, 3 * 24 * time.Hour}, Spec{UrgentRetryTier(i), 3, 3 * 24 * time.Hour})
	}
	return specs
}

// Names applies a deployment prefix (which may be empty) to base names.
// Several deployments, or parallel test runs, share one cluster through
// distinct prefixes.
type Names struct{ Prefix string }

// Topic returns the full name of a base topic.
func (n Names) Topic(base string) string { return n.Prefix + base }

// Lane returns the full topic name of a lane.
func (n Names) Lane(l Lane) string { return n.Prefix + LaneTopic(l) }

// Group returns the full consumer-group id for a base group name.
func (n Names) Group(base string) string { return n.Prefix + base }

// Ensure creates every topic in Specs that does not exist yet on the
// cluster at brokers, with the given replication factor. Existing topics
// are left as they are. It returns when the controller has accepted the
// requests.
func Ensure(ctx context.Context, brokers []string, names Names, replication int) error {
	if len(brokers) == 0 {
		return errors.New("topics: ensure: no brokers")
	}
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 15 * time.Second}
	var cfgs []kafka.TopicConfig
	for _, s := range Specs() {
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
func configEntries(s Spec, replication int) []kafka.ConfigEntry {
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

// waitReady polls metadata until every topic has leaders for all its
// partitions: a topic just created may not accept writes yet.
func waitReady(ctx context.Context, client *kafka.Client, cfgs []kafka.TopicConfig) error {
	want := make([]string, len(cfgs))
	for i, c := range cfgs {
		want[i] = c.Topic
	}
	for {
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: want})
		if err == nil {
			ready := 0
			for _, t := range md.Topics {
				if t.Error != nil || len(t.Partitions) == 0 {
					continue
				}
				ok := true
				for _, p := range t.Partitions {
					if p.Error != nil || p.Leader.Host == "" {
						ok = false
					}
				}
				if ok {
					ready++
				}
			}
			if ready == len(want) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topics: waiting for %s: %w", strings.Join(want, ", "), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
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
