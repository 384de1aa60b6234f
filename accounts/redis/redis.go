package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/loa-hub/loa/accounts"
)

// DefaultKeyPrefix is used when Store.Prefix is empty.
const DefaultKeyPrefix = "acct:{s}:"

// gcMargin keeps a key a little past its expiry, so the Service (not
// Redis) decides when a session ends.
const gcMargin = time.Minute

var (
	// createScript stores a session and lists it under its account. An
	// account at MaxSessions live sessions loses its oldest (expired ones
	// are dropped from the list first), so no account — signing in again
	// and again with its own password — grows Redis without bound.
	createScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
local cap = tonumber(ARGV[7])
if redis.call('SCARD', KEYS[2]) >= cap then
  local m = redis.call('SMEMBERS', KEYS[2])
  local live, oldest, oldestC = 0, nil, nil
  for i = 1, #m do
    local c = redis.call('HGET', m[i], 'c')
    if not c then
      redis.call('SREM', KEYS[2], m[i])
    else
      live = live + 1
      c = tonumber(c)
      if oldestC == nil or c < oldestC then oldest, oldestC = m[i], c end
    end
  end
  if live >= cap then
    redis.call('DEL', oldest)
    redis.call('SREM', KEYS[2], oldest)
  end
end
redis.call('HSET', KEYS[1], 'acc', ARGV[1], 'kind', ARGV[2], 'r', ARGV[3], 'c', ARGV[4], 'e', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('SADD', KEYS[2], KEYS[1])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[6]) then redis.call('PEXPIRE', KEYS[2], ARGV[6]) end
return 1`)
	deleteScript = goredis.NewScript(`
local acc = redis.call('HGET', KEYS[1], 'acc')
if acc then redis.call('SREM', ARGV[1] .. acc, KEYS[1]) end
return redis.call('DEL', KEYS[1])`)
	revokeScript = goredis.NewScript(`
local m = redis.call('SMEMBERS', KEYS[1])
for i = 1, #m do redis.call('DEL', m[i]) end
redis.call('DEL', KEYS[1])
if tonumber(ARGV[1]) > 0 then redis.call('SET', KEYS[2], '1', 'PX', ARGV[1]) end
return #m`)
)

// MaxSessions is how many live sessions an account keeps: a new one past
// it ends the oldest.
const MaxSessions = 50

// Store implements accounts.SessionStore and accounts.ChallengeIndex. It
// is safe for concurrent use.
type Store struct {
	rdb    goredis.UniversalClient
	prefix string
}

var (
	_ accounts.SessionStore   = (*Store)(nil)
	_ accounts.ChallengeIndex = (*Store)(nil)
)

// New returns a Store on rdb under prefix ("" for DefaultKeyPrefix).
func New(rdb goredis.UniversalClient, prefix string) *Store {
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	return &Store{rdb: rdb, prefix: prefix}
}

func (s *Store) sessKey(hash string) string  { return s.prefix + "sess:" + hash }
func (s *Store) ofKey(account string) string { return s.prefix + "of:" + account }

// CreateSession implements accounts.SessionStore; a blocked account gets
// accounts.ErrForbidden.
func (s *Store) CreateSession(ctx context.Context, hash string, sess accounts.Session) error {
	ttl := sess.ExpiresAt.Sub(sess.CreatedAt) + gcMargin
	r := "0"
	if sess.Restricted {
		r = "1"
	}
	ok, err := createScript.Run(ctx, s.rdb,
		[]string{s.sessKey(hash), s.ofKey(sess.AccountID), s.prefix + "blocked:" + sess.AccountID},
		sess.AccountID, string(sess.Kind), r, sess.CreatedAt.UnixMilli(), sess.ExpiresAt.UnixMilli(), ttl.Milliseconds(), MaxSessions).Int()
	if err != nil {
		return fmt.Errorf("accounts/redis: create session: %w", err)
	}
	if ok == 0 {
		return fmt.Errorf("accounts/redis: create session: account blocked: %w", accounts.ErrForbidden)
	}
	return nil
}

// Session implements accounts.SessionStore.
func (s *Store) Session(ctx context.Context, hash string) (accounts.Session, error) {
	m, err := s.rdb.HGetAll(ctx, s.sessKey(hash)).Result()
	if err != nil {
		return accounts.Session{}, fmt.Errorf("accounts/redis: session: %w", err)
	}
	if len(m) == 0 || m["acc"] == "" {
		return accounts.Session{}, accounts.ErrNotFound
	}
	c, err1 := strconv.ParseInt(m["c"], 10, 64)
	e, err2 := strconv.ParseInt(m["e"], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return accounts.Session{}, fmt.Errorf("accounts/redis: session: corrupt times: %w", err)
	}
	return accounts.Session{AccountID: m["acc"], Kind: accounts.Kind(m["kind"]), Restricted: m["r"] == "1",
		CreatedAt: time.UnixMilli(c).UTC(), ExpiresAt: time.UnixMilli(e).UTC()}, nil
}

// DeleteSession implements accounts.SessionStore.
func (s *Store) DeleteSession(ctx context.Context, hash string) error {
	if err := deleteScript.Run(ctx, s.rdb, []string{s.sessKey(hash)}, s.prefix+"of:").Err(); err != nil {
		return fmt.Errorf("accounts/redis: delete session: %w", err)
	}
	return nil
}

// RevokeAccount implements accounts.SessionStore.
func (s *Store) RevokeAccount(ctx context.Context, accountID string, block time.Duration) error {
	err := revokeScript.Run(ctx, s.rdb, []string{s.ofKey(accountID), s.prefix + "blocked:" + accountID}, block.Milliseconds()).Err()
	if err != nil {
		return fmt.Errorf("accounts/redis: revoke account: %w", err)
	}
	return nil
}

// PutChallenge implements accounts.ChallengeIndex.
func (s *Store) PutChallenge(ctx context.Context, accountID, challengeID string, ttl time.Duration) error {
	if ttl <= 0 {
		ttl = time.Second
	}
	if err := s.rdb.Set(ctx, s.prefix+"mfa:"+accountID, challengeID, ttl+gcMargin).Err(); err != nil {
		return fmt.Errorf("accounts/redis: put challenge: %w", err)
	}
	return nil
}

// Challenge implements accounts.ChallengeIndex.
func (s *Store) Challenge(ctx context.Context, accountID string) (string, error) {
	id, err := s.rdb.Get(ctx, s.prefix+"mfa:"+accountID).Result()
	if errors.Is(err, goredis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("accounts/redis: challenge: %w", err)
	}
	return id, nil
}

// DeleteChallenge implements accounts.ChallengeIndex.
func (s *Store) DeleteChallenge(ctx context.Context, accountID string) error {
	if err := s.rdb.Del(ctx, s.prefix+"mfa:"+accountID).Err(); err != nil {
		return fmt.Errorf("accounts/redis: delete challenge: %w", err)
	}
	return nil
}
