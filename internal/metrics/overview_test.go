package metrics

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The overview's rates, breaker transitions and rate-limit waits come
// from the difference between samples of the processes' counters.
func TestOverviewFromSamples(t *testing.T) {
	reg := prometheus.NewRegistry()
	deliveries := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "loa_deliveries_total"}, []string{"channel", "provider", "status"})
	state := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "loa_breaker_state"}, []string{"provider"})
	transitions := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "loa_breaker_transitions_total"}, []string{"provider", "to"})
	waits := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "loa_ratelimit_wait_seconds"}, []string{"provider", "lane"})
	queue := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "loa_lane_queue_seconds", Buckets: []float64{1, 2, 4}}, []string{"lane", "channel"})
	reg.MustRegister(deliveries, state, transitions, waits, queue)

	now := time.Date(2026, 11, 29, 2, 0, 0, 0, time.UTC)
	h := &History{every: 15 * time.Second, keep: 3, now: func() time.Time { return now }}
	down := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		return nil, errors.New("metrics: http://dispatcher-2:9090/metrics: connection refused")
	})
	h.sources = []source{{name: "this process", g: reg}, {name: "http://dispatcher-2:9090/metrics", g: down}}

	deliveries.WithLabelValues("sms", "esms", "sent").Add(100)
	h.Sample()
	now = now.Add(10 * time.Second)
	deliveries.WithLabelValues("sms", "esms", "sent").Add(50)
	deliveries.WithLabelValues("sms", "speedsms", "sent").Add(50)
	transitions.WithLabelValues("esms", "open").Inc()
	state.WithLabelValues("esms").Set(2)
	waits.WithLabelValues("esms", "bulk").Observe(1)
	waits.WithLabelValues("esms", "otp").Observe(0.5)
	for range 100 {
		queue.WithLabelValues("bulk", "sms").Observe(1.5) // every one in the (1, 2] bucket
	}
	h.Sample()

	o := h.Overview(context.Background())
	if len(o.Throughput) != 1 || o.Throughput[0].Channel != "sms" || o.Throughput[0].PerSecond != 10 {
		t.Errorf("throughput %+v, want sms sent 10/s (100 in 10 s, both providers)", o.Throughput)
	}
	if len(o.Breakers) != 1 || o.Breakers[0].StateName != "open" || len(o.Breakers[0].Transitions) != 1 ||
		o.Breakers[0].Transitions[0].To != "open" || !o.Breakers[0].Transitions[0].At.Equal(now) {
		t.Errorf("breakers %+v", o.Breakers)
	}
	if len(o.RateWaits) != 1 || o.RateWaits[0].Seconds != 1.5 {
		t.Errorf("rate waits %+v", o.RateWaits)
	}
	if len(o.QueueTime) != 1 || o.QueueTime[0].Lane != "bulk" || o.QueueTime[0].N != 100 || o.QueueTime[0].P50 != 1.5 || o.QueueTime[0].P99 != 1.99 {
		t.Errorf("queue time %+v, want bulk p50 1.5 s, p99 1.99 s (linear in the bucket)", o.QueueTime)
	}
	if len(o.Sources) != 2 || o.Sources[0].Error != "" || !strings.Contains(o.Sources[1].Error, "connection refused") {
		t.Errorf("sources %+v", o.Sources)
	}

	// An hour's worth is kept, no more: the oldest samples go.
	for range 5 {
		now = now.Add(15 * time.Second)
		h.Sample()
	}
	if len(h.samples) != h.keep {
		t.Errorf("%d samples kept, want %d", len(h.samples), h.keep)
	}
}

// A remote's address is shown without its credentials.
func TestRemoteNameHidesCredentials(t *testing.T) {
	rs, err := ParseRemotes("http://scraper:s3cret@dispatcher-1:9090/metrics, https://dispatcher-2/metrics")
	if err != nil || len(rs) != 2 {
		t.Fatalf("%v %v", rs, err)
	}
	h := (*Metrics)(nil).NewHistory(nil, rs, 0)
	for _, s := range h.sources {
		if strings.Contains(s.name, "s3cret") {
			t.Errorf("source name %q shows the password", s.name)
		}
	}
	if _, err := ParseRemotes("dispatcher-1:9090"); err == nil {
		t.Error("a URL without a scheme was accepted")
	}
	if _, err := rs[0].Gather(); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("the error of an unreachable remote: %v", err)
	}
}
