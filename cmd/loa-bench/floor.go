package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/loa-hub/loa/internal/cpugroup"
	"github.com/loa-hub/loa/internal/fleet"
	"github.com/loa-hub/loa/internal/procstat"
)

// `loa-bench floor` measures the floor of an SMS code's hops: three small
// processes that make the hops a code makes in Loa, with the same
// libraries, and nothing else —
//
//	client → POST /v1/otp/sms (JSON) → api: a Redis EVALSHA (the code, with
//	  a TTL, and a counter), a Kafka produce (acks=all, keyed by phone) → 202
//	dispatcher: reads the topic in a consumer group; a message: a Redis
//	  pipeline (SET NX PX claim + GET), a PostgreSQL INSERT, a POST (JSON)
//	  to the gateway, a Kafka produce of a receipt (acks=all); the offset
//	  committed once every earlier message of its partition is done
//	gateway: answers 200, records the arrival, posts a delivery report
//	  (JSON) to the api, which INSERTs it in PostgreSQL.
//
// The load is loa-bench's own (codeLoad: an open load, a goroutine a
// request, fleet.Client), so the client's share is the same as in
// `loa-bench broadcast -codes`. Everything runs against the running
// services under a prefix of its own, removed at the end.

// floorConfig is one `loa-bench floor`.
type floorConfig struct {
	rate                           int
	during, wait                   time.Duration
	partitions                     int
	databaseURL, redisURL, brokers string
	dir                            string
	keep                           bool
	// writer makes the floor's Kafka writes through kafka-go's Writer
	// instead of a produce request each (floorProducer).
	writer bool
	// database is what the floor writes to PostgreSQL (floorDatabase).
	database string
	// urgentWeight and servicesWeight, when not 0, put the floor's
	// processes and loa-bench, and Kafka, Redis and PostgreSQL, in CPU
	// groups of those weights, as `loa-bench broadcast -split
	// -services-weight` does Loa's urgent side and the services.
	urgentWeight, servicesWeight int
	cpuProfile                   string // a directory for the roles' CPU profiles
}

// floorDatabase are -database's values, and what each writes to
// PostgreSQL.
var floorDatabase = map[string]string{
	"both":     "PostgreSQL: an attempt before each send, each report stored",
	"attempts": "PostgreSQL: an attempt before each send, reports not stored",
	"reports":  "PostgreSQL: no attempt, each report stored",
	"none":     "no PostgreSQL (-database none)",
}

// floorWarmup is how many codes are sent, and waited for at the gateway,
// before the measured ones: the consumer group's join and the
// connections' dials are not a code's cost.
const floorWarmup = 50

// floorWarmupBase numbers the warm-up codes' phones, apart from the
// measured ones (codePhoneBase).
const floorWarmupBase = 30_000_000

func runFloor(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("loa-bench floor", flag.ContinueOnError)
	fs.SetOutput(stdout)
	var cfg floorConfig
	fs.IntVar(&cfg.rate, "codes", 500, "codes a second")
	fs.DurationVar(&cfg.during, "codes-for", time.Minute, "how long codes are asked")
	fs.DurationVar(&cfg.wait, "wait", 30*time.Second, "how long to wait for the last codes at the gateway")
	fs.IntVar(&cfg.partitions, "partitions", 6, "partitions of the codes' topic (Loa's loa.otp has 6)")
	fs.StringVar(&cfg.databaseURL, "database-url", getenv("LOA_TEST_DATABASE_URL"), "PostgreSQL (a schema of its own is made and dropped)")
	fs.StringVar(&cfg.redisURL, "redis-url", getenv("LOA_TEST_REDIS_URL"), "Redis (keys under a prefix of its own, deleted at the end)")
	fs.StringVar(&cfg.brokers, "kafka-brokers", getenv("LOA_TEST_KAFKA_BROKERS"), "Kafka (topics under a prefix of their own, deleted at the end)")
	fs.StringVar(&cfg.dir, "dir", "", "where the processes' logs go (default: a new temporary directory)")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the schema, topics and Redis keys")
	fs.BoolVar(&cfg.writer, "writer", false, "write to Kafka through kafka-go's Writer (BatchTimeout 1 ms), instead of one produce request a write sent at once")
	fs.StringVar(&cfg.database, "database", "both", "what goes to PostgreSQL: both (an attempt before each send, each report), attempts, reports, or none (only the hops DESIGN.md fixes)")
	fs.IntVar(&cfg.urgentWeight, "urgent-weight", defaultUrgentWeight, "the CPU group (cgroup) weight of the floor's processes and loa-bench, as broadcast -split's urgent side (0: no group)")
	fs.IntVar(&cfg.servicesWeight, "services-weight", 1000, "the CPU group weight of Kafka, Redis and PostgreSQL for the run, as broadcast's -services-weight (0: left where they run)")
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", "", "a directory where the api, dispatcher and gateway each write a CPU profile of the run (cpu-floor-<role>.pprof), as LOA_CPUPROFILE does Loa's")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.databaseURL == "" || cfg.redisURL == "" || cfg.brokers == "" {
		return errors.New("the services are not named: source deploy/local/.state/env, or give -database-url, -redis-url and -kafka-brokers")
	}
	if _, ok := floorDatabase[cfg.database]; !ok {
		return fmt.Errorf("-database %q: want both, attempts, reports or none", cfg.database)
	}
	if cfg.rate <= 0 || cfg.during <= 0 || cfg.partitions <= 0 {
		return errors.New("-codes, -codes-for and -partitions must be positive")
	}
	if cfg.dir == "" {
		d, err := os.MkdirTemp("", "loa-floor-")
		if err != nil {
			return err
		}
		cfg.dir = d
	} else if err := os.MkdirAll(cfg.dir, 0o755); err != nil {
		return err
	}
	var b [4]byte
	rand.Read(b[:])
	f := &floor{cfg: cfg, prefix: "floor_" + hex.EncodeToString(b[:])}
	defer f.cleanup()
	r, err := f.run(ctx)
	if err != nil {
		return err
	}
	r.print(stdout)
	if !cfg.keep {
		fmt.Fprintf(stdout, "  names: %s (the schema, the topics' and Redis keys' prefix, the group), removed at the end\n", f.prefix)
	}
	return nil
}

// floor is one run: its names, processes and what it measured.
type floor struct {
	cfg    floorConfig
	prefix string // the schema, the topics' prefix, the Redis keys' and the group's
	procs  []*exec.Cmd
	groups []*cpugroup.Group
}

func (f *floor) topic(name string) string { return f.prefix + "." + name }

// floorArgs are the flags every role is started with.
func (f *floor) roleArgs(role string, more ...string) []string {
	return append([]string{"floor-" + role, "-database-url", f.cfg.databaseURL, "-redis-url", f.cfg.redisURL,
		"-kafka-brokers", f.cfg.brokers, "-prefix", f.prefix, "-partitions", strconv.Itoa(f.cfg.partitions),
		"-writer=" + strconv.FormatBool(f.cfg.writer), "-database", f.cfg.database, "-cpuprofile", f.cfg.cpuProfile}, more...)
}

func (f *floor) run(ctx context.Context) (*floorResult, error) {
	if err := f.setUp(ctx); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	api, apiAddr, err := f.start(ctx, self, "api")
	if err != nil {
		return nil, err
	}
	gw, gwAddr, err := f.start(ctx, self, "gateway", "-report", "http://"+apiAddr+"/reports")
	if err != nil {
		return nil, err
	}
	disp, _, err := f.start(ctx, self, "dispatcher", "-gateway", "http://"+gwAddr+"/sms")
	if err != nil {
		return nil, err
	}
	c := fleet.NewClient("http://" + apiAddr)
	gwURL := "http://" + gwAddr + "/arrivals"

	// Warm up: the group's join, the pools' connections.
	warm := newCodeLoad(c, 100)
	warm.phoneBase = floorWarmupBase
	warm.run(ctx, nil, floorWarmup*time.Second/100)
	warm.wg.Wait()
	warmAt, err := waitArrivals(ctx, gwURL, warm.asked, time.Minute)
	if err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	if _, missing := floorTimes(warm.asked, warmAt); missing > 0 || len(warm.asked) == 0 {
		return nil, fmt.Errorf("warm-up: %d of %d codes accepted (%v), %d not at the gateway after a minute (logs in %s)",
			len(warm.asked), floorWarmup, warm.byRes, missing, f.cfg.dir)
	}

	ps := []floorProc{{name: "api", pid: api.Process.Pid}, {name: "dispatcher", pid: disp.Process.Pid},
		{name: "gateway", pid: gw.Process.Pid}, {name: "loa-bench", pid: os.Getpid(), note: "the load, as in loa-bench broadcast -codes"}}
	for _, s := range findServices(f.cfg.brokers, f.cfg.redisURL, f.cfg.databaseURL) {
		if s.err == nil {
			ps = append(ps, floorProc{name: s.name, pid: s.pid, tree: s.tree, note: floorServiceNote})
		}
	}
	groups, err := f.makeGroups(ps)
	if err != nil {
		return nil, err
	}
	load := loadavg()
	snap := func() {
		for i := range ps {
			ps[i].cpu0, ps[i].cs0 = ps[i].cpu1, ps[i].cs1
			ps[i].cpu1, ps[i].cs1 = ps[i].read()
		}
	}
	snap()
	l := newCodeLoad(c, f.cfg.rate)
	t0 := time.Now()
	l.run(ctx, nil, f.cfg.during)
	snap()
	took := time.Since(t0)
	l.wg.Wait()
	at, err := waitArrivals(ctx, gwURL, l.asked, f.cfg.wait)
	if err != nil {
		return nil, err
	}
	r := &floorResult{rate: f.cfg.rate, during: took, load: load + " before, " + loadavg() + " after", answers: l.byRes, accepted: len(l.asked), procs: ps,
		writes: "a produce request each, sent at once", groups: groups}
	if f.cfg.writer {
		r.writes = "kafka-go's Writer, BatchTimeout 1 ms"
	}
	r.hops = floorDatabase[f.cfg.database]
	r.delivered, r.missing = floorTimes(l.asked, at)
	r.apiTook = slices.Clone(l.took)
	slices.Sort(r.apiTook)
	return r, nil
}

// floorTimes are the times from each accepted code's request to its
// first arrival at the gateway (sorted), and how many accepted codes
// never arrived.
func floorTimes(asked, arrived map[string]time.Time) (sorted []time.Duration, missing int) {
	for phone, t := range asked {
		a, ok := arrived[phone]
		if !ok || a.Before(t) {
			missing++
			continue
		}
		sorted = append(sorted, a.Sub(t))
	}
	slices.Sort(sorted)
	return sorted, missing
}

// waitArrivals polls the gateway until every phone of asked has arrived,
// or until wait has passed, and returns the arrivals.
func waitArrivals(ctx context.Context, url string, asked map[string]time.Time, wait time.Duration) (map[string]time.Time, error) {
	deadline := time.Now().Add(wait)
	for {
		var ns map[string]int64
		if err := getJSON(ctx, url, &ns); err != nil {
			return nil, err
		}
		at := make(map[string]time.Time, len(ns))
		all := true
		for phone, n := range ns {
			at[phone] = time.Unix(0, n)
		}
		for phone := range asked {
			if _, ok := at[phone]; !ok {
				all = false
				break
			}
		}
		if all || time.Now().After(deadline) {
			return at, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// setUp makes the schema, its tables and the topics.
func (f *floor) setUp(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, f.cfg.databaseURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		"CREATE SCHEMA " + f.prefix,
		"CREATE TABLE " + f.prefix + ".attempts (id text NOT NULL, phone text NOT NULL, at timestamptz NOT NULL DEFAULT now())",
		"CREATE TABLE " + f.prefix + ".reports (id text NOT NULL, status text NOT NULL, at timestamptz NOT NULL DEFAULT now())",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("floor: %s: %w", q, err)
		}
	}
	client := &kafka.Client{Addr: kafka.TCP(strings.Split(f.cfg.brokers, ",")...), Timeout: 15 * time.Second}
	var cfgs []kafka.TopicConfig
	for _, t := range []string{f.topic("codes"), f.topic("receipts")} {
		cfgs = append(cfgs, kafka.TopicConfig{Topic: t, NumPartitions: f.cfg.partitions, ReplicationFactor: 1})
	}
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: cfgs})
	if err != nil {
		return fmt.Errorf("floor: create topics: %w", err)
	}
	for t, err := range resp.Errors {
		if err != nil {
			return fmt.Errorf("floor: create topic %s: %w", t, err)
		}
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{f.topic("codes"), f.topic("receipts")}})
		ready := err == nil && len(md.Topics) == 2
		for _, t := range md.Topics {
			ready = ready && t.Error == nil && len(t.Partitions) == f.cfg.partitions
			for _, p := range t.Partitions {
				ready = ready && p.Error == nil && p.Leader.Host != ""
			}
		}
		if ready {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("floor: topics not ready: %v", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// start runs a role of this program and waits for its "ready" line.
func (f *floor) start(ctx context.Context, self, role string, more ...string) (*exec.Cmd, string, error) {
	logf, err := os.Create(filepath.Join(f.cfg.dir, "floor-"+role+".log"))
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(self, f.roleArgs(role, more...)...)
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	f.procs = append(f.procs, cmd)
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- s
		io.Copy(logf, out)
	}()
	select {
	case s := <-line:
		addr, ok := strings.CutPrefix(strings.TrimSpace(s), "ready ")
		if !ok {
			return nil, "", fmt.Errorf("floor %s did not start (see %s): %q", role, logf.Name(), s)
		}
		return cmd, addr, nil
	case <-time.After(30 * time.Second):
		return nil, "", fmt.Errorf("floor %s did not start in 30 s (see %s)", role, logf.Name())
	case <-ctx.Done():
		return nil, "", ctx.Err()
	}
}

// makeGroups puts the floor's processes and loa-bench in a CPU group of
// -urgent-weight, and the services (those in the root cgroup) in one of
// -services-weight, when the host has a cpu controller to use, and says
// what it did.
func (f *floor) makeGroups(ps []floorProc) (string, error) {
	if f.cfg.urgentWeight <= 0 {
		return "no cpu groups", nil
	}
	h, err := cpugroup.Find()
	if err != nil {
		return "no cpu groups (" + err.Error() + ")", nil
	}
	g := &benchGroups{host: h}
	if g.urgent, err = h.Make(f.prefix+"-urgent", f.cfg.urgentWeight, false); err != nil {
		return "no cpu groups (" + err.Error() + ")", nil
	}
	f.groups = append(f.groups, g.urgent)
	for _, p := range ps {
		if !p.tree && p.note != floorServiceNote {
			if err := g.urgent.Add(p.pid); err != nil {
				return "", err
			}
		}
	}
	s := fmt.Sprintf("cpu groups: the floor's processes and loa-bench weight %d", f.cfg.urgentWeight)
	if f.cfg.servicesWeight > 0 {
		if g.services, err = h.Make(f.prefix+"-services", f.cfg.servicesWeight, false); err != nil {
			return "", err
		}
		f.groups = append(f.groups, g.services)
		for _, p := range ps {
			if p.note == floorServiceNote {
				if err := g.addService(p.name, p.pid, p.tree); err != nil {
					return "", err
				}
			}
		}
		s += fmt.Sprintf(", services weight %d (%s)", f.cfg.servicesWeight, strings.Join(g.serviceNames, ", "))
	}
	return s, nil
}

func (f *floor) cleanup() {
	for _, g := range f.groups {
		g.Remove()
	}
	for _, p := range slices.Backward(f.procs) {
		p.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			p.Process.Kill()
			<-done
		}
	}
	if f.cfg.keep {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, f.cfg.databaseURL); err == nil {
		conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+f.prefix+" CASCADE")
		conn.Close(ctx)
	}
	client := &kafka.Client{Addr: kafka.TCP(strings.Split(f.cfg.brokers, ",")...), Timeout: 30 * time.Second}
	client.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: []string{f.prefix}})
	// The brokers delete a topic after the controller accepts the
	// request: wait until the metadata no longer lists them, so that the
	// report's "removed" is true when it returns.
	if _, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{f.topic("codes"), f.topic("receipts")}}); err == nil {
		for ctx.Err() == nil {
			md, err := client.Metadata(ctx, &kafka.MetadataRequest{})
			left := err != nil
			if err == nil {
				for _, t := range md.Topics {
					left = left || strings.HasPrefix(t.Name, f.prefix+".")
				}
			}
			if !left {
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	deleteRedisKeys(ctx, f.cfg.redisURL, f.prefix+":*")
}

// floorServiceNote marks Kafka, Redis and PostgreSQL in the report.
const floorServiceNote = "shared: counts its other clients' work too"

// floorProc is a process measured over the codes' window.
type floorProc struct {
	name, note string
	pid        int
	tree       bool
	cpu0, cpu1 time.Duration
	cs0, cs1   map[int]int64 // switches by process (a tree's)
}

func (p floorProc) read() (time.Duration, map[int]int64) {
	c, _ := procstat.CPU(p.pid)
	if p.tree {
		c, _ = procstat.TreeCPU(p.pid)
	}
	return c, switchesOf(p.pid, p.tree)
}

type floorResult struct {
	rate               int
	during             time.Duration
	load               string
	answers            map[string]int
	accepted, missing  int
	delivered, apiTook []time.Duration
	procs              []floorProc
	writes             string // how the Kafka writes went
	hops               string // whether PostgreSQL is on the way
	groups             string // the cpu groups
}

func (r *floorResult) print(w io.Writer) {
	fmt.Fprintf(w, "The floor of a code's hops: %d codes asked at %d/s over %.1f s (answers %s); load average %s\n",
		sum(r.answers), r.rate, r.during.Seconds(), answersText(r.answers), r.load)
	fmt.Fprintf(w, "  Kafka writes: %s; %s; %s\n", r.writes, r.hops, r.groups)
	d := r.delivered
	fmt.Fprintf(w, "  client → gateway, %d codes: p50 %s, p95 %s, p99 %s, max %s", len(d),
		ms(quantile(d, .5)), ms(quantile(d, .95)), ms(quantile(d, .99)), ms(quantile(d, 1)))
	if r.missing > 0 {
		fmt.Fprintf(w, "; %d accepted codes never reached the gateway", r.missing)
	}
	fmt.Fprintln(w)
	a := r.apiTook
	fmt.Fprintf(w, "  the api's answer (202): p50 %s, p99 %s, max %s\n", ms(quantile(a, .5)), ms(quantile(a, .99)), ms(quantile(a, 1)))
	fmt.Fprintf(w, "  while the codes were asked (/proc):\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "  process\tpid\tcores\tCPU-µs a code\tswitches/s\t")
	var total time.Duration
	for _, p := range r.procs {
		cpu := p.cpu1 - p.cpu0
		total += cpu
		fmt.Fprintf(tw, "  %s\t%d\t%.2f\t%.0f\t%.0f\t  %s\n", p.name, p.pid, cpu.Seconds()/r.during.Seconds(),
			float64(cpu.Microseconds())/float64(max(r.accepted, 1)), float64(switchDelta(p.cs0, p.cs1))/r.during.Seconds(), p.note)
	}
	fmt.Fprintf(tw, "  all\t\t%.2f\t%.0f\t\t\n", total.Seconds()/r.during.Seconds(), float64(total.Microseconds())/float64(max(r.accepted, 1)))
	tw.Flush()
}

// runFloorRole runs one of the floor's processes ("floor-api",
// "floor-dispatcher", "floor-gateway") until ctx ends. It prints "ready
// <address>" on stdout once it serves.
func runFloorRole(ctx context.Context, role string, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("loa-bench "+role, flag.ContinueOnError)
	var dbURL, redisURL, brokers, prefix, report, gateway string
	var partitions int
	var writer bool
	var database string
	fs.IntVar(&partitions, "partitions", 6, "")
	fs.BoolVar(&writer, "writer", false, "")
	fs.StringVar(&database, "database", "both", "")
	fs.StringVar(&dbURL, "database-url", "", "")
	fs.StringVar(&redisURL, "redis-url", "", "")
	fs.StringVar(&brokers, "kafka-brokers", "", "")
	fs.StringVar(&prefix, "prefix", "", "")
	fs.StringVar(&report, "report", "", "the gateway's delivery reports' URL")
	fs.StringVar(&gateway, "gateway", "", "the dispatcher's gateway URL")
	var profile string
	fs.StringVar(&profile, "cpuprofile", "", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if profile != "" {
		pf, err := os.Create(filepath.Join(profile, "cpu-"+role+".pprof"))
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	var h http.Handler
	var work func(ctx context.Context) error
	switch role {
	case "floor-gateway":
		g := &floorGateway{arrived: map[string]int64{}, report: report, hc: hc, log: log}
		h = g
	case "floor-api", "floor-dispatcher":
		opt, err := redis.ParseURL(redisURL)
		if err != nil {
			return err
		}
		opt.PoolSize = 64
		rdb := redis.NewClient(opt)
		defer rdb.Close()
		pcfg, err := pgxpool.ParseConfig(dbURL)
		if err != nil {
			return err
		}
		// pgxpool's default (4 on 2 cores) would queue single-row
		// commits at 500 a second.
		pcfg.MaxConns = floorDBConns
		pool, err := pgxpool.NewWithConfig(ctx, pcfg)
		if err != nil {
			return err
		}
		defer pool.Close()
		topic := "codes"
		if role == "floor-dispatcher" {
			topic = "receipts"
		}
		var kw floorWriter = newFloorProducer(strings.Split(brokers, ","), prefix+"."+topic, partitions)
		if writer {
			w := &kafka.Writer{Addr: kafka.TCP(strings.Split(brokers, ",")...), Topic: prefix + "." + topic,
				Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll,
				// A write waits at most this long for others to share its
				// request: 1 ms, as a code's write should not wait for more.
				BatchTimeout: time.Millisecond}
			defer w.Close()
			kw = w
		}
		if role == "floor-api" {
			h = &floorAPI{rdb: rdb, pool: pool, kw: kw, prefix: prefix, log: log, storeReports: database == "both" || database == "reports"}
		} else {
			d := &floorDispatcher{rdb: rdb, pool: pool, kw: kw, prefix: prefix, gateway: gateway, hc: hc, log: log,
				brokers: strings.Split(brokers, ","), writeAttempts: database == "both" || database == "attempts"}
			work = d.run
			h = http.NotFoundHandler()
		}
	default:
		return fmt.Errorf("unknown role %q", role)
	}
	srv := &http.Server{Handler: h}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	if work != nil {
		go func() { errc <- work(ctx) }()
	}
	fmt.Fprintf(stdout, "ready %s\n", ln.Addr())
	select {
	case <-ctx.Done():
	case err := <-errc:
		if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// floorCode is a code's message on the codes' topic.
type floorCode struct {
	ID    string `json:"id"`
	Phone string `json:"phone"`
	Code  string `json:"code"`
}

// floorIssue stores a code with its time to live and counts the phone's
// codes in the window: what an issue script does at the least.
var floorIssue = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local n = redis.call('INCR', KEYS[2])
if n == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return n`)

type floorAPI struct {
	rdb          *redis.Client
	pool         *pgxpool.Pool
	kw           floorWriter
	prefix       string
	log          *slog.Logger
	storeReports bool // else reports are read and answered, not stored
}

func (a *floorAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	switch r.URL.Path {
	case "/v1/otp/sms":
		var req struct {
			Phone   string `json:"phone"`
			Purpose string `json:"purpose"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil || req.Phone == "" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		var id [8]byte
		rand.Read(id[:])
		c := floorCode{ID: hex.EncodeToString(id[:]), Phone: req.Phone, Code: fmt.Sprintf("%06d", mrand.IntN(1_000_000))}
		if err := floorIssue.Run(ctx, a.rdb, []string{a.prefix + ":code:" + c.Phone, a.prefix + ":n:" + c.Phone}, c.Code, 300_000).Err(); err != nil {
			a.fail(w, err)
			return
		}
		v, _ := json.Marshal(c)
		if err := a.kw.WriteMessages(ctx, kafka.Message{Key: []byte(c.Phone), Value: v}); err != nil {
			a.fail(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(map[string]string{"id": c.ID})
	case "/reports":
		var rep struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&rep); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if !a.storeReports {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if _, err := a.pool.Exec(ctx, "INSERT INTO "+a.prefix+".reports (id, status) VALUES ($1, $2)", rep.ID, rep.Status); err != nil {
			a.fail(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(w, r)
	}
}

func (a *floorAPI) fail(w http.ResponseWriter, err error) {
	a.log.Error("floor api", slog.Any("error", err))
	http.Error(w, err.Error(), http.StatusServiceUnavailable)
}

type floorDispatcher struct {
	rdb     *redis.Client
	pool    *pgxpool.Pool
	kw      floorWriter
	prefix  string
	gateway string
	hc      *http.Client
	log     *slog.Logger
	brokers []string
	// writeAttempts writes an attempt before each send.
	writeAttempts bool
}

// floorDBConns is each process's PostgreSQL pool.
const floorDBConns = 32

// floorWorkers bounds the messages handled at once.
const floorWorkers = 256

// run reads the codes' topic as Loa's dispatcher's reader does (the same
// ReaderConfig's settings), handles each message in a goroutine of its
// own (at most floorWorkers at once) and commits a partition's offset
// only up to the last message all of whose predecessors are done.
func (d *floorDispatcher) run(ctx context.Context) error {
	rd := kafka.NewReader(kafka.ReaderConfig{
		Brokers: d.brokers, GroupID: d.prefix, Topic: d.prefix + ".codes",
		MinBytes: 1, MaxBytes: 1 << 20, QueueCapacity: 8, MaxWait: time.Second,
		CommitInterval: 500 * time.Millisecond, StartOffset: kafka.FirstOffset,
		HeartbeatInterval: 2 * time.Second, SessionTimeout: 20 * time.Second, RebalanceTimeout: 10 * time.Second,
		ReadBackoffMin: 50 * time.Millisecond, ReadBackoffMax: 500 * time.Millisecond,
	})
	defer rd.Close()
	sem := make(chan struct{}, floorWorkers)
	var mu sync.Mutex
	marks := map[int]*offsetMarks{}
	for {
		m, err := rd.FetchMessage(ctx)
		if err != nil {
			return err
		}
		mu.Lock()
		pm := marks[m.Partition]
		if pm == nil {
			pm = &offsetMarks{}
			marks[m.Partition] = pm
		}
		pm.fetched(m.Offset)
		mu.Unlock()
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			if err := d.handle(ctx, m); err != nil {
				d.log.Error("floor dispatcher", slog.Any("error", err))
				return // not committed: a restart would read it again
			}
			mu.Lock()
			upTo, ok := pm.done(m.Offset)
			mu.Unlock()
			if ok {
				rd.CommitMessages(ctx, kafka.Message{Topic: m.Topic, Partition: m.Partition, Offset: upTo})
			}
		}()
	}
}

func (d *floorDispatcher) handle(ctx context.Context, m kafka.Message) error {
	var c floorCode
	if err := json.Unmarshal(m.Value, &c); err != nil {
		return err
	}
	pipe := d.rdb.Pipeline()
	claim := pipe.SetNX(ctx, d.prefix+":claim:"+c.ID, "1", 10*time.Minute)
	pipe.Get(ctx, d.prefix+":withdrawn:"+c.ID)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	if !claim.Val() {
		return nil // sent before
	}
	if d.writeAttempts {
		if _, err := d.pool.Exec(ctx, "INSERT INTO "+d.prefix+".attempts (id, phone) VALUES ($1, $2)", c.ID, c.Phone); err != nil {
			return err
		}
	}
	body, _ := json.Marshal(map[string]string{"id": c.ID, "to": c.Phone, "text": "Your code is " + c.Code})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, d.gateway, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.hc.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("gateway: %s", resp.Status)
	}
	receipt, _ := json.Marshal(map[string]string{"id": c.ID, "status": "sent"})
	return d.kw.WriteMessages(ctx, kafka.Message{Key: []byte(c.Phone), Value: receipt})
}

// floorWriter writes messages to a topic and returns once they are
// acknowledged: kafka-go's Writer or floorProducer.
type floorWriter interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// floorProducer sends each write as a produce request of its own at
// once (acks=all), to the partition the Writer's Hash balancer would
// pick; concurrent requests share the client's connection. kafka-go's
// Writer (-writer) instead sends a partition's batches one at a time,
// each gathered over its BatchTimeout; the runs in docs/testing.md ("The
// floor of a code's hops") measure both.
type floorProducer struct {
	c     *kafka.Client
	topic string
	parts []int
	bal   kafka.Hash
}

func newFloorProducer(brokers []string, topic string, partitions int) *floorProducer {
	p := &floorProducer{c: &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second, Transport: &kafka.Transport{}}, topic: topic}
	for i := range partitions {
		p.parts = append(p.parts, i)
	}
	return p
}

func (p *floorProducer) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	for _, m := range msgs {
		resp, err := p.c.Produce(ctx, &kafka.ProduceRequest{Topic: p.topic, Partition: p.bal.Balance(m, p.parts...),
			RequiredAcks: kafka.RequireAll, Records: kafka.NewRecordReader(kafka.Record{Key: kafka.NewBytes(m.Key), Value: kafka.NewBytes(m.Value)})})
		if err != nil {
			return err
		}
		if resp.Error != nil {
			return resp.Error
		}
	}
	return nil
}

// offsetMarks tracks one partition's messages in hand: which offsets are
// done, and the last offset up to which all are. Offsets are fetched in
// increasing order; those between fetched ones that never came (a
// compacted or transactional topic's gaps) count as done.
type offsetMarks struct {
	inHand []int64        // fetched and not done, in order
	doneAt map[int64]bool // done, not yet committable
}

func (o *offsetMarks) fetched(off int64) { o.inHand = append(o.inHand, off) }

// done marks off done and returns the offset to commit (the last of the
// done run at the front) and whether there is a new one.
func (o *offsetMarks) done(off int64) (int64, bool) {
	if o.doneAt == nil {
		o.doneAt = map[int64]bool{}
	}
	o.doneAt[off] = true
	upTo, ok := int64(0), false
	for len(o.inHand) > 0 && o.doneAt[o.inHand[0]] {
		upTo, ok = o.inHand[0], true
		delete(o.doneAt, o.inHand[0])
		o.inHand = o.inHand[1:]
	}
	return upTo, ok
}

type floorGateway struct {
	mu      sync.Mutex
	arrived map[string]int64 // phone → first arrival, Unix ns
	report  string
	hc      *http.Client
	log     *slog.Logger
}

func (g *floorGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/sms":
		now := time.Now().UnixNano()
		var m struct {
			ID   string `json:"id"`
			To   string `json:"to"`
			Text string `json:"text"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&m); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		g.mu.Lock()
		if _, seen := g.arrived[m.To]; !seen {
			g.arrived[m.To] = now
		}
		g.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"message_id": m.ID})
		go g.deliver(m.ID)
	case "/arrivals":
		g.mu.Lock()
		b, _ := json.Marshal(g.arrived)
		g.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	default:
		http.NotFound(w, r)
	}
}

// deliver posts the message's delivery report, as a gateway does once
// the handset has it.
func (g *floorGateway) deliver(id string) {
	body, _ := json.Marshal(map[string]string{"id": id, "status": "delivered"})
	resp, err := g.hc.Post(g.report, "application/json", bytes.NewReader(body))
	if err != nil {
		g.log.Error("floor gateway: report", slog.Any("error", err))
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}
