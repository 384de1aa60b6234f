package dispatcher

import (
	"encoding/json"
	"time"

	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

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

// A fan-out batch's receipts travel packed (producer.PackReceipts), at most
// maxReceiptsPerRecord receipts and about maxReceiptRecordBytes, well
// under Kafka's default 1 MiB message limit. One message per delivery was
// a third of the broker's work in a broadcast.
const (
	maxReceiptsPerRecord  = 500
	maxReceiptRecordBytes = 256 << 10
)

// receiptRecords packs receipts into as few loa.receipts records as the
// bounds allow, keyed by the notification.
func (d *Dispatcher) receiptRecords(notificationID string, rs []producer.Receipt) []producer.Record {
	var out []producer.Record
	for _, v := range producer.PackReceipts(rs, maxReceiptsPerRecord, maxReceiptRecordBytes) {
		out = append(out, producer.Record{Topic: d.cfg.Names.Topic(topics.Receipts), Key: notificationID, Value: v})
	}
	return out
}
