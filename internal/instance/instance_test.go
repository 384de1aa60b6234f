package instance_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/loa-hub/loa/internal/instance"
	"github.com/loa-hub/loa/internal/testenv"
)

// TestPostgresSurvivesCrash: a committed row is there after an immediate
// shutdown and a new start on the same port.
func TestPostgresSurvivesCrash(t *testing.T) {
	pg := testenv.OwnPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pgx.Connect(ctx, pg.URL("loa"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "CREATE TABLE t (v int); INSERT INTO t VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	if err := pg.Restart(ctx, 0); err != nil {
		t.Fatal(err)
	}
	c, err = pgx.Connect(ctx, pg.URL("loa"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var v int
	if err := c.QueryRow(ctx, "SELECT v FROM t").Scan(&v); err != nil || v != 42 {
		t.Fatalf("after the crash: %d, %v", v, err)
	}
}

// TestRedisPersistence: with an append-only file a key survives SIGKILL;
// without, the restarted server is empty.
func TestRedisPersistence(t *testing.T) {
	for _, aof := range []bool{true, false} {
		r := testenv.OwnRedis(t, instance.RedisOptions{AOF: aof})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c := redis.NewClient(&redis.Options{Addr: r.Addr()})
		defer c.Close()
		if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if err := r.Restart(ctx, 0); err != nil {
			t.Fatal(err)
		}
		n, err := c.Exists(ctx, "k").Result()
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int64{true: 1, false: 0}[aof]; n != want {
			t.Errorf("aof=%v: the key exists %d times after SIGKILL, want %d", aof, n, want)
		}
	}
}

// TestKafkaSurvivesKill: a message acknowledged by every in-sync replica
// is read back after the broker was killed and started again.
func TestKafkaSurvivesKill(t *testing.T) {
	k := testenv.OwnKafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	w := &kafka.Writer{Addr: kafka.TCP(k.Addr()), Topic: "t", RequiredAcks: kafka.RequireAll, AllowAutoTopicCreation: true}
	var err error
	for range 50 { // the topic is created on first use
		if err = w.WriteMessages(ctx, kafka.Message{Value: []byte("hello")}); err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := k.Restart(ctx, 0); err != nil {
		t.Fatal(err)
	}
	var got int
	for p := range 4 {
		conn, err := kafka.DialLeader(ctx, "tcp", k.Addr(), "t", p)
		if err != nil {
			t.Fatal(err)
		}
		last, err := conn.ReadLastOffset()
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		got += int(last)
	}
	if got != 1 {
		t.Errorf("%d messages after the restart, want 1", got)
	}
}

// TestRedisSentinelFailover: three Sentinels watch a master and its
// replica; when the master is killed they promote the replica, and a
// Sentinel-aware client writes to it.
func TestRedisSentinelFailover(t *testing.T) {
	master := testenv.OwnRedis(t, instance.RedisOptions{AOF: true})
	replica := testenv.OwnRedis(t, instance.RedisOptions{AOF: true, Args: []string{"--replicaof", "127.0.0.1", fmt.Sprint(master.Port)}})
	var addrs []string
	for range 3 {
		s := testenv.OwnRedis(t, instance.RedisOptions{Sentinel: true, SentinelMonitor: fmt.Sprintf("loa 127.0.0.1 %d 2", master.Port)})
		addrs = append(addrs, s.Addr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "loa", SentinelAddrs: addrs})
	defer c.Close()
	if err := c.Set(ctx, "k", "before", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// WAIT: the write is on the replica before the master goes.
	if n, err := c.Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT = %d, %v", n, err)
	}
	master.Kill()
	var err error
	for {
		if err = c.Set(ctx, "k2", "after", 0).Err(); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no write after the master was killed: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	role, err := redis.NewClient(&redis.Options{Addr: replica.Addr()}).Do(ctx, "ROLE").Slice()
	if err != nil || role[0] != "master" {
		t.Errorf("the replica's role after the failover: %v, %v", role, err)
	}
	if v, err := c.Get(ctx, "k").Result(); err != nil || v != "before" {
		t.Errorf("the write acknowledged by a replica before the failover: %q, %v", v, err)
	}
}

// TestPostgresStandbyPromotion: a synchronous standby has every committed
// row; promoted after the primary's crash it takes writes, and a client
// given both hosts with target_session_attrs=read-write finds it.
func TestPostgresStandbyPromotion(t *testing.T) {
	primary := testenv.OwnPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	standby, err := instance.StartStandby(ctx, primary)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(standby.Close)
	if err := primary.SetSynchronousStandby(ctx); err != nil {
		t.Fatal(err)
	}
	both := fmt.Sprintf("postgres://loa@127.0.0.1:%d,127.0.0.1:%d/loa?sslmode=disable&target_session_attrs=read-write", primary.Port, standby.Port)
	c, err := pgx.Connect(ctx, both)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "CREATE TABLE t (v int); INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	primary.Crash()
	if err := standby.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	c, err = pgx.Connect(ctx, both)
	if err != nil {
		t.Fatalf("after the promotion: %v", err)
	}
	defer c.Close(ctx)
	if c.PgConn().Conn().RemoteAddr().String() != fmt.Sprintf("127.0.0.1:%d", standby.Port) {
		t.Errorf("connected to %s, want the promoted standby", c.PgConn().Conn().RemoteAddr())
	}
	var n int
	if _, err := c.Exec(ctx, "INSERT INTO t VALUES (2)"); err != nil {
		t.Fatalf("a write to the promoted standby: %v", err)
	}
	if err := c.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 2 {
		t.Errorf("rows after the failover: %d, %v; want the committed one and the new one", n, err)
	}
}
