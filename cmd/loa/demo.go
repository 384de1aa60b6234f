package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/otp"
)

// Demo officials of `loa dev`, so that the broadcast flow can be tried at
// once. Their password and TOTP secret are public: dev mode only.
const (
	demoPassword   = "Loa-Dev-2026!"
	demoTOTPSecret = "JBSWY3DPEHPK3PXP"
)

// demoApprovalUnit is the demo approver's unit (the DoIC's), the
// approval unit of loa dev unless LOA_APPROVAL_UNIT names another.
const demoApprovalUnit = "sotttt"

var demoOfficials = []accounts.NewOfficial{
	{Username: "demo-submitter", FullName: "Cán bộ Sở Nông nghiệp (demo)", Phone: "0900000101", Unit: "snn", Roles: []accounts.Role{accounts.RoleAgencySubmitter}},
	{Username: "demo-approver", FullName: "Cán bộ Sở Thông tin và Truyền thông (demo)", Phone: "0900000102", Unit: demoApprovalUnit, Roles: []accounts.Role{accounts.RoleBroadcastApprover}},
	{Username: "demo-ops", FullName: "Trực vận hành (demo)", Phone: "0900000103", Unit: "ttcntt", Roles: []accounts.Role{accounts.RoleOps}},
	// Alerts: an issuer of the province's civil-defence command, whose
	// alerts the demo approver approves.
	{Username: "demo-issuer", FullName: "Ban Chỉ huy Phòng thủ dân sự tỉnh (demo)", Phone: "0900000108", Unit: "bchpctt", Roles: []accounts.Role{accounts.RoleAlertIssuer}},
	// An administrator, who reads the audit log.
	{Username: "demo-admin", FullName: "Quản trị hệ thống (demo)", Phone: "0900000109", Unit: "ttcntt", Roles: []accounts.Role{accounts.RoleAdmin}},
	// Feedback: a handler of the environment department (the sample
	// categories' agency) and the DoIC's coordinator; the portal: an
	// editor and a chief editor of the DoIC's categories.
	{Username: "demo-handler", FullName: "Cán bộ Sở Tài nguyên và Môi trường (demo)", Phone: "0900000104", Unit: "so-tnmt", Roles: []accounts.Role{accounts.RoleFeedbackHandler}},
	{Username: "demo-coordinator", FullName: "Điều phối phản ánh, Sở TT&TT (demo)", Phone: "0900000105", Unit: demoApprovalUnit, Roles: []accounts.Role{accounts.RoleFeedbackCoordinator}},
	{Username: "demo-editor", FullName: "Biên tập viên Cổng thông tin (demo)", Phone: "0900000106", Unit: demoApprovalUnit, Roles: []accounts.Role{accounts.RoleEditor}},
	{Username: "demo-chief-editor", FullName: "Trưởng ban biên tập (demo)", Phone: "0900000107", Unit: demoApprovalUnit, Roles: []accounts.Role{accounts.RoleChiefEditor}},
}

// demoAudienceAreas are the communes the demo devices subscribe to: the
// sample tree's (internal/areas), else the built-in demo areas. Only
// codes present in the store are used.
var demoAudienceAreas = []string{"20470", "20473", "20497", "20500", "20530", "20570", "20194", "20227"}

// demoDevicesPerArea × areas gives a few thousand demo devices.
const demoDevicesPerArea = 500

// seedDemoOfficials creates the demo officials with their password and an
// active authenticator factor (sealed like any other), once.
func seedDemoOfficials(ctx context.Context, cfg config, store *sqlstore.DB, acc *accounts.Service) error {
	k, err := loadKeys(cfg, true)
	if err != nil {
		return err
	}
	sealer, err := otp.NewSealer(k.sealer)
	if err != nil {
		return err
	}
	for _, o := range demoOfficials {
		o.Password = demoPassword
		a, err := store.FindAccount(ctx, accounts.Login{Username: o.Username})
		if errors.Is(err, accounts.ErrNotFound) || errors.Is(err, sqlstore.ErrNotFound) {
			out, cerr := acc.CreateOfficial(ctx, accounts.Actor{Admin: true, APIKeyID: "loa-dev"}, o)
			if cerr != nil {
				return fmt.Errorf("demo official %s: %w", o.Username, cerr)
			}
			a, err = out.Account, nil
		}
		if err != nil {
			return fmt.Errorf("demo official %s: %w", o.Username, err)
		}
		if _, err := store.TOTPFactor(ctx, a.ID, "active"); err == nil {
			continue
		} else if !errors.Is(err, accounts.ErrNotFound) {
			return fmt.Errorf("demo official %s: %w", o.Username, err)
		}
		f := accounts.TOTPFactor{ID: uuid.NewString(), AccountID: a.ID, Status: "pending", CreatedAt: time.Now()}
		if f.SecretSealed, err = sealer.Seal([]byte(demoTOTPSecret), []byte("totp:"+f.ID)); err != nil {
			return err
		}
		if err := store.CreateTOTPFactor(ctx, f); err != nil {
			return err
		}
		if err := store.ActivateTOTPFactor(ctx, f.ID, nil, time.Now()); err != nil {
			return err
		}
	}
	return nil
}

// seedDemoAudience adds demo citizens with a verified phone and a Smart
// app device, subscribed to the demo areas, unless they are there.
func seedDemoAudience(ctx context.Context, store *sqlstore.DB, log *slog.Logger) error {
	codes, err := store.ExistingAreas(ctx, demoAudienceAreas)
	if err != nil {
		return err
	}
	seeded := 0
	for i, code := range demoAudienceAreas {
		if !slices.Contains(codes, code) {
			continue
		}
		prefix := "demo-" + code
		ok, err := store.AccountExists(ctx, prefix+"-acc-0000001")
		if err != nil {
			return err
		}
		if ok {
			continue
		}
		if err := store.SeedAudience(ctx, prefix, demoDevicesPerArea, (i+1)*100_000, "smart", code, time.Now()); err != nil {
			return fmt.Errorf("demo audience in %s: %w", code, err)
		}
		seeded += demoDevicesPerArea
	}
	if seeded > 0 {
		log.Info("loa dev: demo audience seeded", slog.Int("devices", seeded), slog.Any("areas", codes))
	}
	return nil
}
