package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	budgetUsedDesc = prometheus.NewDesc("loa_anonymous_codes_budget_used",
		"SMS codes of the anonymous flows counted in the current clock hour against LOA_ANONYMOUS_CODES_PER_HOUR (read from Redis when scraped; the same on every API replica, aggregate with max).", nil, nil)
	budgetLimitDesc = prometheus.NewDesc("loa_anonymous_codes_budget",
		"LOA_ANONYMOUS_CODES_PER_HOUR: the hourly budget of the anonymous flows' SMS codes; numbers no account holds may use four fifths of it.", nil, nil)
)

// budgetReadTimeout bounds the read of the budget's count at a scrape.
const budgetReadTimeout = 2 * time.Second

// budgetCollector reports the hourly budget of anonymous codes and how
// much of the hour's is used.
type budgetCollector struct {
	limit int
	used  func(ctx context.Context) (int, error)
}

func (c budgetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- budgetUsedDesc
	ch <- budgetLimitDesc
}

// Collect reports the limit, and the count when it could be read: a
// failed read leaves the used gauge out of the scrape rather than report
// a 0 that looks like a quiet hour.
func (c budgetCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(budgetLimitDesc, prometheus.GaugeValue, float64(c.limit))
	ctx, cancel := context.WithTimeout(context.Background(), budgetReadTimeout)
	defer cancel()
	if n, err := c.used(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(budgetUsedDesc, prometheus.GaugeValue, float64(n))
	}
}

// RegisterAnonymousBudget reports the budget of anonymous codes: limit,
// and used, read at each scrape. Call it once, on the API.
func (m *Metrics) RegisterAnonymousBudget(limit int, used func(ctx context.Context) (int, error)) {
	if m == nil {
		return
	}
	m.reg.MustRegister(budgetCollector{limit: limit, used: used})
}
