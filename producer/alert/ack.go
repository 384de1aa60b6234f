package alert

import (
	"context"
	"errors"
	"fmt"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/producer"
)

// How an acknowledgement was made.
const (
	AckViaSession = "session"
	AckViaDevice  = "device"
)

// ErrNoAck is returned by AckByDevice for anything that is not a valid
// proof of receipt: an unknown alert, a token the alert was not sent to,
// a wrong or forged ack token, a device no longer active. The reasons are
// not told apart, so the form reveals nothing about alerts or devices.
var ErrNoAck = errors.New("alert: no such acknowledgement")

// Ack records that the account acknowledged the alert id (and with it
// the alert's chain). It returns ErrNotFound for an alert that is not
// distributed, and — for an acknowledgement with a session — for an
// account the alert is not addressed to (its areas' subscribers, the
// holders of its roles, the accounts it names): a stranger's
// acknowledgement would inflate the alert's count and tell them a
// restricted alert exists. A device's acknowledgement (AckByDevice) was
// proved by the push it received. Acknowledging again is not an error.
// It reports whether this was the account's first acknowledgement of the
// chain.
func (s *Service) Ack(ctx context.Context, id, accountID, via string) (bool, error) {
	st, err := s.store.Alert(ctx, id)
	if errors.Is(err, ErrNotFound) || (err == nil && !sendable(st.Status)) {
		return false, ErrNotFound
	}
	if err != nil {
		return false, err
	}
	if via != AckViaDevice {
		in, err := s.store.AccountInAudience(ctx, loa.Audience{Areas: st.AreaCodes, Roles: st.Audience.Roles, Accounts: st.Audience.Accounts}, accountID)
		if err != nil {
			return false, fmt.Errorf("alert: ack: %w", err)
		}
		if !in {
			return false, ErrNotFound
		}
	}
	first, err := s.store.AckAlert(ctx, AckChain(st), accountID, st.ID, via, s.now())
	if err != nil {
		return false, fmt.Errorf("alert: ack: %w", err)
	}
	return first, nil
}

// AckByDevice records an acknowledgement from an app without a session:
// deviceToken is the device's registration token and ack the token its
// push of the alert carried (producer.AckToken). Only the device that
// received the alert can produce it, so a stranger who knows someone's
// device token cannot acknowledge for them and suppress their escalation.
// Every refusal is ErrNoAck; the ack token is checked before anything is
// looked up.
func (s *Service) AckByDevice(ctx context.Context, id, deviceToken, ack string) (bool, error) {
	if !producer.ValidAckToken(s.cfg.AckKey, id, deviceToken, ack) {
		return false, ErrNoAck
	}
	account, err := s.store.DeviceAccount(ctx, deviceToken)
	if errors.Is(err, ErrNotFound) {
		return false, ErrNoAck
	}
	if err != nil {
		return false, err
	}
	first, err := s.Ack(ctx, id, account, AckViaDevice)
	if errors.Is(err, ErrNotFound) {
		return false, ErrNoAck
	}
	return first, err
}

// AckStats are an alert chain's acknowledgement counters.
type AckStats struct {
	// Acknowledged is how many accounts acknowledged the chain.
	Acknowledged int64
	// Escalated is how many escalation SMS were sent.
	Escalated int64
	// Escalation is the chain's escalation SMS notification id, for its
	// delivery counters.
	Escalation string
}

// Acks returns the acknowledgement counters of an alert's chain.
func (s *Service) Acks(ctx context.Context, st StoredAlert) (AckStats, error) {
	n, err := s.store.AlertAcks(ctx, AckChain(st))
	if err != nil {
		return AckStats{}, err
	}
	out := AckStats{Acknowledged: n, Escalation: EscalationID(st)}
	stats, err := s.store.DeliveryStats(ctx, out.Escalation)
	if err != nil {
		return AckStats{}, err
	}
	for _, d := range stats {
		if d.Status == "sent" || d.Status == "delivered" {
			out.Escalated += d.Count
		}
	}
	return out, nil
}
