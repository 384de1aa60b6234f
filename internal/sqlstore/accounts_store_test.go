package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
)

// TestAccountsStore is the accounts.Store contract on every dialect.
func TestAccountsStore(t *testing.T) {
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			t.Run("accounts and identifiers", func(t *testing.T) { testAccountRows(t, db) })
			t.Run("passwords", func(t *testing.T) { testPasswordRows(t, db) })
			t.Run("roles", func(t *testing.T) { testRoleRows(t, db) })
			t.Run("totp and recovery codes", func(t *testing.T) { testFactorRows(t, db) })
			t.Run("advance step races", func(t *testing.T) { testAdvanceStepRace(t, db) })
			t.Run("devices", func(t *testing.T) { testDeviceRows(t, db) })
			t.Run("subscriptions", func(t *testing.T) { testSubscriptionRows(t, db) })
			t.Run("audit", func(t *testing.T) { testAuditRows(t, db) })
		})
	}
}

var at = time.Date(2026, 11, 22, 10, 0, 0, 500000000, time.UTC)

func citizen(id, cid, phone string) accounts.Account {
	return accounts.Account{ID: id, Kind: accounts.KindCitizen, Status: accounts.StatusPending, FullName: "Nguyễn Văn " + id,
		CitizenID: cid, Phone: phone, PasswordHash: "h-" + id, PasswordChangedAt: at, CreatedAt: at}
}

func testAccountRows(t *testing.T, db *sqlstore.DB) {
	ctx := context.Background()
	a := citizen("c1", "049095000123", "84912345678")
	if err := db.CreateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, err := db.Account(ctx, "c1")
	if err != nil || got.FullName != a.FullName || got.CitizenID != a.CitizenID || !got.PasswordChangedAt.Equal(at) ||
		!got.PhoneVerifiedAt.IsZero() || got.Status != accounts.StatusPending {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	var ce *loa.Error
	// A pending account reserves nothing: identifiers are unique among
	// active accounts.
	if err := db.CreateAccount(ctx, citizen("c2", "049095000123", "84987654321")); err != nil {
		t.Errorf("second pending with the citizen ID: %v", err)
	}
	// Pending accounts may share a phone; verified ones may not.
	if err := db.CreateAccount(ctx, citizen("c3", "001099000456", "84912345678")); err != nil {
		t.Fatalf("second pending with the phone: %v", err)
	}
	if _, err := db.FindAccount(ctx, accounts.Login{Phone: "84912345678"}); !errors.Is(err, accounts.ErrNotFound) {
		t.Errorf("an unverified phone signs in: %v", err)
	}
	if err := db.ActivateAccount(ctx, "c1", at); err != nil {
		t.Fatal(err)
	}
	if err := db.ActivateAccount(ctx, "c3", at); !errors.As(err, &ce) || ce.Code != loa.EConflict || ce.Field != "phone" {
		t.Errorf("second verified account with the phone: %v", err)
	}
	if err := db.ActivateAccount(ctx, "c1", at); !errors.Is(err, accounts.ErrNotFound) {
		t.Errorf("activating an active account: %v", err)
	}
	if err := db.ActivateAccount(ctx, "c2", at); !errors.As(err, &ce) || ce.Code != loa.EConflict || ce.Field != "citizen_id" {
		t.Errorf("second active account with the citizen ID: %v", err)
	}
	if as, err := db.FindAccounts(ctx, accounts.Login{CitizenID: "049095000123", Phone: "84987654321"}); err != nil || len(as) != 1 || as[0].ID != "c1" {
		t.Errorf("pending accounts are candidates: %+v %v", as, err)
	}
	if n, err := db.DeletePendingAccounts(ctx, at.Add(time.Second)); err != nil || n != 2 {
		t.Errorf("expired pending accounts deleted: %d %v", n, err)
	}
	if _, err := db.Account(ctx, "c2"); !errors.Is(err, accounts.ErrNotFound) {
		t.Errorf("a deleted pending account: %v", err)
	}
	for _, l := range []accounts.Login{{CitizenID: "049095000123"}, {Phone: "84912345678"}, {Username: "049095000123", CitizenID: "049095000123"}} {
		if got, err := db.FindAccount(ctx, l); err != nil || got.ID != "c1" {
			t.Errorf("find %+v: %+v %v", l, got, err)
		}
	}
	off := accounts.Account{ID: "o1", Kind: accounts.KindOfficial, Status: accounts.StatusActive, FullName: "Trần B", Username: "tran.b",
		Phone: "84912345678", Unit: "sotttt", CreatedAt: at}
	if err := db.CreateAccount(ctx, off); err != nil {
		t.Fatalf("official sharing a citizen's phone: %v", err)
	}
	off.ID = "o2"
	if err := db.CreateAccount(ctx, off); !errors.As(err, &ce) || ce.Code != loa.EConflict || ce.Field != "username" {
		t.Errorf("same user name: %v", err)
	}
	org := accounts.Account{ID: "g1", Kind: accounts.KindOrganisation, Status: accounts.StatusPending, FullName: "Viettel", TaxCode: "0100109106", CreatedAt: at}
	if err := db.CreateAccount(ctx, org); err != nil {
		t.Fatal(err)
	}
	if err := db.ActivateAccount(ctx, "g1", at); err != nil {
		t.Fatal(err)
	}
	org.ID, org.Status = "g2", accounts.StatusActive
	if err := db.CreateAccount(ctx, org); !errors.As(err, &ce) || ce.Code != loa.EConflict || ce.Field != "tax_code" {
		t.Errorf("same tax code: %v", err)
	}
	if got, err := db.FindAccount(ctx, accounts.Login{TaxCode: "0100109106", Username: "0100109106"}); err != nil || got.ID != "g1" {
		t.Errorf("find by tax code: %+v %v", got, err)
	}
	if _, err := db.Account(ctx, "nobody"); !errors.Is(err, accounts.ErrNotFound) {
		t.Errorf("unknown: %v", err)
	}
	// Closing deactivates devices; Contact no longer resolves the account.
	if _, err := db.UpsertDevice(ctx, accounts.Device{ID: "d-o1", AccountID: "o1", Token: "tok-o1", App: "egov", Platform: "ios", CreatedAt: at}, false); err != nil {
		t.Fatal(err)
	}
	if err := db.CloseAccount(ctx, "o1", at); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Account(ctx, "o1"); got.Status != accounts.StatusClosed || !got.ClosedAt.Equal(at) {
		t.Errorf("closed: %+v", got)
	}
	if devs, _ := db.Devices(ctx, "o1"); len(devs) != 1 || devs[0].Active {
		t.Errorf("devices of a closed account: %+v", devs)
	}
	if _, err := db.Contact(ctx, "o1", ""); !errors.Is(err, sqlstore.ErrNotFound) {
		t.Errorf("contact of a closed account: %v", err)
	}
}

func testPasswordRows(t *testing.T, db *sqlstore.DB) {
	ctx := context.Background()
	if err := db.CreateAccount(ctx, citizen("p1", "049095000999", "84933333333")); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 6; i++ {
		if err := db.SetPassword(ctx, "p1", fmt.Sprintf("h%d", i), at.Add(time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	hist, err := db.PasswordHistory(ctx, "p1", 3)
	if err != nil || !slices.Equal(hist, []string{"h6", "h5", "h4"}) {
		t.Errorf("history %v %v", hist, err)
	}
	got, _ := db.Account(ctx, "p1")
	if got.PasswordHash != "h6" || !got.PasswordChangedAt.Equal(at.Add(6*time.Hour)) {
		t.Errorf("current %+v", got)
	}
	if err := db.SetPassword(ctx, "nobody", "x", at); !errors.Is(err, accounts.ErrNotFound) {
		t.Errorf("unknown: %v", err)
	}
}

func testRoleRows(t *testing.T, db *sqlstore.DB) {
	ctx := context.Background()
	db.CreateAccount(ctx, accounts.Account{ID: "r1", Kind: accounts.KindOfficial, Status: accounts.StatusActive, Username: "r1", CreatedAt: at})
	g := accounts.RoleGrant{Unit: "u1", Role: accounts.RoleOps}
	for range 2 {
		if err := db.GrantRole(ctx, "r1", g, "admin", at); err != nil {
			t.Fatal(err)
		}
	}
	db.GrantRole(ctx, "r1", accounts.RoleGrant{Unit: "u0", Role: accounts.RoleAdmin}, "admin", at)
	grants, err := db.RoleGrants(ctx, "r1")
	if err != nil || len(grants) != 2 || grants[0].Unit != "u0" {
		t.Errorf("grants %v %v", grants, err)
	}
	if ok, err := db.RevokeRole(ctx, "r1", g); !ok || err != nil {
		t.Errorf("revoke: %v %v", ok, err)
	}
	if ok, _ := db.RevokeRole(ctx, "r1", g); ok {
		t.Error("revoked twice")
	}
}

func testFactorRows(t *testing.T, db *sqlstore.DB) {
	ctx := context.Background()
	db.CreateAccount(ctx, accounts.Account{ID: "f1", Kind: accounts.KindOfficial, Status: accounts.StatusActive, Username: "f1", CreatedAt: at})
	if _, err := db.TOTPFactor(ctx, "f1", "pending"); !errors.Is(err, accounts.ErrNotFound) {
		t.Errorf("no factor: %v", err)
	}
	for i, id := range []string{"fa", "fb"} {
		f := accounts.TOTPFactor{ID: id, AccountID: "f1", SecretSealed: []byte{0, 1, 2, byte(i)}, CreatedAt: at.Add(time.Duration(i) * time.Second)}
		if err := db.CreateTOTPFactor(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	p, err := db.TOTPFactor(ctx, "f1", "pending")
	if err != nil || p.ID != "fb" || !slices.Equal(p.SecretSealed, []byte{0, 1, 2, 1}) {
		t.Fatalf("pending: %+v %v", p, err)
	}
	if err := db.ActivateTOTPFactor(ctx, "fa", nil, at); !errors.Is(err, accounts.ErrNotFound) {
		t.Errorf("a replaced pending factor activated: %v", err)
	}
	if err := db.ActivateTOTPFactor(ctx, "fb", []string{"h1", "h2"}, at); err != nil {
		t.Fatal(err)
	}
	if a, err := db.TOTPFactor(ctx, "f1", "active"); err != nil || a.ID != "fb" {
		t.Errorf("active: %+v %v", a, err)
	}
	codes, _ := db.RecoveryCodes(ctx, "f1")
	if len(codes) != 2 {
		t.Fatalf("codes %v", codes)
	}
	if ok, _ := db.UseRecoveryCode(ctx, codes[0].ID, at); !ok {
		t.Error("use")
	}
	if ok, _ := db.UseRecoveryCode(ctx, codes[0].ID, at); ok {
		t.Error("used twice")
	}
	if left, _ := db.RecoveryCodes(ctx, "f1"); len(left) != 1 {
		t.Errorf("left %v", left)
	}
	// Re-enrolment replaces the active factor and the recovery codes.
	db.CreateTOTPFactor(ctx, accounts.TOTPFactor{ID: "fc", AccountID: "f1", SecretSealed: []byte{9}, CreatedAt: at})
	if err := db.ActivateTOTPFactor(ctx, "fc", []string{"h3"}, at); err != nil {
		t.Fatal(err)
	}
	if a, _ := db.TOTPFactor(ctx, "f1", "active"); a.ID != "fc" {
		t.Errorf("active after re-enrolment: %s", a.ID)
	}
	if left, _ := db.RecoveryCodes(ctx, "f1"); len(left) != 1 || left[0].Hash != "h3" {
		t.Errorf("codes after re-enrolment: %v", left)
	}
}

// testAdvanceStepRace: 20 concurrent compare-and-sets of one step → one
// wins; an earlier step never wins afterwards.
func testAdvanceStepRace(t *testing.T, db *sqlstore.DB) {
	ctx := context.Background()
	db.CreateAccount(ctx, accounts.Account{ID: "s1", Kind: accounts.KindOfficial, Status: accounts.StatusActive, Username: "s1", CreatedAt: at})
	db.CreateTOTPFactor(ctx, accounts.TOTPFactor{ID: "fs", AccountID: "s1", SecretSealed: []byte{1}, CreatedAt: at})
	var (
		wg   sync.WaitGroup
		wins atomic.Int64
	)
	for range 20 {
		wg.Go(func() {
			ok, err := db.AdvanceStep(ctx, "fs", 1000)
			if err != nil {
				t.Error(err)
			}
			if ok {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d wins, want 1", wins.Load())
	}
	for _, c := range []struct {
		step int64
		want bool
	}{{999, false}, {1000, false}, {1001, true}} {
		if ok, _ := db.AdvanceStep(ctx, "fs", c.step); ok != c.want {
			t.Errorf("step %d: %v, want %v", c.step, ok, c.want)
		}
	}
	if ok, _ := db.AdvanceStep(ctx, "missing", 5); ok {
		t.Error("unknown factor advanced")
	}
}

func testDeviceRows(t *testing.T, db *sqlstore.DB) {
	ctx := context.Background()
	db.CreateAccount(ctx, citizen("v1", "049095000777", "84944444444"))
	db.CreateAccount(ctx, citizen("v2", "049095000778", "84944444445"))
	d, err := db.UpsertDevice(ctx, accounts.Device{ID: "dv1", AccountID: "v1", Token: "tok-v", App: "smart", Platform: "ios", CreatedAt: at}, false)
	if err != nil || d.ID != "dv1" || !d.Active {
		t.Fatalf("insert %+v %v", d, err)
	}
	// Active on v1, it moves to v2 only when told to.
	if _, err := db.UpsertDevice(ctx, accounts.Device{ID: "dv2", AccountID: "v2", Token: "tok-v", App: "egov", Platform: "android", CreatedAt: at}, false); !errors.Is(err, accounts.ErrDeviceHeld) {
		t.Fatalf("a held token moved unasked: %v", err)
	}
	if c, _ := db.Contact(ctx, "v1", ""); len(c.Tokens) != 1 {
		t.Fatalf("the refused move changed the owner's device: %+v", c)
	}
	if d, err = db.UpsertDevice(ctx, accounts.Device{ID: "dv2", AccountID: "v2", Token: "tok-v", App: "smart", Platform: "android", CreatedAt: at}, true); err != nil || d.AccountID != "v2" {
		t.Fatalf("a move told to: %+v %v", d, err)
	}
	// Inactive, it moves unasked.
	db.DeactivateDevice(ctx, "tok-v")
	d, err = db.UpsertDevice(ctx, accounts.Device{ID: "dv3", AccountID: "v1", Token: "tok-v", App: "egov", Platform: "android", CreatedAt: at}, false)
	if err != nil || d.ID != "dv1" || d.AccountID != "v1" || d.App != "egov" || !d.Active {
		t.Fatalf("move %+v %v", d, err)
	}
	if _, err := db.UpsertDevice(ctx, accounts.Device{ID: "dv2", AccountID: "v2", Token: "tok-v", App: "egov", Platform: "android", CreatedAt: at}, true); err != nil {
		t.Fatal(err)
	}
	if c, _ := db.Contact(ctx, "v2", "egov"); len(c.Tokens) != 1 {
		t.Errorf("moved token not reachable: %+v", c)
	}
	if ok, _ := db.DeleteDevice(ctx, "v1", "dv1"); ok {
		t.Error("deleted another account's device")
	}
	if ok, _ := db.DeleteDevice(ctx, "v2", "dv1"); !ok {
		t.Error("delete")
	}
	// Trimming keeps the most recently registered; another account's
	// devices are not touched.
	db.UpsertDevice(ctx, accounts.Device{ID: "dw", AccountID: "v1", Token: "tok-w", App: "egov", Platform: "ios", CreatedAt: at}, false)
	for i := range 5 {
		db.UpsertDevice(ctx, accounts.Device{ID: fmt.Sprintf("dt%d", i), AccountID: "v2", Token: fmt.Sprintf("tok-t%d", i), App: "egov", Platform: "ios",
			CreatedAt: at.Add(time.Duration(i) * time.Minute)}, false)
	}
	if n, err := db.TrimDevices(ctx, "v2", 3); err != nil || n != 2 {
		t.Errorf("trimmed %d: %v", n, err)
	}
	if c, _ := db.Contact(ctx, "v2", "egov"); fmt.Sprint(c.Tokens) != "[tok-t2 tok-t3 tok-t4]" && fmt.Sprint(c.Tokens) != "[tok-t4 tok-t3 tok-t2]" {
		t.Errorf("kept %v", c.Tokens)
	}
	if c, _ := db.Contact(ctx, "v1", "egov"); len(c.Tokens) != 1 {
		t.Errorf("another account's devices: %v", c.Tokens)
	}
}

func testSubscriptionRows(t *testing.T, db *sqlstore.DB) {
	ctx := context.Background()
	db.CreateAccount(ctx, citizen("b1", "049095000555", "84955555555"))
	if err := db.UpsertAreas(ctx, []accounts.Area{{Code: "49", Name: "Quảng Nam"}, {Code: "20194", Name: "Hội An", Parent: "49"}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.ExistingAreas(ctx, []string{"49", "1", "20194"}); len(got) != 2 {
		t.Errorf("existing %v", got)
	}
	for _, s := range []accounts.Subscriptions{{Areas: []string{"49"}, Topics: []string{"power", "jobs"}}, {Areas: []string{"20194"}, Topics: []string{"power"}}} {
		if err := db.SetSubscriptions(ctx, "b1", s, at); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.Subscriptions(ctx, "b1")
	if err != nil || !slices.Equal(got.Areas, []string{"20194"}) || !slices.Equal(got.Topics, []string{"power"}) {
		t.Errorf("subscriptions %+v %v", got, err)
	}
	if err := db.SetSubscriptions(ctx, "b1", accounts.Subscriptions{Areas: []string{"nope"}}, at); err == nil {
		t.Error("an unknown area was stored")
	}
	quiet := accounts.QuietHours{Start: "22:30", End: "05:45", TimeZone: "Asia/Ho_Chi_Minh"}
	if err := db.SetSubscriptions(ctx, "b1", accounts.Subscriptions{Areas: []string{"49"}, QuietHours: &quiet}, at); err != nil {
		t.Fatal(err)
	}
	if got, err := db.Subscriptions(ctx, "b1"); err != nil || got.QuietHours == nil || *got.QuietHours != quiet {
		t.Errorf("quiet hours %+v %v", got.QuietHours, err)
	}
	if page, err := db.AudienceDevicesQuiet(ctx, sqlstore.Audience{Accounts: []string{"b1"}}, sqlstore.AnyApp, "", 10); err != nil {
		t.Error(err)
	} else {
		for _, k := range page {
			if k.Quiet == nil || *k.Quiet != quiet {
				t.Errorf("device %s quiet hours %+v", k.Address, k.Quiet)
			}
		}
	}
	if err := db.SetSubscriptions(ctx, "b1", accounts.Subscriptions{Areas: []string{"49"}}, at); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Subscriptions(ctx, "b1"); got.QuietHours != nil {
		t.Errorf("quiet hours not cleared: %+v", got.QuietHours)
	}
}

func testAuditRows(t *testing.T, db *sqlstore.DB) {
	ctx := context.Background()
	for i, action := range []string{"account.register", "session.create"} {
		if err := db.AppendAudit(ctx, accounts.AuditEntry{At: at.Add(time.Duration(i) * time.Second), Actor: "a1", Action: action, Subject: "a1",
			Detail: map[string]string{"kind": "citizen"}, IP: "203.0.113.7"}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.AuditLog(ctx, "a1", 10)
	if err != nil || len(got) != 2 || got[1].Action != "session.create" || got[0].Detail["kind"] != "citizen" || !got[0].At.Equal(at) {
		t.Errorf("audit %+v %v", got, err)
	}
}
