package dispatcher

import (
	"bytes"
	"encoding/json"
	"errors"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
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

// A fan-out batch's receipts travel packed into JSON arrays of at most
// maxReceiptsPerRecord receipts and about maxReceiptRecordBytes, well
// under Kafka's default 1 MiB message limit. One message per delivery was
// a third of the broker's work in a broadcast.
const (
	maxReceiptsPerRecord  = 500
	maxReceiptRecordBytes = 256 << 10
)

// receiptRecords packs receipts into as few loa.receipts records as the
// bounds allow, keyed by the notification.
func (d *Dispatcher) receiptRecords(notificationID string, rs []Receipt) []producer.Record {
	var (
		out   []producer.Record
		buf   bytes.Buffer
		count int
	)
	flush := func() {
		if count == 0 {
			return
		}
		buf.WriteByte(']')
		out = append(out, producer.Record{Topic: d.cfg.Names.Topic(topics.Receipts), Key: notificationID, Value: bytes.Clone(buf.Bytes())})
		buf.Reset()
		count = 0
	}
	for _, r := range rs {
		b, _ := json.Marshal(r) // a Receipt always marshals
		if count > 0 && (count == maxReceiptsPerRecord || buf.Len()+len(b)+2 > maxReceiptRecordBytes) {
			flush()
		}
		if count == 0 {
			buf.WriteByte('[')
		} else {
			buf.WriteByte(',')
		}
		buf.Write(b)
		count++
	}
	flush()
	return out
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
