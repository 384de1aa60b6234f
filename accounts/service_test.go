package accounts_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	goredis "github.com/redis/go-redis/v9"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/accounts"
	accredis "github.com/loa-hub/loa/accounts/redis"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/otp"
	"github.com/loa-hub/loa/producer"
)

func TestRegistrationFlow(t *testing.T) {
	forEachStore(t, func(t *testing.T, r *rig) {
		ctx := context.Background()
		reg, err := r.svc.RegisterCitizen(ctx, accounts.CitizenRegistration{FullName: "  Nguyễn   Văn A ", CitizenID: "049095000123",
			Phone: "0912 345 678", Password: goodPassword, IP: "203.0.113.7"})
		if err != nil || reg.CodeErr != nil {
			t.Fatalf("register: %v %v", err, reg.CodeErr)
		}
		if reg.Status != accounts.StatusPending || reg.Challenge.ID == "" {
			t.Fatalf("registration %+v", reg)
		}
		env, d := r.pub.last(t)
		if env.Lane != topics.LaneOTP || env.Key != "84912345678" || !env.ExpiresAt.Equal(reg.Challenge.ExpiresAt) ||
			d.To.Type != producer.ToPhone || d.To.Value != "84912345678" || !slices.Equal(d.Channels, []string{"sms"}) || d.Priority != "high" {
			t.Errorf("published %+v %+v", env, d)
		}
		// Pending accounts cannot sign in yet, even with the right password:
		// they are no sign-in candidates.
		if _, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "049095000123", Password: goodPassword}); !errors.Is(err, accounts.ErrBadCredentials) {
			t.Errorf("pending sign-in: %v", err)
		}
		if _, err := r.svc.VerifyRegistration(ctx, reg.AccountID, reg.Challenge.ID, "000000", ""); !errors.Is(err, accounts.ErrCode) {
			t.Errorf("wrong code: %v", err)
		}
		a, err := r.svc.VerifyRegistration(ctx, reg.AccountID, reg.Challenge.ID, r.pub.lastCode(t), "")
		if err != nil || a.Status != accounts.StatusActive || a.FullName != "Nguyễn Văn A" || a.PhoneVerifiedAt.IsZero() {
			t.Fatalf("verify: %+v %v", a, err)
		}
		// A code is single use.
		if _, err := r.svc.VerifyRegistration(ctx, reg.AccountID, reg.Challenge.ID, r.pub.lastCode(t), ""); !errors.Is(err, accounts.ErrNotFound) {
			t.Errorf("verify again: %v", err)
		}
		for _, user := range []string{"049095000123", "0912345678", "+84 912 345 678"} {
			res, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: user, Password: goodPassword})
			if err != nil || res.PasswordExpired || !strings.HasPrefix(res.Token, accounts.SessionTokenPrefix) ||
				!res.ExpiresAt.Equal(start.Add(12*time.Hour)) {
				t.Fatalf("sign in as %s: %+v %v", user, res, err)
			}
			sess, err := r.svc.Authenticate(ctx, res.Token)
			if err != nil || sess.AccountID != reg.AccountID || sess.Restricted {
				t.Fatalf("authenticate: %+v %v", sess, err)
			}
		}
		// Another registration with the same citizen ID is pending like any
		// other (it reserves nothing) and is refused at activation; one with
		// the verified phone stores nothing and texts the phone a notice
		// instead of a code, answering the same.
		dup, err := r.svc.RegisterCitizen(ctx, accounts.CitizenRegistration{FullName: "B", CitizenID: "049095000123", Phone: "0987654321", Password: goodPassword})
		if err != nil || dup.CodeErr != nil {
			t.Fatalf("same citizen ID: %v %v", err, dup.CodeErr)
		}
		var ce *loa.Error
		if _, err := r.svc.VerifyRegistration(ctx, dup.AccountID, dup.Challenge.ID, r.pub.lastCode(t), ""); !errors.As(err, &ce) || ce.Code != loa.EConflict || ce.Field != "citizen_id" {
			t.Errorf("same citizen ID activated: %v", err)
		}
		// The citizen ID's owner is told, at their own phone.
		if err := r.svc.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if _, d := r.pub.last(t); d.To.Value != "84912345678" || !strings.Contains(d.Body, "CCCD") || strings.ContainsAny(d.Body, "0123456789") {
			t.Errorf("the owner's notice: %+v", d)
		}
		r.clock.Advance(time.Minute)
		n := r.pub.count()
		taken, err := r.svc.RegisterCitizen(ctx, accounts.CitizenRegistration{FullName: "B", CitizenID: "001099000456", Phone: "84912345678", Password: goodPassword})
		if err != nil || taken.CodeErr != nil || taken.Status != accounts.StatusPending || taken.Challenge.ID == "" {
			t.Fatalf("verified phone: %+v %v", taken, err)
		}
		if _, d := r.pub.last(t); r.pub.count() != n+1 || d.To.Value != "84912345678" || strings.ContainsAny(d.Body, "0123456789") {
			t.Errorf("verified phone: published %d, %+v", r.pub.count()-n, d)
		}
		if _, err := r.store.Account(ctx, taken.AccountID); !errors.Is(err, accounts.ErrNotFound) {
			t.Errorf("verified phone: an account was stored: %v", err)
		}
		// Organisations register the same way, with a tax code.
		org, err := r.svc.RegisterOrganisation(ctx, accounts.OrganisationRegistration{Name: "Công ty Viettel", TaxCode: "0100109106001",
			Phone: "0987654321", Password: goodPassword})
		if err != nil || org.CodeErr != nil {
			t.Fatalf("organisation: %v %v", err, org.CodeErr)
		}
		if _, err := r.svc.VerifyRegistration(ctx, org.AccountID, org.Challenge.ID, r.pub.lastCode(t), ""); err != nil {
			t.Fatal(err)
		}
		if res, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "0100109106-001", Password: goodPassword}); err != nil || res.Account.Kind != accounts.KindOrganisation {
			t.Errorf("organisation sign-in: %+v %v", res, err)
		}
		checkAuditClean(t, r, goodPassword)
	})
}

// checkAuditClean fails when a password or any code published appears in
// the audit log.
func checkAuditClean(t *testing.T, r *rig, secrets ...string) {
	t.Helper()
	r.pub.mu.Lock()
	for _, e := range r.pub.envs {
		secrets = append(secrets, string(e.Payload[strings.Index(string(e.Payload), `"body":"`)+8:][:6]))
	}
	r.pub.mu.Unlock()
	entries, err := r.store.AuditLog(context.Background(), "", 10000)
	if err != nil || len(entries) == 0 {
		t.Fatalf("audit log: %d entries, %v", len(entries), err)
	}
	for _, e := range entries {
		s := fmt.Sprint(e)
		for _, sec := range secrets {
			if strings.Contains(s, sec) {
				t.Errorf("audit entry %s holds a secret: %v", e.Action, e)
			}
		}
	}
}

func TestRegistrationBadInput(t *testing.T) {
	r := newRig(t, testenv.OpenStore(t, testenv.SQLiteURL(t)), redisClients(t)["miniredis"], nil)
	cases := []struct {
		name   string
		reg    accounts.CitizenRegistration
		fields []string
	}{
		{"everything missing", accounts.CitizenRegistration{}, []string{"full_name", "citizen_id", "phone", "password"}},
		{"bad province", accounts.CitizenRegistration{FullName: "A", CitizenID: "003095000123", Phone: "0912345678", Password: goodPassword}, []string{"citizen_id"}},
		{"born in the future", accounts.CitizenRegistration{FullName: "A", CitizenID: "049299000123", Phone: "0912345678", Password: goodPassword}, []string{"citizen_id"}},
		{"landline", accounts.CitizenRegistration{FullName: "A", CitizenID: "049095000123", Phone: "02351234567", Password: goodPassword}, []string{"phone"}},
		{"weak password", accounts.CitizenRegistration{FullName: "A", CitizenID: "049095000123", Phone: "0912345678", Password: "password"}, []string{"password"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := r.svc.RegisterCitizen(context.Background(), c.reg)
			var ve *loa.Error
			if !errors.As(err, &ve) || !errors.Is(err, accounts.ErrInvalid) {
				t.Fatalf("err %v", err)
			}
			var got []string
			for _, f := range ve.Fields {
				got = append(got, f.Field)
			}
			if !slices.Equal(got, c.fields) {
				t.Errorf("fields %v, want %v", got, c.fields)
			}
		})
	}
	if r.pub.count() != 0 {
		t.Errorf("%d codes sent for bad input", r.pub.count())
	}
}

// TestUnknownUserAndWrongPasswordAlike: the same error, and exactly one
// argon2 verification on each path (counted, never timed).
func TestUnknownUserAndWrongPasswordAlike(t *testing.T) {
	forEachStore(t, func(t *testing.T, r *rig) {
		r.registerCitizen(t, "049095000123", "0912345678")
		ctx := context.Background()
		for _, c := range []struct{ name, user, pw string }{
			{"unknown user", "001099000456", goodPassword},
			{"wrong password", "049095000123", "Sai-mat-khau-1"},
			{"unknown phone", "0987654321", goodPassword},
		} {
			t.Run(c.name, func(t *testing.T) {
				r.hasher.verifies.Store(0)
				r.hasher.dummies.Store(0)
				_, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: c.user, Password: c.pw})
				if !errors.Is(err, accounts.ErrBadCredentials) || err.Error() != accounts.ErrBadCredentials.Error() {
					t.Errorf("err %v", err)
				}
				if n := r.hasher.verifies.Load() + r.hasher.dummies.Load(); n != 1 {
					t.Errorf("%d argon2 verifications (verify %d, dummy %d), want exactly 1",
						n, r.hasher.verifies.Load(), r.hasher.dummies.Load())
				}
			})
		}
		entries, _ := r.store.AuditLog(ctx, "", 1000)
		reasons := map[string]bool{}
		for _, e := range entries {
			if e.Action == "session.failure" {
				reasons[e.Detail["reason"]] = true
			}
		}
		if !reasons["unknown_user"] || !reasons["wrong_password"] {
			t.Errorf("audit reasons %v", reasons)
		}
	})
}

func TestPasswordPolicyHistoryExpiry(t *testing.T) {
	forEachStore(t, func(t *testing.T, r *rig) {
		ctx := context.Background()
		id := r.registerCitizen(t, "049095000123", "0912345678")
		first, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "049095000123", Password: goodPassword})
		if err != nil {
			t.Fatal(err)
		}
		fieldOf := func(_ accounts.SignInResult, err error) (string, []string) {
			var ve *loa.Error
			if !errors.As(err, &ve) {
				t.Fatalf("want a validation error, got %v", err)
			}
			return ve.Fields[0].Field, ve.Fields[0].Rules
		}
		// Policy and wrong old password.
		if f, rules := fieldOf(r.svc.ChangePassword(ctx, id, goodPassword, "short", "")); f != "new" || !slices.Contains(rules, "length") {
			t.Errorf("weak: %s %v", f, rules)
		}
		if f, _ := fieldOf(r.svc.ChangePassword(ctx, id, "Wrong-old-1", "Khac-mat-khau-9", "")); f != "old" {
			t.Errorf("wrong old: %s", f)
		}
		// History: the current and the last 5 are refused.
		pws := []string{goodPassword}
		for i := 1; i <= 5; i++ {
			next := fmt.Sprintf("Mat-khau-so-%d", i)
			r.clock.Advance(time.Hour)
			if _, err := r.svc.ChangePassword(ctx, id, pws[len(pws)-1], next, ""); err != nil {
				t.Fatalf("change %d: %v", i, err)
			}
			pws = append(pws, next)
		}
		cur := pws[len(pws)-1]
		for _, old := range pws[len(pws)-5:] {
			if f, rules := fieldOf(r.svc.ChangePassword(ctx, id, cur, old, "")); f != "new" || !slices.Equal(rules, []string{"history"}) {
				t.Errorf("reuse of %s: %s %v", old, f, rules)
			}
		}
		// The sixth most recent (the registration password) may come back.
		r.clock.Advance(time.Hour)
		res, err := r.svc.ChangePassword(ctx, id, cur, goodPassword, "")
		if err != nil || res.Token == "" {
			t.Fatalf("sixth most recent: %v", err)
		}
		// Changing the password ended the earlier sessions.
		if _, err := r.svc.Authenticate(ctx, first.Token); !errors.Is(err, accounts.ErrNotFound) {
			t.Errorf("old session after change: %v", err)
		}
		// Expiry: 90 days on, sign-in gives a restricted session.
		r.clock.Advance(90 * 24 * time.Hour)
		exp, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "049095000123", Password: goodPassword})
		if err != nil || !exp.PasswordExpired || !exp.ExpiresAt.Equal(r.clock.Now().Add(15*time.Minute)) {
			t.Fatalf("expired: %+v %v", exp, err)
		}
		if s, _ := r.svc.Authenticate(ctx, exp.Token); !s.Restricted {
			t.Error("session of an expired password is not restricted")
		}
		fresh, err := r.svc.ChangePassword(ctx, id, goodPassword, "Mat-khau-moi-7", "")
		if err != nil || fresh.PasswordExpired {
			t.Fatalf("change after expiry: %+v %v", fresh, err)
		}
		if s, err := r.svc.Authenticate(ctx, fresh.Token); err != nil || s.Restricted {
			t.Errorf("new session: %+v %v", s, err)
		}
		// Sessions expire on the service's clock.
		r.clock.Advance(12 * time.Hour)
		if _, err := r.svc.Authenticate(ctx, fresh.Token); !errors.Is(err, accounts.ErrNotFound) {
			t.Errorf("session after its lifetime: %v", err)
		}
		checkAuditClean(t, r, goodPassword, "Mat-khau-moi-7", "Mat-khau-so-3")
	})
}

func TestOfficialSignInWithSecondFactors(t *testing.T) {
	forEachStore(t, func(t *testing.T, r *rig) {
		ctx := context.Background()
		// Created without a password: a one-time one, already expired.
		created, err := r.svc.CreateOfficial(ctx, accounts.Actor{Admin: true, APIKeyID: "k"}, accounts.NewOfficial{
			Username: "Tran.B", FullName: "Trần B", Phone: "0911111111", Unit: "sotttt", Roles: []accounts.Role{accounts.RoleBroadcastApprover}})
		if err != nil || created.OneTimePassword == "" || created.Account.Username != "tran.b" {
			t.Fatalf("create: %+v %v", created, err)
		}
		pw := created.OneTimePassword
		if _, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "tran.b", Password: pw}); !errors.Is(err, accounts.ErrSecondFactorRequired) {
			t.Fatalf("no second factor: %v", err)
		}
		// A pushed code: Egov app first, SMS as the fallback.
		res, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "tran.b", Password: pw, SendCode: "push", IP: "198.51.100.1"})
		if err != nil || res.CodeSent == nil || res.Token != "" {
			t.Fatalf("send code: %+v %v", res, err)
		}
		env, d := r.pub.last(t)
		if env.Key != created.Account.ID || d.To.Type != producer.ToAccount || d.To.Value != created.Account.ID ||
			!slices.Equal(d.Channels, []string{"push", "sms"}) || !d.Fallback || d.App != "egov" || env.Lane != topics.LaneOTP {
			t.Errorf("pushed code %+v %+v", env, d)
		}
		res, err = r.svc.SignIn(ctx, accounts.SignInRequest{Username: "tran.b", Password: pw, OTP: r.pub.lastCode(t)})
		if err != nil || !res.PasswordExpired || !res.ExpiresAt.Equal(r.clock.Now().Add(15*time.Minute)) {
			t.Fatalf("sign in with pushed code: %+v %v", res, err)
		}
		if _, err := r.svc.ChangePassword(ctx, created.Account.ID, pw, goodPassword, ""); err != nil {
			t.Fatal(err)
		}
		// TOTP.
		secret, recovery := r.enrolTOTP(t, created.Account.ID)
		if len(recovery) != 10 {
			t.Fatalf("%d recovery codes", len(recovery))
		}
		code, _ := totp.GenerateCode(secret, r.clock.Now())
		res, err = r.svc.SignIn(ctx, accounts.SignInRequest{Username: "tran.b", Password: goodPassword, OTP: code})
		if err != nil || res.PasswordExpired || !res.ExpiresAt.Equal(r.clock.Now().Add(8*time.Hour)) {
			t.Fatalf("totp sign-in: %+v %v", res, err)
		}
		if _, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "tran.b", Password: goodPassword, OTP: code}); !errors.Is(err, accounts.ErrSecondFactor) {
			t.Errorf("replayed totp: %v", err)
		}
		// A recovery code works once.
		if _, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "tran.b", Password: goodPassword, OTP: strings.ToUpper(recovery[3])}); err != nil {
			t.Errorf("recovery code: %v", err)
		}
		if _, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "tran.b", Password: goodPassword, OTP: recovery[3]}); !errors.Is(err, accounts.ErrSecondFactor) {
			t.Errorf("recovery code again: %v", err)
		}
		// Five wrong codes lock the factor; even the right code is refused then.
		for range 5 {
			r.svc.SignIn(ctx, accounts.SignInRequest{Username: "tran.b", Password: goodPassword, OTP: "000000"})
		}
		r.clock.Advance(otp.TOTPPeriod)
		code, _ = totp.GenerateCode(secret, r.clock.Now())
		if _, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "tran.b", Password: goodPassword, OTP: code}); !errors.Is(err, accounts.ErrLocked) {
			t.Errorf("locked factor: %v", err)
		}
		r.clock.Advance(15 * time.Minute)
		code, _ = totp.GenerateCode(secret, r.clock.Now())
		if _, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "tran.b", Password: goodPassword, OTP: code}); err != nil {
			t.Errorf("after the lock: %v", err)
		}
		// Shared apps verify codes through VerifyMFA.
		r.clock.Advance(otp.TOTPPeriod)
		code, _ = totp.GenerateCode(secret, r.clock.Now())
		app := accounts.Actor{APIKeyID: "portal"}
		if a, err := r.svc.VerifyMFA(ctx, app, "tran.b", code); err != nil || a.ID != created.Account.ID {
			t.Errorf("verify mfa: %v", err)
		}
		if _, err := r.svc.VerifyMFA(ctx, app, "nobody", code); !errors.Is(err, accounts.ErrSecondFactor) {
			t.Errorf("unknown official: %v", err)
		}
		if _, err := r.svc.Challenge(ctx, app, "tran.b", "sms"); err != nil {
			t.Fatalf("challenge: %v", err)
		}
		// A shared app's challenge is published after the answer (the
		// answer is alike for an unknown official): wait for it.
		if err := r.svc.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		_, d = r.pub.last(t)
		if d.To.Type != producer.ToPhone || d.To.Value != "84911111111" {
			t.Errorf("sms challenge to %+v", d.To)
		}
		if _, err := r.svc.VerifyMFA(ctx, app, created.Account.ID, r.pub.lastCode(t)); err != nil {
			t.Errorf("verify pushed code by account id: %v", err)
		}
		checkAuditClean(t, r, goodPassword, pw)
	})
}

// TestTOTPRace: 20 concurrent verifications of one TOTP code through the
// SQL FactorStore → exactly one success, on each store and Redis.
func TestTOTPRace(t *testing.T) {
	for name, db := range testenv.Stores(t) {
		for rname, rdb := range redisClients(t) {
			t.Run(name+"/"+rname, func(t *testing.T) {
				r := newRig(t, db, rdb, nil)
				ctx := context.Background()
				a := r.official(t, "race"+testenv.ID(), "0911111111", "u1")
				secret, _ := r.enrolTOTP(t, a.ID)
				code, _ := totp.GenerateCode(secret, r.clock.Now())
				var (
					wg   sync.WaitGroup
					mu   sync.Mutex
					wins int
					errs = map[string]int{}
				)
				for range 20 {
					wg.Go(func() {
						_, err := r.svc.VerifyMFA(ctx, accounts.Actor{APIKeyID: "app"}, a.Username, code)
						mu.Lock()
						defer mu.Unlock()
						if err == nil {
							wins++
						} else if errors.Is(err, accounts.ErrSecondFactor) || errors.Is(err, accounts.ErrLocked) {
							errs[fmt.Sprint(errors.Unwrap(err))]++
						} else {
							t.Errorf("unexpected: %v", err)
						}
					})
				}
				wg.Wait()
				if wins != 1 {
					t.Fatalf("%d successes, want exactly 1 (failures %v)", wins, errs)
				}
			})
		}
	}
}

func TestOfficialAdministration(t *testing.T) {
	forEachStore(t, func(t *testing.T, r *rig) {
		ctx := context.Background()
		admin := r.official(t, "admin1", "0911111111", "tinh", accounts.RoleAdmin)
		ua := r.official(t, "ua1", "0922222222", "sotttt", accounts.RoleUnitAdmin)
		staff := r.official(t, "staff1", "0933333333", "sotttt")
		other := r.official(t, "other1", "0944444444", "soyte")
		uaActor := accounts.Actor{AccountID: ua.ID}
		// A unit administrator grants within the unit, never elsewhere, never admin.
		if _, err := r.svc.GrantRole(ctx, uaActor, staff.ID, accounts.RoleGrant{Unit: "sotttt", Role: accounts.RoleAgencySubmitter}); err != nil {
			t.Errorf("grant in unit: %v", err)
		}
		if _, err := r.svc.GrantRole(ctx, uaActor, staff.ID, accounts.RoleGrant{Unit: "soyte", Role: accounts.RoleAgencySubmitter}); !errors.Is(err, accounts.ErrForbidden) {
			t.Errorf("grant in another unit: %v", err)
		}
		if _, err := r.svc.GrantRole(ctx, uaActor, staff.ID, accounts.RoleGrant{Unit: "sotttt", Role: accounts.RoleAdmin}); !errors.Is(err, accounts.ErrForbidden) {
			t.Errorf("unit admin granting admin: %v", err)
		}
		if _, err := r.svc.GrantRole(ctx, accounts.Actor{AccountID: staff.ID}, staff.ID, accounts.RoleGrant{Unit: "sotttt", Role: accounts.RoleOps}); !errors.Is(err, accounts.ErrForbidden) {
			t.Errorf("staff granting: %v", err)
		}
		if _, err := r.svc.GrantRole(ctx, uaActor, staff.ID, accounts.RoleGrant{Unit: "sotttt", Role: "king"}); !errors.Is(err, accounts.ErrInvalid) {
			t.Errorf("unknown role: %v", err)
		}
		// (A role of the unit's: ops is the province's operator, which a
		// unit administrator may not take away by closing the account.)
		grants, err := r.svc.GrantRole(ctx, accounts.Actor{AccountID: admin.ID}, staff.ID, accounts.RoleGrant{Unit: "soyte", Role: accounts.RoleAgencySubmitter})
		if err != nil || len(grants) != 2 {
			t.Errorf("admin grants anywhere: %v %v", grants, err)
		}
		if err := r.svc.RevokeRole(ctx, uaActor, staff.ID, accounts.RoleGrant{Unit: "sotttt", Role: accounts.RoleAgencySubmitter}); err != nil {
			t.Errorf("revoke: %v", err)
		}
		if err := r.svc.RevokeRole(ctx, uaActor, staff.ID, accounts.RoleGrant{Unit: "sotttt", Role: accounts.RoleAgencySubmitter}); !errors.Is(err, accounts.ErrNotFound) {
			t.Errorf("revoke again: %v", err)
		}
		// Closing: a unit administrator of another unit may not.
		if err := r.svc.CloseOfficial(ctx, uaActor, other.ID); !errors.Is(err, accounts.ErrForbidden) {
			t.Errorf("close in another unit: %v", err)
		}
		dev, err := r.svc.RegisterDevice(ctx, staff.ID, accounts.Device{Token: "egov-staff", App: "egov", Platform: "android"}, "", "")
		if err != nil {
			t.Fatal(err)
		}
		sess, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "staff1", Password: goodPassword, SendCode: "sms"})
		if err != nil {
			t.Fatal(err)
		}
		sess, err = r.svc.SignIn(ctx, accounts.SignInRequest{Username: "staff1", Password: goodPassword, OTP: r.pub.lastCode(t)})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.svc.CloseOfficial(ctx, uaActor, staff.ID); err != nil {
			t.Fatalf("close: %v", err)
		}
		if _, err := r.svc.Authenticate(ctx, sess.Token); !errors.Is(err, accounts.ErrNotFound) {
			t.Errorf("session of a closed account: %v", err)
		}
		if c, err := r.store.Contact(ctx, staff.ID, ""); err == nil || len(c.Tokens) != 0 {
			t.Errorf("closed account still reachable: %+v %v (device %s)", c, err, dev.ID)
		}
		r.clock.Advance(time.Minute)
		if _, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "staff1", Password: goodPassword, SendCode: "sms"}); !errors.Is(err, accounts.ErrBadCredentials) {
			t.Errorf("closed account signs in: %v", err)
		}
		entries, _ := r.store.AuditLog(ctx, staff.ID, 100)
		var actions []string
		for _, e := range entries {
			actions = append(actions, e.Action)
		}
		for _, want := range []string{"official.create", "role.grant", "role.revoke", "device.register", "session.create", "account.close"} {
			if !slices.Contains(actions, want) {
				t.Errorf("audit lacks %s: %v", want, actions)
			}
		}
	})
}

func TestDevicesAndSubscriptions(t *testing.T) {
	forEachStore(t, func(t *testing.T, r *rig) {
		ctx := context.Background()
		a := r.registerCitizen(t, "049095000123", "0912345678")
		b := r.registerCitizen(t, "001099000456", "0987654321")
		d1, err := r.svc.RegisterDevice(ctx, a, accounts.Device{Token: "tok-1", App: "smart", Platform: "ios"}, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if again, err := r.svc.RegisterDevice(ctx, a, accounts.Device{Token: "tok-1", App: "smart", Platform: "ios"}, "", ""); err != nil || again.ID != d1.ID {
			t.Fatalf("the owner registers again: %+v %v", again, err)
		}
		proof := deviceProofPushed(t, r, b, "tok-1")
		d2, err := r.svc.RegisterDevice(ctx, b, accounts.Device{Token: "tok-1", App: "smart", Platform: "android"}, proof, "")
		if err != nil || d2.ID != d1.ID || d2.AccountID != b || d2.Platform != "android" {
			t.Fatalf("re-register with the proof: %+v %v", d2, err)
		}
		if c, _ := r.store.Contact(ctx, a, ""); len(c.Tokens) != 0 {
			t.Errorf("token stayed with the old account: %v", c.Tokens)
		}
		if err := r.svc.RemoveDevice(ctx, a, d1.ID, ""); !errors.Is(err, accounts.ErrNotFound) {
			t.Errorf("removing another account's device: %v", err)
		}
		if err := r.svc.RemoveDevice(ctx, b, d1.ID, ""); err != nil {
			t.Errorf("remove: %v", err)
		}
		_, err = r.svc.RegisterDevice(ctx, a, accounts.Device{Token: "has space", App: "tv", Platform: "nokia"}, "", "")
		var ve *loa.Error
		if !errors.As(err, &ve) || len(ve.Fields) != 3 {
			t.Errorf("bad device: %v", err)
		}
		sub, err := r.svc.SetSubscriptions(ctx, a, accounts.Subscriptions{Areas: []string{"49", "20194", "49"}, Topics: []string{"power", "disaster"}}, "")
		if err != nil || len(sub.Areas) != 2 {
			t.Fatalf("subscriptions: %+v %v", sub, err)
		}
		got, _ := r.svc.Subscriptions(ctx, a)
		if !slices.Equal(got.Areas, []string{"20194", "49"}) || !slices.Equal(got.Topics, []string{"disaster", "power"}) {
			t.Errorf("stored %+v", got)
		}
		_, err = r.svc.SetSubscriptions(ctx, a, accounts.Subscriptions{Areas: []string{"49", "99999"}, Topics: []string{"gossip"}}, "")
		if !errors.As(err, &ve) || ve.Fields[0].Field != "areas[1]" || ve.Fields[1].Field != "topics[0]" {
			t.Errorf("unknown area and topic: %v", err)
		}
	})
}

func TestSendCodeLimits(t *testing.T) {
	forEachStore(t, func(t *testing.T, r *rig) {
		ctx := context.Background()
		if _, err := r.svc.SendCode(ctx, "0912345678", otp.PurposeRegister, "203.0.113.9"); err != nil {
			t.Fatal(err)
		}
		_, err := r.svc.SendCode(ctx, "0912345678", otp.PurposeRegister, "203.0.113.9")
		var rl *loa.Error
		if !errors.As(err, &rl) || rl.Code != loa.ERateLimited || rl.RetryAfter != 30*time.Second {
			t.Fatalf("cooldown: %v", err)
		}
		r.clock.Advance(30 * time.Second)
		ch, err := r.svc.SendCode(ctx, "0912345678", otp.PurposeVerifyPhone, "203.0.113.9")
		if err != nil {
			t.Fatal(err)
		}
		r.clock.Advance(5 * time.Minute)
		if _, err := r.svc.CheckCode(ctx, ch.ID, r.pub.lastCode(t)); !errors.Is(err, accounts.ErrCode) || !errors.Is(err, otp.ErrExpired) {
			t.Errorf("expired code: %v", err)
		}
		_, err = r.svc.SendCode(ctx, "12", "fun", "")
		var ve *loa.Error
		if !errors.As(err, &ve) || len(ve.Fields) != 2 {
			t.Errorf("bad input: %v", err)
		}
	})
}

// TestCodeNotHandedOverIsWithdrawn: while Kafka takes nothing, a code
// request is answered within the publish bound with 503 and a Retry-After
// (not left waiting), and the code is withdrawn: a copy the Kafka client
// still delivers later does not work, and the person may ask again at
// once (no cooldown, the address's limit not used up). A registration
// whose code could not be sent says so, and its code is withdrawn alike.
func TestCodeNotHandedOverIsWithdrawn(t *testing.T) {
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			rdb := goredis.NewClient(&goredis.Options{Addr: testenv.Miniredis(t).Addr()})
			t.Cleanup(func() { rdb.Close() })
			testCodeNotHandedOver(t, newRig(t, db, rdb, func(c *accounts.Config) { c.CodePublishTimeout = 100 * time.Millisecond }))
		})
	}
}

func testCodeNotHandedOver(t *testing.T, r *rig) {
	{
		// The test's own bound: the old code waited for the caller.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		unavailable := func(what string, err error) {
			t.Helper()
			var e *loa.Error
			if !errors.As(err, &e) || e.Code != loa.EUnavailable || e.RetryAfter <= 0 {
				t.Fatalf("%s: %v; want EUnavailable with a Retry-After", what, err)
			}
		}

		r.pub.stall.Store(true)
		_, err := r.svc.SendCode(ctx, "0912345678", otp.PurposeVerifyPhone, "203.0.113.9")
		unavailable("code request while Kafka takes nothing", err)
		_, stray := r.pub.last(t)
		strayCode := stray.Body[:6]

		r.pub.stall.Store(false)
		ch, err := r.svc.SendCode(ctx, "0912345678", otp.PurposeVerifyPhone, "203.0.113.9")
		if err != nil {
			t.Fatalf("asking again at once: %v", err)
		}
		code := r.pub.lastCode(t)
		if _, err := r.svc.CheckCode(ctx, stray.NotificationID[len("code-"):], strayCode); !errors.Is(err, otp.ErrVoid) {
			t.Errorf("the withdrawn code: %v; want void", err)
		}
		if _, err := r.svc.CheckCode(ctx, ch.ID, code); err != nil {
			t.Errorf("the code sent: %v", err)
		}

		r.pub.stall.Store(true)
		reg, err := r.svc.RegisterCitizen(ctx, accounts.CitizenRegistration{FullName: "Nguyễn Văn A", CitizenID: "049095000777",
			Phone: "0987000111", Password: goodPassword, IP: "203.0.113.7"})
		if err != nil {
			t.Fatal(err)
		}
		unavailable("registration while Kafka takes nothing", reg.CodeErr)
		r.pub.stall.Store(false)
		ch, err = r.svc.SendCode(ctx, "0987000111", otp.PurposeRegister, "203.0.113.7")
		if err != nil {
			t.Fatalf("a registration code at once after the failed one: %v", err)
		}
		if _, err := r.svc.VerifyRegistration(ctx, reg.AccountID, ch.ID, r.pub.lastCode(t), "203.0.113.7"); err != nil {
			t.Errorf("verify with the new code: %v", err)
		}
	}
}

// TestPasswordResetFlow: on each store and each Redis, a reset code goes
// to the account's verified phone, sets a password under the policy and
// the history, and ends every session; a user name that names no account
// gets the same answer and no SMS.
func TestPasswordResetFlow(t *testing.T) {
	i := 0
	for storeName, db := range testenv.Stores(t) {
		for redisName, rdb := range redisClients(t) {
			i++ // each its own citizen in the shared store
			citizenID, phone, normal := fmt.Sprintf("04909500012%d", i), fmt.Sprintf("091234567%d", i), fmt.Sprintf("8491234567%d", i)
			t.Run(storeName+"/"+redisName, func(t *testing.T) {
				ctx := context.Background()
				r := newRig(t, db, rdb, nil)
				id := r.registerCitizen(t, citizenID, phone)
				res, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: citizenID, Password: goodPassword})
				if err != nil {
					t.Fatal(err)
				}
				r.clock.Advance(time.Minute)

				n := r.pub.count()
				unknown, err := r.svc.RequestReset(ctx, "001099000789", "203.0.113.7")
				if err != nil || unknown.ID == "" || !unknown.ExpiresAt.Equal(r.clock.Now().Add(5*time.Minute)) || unknown.Subject != "" || unknown.Phone != "" {
					t.Fatalf("unknown: %+v %v", unknown, err)
				}
				ch, err := r.svc.RequestReset(ctx, " "+citizenID+" ", "203.0.113.7")
				if err != nil || !ch.ExpiresAt.Equal(unknown.ExpiresAt) || ch.Phone != "" || ch.Subject != "" {
					t.Fatalf("request: %+v %v", ch, err)
				}
				if err := r.svc.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				if _, d := r.pub.last(t); r.pub.count() != n+1 || d.To.Value != normal {
					t.Fatalf("sent %d, %+v", r.pub.count()-n, d)
				}
				code := r.pub.lastCode(t)
				if err := r.svc.ConfirmReset(ctx, accounts.ResetConfirmation{ChallengeID: unknown.ID, Code: code, Password: "Mới-mật-khẩu-3"}); !errors.Is(err, accounts.ErrCode) {
					t.Errorf("the code on the unknown user's challenge: %v", err)
				}
				if err := r.svc.ConfirmReset(ctx, accounts.ResetConfirmation{ChallengeID: ch.ID, Code: code, Password: goodPassword}); !isInvalidField(err, "password") {
					t.Errorf("the current password again: %v", err)
				}
				if err := r.svc.ConfirmReset(ctx, accounts.ResetConfirmation{ChallengeID: ch.ID, Code: code, Password: "Mới-mật-khẩu-3"}); err != nil {
					t.Fatalf("confirm: %v", err)
				}
				if _, err := r.svc.Authenticate(ctx, res.Token); !errors.Is(err, accounts.ErrNotFound) {
					t.Errorf("the session survived: %v", err)
				}
				if res, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: phone, Password: "Mới-mật-khẩu-3"}); err != nil || res.Account.ID != id {
					t.Errorf("new password: %+v %v", res, err)
				}
				if err := r.svc.ConfirmReset(ctx, accounts.ResetConfirmation{ChallengeID: ch.ID, Code: code, Password: "Lần-nữa-mật-khẩu-4"}); !errors.Is(err, accounts.ErrCode) {
					t.Errorf("the code again: %v", err)
				}
				checkAuditClean(t, r, "Mới-mật-khẩu-3")
			})
		}
	}
}

// isInvalidField reports whether err is a loa.EInvalid error naming field.
func isInvalidField(err error, field string) bool {
	e, ok := errors.AsType[*loa.Error](err)
	return ok && e.Code == loa.EInvalid && e.Field == field
}

// deviceProofPushed has account register token, held by another account:
// it is refused with a conflict naming the token, and the proof pushed to
// the token is returned.
func deviceProofPushed(t *testing.T, r *rig, account, token string) string {
	t.Helper()
	before := r.pub.count()
	_, err := r.svc.RegisterDevice(context.Background(), account, accounts.Device{Token: token, App: "smart", Platform: "android"}, "", "")
	le, _ := errors.AsType[*loa.Error](err)
	if !errors.Is(err, accounts.ErrDeviceHeld) || le == nil || le.Code != loa.EConflict || le.Field != "token" {
		t.Fatalf("registering a held token without proof: %v", err)
	}
	if r.pub.count() != before+1 {
		t.Fatalf("%d published, want the proof's push", r.pub.count()-before)
	}
	e, d := r.pub.last(t)
	if e.Lane != topics.LaneOTP || d.To.Type != producer.ToDevice || d.To.Value != token || d.Data["type"] != "device_proof" || d.Data["device_proof"] == "" {
		t.Fatalf("the proof's push: %+v %+v", e, d)
	}
	return d.Data["device_proof"]
}

// TestDeviceTokenMovesOnlyWithProof: a token active on an official's
// account does not move to a stranger who knows it. Abuse: without proof
// the stranger gets a conflict and the official keeps the token; a made-up
// proof, another account's proof, and a proof past its window are refused
// naming "proof"; proof pushes for one account are limited, and that limit
// does not delay another account's. The holder of the device — who
// receives the push — moves it with the proof.
func TestDeviceTokenMovesOnlyWithProof(t *testing.T) {
	forEachStore(t, func(t *testing.T, r *rig) {
		ctx := context.Background()
		off := r.official(t, "tran.b", "0911111111", "sotttt")
		mallory := r.registerCitizen(t, "049095000123", "0912345678")
		family := r.registerCitizen(t, "001099000456", "0987654321")
		if _, err := r.svc.RegisterDevice(ctx, off.ID, accounts.Device{Token: "tok-official", App: "egov", Platform: "android"}, "", ""); err != nil {
			t.Fatal(err)
		}
		owner := func() string {
			t.Helper()
			c, err := r.store.Contact(ctx, off.ID, "")
			if err != nil {
				t.Fatal(err)
			}
			return strings.Join(c.Tokens, ",")
		}
		malloryProof := deviceProofPushed(t, r, mallory, "tok-official")
		if owner() != "tok-official" {
			t.Fatalf("the official lost the token to a registration without proof: %q", owner())
		}
		familyProof := deviceProofPushed(t, r, family, "tok-official")
		for name, proof := range map[string]string{"made up": "AAAAAAAAAAAAAAAAAAAAAA", "another account's": familyProof} {
			_, err := r.svc.RegisterDevice(ctx, mallory, accounts.Device{Token: "tok-official", App: "smart", Platform: "android"}, proof, "")
			if le, _ := errors.AsType[*loa.Error](err); le == nil || le.Code != loa.EInvalid || le.Fields[0].Field != "proof" {
				t.Errorf("%s proof: %v", name, err)
			}
		}
		// Proofs for one account are limited; the limit is its own.
		deviceProofPushed(t, r, mallory, "tok-official")
		deviceProofPushed(t, r, mallory, "tok-official")
		_, err := r.svc.RegisterDevice(ctx, mallory, accounts.Device{Token: "tok-official", App: "smart", Platform: "android"}, "", "")
		if le, _ := errors.AsType[*loa.Error](err); le == nil || le.Code != loa.ERateLimited || le.RetryAfter <= 0 {
			t.Errorf("a fourth proof push for one account: %v", err)
		}
		// A proof lasts its window and the next, not longer.
		r.clock.Advance(25 * time.Minute)
		if _, err := r.svc.RegisterDevice(ctx, mallory, accounts.Device{Token: "tok-official", App: "smart", Platform: "android"}, malloryProof, ""); err == nil {
			t.Error("a proof past its window moved the token")
		}
		if owner() != "tok-official" {
			t.Fatalf("the official lost the token: %q", owner())
		}
		// The device's holder, who receives the push, moves it.
		proof := deviceProofPushed(t, r, family, "tok-official")
		if d, err := r.svc.RegisterDevice(ctx, family, accounts.Device{Token: "tok-official", App: "smart", Platform: "ios"}, proof, ""); err != nil || d.AccountID != family {
			t.Fatalf("with the proof: %+v %v", d, err)
		}
		if owner() != "" {
			t.Errorf("the token stayed with the official too: %q", owner())
		}
	})
}

// TestClientKeyOutlastsAStrangersFailures: a stranger who fails at a
// citizen's password from many addresses makes the account wait; the
// citizen's own app, sending the client key of its last sign-in, still
// signs in at once. Abuse: the key of another account, a made-up key or
// none do not lift the wait; the key's own failures back off like an
// account's, so a stolen key is no master key.
func TestClientKeyOutlastsAStrangersFailures(t *testing.T) {
	forEachStore(t, func(t *testing.T, r *rig) {
		ctx := context.Background()
		r.registerCitizen(t, "049095000123", "0912345678")
		r.registerCitizen(t, "001099000456", "0987654321")
		first, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "0912345678", Password: goodPassword, IP: "203.0.113.7"})
		if err != nil || !strings.HasPrefix(first.ClientKey, "ck1.") {
			t.Fatalf("sign in: %+v %v", first, err)
		}
		other, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "0987654321", Password: goodPassword, IP: "203.0.113.8"})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 8 {
			r.svc.SignIn(ctx, accounts.SignInRequest{Username: "0912345678", Password: "wrong", IP: fmt.Sprintf("198.51.100.%d", i)})
		}
		throttledErr := func(what string, err error) {
			t.Helper()
			if !errors.Is(err, accounts.ErrThrottled) {
				t.Errorf("%s: %v, want the account's wait", what, err)
			}
		}
		_, err = r.svc.SignIn(ctx, accounts.SignInRequest{Username: "0912345678", Password: goodPassword, IP: "203.0.113.9"})
		throttledErr("no key", err)
		_, err = r.svc.SignIn(ctx, accounts.SignInRequest{Username: "0912345678", Password: goodPassword, IP: "203.0.113.9", ClientKey: other.ClientKey})
		throttledErr("another account's key", err)
		_, err = r.svc.SignIn(ctx, accounts.SignInRequest{Username: "0912345678", Password: goodPassword, IP: "203.0.113.9", ClientKey: "ck1.AAAA.AAAA"})
		throttledErr("a made-up key", err)
		res, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "0912345678", Password: goodPassword, IP: "203.0.113.7", ClientKey: first.ClientKey})
		if err != nil || res.ClientKey != first.ClientKey {
			t.Fatalf("the citizen's app with its key: %+v %v", res, err)
		}
		// The key's own failures make it wait.
		for range 6 {
			r.svc.SignIn(ctx, accounts.SignInRequest{Username: "0912345678", Password: "wrong", IP: "203.0.113.7", ClientKey: first.ClientKey})
		}
		_, err = r.svc.SignIn(ctx, accounts.SignInRequest{Username: "0912345678", Password: goodPassword, IP: "203.0.113.7", ClientKey: first.ClientKey})
		throttledErr("the key after its own failures", err)
	})
}

// TestClientKeyOutlastsAnAddressWait: a stranger behind a shared address
// (an office's, a carrier's) who fails sign-ins there makes the address
// wait, and with it everyone signing in from it; a client with a valid
// key of the account it signs in to passes, another account's key or a
// made-up one does not.
func TestClientKeyOutlastsAnAddressWait(t *testing.T) {
	forEachStore(t, func(t *testing.T, r *rig) {
		ctx := context.Background()
		const office = "203.0.113.7"
		r.registerCitizen(t, "049095000123", "0912345678")
		r.registerCitizen(t, "001099000456", "0987654321")
		first, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "0912345678", Password: goodPassword, IP: office})
		if err != nil {
			t.Fatal(err)
		}
		other, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "0987654321", Password: goodPassword, IP: "198.51.100.1"})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 25 {
			r.svc.SignIn(ctx, accounts.SignInRequest{Username: fmt.Sprintf("nobody-%d", i), Password: "wrong", IP: office})
		}
		for name, key := range map[string]string{"no key": "", "another account's key": other.ClientKey, "a made-up key": "ck1.AAAA.AAAA"} {
			if _, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "0912345678", Password: goodPassword, IP: office, ClientKey: key}); !errors.Is(err, accounts.ErrThrottled) {
				t.Errorf("%s from the waiting address: %v, want its wait", name, err)
			}
		}
		if _, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "0912345678", Password: goodPassword, IP: office, ClientKey: first.ClientKey}); err != nil {
			t.Errorf("the citizen's app with its key, from the waiting address: %v", err)
		}
	})
}

// TestClientKeyOutlastsAResetAddressWait: a stranger behind an office's
// NAT guessing reset challenges makes the address wait, which holds up
// every reset asked or confirmed from it without a key (or with another
// account's, or a made-up one), and asking codes for made-up user names
// spends the address's window of codes; the citizen's app, sending the
// client_key of its last sign-in, asks and confirms its reset from the
// same address.
func TestClientKeyOutlastsAResetAddressWait(t *testing.T) {
	forEachStore(t, func(t *testing.T, r *rig) {
		ctx := context.Background()
		const office = "203.0.113.7"
		r.registerCitizen(t, "049095000123", "0912345678")
		r.registerCitizen(t, "001099000456", "0987654321")
		first, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "0912345678", Password: goodPassword, IP: office})
		if err != nil {
			t.Fatal(err)
		}
		other, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "0987654321", Password: goodPassword, IP: "198.51.100.1"})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 25 {
			r.svc.ConfirmReset(ctx, accounts.ResetConfirmation{ChallengeID: fmt.Sprintf("guess-%d", i), Code: "000000", Password: "Mật-khẩu-9", IP: office})
		}
		if err := r.svc.CheckResetAddress(ctx, office); !errors.Is(err, accounts.ErrTooManyWrongCodes) {
			t.Fatalf("the office's address after the guesses: %v, want its wait", err)
		}
		strangers := map[string]string{"no key": "", "another account's key": other.ClientKey, "a made-up key": "ck1.AAAA.AAAA"}
		for name, key := range strangers {
			if _, err := r.svc.RequestResetWith(ctx, accounts.ResetRequest{Username: "0912345678", ClientKey: key, IP: office}); !errors.Is(err, accounts.ErrTooManyWrongCodes) {
				t.Errorf("a request with %s from the waiting address: %v, want its wait", name, err)
			}
		}
		// The stranger also spends the address's window of codes, asking
		// for made-up user names (each its own window) once the wait is
		// over.
		r.clock.Advance(time.Hour)
		spent := false
		for i := range 30 {
			if _, err := r.svc.RequestReset(ctx, fmt.Sprintf("0490950%05d", i), office); err != nil {
				spent = true
				break
			}
		}
		if !spent {
			t.Fatal("the address's window of codes was never spent")
		}
		for i := range 25 {
			r.svc.ConfirmReset(ctx, accounts.ResetConfirmation{ChallengeID: fmt.Sprintf("guess-again-%d", i), Code: "000000", Password: "Mật-khẩu-9", IP: office})
		}
		ch, err := r.svc.RequestResetWith(ctx, accounts.ResetRequest{Username: "0912345678", ClientKey: first.ClientKey, IP: office})
		if err != nil {
			t.Fatalf("the citizen's app with its key, from the waiting address: %v", err)
		}
		if err := r.svc.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		code := r.pub.lastCode(t)
		for name, key := range strangers {
			err := r.svc.ConfirmReset(ctx, accounts.ResetConfirmation{ChallengeID: ch.ID, Code: code, Password: "Mật-khẩu-2", ClientKey: key, IP: office})
			if !errors.Is(err, accounts.ErrTooManyWrongCodes) {
				t.Errorf("a confirmation with %s from the waiting address: %v, want its wait", name, err)
			}
		}
		if err := r.svc.ConfirmReset(ctx, accounts.ResetConfirmation{ChallengeID: ch.ID, Code: code, Password: "Mật-khẩu-2", ClientKey: first.ClientKey, IP: office}); err != nil {
			t.Fatalf("the citizen's app confirms with its key: %v", err)
		}
		if _, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "0912345678", Password: "Mật-khẩu-2", IP: office, ClientKey: first.ClientKey}); err != nil {
			t.Errorf("sign in with the new password: %v", err)
		}
	})
}

// TestClientKeyOutlastsAStrangersResets: a stranger who asks reset codes
// for a citizen's phone from many addresses and types wrong codes spends
// the user name's window, the account's bound of reset codes and the
// user name's wrong-code count, so the citizen asking without their key
// (or with another account's, or a made-up one) gets no code; the
// citizen's app, sending the client_key of its last sign-in, still gets
// one and resets the password.
func TestClientKeyOutlastsAStrangersResets(t *testing.T) {
	forEachStore(t, func(t *testing.T, r *rig) {
		ctx := context.Background()
		r.registerCitizen(t, "049095000123", "0912345678")
		r.registerCitizen(t, "001099000456", "0987654321")
		first, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "0912345678", Password: goodPassword, IP: "203.0.113.7"})
		if err != nil {
			t.Fatal(err)
		}
		other, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "0987654321", Password: goodPassword, IP: "203.0.113.8"})
		if err != nil {
			t.Fatal(err)
		}
		var last otp.Challenge
		for i := range 5 {
			r.clock.Advance(31 * time.Second) // past the sends' spacing
			if last, err = r.svc.RequestReset(ctx, "0912345678", fmt.Sprintf("198.51.100.%d", i)); err != nil {
				t.Fatalf("the stranger's request %d: %v", i, err)
			}
		}
		for i := range 6 {
			r.svc.ConfirmReset(ctx, accounts.ResetConfirmation{ChallengeID: last.ID, Code: fmt.Sprintf("00000%d", i), Password: "Mật-khẩu-9",
				IP: fmt.Sprintf("198.51.100.%d", 10+i)})
		}
		if err := r.svc.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		published := r.pub.count()
		for name, key := range map[string]string{"no key": "", "another account's key": other.ClientKey, "a made-up key": "ck1.AAAA.AAAA"} {
			_, err := r.svc.RequestResetWith(ctx, accounts.ResetRequest{Username: "0912345678", ClientKey: key, IP: "203.0.113.9"})
			if err := r.svc.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if err == nil && r.pub.count() != published {
				t.Errorf("%s: a code went to the phone the stranger kept busy", name)
			}
			published = r.pub.count()
		}
		ch, err := r.svc.RequestResetWith(ctx, accounts.ResetRequest{Username: "0912345678", ClientKey: first.ClientKey, IP: "203.0.113.7"})
		if err != nil {
			t.Fatalf("the citizen's app with its key: %v", err)
		}
		if err := r.svc.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if r.pub.count() != published+1 {
			t.Fatalf("the citizen's app with its key: %d codes sent, want 1", r.pub.count()-published)
		}
		if err := r.svc.ConfirmReset(ctx, accounts.ResetConfirmation{ChallengeID: ch.ID, Code: r.pub.lastCode(t), Password: "Mật-khẩu-2", IP: "203.0.113.7"}); err != nil {
			t.Fatalf("confirm: %v", err)
		}
		if _, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "0912345678", Password: "Mật-khẩu-2", IP: "203.0.113.7", ClientKey: first.ClientKey}); err != nil {
			t.Errorf("sign in with the new password: %v", err)
		}
	})
}

// TestSessionsPerAccountAreBounded: an account that signs in again and
// again (its owner's script, or anyone with the password) keeps at most
// accredis.MaxSessions live sessions: each one past it ends the oldest,
// so Redis does not grow with the sign-ins. The newest sessions work.
func TestSessionsPerAccountAreBounded(t *testing.T) {
	for name, rdb := range redisClients(t) {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, testenv.OpenStore(t, testenv.SQLiteURL(t)), rdb, nil)
			ctx := context.Background()
			r.registerCitizen(t, "049095000123", "0912345678")
			var tokens []string
			for range accredis.MaxSessions + 5 {
				r.clock.Advance(time.Second)
				res, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "0912345678", Password: goodPassword, IP: "203.0.113.7"})
				if err != nil {
					t.Fatal(err)
				}
				tokens = append(tokens, res.Token)
			}
			for i, tok := range tokens {
				_, err := r.svc.Authenticate(ctx, tok)
				if ended := i < 5; ended != errors.Is(err, accounts.ErrNotFound) {
					t.Errorf("session %d: %v, want ended %v", i, err, ended)
				}
			}
		})
	}
}

// TestSignInRacingAResetKeepsNoSession: a sign-in with the old password
// whose check is under way when the owner's reset (or an
// administrator's, or a password change) ends every session must not
// leave a session behind: the stranger who knew the leaked password
// and signs in again and again would otherwise keep one past the reset.
func TestSignInRacingAResetKeepsNoSession(t *testing.T) {
	forEachStore(t, func(t *testing.T, r *rig) {
		ctx := context.Background()
		r.registerCitizen(t, "049095000123", "0912345678")
		reset := func() {
			ch, err := r.svc.RequestReset(ctx, "0912345678", "203.0.113.7")
			if err != nil {
				t.Errorf("reset: %v", err)
				return
			}
			if err := r.svc.Flush(ctx); err != nil {
				t.Error(err)
				return
			}
			if err := r.svc.ConfirmReset(ctx, accounts.ResetConfirmation{ChallengeID: ch.ID, Code: r.pub.lastCode(t), Password: "Mật-khẩu-2", IP: "203.0.113.7"}); err != nil {
				t.Errorf("confirm: %v", err)
			}
		}
		r.hasher.during.Store(&reset)
		res, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "0912345678", Password: goodPassword, IP: "198.51.100.66"})
		if err == nil {
			if _, aerr := r.svc.Authenticate(ctx, res.Token); aerr == nil {
				t.Fatal("a sign-in with the old password kept its session past the reset")
			}
		}
		if _, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "0912345678", Password: "Mật-khẩu-2", IP: "203.0.113.7"}); err != nil {
			t.Errorf("the new password: %v", err)
		}
	})
}
