package metrics

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestRegisterPool: a pool's waits are read at each scrape, under its
// name.
func TestRegisterPool(t *testing.T) {
	m := New()
	st := PoolStats{Waits: 3, Waited: 1500 * time.Millisecond}
	m.RegisterPool("redis_urgent", func() PoolStats { return st })
	m.RegisterPool("postgres", func() PoolStats { return PoolStats{} })
	st.Waits = 4
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{`loa_pool_waits_total{pool="redis_urgent"} 4`, `loa_pool_wait_seconds_total{pool="redis_urgent"} 1.5`, `loa_pool_waits_total{pool="postgres"} 0`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
