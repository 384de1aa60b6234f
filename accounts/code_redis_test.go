package accounts_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/internal/testenv/roundtrips"
	"github.com/loa-hub/loa/otp"
)

// TestAnonymousCodeIsOneRedisRoundTrip: an anonymous code's send limits
// and the phone's anonymous bound are checked and counted in one round
// trip to Redis, not one after the other; past the bound the refusal is
// the 429 it was (wrapping otp.ErrTooManySends), with the wait the bound
// sets. (End to end, across flows and addresses:
// api's TestAnonymousCodesCannotFloodAPhone.)
func TestAnonymousCodeIsOneRedisRoundTrip(t *testing.T) {
	for name, rdb := range redisClients(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			trips := &roundtrips.Hook{}
			rdb.AddHook(trips)
			r := newRig(t, testenv.OpenStore(t, testenv.SQLiteURL(t)), rdb, nil)
			// The first send loads the script (a Redis that has not seen it
			// answers NOSCRIPT to the first try).
			if _, err := r.svc.SendCode(ctx, "0987654321", otp.PurposeVerifyPhone, "203.0.113.1"); err != nil {
				t.Fatal(err)
			}
			purposes := []string{otp.PurposeRegister, otp.PurposeVerifyPhone}
			for i := range 10 {
				r.clock.Advance(2 * time.Minute) // past the cooldown, within each purpose's window
				before := trips.N.Load()
				if _, err := r.svc.SendCode(ctx, "0912345678", purposes[i%2], "203.0.113.9"); err != nil {
					t.Fatalf("code %d: %v", i+1, err)
				}
				if n := trips.N.Load() - before; n != 1 {
					t.Fatalf("code %d took %d round trips to Redis, want 1", i+1, n)
				}
			}
			r.clock.Advance(2 * time.Minute)
			_, err := r.svc.SendCode(ctx, "0912345678", otp.PurposeVerifyPhone, "203.0.113.9")
			var le *loa.Error
			if !errors.As(err, &le) || le.Code != loa.ERateLimited || le.RetryAfter != 28*time.Minute || !errors.Is(err, otp.ErrTooManySends) {
				t.Fatalf("the eleventh code: %v", err)
			}
		})
	}
}
