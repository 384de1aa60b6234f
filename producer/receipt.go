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
// object), or, from a fan-out batch, several: packed (PackReceipts), or a
// JSON array of them as earlier versions wrote; see DecodeReceipts.
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

// packed is a loa.receipts message of several receipts of one event on
// one channel: what they share is written once, each receipt's own fields
// under short names, and its time as Unix nanoseconds. Half the bytes of
// an array of receipts, and a third of the CPU to write and read back.
type packed struct {
	Packed         int         `json:"packed"` // the format's version: 1
	NotificationID string      `json:"notification_id"`
	EventID        string      `json:"event_id,omitempty"`
	Kind           string      `json:"kind,omitempty"`
	Lane           string      `json:"lane,omitempty"`
	Channel        string      `json:"channel"`
	Rows           []packedRow `json:"rows"`
}

type packedRow struct {
	Recipient  string     `json:"r"`
	Status     loa.Status `json:"s"`
	Class      string     `json:"c,omitempty"`
	Provider   string     `json:"p,omitempty"`
	ProviderID string     `json:"i,omitempty"`
	Reason     string     `json:"e,omitempty"`
	Targets    int        `json:"t"`
	Attempts   int        `json:"a"`
	Duplicate  bool       `json:"d,omitempty"`
	At         int64      `json:"at"`
}

var packedPrefix = []byte(`{"packed":1,`)

// PackReceipts packs receipts into as few loa.receipts message values as
// the bounds allow: at most maxCount receipts and about maxBytes each, a
// new value wherever the event or channel changes. Receipt times keep
// nanoseconds but not their zone: they decode in UTC.
func PackReceipts(rs []Receipt, maxCount, maxBytes int) [][]byte {
	var (
		out  [][]byte
		cur  packed
		size int
	)
	flush := func() {
		if len(cur.Rows) == 0 {
			return
		}
		out = append(out, appendPacked(make([]byte, 0, size), &cur))
		cur.Rows, size = nil, 0
	}
	for _, r := range rs {
		same := cur.NotificationID == r.NotificationID && cur.EventID == r.EventID && cur.Kind == r.Kind &&
			cur.Lane == r.Lane && cur.Channel == r.Channel
		// A row's JSON is its strings, quoted, plus at most 90 bytes of
		// names, numbers and punctuation.
		rowSize := quotedLen(r.Recipient) + quotedLen(r.Class) + quotedLen(r.Provider) + quotedLen(r.ProviderID) + quotedLen(r.Reason) + 90
		if len(cur.Rows) > 0 && (!same || len(cur.Rows) == maxCount || size+rowSize > maxBytes) {
			flush()
		}
		if len(cur.Rows) == 0 {
			cur = packed{Packed: 1, NotificationID: r.NotificationID, EventID: r.EventID, Kind: r.Kind, Lane: r.Lane, Channel: r.Channel,
				Rows: make([]packedRow, 0, min(maxCount, len(rs)))}
			size = 120 + quotedLen(r.NotificationID) + quotedLen(r.EventID) + quotedLen(r.Kind) + quotedLen(r.Lane) + quotedLen(r.Channel)
		}
		at := int64(0)
		if !r.At.IsZero() {
			at = r.At.UnixNano()
		}
		cur.Rows = append(cur.Rows, packedRow{Recipient: r.Recipient, Status: r.Status, Class: r.Class, Provider: r.Provider,
			ProviderID: r.ProviderID, Reason: r.Reason, Targets: r.Targets, Attempts: r.Attempts, Duplicate: r.Duplicate, At: at})
		size += rowSize
	}
	flush()
	return out
}

// quotedLen bounds the length of s as encoding/json quotes it: escaped
// characters take up to 6 bytes, and so may any byte of a multi-byte or
// invalid UTF-8 sequence (U+2028 and U+FFFD are written as \uXXXX).
func quotedLen(s string) int {
	n := 2
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			n += 2
		case c < 0x20 || c == '<' || c == '>' || c == '&' || c >= 0x80:
			n += 6
		default:
			n++
		}
	}
	return n
}

// DecodeReceipts decodes a loa.receipts message: one receipt, a packed
// batch of them, or an array of them. Every receipt names its
// notification.
func DecodeReceipts(value []byte) ([]Receipt, error) {
	var rs []Receipt
	if v := bytes.TrimLeft(value, " \t\r\n"); bytes.HasPrefix(v, packedPrefix) {
		p, ok := readPacked(v)
		if !ok {
			p = packed{}
			if err := json.Unmarshal(v, &p); err != nil {
				return nil, err
			}
		}
		rs = make([]Receipt, len(p.Rows))
		for i, row := range p.Rows {
			rs[i] = Receipt{NotificationID: p.NotificationID, EventID: p.EventID, Kind: p.Kind, Lane: p.Lane, Channel: p.Channel,
				Recipient: row.Recipient, Status: row.Status, Class: row.Class, Provider: row.Provider, ProviderID: row.ProviderID,
				Reason: row.Reason, Targets: row.Targets, Attempts: row.Attempts, Duplicate: row.Duplicate}
			if row.At != 0 {
				rs[i].At = time.Unix(0, row.At).UTC()
			}
		}
	} else if len(v) > 0 && v[0] == '[' {
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

// reportPrefix starts a loa.receipts message that carries a delivery
// report (EncodeReport) rather than receipts.
var reportPrefix = []byte(`{"report":`)

// reportMessage is a delivery report as it travels on loa.receipts: it
// names the provider's message, not the delivery, which only the ledger
// can find (a report often comes before the send's receipt is folded).
type reportMessage struct {
	Report struct {
		Provider   string     `json:"provider"`
		ProviderID string     `json:"provider_id"`
		Status     loa.Status `json:"status"`
		Reason     string     `json:"reason,omitempty"`
		At         time.Time  `json:"at"`
	} `json:"report"`
}

// EncodeReport is the loa.receipts message value of r, received at at.
// Ledgers before this format skip it as an undecodable receipt: their
// dispatchers must be upgraded before the processes that write it.
func EncodeReport(r DeliveryReport, at time.Time) []byte {
	var m reportMessage
	m.Report.Provider, m.Report.ProviderID, m.Report.Status, m.Report.Reason, m.Report.At = r.Provider, r.ProviderID, r.Status, r.Reason, at.UTC()
	b, _ := json.Marshal(m) // strings, a status and a time: cannot fail
	return b
}

// DecodeReport decodes a loa.receipts message that carries a delivery
// report (EncodeReport). ok is false for a message of receipts, which
// DecodeReceipts reads; err is set for a report message that is not
// valid or names no provider's message.
func DecodeReport(value []byte) (r DeliveryReport, at time.Time, ok bool, err error) {
	if !bytes.HasPrefix(bytes.TrimLeft(value, " \t\r\n"), reportPrefix) {
		return DeliveryReport{}, time.Time{}, false, nil
	}
	var m reportMessage
	if err := json.Unmarshal(value, &m); err != nil {
		return DeliveryReport{}, time.Time{}, true, err
	}
	if m.Report.Provider == "" || m.Report.ProviderID == "" {
		return DeliveryReport{}, time.Time{}, true, errors.New("a delivery report without its provider's message")
	}
	return DeliveryReport{Provider: m.Report.Provider, ProviderID: m.Report.ProviderID, Status: m.Report.Status, Reason: m.Report.Reason},
		m.Report.At, true, nil
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
