package sqlstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
)

// RatePoint is how many deliveries of a notification reached an outcome
// in one second (Unix time).
type RatePoint struct {
	At    int64 // Unix seconds
	Count int64
}

// MaxRatePoints bounds the seconds DeliveryStatsAndRate returns: the
// newest ones (over five hours of sending, second by second).
const MaxRatePoints = 20000

// DeliveryStatsAndRate returns DeliveryStats' counts and, from the same
// reads of the ledger, the deliveries per second: how many reached a
// final outcome (sent, delivered, failed, expired, cancelled …) in each
// second from since on, oldest first, by the time the ledger recorded
// each row's present state. A delivery a carrier's report refines later
// (sent, then delivered) counts once, in the second of its report.
// Seconds without an outcome are left out. A compact entry's deliveries
// (PostgreSQL) count in the seconds each was sent. The rows' counts and
// seconds are the ledger's counters (see countRows).
func (d *DB) DeliveryStatsAndRate(ctx context.Context, notificationID string, since time.Time) ([]DeliveryStat, []RatePoint, error) {
	c := newLedgerCount(since.Unix())
	rowChannels, err := d.countRows(ctx, notificationID, c, true)
	if err != nil {
		return nil, nil, fmt.Errorf("sqlstore: delivery stats and rate: %w", err)
	}
	if d.dialect == Postgres {
		if err := d.countSent(ctx, notificationID, c, true, rowChannels); err != nil {
			return nil, nil, fmt.Errorf("sqlstore: delivery stats and rate: %w", err)
		}
	}
	stats, perSecond := c.stats(), c.perSecond
	points := make([]RatePoint, 0, len(perSecond))
	for s, n := range perSecond {
		if n == 0 {
			continue // taken back: its delivery counts in another second
		}
		points = append(points, RatePoint{At: s, Count: n})
	}
	slices.SortFunc(points, func(a, b RatePoint) int { return cmp.Compare(a.At, b.At) })
	if len(points) > MaxRatePoints {
		points = points[len(points)-MaxRatePoints:]
	}
	return stats, points, nil
}
