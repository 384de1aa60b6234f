package main

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loa-hub/loa/internal/testenv"
)

// BenchmarkAnonymousSignInMemory drives 64 concurrent anonymous sign-ins
// (unknown user names, each from its own address, so no throttle spares
// the hashing) at `loa dev` with the default argon2id cost (64 MiB) for
// 20 s (LOA_BENCH_SIGNIN_SECONDS), and reports the peak growth of the
// process's resident set over its size before the load (peak-rss-MiB),
// the answers by status, and the process CPU per sign-in. The whole test
// process is measured: Loa, its embedded services (or, with LOA_TEST_*,
// the clients of the real ones) and this client.
func BenchmarkAnonymousSignInMemory(b *testing.B) {
	secs := 20
	if v, err := strconv.Atoi(os.Getenv("LOA_BENCH_SIGNIN_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	env := map[string]string{"LOA_DATA_DIR": b.TempDir(), "LOA_TRUSTED_PROXIES": "127.0.0.1"}
	if os.Getenv("LOA_TEST_KAFKA_BROKERS") != "" {
		rb := testenv.RealBackend(b)
		id := testenv.ID()
		env["LOA_KAFKA_BROKERS"], env["LOA_REDIS_URL"], env["LOA_DATABASE_URL"] = rb.KafkaBrokers, rb.RedisURL, rb.DatabaseURL
		env["LOA_KAFKA_TOPIC_PREFIX"], env["LOA_REDIS_KEY_PREFIX"] = "bench"+id+".", "bench"+id+":"
		testenv.DeleteTopicsAtEnd(b, rb.KafkaBrokers, env["LOA_KAFKA_TOPIC_PREFIX"])
	}
	base := startDevB(b, env)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}, Timeout: time.Minute}

	const workers = 64
	var (
		statuses sync.Map // int → *atomic.Int64
		total    atomic.Int64
		wg       sync.WaitGroup
	)
	before := rssBytes(b, "VmRSS:")
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Fatalf("reset the peak RSS: %v", err)
	}
	cpu0 := testenv.ProcessCPU()
	b.ResetTimer()
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	for w := range workers {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				body := fmt.Sprintf(`{"username":"nobody.%d.%d","password":"Mật-khẩu-%d"}`, w, i, rand.Int())
				req, _ := http.NewRequest("POST", base+"/v1/sessions", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", w, (i>>8)&255, i&255))
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				c, _ := statuses.LoadOrStore(resp.StatusCode, new(atomic.Int64))
				c.(*atomic.Int64).Add(1)
				total.Add(1)
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	cpu := testenv.ProcessCPU() - cpu0
	peak := rssBytes(b, "VmHWM:")
	growth := float64(peak-before) / (1 << 20)
	var by []string
	statuses.Range(func(k, v any) bool {
		by = append(by, fmt.Sprintf("%d: %d", k, v.(*atomic.Int64).Load()))
		return true
	})
	b.ReportMetric(growth, "peak-rss-growth-MiB")
	b.ReportMetric(float64(total.Load())/float64(secs), "sign-ins/s")
	b.ReportMetric(0, "ns/op")
	b.Logf("%d workers, %d s: %d answers (%s); RSS before %.0f MiB, peak %.0f MiB, growth %.0f MiB; process CPU %.1f s (%.0f ms a sign-in)",
		workers, secs, total.Load(), strings.Join(by, ", "), float64(before)/(1<<20), float64(peak)/(1<<20), growth,
		cpu.Seconds(), float64(cpu.Milliseconds())/float64(max(total.Load(), 1)))
}

// rssBytes reads a size field (VmRSS:, VmHWM:) of /proc/self/status.
func rssBytes(b *testing.B, field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatalf("no %s in /proc/self/status", field)
	return 0
}
