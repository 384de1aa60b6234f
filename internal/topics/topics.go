// Package topics is the one place where Loa's Kafka topics are defined —
// names, partitions, retention. internal/kafkaadmin creates them.
package topics

import (
	"fmt"
	"time"
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

// All returns the full names of every topic Loa uses (Specs).
func (n Names) All() []string {
	var out []string
	for _, s := range Specs() {
		out = append(out, n.Topic(s.Name))
	}
	return out
}

// Group returns the full consumer-group id for a base group name.
func (n Names) Group(base string) string { return n.Prefix + base }
