package accounts_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loa-hub/loa/accounts"
)

// TestAdminResetsOfficialPassword: an administrator gives an official who
// lost their authenticator a one-time password; it is expired at once,
// ends the official's sessions, and tells their phone. Nobody resets
// their own, a unit administrator only officials of their unit without a
// province-level role, and a closed account gets nothing.
func TestAdminResetsOfficialPassword(t *testing.T) {
	forEachStore(t, func(t *testing.T, r *rig) {
		ctx := context.Background()
		admin := r.official(t, "admin1", "0911111111", "tinh", accounts.RoleAdmin)
		ua := r.official(t, "ua1", "0922222222", "sotttt", accounts.RoleUnitAdmin)
		staff := r.official(t, "staff1", "0933333333", "sotttt", accounts.RoleAgencySubmitter)
		approver := r.official(t, "appr1", "0955555555", "sotttt", accounts.RoleBroadcastApprover)
		other := r.official(t, "other1", "0944444444", "soyte")
		citizen := r.registerCitizen(t, "049095000123", "0912345678")
		uaActor := accounts.Actor{AccountID: ua.ID}

		refused := []struct {
			name  string
			actor accounts.Actor
			id    string
			want  error
		}{
			{"a citizen", accounts.Actor{AccountID: citizen}, staff.ID, accounts.ErrForbidden},
			{"an official without the role", accounts.Actor{AccountID: other.ID}, staff.ID, accounts.ErrForbidden},
			{"a unit admin, another unit", uaActor, other.ID, accounts.ErrForbidden},
			{"a unit admin, a province-level role", uaActor, approver.ID, accounts.ErrForbidden},
			{"one's own", accounts.Actor{AccountID: admin.ID}, admin.ID, accounts.ErrForbidden},
			{"a citizen's account", accounts.Actor{AccountID: admin.ID}, citizen, accounts.ErrNotFound},
			{"nobody", accounts.Actor{AccountID: admin.ID}, "no-such-id", accounts.ErrNotFound},
		}
		for _, c := range refused {
			if pw, err := r.svc.ResetOfficialPassword(ctx, c.actor, c.id); !errors.Is(err, c.want) || pw != "" {
				t.Errorf("%s: %q %v, want %v", c.name, pw, err, c.want)
			}
		}
		// The refused ones changed nothing: the approver still signs in with
		// the old password.
		if _, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "appr1", Password: goodPassword, SendCode: "sms"}); err != nil {
			t.Fatalf("approver after refused resets: %v", err)
		}

		// The staff member has a session; the unit's administrator resets.
		if _, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "staff1", Password: goodPassword, SendCode: "sms"}); err != nil {
			t.Fatal(err)
		}
		sess, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "staff1", Password: goodPassword, OTP: r.pub.lastCode(t)})
		if err != nil {
			t.Fatal(err)
		}
		before := r.pub.count()
		pw, err := r.svc.ResetOfficialPassword(ctx, uaActor, staff.ID)
		if err != nil || len(pw) < 12 {
			t.Fatalf("reset: %q %v", pw, err)
		}
		if err := r.svc.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := r.svc.Authenticate(ctx, sess.Token); !errors.Is(err, accounts.ErrNotFound) {
			t.Errorf("the session outlived the reset: %v", err)
		}
		if r.pub.count() != before+1 {
			t.Fatalf("%d messages after the reset, want the notice", r.pub.count()-before)
		}
		if env, d := r.pub.last(t); !strings.Contains(d.Body, "mat khau tam") || !strings.Contains(string(env.Payload), "84933333333") {
			t.Errorf("notice: %q to %s", d.Body, env.Payload)
		}
		r.clock.Advance(time.Minute)
		if _, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "staff1", Password: goodPassword, SendCode: "sms"}); !errors.Is(err, accounts.ErrBadCredentials) {
			t.Errorf("the old password still signs in: %v", err)
		}
		// The one-time password still needs the second factor, and its
		// session may only change it.
		if _, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "staff1", Password: pw}); !errors.Is(err, accounts.ErrSecondFactorRequired) {
			t.Errorf("one-time password without a second factor: %v", err)
		}
		if _, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "staff1", Password: pw, SendCode: "sms"}); err != nil {
			t.Fatal(err)
		}
		res, err := r.svc.SignIn(ctx, accounts.SignInRequest{Username: "staff1", Password: pw, OTP: r.pub.lastCode(t)})
		if err != nil || !res.PasswordExpired {
			t.Errorf("one-time password's sign-in: expired %v, %v", res.PasswordExpired, err)
		}

		// An administrator resets the approver.
		if _, err := r.svc.ResetOfficialPassword(ctx, accounts.Actor{AccountID: admin.ID}, approver.ID); err != nil {
			t.Errorf("admin resets an approver: %v", err)
		}
		// A closed official gets nothing.
		if err := r.svc.CloseOfficial(ctx, uaActor, staff.ID); err != nil {
			t.Fatal(err)
		}
		if pw, err := r.svc.ResetOfficialPassword(ctx, accounts.Actor{AccountID: admin.ID}, staff.ID); !errors.Is(err, accounts.ErrNotFound) {
			t.Errorf("closed official: %q %v", pw, err)
		}
		entries, _ := r.store.AuditLog(ctx, staff.ID, 100)
		if !slices.ContainsFunc(entries, func(e accounts.AuditEntry) bool { return e.Action == "password.reset.admin" && e.Actor == ua.ID }) {
			t.Errorf("audit lacks the reset by %s: %+v", ua.ID, entries)
		}
	})
}
