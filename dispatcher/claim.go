package dispatcher

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// claimState is what a claim attempt found.
type claimState uint8

const (
	claimed     claimState = iota // the caller now holds the delivery
	alreadySent                   // the delivery already happened
	busy                          // another sender holds a live lease
	// takenOver: the caller now holds the delivery, taken from a sender
	// whose lease lapsed without marking or releasing it — a sender that
	// died, which may have sent it.
	takenOver
	// reclaimed: the caller held the delivery already (it is handling the
	// message again, or renewing): it may have sent it.
	reclaimed
	// inDoubt: a delivery sent at most once (a code, an alert) whose send
	// had begun when its sender died, so that nobody knows whether the
	// provider took it; it is never sent again (see Dispatcher.inDoubt).
	inDoubt
	// midCall: the caller now holds a delivery whose claim says its
	// provider call had begun ("a:", see Claims.MarkCalling) — its own
	// from an earlier handling, or taken over from a sender whose lease
	// lapsed. Unless the write-ahead record says it was sent, it is in
	// doubt, even when the record has no attempt: the attempt's row is
	// written behind the call and may not have been committed. A renewal
	// (fan-out batches) reads it as held.
	midCall
)

// Claims coordinates senders on every replica through Redis so each
// delivery is sent at most once while its record lives (SentTTL), and is
// not lost when a sender dies holding it (its lease lapses).
//
// A claim is a key per delivery: "p:<owner>:<deadline>" while a sender
// holds it, "a:<owner>:<deadline>" once its provider call has begun (a
// code's attempt, MarkCalling), "s" once sent, "d" in doubt. A lease's key outlives its deadline, so the
// sender that takes a lapsed lease over learns that its holder died
// (takenOver) and can look in the write-ahead record of sends. Every claim
// also checks the epoch key, which is written once per Redis data set: a
// Redis that restarted without persistence, or was flushed, has lost it,
// and the claim says so (the epoch changes and EpochStart moves) instead of
// handing out deliveries whose sent marks may be gone.
//
// The scripts touch several keys; on Redis Cluster the prefix must hold a
// hash tag ("loa:{d}:") so they share a slot. Safe for concurrent use.
type Claims struct {
	rdb    redis.UniversalClient
	prefix string
	// Lease is how long a claim is held without being marked sent before
	// another sender may take over (a sender that died mid-send).
	Lease time.Duration
	// SentTTL is how long a sent delivery is remembered; it must outlive
	// any redelivery of its message from Kafka. Lease keys live as long,
	// so a takeover is recognised however late it comes.
	SentTTL time.Duration

	ep *claimEpoch // shared with the Claims made by on
	// grp gathers the single claims of concurrent callers (claimOne).
	grp *claimQueue
}

// claimEpoch is the Redis epoch a process last saw.
type claimEpoch struct {
	mu         sync.Mutex
	epoch      string
	epochStart time.Time
}

// NewClaims returns Claims on rdb with keys under prefix.
func NewClaims(rdb redis.UniversalClient, prefix string) *Claims {
	return &Claims{rdb: rdb, prefix: prefix, Lease: 30 * time.Second, SentTTL: 72 * time.Hour, ep: &claimEpoch{}, grp: &claimQueue{}}
}

// on returns the same claims (keys, lease, TTL, the epoch seen) through
// another client of the same Redis: a pool of connections of their own.
func (c *Claims) on(rdb redis.UniversalClient) *Claims {
	return &Claims{rdb: rdb, prefix: c.prefix, Lease: c.Lease, SentTTL: c.SentTTL, ep: c.ep, grp: &claimQueue{}}
}

// claimScript claims KEYS[2..] for ARGV[1] with a lease of ARGV[2] ms, the
// keys living ARGV[4] ms, if the epoch KEYS[1] is ARGV[3] — held ("p:"), or
// calling at once ("a:") when ARGV[5] is "a"; it returns a
// state per key (claimState's numbers), or {-1} when the epoch is not the
// caller's. "s" is a sent delivery, "d" one in doubt. A key the owner holds already is renewed (reclaimed); an
// old-style lease without a deadline ("p:<owner>") is busy until its key
// expires. A calling claim ("a:") keeps its prefix when renewed or taken
// over, and reads as midCall: whoever holds it next must not send it
// without the write-ahead record saying it was sent. A new key — nearly
// every key of a broadcast — is taken by one SET NX; only a key that
// exists is read.
var claimScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[3] then return {-1} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = (ARGV[5] or 'p') .. ':' .. ARGV[1] .. ':' .. (now + tonumber(ARGV[2]))
local out = {}
for i = 2, #KEYS do
  local st = 0
  local v = redis.call('SET', KEYS[i], lease, 'NX', 'PX', ARGV[4]) or redis.call('GET', KEYS[i])
  if type(v) == 'table' then
    -- SET NX took the new key (its reply is the status table {ok='OK'})
  elseif not v then
    redis.call('SET', KEYS[i], lease, 'PX', ARGV[4])
  elseif v == 's' or v == 'sent' then
    st = 1
  elseif v == 'd' then
    st = 5
  else
    local k, o, d = string.match(v, '^([pa]):([^:]*):(%d+)$')
    local held = lease
    if k == 'a' then held = 'a:' .. string.sub(lease, 3) end
    if o == ARGV[1] then
      redis.call('SET', KEYS[i], held, 'PX', ARGV[4])
      st = 4
    elseif not d or tonumber(d) > now then
      st = 2
    else
      redis.call('SET', KEYS[i], held, 'PX', ARGV[4])
      st = 3
    end
    if k == 'a' and st ~= 2 then st = 6 end
  end
  out[i - 1] = st
end
return out`)

// releaseScript deletes those of KEYS that ARGV[1] holds, calling or not.
var releaseScript = redis.NewScript(`
local pre = ':' .. ARGV[1] .. ':'
local n = 0
for i = 1, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if v and (string.sub(v, 1, 1) == 'p' or string.sub(v, 1, 1) == 'a') and string.sub(v, 2, #pre + 1) == pre then
    redis.call('DEL', KEYS[i])
    n = n + 1
  end
end
return n`)

// callingScript turns the claim KEYS[2] that ARGV[1] holds into a calling
// one ("a:<owner>:<deadline>", a lease of ARGV[2] ms, the key living
// ARGV[4] ms) and returns 1, if the epoch KEYS[1] is ARGV[3]; it returns 0
// when the claim is not the caller's any more (its lease lapsed and
// another sender took it, or Redis lost it) or the epoch changed.
var callingScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[3] then return 0 end
local v = redis.call('GET', KEYS[2])
if not v then return 0 end
local o = string.match(v, '^[pa]:([^:]*):%d+$')
if o ~= ARGV[1] then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('SET', KEYS[2], 'a:' .. ARGV[1] .. ':' .. (now + tonumber(ARGV[2])), 'PX', ARGV[4])
return 1`)

// epochScript returns the epoch KEYS[1], creating it — Redis's clock in
// microseconds, a colon, ARGV[1] — when it is missing.
var epochScript = redis.NewScript(`
local e = redis.call('GET', KEYS[1])
if e then return e end
local t = redis.call('TIME')
e = t[1] .. string.format('%06d', tonumber(t[2])) .. ':' .. ARGV[1]
redis.call('SET', KEYS[1], e)
return e`)

// deliveryKey identifies one delivery (notification, channel, address)
// by a hash, so keys stay short whatever the token length, and no phone
// number or address appears in Redis or the write-ahead record in clear.
type deliveryKey [16]byte

func keyOf(notificationID, channel, to string) deliveryKey {
	// Hashed from a buffer on the stack when it fits (a push's token is
	// about 160 bytes): a fan-out computes one for each of its pushes.
	var buf [512]byte
	b := append(append(append(append(append(buf[:0], notificationID...), 0), channel...), 0), to...)
	h := sha256.Sum256(b)
	return deliveryKey(h[:16])
}

// redisKey is the claim key of a delivery, made in one allocation.
func (c *Claims) redisKey(k deliveryKey) string {
	var hx [2 * len(deliveryKey{})]byte
	hex.Encode(hx[:], k[:])
	var b strings.Builder
	b.Grow(len(c.prefix) + len("dk:") + len(hx))
	b.WriteString(c.prefix)
	b.WriteString("dk:")
	b.Write(hx[:])
	return b.String()
}

func (c *Claims) epochKey() string { return EpochKey(c.prefix) }

// EpochKey is the Redis key of the claims' epoch under prefix: its value
// is the epoch's start (Redis's clock, microseconds since 1970), a colon
// and a token. Sent marks written before the start may have been lost, so
// deliveries of events from before it (and up to a few minutes after,
// for clock skew) are checked against the write-ahead record.
func EpochKey(prefix string) string { return prefix + "dk-epoch" }

// newOwner returns a unique token identifying one claim attempt.
func newOwner() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// claimChunk bounds the keys of one script call, so a call does not hold
// Redis for long.
const claimChunk = 128

// ClaimKeys tries to take the deliveries with the claim keys rkeys for
// owner, in as few round trips as the chunking allows. States are in the
// order of rkeys. When Redis has lost its data since this client last
// looked (its epoch changed), ClaimKeys adopts the new epoch before
// claiming: EpochStart then says from when Redis's sent marks can be
// trusted.
func (c *Claims) ClaimKeys(ctx context.Context, rkeys []string, owner string) ([]claimState, error) {
	return c.claimKeys(ctx, rkeys, owner, "p", nil)
}

// claimKeys is ClaimKeys with also's commands (when not nil) queued
// beside the first claim, so that they share its round trip to Redis:
// they have been answered when it returns, unless it returns an error.
// A prefix "a" takes new claims calling at once (see MarkCalling).
func (c *Claims) claimKeys(ctx context.Context, rkeys []string, owner, prefix string, also func(redis.Pipeliner)) ([]claimState, error) {
	out := make([]claimState, 0, len(rkeys))
	for start := 0; start < len(rkeys); start += claimChunk {
		chunk := rkeys[start:min(start+claimChunk, len(rkeys))]
		keys := make([]string, 0, len(chunk)+1)
		keys = append(append(keys, c.epochKey()), chunk...)
		for try := 0; ; try++ {
			epoch, _ := c.Epoch()
			args := []any{owner, c.Lease.Milliseconds(), epoch, c.SentTTL.Milliseconds(), leasePrefix(prefix)}
			var cmd *redis.Cmd
			if also != nil {
				pipe := c.rdb.Pipeline()
				cmd = claimScript.EvalSha(ctx, pipe, keys, args...)
				also(pipe)
				also = nil
				_, _ = pipe.Exec(ctx) // each command holds its own answer or error
				if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
					cmd = claimScript.Run(ctx, c.rdb, keys, args...) // loads it
				}
			} else {
				cmd = claimScript.Run(ctx, c.rdb, keys, args...)
			}
			res, err := cmd.Int64Slice()
			if err != nil {
				return nil, fmt.Errorf("dispatcher: claim: %w", err)
			}
			if len(res) == 1 && res[0] == -1 {
				if try == 2 {
					return nil, fmt.Errorf("dispatcher: claim: the Redis epoch keeps changing")
				}
				if err := c.refreshEpoch(ctx); err != nil {
					return nil, err
				}
				continue
			}
			if len(res) != len(chunk) {
				return nil, fmt.Errorf("dispatcher: claim: %d states for %d keys", len(res), len(chunk))
			}
			for _, st := range res {
				out = append(out, claimState(st))
			}
			break
		}
	}
	return out, nil
}

// claimQueue holds the single claims that wait for the round trip under
// way (claimOne).
type claimQueue struct {
	mu      sync.Mutex
	pending []*oneClaim
	writing bool // a caller is claiming a group
	// queued, for tests, is called when a claim queues behind a group
	// under way.
	queued func()
}

// oneClaim is one caller's claim in a group, and its outcome.
type oneClaim struct {
	rkey, owner string
	also        func(redis.Pipeliner)
	// prefix is the claim's: "p" held, "a" calling at once.
	prefix string
	// turn: not a claim but MarkCalling's turn of a held claim into a
	// calling one; ok is its answer.
	turn bool
	ok   bool
	st   claimState
	err  error
	done chan bool // true: the caller's turn to claim the group that queued
}

// claimOne is claimKeys for one key, gathered with the claims of other
// callers, group-commit style: the claims (and their also commands) that
// come while one round trip to Redis is under way go together in the
// next, one script call each in one pipeline. A code's claim and
// withdrawal look-up were a round trip of their own — at 500 codes a
// second, 500 round trips, each a write and a read in the dispatcher and
// in Redis and a wake-up on both sides. Each call is claimed, and its
// also commands answered, as claimKeys would; a claim the pipeline could
// not settle (the script not loaded, the epoch changed) is claimed again
// alone. It returns when its own claim is, whatever ctx does meanwhile
// (bounded by claimGroupTimeout). prefix is the claim's (claimKeys).
func (c *Claims) claimOne(ctx context.Context, rkey, owner, prefix string, also func(redis.Pipeliner)) (claimState, error) {
	if c.grp == nil {
		states, err := c.claimKeys(ctx, []string{rkey}, owner, prefix, also)
		if err != nil {
			return 0, err
		}
		return states[0], nil
	}
	q := c.queue(ctx, &oneClaim{rkey: rkey, owner: owner, also: also, prefix: prefix})
	return q.st, q.err
}

// MarkCalling turns owner's claim on rkey into a calling one (or renews
// one that is calling already), right before its provider call: from then
// on, a sender that takes the delivery over, or handles its message again,
// takes it for in doubt unless the write-ahead record says it was sent
// (see midCall). It reports false when the claim is not owner's any more:
// the delivery must not be sent. It goes with the claims under way
// (claimOne), in their round trip. A code is claimed calling at once;
// MarkCalling checks the claim of one that waited long for its turn.
func (c *Claims) MarkCalling(ctx context.Context, rkey, owner string) (bool, error) {
	if c.grp == nil {
		return c.markCalling(ctx, rkey, owner)
	}
	q := c.queue(ctx, &oneClaim{rkey: rkey, owner: owner, turn: true})
	return q.ok, q.err
}

func (c *Claims) markCalling(ctx context.Context, rkey, owner string) (bool, error) {
	epoch, _ := c.Epoch()
	n, err := callingScript.Run(ctx, c.rdb, []string{c.epochKey(), rkey}, owner, c.Lease.Milliseconds(), epoch, c.SentTTL.Milliseconds()).Int64()
	if err != nil {
		return false, fmt.Errorf("dispatcher: mark calling: %w", err)
	}
	return n == 1, nil
}

// queue runs q in the next group's round trip, and returns it settled.
func (c *Claims) queue(ctx context.Context, q *oneClaim) *oneClaim {
	q.done = make(chan bool, 1)
	g := c.grp
	g.mu.Lock()
	g.pending = append(g.pending, q)
	if g.writing {
		g.mu.Unlock()
		if g.queued != nil {
			g.queued()
		}
		if lead := <-q.done; !lead {
			return q
		}
		g.mu.Lock()
	}
	// This caller claims what has queued, its own with it, then hands the
	// turn to the first claim that queued meanwhile.
	g.writing = true
	batch := g.pending
	g.pending = nil
	g.mu.Unlock()
	gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), claimGroupTimeout)
	c.claimBatch(gctx, batch)
	cancel()
	g.mu.Lock()
	if len(g.pending) > 0 {
		g.pending[0].done <- true
	} else {
		g.writing = false
	}
	g.mu.Unlock()
	for _, o := range batch {
		if o != q {
			o.done <- false
		}
	}
	return q
}

// claimGroupTimeout bounds one group's round trip (and the claims
// retried alone).
const claimGroupTimeout = 10 * time.Second

// claimBatch claims batch in one pipeline and sets each claim's outcome.
func (c *Claims) claimBatch(ctx context.Context, batch []*oneClaim) {
	if len(batch) == 1 && batch[0].turn {
		o := batch[0]
		o.ok, o.err = c.markCalling(ctx, o.rkey, o.owner)
		return
	}
	if len(batch) == 1 {
		o := batch[0]
		states, err := c.claimKeys(ctx, []string{o.rkey}, o.owner, o.prefix, o.also)
		if err == nil {
			o.st = states[0]
		}
		o.err = err
		return
	}
	epoch, _ := c.Epoch()
	pipe := c.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(batch))
	for i, o := range batch {
		if o.turn {
			cmds[i] = callingScript.EvalSha(ctx, pipe, []string{c.epochKey(), o.rkey}, o.owner, c.Lease.Milliseconds(), epoch, c.SentTTL.Milliseconds())
		} else {
			cmds[i] = claimScript.EvalSha(ctx, pipe, []string{c.epochKey(), o.rkey}, o.owner, c.Lease.Milliseconds(), epoch, c.SentTTL.Milliseconds(), leasePrefix(o.prefix))
		}
		if o.also != nil {
			o.also(pipe)
		}
	}
	_, _ = pipe.Exec(ctx) // each command holds its own answer or error
	for i, o := range batch {
		if o.turn {
			n, err := cmds[i].Int64()
			if redis.HasErrorPrefix(err, "NOSCRIPT") {
				o.ok, o.err = c.markCalling(ctx, o.rkey, o.owner) // loads it
				continue
			}
			o.ok = err == nil && n == 1
			if err != nil {
				o.err = fmt.Errorf("dispatcher: mark calling: %w", err)
			}
			continue
		}
		res, err := cmds[i].Int64Slice()
		if err == nil && len(res) == 1 && res[0] >= 0 {
			o.st = claimState(res[0])
			continue
		}
		if err != nil && !redis.HasErrorPrefix(err, "NOSCRIPT") {
			o.err = fmt.Errorf("dispatcher: claim: %w", err)
			continue
		}
		// Not loaded, or not this epoch: as claimKeys does (its also
		// commands have been answered).
		states, err := c.claimKeys(ctx, []string{o.rkey}, o.owner, o.prefix, nil)
		if err == nil {
			o.st = states[0]
		}
		o.err = err
	}
}

// leasePrefix is the claim script's ARGV[5] for prefix: held unless "a".
func leasePrefix(prefix string) string {
	if prefix == "a" {
		return "a"
	}
	return "p"
}

// Epoch returns the Redis epoch this client last saw and when it began
// (Redis's clock): sent marks written before then may have been lost. Both
// are zero before the first claim.
func (c *Claims) Epoch() (string, time.Time) {
	c.ep.mu.Lock()
	defer c.ep.mu.Unlock()
	return c.ep.epoch, c.ep.epochStart
}

// refreshEpoch reads the epoch, creating it when Redis has none.
func (c *Claims) refreshEpoch(ctx context.Context) error {
	e, err := epochScript.Run(ctx, c.rdb, []string{c.epochKey()}, newOwner()).Text()
	if err != nil {
		return fmt.Errorf("dispatcher: claim epoch: %w", err)
	}
	micros, _, _ := strings.Cut(e, ":")
	us, err := strconv.ParseInt(micros, 10, 64)
	if err != nil {
		return fmt.Errorf("dispatcher: claim epoch %q: %w", e, err)
	}
	c.ep.mu.Lock()
	defer c.ep.mu.Unlock()
	c.ep.epoch, c.ep.epochStart = e, time.UnixMicro(us)
	return nil
}

// MarkSentKeys records the deliveries with the claim keys rkeys as sent,
// in one round trip.
func (c *Claims) MarkSentKeys(ctx context.Context, rkeys []string) error {
	if len(rkeys) == 0 {
		return nil
	}
	pipe := c.rdb.Pipeline()
	for _, k := range rkeys {
		pipe.Set(ctx, k, "s", c.SentTTL)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("dispatcher: mark sent: %w", err)
	}
	return nil
}

// MarkInDoubtKeys records the deliveries with the claim keys rkeys as in
// doubt: never to be sent again.
func (c *Claims) MarkInDoubtKeys(ctx context.Context, rkeys []string) error {
	pipe := c.rdb.Pipeline()
	for _, k := range rkeys {
		pipe.Set(ctx, k, "d", c.SentTTL)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("dispatcher: mark in doubt: %w", err)
	}
	return nil
}

// ReleaseKeys gives up owner's claims on rkeys so the deliveries can be
// tried again; claims another sender holds are left alone.
func (c *Claims) ReleaseKeys(ctx context.Context, rkeys []string, owner string) error {
	for start := 0; start < len(rkeys); start += claimChunk {
		if err := releaseScript.Run(ctx, c.rdb, rkeys[start:min(start+claimChunk, len(rkeys))], owner).Err(); err != nil {
			return fmt.Errorf("dispatcher: release claims: %w", err)
		}
	}
	return nil
}
