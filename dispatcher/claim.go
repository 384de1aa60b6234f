package dispatcher

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// claimState is what a claim attempt found.
type claimState string

const (
	claimed     claimState = "claimed" // the caller now holds the delivery
	alreadySent claimState = "sent"    // the delivery already happened
	busy        claimState = "busy"    // another sender holds a live lease
)

// Claims coordinates senders on every replica through Redis so each
// delivery is sent at most once while its record lives (SentTTL), and is
// not lost when a sender dies holding it (its lease expires).
type Claims struct {
	rdb    redis.UniversalClient
	prefix string
	// Lease is how long a claim is held without being marked sent before
	// another sender may take over (a sender that died mid-send).
	Lease time.Duration
	// SentTTL is how long a sent delivery is remembered; it must outlive
	// any redelivery of its message from Kafka.
	SentTTL time.Duration
}

// NewClaims returns Claims on rdb with keys under prefix.
func NewClaims(rdb redis.UniversalClient, prefix string) *Claims {
	return &Claims{rdb: rdb, prefix: prefix, Lease: 30 * time.Second, SentTTL: 72 * time.Hour}
}

var claimScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], 'p:' .. ARGV[1], 'PX', ARGV[2])
  return 'claimed'
end
if v == 'sent' then return 'sent' end
if v == 'p:' .. ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 'claimed'
end
return 'busy'`)

var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == 'p:' .. ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)

// key hashes the delivery identity so keys stay short whatever the token
// length, and no phone number or address appears in Redis in clear.
func (c *Claims) key(notificationID, channel, to string) string {
	h := sha256.Sum256([]byte(notificationID + "\x00" + channel + "\x00" + to))
	return c.prefix + "dk:" + hex.EncodeToString(h[:16])
}

// newOwner returns a unique token identifying one claim attempt.
func newOwner() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Claim tries to take the delivery for owner.
func (c *Claims) Claim(ctx context.Context, notificationID, channel, to, owner string) (claimState, error) {
	res, err := claimScript.Run(ctx, c.rdb, []string{c.key(notificationID, channel, to)}, owner, c.Lease.Milliseconds()).Text()
	if err != nil {
		return "", fmt.Errorf("dispatcher: claim: %w", err)
	}
	return claimState(res), nil
}

// MarkSent records that the delivery happened.
func (c *Claims) MarkSent(ctx context.Context, notificationID, channel, to string) error {
	if err := c.rdb.Set(ctx, c.key(notificationID, channel, to), "sent", c.SentTTL).Err(); err != nil {
		return fmt.Errorf("dispatcher: mark sent: %w", err)
	}
	return nil
}

// Release gives up owner's claim so the delivery can be tried again.
func (c *Claims) Release(ctx context.Context, notificationID, channel, to, owner string) error {
	if err := releaseScript.Run(ctx, c.rdb, []string{c.key(notificationID, channel, to)}, owner).Err(); err != nil {
		return fmt.Errorf("dispatcher: release claim: %w", err)
	}
	return nil
}

// ClaimMany claims several deliveries of one notification on one channel
// for owner in a single round trip. States are in the order of addrs.
func (c *Claims) ClaimMany(ctx context.Context, notificationID, channel string, addrs []string, owner string) ([]claimState, error) {
	pipe := c.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(addrs))
	for i, a := range addrs {
		cmds[i] = claimScript.EvalSha(ctx, pipe, []string{c.key(notificationID, channel, a)}, owner, c.Lease.Milliseconds())
	}
	if _, err := pipe.Exec(ctx); err != nil && !redis.HasErrorPrefix(err, "NOSCRIPT") {
		return nil, fmt.Errorf("dispatcher: claim: %w", err)
	}
	out := make([]claimState, len(addrs))
	for i, cmd := range cmds {
		res, err := cmd.Text()
		if redis.HasErrorPrefix(err, "NOSCRIPT") {
			// The script is not cached on this server yet: load it once.
			st, err := c.Claim(ctx, notificationID, channel, addrs[i], owner)
			if err != nil {
				return nil, err
			}
			out[i] = st
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("dispatcher: claim: %w", err)
		}
		out[i] = claimState(res)
	}
	return out, nil
}

// MarkSentMany records several deliveries as sent in one round trip.
func (c *Claims) MarkSentMany(ctx context.Context, notificationID, channel string, addrs []string) error {
	if len(addrs) == 0 {
		return nil
	}
	pipe := c.rdb.Pipeline()
	for _, a := range addrs {
		pipe.Set(ctx, c.key(notificationID, channel, a), "sent", c.SentTTL)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("dispatcher: mark sent: %w", err)
	}
	return nil
}

// ReleaseMany gives up owner's claims on several deliveries in one round
// trip.
func (c *Claims) ReleaseMany(ctx context.Context, notificationID, channel string, addrs []string, owner string) error {
	if len(addrs) == 0 {
		return nil
	}
	pipe := c.rdb.Pipeline()
	for _, a := range addrs {
		releaseScript.EvalSha(ctx, pipe, []string{c.key(notificationID, channel, a)}, owner)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		if !redis.HasErrorPrefix(err, "NOSCRIPT") {
			return fmt.Errorf("dispatcher: release claims: %w", err)
		}
		for _, a := range addrs {
			if err := c.Release(ctx, notificationID, channel, a, owner); err != nil {
				return err
			}
		}
	}
	return nil
}
