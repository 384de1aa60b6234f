package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver
)

// Dialect names the SQL engine behind a DB.
type Dialect string

// The supported dialects.
const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = errors.New("sqlstore: not found")

// DB is an open store. It is safe for concurrent use.
type DB struct {
	db      *sql.DB
	dialect Dialect
	now     func() time.Time
	// audienceHook, when set (by tests), sees each audience page query
	// before it runs, on the connection it runs on.
	audienceHook func(ctx context.Context, conn queryer, q string, args []any)
	// ledgerHook, when set (by tests), learns how each batch of ledger
	// rows was written on PostgreSQL: how many rows by COPY, how many by
	// the upsert.
	ledgerHook func(copied, upserted int)
	// openHook, when set (by tests), learns how many compact entries
	// the live counts open to find the addresses that also have a row.
	openHook func(entries int)
	// trees caches the area trees of audiences (see subtree).
	trees areaTreeCache
}

// queryer runs a query: the database or a transaction.
type queryer interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}

//go:embed migrations
var migrations embed.FS

// Open connects to the database named by url: "postgres://…" or
// "postgresql://…" for PostgreSQL, "sqlite:PATH" or "file:PATH" for SQLite
// (the directory of PATH is created). It pings the database before
// returning. It does not migrate; call Migrate.
func Open(ctx context.Context, url string) (*DB, error) {
	var (
		driver, dsn string
		dialect     Dialect
	)
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		driver, dsn, dialect = "pgx", url, Postgres
	case strings.HasPrefix(url, "sqlite:"), strings.HasPrefix(url, "file:"):
		path := strings.TrimPrefix(strings.TrimPrefix(url, "sqlite:"), "file:")
		query := ""
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path, query = path[:i], path[i+1:]
		}
		if path == "" {
			return nil, fmt.Errorf("sqlstore: open: empty SQLite path in %q", url)
		}
		if dir := filepath.Dir(path); dir != "." {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return nil, fmt.Errorf("sqlstore: open: %w", err)
			}
		}
		// WAL lets readers run beside the one writer; busy_timeout makes a
		// second writer wait instead of failing with SQLITE_BUSY.
		params := "_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_txlock=immediate"
		if query != "" {
			params += "&" + query
		}
		driver, dsn, dialect = "sqlite", "file:"+path+"?"+params, SQLite
	default:
		return nil, fmt.Errorf("sqlstore: open: unsupported database URL %q (want postgres://… or sqlite:PATH)", redactURL(url))
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open: %w", err)
	}
	if dialect == SQLite {
		// One writer at a time is SQLite's model; a single connection
		// serialises writers in Go instead of in busy loops.
		db.SetMaxOpenConns(1)
	} else {
		// Keep as many idle as open: database/sql's default of two idle
		// connections makes concurrent writers (the ledger) close and
		// reopen connections, each paying SCRAM authentication.
		db.SetMaxOpenConns(20)
		db.SetMaxIdleConns(20)
		db.SetConnMaxIdleTime(5 * time.Minute)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlstore: open %s: %w", redactURL(url), err)
	}
	return &DB{db: db, dialect: dialect, now: time.Now}, nil
}

// redactURL hides a password in a connection URL for error messages.
func redactURL(u string) string {
	at := strings.LastIndexByte(u, '@')
	scheme := strings.Index(u, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return u
	}
	userinfo := u[scheme+3 : at]
	if i := strings.IndexByte(userinfo, ':'); i >= 0 {
		return u[:scheme+3] + userinfo[:i] + ":xxxxx" + u[at:]
	}
	return u
}

// SetMaxConns sets how many connections the store opens at most (and
// keeps idle) on PostgreSQL; SQLite keeps its one.
func (d *DB) SetMaxConns(n int) {
	if d.dialect == Postgres && n > 0 {
		d.db.SetMaxOpenConns(n)
		d.db.SetMaxIdleConns(n)
	}
}

// Dialect reports which engine the store runs on.
func (d *DB) Dialect() Dialect { return d.dialect }

// SQL returns the underlying handle, for packages that keep their own
// queries beside their domain.
func (d *DB) SQL() *sql.DB { return d.db }

// Ping checks that the database answers.
func (d *DB) Ping(ctx context.Context) error { return d.db.PingContext(ctx) }

// Close closes the connection pool.
func (d *DB) Close() error { return d.db.Close() }

// Migrate applies the embedded migrations of the store's dialect that
// have not been applied yet, each in its own transaction, in file-name
// order. It is safe to run concurrently from several processes on
// PostgreSQL (an advisory lock serialises them).
func (d *DB) Migrate(ctx context.Context) error {
	dir := "migrations/" + string(d.dialect)
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sql") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)

	conn, err := d.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	defer conn.Close()
	if d.dialect == Postgres {
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(7411001)`); err != nil {
			return fmt.Errorf("sqlstore: migrate: lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(7411001)`)
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version TEXT PRIMARY KEY, applied_at TIMESTAMP NOT NULL)`); err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	for _, name := range names {
		var n int
		if err := conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = $1`, name).Scan(&n); err != nil {
			return fmt.Errorf("sqlstore: migrate: %w", err)
		}
		if n > 0 {
			continue
		}
		body, err := migrations.ReadFile(dir + "/" + name)
		if err != nil {
			return fmt.Errorf("sqlstore: migrate: %w", err)
		}
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("sqlstore: migrate %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("sqlstore: migrate %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, name, d.now().UTC()); err != nil {
			tx.Rollback()
			return fmt.Errorf("sqlstore: migrate %s: %w", name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("sqlstore: migrate %s: %w", name, err)
		}
	}
	return nil
}
