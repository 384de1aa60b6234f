package producer

import (
	"bytes"
	"encoding/json"
	"errors"
	"time"

	"github.com/loa-hub/loa"
)

// Receipt is the outcome of one delivery, published to loa.receipts and
// folded into the ledger. A loa.receipts message holds one receipt (a JSON
// object) or, from a fan-out batch, several (a JSON array of them); see
// DecodeReceipts.
type Receipt struct {
	NotificationID string     `json:"notification_id"`
	EventID        string     `json:"event_id"`
	Kind           string     `json:"kind"`
	Lane           string     `json:"lane"`
	Channel        string     `json:"channel"`
	Recipient      string     `json:"recipient"`
	Status         loa.Status `json:"status"`
	Class          string     `json:"class,omitempty"`
	Provider       string     `json:"provider,omitempty"`
	ProviderID     string     `json:"provider_id,omitempty"`
	Reason         string     `json:"reason,omitempty"`
	Targets        int        `json:"targets"`
	Attempts       int        `json:"attempts"`
	Duplicate      bool       `json:"duplicate,omitempty"` // a redelivery found it already sent
	At             time.Time  `json:"at"`
}

// DecodeReceipts decodes a loa.receipts message: one receipt or an array
// of them. Every receipt names its notification.
func DecodeReceipts(value []byte) ([]Receipt, error) {
	var rs []Receipt
	if v := bytes.TrimLeft(value, " \t\r\n"); len(v) > 0 && v[0] == '[' {
		if err := json.Unmarshal(v, &rs); err != nil {
			return nil, err
		}
	} else {
		var r Receipt
		if err := json.Unmarshal(value, &r); err != nil {
			return nil, err
		}
		rs = []Receipt{r}
	}
	for _, r := range rs {
		if r.NotificationID == "" {
			return nil, errors.New("a receipt without notification_id")
		}
	}
	return rs, nil
}

// DeliveryReport is a carrier's word on one message: the provider
// instance that accepted it, the provider's id for it, and a final status.
type DeliveryReport struct {
	// Provider is the provider instance's configured name, as the ledger
	// records it ("esms", "vms-smpp").
	Provider string
	// ProviderID is the provider's message id, as the send returned it.
	ProviderID string
	// Status is loa.StatusDelivered or loa.StatusUndelivered.
	Status loa.Status
	// Reason is what the provider said, for the ledger.
	Reason string
}
