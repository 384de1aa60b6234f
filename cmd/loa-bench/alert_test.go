package main

import (
	"regexp"
	"strconv"
	"testing"
)

// TestAlertBench: `loa-bench alert` on the real services posts the alert
// on the idle system and again while the broadcast is in flight, and
// prints each one's first, median, 99th percentile and last push in
// order, with the broadcast's pushes meanwhile.
func TestAlertBench(t *testing.T) {
	// A slow broadcast (a low shared FCM rate) is still in flight when
	// the second alert is posted.
	s := newBenchRunner(t).run("alert", "-devices", "4000", "-alert-devices", "300", "-before", "200",
		"-env", "LOA_FCM_RATE=1000", "-env", "LOA_FCM_BURST=100")
	for _, name := range []string{"idle", "under the broadcast"} {
		m := regexp.MustCompile(name + `\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)`).FindStringSubmatch(s)
		if m == nil {
			t.Errorf("no %q row", name)
			continue
		}
		var v [5]int
		for i := range v {
			v[i], _ = strconv.Atoi(m[i+1])
		}
		if v[0] > v[1] || v[1] > v[2] || v[2] > v[3] {
			t.Errorf("%s: first %d, p50 %d, p99 %d, last %d ms are out of order", name, v[0], v[1], v[2], v[3])
		}
		if name == "idle" && v[4] != 0 {
			t.Errorf("%d broadcast pushes during the idle alert", v[4])
		}
	}
}
