package dispatcher

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/channels"
)

// roundTrips records the commands of each round trip a Redis client
// makes: one command, or a pipeline's.
type roundTrips struct {
	mu    sync.Mutex
	trips [][]string // each command's name and arguments, joined by spaces
}

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.add(cmd)
		return next(ctx, cmd)
	}
}

func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.add(cmds...)
		return next(ctx, cmds)
	}
}

func (h *roundTrips) add(cmds ...redis.Cmder) {
	var trip []string
	for _, c := range cmds {
		var b strings.Builder
		for i, a := range c.Args() {
			if i > 0 {
				b.WriteByte(' ')
			}
			if s, ok := a.(string); ok {
				b.WriteString(s)
			}
		}
		trip = append(trip, strings.ToLower(b.String()))
	}
	h.mu.Lock()
	h.trips = append(h.trips, trip)
	h.mu.Unlock()
}

// with returns the round trips with a command that mentions each of s.
func (h *roundTrips) with(s ...string) [][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out [][]string
	for _, trip := range h.trips {
		joined := strings.Join(trip, "\n")
		all := true
		for _, x := range s {
			all = all && strings.Contains(joined, strings.ToLower(x))
		}
		if all {
			out = append(out, trip)
		}
	}
	return out
}

// TestCodeWithdrawalIsLookedUpInItsClaimsRoundTrip: with no look-up of
// its own configured, the dispatcher reads a code's challenge in Redis
// (the API's SMS codes under the dispatcher's prefix) in the same round
// trip as the code's claim — one round trip a code for both, not two,
// and no goroutine — and does not send a withdrawn code, releasing its
// claim; a live one is sent once. On a fresh Redis (miniredis) the claim
// script is not loaded yet: the claim is made all the same.
func TestCodeWithdrawalIsLookedUpInItsClaimsRoundTrip(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		ctx := waitCtx(t)
		const phone = "84912345672"
		// Challenge IDs as otp makes them: 16 random bytes, base64url.
		const withdrawnID, liveID = "V2l0aGRyYXduQ2hhbGxlbm", "TGl2ZUNoYWxsZW5nZUlkMD"
		for id, state := range map[string]string{withdrawnID: "withdrawn", liveID: "live"} {
			if err := r.rdb.HSet(ctx, r.prefix+"otp:{sms}:ch:"+id, "state", state).Err(); err != nil {
				t.Fatal(err)
			}
		}
		withdrawn, live := "code-"+withdrawnID, "code-"+liveID
		trips := &roundTrips{}
		counted := redis.NewClient(r.rdb.(*redis.Client).Options())
		counted.AddHook(trips)
		t.Cleanup(func() { counted.Close() })
		r.start(t, func(d *Dispatcher) { d.cfg.UrgentRedis = counted })
		r.publishCode(t, withdrawn, phone)
		r.publishCode(t, live, phone)
		waitLedgerCount(t, r, live, 1)
		cancelled := waitFinal(t, r, withdrawn, 1)

		claims := NewClaims(r.rdb, r.prefix)
		for _, id := range []string{withdrawn, live} {
			challenge := strings.TrimPrefix(id, "code-")
			rkey := claims.redisKey(keyOf(id, string(channels.SMS), phone))
			lookUps := trips.with("hget " + r.prefix + "otp:{sms}:ch:" + challenge + " state")
			if len(lookUps) != 1 {
				t.Errorf("%s: its withdrawal was looked up in %d round trips, want 1: %q", id, len(lookUps), lookUps)
				continue
			}
			if !strings.Contains(strings.Join(lookUps[0], "\n"), rkey) {
				t.Errorf("%s: its withdrawal was looked up without its claim: %q", id, lookUps[0])
			}
		}
		if st := cancelled[0].Status; st != loa.StatusCancelled {
			t.Errorf("the withdrawn code's delivery: %s, want cancelled", st)
		}
		if c := r.outbox.Count(withdrawn, channels.SMS, phone); c != 0 {
			t.Errorf("the withdrawn code was sent %d times", c)
		}
		if c := r.outbox.Count(live, channels.SMS, phone); c != 1 {
			t.Errorf("the live code was sent %d times", c)
		}
		if n, err := r.rdb.Exists(ctx, claims.redisKey(keyOf(withdrawn, string(channels.SMS), phone))).Result(); err != nil || n != 0 {
			t.Errorf("the withdrawn code's claim is still held (%d, %v)", n, err)
		}
	})
}
