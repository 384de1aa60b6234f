package dispatcher

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/channels/sandbox"
	"github.com/loa-hub/loa/internal/kafkaadmin"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/kafkapub"
)

// rig is one isolated set of services for a dispatcher test.
type rig struct {
	brokers []string
	names   topics.Names
	rdb     redis.UniversalClient
	prefix  string
	store   *sqlstore.DB
	pub     *kafkapub.Publisher
	outbox  *sandbox.Outbox
	chans   map[channels.Name]channels.Channel
}

func newRig(t testing.TB, backend string) *rig {
	t.Helper()
	id := testenv.ID()
	r := &rig{names: topics.Names{Prefix: "t" + id + "."}, prefix: "t" + id + ":", outbox: sandbox.NewOutbox(250000)}
	var dbURL, redisURL, brokers string
	if backend == "real" {
		b := testenv.RealBackend(t)
		dbURL, redisURL, brokers = b.DatabaseURL, b.RedisURL, b.KafkaBrokers
	} else {
		dbURL, redisURL, brokers = testenv.SQLiteURL(t), "redis://"+testenv.Miniredis(t).Addr(), testenv.Kfake(t)
	}
	r.brokers = strings.Split(brokers, ",")
	testenv.DeleteTopicsAtEnd(t, brokers, r.names.Prefix)
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	r.rdb = redis.NewClient(opt)
	t.Cleanup(func() { r.rdb.Close() })
	if backend == "real" {
		testenv.DeleteRedisKeysAtEnd(t, redisURL, r.prefix)
	}
	r.store = testenv.OpenStore(t, dbURL)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := kafkaadmin.Ensure(ctx, r.brokers, r.names, 1); err != nil {
		t.Fatal(err)
	}
	r.pub, err = kafkapub.NewPublisher(kafkapub.Config{Brokers: r.brokers, Names: r.names})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.pub.Close() })
	r.chans = map[channels.Name]channels.Channel{
		channels.SMS: sandbox.New(channels.SMS, r.outbox), channels.Push: sandbox.New(channels.Push, r.outbox),
		channels.Email: sandbox.New(channels.Email, r.outbox),
	}
	return r
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// start runs a dispatcher until the returned stop is called; stop waits
// for a graceful shutdown.
func (r *rig) start(t testing.TB, mutate func(*Dispatcher)) (stop func()) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Brokers, cfg.Names, cfg.RedisKeyPrefix = r.brokers, r.names, r.prefix
	// Claim keys outlive a test only briefly on the shared Redis.
	cfg.SentTTL = 15 * time.Minute
	cfg.Workers = map[topics.Lane]int{topics.LaneOTP: 4, topics.LaneAlert: 4, topics.LaneDirect: 16, topics.LaneBulk: 4}
	d, err := New(cfg, r.store, r.rdb, r.pub, r.chans, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var stopped bool
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("dispatcher run: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("dispatcher did not stop within 60s")
		}
	}
	t.Cleanup(stop)
	return stop
}

func (r *rig) publishDirect(t testing.TB, n int, idPrefix string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ids := make([]string, n)
	var envs []producer.Envelope
	now := time.Now()
	for i := range n {
		ids[i] = fmt.Sprintf("%s-%04d", idPrefix, i)
		phone := fmt.Sprintf("8491%07d", i)
		env, err := producer.NewEnvelope("ev-"+ids[i], producer.KindDirect, topics.LaneDirect, phone, now, now.Add(time.Hour), "",
			producer.Direct{NotificationID: ids[i], To: producer.Recipient{Type: producer.ToPhone, Value: phone},
				Title: "T", Body: "B", Channels: []string{"sms"}, Priority: "normal"})
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, env)
	}
	for _, e := range envs {
		if err := r.pub.Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

func waitCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func forEachBackend(t *testing.T, f func(t *testing.T, r *rig)) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) { f(t, newRig(t, b.Name)) })
	}
}

// TestRestartDeliversEachOnce stops the dispatcher part-way and starts a
// new one: every notification reaches the outbox exactly once.
func TestRestartDeliversEachOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		const n = 1000
		ids := r.publishDirect(t, n, "restart")
		stop := r.start(t, nil)
		if err := r.outbox.WaitTotal(waitCtx(t), 300); err != nil {
			t.Fatalf("first dispatcher delivered %d: %v", r.outbox.Total(), err)
		}
		stop()
		first := r.outbox.Total()
		if first >= n {
			t.Logf("first dispatcher finished everything (%d) before it was stopped", first)
		}
		stop = r.start(t, nil)
		if err := r.outbox.WaitTotal(waitCtx(t), n); err != nil {
			t.Fatalf("delivered %d of %d: %v", r.outbox.Total(), n, err)
		}
		stop()
		assertEachOnce(t, r, ids)
	})
}

// TestCrashBeforeCommitDeliversEachOnce: the first dispatcher sends but
// never commits (as if it died after sending), so the second gets every
// message again; the delivery claims keep each to one send.
func TestCrashBeforeCommitDeliversEachOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		const n = 300
		ids := r.publishDirect(t, n, "crash")
		stop := r.start(t, func(d *Dispatcher) { d.noCommit = true })
		if err := r.outbox.WaitTotal(waitCtx(t), 100); err != nil {
			t.Fatal(err)
		}
		stop()
		stop = r.start(t, nil)
		if err := r.outbox.WaitTotal(waitCtx(t), n); err != nil {
			t.Fatalf("delivered %d of %d: %v", r.outbox.Total(), n, err)
		}
		// Every redelivered message must be seen and skipped before we
		// judge: wait until the ledger has all n.
		waitLedger(t, r, ids)
		stop()
		assertEachOnce(t, r, ids)
	})
}

func assertEachOnce(t *testing.T, r *rig, ids []string) {
	t.Helper()
	if d := r.outbox.Duplicates(); len(d) > 0 {
		t.Fatalf("%d deliveries sent more than once, e.g. %v", len(d), d[0])
	}
	for i, id := range ids {
		if c := r.outbox.Count(id, channels.SMS, fmt.Sprintf("8491%07d", i)); c != 1 {
			t.Fatalf("%s delivered %d times", id, c)
		}
	}
	if got := r.outbox.Total(); got != int64(len(ids)) {
		t.Fatalf("outbox total %d, want %d", got, len(ids))
	}
}

func waitLedger(t *testing.T, r *rig, ids []string) {
	t.Helper()
	ctx := waitCtx(t)
	for _, id := range ids {
		for {
			ds, err := r.store.Deliveries(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) == 1 && ds[0].Status == loa.StatusSent {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("ledger never recorded %s: %v", id, ds)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}

// TestPoisonGoesToDeadLetter: raw bytes on a lane land in the dead-letter
// topic with a reason, and the messages behind them are still delivered.
func TestPoisonGoesToDeadLetter(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		ctx := waitCtx(t)
		// Same key as the valid messages' first recipient, so the poison sits
		// in front of it on its partition.
		poisonKey := "84910000000"
		if err := r.pub.Write(ctx, producer.Record{Topic: r.names.Lane(topics.LaneDirect), Key: poisonKey, Value: []byte("\x00\xffnot an envelope")},
			producer.Record{Topic: r.names.Lane(topics.LaneDirect), Key: poisonKey, Value: []byte(`{"id":"x","kind":"nope"}`)}); err != nil {
			t.Fatal(err)
		}
		ids := r.publishDirect(t, 5, "after-poison")
		r.start(t, nil)
		if err := r.outbox.WaitTotal(ctx, 5); err != nil {
			t.Fatalf("delivered %d of 5 behind the poison: %v", r.outbox.Total(), err)
		}
		dls := readDeadLetters(t, r, 2)
		reasons := []string{dls[0].Reason, dls[1].Reason}
		for _, dl := range dls {
			if dl.Reason == "" || !strings.Contains(dl.Reason, "undecodable") {
				t.Errorf("dead letter reason %q does not say why", dl.Reason)
			}
			if dl.Topic != r.names.Lane(topics.LaneDirect) {
				t.Errorf("dead letter topic %q", dl.Topic)
			}
		}
		if dls[0].Raw == nil && dls[1].Raw == nil {
			t.Errorf("the raw bytes were not kept: %v", reasons)
		}
		assertEachOnce(t, r, ids)
	})
}

// panicky panics on one address, to prove a panic is contained.
type panicky struct {
	channels.Channel
	on string
}

func (p panicky) Send(ctx context.Context, m channels.Message) (channels.Result, error) {
	if m.To == p.on {
		panic("boom")
	}
	return p.Channel.Send(ctx, m)
}

func TestPanicIsRecoveredAndDeadLettered(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		r.chans[channels.SMS] = panicky{Channel: r.chans[channels.SMS], on: "84910000002"}
		ids := r.publishDirect(t, 5, "panic")
		r.start(t, nil)
		ctx := waitCtx(t)
		if err := r.outbox.WaitTotal(ctx, 4); err != nil {
			t.Fatal(err)
		}
		dls := readDeadLetters(t, r, 1)
		if !strings.Contains(dls[0].Reason, "panic: boom") {
			t.Errorf("reason %q", dls[0].Reason)
		}
		waitLedger(t, r, []string{ids[0], ids[1], ids[3], ids[4]})
	})
}

func readDeadLetters(t *testing.T, r *rig, n int) []DeadLetter {
	t.Helper()
	rd := kafka.NewReader(kafka.ReaderConfig{Brokers: r.brokers, GroupID: r.names.Group("test-dlq"),
		Topic: r.names.Topic(topics.DeadLetter), StartOffset: kafka.FirstOffset, MaxWait: 100 * time.Millisecond})
	defer rd.Close()
	ctx := waitCtx(t)
	var out []DeadLetter
	for len(out) < n {
		m, err := rd.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("reading dead letters (%d of %d): %v", len(out), n, err)
		}
		var dl DeadLetter
		if err := json.Unmarshal(m.Value, &dl); err != nil {
			t.Fatal(err)
		}
		out = append(out, dl)
	}
	return out
}

// runOutbox runs, on clock, the outbox poller that every API process runs:
// it hands what the dispatcher held back to its lane when it falls due.
func (r *rig) runOutbox(t *testing.T, clock func() time.Time) {
	ob := producer.NewOutbox(r.store, r.pub, quietLogger())
	ob.Now = clock
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = ob.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}
