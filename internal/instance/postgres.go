package instance

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresOptions configures StartPostgres. The zero value is usable.
type PostgresOptions struct {
	// Port to listen on; a free one when 0.
	Port int
	// Args are extra server settings, "name=value" (passed as -c).
	Args []string
	// StartTimeout bounds each start; 60 s when 0.
	StartTimeout time.Duration
}

// Postgres is a throwaway PostgreSQL server: a cluster made by initdb in a
// temporary directory, a superuser loa without password (trust, on
// 127.0.0.1 only) and a database loa.
type Postgres struct {
	Port int
	Dir  string // the temporary directory: data/ and the server's log

	bin   string
	cred  *syscall.Credential
	opts  PostgresOptions
	p     *Process
	extra []string
}

// PostgresBin returns the directory of PostgreSQL's server programs:
// LOA_TEST_PG_BIN, else the highest version under /usr/lib/postgresql.
func PostgresBin() (string, error) {
	if b := os.Getenv("LOA_TEST_PG_BIN"); b != "" {
		return b, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi < vj
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("%w: PostgreSQL's initdb (set LOA_TEST_PG_BIN)", ErrMissing)
}

// StartPostgres makes a new cluster and starts it. Call Close when done.
func StartPostgres(ctx context.Context, opts PostgresOptions) (*Postgres, error) {
	bin, err := PostgresBin()
	if err != nil {
		return nil, err
	}
	pg := &Postgres{bin: bin, opts: opts, Port: opts.Port}
	if os.Geteuid() == 0 {
		if pg.cred, err = userCredential("postgres"); err != nil {
			return nil, err
		}
	}
	if pg.Port == 0 {
		if pg.Port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	if pg.Dir, err = tempDir("loa-pg-", pg.cred); err != nil {
		return nil, err
	}
	if err := pg.initdb(ctx); err != nil {
		os.RemoveAll(pg.Dir)
		return nil, err
	}
	if err := pg.Start(ctx); err != nil {
		pg.Close()
		return nil, err
	}
	if err := pg.CreateDatabase(ctx, "loa"); err != nil {
		pg.Close()
		return nil, err
	}
	return pg, nil
}

// DataDir is the cluster's data directory.
func (pg *Postgres) DataDir() string { return filepath.Join(pg.Dir, "data") }

// LogPath is the server's log.
func (pg *Postgres) LogPath() string { return filepath.Join(pg.Dir, "postgres.log") }

// Bin returns the path of one of PostgreSQL's programs (pg_dump,
// pg_restore, psql …) of the same version as the server.
func (pg *Postgres) Bin(program string) string { return filepath.Join(pg.bin, program) }

// Credential is the user the server runs as (nil: this process's).
func (pg *Postgres) Credential() *syscall.Credential { return pg.cred }

func (pg *Postgres) initdb(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, pg.Bin("initdb"), "-D", pg.DataDir(), "-U", "loa", "--auth=trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	cmd.Dir = pg.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pg.cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("instance: initdb: %w\n%s", err, out)
	}
	return nil
}

// URL returns a connection URL for database db.
func (pg *Postgres) URL(db string) string {
	return fmt.Sprintf("postgres://loa@127.0.0.1:%d/%s?sslmode=disable", pg.Port, db)
}

// PID is the postmaster's process id, 0 when it is not running.
func (pg *Postgres) PID() int {
	if pg.p == nil || pg.p.Exited() {
		return 0
	}
	return pg.p.PID()
}

// Start starts the server on its data directory and waits until it takes
// connections. It is what brings a crashed or stopped server back.
func (pg *Postgres) Start(ctx context.Context) error {
	if pg.PID() != 0 {
		return nil
	}
	args := []string{pg.Bin("postgres"), "-D", pg.DataDir(), "-p", strconv.Itoa(pg.Port), "-k", pg.Dir,
		"-c", "listen_addresses=127.0.0.1",
		// A process crash keeps what the OS has; these throwaway servers
		// need not survive the machine's.
		"-c", "fsync=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "shared_buffers=128MB",
		"-c", "log_min_messages=warning", "-c", "log_checkpoints=off"}
	for _, a := range pg.opts.Args {
		args = append(args, "-c", a)
	}
	for _, a := range pg.extra {
		args = append(args, "-c", a)
	}
	p, err := StartProcess(pg.LogPath(), pg.cred, nil, args...)
	if err != nil {
		return err
	}
	pg.p = p
	timeout := pg.opts.StartTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return p.WaitReady(ctx, "postgres", pg.LogPath(), func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		c, err := pgx.Connect(cctx, pg.URL("postgres"))
		if err != nil {
			return err
		}
		return c.Close(cctx)
	})
}

// Stop shuts the server down cleanly (fast shutdown: sessions are ended,
// a checkpoint is written).
func (pg *Postgres) Stop() {
	if pg.p != nil {
		pg.p.Stop(syscall.SIGINT, 30*time.Second)
	}
}

// Crash stops the server the way a crash does: an immediate shutdown
// kills every backend at once, writes nothing, and the next Start replays
// the WAL. Open connections are cut.
func (pg *Postgres) Crash() {
	if pg.p != nil {
		pg.p.Stop(syscall.SIGQUIT, 30*time.Second)
	}
}

// Restart crashes the server, waits down, and starts it again.
func (pg *Postgres) Restart(ctx context.Context, down time.Duration) error {
	pg.Crash()
	select {
	case <-time.After(down):
	case <-ctx.Done():
		return ctx.Err()
	}
	return pg.Start(ctx)
}

// SetArgs sets extra server settings for the next Start (on top of the
// options'), e.g. a standby's primary_conninfo.
func (pg *Postgres) SetArgs(args ...string) { pg.extra = args }

// StartStandby makes a streaming replica of primary (pg_basebackup, with
// its primary_conninfo) in a directory of its own and starts it, read
// only, on a free port. Promote makes it the primary. Call Close when
// done.
func StartStandby(ctx context.Context, primary *Postgres) (*Postgres, error) {
	sb := &Postgres{bin: primary.bin, cred: primary.cred, opts: PostgresOptions{Args: primary.opts.Args, StartTimeout: primary.opts.StartTimeout}}
	var err error
	if sb.Port, err = FreePort(); err != nil {
		return nil, err
	}
	if sb.Dir, err = tempDir("loa-pg-standby-", sb.cred); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, sb.Bin("pg_basebackup"), "-h", "127.0.0.1", "-p", strconv.Itoa(primary.Port), "-U", "loa",
		"-D", sb.DataDir(), "-R", "-X", "stream", "--no-sync", "-c", "fast")
	cmd.Dir = sb.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: sb.cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(sb.Dir)
		return nil, fmt.Errorf("instance: pg_basebackup: %w\n%s", err, out)
	}
	if err := sb.Start(ctx); err != nil {
		sb.Close()
		return nil, err
	}
	return sb, nil
}

// Exec runs statements on database db as the superuser.
func (pg *Postgres) Exec(ctx context.Context, db, sql string) error {
	c, err := pgx.Connect(ctx, pg.URL(db))
	if err != nil {
		return fmt.Errorf("instance: %w", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql); err != nil {
		return fmt.Errorf("instance: %w", err)
	}
	return nil
}

// SetSynchronousStandby makes every commit wait until a standby has it
// (synchronous_standby_names = '*'): a primary that crashes has lost no
// acknowledged commit its standby lacks. With no standby connected,
// commits wait.
func (pg *Postgres) SetSynchronousStandby(ctx context.Context) error {
	if err := pg.Exec(ctx, "postgres", "ALTER SYSTEM SET synchronous_standby_names = '*'"); err != nil {
		return err
	}
	if err := pg.Exec(ctx, "postgres", "SELECT pg_reload_conf()"); err != nil {
		return err
	}
	// A reload is only signalled: commits wait for the standby once the
	// primary reports it synchronous, not when pg_reload_conf returns.
	c, err := pgx.Connect(ctx, pg.URL("postgres"))
	if err != nil {
		return fmt.Errorf("instance: %w", err)
	}
	defer c.Close(ctx)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var n int
		if err := c.QueryRow(ctx, "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'").Scan(&n); err != nil {
			return fmt.Errorf("instance: %w", err)
		}
		if n > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("instance: no synchronous standby: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// Promote ends a standby's recovery and makes it a primary that takes
// writes, waiting until it does.
func (pg *Postgres) Promote(ctx context.Context) error {
	return pg.Exec(ctx, "postgres", "SELECT pg_promote(true, 60)")
}

// CreateDatabase creates database name, owned by loa.
func (pg *Postgres) CreateDatabase(ctx context.Context, name string) error {
	c, err := pgx.Connect(ctx, pg.URL("postgres"))
	if err != nil {
		return fmt.Errorf("instance: %w", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("instance: create database %s: %w", name, err)
	}
	return nil
}

// Close stops the server and removes its directory.
func (pg *Postgres) Close() {
	if pg.p != nil {
		pg.p.Stop(syscall.SIGQUIT, 10*time.Second)
	}
	os.RemoveAll(pg.Dir)
}
