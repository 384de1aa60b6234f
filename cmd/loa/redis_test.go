package main

import (
	"runtime"
	"strings"
	"testing"
)

func TestOpenRedis(t *testing.T) {
	for _, tc := range []struct{ url, where, err string }{
		{"redis://127.0.0.1:6379/0", "127.0.0.1:6379", ""},
		{"redis://s1:26379/0?master_name=loa&addr=s2:26379&addr=s3:26379", "master loa through Sentinels s1:26379,s2:26379,s3:26379", ""},
		{"redis://s1:26379/0?master_name=loa&nonsense=1", "", "LOA_REDIS_URL"},
		{"http://x", "", "LOA_REDIS_URL"},
	} {
		c, where, err := openRedis(tc.url)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err = %v", tc.url, err)
			}
			continue
		}
		if err != nil || where != tc.where {
			t.Errorf("%s: %q, %v", tc.url, where, err)
			continue
		}
		c.Close()
	}
}

// TestRedisPoolsSizedForCodes: by default a process's Redis pool and the
// dispatcher's urgent one hold 64 connections, not ten a CPU and eight:
// 500 codes a second on two busy cores waited seconds for the smaller
// pools (loa_pool_wait_seconds_total). LOA_REDIS_CONNS=0 keeps the
// client's default.
func TestRedisPoolsSizedForCodes(t *testing.T) {
	load := func(kv map[string]string) config {
		t.Helper()
		kv["LOA_REDIS_URL"] = "redis://127.0.0.1:6379/0"
		c, err := loadConfig(func(k string) string { return kv[k] })
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := load(map[string]string{})
	if c.RedisConns != 64 || c.RedisUrgentConns != 64 {
		t.Fatalf("defaults: LOA_REDIS_CONNS %d, LOA_REDIS_URGENT_CONNS %d; want 64 and 64", c.RedisConns, c.RedisUrgentConns)
	}
	for _, n := range []int{64, 0} {
		rc, _, err := openRedisPool("redis://127.0.0.1:6379/0", n)
		if err != nil {
			t.Fatal(err)
		}
		want := n
		if n == 0 {
			want = 10 * runtime.GOMAXPROCS(0)
		}
		if got := rc.Options().PoolSize; got != want {
			t.Errorf("pool of %d: PoolSize %d, want %d", n, got, want)
		}
		rc.Close()
	}
	if c := load(map[string]string{"LOA_REDIS_CONNS": "0"}); c.RedisConns != 0 {
		t.Errorf("LOA_REDIS_CONNS=0: %d", c.RedisConns)
	}
}
