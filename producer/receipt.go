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

// Delivery is one row of the delivery ledger: the latest outcome of one
// notification on one channel to one recipient.
type Delivery struct {
	NotificationID string
	Channel        string
	Recipient      string
	Status         loa.Status
	Class          string
	Provider       string
	ProviderID     string
	Reason         string
	// Targets is how many recipients the notification had on this
	// channel when it was dispatched, so a reader knows when the channel
	// is complete.
	Targets   int
	Attempts  int
	UpdatedAt time.Time
}

// DeliveryStat is how many deliveries of a notification are in one
// status on one channel through one provider.
type DeliveryStat struct {
	Channel, Provider string
	Status            loa.Status
	Count             int64
}

// DeadLetterRecord is one dead letter as operators see it: the store
// keeps one for each record of the dead-letter topic.
type DeadLetterRecord struct {
	ID         string
	Reason     string
	Topic      string
	Partition  int
	Offset     int64
	Key        string
	Envelope   string // the event as JSON, when it was decodable
	Raw        string // base64 of undecodable bytes
	Channel    string
	Recipient  string
	Provider   string
	Attempts   int
	History    string // JSON list of failed attempts
	At         time.Time
	ReplayedAt time.Time
	ReplayedBy string
}

// ErrAlreadyReplayed is the store's error when a dead letter to mark
// replayed was replayed before: a dead letter is replayed once.
var ErrAlreadyReplayed = errors.New("dead letter already replayed")

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
