package accounts_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/internal/testenv"
)

// TestInventedUserNamesHoldRedisHours: a sign-in failure with a user name
// that names no account keeps a throttle key for that name, as a failure
// of an account keeps one for the account — else trying a name six times
// would tell whether it exists, and any smaller shared structure (buckets
// of names, a count per address) makes an unknown name wait sooner than
// an account once strangers' other names have touched it. So an invented
// name costs one key; what bounds the keys is that each failure first
// takes a password hash (LOA_PASSWORD_HASH_CONCURRENCY a process), and how
// long each is held. They were held a day after the last failure; now
// AccountBackoff.Forget, 4 hours (TestForgettingSoonerGivesNoMoreGuesses:
// no more guesses at an account a day). Measured on the real Redis when
// configured: keys, bytes (MEMORY USAGE) and the longest TTL of 10,000
// invented names from 500 IPv6 /64s (1,000 on miniredis).
func TestInventedUserNamesHoldRedisHours(t *testing.T) {
	const perAddr = 20
	for rname, rdb := range redisClients(t) {
		t.Run(rname, func(t *testing.T) {
			names := 10_000 // measured on the real Redis; miniredis only checks
			if rname == "miniredis" {
				names = 1_000
			}
			ctx := context.Background()
			r := newRig(t, testenv.OpenStore(t, testenv.SQLiteURL(t)), rdb, nil)
			pattern := r.prefix + "acct:{s}:thr:*"
			t.Cleanup(func() { deleteKeys(rdb, pattern) })
			work := make(chan int)
			errs := make(chan error, names)
			var wg sync.WaitGroup
			for range 16 {
				wg.Go(func() {
					for i := range work {
						a := i / perAddr
						_, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: fmt.Sprintf("invented-%d", i),
							Password: "guess", IP: fmt.Sprintf("2001:db8:%x:%x::1", a>>16, a&0xffff)})
						if !errors.Is(err, accounts.ErrBadCredentials) {
							errs <- fmt.Errorf("name %d: %v, want ErrBadCredentials", i, err)
						}
					}
				})
			}
			for i := range names {
				work <- i
			}
			close(work)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}

			kinds := map[string]int{}
			var maxTTL time.Duration
			var bytes int64
			memory := rname != "miniredis" // miniredis has no MEMORY USAGE
			iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
			for iter.Next(ctx) {
				k := iter.Val()
				kind := strings.TrimPrefix(k, r.prefix+"acct:{s}:thr:")
				for _, p := range []string{"signin:user:", "signin:ip:"} {
					if strings.HasPrefix(kind, p) {
						kind = strings.TrimSuffix(p, ":")
					}
				}
				kinds[kind]++
				if kind != "signin:user" {
					continue
				}
				ttl, err := rdb.PTTL(ctx, k).Result()
				if err != nil {
					t.Fatal(err)
				}
				maxTTL = max(maxTTL, ttl)
				if memory {
					n, err := rdb.MemoryUsage(ctx, k).Result()
					if err != nil {
						t.Fatal(err)
					}
					bytes += n
				}
			}
			if err := iter.Err(); err != nil {
				t.Fatal(err)
			}
			t.Logf("%d invented names from %d /64s: keys %v, the names' %d bytes (%.0f a name), their longest TTL %v",
				names, names/perAddr, kinds, bytes, float64(bytes)/float64(names), maxTTL.Round(time.Second))
			if kinds["signin:user"] != names || kinds["signin:ip"] != names/perAddr || len(kinds) != 2 {
				t.Errorf("keys %v, want %d signin:user (one a name) and %d signin:ip (one a /64)", kinds, names, names/perAddr)
			}
			if limit := 4*time.Hour + time.Minute; maxTTL > limit {
				t.Errorf("a name's key is held %v, want at most %v", maxTTL, limit)
			}
		})
	}
}

// TestForgettingSoonerGivesNoMoreGuesses: the failures of an account (and
// of an unknown user name) are forgotten AccountBackoff.Forget after the
// last. Forgotten sooner, a stranger could guess in bursts — the free
// failures and the short waits, then idle until forgotten — more often
// than by trying at every end of the 15-minute wait. With 4 hours the
// bursts give fewer guesses a day at every length. (Each guess from
// another address: the addresses' own throttle is not what is measured.)
func TestForgettingSoonerGivesNoMoreGuesses(t *testing.T) {
	ctx := context.Background()
	guesses := func(burstUntil time.Duration) int {
		t.Helper()
		mr := testenv.Miniredis(t)
		rdb := goredis.NewClient(&goredis.Options{Addr: mr.Addr()})
		defer rdb.Close()
		r := newRig(t, testenv.OpenStore(t, testenv.SQLiteURL(t)), rdb, nil)
		r.registerCitizen(t, "049095000123", "0912345678")
		advance := func(d time.Duration) { r.clock.Advance(d); mr.FastForward(d) }
		day := r.clock.Now().Add(24 * time.Hour)
		n := 0
		for r.clock.Now().Before(day) {
			_, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "049095000123", Password: "wrong guess " + fmt.Sprint(n)})
			var le *loa.Error
			switch {
			case errors.Is(err, accounts.ErrBadCredentials):
				n++
				advance(time.Millisecond)
			case errors.As(err, &le) && le.Code == loa.ERateLimited:
				if burstUntil > 0 && le.RetryAfter >= burstUntil {
					advance(r.cfg.AccountBackoff.Forget + 2*time.Minute) // idle until forgotten
					continue
				}
				advance(le.RetryAfter)
			default:
				t.Fatalf("guess %d: %v", n, err)
			}
		}
		return n
	}
	steady := guesses(0)
	t.Logf("trying at every end of the wait: %d guesses a day", steady)
	for _, until := range []time.Duration{time.Second, 16 * time.Second, time.Minute, 4 * time.Minute, 8 * time.Minute, 15 * time.Minute} {
		n := guesses(until)
		t.Logf("bursts until a wait of %v, then idle until forgotten: %d guesses a day", until, n)
		if n > steady {
			t.Errorf("bursts until a wait of %v, then idle %v: %d guesses a day, more than %d", until, accounts.DefaultConfig().AccountBackoff.Forget, n, steady)
		}
	}
}

func deleteKeys(rdb goredis.UniversalClient, pattern string) {
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	for iter.Next(ctx) {
		rdb.Del(ctx, iter.Val())
	}
}
