package instance

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions configures StartRedis.
type RedisOptions struct {
	// Port to listen on; a free one when 0.
	Port int
	// AOF turns on the append-only file (appendfsync everysec): every
	// write Redis acknowledged survives a crash of the server process
	// (the OS still holds it), and up to a second of writes a crash of the
	// machine. Without it a restart starts empty.
	AOF bool
	// Args are extra redis-server arguments, e.g. "--replicaof",
	// "127.0.0.1", "6380".
	Args []string
	// Sentinel runs a Sentinel instead of a server; Args then usually
	// name nothing, and SentinelMonitor is required.
	Sentinel bool
	// SentinelMonitor is the Sentinel's monitor line for a master:
	// "name host port quorum".
	SentinelMonitor string
	// SentinelDownAfter is how long the master must not answer before a
	// Sentinel calls it down; 1 s when 0.
	SentinelDownAfter time.Duration
}

// Redis is a throwaway redis-server (or Sentinel) in a temporary
// directory.
type Redis struct {
	Port int
	Dir  string

	opts RedisOptions
	p    *Process
}

// StartRedis starts a server. Call Close when done.
func StartRedis(ctx context.Context, opts RedisOptions) (*Redis, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, fmt.Errorf("%w: redis-server", ErrMissing)
	}
	r := &Redis{opts: opts, Port: opts.Port}
	var err error
	if r.Port == 0 {
		if r.Port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	if r.Dir, err = tempDir("loa-redis-", nil); err != nil {
		return nil, err
	}
	if opts.Sentinel {
		if opts.SentinelMonitor == "" {
			os.RemoveAll(r.Dir)
			return nil, fmt.Errorf("instance: a Sentinel needs SentinelMonitor")
		}
		if err := r.writeSentinelConfig(); err != nil {
			os.RemoveAll(r.Dir)
			return nil, err
		}
	}
	if err := r.Start(ctx); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// writeSentinelConfig writes the Sentinel's configuration file, which the
// Sentinel rewrites as it learns the topology.
func (r *Redis) writeSentinelConfig() error {
	down := r.opts.SentinelDownAfter
	if down == 0 {
		down = time.Second
	}
	name := firstField(r.opts.SentinelMonitor)
	conf := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor %s\n"+
		"sentinel down-after-milliseconds %s %d\nsentinel failover-timeout %s 10000\nsentinel parallel-syncs %s 1\n",
		r.Port, r.Dir, r.opts.SentinelMonitor, name, down.Milliseconds(), name, name)
	return os.WriteFile(r.sentinelConfig(), []byte(conf), 0o644)
}

func firstField(s string) string {
	for i := range len(s) {
		if s[i] == ' ' {
			return s[:i]
		}
	}
	return s
}

func (r *Redis) sentinelConfig() string { return filepath.Join(r.Dir, "sentinel.conf") }

// LogPath is the server's log.
func (r *Redis) LogPath() string { return filepath.Join(r.Dir, "redis.log") }

// Addr is host:port.
func (r *Redis) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.Port) }

// URL is redis://host:port/0.
func (r *Redis) URL() string { return "redis://" + r.Addr() + "/0" }

// PID is the server's process id, 0 when it is not running.
func (r *Redis) PID() int {
	if r.p == nil || r.p.Exited() {
		return 0
	}
	return r.p.PID()
}

// Start starts the server on its directory (an AOF server reloads its
// data) and waits until it answers PING.
func (r *Redis) Start(ctx context.Context) error {
	if r.PID() != 0 {
		return nil
	}
	var args []string
	if r.opts.Sentinel {
		bin := "redis-sentinel"
		if _, err := exec.LookPath(bin); err != nil {
			// Debian's redis-sentinel is redis-server under another name.
			args = []string{"redis-server", r.sentinelConfig(), "--sentinel"}
		} else {
			args = []string{bin, r.sentinelConfig()}
		}
	} else {
		aof := "no"
		if r.opts.AOF {
			aof = "yes"
		}
		args = []string{"redis-server", "--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1", "--dir", r.Dir,
			"--save", "", "--appendonly", aof, "--appendfsync", "everysec", "--daemonize", "no",
			"--protected-mode", "no"}
	}
	args = append(args, r.opts.Args...)
	p, err := StartProcess(r.LogPath(), nil, nil, args...)
	if err != nil {
		return err
	}
	r.p = p
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return p.WaitReady(ctx, "redis", r.LogPath(), func(ctx context.Context) error {
		c := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1, DialTimeout: time.Second})
		defer c.Close()
		return c.Ping(ctx).Err() // LOADING while an AOF is read back
	})
}

// Kill ends the server with SIGKILL: without AOF everything it held is
// gone at the next Start.
func (r *Redis) Kill() {
	if r.p != nil {
		r.p.Kill()
	}
}

// Stop shuts the server down cleanly (SIGTERM: an AOF server flushes).
func (r *Redis) Stop() {
	if r.p != nil {
		r.p.Stop(syscall.SIGTERM, 10*time.Second)
	}
}

// Restart kills the server, waits down, and starts it again.
func (r *Redis) Restart(ctx context.Context, down time.Duration) error {
	r.Kill()
	select {
	case <-time.After(down):
	case <-ctx.Done():
		return ctx.Err()
	}
	return r.Start(ctx)
}

// Close kills the server and removes its directory.
func (r *Redis) Close() {
	r.Kill()
	os.RemoveAll(r.Dir)
}
