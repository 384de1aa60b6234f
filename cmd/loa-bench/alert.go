package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/loa-hub/loa/internal/fakes/fcmfake"
	"github.com/loa-hub/loa/internal/fleet"
)

// alertConfig is one `loa-bench alert`.
type alertConfig struct {
	loa, dir                       string
	devices, alertDevices, before  int
	dispatchers                    int
	databaseURL, redisURL, brokers string
	env                            map[string]string
	keep                           bool
	timeout                        time.Duration
}

// runAlert is `loa-bench alert`: an alert's latency while a broadcast is
// in flight. It seeds a commune of -devices for the broadcast and another
// of -alert-devices for the alert, starts `loa api` and the dispatchers,
// and posts the alert through the API (JSON, Extreme, push) twice: on the
// idle system, and when the broadcast — drafted, submitted and approved
// through the API as officials do — has had -before pushes accepted. The
// FCM fake runs in this process, so it times each of the alert's pushes
// as it accepts it (the reference fake only counts). It prints the
// first, median, 99th percentile and last push of each alert after its
// POST, and how many broadcast pushes went while the loaded one was sent.
func runAlert(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("loa-bench alert", flag.ContinueOnError)
	fs.SetOutput(stdout)
	cfg := alertConfig{env: map[string]string{}}
	fs.StringVar(&cfg.loa, "loa", "bin/loa", "the loa binary (make build)")
	fs.IntVar(&cfg.devices, "devices", 1_000_000, "devices in the broadcast's audience")
	fs.IntVar(&cfg.alertDevices, "alert-devices", 10_000, "devices in the alert's audience (another commune)")
	fs.IntVar(&cfg.before, "before", 0, "broadcast pushes accepted before the loaded alert is posted (default a tenth of -devices)")
	fs.IntVar(&cfg.dispatchers, "dispatchers", 1, "dispatcher processes in one consumer group")
	fs.StringVar(&cfg.databaseURL, "database-url", getenv("LOA_TEST_DATABASE_URL"), "PostgreSQL (a schema of its own is made and dropped)")
	fs.StringVar(&cfg.redisURL, "redis-url", getenv("LOA_TEST_REDIS_URL"), "Redis (keys under a prefix of its own, deleted at the end)")
	fs.StringVar(&cfg.brokers, "kafka-brokers", getenv("LOA_TEST_KAFKA_BROKERS"), "Kafka (topics under a prefix of their own, deleted at the end)")
	fs.StringVar(&cfg.dir, "dir", "", "where the processes' logs go (default: a new temporary directory)")
	fs.Var(multiFlag(cfg.env), "env", "LOA_NAME=value for Loa's processes (repeatable)")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the schema, topics and Redis keys")
	fs.DurationVar(&cfg.timeout, "timeout", 30*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.databaseURL == "" || cfg.redisURL == "" || cfg.brokers == "" {
		return errors.New("the services are not named: source deploy/local/.state/env, or give -database-url, -redis-url and -kafka-brokers")
	}
	if cfg.devices <= 0 || cfg.alertDevices <= 0 {
		return errors.New("-devices and -alert-devices must be positive")
	}
	if cfg.before == 0 {
		cfg.before = cfg.devices / 10
	}
	if cfg.before < 0 || cfg.before >= cfg.devices {
		return fmt.Errorf("-before %d: want 0 to %d, so the broadcast is still in flight", cfg.before, cfg.devices-1)
	}
	if err := locate(&cfg.loa, &cfg.dir, "loa-bench-alert-"); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	b := &bench{cfg: benchConfig{databaseURL: cfg.databaseURL, redisURL: cfg.redisURL, brokers: cfg.brokers, keep: cfg.keep},
		out: stdout, id: strconv.FormatInt(time.Now().UnixNano()%1e10, 36)}
	defer b.cleanup()
	res, err := runAlertBench(ctx, b, cfg)
	if err != nil {
		return fmt.Errorf("%w (logs in %s)", err, cfg.dir)
	}
	res.print(stdout)
	fmt.Fprintf(stdout, "logs: %s\n", cfg.dir)
	return nil
}

// alertTokenPrefix begins the device tokens of the alert's commune.
const alertTokenPrefix = "al-tok-"

// pushClock records when the fake accepted each push to the alert's
// devices.
type pushClock struct {
	mu sync.Mutex
	at []time.Time
	n  atomic.Int64
}

func (c *pushClock) accepted(target string) {
	if strings.HasPrefix(target, alertTokenPrefix) {
		now := time.Now()
		c.mu.Lock()
		c.at = append(c.at, now)
		c.mu.Unlock()
		c.n.Add(1)
	}
}

// take returns the times recorded and starts again.
func (c *pushClock) take() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.at
	c.at = nil
	c.n.Store(0)
	return out
}

// alertRun is one alert's pushes, as latencies from its POST, sorted.
type alertRun struct {
	name      string
	latencies []time.Duration
	bulk      int // broadcast pushes accepted while it was being sent
}

func (r alertRun) pct(p float64) time.Duration {
	return r.latencies[min(len(r.latencies)-1, int(p*float64(len(r.latencies))))]
}

type alertResult struct {
	cfg         alertConfig
	runs        []alertRun
	bulkBefore  int
	bulkRate    float64 // broadcast pushes/s from approval to the loaded alert's last push
	load0, load string
}

func runAlertBench(ctx context.Context, b *bench, cfg alertConfig) (*alertResult, error) {
	res := &alertResult{cfg: cfg, load0: loadavg()}
	b.schema, b.prefix, b.keys = "bench_"+b.id, "bench-"+b.id+"-", "bench:"+b.id+":"
	dbURL, _, err := b.makeSchema(ctx)
	if err != nil {
		return nil, err
	}
	clock := &pushClock{}
	fake, err := fcmfake.New(fcmfake.Options{TotalOnly: true, Accepted: clock.accepted})
	if err != nil {
		return nil, err
	}
	defer fake.Close()
	fmt.Fprintf(b.out, "loa-bench alert: a %d-device alert, idle and while a %d-device broadcast is in flight (%d pushes in); %d dispatcher(s); logs in %s\n",
		cfg.alertDevices, cfg.devices, cfg.before, cfg.dispatchers, cfg.dir)
	opts := fleet.Options{Loa: cfg.loa, Dir: cfg.dir, Dispatchers: cfg.dispatchers, DatabaseURL: dbURL, RedisURL: cfg.redisURL,
		KafkaBrokers: cfg.brokers, TopicPrefix: b.prefix, RedisKeyPrefix: b.keys, FCMRecord: "total", Env: cfg.env,
		FCM: map[string]string{"LOA_FCM_PROJECT_ID": "loa-bench", "LOA_FCM_ENDPOINT": fake.Endpoint(), "LOA_FCM_INSECURE_TLS": "1"}}
	if b.fl, err = fleet.Start(ctx, opts); err != nil {
		return nil, err
	}
	if err := b.fl.LoadAreas(ctx, []fleet.Area{{Code: "95", Name: "Tinh Bench"}, {Code: "95001", Name: "Xa Broadcast", Parent: "95"},
		{Code: "95002", Name: "Xa Canh Bao", Parent: "95"}}); err != nil {
		return nil, err
	}
	seed := time.Now()
	if err := b.fl.SeedAudience(ctx, "bench", cfg.devices, 50_000_000, "95001"); err != nil {
		return nil, err
	}
	if err := b.fl.SeedAudience(ctx, "al", cfg.alertDevices, 40_000_000, "95002"); err != nil {
		return nil, err
	}
	fmt.Fprintf(b.out, "loa-bench alert: seeded %d devices in %v\n", cfg.devices+cfg.alertDevices, time.Since(seed).Round(100*time.Millisecond))
	key, err := b.fl.APIKey(ctx, "bench-alerts", "alerts:issue", "--alert-areas", "95")
	if err != nil {
		return nil, err
	}
	sub, err := b.fl.Official(ctx, "bench-submitter", "snn", "agency_submitter", "0900000301")
	if err != nil {
		return nil, err
	}
	appr, err := b.fl.Official(ctx, "bench-approver", fleet.ApprovalUnit, "broadcast_approver", "0900000302")
	if err != nil {
		return nil, err
	}
	c := b.fl.Client()

	// alert posts an Extreme alert to the alert's commune and waits for
	// every one of its pushes.
	alert := func(name, id string) (alertRun, error) {
		clock.take()
		before := fake.Count()
		t0 := time.Now()
		if _, err := c.Call(ctx, "POST", "/v1/alerts", key, map[string]any{
			"identifier": "bench-" + b.id + "-" + id, "msg_type": "alert", "severity": "Extreme", "urgency": "Immediate",
			"event": "Lũ", "headline": "Cảnh báo lũ khẩn cấp", "description": "Nước sông lên nhanh.", "instruction": "Di dời ngay.",
			"expires": time.Now().Add(2 * time.Hour).Format(time.RFC3339), "areas": []string{"95002"}, "channels": []string{"push"},
		}, nil); err != nil {
			return alertRun{}, fmt.Errorf("post the %s alert: %w", name, err)
		}
		for clock.n.Load() < int64(cfg.alertDevices) {
			select {
			case <-ctx.Done():
				return alertRun{}, fmt.Errorf("the %s alert reached %d of %d devices: %w", name, clock.n.Load(), cfg.alertDevices, ctx.Err())
			case <-time.After(10 * time.Millisecond): // polling a counter
			}
		}
		at := clock.take()
		run := alertRun{name: name, bulk: fake.Count() - before - len(at)}
		for _, t := range at {
			run.latencies = append(run.latencies, t.Sub(t0))
		}
		slices.Sort(run.latencies)
		fmt.Fprintf(b.out, "loa-bench alert: %s alert: last push %.2f s after the POST\n", name, run.latencies[len(run.latencies)-1].Seconds())
		return run, nil
	}

	idle, err := alert("idle", "idle")
	if err != nil {
		return nil, err
	}
	res.runs = append(res.runs, idle)

	var bc struct {
		ID string `json:"id"`
	}
	if _, err := c.Call(ctx, "POST", "/v1/broadcasts", sub, map[string]any{
		"title": "Thông báo", "body": "Đo độ trễ của cảnh báo.", "topic": "general",
		"audience": map[string]any{"areas": []string{"95001"}}, "channels": []string{"push"},
		"request_document": map[string]string{"number": "2/BENCH", "date": time.Now().Format("2006-01-02")},
	}, &bc); err != nil {
		return nil, fmt.Errorf("draft: %w", err)
	}
	if _, err := c.Call(ctx, "POST", "/v1/broadcasts/"+bc.ID+"/submit", sub, nil, nil); err != nil {
		return nil, fmt.Errorf("submit: %w", err)
	}
	start := fake.Count()
	approved := time.Now()
	if _, err := c.Call(ctx, "POST", "/v1/broadcasts/"+bc.ID+"/approve", appr, nil, nil); err != nil {
		return nil, fmt.Errorf("approve: %w", err)
	}
	for fake.Count()-start < cfg.before {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("the broadcast reached %d of the %d pushes to wait for: %w", fake.Count()-start, cfg.before, ctx.Err())
		case <-time.After(10 * time.Millisecond): // polling a counter
		}
	}
	res.bulkBefore = fake.Count() - start
	loaded, err := alert("under the broadcast", "loaded")
	if err != nil {
		return nil, err
	}
	res.runs = append(res.runs, loaded)
	bulk := fake.Count() - start - cfg.alertDevices
	res.bulkRate = float64(bulk) / time.Since(approved).Seconds()
	if bulk >= cfg.devices {
		fmt.Fprintf(b.out, "loa-bench alert: warning: the broadcast had ended before the loaded alert's last push\n")
	}
	res.load = loadavg()
	return res, nil
}

func (r *alertResult) print(w io.Writer) {
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 0, 64) }
	fmt.Fprintf(w, "\nalert to %d devices, idle and while a %d-device broadcast is in flight; %d dispatcher(s), %d CPUs; load average %s before, %s after\n",
		r.cfg.alertDevices, r.cfg.devices, r.cfg.dispatchers, runtime.NumCPU(), r.load0, r.load)
	fmt.Fprintf(w, "push latency from the alert's POST to the FCM fake's accept (ms):\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "alert\tfirst\tp50\tp99\tlast\tbroadcast pushes meanwhile\t")
	for _, run := range r.runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t\n", run.name, ms(run.latencies[0]), ms(run.pct(0.5)), ms(run.pct(0.99)),
			ms(run.latencies[len(run.latencies)-1]), run.bulk)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nthe loaded alert was posted after %d broadcast pushes; the broadcast ran at %.0f pushes/s from its approval to the alert's last push\n",
		r.bulkBefore, r.bulkRate)
}
