package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/loa-hub/loa/internal/cpugroup"
	"github.com/loa-hub/loa/internal/fleet"
	"github.com/loa-hub/loa/internal/procstat"
	"github.com/loa-hub/loa/internal/testenv"
)

// TestBroadcastBench: `loa-bench broadcast` with two dispatchers on the
// real services seeds the devices, gets the broadcast approved through
// the API, waits for every push and prints the rate, the CPU per push of
// each process, how the two dispatchers shared the work, and what the
// broadcast asked of Kafka, PostgreSQL and Redis.
func TestBroadcastBench(t *testing.T) {
	s := newBenchRunner(t).run("broadcast", "-devices", "3000", "-dispatchers", "2", "-no-bar")
	if m := regexp.MustCompile(`= (\d+) pushes/s`).FindStringSubmatch(s); m == nil {
		t.Error("no pushes/s figure")
	} else if n, _ := strconv.Atoi(m[1]); n <= 0 {
		t.Errorf("pushes/s = %d", n)
	}
	for _, row := range []string{"loa api", "loa dispatcher-1", "loa dispatcher-2", "fcm fake", "kafka", "redis", "postgresql", "Loa's processes"} {
		if !strings.Contains(s, row) {
			t.Errorf("no %q row", row)
		}
	}
	// A dispatcher's resident set, with its own and its binary's parts.
	for _, d := range []string{"loa dispatcher-1", "loa dispatcher-2"} {
		m := regexp.MustCompile(d + ` +[\d.]+ +[\d.]+ +(\d+) +(\d+) \+ (\d+)`).FindStringSubmatch(s)
		if m == nil {
			t.Errorf("no peak RSS with its anon + file parts for %s", d)
			continue
		}
		peak, _ := strconv.Atoi(m[1])
		anon, _ := strconv.Atoi(m[2])
		file, _ := strconv.Atoi(m[3])
		if anon <= 0 || file <= 0 || anon+file > peak+1 {
			t.Errorf("%s: peak %d MiB, anon %d + file %d", d, peak, anon, file)
		}
	}
	// The ledger's rows and the Kafka topics are the run's own. On
	// PostgreSQL a push accepted at its first attempt is kept in a compact
	// entry of its receipt batch (deliveries_sent): at least one entry,
	// never more than one a push, and no per-push deliveries rows when
	// every push went through at once.
	if m := regexp.MustCompile(`deliveries_sent rows inserted +(\d+) `).FindStringSubmatch(s); m == nil {
		t.Error("no deliveries_sent rows inserted")
	} else if n, _ := strconv.Atoi(m[1]); n < 1 || n > 3000 {
		t.Errorf("deliveries_sent rows inserted: %d, want 1 to 3000 entries for 3000 pushes", n)
	}
	if m := regexp.MustCompile(`deliveries rows inserted +(\d+) `).FindStringSubmatch(s); m != nil {
		t.Errorf("deliveries rows inserted: %s, want none (every push is in a compact entry)", m[1])
	}
	for _, row := range []string{"messages on loa.bulk", "messages on loa.receipts", "sent_log rows inserted", "commits (the whole database)", "commands, all"} {
		if !strings.Contains(s, row) {
			t.Errorf("no %q row in the services' work", row)
		}
	}
	m := regexp.MustCompile(`dispatcher-1 (\d+) \(\d+%\), dispatcher-2 (\d+)`).FindStringSubmatch(s)
	if m == nil {
		t.Fatal("no per-dispatcher counts")
	}
	a, _ := strconv.Atoi(m[1])
	b, _ := strconv.Atoi(m[2])
	if a+b < 3000 {
		t.Errorf("the dispatchers sent %d + %d pushes, want at least 3000 between them", a, b)
	}
}

// TestBroadcastBenchSeededOnceWithCodes: -seed-only seeds a kept schema
// and stops; a run on that schema does not seed again, and with -codes it
// asks the API for SMS codes while the broadcast runs and prints their
// time from the API to the gateway fake. With -split the codes go through
// a dispatcher of the urgent lanes and every push through a bulk one run
// at nice 10 (as /proc shows it), which also runs the ledger. Where the
// host gives a cpu controller to use, the urgent side runs in a CPU
// scheduling group of its own with the weight asked, the bulk side in an
// idle one, and with -services-weight Kafka, Redis and PostgreSQL (those
// of the root cgroup) in a third; each row says where its process is
// scheduled as /proc shows it, the groups are gone at the end and the
// services are back where they were. With -stop-after-codes the run ends
// once the codes are asked, long before the broadcast's last push, and
// gives the codes' figures alone.
func TestBroadcastBenchSeededOnceWithCodes(t *testing.T) {
	b := newBenchRunner(t)
	dbURL := b.env["LOA_TEST_DATABASE_URL"]
	schema := "bench_kept_" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), dbURL)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Error(err)
		}
	})
	bench := func(args ...string) string {
		t.Helper()
		return b.run("broadcast", append([]string{"-devices", "2000", "-no-bar", "-schema", schema, "-work=false"}, args...)...)
	}
	s := bench("-seed-only")
	if !strings.Contains(s, "seeded 2000 devices") || strings.Contains(s, "pushes/s") {
		t.Fatalf("-seed-only did not seed and stop")
	}
	// Where the services run before: the run must leave them there.
	type svc struct {
		name string
		pid  int
	}
	var svcs []svc
	before := map[int]string{}
	h, hostErr := cpugroup.Find()
	for _, a := range []struct{ name, addr string }{{"kafka", strings.Split(b.env["LOA_TEST_KAFKA_BROKERS"], ",")[0]},
		{"redis", redisAddr(b.env["LOA_TEST_REDIS_URL"])}, {"postgresql", pgAddr(dbURL)}} {
		_, port, _ := strings.Cut(a.addr, ":")
		p, _ := strconv.Atoi(port)
		pid, err := procstat.ListeningPID(p)
		if err != nil || hostErr != nil {
			continue
		}
		if a.name == "postgresql" {
			pid = procstat.Root(pid)
		}
		if pl, err := h.Of(pid); err == nil {
			svcs, before[pid] = append(svcs, svc{a.name, pid}), pl.Group
		}
	}
	s = bench("-codes", "100", "-split", "-urgent-weight", "500", "-bulk-idle", "-services-weight", "300")
	if strings.Contains(s, "seeded 2000") || !strings.Contains(s, "is seeded already") {
		t.Error("the kept schema was seeded again")
	}
	m := regexp.MustCompile(`SMS codes during the broadcast: (\d+) asked at 100/s .*\n  API → gateway fake, (\d+) codes: p50 [0-9.]+ ms, p95 [0-9.]+ ms, p99 [0-9.]+ ms`).FindStringSubmatch(s)
	if m == nil {
		t.Fatal("no SMS codes' figures")
	}
	asked, _ := strconv.Atoi(m[1])
	got, _ := strconv.Atoi(m[2])
	if asked == 0 || got != asked {
		t.Errorf("%d codes asked, %d measured at a gateway: want all of them", asked, got)
	}
	if strings.Contains(s, "never reached") {
		t.Error("codes were lost")
	}
	for _, want := range []string{
		"1 urgent dispatcher (otp,alert,direct) + 1 bulk dispatcher(s) at nice 10",
		"(lanes bulk, the ledger, nice 10",
		"pushes sent per dispatcher: dispatcher-1 0 (0%), dispatcher-2 2000 (100%)",
		"cores used while the codes were asked",
		"context switches a second meanwhile: loa api ",
		"the SMS rate limiters (from the dispatchers' /metrics): ",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("no %q in the report", want)
		}
	}
	if m := regexp.MustCompile(`loa dispatcher-1 .*\(lanes otp,alert,direct, nice (\d+)[,)]`).FindStringSubmatch(s); m == nil || m[1] == "10" {
		t.Errorf("the urgent dispatcher's row: %v, want its lanes and its own nice value, without the ledger", m)
	}
	if err := hostErr; err != nil {
		if !strings.Contains(s, "cpu groups: none ("+err.Error()+"); the split runs by nice alone") {
			t.Errorf("this host has no cpu controller to use (%v), and the report does not say so", err)
		}
		return
	}
	m = regexp.MustCompile(`cpu groups \(cgroup v\d, [^)]*\): urgent side (/loa-bench-\w+-urgent) \(loa api, loa-bench, loa dispatcher-1\), bulk side (/loa-bench-\w+-bulk) \(loa dispatcher-2\); services (/loa-bench-\w+-services) \(([^)]*)\), as on hosts of their own`).FindStringSubmatch(s)
	if m == nil {
		t.Fatal("no cpu groups in the report")
	}
	urgent, bulk, services, moved := m[1], m[2], m[3], m[4]
	weight := "cpu.shares 5120"
	if h.Version == 2 {
		weight = "cpu.weight 500"
	}
	for _, row := range []string{
		`loa api .*\(cgroup ` + urgent + `, ` + weight + `\)`,
		`loa dispatcher-1 .*\(lanes otp,alert,direct, nice 0, cgroup ` + urgent + `, ` + weight + `\)`,
		`loa dispatcher-2 .*\(lanes bulk, the ledger, nice 10, cgroup ` + bulk + `, cpu\.(shares|weight) \d+, cpu\.idle 1\)`,
		`loa-bench .*cgroup ` + urgent + `, ` + weight + `\)`,
		// loa-fakes serves the FCM of this run's broadcast and the codes' SMS.
		`fcm fake \(loa-fakes\) .*\((with the idle SMS and SMTP fakes, )?(autogroup|cgroup /)[^,]*`,
		`postgresql .*its \d+ processes in \d+ groups\)`,
		`cpu groups removed: ` + urgent + `, ` + bulk + `, ` + services + `\n`,
	} {
		if !regexp.MustCompile(row).MatchString(s) {
			t.Errorf("no line matching %q", row)
		}
	}
	for _, g := range []string{urgent, bulk, services} {
		if _, err := os.Stat(filepath.Join(h.Mount, g)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cpu group %s is still there: %v", g, err)
		}
	}
	// Each service of the root cgroup ran in the services' group, with
	// its weight (300: cpu.shares 3072), and is back in the root.
	for _, v := range svcs {
		if before[v.pid] != "/" {
			if !strings.Contains(moved, v.name+" left in cgroup "+before[v.pid]) {
				t.Errorf("%s runs in cgroup %s, and the report does not say it was left there: %q", v.name, before[v.pid], moved)
			}
			continue
		}
		row := v.name + ` .*cgroup ` + services + `, cpu\.(shares 3072|weight 300)`
		if !regexp.MustCompile(row).MatchString(s) {
			t.Errorf("no line matching %q", row)
		}
		if pl, err := h.Of(v.pid); err != nil || pl.Group != "/" {
			t.Errorf("%s (pid %d) is in %q after the run (%v), want the root cgroup it was in", v.name, v.pid, pl.Group, err)
		}
	}

	// -stop-after-codes: the broadcast (pushes answered in 5 s each) is
	// still under way when the codes, asked for 2 s, have arrived.
	s = bench("-codes", "50", "-codes-for", "2s", "-stop-after-codes", "-latency", "5s")
	m = regexp.MustCompile(`stopped after the codes \(-stop-after-codes\): (\d+) of 2000 pushes arrived`).FindStringSubmatch(s)
	if m == nil {
		t.Fatal("the run did not say it stopped after the codes")
	}
	if n, _ := strconv.Atoi(m[1]); n >= 2000 {
		t.Errorf("%d pushes arrived: the run waited for the broadcast", n)
	}
	m = regexp.MustCompile(`SMS codes during the broadcast: (\d+) asked at 50/s .*\n  API → gateway fake, (\d+) codes: p50`).FindStringSubmatch(s)
	if m == nil || m[1] == "0" || m[1] != m[2] {
		t.Errorf("codes asked and measured at a gateway: %v, want all of them", m)
	}
	if strings.Contains(s, "pushes/s") || strings.Contains(s, "CPU-µs/push") {
		t.Error("per-push figures for a broadcast that did not end")
	}
}

// benchRunner runs loa-bench in a test against the real services, with a
// loa binary built once for the test.
type benchRunner struct {
	t   *testing.T
	ctx context.Context
	loa string
	env map[string]string
}

func newBenchRunner(t *testing.T) *benchRunner {
	t.Helper()
	env := map[string]string{
		"LOA_TEST_DATABASE_URL":  testenv.PostgresURL(t), // a schema of the test's, for the -database-url base
		"LOA_TEST_REDIS_URL":     testenv.RedisURL(t),
		"LOA_TEST_KAFKA_BROKERS": testenv.KafkaBrokers(t),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	loa, err := fleet.Build(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &benchRunner{t: t, ctx: ctx, loa: loa, env: env}
}

// run runs `loa-bench <command> -loa … -dir … args…`, logs its output
// and returns it; a failed run fails the test.
func (b *benchRunner) run(command string, args ...string) string {
	b.t.Helper()
	var out bytes.Buffer
	err := run(b.ctx, append([]string{"loa-bench", command, "-loa", b.loa, "-dir", b.t.TempDir()}, args...),
		func(k string) string { return b.env[k] }, &out)
	b.t.Log(out.String())
	if err != nil {
		b.t.Fatal(err)
	}
	return out.String()
}
