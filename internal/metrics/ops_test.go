package metrics

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

// TestOpsGauges: the snapshot is served as gauges, read at most once per
// interval, and a part that failed is left out and reported down.
func TestOpsGauges(t *testing.T) {
	reads := 0
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	var lagErr error
	m := New()
	g := m.RegisterOps(func(context.Context) Ops {
		reads++
		return Ops{At: now, Lag: []LaneLag{{Lane: "otp", Partition: 3, Lag: 42}}, LagErr: lagErr,
			DeadLetters: 2, OldestDeadLetter: now.Add(-90 * time.Second), ScheduledDue: 5, ScheduledOverdue: 1}
	})
	g.c.now = func() time.Time { return now }
	out := scrape(t, m)
	for _, want := range []string{`loa_consumer_lag{lane="otp",partition="3"} 42`, "loa_deadletters 2", "loa_deadletter_oldest_age_seconds 90",
		"loa_scheduled_due 5", "loa_scheduled_overdue 1", `loa_ops_source_up{source="kafka"} 1`, `loa_ops_source_up{source="database"} 1`} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	scrape(t, m)
	g.Snapshot(context.Background())
	if reads != 1 {
		t.Errorf("%d reads within the interval, want 1", reads)
	}
	now = now.Add(10 * time.Second)
	lagErr = errors.New("no broker")
	out = scrape(t, m)
	if reads != 2 || strings.Contains(out, "loa_consumer_lag{") || !strings.Contains(out, `loa_ops_source_up{source="kafka"} 0`) {
		t.Errorf("after the broker failed (%d reads):\n%s", reads, out)
	}
	names := m.Names()
	for _, n := range []string{"loa_consumer_lag", "loa_deadletters", "loa_deliveries_total", "loa_breaker_state", "go_goroutines"} {
		if !slices.Contains(names, n) {
			t.Errorf("Names() lacks %s: %v", n, names)
		}
	}
}
