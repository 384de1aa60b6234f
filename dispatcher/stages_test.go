package dispatcher

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/internal/metrics"
	"github.com/loa-hub/loa/internal/topics"
)

// TestCodeStagesObserved: a code is observed once at every stage of its
// way in loa_delivery_stage_seconds, from the publisher's acknowledged
// write to its sent mark, under the otp lane.
func TestCodeStagesObserved(t *testing.T) {
	oneBackend(t, func(t *testing.T, r *rig) {
		m := metrics.New()
		r.pub.ObservePublished(func(l topics.Lane, writing, published time.Duration) {
			m.DeliveryStage(string(l), "writing").Observe(writing.Seconds())
			m.DeliveryStage(string(l), "published").Observe(published.Seconds())
		})
		r.chans[channels.SMS] = calling{r.chans[channels.SMS]}
		r.publishCode(t, "code-stages", "84912345670")
		r.start(t, func(d *Dispatcher) { d.setMetrics(m) })
		ctx := waitCtx(t)
		scrape := func() string {
			rec := httptest.NewRecorder()
			m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			return rec.Body.String()
		}
		count := func(stage string) string {
			return fmt.Sprintf(`loa_delivery_stage_seconds_count{lane="otp",stage=%q} 1`, stage)
		}
		pollUntil(ctx, t, "the code's sent mark was observed", func() bool { return strings.Contains(scrape(), count("recorded")) })
		body := scrape()
		for _, st := range append([]string{"writing", "published"}, StageNames[:]...) {
			if !strings.Contains(body, count(st)) {
				t.Errorf("metrics lack %s", count(st))
			}
		}
	})
}
