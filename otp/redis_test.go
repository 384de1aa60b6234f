package otp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sort"
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
	// keys records the keys the test's commands named (real Redis only).
	keys *keySet
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
		keys := &keySet{prefix: prefix}
		rdb.AddHook(keys)
		t.Cleanup(func() {
			ctx := context.Background()
			if ks := keys.list(); len(ks) > 0 {
				rdb.Del(ctx, ks...)
			}
			_ = rdb.Close()
		})
		clock := newFakeClock(time.Now().Truncate(time.Second))
		return &redisEnv{rdb: rdb, clock: clock, prefix: prefix, advance: clock.Advance, keys: keys}
	}
}

// keySet is a go-redis hook that records every key under prefix that a
// command names (scripts included: their keys are arguments), so a test
// on the shared Redis lists and deletes its own keys without a SCAN,
// whose cost grows with everything else the server holds.
type keySet struct {
	prefix string
	mu     sync.Mutex
	seen   map[string]bool
}

func (k *keySet) note(cmds ...redis.Cmder) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, c := range cmds {
		for _, a := range c.Args() {
			if s, ok := a.(string); ok && strings.HasPrefix(s, k.prefix) {
				if k.seen == nil {
					k.seen = make(map[string]bool)
				}
				k.seen[s] = true
			}
		}
	}
}

func (k *keySet) list() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]string, 0, len(k.seen))
	for s := range k.seen {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func (k *keySet) DialHook(next redis.DialHook) redis.DialHook { return next }

func (k *keySet) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		k.note(cmd)
		return next(ctx, cmd)
	}
}

func (k *keySet) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		k.note(cmds...)
		return next(ctx, cmds)
	}
}

// dumpKeys returns every key of env under its prefix with its value
// rendered as text: the keys its commands named (on a real Redis) or a
// SCAN (on a miniredis of its own), those that still exist.
func dumpKeys(t testing.TB, env *redisEnv) map[string]string {
	t.Helper()
	ctx := context.Background()
	rdb := env.rdb
	var names []string
	if env.keys != nil {
		names = env.keys.list()
	} else {
		iter := rdb.Scan(ctx, 0, env.prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			names = append(names, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
	}
	out := make(map[string]string)
	for _, k := range names {
		typ, err := rdb.Type(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		var v string
		switch typ {
		case "none":
			continue
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
	return out
}

// newClusterClient returns a cluster client that is never used to connect.
func newClusterClient() *redis.ClusterClient {
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
}
