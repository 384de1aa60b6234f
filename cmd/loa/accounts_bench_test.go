package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-hub/loa/internal/fakes/smsfake"
	"github.com/loa-hub/loa/internal/testenv"
)

// BenchmarkCodeIssueToSMSFake measures an SMS code from the API request
// (POST /v1/otp/sms) to the eSMS fake's accept, through Kafka's otp lane,
// the dispatcher and the SMS channel, at 200 requests a second. It runs
// `loa dev` on the real Kafka, Redis and PostgreSQL when LOA_TEST_* are
// set, on the embedded ones otherwise. Reported: p50 and p99 latency in
// milliseconds.
func BenchmarkCodeIssueToSMSFake(b *testing.B) {
	fake, err := smsfake.NewESMS(smsfake.ESMSOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(fake.Close)
	env := map[string]string{
		"LOA_SMS_PROVIDERS": "esms", "LOA_SMS_ESMS_TYPE": "esms", "LOA_SMS_ESMS_URL": fake.URL(),
		"LOA_SMS_ESMS_API_KEY": "k", "LOA_SMS_ESMS_SECRET_KEY": "s", "LOA_SMS_ESMS_BRANDNAME": "LOA",
		"LOA_SMS_ESMS_RATE": "100000", "LOA_SMS_ESMS_BURST": "10000",
		"LOA_CODES_PER_IP": "1000000", "LOA_ANONYMOUS_CODES_PER_HOUR": "100000000", "LOA_DATA_DIR": b.TempDir(),
	}
	backend := "embedded"
	if os.Getenv("LOA_TEST_KAFKA_BROKERS") != "" {
		backend = "real"
		rb := testenv.RealBackend(b)
		id := testenv.ID()
		env["LOA_KAFKA_BROKERS"], env["LOA_REDIS_URL"], env["LOA_DATABASE_URL"] = rb.KafkaBrokers, rb.RedisURL, rb.DatabaseURL
		env["LOA_KAFKA_TOPIC_PREFIX"], env["LOA_REDIS_KEY_PREFIX"] = "bench"+id+".", "bench"+id+":"
		testenv.DeleteTopicsAtEnd(b, rb.KafkaBrokers, env["LOA_KAFKA_TOPIC_PREFIX"])
	}
	base := startDevB(b, env)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}

	// Warm up: the first code waits for the dispatcher to join its
	// consumer group, which is start-up, not code latency.
	resp, err := client.Post(base+"/v1/otp/sms", "application/json", strings.NewReader(`{"phone":"84990000000","purpose":"verify_phone"}`))
	if err != nil || resp.StatusCode != 202 {
		b.Fatalf("warm-up: %v %v", err, resp)
	}
	resp.Body.Close()
	wctx, wcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer wcancel()
	if err := fake.WaitCount(wctx, 1); err != nil {
		b.Fatalf("warm-up code never reached the fake: %v", err)
	}
	fake.Reset()

	const rate = 200
	b.ResetTimer()
	var (
		mu   sync.Mutex
		sent = make(map[string]time.Time, b.N)
		wg   sync.WaitGroup
	)
	start := time.Now()
	for i := range b.N {
		// Pace at 200 requests a second from the start, not from the
		// previous request, so a slow answer does not lower the rate.
		if d := time.Until(start.Add(time.Duration(i) * time.Second / rate)); d > 0 {
			time.Sleep(d)
		}
		phone := fmt.Sprintf("8491%07d", i)
		wg.Go(func() {
			t0 := time.Now()
			resp, err := client.Post(base+"/v1/otp/sms", "application/json",
				strings.NewReader(fmt.Sprintf(`{"phone":%q,"purpose":"verify_phone"}`, phone)))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 202 {
				b.Errorf("POST /v1/otp/sms: %d", resp.StatusCode)
				return
			}
			mu.Lock()
			sent[phone] = t0
			mu.Unlock()
		})
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := fake.WaitCount(ctx, b.N); err != nil {
		b.Fatalf("the fake accepted %d of %d: %v", fake.Count(), b.N, err)
	}
	b.StopTimer()
	var lat []time.Duration
	for _, m := range fake.Messages() {
		if t0, ok := sent[m.Phone]; ok {
			lat = append(lat, m.At.Sub(t0))
		}
	}
	slices.Sort(lat)
	if len(lat) == 0 {
		b.Fatal("no latencies")
	}
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
	b.Logf("%s backend: %d codes at %d/s: p50 %.1f ms, p99 %.1f ms, max %.1f ms", backend, len(lat), rate, pct(0.5), pct(0.99),
		float64(lat[len(lat)-1].Microseconds())/1000)
}

// startDevB is startDev for a benchmark: `loa dev` through run on port 0,
// stopped when b ends.
func startDevB(b *testing.B, env map[string]string) string {
	b.Helper()
	env["LOA_HTTP_ADDR"] = "127.0.0.1:0"
	pr, pw := io.Pipe()
	found := make(chan string, 1)
	var logs strings.Builder
	var lmu sync.Mutex
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lmu.Lock()
			logs.WriteString(sc.Text() + "\n")
			lmu.Unlock()
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"loa", "dev"}, func(k string) string { return env[k] }, pw)
		pw.Close()
	}()
	b.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			b.Error("loa dev did not stop")
		}
	})
	select {
	case base := <-found:
		return base
	case err := <-done:
		lmu.Lock()
		defer lmu.Unlock()
		b.Fatalf("loa dev exited: %v\n%s", err, logs.String())
	case <-time.After(60 * time.Second):
		b.Fatal("loa dev did not start")
	}
	return ""
}
