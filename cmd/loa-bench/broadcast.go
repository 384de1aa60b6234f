package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/loa-hub/loa/dispatcher"
	"github.com/loa-hub/loa/internal/fleet"
	"github.com/loa-hub/loa/internal/instance"
	"github.com/loa-hub/loa/internal/procstat"
	"github.com/loa-hub/loa/internal/topics"
)

// benchConfig is one `loa-bench broadcast`.
type benchConfig struct {
	loa, dir, fcm, fakefcm         string
	devices, dispatchers           int
	latency                        time.Duration
	databaseURL, redisURL, brokers string
	env                            map[string]string
	keep, quietProgress            bool
	timeout                        time.Duration
	codes                          int // SMS codes a second during the broadcast
	codesFor                       time.Duration
	// stopAfterCodes ends the run once the codes are asked, without
	// waiting for the rest of the broadcast.
	stopAfterCodes bool
	schema         string // a schema kept between runs, seeded once
	seedOnly       bool
	freshEpoch     bool
	work           bool // count the services' work
	// split runs the urgent lanes in a dispatcher of their own and the
	// bulk lane (with the ledger) in -dispatchers more at nice bulkNice.
	split    bool
	bulkNice int
	// cpuGroups puts -split's urgent and bulk sides in CPU scheduling
	// groups of their own (cgroups) with these weights, when the host
	// allows it.
	cpuGroups                bool
	urgentWeight, bulkWeight int
	bulkIdle                 bool
	// servicesWeight, when not 0, puts Kafka, Redis and PostgreSQL in a
	// group of their own with that weight for the run.
	servicesWeight int
}

// urgentLanes are the lanes of -split's urgent dispatcher.
const urgentLanes = "otp,alert,direct"

// dispatcherEnvs are the variables of each dispatcher: with -split, the
// urgent lanes without the ledger in the first, the bulk lane with the
// ledger at a lower CPU priority in the others.
func (c benchConfig) dispatcherEnvs() []map[string]string {
	if !c.split {
		return nil
	}
	envs := []map[string]string{{"LOA_DISPATCHER_LANES": urgentLanes, "LOA_DISPATCHER_LEDGER": "off"}}
	for range c.dispatchers {
		envs = append(envs, map[string]string{"LOA_DISPATCHER_LANES": "bulk", "LOA_NICE": strconv.Itoa(c.bulkNice)})
	}
	return envs
}

// layout describes the dispatchers for the report.
func (c benchConfig) layout() string {
	if !c.split {
		return fmt.Sprintf("%d dispatcher(s)", c.dispatchers)
	}
	s := fmt.Sprintf("1 urgent dispatcher (%s) + %d bulk dispatcher(s) at nice %d", urgentLanes, c.dispatchers, c.bulkNice)
	if c.cpuGroups {
		s += fmt.Sprintf(", cpu groups: urgent weight %d, bulk weight %d", c.urgentWeight, c.bulkWeight)
		if c.bulkIdle {
			s += " idle"
		}
		if c.servicesWeight > 0 {
			s += fmt.Sprintf(", services weight %d", c.servicesWeight)
		}
	}
	return s
}

type multiFlag map[string]string

func (m multiFlag) String() string { return "" }
func (m multiFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || !strings.HasPrefix(k, "LOA_") && k != "GOGC" && k != "GOMEMLIMIT" {
		return fmt.Errorf("want LOA_NAME=value (or GOGC, GOMEMLIMIT), got %q", s)
	}
	m[k] = v
	return nil
}

// locate makes the -loa path absolute and checks the binary is there,
// and makes a working directory when -dir names none.
func locate(loa, dir *string, prefix string) error {
	var err error
	if *loa, err = filepath.Abs(*loa); err != nil {
		return err
	}
	if _, err := os.Stat(*loa); err != nil {
		return fmt.Errorf("-loa: %w (build it: make build)", err)
	}
	if *dir == "" {
		if *dir, err = os.MkdirTemp("", prefix); err != nil {
			return err
		}
	}
	return nil
}

func runBroadcast(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("loa-bench broadcast", flag.ContinueOnError)
	fs.SetOutput(stdout)
	cfg := benchConfig{env: map[string]string{}}
	fs.StringVar(&cfg.loa, "loa", "bin/loa", "the loa binary (make build)")
	fs.IntVar(&cfg.devices, "devices", 100_000, "devices in the broadcast's audience")
	fs.IntVar(&cfg.dispatchers, "dispatchers", 1, "dispatcher processes in one consumer group")
	fs.StringVar(&cfg.fcm, "fcm", "loa", "the FCM fake: loa (Loa's own, `loa-fakes`) or reference (-fakefcm)")
	fs.StringVar(&cfg.fakefcm, "fakefcm", "", "the reference fake's binary (go build ../shared/tools/fakefcm/cmd/fakefcm), for -fcm reference")
	fs.DurationVar(&cfg.latency, "latency", 0, "the FCM fake's answer time")
	fs.StringVar(&cfg.databaseURL, "database-url", getenv("LOA_TEST_DATABASE_URL"), "PostgreSQL (a schema of its own is made and dropped)")
	fs.StringVar(&cfg.redisURL, "redis-url", getenv("LOA_TEST_REDIS_URL"), "Redis (keys under a prefix of its own, deleted at the end)")
	fs.StringVar(&cfg.brokers, "kafka-brokers", getenv("LOA_TEST_KAFKA_BROKERS"), "Kafka (topics under a prefix of their own, deleted at the end)")
	fs.StringVar(&cfg.dir, "dir", "", "where the processes' logs go (default: a new temporary directory)")
	fs.Var(multiFlag(cfg.env), "env", "LOA_NAME=value for Loa's processes (repeatable), e.g. -env LOA_WORKERS_BULK=64; also GOGC and GOMEMLIMIT")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the schema, topics and Redis keys")
	fs.BoolVar(&cfg.quietProgress, "no-bar", false, "a progress line every 5 s instead of a bar")
	fs.DurationVar(&cfg.timeout, "timeout", 30*time.Minute, "give up after this long")
	fs.IntVar(&cfg.codes, "codes", 0, "SMS codes a second asked through the API while the broadcast runs (0: none); prints their time from API to gateway fake")
	fs.DurationVar(&cfg.codesFor, "codes-for", 0, "with -codes: stop asking after this long (0: until the last push), so a long broadcast need not carry the codes' load throughout")
	fs.BoolVar(&cfg.stopAfterCodes, "stop-after-codes", false, "with -codes and -codes-for: end the run once the codes have been asked (the rest of the broadcast is not waited for and the per-push figures are not given), for measuring the codes alone while a broadcast runs")
	fs.StringVar(&cfg.schema, "schema", "", "a PostgreSQL schema kept between runs: made and seeded when missing, reused (not seeded again) when present, never dropped")
	fs.BoolVar(&cfg.seedOnly, "seed-only", false, "with -schema: seed the devices and stop (so a measured run does not include seeding)")
	fs.BoolVar(&cfg.freshEpoch, "fresh-epoch", false, "measure as just after Redis lost its data: every send of the first minutes is checked against the write-ahead record (default: as a Redis that has kept its claims for an hour)")
	fs.BoolVar(&cfg.split, "split", false, "run the urgent lanes ("+urgentLanes+") in a dispatcher of their own without the ledger, and the bulk lane with the ledger in -dispatchers more at -bulk-nice (docs/operations.md's layout)")
	fs.IntVar(&cfg.bulkNice, "bulk-nice", 10, "with -split: LOA_NICE of the bulk dispatchers")
	fs.BoolVar(&cfg.cpuGroups, "cpu-groups", true, "with -split: put the urgent side (the API, the urgent dispatcher, the SMS fake and loa-bench, which asks the codes) and the bulk side (the bulk dispatchers and the reference FCM fake) in CPU scheduling groups (cgroups) of their own, when the host has a cpu controller to use; removed at the end")
	fs.IntVar(&cfg.urgentWeight, "urgent-weight", defaultUrgentWeight, "with -split's cpu groups: the urgent side's weight (cgroup v2 cpu.weight / systemd CPUWeight scale: 1-10000, 100 = a nice-0 process or an autogroup; v1 cpu.shares = weight×1024/100)")
	fs.IntVar(&cfg.bulkWeight, "bulk-weight", defaultBulkWeight, "with -split's cpu groups: the bulk side's weight (same scale)")
	fs.BoolVar(&cfg.bulkIdle, "bulk-idle", defaultBulkIdle, "with -split's cpu groups: make the bulk side's group idle (cpu.idle: it runs on what the others leave, and yields at once to a waking task of any other group)")
	fs.IntVar(&cfg.servicesWeight, "services-weight", defaultServicesWeight, "with -split's cpu groups: put Kafka, Redis and PostgreSQL (each if it runs in the root cgroup) in a group of their own with this weight for the run, as if they ran on hosts of their own; 0 leaves them where they run. They are shared: other clients' work in them gets the weight too")
	fs.BoolVar(&cfg.work, "work", true, "count what the services were asked (Kafka messages, PostgreSQL commits and rows, Redis commands); adds 22 s of waiting for PostgreSQL's statistics")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.databaseURL == "" || cfg.redisURL == "" || cfg.brokers == "" {
		return errors.New("the services are not named: source deploy/local/.state/env, or give -database-url, -redis-url and -kafka-brokers")
	}
	if cfg.fcm != "loa" && cfg.fcm != "reference" {
		return fmt.Errorf("-fcm %q: want loa or reference", cfg.fcm)
	}
	if cfg.bulkNice < 0 || cfg.bulkNice > 19 {
		return fmt.Errorf("-bulk-nice %d: want 0 to 19", cfg.bulkNice)
	}
	for _, w := range []struct {
		name string
		v    int
	}{{"-urgent-weight", cfg.urgentWeight}, {"-bulk-weight", cfg.bulkWeight}, {"-services-weight", max(cfg.servicesWeight, 1)}} {
		if w.v < 1 || w.v > 10000 {
			return fmt.Errorf("%s %d: want 1 to 10000", w.name, w.v)
		}
	}
	cfg.cpuGroups = cfg.cpuGroups && cfg.split
	if cfg.stopAfterCodes && (cfg.codes <= 0 || cfg.codesFor <= 0) {
		return errors.New("-stop-after-codes needs -codes and -codes-for")
	}
	if cfg.seedOnly && cfg.schema == "" {
		return errors.New("-seed-only needs -schema, the schema to keep")
	}
	if cfg.codes > 0 {
		// The codes are asked from one address, each for a phone of its
		// own; the gateways' TPS (50 by default) would bound any higher
		// rate: set unless -env names them.
		for k, v := range map[string]string{"LOA_CODES_PER_IP": "1000000", "LOA_ANONYMOUS_CODES_PER_HOUR": "100000000",
			"LOA_SMS_ESMS_RATE": strconv.Itoa(2 * cfg.codes), "LOA_SMS_ESMS_BURST": strconv.Itoa(max(cfg.codes/5, 5)),
			"LOA_SMS_SPEEDSMS_RATE": strconv.Itoa(2 * cfg.codes), "LOA_SMS_SPEEDSMS_BURST": strconv.Itoa(max(cfg.codes/5, 5))} {
			if _, set := cfg.env[k]; !set {
				cfg.env[k] = v
			}
		}
	}
	if cfg.fcm == "reference" && cfg.fakefcm == "" {
		return errors.New("-fcm reference needs -fakefcm, the reference fake's binary")
	}
	if err := locate(&cfg.loa, &cfg.dir, "loa-bench-"); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	b := &bench{cfg: cfg, out: stdout, id: strconv.FormatInt(time.Now().UnixNano()%1e10, 36)}
	defer b.cleanup()
	res, err := b.run(ctx)
	if err != nil {
		return fmt.Errorf("%w (logs in %s)", err, cfg.dir)
	}
	if res != nil {
		res.print(stdout)
	}
	b.cleanup()
	if b.groups != nil {
		fmt.Fprintf(stdout, "%s\n", b.groups.removed())
	}
	fmt.Fprintf(stdout, "logs: %s\n", cfg.dir)
	return nil
}

// bench is one run's state.
type bench struct {
	cfg      benchConfig
	out      io.Writer
	id       string
	fl       *fleet.Fleet
	ref      *instance.Process
	refStats string // the reference fake's /stats
	polls    []poll // the fake's count through the run (wait)
	schema   string
	prefix   string // topics
	keys     string // Redis
	groups   *benchGroups
	cleaned  bool
}

// proc is a process whose CPU and memory are measured.
type proc struct {
	name string
	pid  int
	tree bool // count its children (PostgreSQL's backends)
	loa  bool // one of Loa's
	own  bool // started by this run: its VmHWM is reset at approval
	cpu0 time.Duration
	cpu1 time.Duration
	// cpuCodes is the CPU when the codes stopped being asked (-codes-for).
	cpuCodes time.Duration
	// The context switches (by process, a tree's) at cpu0 and cpuCodes.
	cs0, csCodes map[int]int64
	peak         int64
	// The resident set's parts at the sample with the most resident:
	// anonymous (the process's own) and mapped from files (its binary).
	sampled, anon, file int64
	note                string
}

// result is what the run measured.
type result struct {
	cfg           benchConfig
	toLastPush    time.Duration
	toLedger      time.Duration
	toFirstPush   time.Duration // from approval to the fake's first accepted push
	toPlanDone    time.Duration // from approval to the plan's last batch on Kafka (0: not known)
	procs         []*proc
	perDispatcher []float64
	load0, load1  string
	services      string
	retried       float64 // pushes that went to a retry tier
	breakerOpened float64 // breaker changes to open
	codes         *codeResult
	work0, work1  *workCounts
	groups        string  // the cpu groups of -split, or why none
	pushes        int     // the pushes that arrived
	stopped       bool    // -stop-after-codes ended the run before the last push
	fastest       float64 // pushes/s in the run's fastest second (see fastestSecond)
	// bulkWaitSum and bulkWaitNum are the bulk lane's waits for a token of
	// its provider's shared rate limit (seconds in all, sends).
	bulkWaitSum, bulkWaitNum float64
}

func (b *bench) run(ctx context.Context) (*result, error) {
	cfg := b.cfg
	res := &result{cfg: cfg, load0: loadavg()}
	b.schema, b.prefix, b.keys = "bench_"+b.id, "bench-"+b.id+"-", "bench:"+b.id+":"
	if cfg.schema != "" {
		b.schema = cfg.schema
	}
	dbURL, seeded, err := b.makeSchema(ctx)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(b.out, "loa-bench: %d devices, %s, FCM fake: %s (latency %v); logs in %s\n",
		cfg.devices, cfg.layout(), cfg.fcm, cfg.latency, cfg.dir)

	if !cfg.freshEpoch {
		if err := settleEpoch(ctx, cfg.redisURL, b.keys, time.Now().Add(-time.Hour)); err != nil {
			return nil, err
		}
	}
	opts := fleet.Options{Loa: cfg.loa, Dir: cfg.dir, Dispatchers: cfg.dispatchers, DatabaseURL: dbURL, RedisURL: cfg.redisURL,
		KafkaBrokers: cfg.brokers, TopicPrefix: b.prefix, RedisKeyPrefix: b.keys, FCMRecord: "total", Env: cfg.env,
		DispatcherEnvs: cfg.dispatcherEnvs()}
	if cfg.fcm == "reference" {
		if opts.FCM, err = b.startReference(ctx); err != nil {
			return nil, err
		}
	}
	if b.fl, err = fleet.Start(ctx, opts); err != nil {
		return nil, err
	}
	if cfg.cpuGroups {
		if b.groups, err = b.makeGroups(); err != nil {
			return nil, err
		}
		if !b.groups.used() {
			cfg.cpuGroups = false
			res.cfg.cpuGroups = false
		}
		res.groups = b.groups.String()
	}
	if cfg.fcm == "loa" && cfg.latency > 0 {
		if err := b.fl.SetFault(ctx, "fcm", map[string]any{"latency": cfg.latency.String()}); err != nil {
			return nil, err
		}
	}
	if err := b.fl.LoadAreas(ctx, []fleet.Area{{Code: "95", Name: "Tinh Bench"}}); err != nil {
		return nil, err
	}
	if seeded {
		fmt.Fprintf(b.out, "loa-bench: schema %s is seeded already (-devices must be what it was seeded with)\n", b.schema)
	} else {
		seed := time.Now()
		if err := b.fl.SeedAudience(ctx, "bench", cfg.devices, 50_000_000, "95"); err != nil {
			return nil, err
		}
		fmt.Fprintf(b.out, "loa-bench: seeded %d devices in %v\n", cfg.devices, time.Since(seed).Round(100*time.Millisecond))
	}
	if cfg.seedOnly {
		fmt.Fprintf(b.out, "loa-bench: schema %s kept; measure with -schema %s -devices %d\n", b.schema, b.schema, cfg.devices)
		return nil, nil
	}
	// Officials of this run's own (a kept schema has those of earlier runs).
	n := time.Now().UnixNano() / 1000 % 1_000_000 * 10
	sub, err := b.fl.Official(ctx, "bench-submitter-"+b.id, "snn", "agency_submitter", fmt.Sprintf("090%07d", n))
	if err != nil {
		return nil, err
	}
	appr, err := b.fl.Official(ctx, "bench-approver-"+b.id, fleet.ApprovalUnit, "broadcast_approver", fmt.Sprintf("090%07d", n+1))
	if err != nil {
		return nil, err
	}
	c := b.fl.Client()
	var bc struct {
		ID string `json:"id"`
	}
	if _, err := c.Call(ctx, "POST", "/v1/broadcasts", sub, map[string]any{
		"title": "Thông báo", "body": "Đo tốc độ gửi thông báo.", "topic": "general",
		"audience": map[string]any{"areas": []string{"95"}}, "channels": []string{"push"},
		"request_document": map[string]string{"number": "1/BENCH", "date": time.Now().Format("2006-01-02")},
	}, &bc); err != nil {
		return nil, fmt.Errorf("draft: %w", err)
	}
	if _, err := c.Call(ctx, "POST", "/v1/broadcasts/"+bc.ID+"/submit", sub, nil, nil); err != nil {
		return nil, fmt.Errorf("submit: %w", err)
	}
	// The approver looks before deciding, as in the console: the audience
	// is counted then, and the approval keeps that figure, so reading the
	// broadcast while it is sent (waitLedger) counts nothing.
	if _, err := c.Call(ctx, "GET", "/v1/broadcasts/"+bc.ID, appr, nil, nil); err != nil {
		return nil, fmt.Errorf("look before approving: %w", err)
	}
	before, err := b.count(ctx)
	if err != nil {
		return nil, err
	}

	if cfg.work {
		// What the set-up asked of PostgreSQL shows in its counts within
		// pgStatsDelay: wait so that it is not counted as the broadcast's.
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pgStatsDelay):
		}
		if res.work0, err = b.workCounts(ctx); err != nil {
			return nil, err
		}
	}
	res.procs, res.services = b.processes()
	for _, p := range res.procs {
		p.cpu0, p.cs0 = cpuOf(p), switchesOf(p.pid, p.tree)
		if p.own {
			_ = procstat.ResetPeak(p.pid)
		}
	}
	sampleCtx, stopSampling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if !cfg.stopAfterCodes {
		// With -stop-after-codes no memory figures are given, and the
		// sampling (PostgreSQL's page maps above all) would be CPU taken
		// from the codes' cores.
		wg.Add(1)
		go func() { defer wg.Done(); sampleRSS(sampleCtx, res.procs) }()
	}

	var codes *codeLoad
	stopCodes := make(chan struct{})
	t0 := time.Now()
	waitCtx, stopWaiting := context.WithCancel(ctx)
	defer stopWaiting()
	var windowStages []stageHists
	codesAsked := make(chan struct{})
	if cfg.codes > 0 {
		codes = newCodeLoad(b.fl.Client(), cfg.codes)
		scrapeStages := func() stageHists {
			h := stageHists{}
			h.scrape(ctx, b.fl.APIMetricsURL, "otp")
			for _, url := range b.fl.MetricsURLs {
				h.scrape(ctx, url, "otp")
			}
			return h
		}
		windowStages = append(windowStages, scrapeStages())
		wg.Add(1)
		go func() {
			// The stages at each codeWindow's end while the codes are
			// asked, up to the first end after the last was asked.
			defer wg.Done()
			t := time.NewTicker(codeWindow)
			defer t.Stop()
			for {
				select {
				case <-sampleCtx.Done():
					return
				case <-t.C:
				}
				windowStages = append(windowStages, scrapeStages())
				select {
				case <-codesAsked:
					return
				default:
				}
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes.run(ctx, stopCodes, cfg.codesFor)
			close(codesAsked)
			for _, p := range res.procs {
				p.cpuCodes, p.csCodes = cpuOf(p), switchesOf(p.pid, p.tree)
			}
			if cfg.stopAfterCodes {
				stopWaiting()
			}
		}()
	}
	if _, err := c.Call(ctx, "POST", "/v1/broadcasts/"+bc.ID+"/approve", appr, nil, nil); err != nil {
		close(stopCodes)
		stopSampling()
		wg.Wait()
		return nil, fmt.Errorf("approve: %w", err)
	}
	res.pushes, res.toFirstPush, err = b.wait(waitCtx, t0, before)
	res.toLastPush = time.Since(t0)
	res.fastest = fastestSecond(b.polls)
	if err == nil {
		res.toPlanDone = planDone(ctx, dbURL, bc.ID, res.toLastPush)
	}
	close(stopCodes)
	if err != nil && cfg.stopAfterCodes && ctx.Err() == nil {
		err, res.stopped = nil, true
	}
	if err == nil && !res.stopped {
		err = b.waitLedger(ctx, c, appr, bc.ID)
		res.toLedger = time.Since(t0)
	}
	for _, p := range res.procs {
		p.cpu1 = cpuOf(p)
	}
	stopSampling()
	wg.Wait()
	if err != nil {
		return nil, err
	}
	if codes != nil {
		if res.codes, err = codes.collect(ctx, b.fl, time.Minute); err != nil {
			return nil, fmt.Errorf("codes: %w", err)
		}
		for _, p := range res.procs {
			res.codes.cpu = append(res.codes.cpu, procCPU{name: p.name, cpu: p.cpuCodes - p.cpu0, switches: switchDelta(p.cs0, p.csCodes)})
		}
	}
	if res.codes != nil {
		res.codes.windowStages = windowStages
		res.codes.stages = stageHists{}
		res.codes.stages.scrape(ctx, b.fl.APIMetricsURL, "otp")
		res.codes.pools = poolWaits(ctx, "api", b.fl.APIMetricsURL)
		for i, url := range b.fl.MetricsURLs {
			res.codes.stages.scrape(ctx, url, "otp")
			res.codes.pools = append(res.codes.pools, poolWaits(ctx, fmt.Sprintf("dispatcher-%d", i+1), url)...)
		}
	}
	for _, url := range b.fl.MetricsURLs {
		c := scrapeCounts(ctx, url)
		res.perDispatcher = append(res.perDispatcher, c.sent)
		res.retried += c.retrying
		res.breakerOpened += c.opened
		res.bulkWaitSum += c.bulkWaitSum
		res.bulkWaitNum += c.bulkWaitNum
		if res.codes != nil {
			res.codes.addLimiter(c)
		}
	}
	res.load1 = loadavg()
	if cfg.work {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pgStatsDelay):
		}
		if res.work1, err = b.workCounts(ctx); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// count is what the FCM fake has accepted.
func (b *bench) count(ctx context.Context) (int, error) {
	if b.refStats == "" {
		return b.fl.FakeCount(ctx, "fcm")
	}
	var s struct {
		Accepted int `json:"accepted"`
	}
	err := getJSON(ctx, b.refStats, &s)
	return s.Accepted, err
}

// wait shows the progress until the fake has every push.
// wait waits for the broadcast's last push and returns how many arrived
// and when the first did (from t0, to the fake's count polled every 50 ms).
func (b *bench) wait(ctx context.Context, t0 time.Time, before int) (int, time.Duration, error) {
	n := b.cfg.devices
	tty := isTerminal(b.out) && !b.cfg.quietProgress
	var (
		last  int
		first time.Duration
	)
	lastAt, lastLine := t0, t0
	for {
		got, err := b.count(ctx)
		if err == nil {
			got -= before
			now := time.Now()
			if got > 0 && first == 0 {
				first = now.Sub(t0)
			}
			b.polls = append(b.polls, poll{now, got})
			if got >= n || tty && now.Sub(lastAt) >= 500*time.Millisecond || !tty && now.Sub(lastLine) >= 5*time.Second {
				rate := float64(got-last) / now.Sub(lastAt).Seconds()
				line := progressBar(got, n, rate, now.Sub(t0))
				if tty {
					fmt.Fprintf(b.out, "\r%s", line)
				} else {
					fmt.Fprintln(b.out, line)
				}
				last, lastAt, lastLine = got, now, now
			}
			if got >= n {
				if tty {
					fmt.Fprintln(b.out)
				}
				return got, first, nil
			}
		}
		select {
		case <-ctx.Done():
			return last, first, fmt.Errorf("%d of %d pushes arrived: %w", last, n, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// poll is the fake's count at a moment of the run.
type poll struct {
	at  time.Time
	got int
}

// fastestSecond is the run's fastest second: the highest rate, in pushes
// a second, from a poll to the next poll at least a second later (polls
// in time order). A broadcast held by the shared rate limit reads about
// the limit (LOA_FCM_RATE) here. 0 for polls spanning under a second.
func fastestSecond(polls []poll) float64 {
	var best float64
	j := 0
	for i := range polls {
		for j < i && polls[i].at.Sub(polls[j+1].at) >= time.Second {
			j++
		}
		if d := polls[i].at.Sub(polls[j].at); d >= time.Second {
			best = max(best, float64(polls[i].got-polls[j].got)/d.Seconds())
		}
	}
	return best
}

// atLimit reports whether a run whose fastest second was fastest pushes
// came within a tenth of the shared rate limit (pushes/s; 0 when not
// known): its pushes/s may be the limit's, not the machine's.
func atLimit(fastest, limit float64) bool {
	return limit > 0 && fastest >= 0.9*limit
}

func progressBar(got, n int, rate float64, elapsed time.Duration) string {
	const width = 30
	fill := min(width, got*width/max(n, 1))
	eta := "—"
	if rate > 0 && got < n {
		eta = (time.Duration(float64(n-got) / rate * float64(time.Second))).Round(time.Second).String()
	}
	return fmt.Sprintf("[%s%s] %7d/%d  %6.0f/s  %5.1fs  ETA %s   ", strings.Repeat("#", fill), strings.Repeat(".", width-fill),
		got, n, rate, elapsed.Seconds(), eta)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// waitLedger waits until the ledger counts every push as sent, so the
// CPU measured includes folding the receipts.
func (b *bench) waitLedger(ctx context.Context, c *fleet.Client, token, id string) error {
	for {
		var v struct {
			Stats struct {
				Sent    int `json:"sent"`
				Pending int `json:"pending"`
			} `json:"stats"`
		}
		if _, err := c.Call(ctx, "GET", "/v1/broadcasts/"+id, token, nil, &v); err == nil && v.Stats.Sent >= b.cfg.devices {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the ledger never counted every push: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// processes lists what is measured: Loa's processes, the fake, and the
// services found by their listening ports.
func (b *bench) processes() ([]*proc, string) {
	var ps []*proc
	add := func(name string, pid int, tree, loa, own bool, note string) {
		if pl := placement(pid, tree); pid > 0 && pl != "" {
			note = strings.TrimPrefix(note+", "+pl, ", ")
		}
		if pid > 0 {
			ps = append(ps, &proc{name: name, pid: pid, tree: tree, loa: loa, own: own, note: note})
		}
	}
	add("loa api", b.fl.API.PID(), false, true, true, "")
	envs := b.cfg.dispatcherEnvs()
	for i, d := range b.fl.Dispatchers {
		var notes []string
		if i < len(envs) {
			notes = append(notes, "lanes "+envs[i]["LOA_DISPATCHER_LANES"])
			if envs[i]["LOA_DISPATCHER_LEDGER"] != "off" {
				notes = append(notes, "the ledger")
			}
		}
		// The nice value its threads run at, as read from /proc.
		if lo, hi, err := procstat.Nice(d.PID()); err == nil && lo == hi {
			notes = append(notes, fmt.Sprintf("nice %d", lo))
		} else if err == nil {
			notes = append(notes, fmt.Sprintf("nice %d-%d", lo, hi))
		}
		add("loa "+d.Name, d.PID(), false, true, true, strings.Join(notes, ", "))
	}
	add("loa-bench", os.Getpid(), false, false, false, "this program: progress, memory sampling, SMS codes")
	if b.ref != nil {
		add("fcm fake (reference)", b.ref.PID(), false, false, true, "")
		add("sms fake (loa-fakes)", b.fl.Fakes.PID(), false, false, true, "with the idle FCM and SMTP fakes")
	} else {
		add("fcm fake (loa-fakes)", b.fl.Fakes.PID(), false, false, true, "with the idle SMS and SMTP fakes")
	}
	var services []string
	for _, s := range b.servicePIDs() {
		if s.err != nil {
			services = append(services, fmt.Sprintf("%s %s (not measured: %v)", s.name, s.addr, s.err))
			continue
		}
		add(s.name, s.pid, s.tree, false, false, "")
		services = append(services, fmt.Sprintf("%s %s (pid %d)", s.name, s.addr, s.pid))
	}
	return ps, strings.Join(services, ", ")
}

// service is one of Kafka, Redis and PostgreSQL, found by its listening
// port.
type service struct {
	name, addr string
	pid        int
	tree       bool // its children are part of it (PostgreSQL's backends)
	err        error
}

// servicePIDs finds the services; for PostgreSQL, its postmaster.
func (b *bench) servicePIDs() []service {
	return findServices(b.cfg.brokers, b.cfg.redisURL, b.cfg.databaseURL)
}

// findServices finds Kafka, Redis and PostgreSQL (its postmaster) by
// their listening ports.
func findServices(brokers, redisURL, databaseURL string) []service {
	ss := []service{
		{name: "kafka", addr: strings.Split(brokers, ",")[0]},
		{name: "redis", addr: redisAddr(redisURL)},
		{name: "postgresql", addr: pgAddr(databaseURL), tree: true},
	}
	var found []service
	for _, s := range ss {
		_, port, _ := net.SplitHostPort(s.addr)
		p, _ := strconv.Atoi(port)
		s.pid, s.err = procstat.ListeningPID(p)
		if s.err == nil && s.tree {
			s.pid = procstat.Root(s.pid)
		}
		found = append(found, s)
	}
	return found
}

// switchesOf reads the context switches of pid (and with tree, of each
// of its descendants), by process.
func switchesOf(pid int, tree bool) map[int]int64 {
	if tree {
		m, _ := procstat.TreeSwitches(pid)
		return m
	}
	n, err := procstat.Switches(pid)
	if err != nil {
		return nil
	}
	return map[int]int64{pid: n}
}

// switchDelta is the context switches from before to after of the
// processes in both (an ended process's are not kept anywhere).
func switchDelta(before, after map[int]int64) int64 {
	var n int64
	for pid, v := range after {
		if v0, ok := before[pid]; ok {
			n += v - v0
		}
	}
	return n
}

func cpuOf(p *proc) time.Duration {
	var d time.Duration
	var err error
	if p.tree {
		d, err = procstat.TreeCPU(p.pid)
	} else {
		d, err = procstat.CPU(p.pid)
	}
	if err != nil {
		return 0
	}
	return d
}

// sampleRSS keeps each process's largest resident memory, every 200 ms;
// a process tree's (PostgreSQL's, which costs a walk of /proc and of each
// backend's page map) every 2 s.
func sampleRSS(ctx context.Context, ps []*proc) {
	for tick := 0; ; tick++ {
		for _, p := range ps {
			var rss int64
			if p.tree && tick%10 != 0 {
				continue
			}
			if p.tree {
				rss, _ = procstat.TreePSS(p.pid) // shared buffers once
			} else if m, err := procstat.Mem(p.pid); err == nil {
				rss = m.RSS
				if m.RSS > p.sampled {
					p.sampled, p.anon, p.file = m.RSS, m.Anon, m.File
				}
				if p.own {
					rss = max(rss, m.Peak) // its peak since the reset at approval
				}
			}
			p.peak = max(p.peak, rss)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// dispatcherCounts are what a dispatcher's /metrics says of the run.
type dispatcherCounts struct {
	sent, retrying float64 // pushes by outcome
	opened         float64 // breaker changes to open, any provider
	// The rate limiters: each provider's calls to its shared bucket in
	// Redis, and the otp lane's waits for a token (seconds, sends).
	limiterCalls           map[string]float64
	otpWaitSum, otpWaitNum map[string]float64
	// The bulk lane's waits for a token, every provider's (seconds, sends).
	bulkWaitSum, bulkWaitNum float64
}

// scrapeCounts reads a dispatcher's loa_deliveries_total for pushes and
// loa_breaker_transitions_total.
func scrapeCounts(ctx context.Context, url string) dispatcherCounts {
	c := dispatcherCounts{limiterCalls: map[string]float64{}, otpWaitSum: map[string]float64{}, otpWaitNum: map[string]float64{}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return dispatcherCounts{sent: -1}
	}
	defer resp.Body.Close()
	samples(resp.Body, func(line string, v float64) {
		switch {
		case strings.HasPrefix(line, "loa_deliveries_total{") && strings.Contains(line, `channel="push"`) && strings.Contains(line, `status="sent"`):
			c.sent += v
		case strings.HasPrefix(line, "loa_deliveries_total{") && strings.Contains(line, `channel="push"`) && strings.Contains(line, `status="retrying"`):
			c.retrying += v
		case strings.HasPrefix(line, "loa_breaker_transitions_total{") && strings.Contains(line, `to="open"`):
			c.opened += v
		case strings.HasPrefix(line, "loa_ratelimit_redis_calls_total{"):
			c.limiterCalls[label(line, "provider")] += v
		case strings.HasPrefix(line, "loa_ratelimit_wait_seconds_sum{") && strings.Contains(line, `lane="otp"`):
			c.otpWaitSum[label(line, "provider")] += v
		case strings.HasPrefix(line, "loa_ratelimit_wait_seconds_count{") && strings.Contains(line, `lane="otp"`):
			c.otpWaitNum[label(line, "provider")] += v
		case strings.HasPrefix(line, "loa_ratelimit_wait_seconds_sum{") && strings.Contains(line, `lane="bulk"`):
			c.bulkWaitSum += v
		case strings.HasPrefix(line, "loa_ratelimit_wait_seconds_count{") && strings.Contains(line, `lane="bulk"`):
			c.bulkWaitNum += v
		}
	})
	return c
}

// samples calls f with each sample line of Prometheus text and its value
// (0 when it does not parse).
func samples(r io.Reader, f func(line string, v float64)) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if i < 0 || strings.HasPrefix(line, "#") {
			continue
		}
		v, _ := strconv.ParseFloat(line[i+1:], 64)
		f(line, v)
	}
}

// label is the value of a Prometheus text line's label name.
func label(line, name string) string {
	_, rest, ok := strings.Cut(line, name+`="`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func (r *result) print(w io.Writer) {
	n := float64(r.cfg.devices)
	fmt.Fprintf(w, "\nbroadcast to %d devices, %s, FCM fake %s at %v latency, %d CPUs; load average %s before, %s after\n",
		r.cfg.devices, r.cfg.layout(), r.cfg.fcm, r.cfg.latency, runtime.NumCPU(), r.load0, r.load1)
	fmt.Fprintf(w, "services: %s\n", r.services)
	if r.groups != "" {
		fmt.Fprintf(w, "%s\n", r.groups)
	}
	if r.stopped {
		fmt.Fprintf(w, "stopped after the codes (-stop-after-codes): %d of %d pushes arrived in %.2f s; no per-push figures\n",
			r.pushes, r.cfg.devices, r.toLastPush.Seconds())
		if r.codes != nil {
			r.codes.print(w)
			if r.work0 != nil && r.work1 != nil && r.codes.accepted > 0 {
				printWork(w, r.work0, r.work1, float64(r.codes.accepted), "code")
			}
		}
		return
	}
	fmt.Fprintf(w, "approval → last push: %.2f s = %.0f pushes/s; ledger complete at %.2f s\n",
		r.toLastPush.Seconds(), n/r.toLastPush.Seconds(), r.toLedger.Seconds())
	planned := "not known"
	if r.toPlanDone > 0 {
		planned = fmt.Sprintf("%.2f s", r.toPlanDone.Seconds())
	}
	fmt.Fprintf(w, "first push at %.2f s; plan complete (its last batch on Kafka) at %s\n", r.toFirstPush.Seconds(), planned)
	rate, limit := "10000/s, the default", 10000.0
	if v, ok := r.cfg.env["LOA_FCM_RATE"]; ok {
		rate = v + "/s"
		limit, _ = strconv.ParseFloat(v, 64)
	}
	wait := "no bulk push counted"
	if r.bulkWaitNum > 0 {
		wait = fmt.Sprintf("a bulk push waited %.2f ms on average for a token", 1000*r.bulkWaitSum/r.bulkWaitNum)
	}
	fmt.Fprintf(w, "fastest second: %.0f pushes/s; FCM's shared rate limit (LOA_FCM_RATE) %s: %s\n", r.fastest, rate, wait)
	if atLimit(r.fastest, limit) {
		fmt.Fprintf(w, "the rate limit, not the CPU, may have set the pushes/s: -env LOA_FCM_RATE=%.0f measures the machine\n", 5*limit)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "process\tCPU s\tCPU-µs/push\tpeak RSS MiB\tanon + file MiB\t")
	var loaCPU, allCPU time.Duration
	for _, p := range r.procs {
		d := p.cpu1 - p.cpu0
		allCPU += d
		if p.loa {
			loaCPU += d
		}
		note := ""
		if p.note != "" {
			note = "  (" + p.note + ")"
		}
		split := ""
		if p.sampled > 0 {
			split = fmt.Sprintf("%.0f + %.0f", float64(p.anon)/(1<<20), float64(p.file)/(1<<20))
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%.1f\t%.0f\t%s\t%s\n", p.name, d.Seconds(), float64(d.Microseconds())/n, float64(p.peak)/(1<<20), split, note)
	}
	var svc time.Duration
	for _, p := range r.procs {
		if !p.loa && !strings.HasPrefix(p.name, "fcm fake") && !strings.HasPrefix(p.name, "sms fake") && p.name != "loa-bench" {
			svc += p.cpu1 - p.cpu0
		}
	}
	fmt.Fprintf(tw, "Loa's processes\t%.2f\t%.1f\t\t\t\n", loaCPU.Seconds(), float64(loaCPU.Microseconds())/n)
	fmt.Fprintf(tw, "Loa + Kafka + Redis + PostgreSQL\t%.2f\t%.1f\t\t\t\n", (loaCPU + svc).Seconds(), float64((loaCPU+svc).Microseconds())/n)
	tw.Flush()
	if r.retried > 0 || r.breakerOpened > 0 {
		fmt.Fprintf(w, "\nnot a clean run: %.0f pushes went to a retry tier and breakers opened %.0f times; the figures include that time\n",
			r.retried, r.breakerOpened)
	}
	if r.codes != nil {
		r.codes.print(w)
	}
	if r.work0 != nil && r.work1 != nil {
		printWork(w, r.work0, r.work1, n, "push")
	}
	if len(r.perDispatcher) > 1 {
		var parts []string
		for i, v := range r.perDispatcher {
			parts = append(parts, fmt.Sprintf("dispatcher-%d %.0f (%.0f%%)", i+1, v, 100*v/n))
		}
		fmt.Fprintf(w, "\npushes sent per dispatcher: %s\n", strings.Join(parts, ", "))
	}
	fmt.Fprintln(w, "\nCPU is from approval until the ledger counted every push. Peak memory is RSS (PostgreSQL: PSS of the")
	fmt.Fprintln(w, "postmaster and its backends) during that time; anon + file are its parts at the sample (every 200 ms)")
	fmt.Fprintln(w, "with the most resident: the process's own memory (heap, stacks) and the pages of its binary mapped from")
	fmt.Fprintln(w, "the page cache, shared with other processes running the same file. The services are measured whole:")
	fmt.Fprintln(w, "on shared services their CPU and memory include other clients' work.")
	if r.codes != nil {
		fmt.Fprintln(w, "The CPU per push includes the SMS codes' work (the API's most of all).")
	}
}

// startReference runs the reference fake on a free port and returns the
// LOA_FCM_* variables that point Loa at it.
func (b *bench) startReference(ctx context.Context) (map[string]string, error) {
	port, err := instance.FreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	pem, sa := filepath.Join(b.cfg.dir, "fakefcm.pem"), filepath.Join(b.cfg.dir, "fakefcm-sa.json")
	bin, err := filepath.Abs(b.cfg.fakefcm)
	if err != nil {
		return nil, err
	}
	log := filepath.Join(b.cfg.dir, "fakefcm.log")
	b.ref, err = instance.StartProcess(log, nil, nil, bin, "-addr", addr, "-latency", b.cfg.latency.String(),
		"-tls", pem, "-sa", sa, "-project", "fake-project")
	if err != nil {
		return nil, err
	}
	b.refStats = "https://" + addr + "/stats"
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := b.ref.WaitReady(wctx, "fakefcm", log, func(ctx context.Context) error {
		var s map[string]any
		return getJSON(ctx, b.refStats, &s)
	}); err != nil {
		return nil, err
	}
	return map[string]string{"LOA_FCM_PROJECT_ID": "fake-project", "LOA_FCM_ENDPOINT": "https://" + addr + "/v1",
		"LOA_FCM_CREDENTIALS_FILE": sa, "LOA_FCM_INSECURE_TLS": "1"}, nil
}

var insecure = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}

func getJSON(ctx context.Context, url string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := insecure.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// planDone is when, from approval, the planner recorded the broadcast's
// plan done (its last batch written to Kafka): the plan's row's last
// update, taken back from now (the database's clock) at the last push,
// toLastPush after approval. 0 when it cannot be read.
func planDone(ctx context.Context, dbURL, id string, toLastPush time.Duration) time.Duration {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0
	}
	defer conn.Close(ctx)
	var ago float64
	if err := conn.QueryRow(ctx, `SELECT EXTRACT(EPOCH FROM clock_timestamp() - MAX(updated_at))::float8 FROM plans
		WHERE notification_id = $1 AND done`, id).Scan(&ago); err != nil {
		return 0
	}
	return max(0, toLastPush-time.Duration(ago*float64(time.Second)))
}

// makeSchema creates the run's schema and returns a URL that uses it. A
// kept schema (-schema) that exists is used as it is: seeded says so.
func (b *bench) makeSchema(ctx context.Context) (_ string, seeded bool, _ error) {
	conn, err := pgx.Connect(ctx, b.cfg.databaseURL)
	if err != nil {
		return "", false, err
	}
	defer conn.Close(ctx)
	if b.cfg.schema != "" {
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", b.schema).Scan(&seeded); err != nil {
			return "", false, err
		}
	}
	if !seeded {
		if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{b.schema}.Sanitize()); err != nil {
			return "", false, err
		}
	}
	u, err := url.Parse(b.cfg.databaseURL)
	if err != nil {
		return "", false, err
	}
	q := u.Query()
	q.Set("search_path", b.schema)
	u.RawQuery = q.Encode()
	return u.String(), seeded, nil
}

// cleanup stops the processes and removes the run's schema, topics and
// Redis keys from the shared services.
// settleEpoch starts the dispatchers' claim epoch under prefix at since,
// as a Redis that has kept their claims since then has it. A new prefix
// otherwise starts a new epoch with the run, which is what a dispatcher
// sees after Redis lost its data: for the next few minutes every
// delivery is then checked against the write-ahead record in PostgreSQL
// (a code three look-ups, a fan-out batch one) — not what a run is meant
// to measure, unless -fresh-epoch asks for it.
func settleEpoch(ctx context.Context, redisURL, prefix string, since time.Time) error {
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		return fmt.Errorf("redis url: %w", err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if err := rdb.Set(ctx, dispatcher.EpochKey(prefix), fmt.Sprintf("%d:loa-bench", since.UnixMicro()), 0).Err(); err != nil {
		return fmt.Errorf("claim epoch: %w", err)
	}
	return nil
}

func (b *bench) cleanup() {
	if b.cleaned {
		return
	}
	b.cleaned = true
	defer b.groups.remove()
	if b.fl != nil {
		b.fl.Close()
	}
	if b.ref != nil {
		b.ref.Stop(syscall.SIGTERM, 5*time.Second)
	}
	if b.cfg.keep || b.schema == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if b.cfg.schema == "" { // a kept schema stays
		if conn, err := pgx.Connect(ctx, b.cfg.databaseURL); err == nil {
			conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+b.schema+" CASCADE")
			conn.Close(ctx)
		}
	}
	names := topics.Names{Prefix: b.prefix}
	var all []string
	for _, s := range topics.Specs() {
		all = append(all, names.Topic(s.Name))
	}
	client := &kafka.Client{Addr: kafka.TCP(strings.Split(b.cfg.brokers, ",")...), Timeout: 30 * time.Second}
	client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: all})
	deleteRedisKeys(ctx, b.cfg.redisURL, b.keys+"*")
}

// deleteRedisKeys deletes the keys matching pattern, a thousand at a
// time; a Redis it cannot reach is left as it is.
func deleteRedisKeys(ctx context.Context, redisURL, pattern string) {
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		return
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		if keys = append(keys, iter.Val()); len(keys) == 1000 {
			rdb.Del(ctx, keys...)
			keys = keys[:0]
		}
	}
	if len(keys) > 0 {
		rdb.Del(ctx, keys...)
	}
}

func redisAddr(u string) string {
	if opt, err := redis.ParseURL(u); err == nil {
		return opt.Addr
	}
	return ""
}

func pgAddr(u string) string {
	if cfg, err := pgx.ParseConfig(u); err == nil {
		return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	}
	return ""
}
