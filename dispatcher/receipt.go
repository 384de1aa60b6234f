package dispatcher

import (
	"encoding/json"
	"time"

	"github.com/loa-hub/loa/producer"
)

// Delivery statuses in receipts and the ledger.
const (
	StatusSent      = "sent"
	StatusFailed    = "failed"
	StatusExpired   = "expired"
	StatusTokenDead = "token_dead"
	// StatusSkipped: the recipient has no address on the channel (an
	// account without an active device, say).
	StatusSkipped = "skipped"
	// StatusRetrying: a transient failure; the delivery waits in a retry
	// tier. Not a final outcome.
	StatusRetrying = "retrying"
	// StatusCancelled: not sent because its notification was cancelled
	// (a broadcast withdrawn, an alert cancelled) before this part went out.
	StatusCancelled = "cancelled"
	// StatusDelivered and StatusUndelivered come from a gateway's delivery
	// report after StatusSent: the carrier confirmed, or gave up on, the
	// message reaching the phone. The ledger ranks them above sent.
	StatusDelivered   = "delivered"
	StatusUndelivered = "undelivered"
)

// Receipt is the outcome of one delivery, published to loa.receipts and
// folded into the ledger.
type Receipt struct {
	NotificationID string    `json:"notification_id"`
	EventID        string    `json:"event_id"`
	Kind           string    `json:"kind"`
	Lane           string    `json:"lane"`
	Channel        string    `json:"channel"`
	Recipient      string    `json:"recipient"`
	Status         string    `json:"status"`
	Class          string    `json:"class,omitempty"`
	Provider       string    `json:"provider,omitempty"`
	ProviderID     string    `json:"provider_id,omitempty"`
	Reason         string    `json:"reason,omitempty"`
	Targets        int       `json:"targets"`
	Attempts       int       `json:"attempts"`
	Duplicate      bool      `json:"duplicate,omitempty"` // a redelivery found it already sent
	At             time.Time `json:"at"`
}

// DeadLetter is a message the dispatcher gave up on, published to
// loa.deadletter with why.
type DeadLetter struct {
	ID        string          `json:"id"`
	Reason    string          `json:"reason"`
	Topic     string          `json:"topic"`
	Partition int             `json:"partition"`
	Offset    int64           `json:"offset"`
	Key       string          `json:"key,omitempty"`
	Envelope  json.RawMessage `json:"envelope,omitempty"` // when it was valid JSON
	Raw       []byte          `json:"raw,omitempty"`      // when it was not
	Channel   string          `json:"channel,omitempty"`
	Recipient string          `json:"recipient,omitempty"`
	Provider  string          `json:"provider,omitempty"`
	Attempts  int             `json:"attempts,omitempty"`
	// History lists the failed tries that led here.
	History []producer.Attempt `json:"history,omitempty"`
	At      time.Time          `json:"at"`
}
