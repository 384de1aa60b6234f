// Package sqlstore is Loa's durable store: notifications, the delivery
// ledger, API keys, and (as the domains grow) accounts and devices. One set
// of queries runs on PostgreSQL (production, through pgx) and on SQLite
// (the embedded default for `loa dev`, pure Go); the schema is applied by
// per-dialect migrations embedded in the binary.
//
// Queries use PostgreSQL-style $N placeholders, which the SQLite driver
// accepts too. Every method is safe for concurrent use.
package sqlstore
