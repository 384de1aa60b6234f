package producer

import (
	"errors"
	"time"

	"github.com/loa-hub/loa"
)

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
