package main

import (
	"context"
	"time"

	"github.com/loa-hub/loa/internal/kafkaadmin"
	"github.com/loa-hub/loa/internal/metrics"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/topics"
)

// scheduledGrace is how long a due scheduled item may wait before the
// operators' gauge calls it overdue: pollers look every second.
const scheduledGrace = time.Minute

// opsSource reads what the operators' gauges show from the cluster and
// the store. Each part fails on its own: an unreachable broker does not
// hide the dead letters.
func opsSource(store *sqlstore.DB, lag *kafkaadmin.LagReader, names topics.Names) metrics.OpsSource {
	return func(ctx context.Context) metrics.Ops {
		o := metrics.Ops{At: time.Now()}
		parts, err := lag.Lag(ctx, names.Consumers())
		if o.LagErr = err; err == nil {
			for _, p := range parts {
				o.Lag = append(o.Lag, metrics.LaneLag{Lane: p.Lane, Partition: p.Partition, Lag: p.Lag})
			}
		}
		o.DeadLetters, o.OldestDeadLetter, o.StoreErr = store.DeadLetterBacklog(ctx)
		if o.StoreErr == nil {
			o.ScheduledDue, o.ScheduledOverdue, o.StoreErr = store.ScheduledBacklog(ctx, o.At, scheduledGrace)
		}
		return o
	}
}
