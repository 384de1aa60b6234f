package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loa-hub/loa/internal/fleet"
	"github.com/loa-hub/loa/internal/testenv"
)

// TestBroadcastBench: `loa-bench broadcast` with two dispatchers on the
// real services seeds the devices, gets the broadcast approved through
// the API, waits for every push and prints the rate, the CPU per push of
// each process and how the two dispatchers shared the work.
func TestBroadcastBench(t *testing.T) {
	env := map[string]string{
		"LOA_TEST_DATABASE_URL":  testenv.PostgresURL(t), // a schema of the test's, for the -database-url base
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
	err = run(ctx, []string{"loa-bench", "broadcast", "-loa", loa, "-devices", "3000", "-dispatchers", "2", "-no-bar",
		"-dir", t.TempDir()}, func(k string) string { return env[k] }, &out)
	t.Log(out.String())
	if err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if m := regexp.MustCompile(`= (\d+) pushes/s`).FindStringSubmatch(s); m == nil {
		t.Error("no pushes/s figure")
	} else if n, _ := strconv.Atoi(m[1]); n <= 0 {
		t.Errorf("pushes/s = %d", n)
	}
	for _, row := range []string{"loa api", "loa dispatcher-1", "loa dispatcher-2", "fcm fake", "kafka", "redis", "postgresql", "Loa's processes"} {
		if !strings.Contains(s, row) {
			t.Errorf("no %q row", row)
		}
	}
	m := regexp.MustCompile(`dispatcher-1 (\d+) \(\d+%\), dispatcher-2 (\d+)`).FindStringSubmatch(s)
	if m == nil {
		t.Fatal("no per-dispatcher counts")
	}
	a, _ := strconv.Atoi(m[1])
	b, _ := strconv.Atoi(m[2])
	if a+b < 3000 {
		t.Errorf("the dispatchers sent %d + %d pushes, want at least 3000 between them", a, b)
	}
}
