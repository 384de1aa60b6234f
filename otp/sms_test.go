package otp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/loa-hub/loa/internal/testenv/roundtrips"
)

var testSMSSecret = []byte("test-secret-test-secret-test-secret!")

func newTestSMSCodes(t testing.TB, env *redisEnv, modify ...func(*SMSConfig)) *SMSCodes {
	t.Helper()
	cfg := DefaultSMSConfig()
	cfg.Secret = testSMSSecret
	cfg.Now = env.clock.Now
	cfg.KeyPrefix = env.prefix
	for _, m := range modify {
		m(&cfg)
	}
	s, err := NewSMSCodes(env.rdb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// wrong returns a valid-looking code different from code.
func wrong(code string, i int) string {
	n, _ := strconv.Atoi(code)
	return fmt.Sprintf("%06d", (n+1+i)%1_000_000)
}

func mustIssue(t *testing.T, s *SMSCodes, phone, purpose, ip string) (Challenge, string) {
	t.Helper()
	ch, code, err := s.Issue(context.Background(), phone, purpose, ip)
	if err != nil {
		t.Fatalf("Issue(%s, %s, %s): %v", phone, purpose, ip, err)
	}
	return ch, code
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %v", err, target)
	}
}

func wantRateLimit(t *testing.T, err, target error, retry time.Duration) {
	t.Helper()
	var rl *RateLimitError
	if !errors.As(err, &rl) || !errors.Is(err, target) {
		t.Fatalf("got error %v, want *RateLimitError wrapping %v", err, target)
	}
	if rl.RetryAfter != retry {
		t.Fatalf("RetryAfter = %s, want %s", rl.RetryAfter, retry)
	}
}

func TestSMSCodes(t *testing.T) {
	forEachRedis(t, testSMSCodes)
}

func testSMSCodes(t *testing.T, newEnv newEnvFunc) {
	ctx := context.Background()
	const phone, ip = "84912345678", "203.0.113.7"

	t.Run("IssueVerify", func(t *testing.T) {
		env := newEnv(t)
		s := newTestSMSCodes(t, env)
		start := env.clock.Now()
		ch, code := mustIssue(t, s, phone, PurposeRegister, ip)
		if !regexp.MustCompile(`^[0-9]{6}$`).MatchString(code) {
			t.Fatalf("code %q is not 6 digits", code)
		}
		if !regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`).MatchString(ch.ID) {
			t.Fatalf("challenge ID %q is not 22 URL-safe characters", ch.ID)
		}
		if ch.Phone != phone || ch.Purpose != PurposeRegister || !ch.ExpiresAt.Equal(start.Add(5*time.Minute)) {
			t.Fatalf("challenge = %+v", ch)
		}
		env.advance(4*time.Minute + 59*time.Second)
		got, err := s.Verify(ctx, ch.ID, " "+code+" ")
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != ch.ID || got.Phone != ch.Phone || got.Purpose != ch.Purpose || !got.ExpiresAt.Equal(ch.ExpiresAt) {
			t.Fatalf("Verify = %+v, want %+v", got, ch)
		}
	})

	t.Run("SingleUse", func(t *testing.T) {
		s := newTestSMSCodes(t, newEnv(t))
		ch, code := mustIssue(t, s, phone, PurposeLogin, ip)
		if _, err := s.Verify(ctx, ch.ID, code); err != nil {
			t.Fatal(err)
		}
		_, err := s.Verify(ctx, ch.ID, code)
		wantErr(t, err, ErrVoid)
	})

	t.Run("WrongCodeVoidsAfterMaxAttempts", func(t *testing.T) {
		s := newTestSMSCodes(t, newEnv(t))
		ch, code := mustIssue(t, s, phone, PurposeRegister, ip)
		for i := range 5 {
			_, err := s.Verify(ctx, ch.ID, wrong(code, i))
			wantErr(t, err, ErrWrongCode)
		}
		_, err := s.Verify(ctx, ch.ID, code)
		wantErr(t, err, ErrVoid)
	})

	t.Run("MalformedCodeCounts", func(t *testing.T) {
		s := newTestSMSCodes(t, newEnv(t))
		ch, code := mustIssue(t, s, phone, PurposeRegister, ip)
		for _, c := range []string{"", "12345", "1234567", "abcdef", code + "0"} {
			_, err := s.Verify(ctx, ch.ID, c)
			wantErr(t, err, ErrWrongCode)
		}
		_, err := s.Verify(ctx, ch.ID, code)
		wantErr(t, err, ErrVoid)
	})

	t.Run("Expiry", func(t *testing.T) {
		env := newEnv(t)
		s := newTestSMSCodes(t, env)
		ch, code := mustIssue(t, s, phone, PurposeRegister, ip)
		env.advance(5 * time.Minute)
		_, err := s.Verify(ctx, ch.ID, code)
		wantErr(t, err, ErrExpired)
		// Garbage collection is a TTL, not the expiry decision.
		env.advance(time.Hour)
		if _, err := s.Verify(ctx, ch.ID, code); !errors.Is(err, ErrExpired) && !errors.Is(err, ErrNotFound) {
			t.Fatalf("an hour later: %v, want ErrExpired or ErrNotFound", err)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		s := newTestSMSCodes(t, newEnv(t))
		for _, id := range []string{"AAAAAAAAAAAAAAAAAAAAAA", "", "short", "AAAAAAAAAAAAAAAAAAAAA*", "../../AAAAAAAAAAAAAAAA"} {
			_, err := s.Verify(ctx, id, "123456")
			wantErr(t, err, ErrNotFound)
		}
	})

	t.Run("Cooldown", func(t *testing.T) {
		env := newEnv(t)
		s := newTestSMSCodes(t, env)
		mustIssue(t, s, phone, PurposeRegister, ip)
		env.advance(10 * time.Second)
		_, code, err := s.Issue(ctx, phone, PurposeRegister, ip)
		wantRateLimit(t, err, ErrCooldown, 20*time.Second)
		if code != "" {
			t.Fatal("a refused Issue returned a code")
		}
		// Another purpose has its own window: one flow's requests never
		// use up another's.
		mustIssue(t, s, phone, PurposeLogin, ip)
		// Another phone is not affected.
		mustIssue(t, s, "84987654321", PurposeRegister, ip)
		// The refusal was not recorded: 31 s after the first send is enough.
		env.advance(21 * time.Second)
		mustIssue(t, s, phone, PurposeRegister, ip)
	})

	t.Run("Withdraw", func(t *testing.T) {
		env := newEnv(t)
		s := newTestSMSCodes(t, env, func(c *SMSConfig) { c.MaxSendsPerIP = 1 })
		ch, code := mustIssue(t, s, phone, PurposeRegister, ip)
		ok, err := s.Withdraw(ctx, ch.ID)
		if err != nil || !ok {
			t.Fatalf("Withdraw = %v, %v; want true", ok, err)
		}
		// The code is void: a copy that reaches the phone late is useless,
		// and a dispatcher asking learns not to send it.
		_, err = s.Verify(ctx, ch.ID, code)
		wantErr(t, err, ErrVoid)
		if w, err := withdrawn(ctx, env.rdb, env.prefix, ch.ID); err != nil || !w {
			t.Fatalf("Withdrawn = %v, %v; want true", w, err)
		}
		// It no longer counts: no cooldown, and the address's one send is
		// free again.
		ch2, code2 := mustIssue(t, s, phone, PurposeRegister, ip)
		if ok, err := s.Withdraw(ctx, ch.ID); err != nil || ok {
			t.Fatalf("second Withdraw = %v, %v; want false", ok, err)
		}
		if w, err := withdrawn(ctx, env.rdb, env.prefix, ch2.ID); err != nil || w {
			t.Fatalf("Withdrawn(live) = %v, %v; want false", w, err)
		}
		if _, err := s.Verify(ctx, ch2.ID, code2); err != nil {
			t.Fatalf("the next code: %v", err)
		}
		if w, err := withdrawn(ctx, env.rdb, env.prefix, ch2.ID); err != nil || w {
			t.Fatalf("Withdrawn(used) = %v, %v; want false", w, err)
		}
		// A used, an unknown and a malformed challenge are not withdrawn.
		for _, id := range []string{ch2.ID, "AAAAAAAAAAAAAAAAAAAAAA", "nope"} {
			if ok, err := s.Withdraw(ctx, id); err != nil || ok {
				t.Fatalf("Withdraw(%s) = %v, %v; want false", id, ok, err)
			}
		}
		// Without a client address only the phone's window is uncounted.
		env.advance(time.Minute)
		ch3, _ := mustIssue(t, s, "84987654321", PurposeLogin, "")
		if ok, err := s.Withdraw(ctx, ch3.ID); err != nil || !ok {
			t.Fatalf("Withdraw without an address = %v, %v", ok, err)
		}
		mustIssue(t, s, "84987654321", PurposeLogin, "")
	})

	t.Run("SubjectAndWindow", func(t *testing.T) {
		env := newEnv(t)
		s := newTestSMSCodes(t, env)
		bound := func(window string) IssueOptions { return IssueOptions{Subject: "acct 42", Window: window} }
		ch, code, err := s.IssueWith(ctx, phone, PurposeReset, ip, bound("id-a"))
		if err != nil || ch.Subject != "acct 42" {
			t.Fatalf("issue: %+v %v", ch, err)
		}
		// The subject is there before any attempt, and comes back with a
		// peek and a use.
		if got, err := s.Subject(ctx, ch.ID); err != nil || got != "acct 42" {
			t.Errorf("subject: %q %v", got, err)
		}
		_, err = s.Verify(ctx, ch.ID, wrong(code, 0))
		wantErr(t, err, ErrWrongCode)
		if got, err := s.Peek(ctx, ch.ID, code); err != nil || got.Subject != "acct 42" || got.Phone != phone {
			t.Errorf("peek: %+v %v", got, err)
		}
		if got, err := s.Verify(ctx, ch.ID, code); err != nil || got.Subject != "acct 42" {
			t.Errorf("verify: %+v %v", got, err)
		}
		// The window is the one named, not the phone's: another window to
		// the same phone is not in its cooldown, the same window to
		// another phone is.
		if _, _, err := s.IssueWith(ctx, phone, PurposeReset, ip, bound("id-b")); err != nil {
			t.Errorf("another window, same phone: %v", err)
		}
		_, _, err = s.IssueWith(ctx, "84987654321", PurposeReset, ip, bound("id-a"))
		wantRateLimit(t, err, ErrCooldown, 30*time.Second)
		// Nothing bound: an empty subject.
		ch, code = mustIssue(t, s, phone, PurposeRegister, ip)
		if got, err := s.Subject(ctx, ch.ID); err != nil || got != "" {
			t.Errorf("unbound subject: %q %v", got, err)
		}
		if got, err := s.Verify(ctx, ch.ID, code); err != nil || got.Subject != "" {
			t.Errorf("unbound: %+v %v", got, err)
		}
		for _, id := range []string{"nope", "AAAAAAAAAAAAAAAAAAAAAA"} {
			if _, err := s.Subject(ctx, id); !errors.Is(err, ErrNotFound) {
				t.Errorf("subject of %s: %v", id, err)
			}
		}
		for _, o := range []IssueOptions{{Window: "a:b"}, {Window: strings.Repeat("w", 65)}, {Subject: strings.Repeat("s", MaxSubjectBytes+1)}} {
			if _, _, err := s.IssueWith(ctx, phone, PurposeReset, ip, o); !errors.Is(err, ErrInvalidInput) {
				t.Errorf("%+v: %v", o, err)
			}
		}
	})

	t.Run("SendsPerWindow", func(t *testing.T) {
		env := newEnv(t)
		s := newTestSMSCodes(t, env)
		for i := range 5 {
			if i > 0 {
				env.advance(30 * time.Second)
			}
			mustIssue(t, s, phone, PurposeRegister, ip)
		}
		env.advance(30 * time.Second) // t = 150 s
		_, _, err := s.Issue(ctx, phone, PurposeRegister, ip)
		wantRateLimit(t, err, ErrTooManySends, 450*time.Second)
		env.advance(449 * time.Second) // t = 599 s
		_, _, err = s.Issue(ctx, phone, PurposeRegister, ip)
		wantRateLimit(t, err, ErrTooManySends, time.Second)
		env.advance(time.Second) // t = 600 s: the first send leaves the window
		mustIssue(t, s, phone, PurposeRegister, ip)
		env.advance(29 * time.Second)
		// Full again, and the cooldown is shorter than the window's wait.
		_, _, err = s.Issue(ctx, phone, PurposeRegister, ip)
		wantRateLimit(t, err, ErrTooManySends, time.Second)
	})

	t.Run("PerIP", func(t *testing.T) {
		env := newEnv(t)
		s := newTestSMSCodes(t, env)
		for i := range 20 {
			mustIssue(t, s, fmt.Sprintf("8491000%04d", i), PurposeRegister, "198.51.100.9:40000")
		}
		// Port and IPv4-mapped form are the same address.
		for _, addr := range []string{"198.51.100.9", "198.51.100.9:1234", "::ffff:198.51.100.9"} {
			_, _, err := s.Issue(ctx, "84910009999", PurposeRegister, addr)
			wantRateLimit(t, err, ErrTooManyFromIP, time.Hour)
		}
		mustIssue(t, s, "84910009999", PurposeRegister, "198.51.100.10")
		env.advance(time.Hour)
		mustIssue(t, s, "84910008888", PurposeRegister, "198.51.100.9")
	})

	t.Run("PerIPv6Prefix", func(t *testing.T) {
		s := newTestSMSCodes(t, newEnv(t), func(c *SMSConfig) { c.MaxSendsPerIP = 2 })
		mustIssue(t, s, "84910000001", PurposeRegister, "2001:db8:1:2::1")
		mustIssue(t, s, "84910000002", PurposeRegister, "[2001:db8:1:2:aaaa::5]:443")
		_, _, err := s.Issue(ctx, "84910000003", PurposeRegister, "2001:db8:1:2:ffff:ffff:ffff:ffff")
		wantRateLimit(t, err, ErrTooManyFromIP, time.Hour)
		mustIssue(t, s, "84910000003", PurposeRegister, "2001:db8:1:3::1")
	})

	t.Run("NoClientIP", func(t *testing.T) {
		s := newTestSMSCodes(t, newEnv(t), func(c *SMSConfig) { c.MaxSendsPerIP = 1 })
		mustIssue(t, s, "84910000001", PurposeLogin, "")
		mustIssue(t, s, "84910000002", PurposeLogin, "")
	})

	t.Run("ResendVoidsNothing", func(t *testing.T) {
		env := newEnv(t)
		s := newTestSMSCodes(t, env)
		c1, code1 := mustIssue(t, s, phone, PurposeLogin, ip)
		env.advance(time.Second)
		// Another flow's request for the same phone, then a resend of the
		// same purpose: the first challenge stays live.
		c2, code2 := mustIssue(t, s, phone, PurposeVerifyPhone, ip)
		env.advance(31 * time.Second)
		c3, code3 := mustIssue(t, s, phone, PurposeLogin, ip)
		if c1.ID == c3.ID {
			t.Fatal("resend reused the challenge ID")
		}
		for _, c := range []struct {
			ch   Challenge
			code string
		}{{c1, code1}, {c2, code2}, {c3, code3}} {
			if _, err := s.Verify(ctx, c.ch.ID, c.code); err != nil {
				t.Errorf("%s challenge: %v", c.ch.Purpose, err)
			}
		}
	})

	t.Run("Peek", func(t *testing.T) {
		s := newTestSMSCodes(t, newEnv(t))
		ch, code := mustIssue(t, s, phone, PurposeReset, ip)
		if _, err := s.Peek(ctx, ch.ID, "000000"); !errors.Is(err, ErrWrongCode) && code != "000000" {
			t.Errorf("wrong code peeked: %v", err)
		}
		for range 2 {
			if got, err := s.Peek(ctx, ch.ID, code); err != nil || got.Purpose != PurposeReset {
				t.Fatalf("peek: %+v %v", got, err)
			}
		}
		if _, err := s.Verify(ctx, ch.ID, code); err != nil {
			t.Fatalf("verify after peeks: %v", err)
		}
		_, err := s.Peek(ctx, ch.ID, code)
		wantErr(t, err, ErrVoid)
	})

	t.Run("ConcurrentWrongGuesses", func(t *testing.T) {
		s := newTestSMSCodes(t, newEnv(t))
		ch, code := mustIssue(t, s, phone, PurposeRegister, ip)
		var wrongs, voids atomic.Int32
		var wg sync.WaitGroup
		for i := range 50 {
			wg.Go(func() {
				_, err := s.Verify(ctx, ch.ID, wrong(code, i))
				switch {
				case errors.Is(err, ErrWrongCode):
					wrongs.Add(1)
				case errors.Is(err, ErrVoid):
					voids.Add(1)
				default:
					t.Errorf("guess %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		if wrongs.Load() != 5 || voids.Load() != 45 {
			t.Fatalf("%d counted, %d void; want 5 and 45", wrongs.Load(), voids.Load())
		}
		_, err := s.Verify(ctx, ch.ID, code)
		wantErr(t, err, ErrVoid)
	})

	t.Run("ConcurrentRightCode", func(t *testing.T) {
		s := newTestSMSCodes(t, newEnv(t))
		ch, code := mustIssue(t, s, phone, PurposeRegister, ip)
		var ok, voids atomic.Int32
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				_, err := s.Verify(ctx, ch.ID, code)
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, ErrVoid):
					voids.Add(1)
				default:
					t.Errorf("verify: %v", err)
				}
			})
		}
		wg.Wait()
		if ok.Load() != 1 || voids.Load() != 19 {
			t.Fatalf("%d successes, %d void; want 1 and 19", ok.Load(), voids.Load())
		}
	})

	t.Run("CodeNeverStored", func(t *testing.T) {
		env := newEnv(t)
		s := newTestSMSCodes(t, env)
		var codes []string
		for i := range 4 {
			ch, code := mustIssue(t, s, fmt.Sprintf("8490000000%d", i), Purposes()[i], ip)
			codes = append(codes, code)
			if _, err := s.Verify(ctx, ch.ID, wrong(code, 0)); !errors.Is(err, ErrWrongCode) {
				t.Fatal(err)
			}
		}
		dump := dumpKeys(t, env)
		if len(dump) == 0 {
			t.Fatal("no keys under the test prefix")
		}
		for _, code := range codes {
			// A digit run equal to the code; longer runs (timestamps,
			// phones) may contain any 6 digits by chance.
			re := regexp.MustCompile(`(^|[^0-9])` + code + `([^0-9]|$)`)
			for k, v := range dump {
				if re.MatchString(k) || re.MatchString(v) {
					t.Errorf("code %s found in key %s = %q", code, k, v)
				}
			}
		}
	})

	t.Run("PhoneBound", func(t *testing.T) {
		env := newEnv(t)
		s := newTestSMSCodes(t, env, func(c *SMSConfig) { c.MaxSendsPerIP = 1 })
		b := &Bound{Free: 2, Base: time.Minute, Max: 3 * time.Minute, Forget: time.Hour}
		issue := func(purpose, ip string) error {
			_, _, err := s.IssueWith(ctx, phone, purpose, ip, IssueOptions{Bound: b})
			return err
		}
		// Two free sends and the first beyond them pass (each purpose has
		// its own window; each from an address of its own); that one
		// makes the next wait a minute.
		for i, p := range []string{PurposeRegister, PurposeVerifyPhone, PurposeLogin} {
			if i > 0 {
				env.advance(31 * time.Second)
			}
			if err := issue(p, fmt.Sprintf("198.51.100.%d", i)); err != nil {
				t.Fatalf("send %d: %v", i+1, err)
			}
		}
		trips := &roundtrips.Hook{}
		env.rdb.AddHook(trips)
		err := issue(PurposeReset, "198.51.100.10")
		wantRateLimit(t, err, ErrPhoneBound, time.Minute)
		wantErr(t, err, ErrTooManySends)
		if n := trips.N.Load(); n != 1 {
			t.Errorf("a send with a bound took %d round trips to Redis, want 1", n)
		}
		// The refused send stays counted in the phone's window (its
		// cooldown) and the address's.
		_, _, err = s.Issue(ctx, phone, PurposeReset, "198.51.100.11")
		wantRateLimit(t, err, ErrCooldown, 30*time.Second)
		_, _, err = s.Issue(ctx, "84987654321", PurposeReset, "198.51.100.10")
		wantRateLimit(t, err, ErrTooManyFromIP, time.Hour)
		// A send the send limits refuse is not counted in the bound: after
		// the wait, the next send is the bound's fourth (a wait of two
		// minutes), not its fifth (three).
		env.advance(time.Minute)
		_, _, err = s.IssueWith(ctx, phone, PurposeMFA, "198.51.100.0", IssueOptions{Bound: b})
		wantRateLimit(t, err, ErrTooManyFromIP, time.Hour-2*31*time.Second-time.Minute) // its send of the first
		if err := issue(PurposeMFA, "198.51.100.20"); err != nil {
			t.Fatalf("after the wait: %v", err)
		}
		err = issue(PurposeRegister, "198.51.100.21")
		wantRateLimit(t, err, ErrPhoneBound, 2*time.Minute)
		// Sends without a bound are not held by it, nor counted in it.
		if _, _, err := s.Issue(ctx, phone, PurposeVerifyPhone, "198.51.100.22"); err != nil {
			t.Errorf("a send without a bound: %v", err)
		}
		// The bound is forgotten Forget after its last counted send (and a
		// minute's margin).
		ttl, err := env.rdb.PTTL(ctx, env.prefix+"bound:"+phone).Result()
		if err != nil || ttl <= time.Hour || ttl > time.Hour+time.Minute {
			t.Errorf("the bound's TTL: %s %v, want an hour and a minute", ttl, err)
		}
		_, _, err = s.IssueWith(ctx, phone, PurposeLogin, "198.51.100.23", IssueOptions{Bound: &Bound{Base: time.Minute}})
		wantErr(t, err, ErrInvalidInput)
	})

	t.Run("Budget", func(t *testing.T) {
		env := newEnv(t)
		s := newTestSMSCodes(t, env)
		g := &Budget{Name: "anonymous", Limit: 5, Share: 3, Window: time.Hour}
		issue := func(i int, known bool) error {
			_, _, err := s.IssueWith(ctx, fmt.Sprintf("8491234%04d", i), PurposeVerifyPhone, fmt.Sprintf("198.51.100.%d", i), IssueOptions{Budget: g, Known: known})
			return err
		}
		now := env.clock.Now()
		left := now.Truncate(time.Hour).Add(time.Hour).Sub(now)
		// Phones not known spend the share, one each, whatever the
		// address; then they are refused until the window turns.
		for i := range 3 {
			if err := issue(i, false); err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
		}
		wantRateLimit(t, issue(3, false), ErrBudgetShare, left)
		// The refusal left no trace: the same phone, known, passes at once
		// (no cooldown, no count in its window), from the reserve.
		if err := issue(3, true); err != nil {
			t.Fatalf("the refused phone as known: %v", err)
		}
		if err := issue(4, true); err != nil {
			t.Fatalf("a known phone from the reserve: %v", err)
		}
		wantRateLimit(t, issue(5, true), ErrBudget, left)
		wantRateLimit(t, issue(6, false), ErrBudget, left)
		// The window's count, as the operators' gauge reads it: refusals
		// are not counted.
		if n, err := s.BudgetUsed(ctx, *g); err != nil || n != 5 {
			t.Errorf("used %d %v; want 5", n, err)
		}
		// Sends without the budget are not held by it.
		if _, _, err := s.Issue(ctx, "84987654321", PurposeLogin, "198.51.100.99"); err != nil {
			t.Errorf("a send without a budget: %v", err)
		}
		// The next window starts afresh.
		env.advance(left)
		if n, err := s.BudgetUsed(ctx, *g); err != nil || n != 0 {
			t.Errorf("used %d %v at the next window's start; want 0", n, err)
		}
		if err := issue(7, false); err != nil {
			t.Errorf("in the next window: %v", err)
		}
		_, _, err := s.IssueWith(ctx, phone, PurposeLogin, ip, IssueOptions{Budget: &Budget{Name: "a b", Limit: 1, Window: time.Hour}})
		wantErr(t, err, ErrInvalidInput)
	})

	t.Run("InvalidInput", func(t *testing.T) {
		s := newTestSMSCodes(t, newEnv(t))
		_, _, err := s.Issue(ctx, phone, "newsletter", ip)
		wantErr(t, err, ErrUnknownPurpose)
		for _, p := range []string{"", "+84912345678", "0912 345 678", "8491234567890123", "84*"} {
			_, _, err := s.Issue(ctx, p, PurposeLogin, ip)
			wantErr(t, err, ErrInvalidInput)
		}
		for _, a := range []string{"localhost", "1.2.3", "x:80"} {
			_, _, err := s.Issue(ctx, phone, PurposeLogin, a)
			wantErr(t, err, ErrInvalidInput)
		}
	})
}

func TestSMSConfigValidate(t *testing.T) {
	ok := DefaultSMSConfig()
	ok.Secret = testSMSSecret
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults with a secret: %v", err)
	}
	if err := DefaultSMSConfig().Validate(); err == nil {
		t.Fatal("defaults without a secret validated")
	}
	tests := map[string]func(*SMSConfig){
		"short secret":      func(c *SMSConfig) { c.Secret = []byte("short") },
		"zero ttl":          func(c *SMSConfig) { c.CodeTTL = 0 },
		"zero attempts":     func(c *SMSConfig) { c.MaxAttempts = 0 },
		"zero window":       func(c *SMSConfig) { c.SendWindow = 0 },
		"zero sends":        func(c *SMSConfig) { c.MaxSendsPerWindow = 0 },
		"negative cooldown": func(c *SMSConfig) { c.Cooldown = -time.Second },
		"zero ip window":    func(c *SMSConfig) { c.PerIPWindow = 0 },
		"zero ip sends":     func(c *SMSConfig) { c.MaxSendsPerIP = 0 },
		"empty prefix":      func(c *SMSConfig) { c.KeyPrefix = "" },
	}
	for name, modify := range tests {
		c := ok
		modify(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: validated", name)
		}
	}
}

func TestNewSMSCodesClusterNeedsHashTag(t *testing.T) {
	cfg := DefaultSMSConfig()
	cfg.Secret = testSMSSecret
	cfg.KeyPrefix = "otp:sms:"
	cluster := newClusterClient()
	defer cluster.Close()
	if _, err := NewSMSCodes(cluster, cfg); err == nil {
		t.Fatal("cluster client with an untagged prefix accepted")
	}
	cfg.KeyPrefix = "otp:{sms}:"
	if _, err := NewSMSCodes(cluster, cfg); err != nil {
		t.Fatal(err)
	}
}

func TestSMSCodeUniform(t *testing.T) {
	// Not a statistics test: it catches gross mistakes (a constant, a
	// short range, missing leading zeros).
	seen := make(map[string]bool)
	leadingZero := false
	for range 2000 {
		c, err := newSMSCode()
		if err != nil {
			t.Fatal(err)
		}
		if len(c) != 6 || !allDigits(c) {
			t.Fatalf("code %q", c)
		}
		seen[c] = true
		leadingZero = leadingZero || c[0] == '0'
	}
	if len(seen) < 1990 || !leadingZero {
		t.Fatalf("%d distinct codes of 2000, leading zero seen: %v", len(seen), leadingZero)
	}
}

// BenchmarkSMSVerify measures successful verifications (each of a distinct
// challenge) from 8×GOMAXPROCS goroutines, as many API handlers would, against
// LOA_TEST_REDIS_URL when set, else miniredis.
func BenchmarkSMSVerify(b *testing.B) {
	var env *redisEnv
	if os.Getenv("LOA_TEST_REDIS_URL") != "" {
		env = realRedis(b)(b)
	} else {
		env = newMiniredisEnv(b)
	}
	s := newTestSMSCodes(b, env, func(c *SMSConfig) { c.MaxSendsPerIP = 1 << 30 })
	ctx := context.Background()
	type issued struct{ id, code string }
	chs := make([]issued, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				ch, code, err := s.Issue(ctx, fmt.Sprintf("849%08d", i), PurposeLogin, "")
				if err != nil {
					b.Error(err)
					return
				}
				chs[i] = issued{ch.ID, code}
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	next.Store(0)
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c := chs[next.Add(1)-1]
			if _, err := s.Verify(ctx, c.id, c.code); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
}

// withdrawn looks a challenge's withdrawal up as a dispatcher does, in a
// pipeline of its own.
func withdrawn(ctx context.Context, rdb redis.UniversalClient, keyPrefix, challengeID string) (bool, error) {
	pipe := rdb.Pipeline()
	read := QueueWithdrawn(ctx, pipe, keyPrefix, challengeID)
	if pipe.Len() > 0 {
		_, _ = pipe.Exec(ctx) // the look-up holds its own answer or error
	}
	return read()
}
