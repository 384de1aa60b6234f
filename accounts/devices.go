package accounts

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
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

// RegisterDevice registers a push token of one of the account's apps,
// and reactivates it. A token registered to this account, or inactive
// (its provider refused it, its account closed), is taken as it comes. A
// token active on another account moves only with proof that the caller
// holds the device: without proof, a proof is pushed to the token (data
// "type": "device_proof", "device_proof": the proof) and the answer is a
// loa.EConflict *loa.Error naming "token" wrapping ErrDeviceHeld; the app
// that receives it registers again with it as proof, within
// deviceProofWindow. A stranger who knows someone's token can therefore
// not take their pushes (a pushed code, an alert) into their own account.
// Proof pushes are limited per token and account (deviceProofBackoff). The
// account keeps its MaxDevices most recently registered devices. Errors:
// a loa.EInvalid *loa.Error (a wrong or expired proof names "proof"),
// the EConflict above, a loa.ERateLimited *loa.Error.
func (s *Service) RegisterDevice(ctx context.Context, accountID string, d Device, proof, ip string) (Device, error) {
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
	move := false
	if proof = strings.TrimSpace(proof); proof != "" {
		if !s.validDeviceProof(d.Token, accountID, proof) {
			s.audit(ctx, accountID, "device.proof.failure", accountID, ip, nil)
			return Device{}, loa.InvalidFields(loa.FieldError{Field: "proof",
				Detail: "is not the proof pushed to this device for this account, or it has expired; register without it to be pushed a new one"})
		}
		move = true
	}
	d.ID, d.AccountID, d.Active, d.CreatedAt = uuid.NewString(), accountID, true, s.now().UTC()
	out, err := s.d.Store.UpsertDevice(ctx, d, move)
	if errors.Is(err, ErrDeviceHeld) {
		return Device{}, s.pushDeviceProof(ctx, accountID, d.Token, ip)
	}
	if err != nil {
		return Device{}, err
	}
	detail := map[string]string{"device": out.ID, "app": out.App, "platform": out.Platform}
	if move {
		detail["proved"] = "true"
	}
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

// deviceProofWindow is how long a pushed device proof lasts: it is good
// in the window it was made in and the next one (10 to 20 minutes).
const deviceProofWindow = 10 * time.Minute

// deviceProofBackoff limits the proofs pushed to one token for one
// account: 3 at once, then 10 minutes doubling to a day. A stranger's
// attempts neither flood the device nor, being counted per account, delay
// the proof of its real holder.
var deviceProofBackoff = Backoff{Free: 2, Base: 10 * time.Minute, Max: 24 * time.Hour, Forget: 24 * time.Hour}

// pushDeviceProof pushes a proof for accountID to token and returns the
// conflict that tells the caller so (or the rate limit's refusal).
func (s *Service) pushDeviceProof(ctx context.Context, accountID, token, ip string) error {
	now := s.now()
	h := sha256.Sum256([]byte(token))
	key := "device-proof:" + hex.EncodeToString(h[:12]) + ":" + accountID
	wait, err := s.d.Throttle.Take(ctx, key, now, deviceProofBackoff)
	if err != nil {
		return fmt.Errorf("accounts: register device: %w", err)
	}
	if wait > 0 {
		return (&loa.Error{Code: loa.ERateLimited, Field: "token", RetryAfter: max(wait, time.Second),
			Detail: "this device is registered to another account, and proofs were pushed to it for this account moments ago; use the last one, or wait"}).Wrap(ErrDeviceHeld)
	}
	id := "device-proof-" + uuid.NewString()
	p := producer.Direct{NotificationID: id, Title: "Loa", Body: "Một tài khoản khác muốn nhận thông báo Loa trên thiết bị này.",
		Priority: "high", To: producer.Recipient{Type: producer.ToDevice, Value: token}, Channels: []string{"push"},
		Data: map[string]string{"type": "device_proof", "device_proof": s.deviceProof(token, accountID, now.Unix()/int64(deviceProofWindow/time.Second))}}
	env, err := producer.NewEnvelope(id, producer.KindDirect, topics.LaneOTP, accountID, now, now.Add(deviceProofWindow), "", p)
	if err != nil {
		return fmt.Errorf("accounts: register device: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, s.cfg.CodePublishTimeout)
	defer cancel()
	if err := s.d.Publisher.Publish(pctx, env); err != nil {
		return fmt.Errorf("accounts: register device: %w", err)
	}
	s.audit(ctx, accountID, "device.proof", accountID, ip, nil)
	return (&loa.Error{Code: loa.EConflict, Field: "token",
		Detail: "this device is registered to another account; a proof was pushed to it (data \"device_proof\"): register again with it as \"proof\" within 10 minutes"}).Wrap(ErrDeviceHeld)
}

// deviceProof is the proof for accountID holding the device of token in
// window (a count of deviceProofWindow since the epoch): an HMAC keyed
// from the recovery key, 128 bits.
func (s *Service) deviceProof(token, accountID string, window int64) string {
	k := hmac.New(sha256.New, s.cfg.RecoveryKey)
	k.Write([]byte("loa device proof"))
	mac := hmac.New(sha256.New, k.Sum(nil))
	fmt.Fprintf(mac, "%d\x00%s\x00%s", window, accountID, token)
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:16])
}

// validDeviceProof checks proof against this window's and the last one's,
// in constant time.
func (s *Service) validDeviceProof(token, accountID, proof string) bool {
	w := s.now().Unix() / int64(deviceProofWindow/time.Second)
	ok := false
	for _, win := range []int64{w, w - 1} {
		if hmac.Equal([]byte(proof), []byte(s.deviceProof(token, accountID, win))) {
			ok = true
		}
	}
	return ok
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
