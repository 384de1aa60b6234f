// Package quota bounds how many requests one client address makes in a
// short fixed window, counted across every replica in Redis, with a
// local fast path: a replica adds an address's requests to the shared
// count in batches, so an address that makes a few requests a window
// costs no Redis call at all.
package quota

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config is a per-address quota.
type Config struct {
	// Limit is how many requests one address may make in a Window, all
	// replicas together. 0 turns the quota off.
	Limit int
	// Window is the fixed window, aligned to the epoch: a refused address
	// waits at most this long.
	Window time.Duration
	// Batch is how many of an address's requests a replica lets through
	// before it adds them to the shared count (and learns it): the fast
	// path. An address may exceed Limit by at most Batch-1 a replica.
	Batch int
	// MaxLocal bounds the addresses a replica keeps counts for in a
	// window; past it a new address is counted in Redis request by
	// request, so a flood of addresses costs Redis calls, not memory.
	MaxLocal int
	// CallTimeout bounds one Redis call. When Redis fails, the replica
	// counts alone: an address is refused past Limit on this replica.
	CallTimeout time.Duration
}

// DefaultConfig is 300 requests an address per 10 seconds (a sustained 30
// a second), counted in batches of 20, for 100,000 addresses a window.
func DefaultConfig() Config {
	return Config{Limit: 300, Window: 10 * time.Second, Batch: 20, MaxLocal: 100_000, CallTimeout: 200 * time.Millisecond}
}

// Validate reports a quota that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Limit < 0:
		return fmt.Errorf("quota: a negative limit (%d)", c.Limit)
	case c.Limit == 0:
		return nil
	case c.Window < time.Second || c.Window > time.Hour:
		return fmt.Errorf("quota: the window %v is not from 1s to 1h", c.Window)
	case c.Batch < 1 || c.MaxLocal < 1 || c.CallTimeout <= 0:
		return fmt.Errorf("quota: batch %d, local addresses %d and call timeout %v must be positive", c.Batch, c.MaxLocal, c.CallTimeout)
	}
	return nil
}

// Observer learns what the quota does; a nil Observer is allowed.
type Observer interface {
	// QuotaRefused counts a refused request.
	QuotaRefused()
	// QuotaCall counts a call to Redis; failed says it did not answer.
	QuotaCall(failed bool)
}

// Quota counts requests per address. Safe for concurrent use.
type Quota struct {
	cfg    Config
	rdb    redis.UniversalClient
	prefix string
	obs    observer
	now    func() time.Time

	mu     sync.Mutex
	window int64
	counts map[string]*count
}

// count is what a replica knows of one address in the current window.
type count struct {
	shared  int  // the shared count at the last sync
	pending int  // requests let through and not yet added to it
	syncAt  int  // pending at which the next sync starts (Batch; later after a failed one)
	syncing bool // a sync is under way
	refused bool // the shared count is past the limit: refuse until the window ends
}

// observer calls an Observer that may be nil.
type observer struct{ Observer }

// New returns a quota counted in rdb under keys starting with prefix.
// cfg must pass Validate.
func New(cfg Config, rdb redis.UniversalClient, prefix string, obs Observer) *Quota {
	return &Quota{cfg: cfg, rdb: rdb, prefix: prefix, obs: observer{obs}, now: time.Now, counts: map[string]*count{}}
}

// SetClock replaces the clock (tests).
func (q *Quota) SetClock(now func() time.Time) { q.now = now }

// Allow counts one request of addr and reports whether it may go on; when
// not, how long until the window ends. Requests of an address without a
// key ("") are let through uncounted. It never fails: when Redis does not
// answer, the replica's own count decides.
func (q *Quota) Allow(ctx context.Context, addr string) (bool, time.Duration) {
	if q == nil || q.cfg.Limit == 0 || addr == "" {
		return true, 0
	}
	now := q.now()
	win := now.UnixNano() / int64(q.cfg.Window)
	wait := time.Duration((win+1)*int64(q.cfg.Window) - now.UnixNano())
	q.mu.Lock()
	if win != q.window {
		q.window, q.counts = win, make(map[string]*count, len(q.counts))
	}
	c := q.counts[addr]
	if c == nil {
		if len(q.counts) >= q.cfg.MaxLocal {
			q.mu.Unlock()
			return q.allowRemote(ctx, addr, win, wait)
		}
		c = &count{syncAt: q.cfg.Batch}
		q.counts[addr] = c
	}
	if c.refused || c.shared+c.pending >= q.cfg.Limit {
		c.refused = true
		q.mu.Unlock()
		q.obs.refused()
		return false, wait
	}
	c.pending++
	if c.pending < c.syncAt || c.syncing {
		q.mu.Unlock()
		return true, 0
	}
	n := c.pending
	c.syncing = true
	q.mu.Unlock()

	total, err := q.add(ctx, addr, win, n)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.window != win {
		return true, 0 // a new window began meanwhile
	}
	c.syncing = false
	if err != nil {
		// Counted alone: pending keeps growing towards Limit, and the
		// next try waits for another batch.
		c.syncAt = c.pending + q.cfg.Batch
		return true, 0
	}
	c.shared, c.pending, c.syncAt = total, c.pending-n, q.cfg.Batch
	if total > q.cfg.Limit {
		c.refused = true
		q.obs.refused()
		return false, wait
	}
	return true, 0
}

// allowRemote counts one request of an address the replica keeps no
// count for (past MaxLocal) in Redis alone; when Redis fails it lets the
// request through.
func (q *Quota) allowRemote(ctx context.Context, addr string, win int64, wait time.Duration) (bool, time.Duration) {
	total, err := q.add(ctx, addr, win, 1)
	if err != nil || total <= q.cfg.Limit {
		return true, 0
	}
	q.obs.refused()
	return false, wait
}

// add adds n requests to addr's shared count of window win and returns
// the count; the key expires two windows on.
func (q *Quota) add(ctx context.Context, addr string, win int64, n int) (int, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), q.cfg.CallTimeout)
	defer cancel()
	key := q.prefix + "quota:" + strconv.FormatInt(win, 36) + ":" + addr
	pipe := q.rdb.Pipeline()
	incr := pipe.IncrBy(ctx, key, int64(n))
	pipe.Expire(ctx, key, 2*q.cfg.Window)
	_, err := pipe.Exec(ctx)
	q.obs.call(err != nil)
	if err != nil {
		return 0, fmt.Errorf("quota: %w", err)
	}
	return int(incr.Val()), nil
}

func (o observer) refused() {
	if o.Observer != nil {
		o.QuotaRefused()
	}
}

func (o observer) call(failed bool) {
	if o.Observer != nil {
		o.QuotaCall(failed)
	}
}

// AddrKey is the key a client address is counted under: an IPv4 address
// as it is, an IPv6 address by its /64 (what one subscriber holds); ""
// for what is not an address.
func AddrKey(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		ap, perr := netip.ParseAddrPort(ip)
		if perr != nil {
			return ""
		}
		addr = ap.Addr()
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is4() {
		return addr.String()
	}
	p, err := addr.Prefix(64)
	if err != nil {
		return ""
	}
	return p.String()
}
