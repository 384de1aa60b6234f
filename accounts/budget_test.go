package accounts_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/internal/metrics"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/otp"
)

// TestAnonymousCodeBudget: SMS pumping — a stranger asking codes for many
// new numbers from many addresses — stops at the province's hourly
// budget's share for numbers without an account (503 with Retry-After,
// nothing published), registrations of new numbers wait with them; and
// the stranger locks no citizen out: a citizen's own phone still gets a
// verify_phone code from the reserve, and a password reset (not an
// anonymous flow) is not in the budget at all. The next hour starts
// afresh.
func TestAnonymousCodeBudget(t *testing.T) {
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			mr := testenv.Miniredis(t)
			rdb := goredis.NewClient(&goredis.Options{Addr: mr.Addr()})
			t.Cleanup(func() { rdb.Close() })
			r := newRig(t, db, rdb, func(c *accounts.Config) { c.AnonymousCodesPerHour = 10 })
			anonymousCodeBudget(t, r)
		})
	}
}

func anonymousCodeBudget(t *testing.T, r *rig) {
	ctx := context.Background()
	r.registerCitizen(t, "049095000123", "0912345678") // one code of the budget
	// The share for unknown numbers is 8: 7 more pass, each to a new
	// number from an address of its own.
	for i := range 7 {
		if _, err := r.svc.SendCode(ctx, fmt.Sprintf("09870000%02d", i), otp.PurposeVerifyPhone, fmt.Sprintf("198.51.100.%d", i)); err != nil {
			t.Fatalf("code %d: %v", i, err)
		}
	}
	published := r.pub.count()
	refused := func(what string, err error) {
		t.Helper()
		le, _ := errors.AsType[*loa.Error](err)
		if le == nil || le.Code != loa.EUnavailable || le.RetryAfter <= 0 || le.RetryAfter > time.Hour || !errors.Is(err, otp.ErrBudget) {
			t.Errorf("%s: %v, want 503 with Retry-After", what, err)
		}
	}
	_, err := r.svc.SendCode(ctx, "0987000099", otp.PurposeVerifyPhone, "198.51.100.99")
	refused("a new number past the share", err)
	_, err = r.svc.RegisterCitizen(ctx, accounts.CitizenRegistration{FullName: "Trần Thị C", CitizenID: "001099000456",
		Phone: "0987000098", Password: goodPassword, IP: "198.51.100.98"})
	refused("a registration of a new number", err)
	// A registration with the citizen's own phone is refused alike: its
	// answer must not tell that the phone has an account.
	_, err = r.svc.RegisterCitizen(ctx, accounts.CitizenRegistration{FullName: "Trần Thị C", CitizenID: "001099000457",
		Phone: "0912345678", Password: goodPassword, IP: "198.51.100.97"})
	refused("a registration with a held phone", err)
	if n := r.pub.count(); n != published {
		t.Fatalf("%d SMS published past the share", n-published)
	}
	// The citizen is not locked out.
	if _, err := r.svc.SendCode(ctx, "0912345678", otp.PurposeVerifyPhone, "198.51.100.96"); err != nil {
		t.Errorf("the citizen's own phone from the reserve: %v", err)
	}
	if _, err := r.svc.RequestReset(ctx, "0912345678", "198.51.100.95"); err != nil {
		t.Errorf("the citizen's password reset: %v", err)
	}
	if err := r.svc.Flush(ctx); err != nil { // the reset's code is sent after its answer
		t.Fatal(err)
	}
	if n := r.pub.count(); n != published+2 {
		t.Errorf("%d published for the citizen, want 2", n-published)
	}
	// The reserve is spent too at the budget (10): the next known phone's
	// code waits as well.
	r.clock.Advance(time.Minute)
	if _, err := r.svc.SendCode(ctx, "0912345678", otp.PurposeVerifyPhone, "198.51.100.94"); err != nil {
		t.Errorf("the citizen's second code from the reserve: %v", err)
	}
	r.clock.Advance(time.Minute)
	_, err = r.svc.SendCode(ctx, "0912345678", otp.PurposeVerifyPhone, "198.51.100.93")
	refused("a known number past the budget", err)
	// The operators were told, once for the hour, and the metrics count
	// every refusal: 3 of the share, 1 of all of it; the hour used 10.
	if n := strings.Count(r.logs.String(), "budget of anonymous SMS codes"); n != 1 {
		t.Errorf("the spent budget was logged %d times in the hour, want once:\n%s", n, r.logs.String())
	}
	scrape := scrapeMetrics(t, r.metrics)
	for _, want := range []string{`loa_anonymous_codes_refused_total{part="share"} 3`, `loa_anonymous_codes_refused_total{part="all"} 1`,
		"loa_anonymous_codes_budget_used 10", "loa_anonymous_codes_budget 10"} {
		if !strings.Contains(scrape, want+"\n") {
			t.Errorf("metrics lack %s:\n%s", want, scrape)
		}
	}
	// The next hour starts afresh.
	r.clock.Advance(time.Hour)
	if _, err := r.svc.SendCode(ctx, "0987000099", otp.PurposeVerifyPhone, "198.51.100.92"); err != nil {
		t.Errorf("a new number in the next hour: %v", err)
	}
	if scrape := scrapeMetrics(t, r.metrics); !strings.Contains(scrape, "loa_anonymous_codes_budget_used 1\n") {
		t.Errorf("the next hour's count:\n%s", scrape)
	}
}

// scrapeMetrics returns m's metrics in the text format Prometheus reads.
func scrapeMetrics(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}
