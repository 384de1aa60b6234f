package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/producer"
)

// Delivery is producer's ledger row, under the store's name.
type Delivery = producer.Delivery

// RecordDelivery folds one outcome into the ledger, keeping the best-known
// state of the delivery. It is idempotent: the same receipt applied twice
// leaves the same row. States rank
//
//	delivered > undelivered > sent > anything else (retrying, failed, expired, …)
//
// A carrier's report (delivered, undelivered) overrides sent; sent
// overrides the transient states; a row at sent or above changes only to
// a higher rank, so nothing downgrades delivered and a late failure
// report never hides that the person has the message. Among the lower
// states the latest receipt wins. A receipt without a provider (a
// redelivery that found the delivery already sent) keeps the row's
// provider and provider id, which delivery reports are matched by.
func (d *DB) RecordDelivery(ctx context.Context, r producer.Delivery) error {
	return d.RecordDeliveries(ctx, []producer.Delivery{r})
}

// RecordDeliveries folds a batch of outcomes into the ledger in one
// transaction, with RecordDelivery's precedence, as if they were applied
// one by one in order. The batch is one receipt batch (see
// RecordReceiptBatches).
func (d *DB) RecordDeliveries(ctx context.Context, rs []producer.Delivery) error {
	return d.RecordReceiptBatches(ctx, [][]producer.Delivery{rs})
}

// RecordReceiptBatches folds receipt batches into the ledger in one
// transaction, with RecordDelivery's precedence, as if their outcomes
// were applied one by one in order. A receipt batch is the outcomes of
// one loa.receipts message: the ledger consumer writes a few thousand
// outcomes a transaction instead of a commit per row.
//
// On PostgreSQL a batch's first-attempt push sends that a provider
// accepted (nearly every push of a broadcast) are stored compactly, one
// deliveries_sent entry for up to sentEntryMax of them, named by a hash
// of their content: a batch folded again (after a restart) is the same
// entry, written once. The batch must be the same outcomes every time it
// is folded — a message's, not a fetch's — or a refold would store its
// sends a second time. Everything else is a deliveries row, and the
// readers merge the two (see mergeSent).
func (d *DB) RecordReceiptBatches(ctx context.Context, batches [][]producer.Delivery) error {
	var entries []sentEntry
	var rest []producer.Delivery
	if d.dialect == Postgres {
		entries, rest = compactSent(batches)
	} else {
		for _, b := range batches {
			rest = append(rest, b...)
		}
	}
	rest = foldDeliveries(rest)
	if len(rest) == 0 && len(entries) == 0 {
		return nil
	}
	if d.dialect == Postgres {
		if err := d.recordDeliveriesPostgres(ctx, entries, rest); err != nil {
			return fmt.Errorf("sqlstore: record deliveries: %w", err)
		}
		return nil
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: record deliveries: %w", err)
	}
	defer tx.Rollback()
	if err := upsertDeliveriesValues(ctx, tx, rest); err != nil {
		return fmt.Errorf("sqlstore: record deliveries: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: record deliveries: %w", err)
	}
	return nil
}

// recordDeliveriesPostgres writes the compact entries and rs (one row per
// delivery) in one transaction. Of rs, the rows that are probably new go
// in by COPY, the cheapest insert (an upsert costs PostgreSQL about twice
// what a plain insert does for a row that turns out to be new: the
// speculative insertion, an index probe before the insert, a confirmation
// after), and only those that probably exist take the upsert. A guess
// that was wrong — a receipt folded again after a restart, two receipts
// of one delivery folded by different statements — fails the COPY on the
// primary key, and the whole transaction is written again with the
// upsert, which is right for any row.
func (d *DB) recordDeliveriesPostgres(ctx context.Context, entries []sentEntry, rs []producer.Delivery) error {
	fresh, known := splitProbablyNew(rs)
	if len(fresh) == 0 {
		d.ledgerWritten(0, len(rs))
		return d.writeLedger(ctx, entries, nil, rs)
	}
	err := d.writeLedger(ctx, entries, fresh, known)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation: a row was not new
		d.ledgerWritten(0, len(rs))
		return d.writeLedger(ctx, entries, nil, rs)
	}
	if err == nil {
		d.ledgerWritten(len(fresh), len(known))
	}
	return err
}

// writeLedger writes the compact entries (those already there left as
// they are), fresh by COPY and known by the upsert, in one transaction on
// a connection of the pool that it gives back before it returns (a
// fallback must not wait for a second one).
func (d *DB) writeLedger(ctx context.Context, entries []sentEntry, fresh, known []producer.Delivery) error {
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		c := dc.(*stdlib.Conn).Conn()
		tx, err := c.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		if len(entries) > 0 {
			var b pgx.Batch
			for i := range entries {
				e := &entries[i]
				b.Queue(insertSentSQL, e.notificationID, e.channel, e.digest, e.provider, e.class, e.reason, int32(e.targets),
					int32(len(e.recipients)), e.firstAt, e.lastAt, e.recipients, e.providerIDs, e.ats, e.hashes)
			}
			if err := tx.SendBatch(ctx, &b).Close(); err != nil {
				return err
			}
		}
		if len(fresh) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"deliveries"}, deliveryColumns, &deliveryRows{rs: fresh}); err != nil {
				return err
			}
		}
		if len(known) > 0 {
			if _, err := tx.Exec(ctx, upsertDeliveriesSQL, deliveryArrays(known)...); err != nil {
				return err
			}
		}
		return tx.Commit(ctx)
	})
}

// ledgerWritten tells the ledger hook (tests) how a batch was written.
func (d *DB) ledgerWritten(copied, upserted int) {
	if d.ledgerHook != nil {
		d.ledgerHook(copied, upserted)
	}
}

// splitProbablyNew divides folded rows into those that are probably a
// delivery's first row — a first attempt's outcome from its provider —
// and those that probably update one: a carrier's report (delivered,
// undelivered), a later attempt (a retrying row came before), a
// redelivery's receipt without a provider (the first send's row exists).
//
// A broadcast's batch is all fresh: rs itself is returned then, not a copy.
func splitProbablyNew(rs []producer.Delivery) (fresh, known []producer.Delivery) {
	isKnown := func(r *producer.Delivery) bool {
		return r.Status.Rank() > loa.StatusSent.Rank() || r.Attempts > 1 || r.Provider == ""
	}
	n := 0
	for i := range rs {
		if isKnown(&rs[i]) {
			n++
		}
	}
	if n == 0 {
		return rs, nil
	}
	fresh, known = make([]producer.Delivery, 0, len(rs)-n), make([]producer.Delivery, 0, n)
	for i := range rs {
		if isKnown(&rs[i]) {
			known = append(known, rs[i])
		} else {
			fresh = append(fresh, rs[i])
		}
	}
	return fresh, known
}

// deliveryColumns are the ledger's columns in the order of deliveryRows'
// values.
var deliveryColumns = []string{"notification_id", "channel", "recipient", "status", "class", "provider", "provider_id", "reason",
	"targets", "attempts", "updated_at"}

// deliveryRows is a COPY source of ledger rows. pgx encodes each row's
// values before asking for the next, so one slice serves every row.
type deliveryRows struct {
	rs   []producer.Delivery
	i    int
	vals [11]any
}

func (s *deliveryRows) Next() bool { s.i++; return s.i <= len(s.rs) }
func (s *deliveryRows) Err() error { return nil }
func (s *deliveryRows) Values() ([]any, error) {
	r := &s.rs[s.i-1]
	s.vals = [11]any{r.NotificationID, r.Channel, r.Recipient, string(r.Status), r.Class, r.Provider, r.ProviderID, r.Reason,
		int32(r.Targets), int32(r.Attempts), r.UpdatedAt.UTC()}
	return s.vals[:], nil
}

// upsertDeliveries is the upsert of rows, with RecordDelivery's precedence;
// the rows come from the statement's source (a VALUES list or unnest).
func upsertDeliveries(source string) string {
	return `INSERT INTO deliveries
		(notification_id, channel, recipient, status, class, provider, provider_id, reason, targets, attempts, updated_at)
		` + source + `
		ON CONFLICT (notification_id, channel, recipient) DO UPDATE SET
			status = excluded.status, class = excluded.class,
			provider = CASE WHEN excluded.provider = '' THEN deliveries.provider ELSE excluded.provider END,
			provider_id = CASE WHEN excluded.provider = '' THEN deliveries.provider_id ELSE excluded.provider_id END,
			reason = excluded.reason, targets = excluded.targets,
			attempts = CASE WHEN excluded.attempts > deliveries.attempts THEN excluded.attempts ELSE deliveries.attempts END,
			updated_at = excluded.updated_at
		WHERE ` + statusRank("deliveries.status") + ` = 0 OR ` + statusRank("excluded.status") + ` > ` + statusRank("deliveries.status")
}

// upsertDeliveriesSQL is the PostgreSQL upsert of rows given as arrays
// (deliveryArrays): its text does not depend on how many rows there are,
// so PostgreSQL parses and plans it once per connection (a VALUES list of
// 2,200 parameters was parsed and planned anew for each batch size, and
// each size was another prepared statement held by every connection).
var upsertDeliveriesSQL = upsertDeliveries(`SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
		$6::text[], $7::text[], $8::text[], $9::int[], $10::int[], $11::timestamptz[])`)

// deliveryArrays are rs's columns as the arrays upsertDeliveriesSQL takes.
func deliveryArrays(rs []producer.Delivery) []any {
	n := len(rs)
	var (
		notif, channel, recipient, status, class = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		provider, providerID, reason             = make([]string, n), make([]string, n), make([]string, n)
		targets, attempts                        = make([]int32, n), make([]int32, n)
		at                                       = make([]time.Time, n)
	)
	for i, r := range rs {
		notif[i], channel[i], recipient[i], status[i], class[i] = r.NotificationID, r.Channel, r.Recipient, string(r.Status), r.Class
		provider[i], providerID[i], reason[i] = r.Provider, r.ProviderID, r.Reason
		targets[i], attempts[i], at[i] = int32(r.Targets), int32(r.Attempts), r.UpdatedAt.UTC()
	}
	return []any{notif, channel, recipient, status, class, provider, providerID, reason, targets, attempts, at}
}

// upsertDeliveriesValues writes rs as VALUES lists of up to 200 rows (SQLite
// has no array parameters).
func upsertDeliveriesValues(ctx context.Context, tx *sql.Tx, rs []producer.Delivery) error {
	const perStatement = 200 // 11 parameters a row, well under the limit
	for start := 0; start < len(rs); start += perStatement {
		chunk := rs[start:min(start+perStatement, len(rs))]
		var (
			values strings.Builder
			args   = make([]any, 0, len(chunk)*11)
		)
		values.WriteString("VALUES ")
		for i, r := range chunk {
			if i > 0 {
				values.WriteString(", ")
			}
			n := i * 11
			fmt.Fprintf(&values, "($%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d)",
				n+1, n+2, n+3, n+4, n+5, n+6, n+7, n+8, n+9, n+10, n+11)
			args = append(args, r.NotificationID, r.Channel, r.Recipient, r.Status, r.Class, r.Provider, r.ProviderID, r.Reason,
				r.Targets, r.Attempts, r.UpdatedAt.UTC())
		}
		if _, err := tx.ExecContext(ctx, upsertDeliveries(values.String()), args...); err != nil {
			return err
		}
	}
	return nil
}

// foldDeliveries merges rows for the same delivery, in order, by the rule
// the upsert applies: one statement may not touch a row twice.
func foldDeliveries(rs []producer.Delivery) []producer.Delivery {
	type key struct{ n, c, r string }
	idx := make(map[key]int, len(rs))
	out := make([]producer.Delivery, 0, len(rs))
	for _, r := range rs {
		k := key{r.NotificationID, r.Channel, r.Recipient}
		i, seen := idx[k]
		if !seen {
			idx[k] = len(out)
			out = append(out, r)
			continue
		}
		prev := out[i]
		if prev.Status.Rank() != 0 && r.Status.Rank() <= prev.Status.Rank() {
			continue // the row would not change
		}
		if r.Provider == "" {
			r.Provider, r.ProviderID = prev.Provider, prev.ProviderID
		}
		r.Attempts = max(r.Attempts, prev.Attempts)
		out[i] = r
	}
	return out
}

// statusRank is the SQL form of loa.Status.Rank for the status held in
// column, for RecordDelivery's precedence.
func statusRank(column string) string {
	q := `(CASE ` + column
	for _, st := range loa.Ranked() {
		q += fmt.Sprintf(` WHEN '%s' THEN %d`, st, st.Rank())
	}
	return q + ` ELSE 0 END)`
}

// Deliveries returns the ledger rows of one notification ordered by
// channel and recipient.
func (d *DB) Deliveries(ctx context.Context, notificationID string) ([]producer.Delivery, error) {
	var (
		out []producer.Delivery
		err error
	)
	if d.dialect == Postgres {
		out, err = d.queryLedger(ctx, `notification_id = $1`, `c.notification_id = $1`, notificationID)
	} else {
		out, err = d.queryDeliveries(ctx, selectDelivery+` WHERE notification_id = $1 ORDER BY channel, recipient`, notificationID)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: deliveries: %w", err)
	}
	return out, nil
}

const selectDelivery = `SELECT notification_id, channel, recipient, status, class, provider,
	provider_id, reason, targets, attempts, updated_at FROM deliveries`

// queryDeliveries runs a query selecting selectDelivery's columns.
func (d *DB) queryDeliveries(ctx context.Context, q string, args ...any) ([]producer.Delivery, error) {
	rows, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []producer.Delivery
	for rows.Next() {
		var (
			r  producer.Delivery
			at timeValue
		)
		if err := rows.Scan(&r.NotificationID, &r.Channel, &r.Recipient, &r.Status, &r.Class, &r.Provider,
			&r.ProviderID, &r.Reason, &r.Targets, &r.Attempts, &at); err != nil {
			return nil, err
		}
		r.UpdatedAt = at.t
		out = append(out, r)
	}
	return out, rows.Err()
}
