package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/internal/metrics"
)

// Limit is a rate with a burst, and the part of the burst kept for
// urgent sends.
type Limit struct {
	PerSecond float64
	Burst     int // tokens the bucket holds; the most sends at once
	// Reserve is how many of the bucket's tokens only Urgent sends (codes,
	// alerts) may take: Standard and Bulk sends find the bucket empty when
	// it holds Reserve tokens or fewer. At most Burst-1.
	Reserve int
}

// Validate reports a limit that cannot work.
func (l Limit) Validate() error {
	switch {
	case l.PerSecond <= 0 || l.Burst < 1:
		return fmt.Errorf("ratelimit: need a positive rate and a burst of at least 1, got %v/s burst %d", l.PerSecond, l.Burst)
	case l.Reserve < 0 || (l.Reserve > 0 && l.Reserve >= l.Burst):
		return fmt.Errorf("ratelimit: the reserve for urgent sends must be in [0, burst), got %d of %d", l.Reserve, l.Burst)
	}
	return nil
}

// ReserveOf returns the reserve that is share (0–1) of burst, rounded up
// and at most burst-1, so other sends always keep at least one token.
func ReserveOf(burst int, share float64) int {
	if share <= 0 || burst <= 1 {
		return 0
	}
	return min(int(math.Ceil(share*float64(burst))), burst-1)
}

// Defaults of Options.
const (
	DefaultLease       = 100 * time.Millisecond
	DefaultCallTimeout = 500 * time.Millisecond
	DefaultProbe       = time.Second
)

// replicaWindow is how long a replica counts as alive after its last call
// to the bucket: the local bucket a replica falls back to divides the
// rate by the replicas seen within it.
const replicaWindow = 30 * time.Second

// Options tune a Limiter; the zero value takes the defaults.
type Options struct {
	// Name is the provider, for metrics and logs.
	Name string
	// Lease is how long a replica may hold tokens it took from the shared
	// bucket before it gives back those it did not use (DefaultLease). A
	// lease is at most Lease's worth of the rate.
	Lease time.Duration
	// CallTimeout bounds one call to Redis (DefaultCallTimeout); a call
	// that fails or takes longer puts the limiter on its local bucket.
	CallTimeout time.Duration
	// Probe is how often a limiter on its local bucket tries Redis again
	// (DefaultProbe).
	Probe time.Duration
	// Replica identifies this process among those sharing the bucket;
	// random when empty.
	Replica string
	Metrics *metrics.Metrics
	// Log receives the changes to and from the local bucket; nothing is
	// logged when nil.
	Log *slog.Logger
}

// Limiter is one provider's token bucket, shared in Redis by every
// replica. Safe for concurrent use.
//
// A replica does not call Redis for each send: one goroutine takes tokens
// in leases — as many as are waiting, or as the replica used in the last
// lease period, up to Lease's worth of the rate — and hands them out
// locally, urgent sends first, then standard, then bulk (first come, first
// served within a rank). While sends keep taking tokens, the replica
// renews its lease a quarter of a period before it ends, topped up to
// what it used in the last period, so a steady flow (codes at hundreds a
// second) finds tokens in hand at the turn of a lease instead of waiting
// for a call to Redis; when sends stop, the tokens not used go back to the
// bucket within two periods. The shared rate is exact: every send spends
// a token taken from the shared bucket, and a replica holds at most a
// lease's worth that others cannot use meanwhile.
//
// In the shared bucket, Standard and Bulk leases never take its last
// Reserve tokens, and take nothing while an urgent send of any replica
// waits for tokens (and Bulk nothing while a Standard one waits): a
// replica whose urgent lease comes back short marks the bucket until it
// is due to call again plus five lease periods (a replica slowed down,
// or gone, does not hold the others off for longer); it clears its mark
// when a lease serves all its urgent sends. A replica kept off asks again
// every lease period.
//
// When Redis fails or does not answer within CallTimeout, the limiter
// runs on a local bucket of the shared rate divided by the replicas seen
// in the last 30 s, says so in the log and in loa_ratelimit_local, and
// tries Redis again every Probe. Redis's failure is never a send's
// failure: Wait returns an error only when ctx ends.
type Limiter struct {
	rdb      redis.UniversalClient
	keys     []string // the bucket, the replicas seen
	limit    Limit
	o        Options
	leaseMax int // most tokens one lease takes
	hold     time.Duration
	calls    atomic.Int64                 // calls to Redis, for tests
	granted  [channels.Ranks]atomic.Int64 // tokens handed out, by rank, for tests
	// leased, for tests, is told of every lease the shared bucket answered.
	leased func(r channels.Rank, want int, more bool, got int)

	mu       sync.Mutex
	queue    [channels.Ranks]fifo
	pool     [channels.Ranks]int // tokens held, by the rank they were leased for
	heldTill time.Time           // when the tokens held go back
	renewed  time.Time           // the heldTill whose renewal was tried
	used     [channels.Ranks]int // handed out in this demand window
	demand   [channels.Ranks]int // handed out in the last one
	window   time.Time           // end of the demand window
	running  bool                // the fetcher runs
	sleeping channels.Rank       // the rank the fetcher waits for; Ranks when idle
	kick     chan struct{}

	replicas  int // replicas sharing the bucket, as last seen
	local     bool
	probing   bool
	nextProbe time.Time
	lTokens   float64 // the local bucket
	lAt       time.Time
}

// waiter is one send waiting for a token.
type waiter struct {
	ready   chan struct{} // closed when granted
	granted bool
	from    channels.Rank // the pool its token came from
	gone    bool          // gave up before it was granted
}

// fifo is a queue of waiters; those that gave up stay in it, marked, until
// they reach the head.
type fifo struct {
	items []*waiter
	head  int
	live  int
}

func (q *fifo) push(w *waiter) { q.items = append(q.items, w); q.live++ }

// peek returns the first waiter that has not given up.
func (q *fifo) peek() *waiter {
	for q.head < len(q.items) {
		if w := q.items[q.head]; !w.gone {
			return w
		}
		q.items[q.head] = nil
		q.head++
	}
	q.items, q.head = q.items[:0], 0
	return nil
}

func (q *fifo) pop() {
	q.items[q.head] = nil
	q.head++
	q.live--
	if q.head > 1024 && q.head*2 > len(q.items) {
		q.items = append(q.items[:0], q.items[q.head:]...)
		q.head = 0
	}
}

// NewLimiter returns the bucket named key on rdb.
func NewLimiter(rdb redis.UniversalClient, key string, l Limit, o Options) (*Limiter, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	if o.Probe <= 0 {
		o.Probe = DefaultProbe
	}
	if o.Replica == "" {
		b := make([]byte, 8)
		rand.Read(b)
		o.Replica = hex.EncodeToString(b)
	}
	if o.Name == "" {
		o.Name = key
	}
	leaseMax := int(math.Ceil(l.PerSecond * o.Lease.Seconds()))
	leaseMax = max(1, min(leaseMax, l.Burst-l.Reserve))
	return &Limiter{
		rdb: rdb, keys: []string{key, key + ":replicas"}, limit: l, o: o, leaseMax: leaseMax,
		hold: 5 * o.Lease, kick: make(chan struct{}, 1), replicas: 1, sleeping: channels.Ranks,
	}, nil
}

// Wait takes a token for a send of rank r, waiting until one is there or
// ctx ends. It returns how long it waited, and an error only when ctx
// ended first.
func (l *Limiter) Wait(ctx context.Context, r channels.Rank) (time.Duration, error) {
	r = min(max(r, channels.Urgent), channels.Bulk)
	l.mu.Lock()
	if l.takeLocked(r, time.Now()) {
		l.mu.Unlock()
		return 0, nil
	}
	start := time.Now()
	w := &waiter{ready: make(chan struct{})}
	l.queue[r].push(w)
	if !l.running {
		l.running = true
		go l.fetch()
	} else if r < l.sleeping {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
	l.mu.Unlock()
	select {
	case <-w.ready:
		return time.Since(start), nil
	case <-ctx.Done():
		l.mu.Lock()
		if w.granted {
			l.pool[w.from]++ // granted as we gave up: the next waiter has it
			l.dispenseLocked()
		} else {
			w.gone = true
			l.queue[r].live--
		}
		l.mu.Unlock()
		return time.Since(start), ctx.Err()
	}
}

// takeLocked hands a held token to a send of rank r that nobody of its
// rank or above is queued before.
func (l *Limiter) takeLocked(r channels.Rank, now time.Time) bool {
	for q := channels.Urgent; q <= r; q++ {
		if l.queue[q].live > 0 {
			return false
		}
	}
	if now.After(l.heldTill) {
		return false // stale tokens go back first
	}
	for from := channels.Bulk; from >= r; from-- {
		if l.pool[from] > 0 {
			l.pool[from]--
			l.countLocked(r, now)
			return true
		}
	}
	return false
}

func (l *Limiter) countLocked(r channels.Rank, now time.Time) {
	if now.After(l.window) {
		if now.Sub(l.window) > l.o.Lease {
			l.demand = [channels.Ranks]int{}
		} else {
			l.demand = l.used
		}
		l.used = [channels.Ranks]int{}
		l.window = now.Add(l.o.Lease)
	}
	l.used[r]++
	l.granted[r].Add(1)
}

// dispenseLocked hands held tokens to the queued sends, highest rank
// first; a send may use a token leased for its rank or a lower one.
func (l *Limiter) dispenseLocked() {
	now := time.Now()
	if now.After(l.heldTill) {
		return
	}
	for r := channels.Urgent; r <= channels.Bulk; r++ {
		for {
			w := l.queue[r].peek()
			if w == nil {
				break
			}
			from := channels.Bulk
			for from >= r && l.pool[from] == 0 {
				from--
			}
			if from < r {
				return // nothing left this rank, or any below it, may use
			}
			l.pool[from]--
			l.queue[r].pop()
			w.granted, w.from = true, from
			l.countLocked(r, now)
			close(w.ready)
		}
	}
}

// topLocked returns the most urgent rank with sends queued.
func (l *Limiter) topLocked() (channels.Rank, bool) {
	for r := channels.Urgent; r <= channels.Bulk; r++ {
		if l.queue[r].peek() != nil {
			return r, true
		}
	}
	return 0, false
}

// returnLocked takes every held token back from the pools, to give back
// to the bucket.
func (l *Limiter) returnLocked() int {
	n := 0
	for r := range l.pool {
		n += l.pool[r]
		l.pool[r] = 0
	}
	return n
}

// fetch runs while sends are queued or tokens are held: it leases tokens
// for the most urgent queued rank, hands them out, and gives back what
// was not used when the lease ends.
func (l *Limiter) fetch() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	// sleep waits d, or less when a send of a rank above `until` arrives.
	// Called with l.mu held; returns with it held.
	sleep := func(d time.Duration, until channels.Rank) {
		l.sleeping = until
		select {
		case <-l.kick: // a kick from before: the state it was about is seen
		default:
		}
		l.mu.Unlock()
		timer.Reset(max(d, time.Millisecond))
		select {
		case <-timer.C:
		case <-l.kick:
			if !timer.Stop() {
				<-timer.C
			}
		}
		l.mu.Lock()
		l.sleeping = channels.Ranks
	}
	l.mu.Lock()
	for {
		now := time.Now()
		l.dispenseLocked()
		r, queued := l.topLocked()
		give := 0
		if !now.Before(l.heldTill) {
			give = l.returnLocked()
		}
		if !queued {
			switch {
			case give > 0:
				l.mu.Unlock()
				l.lease(channels.Bulk, 0, give, false)
				l.mu.Lock()
			case l.heldLocked() > 0:
				if r, ok := l.renewalLocked(now); ok {
					if at := l.heldTill.Add(-l.o.Lease / 4); now.Before(at) {
						sleep(at.Sub(now), channels.Ranks)
					} else {
						l.renewLocked(r)
					}
					continue
				}
				sleep(l.heldTill.Sub(now), channels.Ranks)
			default:
				l.running = false
				l.mu.Unlock()
				return
			}
			continue
		}
		demand := l.demand[r]
		if now.Sub(l.window) > l.o.Lease {
			demand = 0 // nothing handed out for a while: no demand to lease ahead for
		}
		want := min(l.leaseMax, max(l.queue[r].live, demand))
		more := l.queue[r].live > want
		l.mu.Unlock()

		got, wait := l.lease(r, want, give, more)

		l.mu.Lock()
		if got > 0 {
			l.pool[r] += got
			l.heldTill = time.Now().Add(l.o.Lease)
		}
		l.dispenseLocked()
		if top, queued := l.topLocked(); queued && top == r && got < want {
			sleep(wait, r) // until the rest may be there, or a more urgent send
		}
	}
}

// renewalLocked says whether the tokens held are to be renewed before
// they go back, and for which rank: while sends took tokens within the
// last lease period (the most urgent rank that did), once a lease period.
func (l *Limiter) renewalLocked(now time.Time) (channels.Rank, bool) {
	if l.renewed.Equal(l.heldTill) || now.Sub(l.window) > l.o.Lease {
		return 0, false
	}
	for r := channels.Urgent; r <= channels.Bulk; r++ {
		if max(l.demand[r], l.used[r]) > 0 {
			return r, true
		}
	}
	return 0, false
}

// renewLocked keeps the tokens held for another lease period, topped up
// from the shared bucket to the rank's demand (at most leaseMax), so that
// a steady flow of sends finds tokens in hand at the turn of a lease
// rather than each period's first sends waiting for a call to Redis. The
// tokens held stay at most a lease's worth; when sends stop, they go back
// at the end of the period after. Called with l.mu held; returns with it
// held.
func (l *Limiter) renewLocked(r channels.Rank) {
	l.renewed = l.heldTill
	want := min(l.leaseMax, max(l.demand[r], l.used[r])) - l.heldLocked()
	if want <= 0 {
		l.heldTill = time.Now().Add(l.o.Lease)
		return
	}
	l.mu.Unlock()
	got, _ := l.lease(r, want, 0, false)
	l.mu.Lock()
	if got > 0 {
		l.pool[r] += got
		l.heldTill = time.Now().Add(l.o.Lease)
	}
	l.dispenseLocked()
}

func (l *Limiter) heldLocked() int {
	n := 0
	for _, p := range l.pool {
		n += p
	}
	return n
}

// The shared bucket: tokens refill at rate per second up to burst,
// measured on Redis's own clock so replicas with skewed clocks agree.
// ARGV: rate, burst, reserve, rank, want, give (tokens handed back),
// replica, hold (ms a short lease keeps lower ranks off), replica window
// (ms), more ('1' when the replica has more of rank queued than want),
// recheck (ms: a lease period, the longest a rank kept off waits before it
// asks again — the mark may be cleared sooner). Takes up to want tokens for rank and returns {got, ms until the
// rest may be there, replicas seen}. u0/u1 hold until when an urgent or
// standard lease came back short (lower ranks take nothing until then),
// o0/o1 which replica marked it.
var leaseScript = redis.NewScript(`
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local reserve = tonumber(ARGV[3])
local rank = tonumber(ARGV[4])
local want = tonumber(ARGV[5])
local give = tonumber(ARGV[6])
local replica = ARGV[7]
local hold = tonumber(ARGV[8])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local s = redis.call('HMGET', KEYS[1], 'tokens', 'ts', 'u0', 'u1', 'o0', 'o1')
local tokens = tonumber(s[1])
local ts = tonumber(s[2])
if tokens == nil then tokens = burst; ts = now end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate / 1000)
  ts = now
end
tokens = math.min(burst, tokens + give)
local u = {tonumber(s[3]) or 0, tonumber(s[4]) or 0}
local o = {s[5] or '', s[6] or ''}
local got = 0
local wait = 0
if want > 0 then
  local blocked = 0
  for r = 1, rank do
    if u[r] > now then blocked = math.max(blocked, u[r]) end
  end
  local floor = 0
  if rank > 0 then floor = reserve end
  if blocked > 0 then
    wait = math.min(blocked - now, tonumber(ARGV[11]))
  else
    got = math.max(0, math.min(want, math.floor(tokens - floor)))
    tokens = tokens - got
    if got < want then
      wait = math.max(1, math.ceil((floor + want - got - tokens) * 1000 / rate))
    end
  end
  if rank < 2 then
    if got < want or ARGV[10] == '1' then
      if now + wait + hold > u[rank + 1] then
        u[rank + 1] = now + wait + hold
        o[rank + 1] = replica
      end
    elseif o[rank + 1] == replica then
      u[rank + 1] = 0
    end
  end
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts),
  'u0', tostring(u[1]), 'u1', tostring(u[2]), 'o0', o[1], 'o1', o[2])
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 60000)
redis.call('ZADD', KEYS[2], now, replica)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[9]))
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[9]) * 2)
return {got, wait, redis.call('ZCARD', KEYS[2])}`)

// lease takes up to want tokens for rank r from the shared bucket (or the
// local one when Redis does not answer), giving back give unused ones, and
// returns how many it got and when to ask for the rest.
func (l *Limiter) lease(r channels.Rank, want, give int, more bool) (int, time.Duration) {
	l.mu.Lock()
	local := l.local
	if local && !l.probing && !time.Now().Before(l.nextProbe) {
		l.probing = true
		go l.probe()
	}
	l.mu.Unlock()
	if local {
		return l.localLease(r, want)
	}
	got, wait, err := l.call(r, want, give, more)
	if err == nil {
		return got, wait
	}
	l.mu.Lock()
	if !l.local {
		l.local, l.lTokens, l.lAt = true, 0, time.Now()
		l.nextProbe = time.Now().Add(l.o.Probe)
		n := l.replicas
		l.mu.Unlock()
		l.o.Metrics.RateLimitLocal(l.o.Name, true)
		l.logf(slog.LevelWarn, "rate limiter cannot reach Redis; sending under a local bucket until it answers",
			slog.Float64("local_rate", l.limit.PerSecond/float64(n)), slog.Int("replicas_seen", n), slog.Any("error", err))
	} else {
		l.mu.Unlock()
	}
	return l.localLease(r, want)
}

// call runs the lease script once.
func (l *Limiter) call(r channels.Rank, want, give int, more bool) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), l.o.CallTimeout)
	defer cancel()
	l.calls.Add(1)
	l.o.Metrics.RateLimitRedisCall(l.o.Name)
	res, err := leaseScript.Run(ctx, l.rdb, l.keys, l.limit.PerSecond, l.limit.Burst, l.limit.Reserve, int(r), want, give,
		l.o.Replica, l.hold.Milliseconds(), replicaWindow.Milliseconds(), more, l.o.Lease.Milliseconds()).Int64Slice()
	if err == nil && len(res) != 3 {
		err = fmt.Errorf("unexpected answer %v", res)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("ratelimit: %w", err)
	}
	if l.leased != nil {
		l.leased(r, want, more, int(res[0]))
	}
	l.mu.Lock()
	l.replicas = max(int(res[2]), 1)
	l.mu.Unlock()
	return int(res[0]), time.Duration(res[1]) * time.Millisecond, nil
}

// probe tries Redis once while the limiter is on its local bucket, and
// puts it back on the shared one when Redis answers.
func (l *Limiter) probe() {
	_, _, err := l.call(channels.Bulk, 0, 0, false)
	l.mu.Lock()
	l.probing = false
	if err != nil {
		l.nextProbe = time.Now().Add(l.o.Probe)
		l.mu.Unlock()
		return
	}
	l.local = false
	l.mu.Unlock()
	l.o.Metrics.RateLimitLocal(l.o.Name, false)
	l.logf(slog.LevelInfo, "rate limiter reaches Redis again; back on the shared bucket")
}

// localLease takes tokens from the replica's own bucket: the shared rate
// and burst divided by the replicas last seen. Ranks are ordered by the
// local queue; the reserve holds as in the shared bucket.
func (l *Limiter) localLease(r channels.Rank, want int) (int, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := float64(l.replicas)
	rate, burst := l.limit.PerSecond/n, math.Max(1, float64(l.limit.Burst)/n)
	reserve := 0.0
	if r > channels.Urgent && l.limit.Reserve > 0 {
		reserve = math.Min(math.Ceil(float64(l.limit.Reserve)/n), burst-1)
	}
	now := time.Now()
	l.lTokens = math.Min(burst, l.lTokens+now.Sub(l.lAt).Seconds()*rate)
	l.lAt = now
	got := max(0, min(want, int(l.lTokens-reserve)))
	l.lTokens -= float64(got)
	if got >= want {
		return got, 0
	}
	need := reserve + float64(want-got) - l.lTokens
	return got, time.Duration(math.Ceil(need / rate * float64(time.Second)))
}

func (l *Limiter) logf(level slog.Level, msg string, attrs ...slog.Attr) {
	if l.o.Log != nil {
		l.o.Log.LogAttrs(context.Background(), level, msg, append([]slog.Attr{slog.String("provider", l.o.Name)}, attrs...)...)
	}
}

// Local reports whether the limiter runs on its local bucket because
// Redis does not answer.
func (l *Limiter) Local() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.local
}

// ChannelConfig configures a Channel.
type ChannelConfig struct {
	// CallTimeout bounds the provider call once the token is taken; zero
	// leaves it to ctx and the provider. The wait for the token is not
	// part of it: waiting behind other traffic is back-pressure, not a
	// slow provider.
	CallTimeout time.Duration
	Metrics     *metrics.Metrics
}

// Channel sends through inner once the provider's bucket gives a token.
// Safe for concurrent use.
type Channel struct {
	name    string
	inner   channels.Channel
	limiter *Limiter
	timeout time.Duration
	waits   map[channels.Lane]metrics.Observer
}

// New wraps inner, the provider instance called name, in limiter.
func New(name string, inner channels.Channel, limiter *Limiter, cfg ChannelConfig) *Channel {
	c := &Channel{name: name, inner: inner, limiter: limiter, timeout: cfg.CallTimeout, waits: map[channels.Lane]metrics.Observer{}}
	for _, l := range []channels.Lane{channels.LaneOTP, channels.LaneAlert, channels.LaneDirect, channels.LaneBulk, ""} {
		c.waits[l] = cfg.Metrics.RateLimitWait(name, string(l))
	}
	return c
}

// Name returns the provider instance name.
func (c *Channel) Name() string { return c.name }

// Send waits for a token in the order of m's lane, then sends. A wait cut
// short by ctx is a Transient error that wraps channels.ErrNotAttempted:
// the message is retried, not lost, and a breaker does not count it
// against the provider.
func (c *Channel) Send(ctx context.Context, m channels.Message) (channels.Result, error) {
	waited, err := c.limiter.Wait(ctx, m.Lane.Rank())
	if obs, ok := c.waits[m.Lane]; ok {
		obs.Observe(waited.Seconds())
	}
	if err != nil {
		return channels.Result{}, &channels.Error{Class: channels.Transient, Provider: c.name, Code: "rate_limited",
			Err: fmt.Errorf("%w: ratelimit: gave up waiting for a token: %w", channels.ErrNotAttempted, err)}
	}
	if m.Expired(time.Now()) {
		return channels.Result{}, &channels.Error{Class: channels.Expired, Provider: c.name,
			Err: fmt.Errorf("%w: expired while waiting for the rate limit", channels.ErrNotAttempted)}
	}
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	if err := channels.Calling(ctx); err != nil { // from here the provider may have it
		return channels.Result{}, &channels.Error{Class: channels.Transient, Provider: c.name, Code: "not_called",
			Err: fmt.Errorf("%w: %w", channels.ErrNotAttempted, err)}
	}
	return c.inner.Send(ctx, m)
}
