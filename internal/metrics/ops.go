package metrics

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Ops is a snapshot of what operators watch beyond a process's own
// counters: state shared by every replica, read from Kafka and the
// database when Prometheus scrapes. Every replica that registers it
// reports the same numbers: aggregate with max(), not sum().
type Ops struct {
	// Lag is the consumer lag of every partition of every lane (and of
	// the ledger's receipts, lane "receipts"); nil when LagErr is set.
	Lag    []LaneLag
	LagErr error
	// DeadLetters waiting for a replay, and when the oldest arrived.
	DeadLetters      int64
	OldestDeadLetter time.Time
	// Scheduled items due now, and of them those past their grace.
	ScheduledDue, ScheduledOverdue int64
	// StoreErr is set when the database part could not be read.
	StoreErr error
	// At is when the snapshot was taken.
	At time.Time
}

// LaneLag is one partition's backlog for a lane's consumer group.
type LaneLag struct {
	Lane      string
	Partition int
	Lag       int64
}

// OpsSource takes an Ops snapshot. It should return within ctx.
type OpsSource func(ctx context.Context) Ops

// opsCollector serves an OpsSource's snapshot as gauges, reading it at
// most once per minAge however often it is scraped.
type opsCollector struct {
	source  OpsSource
	minAge  time.Duration
	timeout time.Duration
	now     func() time.Time

	mu   sync.Mutex
	last Ops

	lag, deadLetters, oldest, due, overdue, up *prometheus.Desc
}

// OpsGauges are the registered operators' gauges; Snapshot shares their
// reads with the console.
type OpsGauges struct{ c *opsCollector }

// RegisterOps adds the operators' gauges, read from source when scraped
// (at most every 5 s; each read bounded by 3 s), and returns them:
//
//	loa_consumer_lag{lane,partition}       messages written and not yet committed
//	loa_deadletters                        dead letters waiting for a replay
//	loa_deadletter_oldest_age_seconds      age of the oldest of them (0 when none)
//	loa_scheduled_due                      scheduled items due and not yet published
//	loa_scheduled_overdue                  of them, those past their grace
//	loa_ops_source_up{source}              1 when kafka / database answered
//
// On a nil *Metrics it registers nothing but still returns working
// gauges.
func (m *Metrics) RegisterOps(source OpsSource) *OpsGauges {
	c := newOpsCollector(source, time.Now)
	if m != nil {
		m.reg.MustRegister(c)
	}
	return &OpsGauges{c: c}
}

// Snapshot returns the last snapshot, read again when it is older than
// the scrape interval. Safe for concurrent use.
func (g *OpsGauges) Snapshot(ctx context.Context) Ops { return g.c.snapshot(ctx) }

func newOpsCollector(source OpsSource, now func() time.Time) *opsCollector {
	return &opsCollector{
		source: source, minAge: 5 * time.Second, timeout: 3 * time.Second, now: now,
		lag: prometheus.NewDesc("loa_consumer_lag", "Messages of a lane's partition written and not yet committed by its consumer group (receipts: the ledger's).",
			[]string{"lane", "partition"}, nil),
		deadLetters: prometheus.NewDesc("loa_deadletters", "Dead letters waiting for a replay.", nil, nil),
		oldest: prometheus.NewDesc("loa_deadletter_oldest_age_seconds", "Age of the oldest dead letter waiting for a replay; 0 when none waits.",
			nil, nil),
		due:     prometheus.NewDesc("loa_scheduled_due", "Scheduled items (reminders, held notices, escalations) due and not yet published.", nil, nil),
		overdue: prometheus.NewDesc("loa_scheduled_overdue", "Scheduled items due for longer than a poller takes to publish them.", nil, nil),
		up:      prometheus.NewDesc("loa_ops_source_up", "1 when the source of the operators' gauges answered at the last read (kafka, database).", []string{"source"}, nil),
	}
}

func (c *opsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.lag, c.deadLetters, c.oldest, c.due, c.overdue, c.up} {
		ch <- d
	}
}

// snapshot returns the cached snapshot, or a fresh one when it is older
// than minAge. Concurrent scrapes wait for one read.
func (c *opsCollector) snapshot(ctx context.Context) Ops {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.last.At.IsZero() && c.now().Sub(c.last.At) < c.minAge {
		return c.last
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	o := c.source(ctx)
	if o.At.IsZero() {
		o.At = c.now()
	}
	c.last = o
	return o
}

func (c *opsCollector) Collect(ch chan<- prometheus.Metric) {
	o := c.snapshot(context.Background())
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	up := func(err error) float64 {
		if err != nil {
			return 0
		}
		return 1
	}
	gauge(c.up, up(o.LagErr), "kafka")
	gauge(c.up, up(o.StoreErr), "database")
	if o.LagErr == nil {
		for _, l := range o.Lag {
			gauge(c.lag, float64(l.Lag), l.Lane, strconv.Itoa(l.Partition))
		}
	}
	if o.StoreErr == nil {
		gauge(c.deadLetters, float64(o.DeadLetters))
		age := 0.0
		if !o.OldestDeadLetter.IsZero() {
			age = max(0, o.At.Sub(o.OldestDeadLetter).Seconds())
		}
		gauge(c.oldest, age)
		gauge(c.due, float64(o.ScheduledDue))
		gauge(c.overdue, float64(o.ScheduledOverdue))
	}
}
