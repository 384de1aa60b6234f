// Package metrics holds Loa's Prometheus collectors in one registry that
// the API serves at /metrics (and a dispatcher-only process on
// LOA_METRICS_ADDR). A nil *Metrics is valid and records nothing, so
// tests and tools need not build one.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the set of Loa's collectors. Safe for concurrent use.
type Metrics struct {
	reg          *prometheus.Registry
	sends        *prometheus.CounterVec
	breakerState *prometheus.GaugeVec
	breakerTrips *prometheus.CounterVec
	rateWaits    *prometheus.HistogramVec
	rateCalls    *prometheus.CounterVec
	rateLocal    *prometheus.GaugeVec
	laneQueue    *prometheus.HistogramVec
	stages       *prometheus.HistogramVec
	streamWaits  *prometheus.HistogramVec
	unmarked     prometheus.Gauge
	takenOver    *prometheus.CounterVec
	walFailures  prometheus.Counter
	unanswered   *prometheus.CounterVec
	codesRefused *prometheus.CounterVec
	readsRefused prometheus.Counter
	readsCalls   *prometheus.CounterVec
	keyRefused   prometheus.Counter
	httpRefused  *prometheus.CounterVec
	connsRefused *prometheus.CounterVec
}

// Observer records one observation (a histogram's series with its labels
// resolved). Resolve it once and keep it: resolving labels on every send
// costs more than the observation.
type Observer = prometheus.Observer

type nopObserver struct{}

func (nopObserver) Observe(float64) {}

// New returns a registry with Loa's collectors and the Go runtime's.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loa_deliveries_total", Help: "Delivery outcomes by channel, provider and status.",
		}, []string{"channel", "provider", "status"}),
		breakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "loa_breaker_state", Help: "Circuit breaker state per provider: 0 closed, 1 half-open, 2 open.",
		}, []string{"provider"}),
		breakerTrips: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loa_breaker_transitions_total", Help: "Circuit breaker state changes per provider.",
		}, []string{"provider", "to"}),
		rateWaits: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "loa_ratelimit_wait_seconds",
			Help:    "How long a send waited for a token of its provider's rate limit, by lane (the wait for the token itself, not for Redis).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"provider", "lane"}),
		rateCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loa_ratelimit_redis_calls_total", Help: "Calls a replica made to a provider's shared bucket in Redis (one per lease of tokens, not per send).",
		}, []string{"provider"}),
		unmarked: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loa_sends_unmarked",
			Help: "Sends started and not yet recorded as sent (write-ahead record or Redis) nor settled as not sent: at most what a killed dispatcher sends again.",
		}),
		takenOver: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loa_claims_taken_over_total",
			Help: "Deliveries taken over from a sender that stopped without recording them, by whether the write-ahead record had them (recorded) or they were sent again (resent).",
		}, []string{"result"}),
		unanswered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loa_sends_unanswered_total",
			Help: "Provider calls that failed without an answer saying the message was not taken (a timeout, a connection lost mid-call), by what followed: sent again (resent: the recipient may get it twice) or recorded in doubt (in_doubt: codes and alerts, never sent again).",
		}, []string{"result"}),
		codesRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loa_anonymous_codes_refused_total",
			Help: "SMS codes of the anonymous flows (registration, POST /v1/otp/sms) refused by the hourly budget LOA_ANONYMOUS_CODES_PER_HOUR, by the part spent: share (the four fifths for numbers no account holds) or all.",
		}, []string{"part"}),
		readsRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loa_public_reads_refused_total",
			Help: "Anonymous reads of the public routes refused (429) because their client address was past LOA_PUBLIC_READS_LIMIT in the window.",
		}),
		keyRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loa_key_notifications_refused_total",
			Help: "POST /v1/notifications refused (429) because the API key was past LOA_KEY_NOTIFICATIONS_LIMIT in the window.",
		}),
		httpRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loa_http_refused_total",
			Help: "Requests the API refused, by HTTP status (4xx); the log keeps only a sample of them.",
		}, []string{"status"}),
		connsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loa_http_conns_refused_total",
			Help: "Connections to the API port closed at once: their client address had LOA_HTTP_CONNS_PER_ADDR open (address), or the process LOA_HTTP_MAX_CONNS (process).",
		}, []string{"reason"}),
		readsCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loa_public_reads_redis_calls_total",
			Help: "Calls a replica made to Redis to add a batch of an address's anonymous reads to the shared count, by result (ok, failed: the replica counted alone).",
		}, []string{"result"}),
		walFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loa_sends_write_ahead_failures_total", Help: "Sends whose write-ahead record failed (recorded in Redis only).",
		}),
		rateLocal: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "loa_ratelimit_local", Help: "1 while a provider's rate limit runs on the replica's local bucket because Redis does not answer, else 0.",
		}, []string{"provider"}),
		laneQueue: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "loa_lane_queue_seconds",
			Help:    "Time from an event's publish on its lane to the provider accepting the delivery, by lane and channel.",
			Buckets: prometheus.ExponentialBuckets(0.001, 3, 13),
		}, []string{"lane", "channel"}),
		stages: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "loa_delivery_stage_seconds",
			Help: "Time from a direct notification's creation (a code's, an alert's) to each stage of its way: writing (the API's write to Kafka that carries it began), published (Kafka acknowledged that write), " +
				"fetched (a dispatcher read it), started (a worker took it), claimed, calling (every wait for a turn or token over), written (its write-ahead attempt committed), " +
				"answered (the provider answered), recorded (its sent mark committed); by lane.",
			Buckets: StageBuckets,
		}, []string{"lane", "stage"}),
		streamWaits: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "loa_fcm_stream_wait_seconds",
			Help:    "How long a push waited for an HTTP/2 stream to FCM, by lane.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"provider", "lane"}),
	}
	m.reg.MustRegister(m.sends, m.breakerState, m.breakerTrips, m.rateWaits, m.rateCalls, m.rateLocal, m.laneQueue, m.stages, m.streamWaits,
		m.unmarked, m.takenOver, m.walFailures, m.unanswered, m.codesRefused, m.readsRefused, m.readsCalls, m.keyRefused,
		m.httpRefused, m.connsRefused, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, part := range []string{"share", "all"} {
		m.codesRefused.WithLabelValues(part) // 0 from the start, for rate() and increase()
	}
	for _, result := range []string{"ok", "failed"} {
		m.readsCalls.WithLabelValues(result)
	}
	for _, reason := range []string{"address", "process"} {
		m.connsRefused.WithLabelValues(reason)
	}
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// AnonymousCodeRefused counts a code the budget of anonymous codes
// refused: all false when only the share of unknown numbers was spent.
func (m *Metrics) AnonymousCodeRefused(all bool) {
	if m == nil {
		return
	}
	part := "share"
	if all {
		part = "all"
	}
	m.codesRefused.WithLabelValues(part).Inc()
}

// QuotaRefused counts an anonymous read the public read quota refused
// (quota.Observer).
func (m *Metrics) QuotaRefused() {
	if m != nil {
		m.readsRefused.Inc()
	}
}

// QuotaCall counts a call of the public read quota to Redis
// (quota.Observer).
func (m *Metrics) QuotaCall(failed bool) {
	if m == nil {
		return
	}
	result := "ok"
	if failed {
		result = "failed"
	}
	m.readsCalls.WithLabelValues(result).Inc()
}

// HTTPRefused counts a request the API refused with status (a 4xx;
// api.RefusalCounter).
func (m *Metrics) HTTPRefused(status int) {
	if m != nil {
		m.httpRefused.WithLabelValues(strconv.Itoa(status)).Inc()
	}
}

// ConnRefused counts a connection to the API port closed at once
// (connlimit.Observer).
func (m *Metrics) ConnRefused(perAddr bool) {
	if m == nil {
		return
	}
	reason := "process"
	if perAddr {
		reason = "address"
	}
	m.connsRefused.WithLabelValues(reason).Inc()
}

// KeyNotifications observes the per-key quota of POST /v1/notifications
// (a quota.Observer): refusals are counted; its Redis calls are not.
func (m *Metrics) KeyNotifications() KeyQuotaObserver { return KeyQuotaObserver{m} }

// KeyQuotaObserver is Metrics.KeyNotifications's quota.Observer.
type KeyQuotaObserver struct{ m *Metrics }

// QuotaRefused counts a notification refused to its key.
func (o KeyQuotaObserver) QuotaRefused() {
	if o.m != nil {
		o.m.keyRefused.Inc()
	}
}

// QuotaCall does nothing: the calls of the key quota are not counted.
func (o KeyQuotaObserver) QuotaCall(bool) {}

// Delivery counts one delivery outcome.
func (m *Metrics) Delivery(channel, provider, status string) {
	if m != nil {
		m.sends.WithLabelValues(channel, provider, status).Inc()
	}
}

// BreakerState records a provider's breaker state (0 closed, 1 half-open,
// 2 open) and counts the transition.
func (m *Metrics) BreakerState(provider string, state int, to string) {
	if m != nil {
		m.breakerState.WithLabelValues(provider).Set(float64(state))
		if to != "" {
			m.breakerTrips.WithLabelValues(provider, to).Inc()
		}
	}
}

// RateLimitWait returns the observer of the seconds sends of lane waited
// for a token of provider's rate limit.
func (m *Metrics) RateLimitWait(provider, lane string) Observer {
	if m == nil {
		return nopObserver{}
	}
	return m.rateWaits.WithLabelValues(provider, lane)
}

// RateLimitRedisCall counts one call to provider's shared bucket.
func (m *Metrics) RateLimitRedisCall(provider string) {
	if m != nil {
		m.rateCalls.WithLabelValues(provider).Inc()
	}
}

// UnmarkedSends adds n (negative when settled) to the sends started and
// not yet recorded as sent nor settled as not sent.
func (m *Metrics) UnmarkedSends(n int) {
	if m != nil {
		m.unmarked.Add(float64(n))
	}
}

// TakenOver counts deliveries taken over from a sender that stopped:
// recorded ones were found sent, resent ones were sent again.
func (m *Metrics) TakenOver(recorded, resent int) {
	if m != nil {
		m.takenOver.WithLabelValues("recorded").Add(float64(recorded))
		m.takenOver.WithLabelValues("resent").Add(float64(resent))
	}
}

// Unanswered counts provider calls that failed without an answer: resent
// ones were tried again, inDoubt ones recorded in doubt.
func (m *Metrics) Unanswered(resent, inDoubt int) {
	if m != nil {
		m.unanswered.WithLabelValues("resent").Add(float64(resent))
		m.unanswered.WithLabelValues("in_doubt").Add(float64(inDoubt))
	}
}

// WriteAheadFailed counts sends whose write-ahead record failed.
func (m *Metrics) WriteAheadFailed(n int) {
	if m != nil {
		m.walFailures.Add(float64(n))
	}
}

// RateLimitLocal records whether provider's rate limit runs on the
// replica's local bucket (Redis unreachable).
func (m *Metrics) RateLimitLocal(provider string, local bool) {
	if m != nil {
		v := 0.0
		if local {
			v = 1
		}
		m.rateLocal.WithLabelValues(provider).Set(v)
	}
}

// LaneQueue returns the observer of the seconds from publish on lane to
// the provider's accept, on channel.
func (m *Metrics) LaneQueue(lane, channel string) Observer {
	if m == nil {
		return nopObserver{}
	}
	return m.laneQueue.WithLabelValues(lane, channel)
}

// StageBuckets are the bounds of loa_delivery_stage_seconds: fine where
// a code's target lies (tens of milliseconds), up to a minute.
var StageBuckets = []float64{.001, .002, .005, .01, .015, .02, .03, .05, .075, .1, .15, .2, .3, .5, .75, 1, 2, 5, 10, 30, 60}

// DeliveryStage returns the observer of the seconds from a direct
// notification's creation on lane to stage (see loa_delivery_stage_seconds).
func (m *Metrics) DeliveryStage(lane, stage string) Observer {
	if m == nil {
		return nopObserver{}
	}
	return m.stages.WithLabelValues(lane, stage)
}

// PoolStats are a connection pool's waits so far: how many times a caller
// waited for a connection, and for how long in all.
type PoolStats struct {
	Waits  uint64
	Waited time.Duration
}

// RegisterPool exports a connection pool's waits as
// loa_pool_waits_total{pool} and loa_pool_wait_seconds_total{pool}:
// whether callers queue for a connection (a pool too small for its
// callers, or connections held while their goroutines wait for the CPU).
// stats is called at each scrape.
func (m *Metrics) RegisterPool(pool string, stats func() PoolStats) {
	if m == nil {
		return
	}
	labels := prometheus.Labels{"pool": pool}
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "loa_pool_waits_total", ConstLabels: labels,
			Help: "Times a caller waited for a connection of the pool (Redis, PostgreSQL; the dispatcher's urgent pools apart)."},
			func() float64 { return float64(stats().Waits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "loa_pool_wait_seconds_total", ConstLabels: labels,
			Help: "Seconds callers spent waiting for a connection of the pool."},
			func() float64 { return stats().Waited.Seconds() }),
	)
}

// StreamWait returns the observer of the seconds pushes of lane waited
// for an HTTP/2 stream to provider.
func (m *Metrics) StreamWait(provider, lane string) Observer {
	if m == nil {
		return nopObserver{}
	}
	return m.streamWaits.WithLabelValues(provider, lane)
}
