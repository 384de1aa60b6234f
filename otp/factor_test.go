package otp

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

func newTestVerifier(t testing.TB, env *redisEnv) (*TOTPVerifier, *MemFactorStore, string) {
	t.Helper()
	k, err := GenerateTOTPKey("Loa", "official")
	if err != nil {
		t.Fatal(err)
	}
	store := &MemFactorStore{}
	v := &TOTPVerifier{Store: store, Redis: env.rdb, Now: env.clock.Now, KeyPrefix: env.prefix}
	return v, store, k.Secret
}

func codeAt(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// badCode returns a 6-digit code valid for no step around now.
func badCode(t testing.TB, secret string, now time.Time) string {
	t.Helper()
	for i := 0; ; i++ {
		c := wrong("000000", i)
		if _, ok, _ := MatchTOTP(secret, c, now); !ok {
			return c
		}
	}
}

func TestTOTPVerifier(t *testing.T) {
	forEachRedis(t, testTOTPVerifier)
}

func testTOTPVerifier(t *testing.T, newEnv newEnvFunc) {
	ctx := context.Background()
	const factor = "factor-1"

	t.Run("AcceptOnceThenReplay", func(t *testing.T) {
		env := newEnv(t)
		v, store, secret := newTestVerifier(t, env)
		now := env.clock.Now()
		code := codeAt(t, secret, now)
		if err := v.Verify(ctx, factor, secret, code); err != nil {
			t.Fatal(err)
		}
		if last, ok := store.LastStep(factor); !ok || last != TOTPStep(now) {
			t.Fatalf("last step %d, %v; want %d", last, ok, TOTPStep(now))
		}
		wantErr(t, v.Verify(ctx, factor, secret, code), ErrReplay)
		// Still within skew 30 s later, but the step was used.
		env.advance(30 * time.Second)
		wantErr(t, v.Verify(ctx, factor, secret, code), ErrReplay)
		// The next step's code works; after it, the current step's code,
		// though within skew, is a replay (RFC 6238 §5.2).
		if err := v.Verify(ctx, factor, secret, codeAt(t, secret, env.clock.Now().Add(30*time.Second))); err != nil {
			t.Fatal(err)
		}
		wantErr(t, v.Verify(ctx, factor, secret, codeAt(t, secret, env.clock.Now())), ErrReplay)
		// Replays are not failures: no lock after many.
		for range 10 {
			wantErr(t, v.Verify(ctx, factor, secret, code), ErrReplay)
		}
	})

	t.Run("Skew", func(t *testing.T) {
		env := newEnv(t)
		v, _, secret := newTestVerifier(t, env)
		now := env.clock.Now()
		wantErr(t, v.Verify(ctx, factor, secret, codeAt(t, secret, now.Add(-60*time.Second))), ErrInvalidCode)
		wantErr(t, v.Verify(ctx, factor, secret, codeAt(t, secret, now.Add(60*time.Second))), ErrInvalidCode)
		if err := v.Verify(ctx, factor, secret, codeAt(t, secret, now.Add(-30*time.Second))); err != nil {
			t.Fatalf("previous step: %v", err)
		}
		if err := v.Verify(ctx, factor, secret, codeAt(t, secret, now.Add(30*time.Second))); err != nil {
			t.Fatalf("next step: %v", err)
		}
	})

	t.Run("RacingSameCode", func(t *testing.T) {
		env := newEnv(t)
		v, _, secret := newTestVerifier(t, env)
		code := codeAt(t, secret, env.clock.Now())
		var ok, refused atomic.Int32
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				err := v.Verify(ctx, factor, secret, code)
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, ErrReplay), errors.Is(err, ErrLocked):
					// ErrLocked: beyond MaxFailures attempts in flight.
					refused.Add(1)
				default:
					t.Errorf("verify: %v", err)
				}
			})
		}
		wg.Wait()
		if ok.Load() != 1 || refused.Load() != 19 {
			t.Fatalf("%d successes, %d refused; want 1 and 19", ok.Load(), refused.Load())
		}
		// The race left no lock behind.
		env.advance(30 * time.Second)
		if err := v.Verify(ctx, factor, secret, codeAt(t, secret, env.clock.Now())); err != nil {
			t.Fatalf("after the race: %v", err)
		}
	})

	t.Run("Lockout", func(t *testing.T) {
		env := newEnv(t)
		v, _, secret := newTestVerifier(t, env)
		for i := range 5 {
			wantErr(t, v.Verify(ctx, factor, secret, badCode(t, secret, env.clock.Now())), ErrInvalidCode)
			if i < 4 {
				env.advance(time.Minute) // all five within 5 minutes
			}
		}
		// Locked: even the right code is refused, and it is not consumed.
		wantErr(t, v.Verify(ctx, factor, secret, codeAt(t, secret, env.clock.Now())), ErrLocked)
		// Other factors are not affected.
		if err := v.Verify(ctx, "factor-2", secret, codeAt(t, secret, env.clock.Now())); err != nil {
			t.Fatalf("other factor: %v", err)
		}
		env.advance(15*time.Minute - time.Second)
		wantErr(t, v.Verify(ctx, factor, secret, codeAt(t, secret, env.clock.Now())), ErrLocked)
		env.advance(time.Second)
		if err := v.Verify(ctx, factor, secret, codeAt(t, secret, env.clock.Now())); err != nil {
			t.Fatalf("after 15 minutes: %v", err)
		}
	})

	t.Run("FailuresSlideOutOfWindow", func(t *testing.T) {
		env := newEnv(t)
		v, _, secret := newTestVerifier(t, env)
		for range 4 {
			wantErr(t, v.Verify(ctx, factor, secret, badCode(t, secret, env.clock.Now())), ErrInvalidCode)
		}
		env.advance(5 * time.Minute)
		for range 4 {
			wantErr(t, v.Verify(ctx, factor, secret, badCode(t, secret, env.clock.Now())), ErrInvalidCode)
		}
		if err := v.Verify(ctx, factor, secret, codeAt(t, secret, env.clock.Now())); err != nil {
			t.Fatalf("8 failures in two windows locked the factor: %v", err)
		}
	})

	t.Run("SuccessResetsFailures", func(t *testing.T) {
		env := newEnv(t)
		v, _, secret := newTestVerifier(t, env)
		for range 4 {
			wantErr(t, v.Verify(ctx, factor, secret, badCode(t, secret, env.clock.Now())), ErrInvalidCode)
		}
		if err := v.Verify(ctx, factor, secret, codeAt(t, secret, env.clock.Now())); err != nil {
			t.Fatal(err)
		}
		for range 4 {
			wantErr(t, v.Verify(ctx, factor, secret, badCode(t, secret, env.clock.Now())), ErrInvalidCode)
		}
		env.advance(30 * time.Second)
		if err := v.Verify(ctx, factor, secret, codeAt(t, secret, env.clock.Now())); err != nil {
			t.Fatalf("locked after a success in between: %v", err)
		}
	})

	t.Run("ConcurrentGuessesBounded", func(t *testing.T) {
		env := newEnv(t)
		v, _, secret := newTestVerifier(t, env)
		bad := badCode(t, secret, env.clock.Now())
		var invalid, locked atomic.Int32
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				err := v.Verify(ctx, factor, secret, bad)
				switch {
				case errors.Is(err, ErrInvalidCode):
					invalid.Add(1)
				case errors.Is(err, ErrLocked):
					locked.Add(1)
				default:
					t.Errorf("verify: %v", err)
				}
			})
		}
		wg.Wait()
		if invalid.Load() > 5 || invalid.Load()+locked.Load() != 50 {
			t.Fatalf("%d guesses evaluated, %d locked; want at most 5 evaluated", invalid.Load(), locked.Load())
		}
	})

	t.Run("BadInput", func(t *testing.T) {
		env := newEnv(t)
		v, _, secret := newTestVerifier(t, env)
		wantErr(t, v.Verify(ctx, "", secret, "123456"), ErrInvalidInput)
		wantErr(t, v.Verify(ctx, "a}b", secret, "123456"), ErrInvalidInput)
		if err := v.Verify(ctx, factor, "!!", "123456"); err == nil || errors.Is(err, ErrInvalidCode) {
			t.Fatalf("broken secret: %v", err)
		}
		// A broken secret is not the user's failure.
		for range 5 {
			_ = v.Verify(ctx, factor, "!!", "123456")
		}
		if err := v.Verify(ctx, factor, secret, codeAt(t, secret, env.clock.Now())); err != nil {
			t.Fatal(err)
		}
	})
}

func TestTOTPVerifierNeedsDependencies(t *testing.T) {
	if err := (&TOTPVerifier{}).Verify(context.Background(), "f", "s", "123456"); err == nil {
		t.Fatal("no error without Store and Redis")
	}
}

// errStore fails every AdvanceStep.
type errStore struct{ calls atomic.Int32 }

func (s *errStore) AdvanceStep(context.Context, string, int64) (bool, error) {
	s.calls.Add(1)
	return false, errors.New("database down")
}

func TestTOTPVerifierStoreError(t *testing.T) {
	env := newMiniredisEnv(t)
	v, _, secret := newTestVerifier(t, env)
	store := &errStore{}
	v.Store = store
	err := v.Verify(context.Background(), "f", secret, codeAt(t, secret, env.clock.Now()))
	if err == nil || errors.Is(err, ErrReplay) || errors.Is(err, ErrInvalidCode) || store.calls.Load() != 1 {
		t.Fatalf("store failure: %v (calls %d)", err, store.calls.Load())
	}
}

func TestMemFactorStore(t *testing.T) {
	ctx := context.Background()
	var s MemFactorStore
	if _, ok := s.LastStep("f"); ok {
		t.Fatal("empty store has a step")
	}
	for _, tc := range []struct {
		step int64
		ok   bool
	}{{0, true}, {0, false}, {5, true}, {4, false}, {5, false}, {6, true}} {
		ok, err := s.AdvanceStep(ctx, "f", tc.step)
		if err != nil || ok != tc.ok {
			t.Fatalf("AdvanceStep(%d) = %v, %v; want %v", tc.step, ok, err, tc.ok)
		}
	}
	if ok, _ := s.AdvanceStep(ctx, "g", 1); !ok {
		t.Fatal("factors are not independent")
	}
}
