package instance

import (
	"strings"
	"testing"
)

// TestClusterIDIsNotAnOption: no cluster id begins with '-', which
// Kafka's storage tool takes for an option ("argument --cluster-id/-t:
// expected one argument").
func TestClusterIDIsNotAnOption(t *testing.T) {
	for range 10000 {
		if id := clusterID(); strings.HasPrefix(id, "-") || len(id) != 22 {
			t.Fatalf("cluster id %q", id)
		}
	}
}
