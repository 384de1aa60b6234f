package sqlstore

import (
	"context"
	"database/sql"
	"strings"

	"github.com/loa-hub/loa/producer/feedback"
)

// SetAudienceHook has f see each audience page query before it runs, on
// the connection (a *sql.DB or a *sql.Tx) it runs on.
func SetAudienceHook(d *DB, f func(ctx context.Context, conn interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, q string, args []any)) {
	if f == nil {
		d.audienceHook = nil
		return
	}
	d.audienceHook = func(ctx context.Context, conn queryer, q string, args []any) { f(ctx, conn, q, args) }
}

// SetLedgerHook has f learn how each batch of ledger rows is written on
// PostgreSQL: how many rows by COPY, how many by the upsert.
func SetLedgerHook(d *DB, f func(copied, upserted int)) { d.ledgerHook = f }

// SetOpenHook has f learn how many compact entries each count of a
// notification with both entries and rows opens (PostgreSQL).
func SetOpenHook(d *DB, f func(entries int)) { d.openHook = f }

// AddressHash is addressHash: what a compact entry keeps of each address.
func AddressHash(s string) uint32 { return addressHash(s) }

// Exec runs q on d's pool: for tests that set up what an older schema
// held.
func Exec(d *DB, q string, args ...any) error {
	_, err := d.db.ExecContext(context.Background(), q, args...)
	return err
}

// ListFeedbackQuery is the query ListFeedback runs for f.
func ListFeedbackQuery(f feedback.Filter) (string, []any) { return listFeedbackQuery(f) }

// QueryRow runs q on d's pool.
func QueryRow(d *DB, q string, args ...any) *sql.Row {
	return d.db.QueryRowContext(context.Background(), q, args...)
}

// ExplainSentJoin is PostgreSQL's plan of the join that counts a
// notification's addresses with both a row and a compact entry, as the
// counts run it.
func ExplainSentJoin(ctx context.Context, d *DB, id string) (string, error) {
	digests, err := d.entriesWithRows(ctx, id, []string{"push"})
	if err != nil {
		return "", err
	}
	var plan []string
	err = d.sentJoin(ctx, "EXPLAIN "+sentJoinSQL, []any{id, digests}, func(rows *sql.Rows) error {
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				return err
			}
			plan = append(plan, line)
		}
		return nil
	})
	return strings.Join(plan, "\n"), err
}
