package dispatcher

import (
	"context"
	"time"

	"github.com/loa-hub/loa/internal/metrics"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

// stage is a point a direct delivery (a code, an alert, a direct
// notification) passes on its way to the provider. Each is measured from
// the event's creation (its envelope's created_at, set by the API just
// before it writes the event to Kafka), so the stages' quantiles show
// where a late code lost its time: in Kafka and the dispatcher's reader
// (fetched), behind other messages of its worker (started), in Redis
// (claimed), waiting for a turn or a token (calling), in PostgreSQL
// (written, recorded) or at the provider (answered). The API observes the
// stage before these, published (see kafkapub.Publisher.ObservePublished).
type stage int

const (
	stageFetched stage = iota
	stageStarted
	stageClaimed
	stageCalling
	stageWritten
	stageAnswered
	stageRecorded
	numStages
)

// StageNames are the stages' label values in loa_delivery_stage_seconds,
// in the order a delivery passes them (after the API's "published").
var StageNames = [numStages]string{"fetched", "started", "claimed", "calling", "written", "answered", "recorded"}

type stageObservers [numStages]metrics.Observer

func newStageObservers(m *metrics.Metrics) map[topics.Lane]*stageObservers {
	out := map[topics.Lane]*stageObservers{}
	for _, l := range topics.Lanes {
		var o stageObservers
		for s, name := range StageNames {
			o[s] = m.DeliveryStage(string(l), name)
		}
		out[l] = &o
	}
	return out
}

// stageClock observes the stages of one event's deliveries. A nil
// *stageClock observes nothing.
type stageClock struct {
	from time.Time
	obs  *stageObservers
}

// mark observes that the event reached s now.
func (c *stageClock) mark(s stage) {
	if c != nil {
		c.obs[s].Observe(time.Since(c.from).Seconds())
	}
}

// stageClockOf starts observing env's stages, with the time its message
// was fetched (from ctx, see withFetched) and now as started; nil without
// metrics or a creation time.
func (d *Dispatcher) stageClockOf(ctx context.Context, env producer.Envelope) *stageClock {
	obs := d.stages[env.Lane]
	if obs == nil || d.cfg.Metrics == nil || env.CreatedAt.IsZero() {
		return nil
	}
	c := &stageClock{from: env.CreatedAt, obs: obs}
	if at, ok := ctx.Value(fetchedKey{}).(time.Time); ok {
		obs[stageFetched].Observe(at.Sub(c.from).Seconds())
	}
	c.mark(stageStarted)
	return c
}

type fetchedKey struct{}

// withFetched returns ctx carrying when its message was fetched from
// Kafka.
func withFetched(ctx context.Context, at time.Time) context.Context {
	return context.WithValue(ctx, fetchedKey{}, at)
}
