package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/loa-hub/loa/internal/testenv"
)

// TestOffsetMarks: a partition's offset is committed only up to the last
// message all of whose predecessors are done, whatever order they finish
// in; gaps between fetched offsets do not hold it back.
func TestOffsetMarks(t *testing.T) {
	var o offsetMarks
	for _, off := range []int64{10, 11, 12, 14, 15} { // 13 never fetched
		o.fetched(off)
	}
	steps := []struct {
		done int64
		upTo int64
		ok   bool
	}{
		{11, 0, false}, // 10 still in hand
		{14, 0, false},
		{10, 11, true},
		{12, 14, true}, // 13 is a gap; 14 was done
		{15, 15, true},
	}
	for _, s := range steps {
		upTo, ok := o.done(s.done)
		if upTo != s.upTo || ok != s.ok {
			t.Fatalf("done(%d) = %d, %v; want %d, %v", s.done, upTo, ok, s.upTo, s.ok)
		}
	}
	if len(o.inHand) != 0 || len(o.doneAt) != 0 {
		t.Errorf("left in hand %v, done %v", o.inHand, o.doneAt)
	}
}

// TestFloorTimes: a code is timed from its request to its first arrival;
// one that never arrived, or arrived before it was asked (a stale
// arrival of the same phone), is missing.
func TestFloorTimes(t *testing.T) {
	t0 := time.Unix(1000, 0)
	asked := map[string]time.Time{"a": t0, "b": t0.Add(time.Second), "c": t0, "d": t0.Add(2 * time.Second)}
	arrived := map[string]time.Time{"a": t0.Add(30 * time.Millisecond), "b": t0.Add(1010 * time.Millisecond), "d": t0.Add(time.Second), "x": t0}
	got, missing := floorTimes(asked, arrived)
	if missing != 2 || len(got) != 2 || got[0] != 10*time.Millisecond || got[1] != 30*time.Millisecond {
		t.Errorf("floorTimes = %v, %d missing; want [10ms 30ms], 2", got, missing)
	}
}

// TestSwitchDelta counts only the processes read at both ends: a
// PostgreSQL backend that ended or began between them would otherwise
// subtract or add its whole life's switches.
func TestSwitchDelta(t *testing.T) {
	before := map[int]int64{1: 100, 2: 50, 3: 1000}
	after := map[int]int64{1: 130, 2: 55, 4: 9000}
	if got := switchDelta(before, after); got != 35 {
		t.Errorf("switchDelta = %d, want 35", got)
	}
}

// TestMain runs the floor's processes when this test binary is started
// as one of them (floor.start runs os.Executable()).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && strings.HasPrefix(os.Args[1], "floor-") {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		err := runFloorRole(ctx, os.Args[1], os.Args[2:], os.Stdout)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestFloor runs the floor for a few seconds against the services: every
// code asked reaches the gateway, each process is reported, and its
// schema, topics and Redis keys are gone at the end.
func TestFloor(t *testing.T) {
	env := map[string]string{
		"LOA_TEST_DATABASE_URL":  testenv.PostgresURL(t),
		"LOA_TEST_REDIS_URL":     testenv.RedisURL(t),
		"LOA_TEST_KAFKA_BROKERS": testenv.KafkaBrokers(t),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, []string{"loa-bench", "floor", "-codes", "50", "-codes-for", "2s", "-urgent-weight", "0", "-dir", t.TempDir()},
		func(k string) string { return env[k] }, &out)
	s := out.String()
	t.Log(s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s, "100 codes asked at 50/s") || !strings.Contains(s, "client → gateway, 100 codes: p50") || strings.Contains(s, "never reached") {
		t.Error("want 100 codes asked and all of them at the gateway")
	}
	for _, p := range []string{"api", "dispatcher", "gateway", "loa-bench", "kafka", "redis", "postgresql"} {
		if !regexp.MustCompile(`(?m)^ +` + p + ` +\d+ +[0-9.]+ +\d+ +\d+`).MatchString(s) {
			t.Errorf("no row for %s", p)
		}
	}
	m := regexp.MustCompile(`names: (floor_[0-9a-f]+) `).FindStringSubmatch(s)
	if m == nil {
		t.Fatal("no names in the report")
	}
	prefix := m[1]
	conn, err := pgx.Connect(ctx, env["LOA_TEST_DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var schemas int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", prefix).Scan(&schemas); err != nil || schemas != 0 {
		t.Errorf("schema %s: %d left, %v", prefix, schemas, err)
	}
	client := &kafka.Client{Addr: kafka.TCP(strings.Split(env["LOA_TEST_KAFKA_BROKERS"], ",")...), Timeout: 30 * time.Second}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range md.Topics {
		if strings.HasPrefix(tp.Name, prefix+".") {
			t.Errorf("topic %s left", tp.Name)
		}
	}
	opt, _ := redis.ParseURL(env["LOA_TEST_REDIS_URL"])
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if keys, err := rdb.Keys(ctx, prefix+":*").Result(); err != nil || len(keys) != 0 {
		t.Errorf("Redis keys left: %d, %v", len(keys), err)
	}
}

// TestFloorDatabaseModes: -database names what the floor writes to
// PostgreSQL; an unknown value is refused before anything starts, and
// without reports stored the api answers a report without touching the
// database (it has none here: a use would panic).
func TestFloorDatabaseModes(t *testing.T) {
	env := map[string]string{"LOA_TEST_DATABASE_URL": "postgres://x", "LOA_TEST_REDIS_URL": "redis://x", "LOA_TEST_KAFKA_BROKERS": "x:1"}
	var out bytes.Buffer
	err := run(context.Background(), []string{"loa-bench", "floor", "-database", "some"}, func(k string) string { return env[k] }, &out)
	if err == nil || !strings.Contains(err.Error(), `-database "some"`) {
		t.Fatalf("-database some: %v, want it refused", err)
	}
	for _, mode := range []string{"both", "attempts", "reports", "none"} {
		if floorDatabase[mode] == "" {
			t.Errorf("-database %s is not described", mode)
		}
	}
	a := &floorAPI{storeReports: false}
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/reports", strings.NewReader(`{"id":"1","status":"delivered"}`)))
	if rec.Code != http.StatusNoContent {
		t.Errorf("a report with none stored: %d, want 204", rec.Code)
	}
}
