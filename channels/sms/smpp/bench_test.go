package smpp_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/channels/sms/smpp"
	"github.com/loa-hub/loa/internal/fakes/smppfake"
	"github.com/loa-hub/loa/internal/testenv"
)

// fakeServeVar makes the test binary serve a fake SMSC instead of running
// tests: the benchmark runs the fake in another process, so the CPU this
// process uses is the client's alone.
const fakeServeVar = "LOA_SMPP_BENCH_FAKE_LATENCY"

func TestMain(m *testing.M) {
	if v, ok := os.LookupEnv(fakeServeVar); ok {
		serveFake(v)
		return
	}
	os.Exit(m.Run())
}

// serveFake runs a fake SMSC answering after latency, prints its address
// and serves until stdin closes.
func serveFake(latency string) {
	d, err := time.ParseDuration(latency)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	f, err := smppfake.New(smppfake.Options{Discard: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	f.SetLatency(d)
	fmt.Println(f.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	f.Close()
}

// startFakeProcess starts the fake SMSC in a child process and returns
// its address and a function reading the child's CPU time so far.
func startFakeProcess(b *testing.B, latency time.Duration) (addr string, cpu func() time.Duration) {
	b.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), fakeServeVar+"="+latency.String())
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("fake SMSC process: %v", err)
	}
	pid := cmd.Process.Pid
	return strings.TrimSpace(line), func() time.Duration { return procCPU(pid) }
}

// procCPU reads a process's user + system CPU time from /proc (Linux,
// clock ticks of 10 ms); zero where /proc is not there.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // after "pid (comm) "
	if len(fields) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// BenchmarkSubmit sends one-part SMS through the Client to a fake SMSC in
// another process, with sessions × window sends in flight, delivery
// receipts included. It reports submits per second, the client's CPU per
// SMS (this process: client, receipts, the benchmark's goroutines) and
// the fake's CPU per SMS.
func BenchmarkSubmit(b *testing.B) {
	for _, sessions := range []int{1, 4} {
		for _, latency := range []time.Duration{0, 20 * time.Millisecond} {
			for _, window := range []int{10, 50} {
				b.Run(fmt.Sprintf("sessions=%d/latency=%s/window=%d", sessions, latency, window), func(b *testing.B) {
					benchSubmit(b, sessions, latency, window)
				})
			}
		}
	}
}

func benchSubmit(b *testing.B, sessions int, latency time.Duration, window int) {
	addr, fakeCPU := startFakeProcess(b, latency)
	var reports atomic.Int64
	c, err := smpp.New(smpp.Config{
		Session:    smpp.SessionConfig{Addr: addr, SystemID: "bench", Window: window},
		Sessions:   sessions,
		SourceAddr: "LOA",
		Reports:    smpp.ReportFunc(func(context.Context, smpp.Report) error { reports.Add(1); return nil }),
		Log:        slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := c.WaitBound(wctx, sessions); err != nil {
		b.Fatal(err)
	}
	m := channels.Message{NotificationID: "bench", Kind: "otp", Channel: channels.SMS, Body: "Ma xac thuc cua ban la 123456",
		ExpiresAt: time.Now().Add(time.Hour)}
	var next atomic.Int64
	var failed atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, fake0, start := testenv.ProcessCPU(), fakeCPU(), time.Now()
	var wg sync.WaitGroup
	for range sessions * window {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mm := m
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				mm.To = fmt.Sprintf("849%08d", i%100_000_000)
				if _, err := c.Send(ctx, mm); err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed, cpu, fcpu := time.Since(start), testenv.ProcessCPU()-cpu0, fakeCPU()-fake0
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d sends failed", n, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "submits/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/sms")
	b.ReportMetric(float64(fcpu.Microseconds())/float64(b.N), "fake-cpu-µs/sms")
}
