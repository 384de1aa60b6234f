// Package metrics holds Loa's Prometheus collectors in one registry that
// the API serves at /metrics (and a dispatcher-only process on
// LOA_METRICS_ADDR). A nil *Metrics is valid and records nothing, so
// tests and tools need not build one.
package metrics

import (
	"net/http"

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
	rateWaits    *prometheus.CounterVec
	unmarked     prometheus.Gauge
	takenOver    *prometheus.CounterVec
	walFailures  prometheus.Counter
}

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
		rateWaits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loa_ratelimit_wait_seconds_total", Help: "Time sends waited for a provider's rate limit.",
		}, []string{"provider"}),
		unmarked: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loa_sends_unmarked",
			Help: "Sends started and not yet recorded as sent (write-ahead record or Redis) nor settled as not sent: at most what a killed dispatcher sends again.",
		}),
		takenOver: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loa_claims_taken_over_total",
			Help: "Deliveries taken over from a sender that stopped without recording them, by whether the write-ahead record had them (recorded) or they were sent again (resent).",
		}, []string{"result"}),
		walFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loa_sends_write_ahead_failures_total", Help: "Sends whose write-ahead record failed (recorded in Redis only).",
		}),
	}
	m.reg.MustRegister(m.sends, m.breakerState, m.breakerTrips, m.rateWaits, m.unmarked, m.takenOver, m.walFailures,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

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

// RateLimitWait adds time a send waited for its provider's rate limit.
func (m *Metrics) RateLimitWait(provider string, seconds float64) {
	if m != nil {
		m.rateWaits.WithLabelValues(provider).Add(seconds)
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

// WriteAheadFailed counts sends whose write-ahead record failed.
func (m *Metrics) WriteAheadFailed(n int) {
	if m != nil {
		m.walFailures.Add(float64(n))
	}
}
