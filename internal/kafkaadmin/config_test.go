package kafkaadmin

import (
	"testing"

	"github.com/loa-hub/loa/internal/topics"
)

// TestConfigEntries: a replicated topic needs two in-sync replicas for a
// write and never elects a replica that missed acknowledged writes; a
// single broker's topics keep the broker's defaults.
func TestConfigEntries(t *testing.T) {
	spec := topics.Specs()[0]
	get := func(replication int) map[string]string {
		m := map[string]string{}
		for _, e := range configEntries(spec, replication) {
			m[e.ConfigName] = e.ConfigValue
		}
		return m
	}
	if m := get(1); len(m) != 1 || m["retention.ms"] == "" {
		t.Errorf("replication 1: %v", m)
	}
	if m := get(3); m["min.insync.replicas"] != "2" || m["unclean.leader.election.enable"] != "false" || m["retention.ms"] == "" {
		t.Errorf("replication 3: %v", m)
	}
}
