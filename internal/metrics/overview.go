package metrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Overview is the operators' view of the system at one moment, as the
// console shows it: the shared gauges, and what the dispatchers' own
// metrics said over the last hour.
type Overview struct {
	At    time.Time `json:"at"`
	Since time.Time `json:"since"` // the oldest sample: rates and transitions cover at most this far back
	// Lag per lane and partition (LagError set when Kafka did not answer).
	Lag      []LaneLagView `json:"lag"`
	LagError string        `json:"lag_error,omitempty"`
	// Dead letters waiting for a replay and the age of the oldest; the
	// scheduled items due and overdue (StoreError set when the database
	// did not answer).
	DeadLetters      int64      `json:"dead_letters"`
	OldestDeadLetter *time.Time `json:"oldest_dead_letter,omitempty"`
	ScheduledDue     int64      `json:"scheduled_due"`
	ScheduledOverdue int64      `json:"scheduled_overdue"`
	StoreError       string     `json:"store_error,omitempty"`
	// Deliveries per second over the last five minutes, by channel and
	// outcome.
	Throughput []RateView `json:"throughput"`
	// Breakers per provider: the worst state any process reports now, and
	// the transitions seen in the last hour.
	Breakers []BreakerView `json:"breakers"`
	// RateWaits: seconds sends waited for each provider's rate limit in
	// the last five minutes.
	RateWaits []ProviderSeconds `json:"rate_limit_waits"`
	// QueueTime per lane over the last five minutes (publish to provider
	// accept), where the dispatchers report it.
	QueueTime []QueueTimeView `json:"queue_time"`
	// Sources names where the process-level metrics came from, with the
	// error of any that did not answer.
	Sources []SourceView `json:"sources"`
}

// LaneLagView is one partition's lag.
type LaneLagView struct {
	Lane      string `json:"lane"`
	Partition int    `json:"partition"`
	Lag       int64  `json:"lag"`
}

// RateView is a rate of deliveries.
type RateView struct {
	Channel   string  `json:"channel"`
	Status    string  `json:"status"`
	PerSecond float64 `json:"per_second"`
}

// BreakerView is one provider's breaker.
type BreakerView struct {
	Provider    string           `json:"provider"`
	State       int              `json:"state"` // 0 closed, 1 half-open, 2 open
	StateName   string           `json:"state_name"`
	Transitions []TransitionView `json:"transitions"`
}

// TransitionView is a breaker state change seen between two samples.
type TransitionView struct {
	At    time.Time `json:"at"`
	To    string    `json:"to"`
	Count int       `json:"count"`
}

// ProviderSeconds is a duration per provider.
type ProviderSeconds struct {
	Provider string  `json:"provider"`
	Seconds  float64 `json:"seconds"`
}

// QueueTimeView is a lane's queue time quantiles, in seconds.
type QueueTimeView struct {
	Lane string  `json:"lane"`
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	N    float64 `json:"count"`
}

// SourceView is one source of process metrics.
type SourceView struct {
	Name  string `json:"name"`
	Error string `json:"error,omitempty"`
}

// Remote gathers the metrics a process serves over HTTP (a dispatcher's
// LOA_METRICS_ADDR), so an API process can show the dispatchers'
// breakers. Safe for concurrent use.
type Remote struct {
	URL    string
	Client *http.Client
}

// Name is the remote's URL without a password, as pages show it.
func (r Remote) Name() string {
	u, err := url.Parse(r.URL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// Gather implements prometheus.Gatherer.
func (r Remote) Gather() ([]*dto.MetricFamily, error) {
	c := r.Client
	if c == nil {
		c = &http.Client{Timeout: 3 * time.Second}
	}
	resp, err := c.Get(r.URL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the URL, credentials and all
		}
		return nil, fmt.Errorf("metrics: %s: %w", r.Name(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: %s: %s", r.Name(), resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("metrics: %s: %w", r.Name(), err)
	}
	out := make([]*dto.MetricFamily, 0, len(fams))
	for _, f := range fams {
		out = append(out, f)
	}
	return out, nil
}

// source is one named gatherer.
type source struct {
	name string
	g    prometheus.Gatherer
}

// sample is what History keeps of one gathering.
type sample struct {
	at          time.Time
	deliveries  map[string]float64 // channel|status
	breaker     map[string]float64 // provider → worst state
	transitions map[string]float64 // provider|to
	rateWaits   map[string]float64 // provider
	queue       map[string]map[float64]float64
	queueCount  map[string]float64
	errs        []SourceView
}

// History samples the process metrics of this process and of remote
// ones at a fixed interval and keeps an hour of samples, from which
// Overview computes rates and breaker transitions. Safe for concurrent
// use.
type History struct {
	sources []source
	every   time.Duration
	keep    int
	ops     *OpsGauges
	now     func() time.Time

	mu      sync.Mutex
	samples []sample
}

// NewHistory returns a History of m's registry and the remote sources,
// sampled every interval (default 15 s) for an hour, with the shared
// gauges read from ops (nil: none).
func (m *Metrics) NewHistory(ops *OpsGauges, remotes []Remote, every time.Duration) *History {
	if every <= 0 {
		every = 15 * time.Second
	}
	h := &History{every: every, keep: int(time.Hour/every) + 1, ops: ops, now: time.Now}
	if m != nil {
		h.sources = append(h.sources, source{name: "this process", g: m.reg})
	}
	for _, r := range remotes {
		h.sources = append(h.sources, source{name: r.Name(), g: r})
	}
	return h
}

// Run samples until ctx ends.
func (h *History) Run(ctx context.Context) error {
	t := time.NewTicker(h.every)
	defer t.Stop()
	for {
		h.Sample()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sample gathers once and keeps the result.
func (h *History) Sample() {
	s := sample{at: h.now(), deliveries: map[string]float64{}, breaker: map[string]float64{}, transitions: map[string]float64{},
		rateWaits: map[string]float64{}, queue: map[string]map[float64]float64{}, queueCount: map[string]float64{}}
	for _, src := range h.sources {
		fams, err := src.g.Gather()
		sv := SourceView{Name: src.name}
		if err != nil {
			sv.Error = err.Error()
		}
		s.errs = append(s.errs, sv)
		for _, f := range fams {
			s.add(f)
		}
	}
	h.mu.Lock()
	h.samples = append(h.samples, s)
	if len(h.samples) > h.keep {
		h.samples = slices.Delete(h.samples, 0, len(h.samples)-h.keep)
	}
	h.mu.Unlock()
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func (s *sample) add(f *dto.MetricFamily) {
	for _, m := range f.GetMetric() {
		switch f.GetName() {
		case "loa_deliveries_total":
			s.deliveries[label(m, "channel")+"|"+label(m, "status")] += m.GetCounter().GetValue()
		case "loa_breaker_state":
			p := label(m, "provider")
			s.breaker[p] = max(s.breaker[p], m.GetGauge().GetValue())
		case "loa_breaker_transitions_total":
			s.transitions[label(m, "provider")+"|"+label(m, "to")] += m.GetCounter().GetValue()
		case "loa_ratelimit_wait_seconds":
			s.rateWaits[label(m, "provider")] += m.GetHistogram().GetSampleSum()
		case "loa_lane_queue_seconds":
			lane := label(m, "lane")
			if s.queue[lane] == nil {
				s.queue[lane] = map[float64]float64{}
			}
			for _, b := range m.GetHistogram().GetBucket() {
				s.queue[lane][b.GetUpperBound()] += float64(b.GetCumulativeCount())
			}
			s.queueCount[lane] += float64(m.GetHistogram().GetSampleCount())
		}
	}
}

var stateNames = map[int]string{0: "closed", 1: "half-open", 2: "open"}

// Overview returns the operators' view now.
func (h *History) Overview(ctx context.Context) Overview {
	o := Overview{At: h.now(), Lag: []LaneLagView{}, Throughput: []RateView{}, Breakers: []BreakerView{}, RateWaits: []ProviderSeconds{},
		QueueTime: []QueueTimeView{}, Sources: []SourceView{}}
	if h.ops != nil {
		ops := h.ops.Snapshot(ctx)
		if ops.LagErr != nil {
			o.LagError = ops.LagErr.Error()
		}
		for _, l := range ops.Lag {
			o.Lag = append(o.Lag, LaneLagView(l))
		}
		if ops.StoreErr != nil {
			o.StoreError = ops.StoreErr.Error()
		}
		o.DeadLetters, o.ScheduledDue, o.ScheduledOverdue = ops.DeadLetters, ops.ScheduledDue, ops.ScheduledOverdue
		if !ops.OldestDeadLetter.IsZero() {
			t := ops.OldestDeadLetter
			o.OldestDeadLetter = &t
		}
	}
	h.mu.Lock()
	samples := slices.Clone(h.samples)
	h.mu.Unlock()
	if len(samples) == 0 {
		return o
	}
	last := samples[len(samples)-1]
	o.Since, o.Sources = samples[0].at, last.errs
	// The sample nearest five minutes back (or the oldest).
	base := samples[0]
	for _, s := range samples {
		if !s.at.After(last.at.Add(-5 * time.Minute)) {
			base = s
		}
	}
	dt := last.at.Sub(base.at).Seconds()
	for _, k := range sortedKeys(last.deliveries) {
		ch, st, _ := strings.Cut(k, "|")
		r := 0.0
		if dt > 0 {
			r = max(0, last.deliveries[k]-base.deliveries[k]) / dt
		}
		o.Throughput = append(o.Throughput, RateView{Channel: ch, Status: st, PerSecond: math.Round(r*100) / 100})
	}
	providers := sortedKeys(last.breaker)
	for k := range last.transitions {
		if p, _, _ := strings.Cut(k, "|"); !slices.Contains(providers, p) {
			providers = append(providers, p)
		}
	}
	sort.Strings(providers)
	for _, p := range providers {
		b := BreakerView{Provider: p, State: int(last.breaker[p]), Transitions: []TransitionView{}}
		b.StateName = stateNames[b.State]
		for i := 1; i < len(samples); i++ {
			for _, to := range []string{"open", "half-open", "closed"} {
				k := p + "|" + to
				if d := samples[i].transitions[k] - samples[i-1].transitions[k]; d > 0 {
					b.Transitions = append(b.Transitions, TransitionView{At: samples[i].at, To: to, Count: int(d)})
				}
			}
		}
		o.Breakers = append(o.Breakers, b)
	}
	for _, p := range sortedKeys(last.rateWaits) {
		o.RateWaits = append(o.RateWaits, ProviderSeconds{Provider: p, Seconds: math.Round(max(0, last.rateWaits[p]-base.rateWaits[p])*1000) / 1000})
	}
	for _, lane := range sortedKeys(last.queueCount) {
		n := last.queueCount[lane] - base.queueCount[lane]
		q := QueueTimeView{Lane: lane, N: n}
		if n > 0 {
			delta := map[float64]float64{}
			for le, c := range last.queue[lane] {
				delta[le] = c - base.queue[lane][le]
			}
			q.P50, q.P99 = quantile(0.5, delta, n), quantile(0.99, delta, n)
		}
		o.QueueTime = append(o.QueueTime, q)
	}
	return o
}

// quantile estimates the q-quantile from cumulative bucket counts as
// PromQL's histogram_quantile does (linear within a bucket).
func quantile(q float64, buckets map[float64]float64, n float64) float64 {
	les := make([]float64, 0, len(buckets))
	for le := range buckets {
		les = append(les, le)
	}
	sort.Float64s(les)
	rank := q * n
	prevLE, prevC := 0.0, 0.0
	for _, le := range les {
		c := buckets[le]
		if c >= rank {
			if math.IsInf(le, 1) {
				return prevLE
			}
			if c == prevC {
				return le
			}
			return math.Round((prevLE+(le-prevLE)*(rank-prevC)/(c-prevC))*10000) / 10000
		}
		prevLE, prevC = le, c
	}
	return prevLE
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ParseRemotes reads LOA_OPS_METRICS_URLS: comma-separated /metrics URLs
// of the dispatchers.
func ParseRemotes(s string) ([]Remote, error) {
	var out []Remote
	for _, u := range strings.Split(s, ",") {
		if u = strings.TrimSpace(u); u == "" {
			continue
		}
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return nil, fmt.Errorf("metrics: %q is not an http(s) URL", u)
		}
		out = append(out, Remote{URL: u})
	}
	return out, nil
}
