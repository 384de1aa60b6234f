package otp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// fakeClock is the injected clock of the tests; safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// redisEnv is one test's Redis: a client, a fresh key prefix, and a clock.
type redisEnv struct {
	rdb    redis.UniversalClient
	clock  *fakeClock
	prefix string
	// advance moves the clock, and on miniredis its TTLs too (a real
	// Redis keeps its own time, which the code must not depend on).
	advance func(time.Duration)
}

// newEnvFunc makes a fresh redisEnv for one (sub)test.
type newEnvFunc func(t testing.TB) *redisEnv

// forEachRedis runs suite against miniredis, always, and against the Redis
// at LOA_TEST_REDIS_URL, which is skipped when unset unless
// LOA_REQUIRE_SERVICES=1, where it fails.
func forEachRedis(t *testing.T, suite func(t *testing.T, newEnv newEnvFunc)) {
	t.Run("miniredis", func(t *testing.T) { suite(t, newMiniredisEnv) })
	t.Run("redis", func(t *testing.T) {
		newEnv := realRedis(t)
		suite(t, newEnv)
	})
}

func newMiniredisEnv(t testing.TB) *redisEnv {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	clock := newFakeClock(time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC))
	return &redisEnv{
		rdb:    rdb,
		clock:  clock,
		prefix: "test:{otp}:",
		advance: func(d time.Duration) {
			clock.Advance(d)
			mr.FastForward(d)
		},
	}
}

// realRedis checks that a real Redis is configured and reachable, and
// returns a factory of environments on it, each under its own key prefix
// (deleted at the end), so parallel and repeated runs do not collide.
func realRedis(t testing.TB) newEnvFunc {
	t.Helper()
	url := os.Getenv("LOA_TEST_REDIS_URL")
	if url == "" {
		if os.Getenv("LOA_REQUIRE_SERVICES") == "1" {
			t.Fatal("LOA_REQUIRE_SERVICES=1 but LOA_TEST_REDIS_URL is not set")
		}
		t.Skip("LOA_TEST_REDIS_URL not set")
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("LOA_TEST_REDIS_URL: %v", err)
	}
	probe := redis.NewClient(opt)
	defer probe.Close()
	if err := probe.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("redis at LOA_TEST_REDIS_URL: %v", err)
	}
	return func(t testing.TB) *redisEnv {
		rdb := redis.NewClient(opt)
		var r [6]byte
		_, _ = rand.Read(r[:])
		name := strings.NewReplacer("/", "-", " ", "_", "{", "", "}", "").Replace(t.Name())
		prefix := "loatest:{" + name + "-" + hex.EncodeToString(r[:]) + "}:"
		t.Cleanup(func() {
			ctx := context.Background()
			iter := rdb.Scan(ctx, 0, prefix+"*", 10000).Iterator()
			for iter.Next(ctx) {
				rdb.Del(ctx, iter.Val())
			}
			_ = rdb.Close()
		})
		clock := newFakeClock(time.Now().Truncate(time.Second))
		return &redisEnv{rdb: rdb, clock: clock, prefix: prefix, advance: clock.Advance}
	}
}

// dumpKeys returns every key under prefix with its value rendered as text.
func dumpKeys(t testing.TB, rdb redis.UniversalClient, prefix string) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := make(map[string]string)
	iter := rdb.Scan(ctx, 0, prefix+"*", 10000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		typ, err := rdb.Type(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		var v string
		switch typ {
		case "string":
			v = rdb.Get(ctx, k).Val()
		case "hash":
			for f, x := range rdb.HGetAll(ctx, k).Val() {
				v += f + "=" + x + "\n"
			}
		case "zset":
			for _, z := range rdb.ZRangeWithScores(ctx, k, 0, -1).Val() {
				v += z.Member.(string) + "@" + strconv.FormatFloat(z.Score, 'f', -1, 64) + "\n"
			}
		default:
			t.Fatalf("unexpected type %s of %s", typ, k)
		}
		out[k] = v
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// newClusterClient returns a cluster client that is never used to connect.
func newClusterClient() *redis.ClusterClient {
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
}
