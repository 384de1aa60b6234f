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
// (PostgreSQL) count in the seconds each was sent.
func (d *DB) DeliveryStatsAndRate(ctx context.Context, notificationID string, since time.Time) ([]DeliveryStat, []RatePoint, error) {
	second := `CAST(strftime('%s', substr(updated_at, 1, 19)) AS INTEGER)`
	if d.dialect == Postgres {
		second = `CAST(floor(extract(epoch FROM updated_at)) AS BIGINT)`
	}
	rows, err := d.db.QueryContext(ctx, `SELECT channel, provider, status,
			CASE WHEN `+second+` >= $2 THEN `+second+` ELSE 0 END AS s, COUNT(*)
		FROM deliveries WHERE notification_id = $1 GROUP BY channel, provider, status, s`, notificationID, since.Unix())
	if err != nil {
		return nil, nil, fmt.Errorf("sqlstore: delivery stats and rate: %w", err)
	}
	defer rows.Close()
	c, rowChannels := newLedgerCount(since.Unix()), map[string]bool{}
	for rows.Next() {
		var (
			k    statKey
			s, n int64
		)
		if err := rows.Scan(&k.channel, &k.provider, &k.status, &s, &n); err != nil {
			return nil, nil, fmt.Errorf("sqlstore: delivery stats and rate: %w", err)
		}
		c.add(k, s, n)
		rowChannels[k.channel] = true
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("sqlstore: delivery stats and rate: %w", err)
	}
	rows.Close()
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
