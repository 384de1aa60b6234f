// Package testenv gives tests the services they need: the embedded
// defaults (SQLite, miniredis, the in-process Kafka-protocol broker) always,
// and the real PostgreSQL, Redis and Kafka named by LOA_TEST_DATABASE_URL,
// LOA_TEST_REDIS_URL and LOA_TEST_KAFKA_BROKERS when they are set.
//
// A test that needs a real service skips when it is not configured, and
// fails instead when LOA_REQUIRE_SERVICES=1, so CI cannot pass by
// accident on a machine where a service is missing.
//
// Every helper isolates the test: a fresh PostgreSQL schema, a unique
// Redis key prefix, unique Kafka topic prefix.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/loa-hub/loa/internal/instance"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/topics"
)

// Required reports whether real services are mandatory
// (LOA_REQUIRE_SERVICES=1).
func Required() bool { return os.Getenv("LOA_REQUIRE_SERVICES") == "1" }

// missing skips t, or fails it when services are required.
func missing(t testing.TB, variable string) {
	t.Helper()
	if Required() {
		t.Fatalf("LOA_REQUIRE_SERVICES=1 but %s is not set", variable)
	}
	t.Skipf("%s not set; skipping the real-service variant", variable)
}

// ID returns a short random identifier usable in schema, topic and key
// names.
func ID() string {
	b := make([]byte, 5)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Backend names one set of services a test runs on.
type Backend struct {
	Name string // "embedded" or "real"
	// DatabaseURL, RedisURL and KafkaBrokers are empty for embedded
	// services the caller starts itself.
	DatabaseURL  string
	RedisURL     string
	KafkaBrokers string
}

// Backends returns the embedded backend, and the real one when its
// variables are set (or when services are required, in which case a
// missing variable fails the test inside RealBackend).
func Backends(t testing.TB) []Backend {
	bs := []Backend{{Name: "embedded"}}
	if Required() || os.Getenv("LOA_TEST_KAFKA_BROKERS") != "" {
		bs = append(bs, Backend{Name: "real"})
	}
	return bs
}

// RealBackend fills b with the real services, each isolated for t: a
// fresh PostgreSQL schema. It skips or fails t when one is missing.
func RealBackend(t testing.TB) Backend {
	t.Helper()
	return Backend{
		Name:         "real",
		DatabaseURL:  PostgresURL(t),
		RedisURL:     RedisURL(t),
		KafkaBrokers: KafkaBrokers(t),
	}
}

// PostgresURL returns a URL to a fresh schema of the real PostgreSQL,
// dropped when t ends.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("LOA_TEST_DATABASE_URL")
	if base == "" {
		missing(t, "LOA_TEST_DATABASE_URL")
	}
	schema := "t_" + ID()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("testenv: connect to PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("testenv: create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, base); err == nil {
			c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			c.Close(ctx)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("testenv: LOA_TEST_DATABASE_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// RedisURL returns the real Redis URL, or skips/fails.
func RedisURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("LOA_TEST_REDIS_URL")
	if u == "" {
		missing(t, "LOA_TEST_REDIS_URL")
	}
	return u
}

// KafkaBrokers returns the real Kafka brokers (comma-separated), or
// skips/fails.
func KafkaBrokers(t testing.TB) string {
	t.Helper()
	b := os.Getenv("LOA_TEST_KAFKA_BROKERS")
	if b == "" {
		missing(t, "LOA_TEST_KAFKA_BROKERS")
	}
	return b
}

// Miniredis starts an in-process Redis for t.
func Miniredis(t testing.TB) *miniredis.Miniredis {
	t.Helper()
	return miniredis.RunT(t)
}

// Kfake starts an in-process Kafka-protocol broker for t and returns its
// address.
func Kfake(t testing.TB) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0))
	if err != nil {
		t.Fatalf("testenv: kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return strings.Join(c.ListenAddrs(), ",")
}

// SQLiteURL returns a URL to a fresh SQLite file in t's temp dir.
func SQLiteURL(t testing.TB) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "loa.db")
}

// Stores opens and migrates the store on SQLite, and on PostgreSQL when
// configured (failing when required and missing), and returns them named.
func Stores(t *testing.T) map[string]*sqlstore.DB {
	t.Helper()
	urls := map[string]string{"sqlite": SQLiteURL(t)}
	if os.Getenv("LOA_TEST_DATABASE_URL") != "" || Required() {
		urls["postgres"] = PostgresURL(t)
	}
	out := map[string]*sqlstore.DB{}
	for name, u := range urls {
		db := OpenStore(t, u)
		out[name] = db
	}
	return out
}

// OpenStore opens and migrates the store at url, closed when t ends.
func OpenStore(t testing.TB, url string) *sqlstore.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sqlstore.Open(ctx, url)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return db
}

// Configured reports whether a test should run its real-service variant
// for variable: when it is set, or when services are required (the
// variant then fails on the missing variable instead of skipping).
func Configured(variable string) bool { return os.Getenv(variable) != "" || Required() }

// DeleteTopicsAtEnd deletes, when t ends, Loa's topics under prefix on the
// Kafka at brokers (comma-separated). Call it before anything that uses
// the topics starts, so it runs after they have stopped. Every test run
// creates its topics under a fresh prefix; left behind, their thousands
// of partitions slow the broker down for every later test and benchmark.
func DeleteTopicsAtEnd(t testing.TB, brokers, prefix string) {
	t.Helper()
	names := topics.Names{Prefix: prefix}
	var all []string
	for _, s := range topics.Specs() {
		all = append(all, names.Topic(s.Name))
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		client := &kafka.Client{Addr: kafka.TCP(strings.Split(brokers, ",")...), Timeout: 30 * time.Second}
		resp, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: all})
		if err != nil {
			t.Logf("testenv: topics under %q not deleted: %v", prefix, err)
			return
		}
		for topic, err := range resp.Errors {
			if err != nil && !errors.Is(err, kafka.UnknownTopicOrPartition) {
				t.Logf("testenv: topic %s not deleted: %v", topic, err)
			}
		}
	})
}

// DeleteRedisKeysAtEnd deletes, when t ends, every key under prefix on
// the Redis at url. Tests on the shared real Redis write keys with long
// TTLs (delivery claims are remembered for days); left behind, millions of
// them slow every later test that scans its own keys.
func DeleteRedisKeysAtEnd(t testing.TB, url, prefix string) {
	t.Helper()
	if prefix == "" {
		t.Fatal("testenv: DeleteRedisKeysAtEnd needs a prefix")
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("testenv: redis URL: %v", err)
	}
	t.Cleanup(func() {
		rdb := redis.NewClient(opt)
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		iter := rdb.Scan(ctx, 0, prefix+"*", 10000).Iterator()
		var batch []string
		flush := func() {
			if len(batch) > 0 {
				rdb.Unlink(ctx, batch...)
				batch = batch[:0]
			}
		}
		for iter.Next(ctx) {
			if batch = append(batch, iter.Val()); len(batch) == 1000 {
				flush()
			}
		}
		flush()
		if err := iter.Err(); err != nil {
			t.Logf("testenv: keys under %q not deleted: %v", prefix, err)
		}
	})
}

// ProcessCPU is the CPU time (user + system) this process has used, for
// benchmarks that report CPU per operation. It includes whatever shares
// the process: in-process fakes, and the embedded broker and Redis.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// instanceMissing skips t when a throwaway server cannot start because
// its programs are not installed, or fails it when services are required.
func instanceMissing(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, instance.ErrMissing) && !Required() {
		t.Skipf("testenv: %v; skipping", err)
	}
	t.Fatalf("testenv: %v", err)
}

// OwnPostgres starts a throwaway PostgreSQL server for t alone (see
// package instance), closed when t ends: for tests that crash or restart
// it, which must never touch the shared one.
func OwnPostgres(t testing.TB) *instance.Postgres {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pg, err := instance.StartPostgres(ctx, instance.PostgresOptions{})
	if err != nil {
		instanceMissing(t, err)
	}
	t.Cleanup(pg.Close)
	return pg
}

// OwnRedis starts a throwaway redis-server for t alone, with or without
// an append-only file, closed when t ends.
func OwnRedis(t testing.TB, opts instance.RedisOptions) *instance.Redis {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := instance.StartRedis(ctx, opts)
	if err != nil {
		instanceMissing(t, err)
	}
	t.Cleanup(r.Close)
	return r
}

// OwnKafka starts a throwaway single-node Kafka for t alone, closed when
// t ends.
func OwnKafka(t testing.TB) *instance.Kafka {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	k, err := instance.StartKafka(ctx, instance.KafkaOptions{})
	if err != nil {
		instanceMissing(t, err)
	}
	t.Cleanup(k.Close)
	return k
}

// Tool returns the value of variable, which names an installed
// third-party tool (an interpreter, a package directory) that
// deploy/local/up.sh installs, or skips t when it is not set (fails with
// LOA_REQUIRE_SERVICES=1).
func Tool(t testing.TB, variable string) string {
	t.Helper()
	v := os.Getenv(variable)
	if v == "" {
		missing(t, variable)
	}
	return v
}
