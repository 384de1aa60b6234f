package sqlstore

import (
	"context"
	"database/sql"
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
