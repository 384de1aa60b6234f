package accounts

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/loa-hub/loa"
)

const (
	maxDeviceToken   = 4096
	maxSubscriptions = 200
)

// MaxDevices is how many devices an account keeps: registering one more
// removes the one registered longest ago. Registration costs a citizen
// one SMS, so without a bound one account could store any number of
// made-up tokens, and every broadcast to its area would send to them all.
const MaxDevices = 10

// RegisterDevice registers a push token of one of the account's apps. A
// token already registered (to this or another account) moves to this
// account and is reactivated. The account keeps its MaxDevices most
// recently registered devices. Errors: a loa.EInvalid *loa.Error.
func (s *Service) RegisterDevice(ctx context.Context, accountID string, d Device, ip string) (Device, error) {
	var v loa.Validation
	d.Token = strings.TrimSpace(d.Token)
	if d.Token == "" || len(d.Token) > maxDeviceToken || strings.ContainsAny(d.Token, " \t\r\n") {
		v.Add("token", "must be a push registration token of 1 to %d characters without spaces", maxDeviceToken)
	}
	if !slices.Contains(Apps, d.App) {
		v.Add("app", "must be one of %s", strings.Join(Apps, ", "))
	}
	if !slices.Contains(Platforms, d.Platform) {
		v.Add("platform", "must be one of %s", strings.Join(Platforms, ", "))
	}
	if err := v.Err(ErrInvalid); err != nil {
		return Device{}, err
	}
	d.ID, d.AccountID, d.Active, d.CreatedAt = uuid.NewString(), accountID, true, s.now().UTC()
	out, err := s.d.Store.UpsertDevice(ctx, d)
	if err != nil {
		return Device{}, err
	}
	detail := map[string]string{"device": out.ID, "app": out.App, "platform": out.Platform}
	removed, err := s.d.Store.TrimDevices(ctx, accountID, MaxDevices)
	if err != nil {
		return Device{}, err
	}
	if removed > 0 {
		detail["removed_oldest"] = fmt.Sprint(removed)
	}
	s.audit(ctx, accountID, "device.register", accountID, ip, detail)
	return out, nil
}

// RemoveDevice deletes one of the account's devices. Errors: ErrNotFound.
func (s *Service) RemoveDevice(ctx context.Context, accountID, deviceID, ip string) error {
	ok, err := s.d.Store.DeleteDevice(ctx, accountID, deviceID)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("accounts: remove device: %w", ErrNotFound)
	}
	s.audit(ctx, accountID, "device.remove", accountID, ip, map[string]string{"device": deviceID})
	return nil
}

// SetSubscriptions replaces the account's areas and topics. Area codes
// must be loaded areas; topics must be configured ones. Errors:
// a loa.EInvalid *loa.Error naming each bad entry ("areas[2]").
func (s *Service) SetSubscriptions(ctx context.Context, accountID string, sub Subscriptions, ip string) (Subscriptions, error) {
	var v loa.Validation
	if len(sub.Areas) > maxSubscriptions {
		v.Add("areas", "has %d entries; the limit is %d", len(sub.Areas), maxSubscriptions)
	}
	if len(sub.Topics) > maxSubscriptions {
		v.Add("topics", "has %d entries; the limit is %d", len(sub.Topics), maxSubscriptions)
	}
	if err := v.Err(ErrInvalid); err != nil {
		return Subscriptions{}, err
	}
	areas := dedupe(sub.Areas)
	known, err := s.d.Store.ExistingAreas(ctx, areas)
	if err != nil {
		return Subscriptions{}, err
	}
	for i, a := range sub.Areas {
		if !slices.Contains(known, a) {
			v.Add(fmt.Sprintf("areas[%d]", i), "unknown area code %q", a)
		}
	}
	for i, t := range sub.Topics {
		if !slices.Contains(s.cfg.Topics, t) {
			v.Add(fmt.Sprintf("topics[%d]", i), "unknown topic %q; known: %s", t, strings.Join(s.cfg.Topics, ", "))
		}
	}
	if q := sub.QuietHours; q != nil {
		if q.TimeZone == "" {
			q.TimeZone = DefaultTimeZone
		}
		if err := q.Validate(); err != nil {
			v.Add("quiet_hours", "%v", err)
		}
	}
	if err := v.Err(ErrInvalid); err != nil {
		return Subscriptions{}, err
	}
	out := Subscriptions{Areas: areas, Topics: dedupe(sub.Topics), QuietHours: sub.QuietHours}
	if err := s.d.Store.SetSubscriptions(ctx, accountID, out, s.now().UTC()); err != nil {
		return Subscriptions{}, err
	}
	s.audit(ctx, accountID, "subscriptions.set", accountID, ip, map[string]string{"areas": fmt.Sprint(len(out.Areas)), "topics": fmt.Sprint(len(out.Topics))})
	return out, nil
}

// Subscriptions returns the account's areas and topics.
func (s *Service) Subscriptions(ctx context.Context, accountID string) (Subscriptions, error) {
	return s.d.Store.Subscriptions(ctx, accountID)
}

func dedupe(in []string) []string {
	out := []string{}
	for _, x := range in {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}
