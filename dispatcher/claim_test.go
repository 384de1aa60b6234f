package dispatcher

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/loa-hub/loa/internal/testenv"
)

// claimsOn returns Claims on the backend's Redis under a prefix of their
// own, removed at the end.
func claimsOn(t testing.TB, backend string) *Claims {
	t.Helper()
	url := "redis://" + testenv.Miniredis(t).Addr()
	if backend == "real" {
		url = testenv.RedisURL(t)
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	prefix := "t" + testenv.ID() + ":"
	if backend == "real" {
		testenv.DeleteRedisKeysAtEnd(t, url, prefix)
	}
	return NewClaims(rdb, prefix)
}

// TestMarksEndClaims: deliveries marked sent, or in doubt, are found so
// by every later claim, whoever claims, and the marks live SentTTL; a
// group of marks larger than one script call's keys is marked whole.
func TestMarksEndClaims(t *testing.T) {
	for _, backend := range []string{"miniredis", "real"} {
		t.Run(backend, func(t *testing.T) {
			if backend == "real" && !testenv.Configured("LOA_TEST_REDIS_URL") {
				t.Skip("LOA_TEST_REDIS_URL not set")
			}
			ctx := context.Background()
			c := claimsOn(t, backend)
			var rkeys []string
			for i := range 3*claimChunk + 5 {
				rkeys = append(rkeys, c.redisKey(keyOf("n-marks", "push", fmt.Sprintf("tok-%d", i))))
			}
			states, err := c.ClaimKeys(ctx, rkeys, "owner-1")
			if err != nil {
				t.Fatal(err)
			}
			for i, st := range states {
				if st != claimed {
					t.Fatalf("claim %d: state %d, want claimed", i, st)
				}
			}
			sent, doubt := rkeys[:len(rkeys)-2], rkeys[len(rkeys)-2:]
			if err := c.MarkSentKeys(ctx, sent); err != nil {
				t.Fatal(err)
			}
			if err := c.MarkInDoubtKeys(ctx, doubt); err != nil {
				t.Fatal(err)
			}
			states, err = c.ClaimKeys(ctx, rkeys, "owner-2")
			if err != nil {
				t.Fatal(err)
			}
			for i, st := range states {
				want := alreadySent
				if i >= len(sent) {
					want = inDoubt
				}
				if st != want {
					t.Fatalf("claim %d after marking: state %d, want %d", i, st, want)
				}
			}
			for _, k := range []string{sent[0], sent[len(sent)-1], doubt[1]} {
				ttl, err := c.rdb.PTTL(ctx, k).Result()
				if err != nil || ttl <= c.SentTTL-time.Hour || ttl > c.SentTTL {
					t.Fatalf("%s lives %v (%v), want about %v", k, ttl, err, c.SentTTL)
				}
			}
		})
	}
}

// BenchmarkMarkSentKeys marks groups of 64 deliveries sent, as the
// marker's flushers do, on the real Redis: the CPU a mark costs the
// dispatcher, and Redis (the server's whole CPU, other clients' too).
func BenchmarkMarkSentKeys(b *testing.B) {
	c := claimsOn(b, "real")
	ctx := context.Background()
	const group = markGroup
	all := make([]string, b.N*group)
	for i := range all {
		all[i] = c.redisKey(keyOf("n-bench", "push", fmt.Sprintf("tok-%d", i)))
	}
	serverCPU := func() time.Duration {
		info, err := c.rdb.Info(ctx, "cpu").Result()
		if err != nil {
			b.Fatal(err)
		}
		var s float64
		for _, line := range strings.Split(info, "\r\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
				f, _ := strconv.ParseFloat(v, 64)
				s += f
			}
		}
		return time.Duration(s * float64(time.Second))
	}
	cpu0, server0 := processCPU(b), serverCPU()
	b.ResetTimer()
	for n := range b.N {
		if err := c.MarkSentKeys(ctx, all[n*group:(n+1)*group]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	marks := float64(b.N * group)
	b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/marks, "CPU-µs/mark")
	b.ReportMetric(float64((serverCPU()-server0).Microseconds())/marks, "redis-CPU-µs/mark")
}
