package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/loa-hub/loa/internal/fleet"
	"github.com/loa-hub/loa/internal/testenv"
)

// TestAlertBench: `loa-bench alert` on the real services posts the alert
// on the idle system and again while the broadcast is in flight, and
// prints each one's first, median, 99th percentile and last push in
// order, with the broadcast's pushes meanwhile.
func TestAlertBench(t *testing.T) {
	env := map[string]string{
		"LOA_TEST_DATABASE_URL":  testenv.PostgresURL(t),
		"LOA_TEST_REDIS_URL":     testenv.RedisURL(t),
		"LOA_TEST_KAFKA_BROKERS": testenv.KafkaBrokers(t),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	loa, err := fleet.Build(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	// A slow broadcast (a low shared FCM rate) is still in flight when
	// the second alert is posted.
	err = run(ctx, []string{"loa-bench", "alert", "-loa", loa, "-devices", "4000", "-alert-devices", "300", "-before", "200",
		"-env", "LOA_FCM_RATE=1000", "-env", "LOA_FCM_BURST=100", "-dir", t.TempDir()}, func(k string) string { return env[k] }, &out)
	t.Log(out.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"idle", "under the broadcast"} {
		m := regexp.MustCompile(name + `\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)`).FindStringSubmatch(out.String())
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
