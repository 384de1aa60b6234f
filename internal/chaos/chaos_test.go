package chaos

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-hub/loa/internal/fleet"
	"github.com/loa-hub/loa/internal/instance"
	"github.com/loa-hub/loa/internal/testenv"
)

var (
	buildOnce sync.Once
	loaPath   string
	buildErr  error

	kafkaOnce sync.Once
	kafka     *instance.Kafka
	kafkaErr  error
)

// sharedKafka is one broker for the runs that do not restart Kafka, each
// under topics of its own: a broker takes a while to start.
func sharedKafka(t *testing.T) *instance.Kafka {
	t.Helper()
	needServers(t)
	kafkaOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		kafka, kafkaErr = instance.StartKafka(ctx, instance.KafkaOptions{})
	})
	if kafkaErr != nil {
		t.Fatal(kafkaErr)
	}
	return kafka
}

// loaBinary builds Loa's commands once for the package's tests.
func loaBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "loa-chaos-bin-")
		if err != nil {
			buildErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		loaPath, buildErr = fleet.Build(ctx, dir)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return loaPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if kafka != nil {
		kafka.Close()
	}
	if loaPath != "" {
		os.RemoveAll(filepath.Dir(loaPath))
	}
	os.Exit(code)
}

// needServers skips t (or fails it under LOA_REQUIRE_SERVICES=1) when
// this machine cannot run throwaway PostgreSQL, Redis and Kafka servers.
func needServers(t *testing.T) {
	t.Helper()
	_, pgErr := instance.PostgresBin()
	_, kErr := instance.KafkaLibs()
	_, rErr := exec.LookPath("redis-server")
	for _, err := range []error{pgErr, kErr, rErr} {
		if err == nil {
			continue
		}
		if testenv.Required() {
			t.Fatalf("LOA_REQUIRE_SERVICES=1: %v", err)
		}
		t.Skipf("%v; skipping", err)
	}
}

// logWriter writes a run's lines into the test's log.
type logWriter struct {
	t   *testing.T
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.WriteString(line)
			return len(p), nil
		}
		w.t.Log(strings.TrimRight(line, "\n"))
	}
}

// longRun skips t unless LOA_CHAOS=1 (make test-chaos): runs that
// restart or fail over servers take minutes each and stay out of the
// suite CI runs on every landing.
func longRun(t *testing.T) {
	t.Helper()
	if os.Getenv("LOA_CHAOS") != "1" {
		t.Skip("a long chaos run: set LOA_CHAOS=1 (make test-chaos)")
	}
}

// runChaos performs a run and returns its report; the processes' logs
// are kept when the test fails.
func runChaos(t *testing.T, cfg Config) *Report {
	t.Helper()
	needServers(t)
	cfg.Loa = loaBinary(t)
	dir, err := os.MkdirTemp("", "loa-chaos-test-")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dir, cfg.Out = dir, &logWriter{t: t}
	if cfg.Deadline == 0 {
		cfg.Deadline = 4 * time.Minute
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the processes' logs are in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestChaosShort, in CI's suite: a 20,000-device broadcast, an alert and
// 300 codes while a dispatcher and the API are killed, Kafka, Redis
// (without persistence) and PostgreSQL restarted, FCM stalls and an SMS
// gateway fails: nothing is lost, no code or alert arrives twice, the
// ledger agrees with the fakes, and the broadcast repeats no more than the
// sends in flight at the kill and those sent again after no answer.
func TestChaosShort(t *testing.T) {
	rep := runChaos(t, Short(Config{}))
	for _, b := range rep.Broken {
		t.Errorf("broken: %s", b)
	}
}

// TestDispatcherKillMidBroadcast: one of two dispatchers is killed with
// SIGKILL half-way through a broadcast, while an alert and codes are being
// sent: the broadcast repeats at most the sends the killed replica had
// under way and not marked (both figures reported), codes and the alert
// not at all, and nothing is lost.
func TestDispatcherKillMidBroadcast(t *testing.T) {
	longRun(t)
	const devices = 20_000
	rep := runChaos(t, Config{
		Devices: devices, AlertDevices: 500, Codes: 200, CodeRate: 10, AlertAt: 2 * time.Second,
		Schedule: []Event{{Kind: KillDispatcher, Target: 0, Down: 2 * time.Second, AfterPushes: devices / 2}},
		Env:      map[string]string{"LOA_FCM_RATE": "1000", "LOA_FCM_BURST": "200"}, Kafka: sharedKafka(t),
	})
	bulk := rep.Row(KindBroadcast)
	for _, f := range rep.Faults {
		t.Logf("kill at T+%v: %d repeats of the broadcast; the replica had %s sends not marked, the FCM fake %d in flight",
			f.Started.Round(100*time.Millisecond), bulk.Duplicates, orNA(f.Unmarked), f.FakeInFlight)
	}
	for _, b := range rep.Broken {
		t.Errorf("broken: %s", b)
	}
}

// TestRedisRestartMidBroadcast: Redis, without persistence, is killed
// half-way through a broadcast and back 2 s later: nothing is lost,
// nothing sent twice, no provider's breaker opens, and the broadcast is
// done within a minute of Redis's return.
func TestRedisRestartMidBroadcast(t *testing.T) {
	longRun(t)
	const devices = 20_000
	rep := runChaos(t, Config{
		Devices: devices, AlertDevices: 500, Codes: 200, CodeRate: 10, AlertAt: 2 * time.Second,
		Schedule: []Event{{Kind: RestartRedis, Down: 2 * time.Second, AfterPushes: devices / 2}},
		Env:      map[string]string{"LOA_FCM_RATE": "1000", "LOA_FCM_BURST": "200"}, Kafka: sharedKafka(t),
	})
	for _, b := range rep.Broken {
		t.Errorf("broken: %s", b)
	}
	for _, b := range rep.Breakers {
		if b.To == "open" {
			t.Errorf("%s's breaker for %s opened at T+%v", b.Process, b.Provider, b.At.Round(100*time.Millisecond))
		}
	}
	if len(rep.Faults) != 1 {
		t.Fatalf("faults: %+v", rep.Faults)
	}
	back := rep.Faults[0].Ended
	switch {
	case rep.DoneAt == 0:
		t.Errorf("the broadcast never finished (Redis back at T+%v)", back.Round(100*time.Millisecond))
	case rep.DoneAt-back > time.Minute:
		t.Errorf("done at T+%v, %v after Redis came back; want within a minute", rep.DoneAt.Round(time.Second), (rep.DoneAt - back).Round(time.Second))
	default:
		t.Logf("Redis back at T+%v, everything done at T+%v", back.Round(100*time.Millisecond), rep.DoneAt.Round(time.Second))
	}
}

// TestRedisSentinelFailover: Redis runs as a master (append-only file), a
// replica and three Sentinels, and LOA_REDIS_URL names the master through
// them. The master is killed half-way through a broadcast: the Sentinels
// promote the replica, Loa's processes follow it without a restart,
// nothing is lost, no code or alert is sent twice, no breaker opens.
func TestRedisSentinelFailover(t *testing.T) {
	longRun(t)
	const devices = 20_000
	rep := runChaos(t, Config{
		Devices: devices, AlertDevices: 500, Codes: 200, CodeRate: 10, AlertAt: 2 * time.Second,
		RedisSentinel: true, RedisAOF: true, Kafka: sharedKafka(t),
		Schedule: []Event{{Kind: FailoverRedis, Down: 5 * time.Second, AfterPushes: devices / 2}},
		Env:      map[string]string{"LOA_FCM_RATE": "1000", "LOA_FCM_BURST": "200"},
	})
	for _, b := range rep.Broken {
		t.Errorf("broken: %s", b)
	}
	for _, p := range rep.Processes {
		if p.Exits > 0 {
			t.Errorf("%s ended by itself %d times during the failover", p.Name, p.Exits)
		}
	}
}

// TestPostgresFailover: PostgreSQL runs with a synchronous standby and
// LOA_DATABASE_URL names both with target_session_attrs=read-write. The
// primary crashes half-way through a broadcast and the standby is promoted
// 3 s later: Loa's processes reconnect to it without a restart; no
// acknowledged write is lost (the ledger equals what the fakes received,
// every accepted notification is there); a notification posted during the
// failover, retried with its idempotency key, is accepted and sent once;
// nothing is lost or sent twice.
func TestPostgresFailover(t *testing.T) {
	longRun(t)
	const devices = 20_000
	rep := runChaos(t, Config{
		Devices: devices, AlertDevices: 500, Codes: 200, CodeRate: 10, AlertAt: 2 * time.Second,
		PostgresStandby: true, Kafka: sharedKafka(t), Notices: 300, NoticeRate: 10,
		Schedule: []Event{{Kind: FailoverPostgres, Down: 3 * time.Second, AfterPushes: devices / 2}},
		Env:      map[string]string{"LOA_FCM_RATE": "1000", "LOA_FCM_BURST": "200"},
	})
	for _, b := range rep.Broken {
		t.Errorf("broken: %s", b)
	}
	for _, p := range rep.Processes {
		if p.Exits > 0 {
			t.Errorf("%s ended by itself %d times during the failover", p.Name, p.Exits)
		}
	}
}
