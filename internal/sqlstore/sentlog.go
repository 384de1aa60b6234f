package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// SentGroup is one row of the dispatcher's write-ahead record of sends:
// the delivery keys of one event that were sent together, each
// SentKeySize bytes, concatenated.
type SentGroup struct {
	EventID string
	Keys    []byte
}

// SentKeySize is the length of one delivery key in a SentGroup.
const SentKeySize = 16

// LogSent records groups as sent at at, in one statement. It returns once
// the rows are committed.
func (d *DB) LogSent(ctx context.Context, groups []SentGroup, at time.Time) error {
	if len(groups) == 0 {
		return nil
	}
	if d.dialect == Postgres {
		events, keys := make([]string, len(groups)), make([][]byte, len(groups))
		for i, g := range groups {
			events[i], keys[i] = g.EventID, g.Keys
		}
		if _, err := d.db.ExecContext(ctx, logSentSQL, events, keys, at.UTC()); err != nil {
			return fmt.Errorf("sqlstore: log sent: %w", err)
		}
		return nil
	}
	const perStatement = 300 // 3 parameters a row
	for start := 0; start < len(groups); start += perStatement {
		chunk := groups[start:min(start+perStatement, len(groups))]
		var (
			values strings.Builder
			args   = make([]any, 0, 3*len(chunk))
		)
		for i, g := range chunk {
			if i > 0 {
				values.WriteString(", ")
			}
			fmt.Fprintf(&values, "($%d, $%d, $%d)", 3*i+1, 3*i+2, 3*i+3)
			args = append(args, g.EventID, g.Keys, at.UTC())
		}
		if _, err := d.db.ExecContext(ctx, `INSERT INTO sent_log (event_id, keys, at) VALUES `+values.String(), args...); err != nil {
			return fmt.Errorf("sqlstore: log sent: %w", err)
		}
	}
	return nil
}

// logSentSQL is LogSent's statement on PostgreSQL: its text does not
// depend on how many rows there are (each column is an array), so each
// connection parses it once and soon plans it once. A VALUES list made
// one prepared statement a group size, each parsed and planned anew for
// its first executions: the dispatcher's flushers write groups of 1 to 64
// rows.
const logSentSQL = `INSERT INTO sent_log (event_id, keys, at) SELECT e, k, $3 FROM unnest($1::text[], $2::bytea[]) AS r(e, k)`

// SentKeys returns every delivery key logged as sent for the event,
// concatenated (SentKeySize bytes each, possibly repeated).
func (d *DB) SentKeys(ctx context.Context, eventID string) ([]byte, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT keys FROM sent_log WHERE event_id = $1`, eventID)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: sent keys: %w", err)
	}
	defer rows.Close()
	var out []byte
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, fmt.Errorf("sqlstore: sent keys: %w", err)
		}
		out = append(out, b...)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: sent keys: %w", err)
	}
	return out, nil
}

// SweepSentLog deletes the write-ahead rows written before before and
// returns how many went.
func (d *DB) SweepSentLog(ctx context.Context, before time.Time) (int64, error) {
	res, err := d.db.ExecContext(ctx, `DELETE FROM sent_log WHERE at < $1`, before.UTC())
	if err != nil {
		return 0, fmt.Errorf("sqlstore: sweep sent log: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
