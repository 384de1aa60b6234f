package smpp

import (
	"strings"
	"time"

	"github.com/loa-hub/loa/channels/sms/smpp/pdu"
)

// ReceiptStatus is the final state a delivery receipt reports.
type ReceiptStatus string

// Final states. A receipt in a state that is not final (ENROUTE,
// ACCEPTD) is acknowledged and not reported.
const (
	Delivered   ReceiptStatus = "delivered"   // DELIVRD, message_state 2
	Undelivered ReceiptStatus = "undelivered" // UNDELIV, REJECTD, DELETED, UNKNOWN (5, 8, 4, 7)
	Expired     ReceiptStatus = "expired"     // EXPIRED (3): the validity period passed first
)

// Receipt is an SMSC delivery receipt read from a deliver_sm (or data_sm)
// whose esm_class marks it as one.
type Receipt struct {
	// MessageID is the id the SMSC gave the message in submit_sm_resp:
	// receipted_message_id when present, else the text's "id:".
	MessageID string
	// State is the state word ("DELIVRD", "UNDELIV", …), from the text
	// or, when the text has none, from message_state.
	State string
	// Status is State's final meaning, or "" when State is not final.
	Status ReceiptStatus
	// Err is the text's "err:" field or the network_error_code, if any.
	Err string
	// Phone is the handset's number (the deliver_sm's source_addr).
	Phone string
	// Done is the text's "done date", zero when absent or unreadable.
	Done time.Time
}

var messageStates = map[uint32]string{
	1: "ENROUTE", 2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV", 6: "ACCEPTD", 7: "UNKNOWN", 8: "REJECTD",
}

// statusOf maps a state word to its final status.
func statusOf(state string) ReceiptStatus {
	switch strings.ToUpper(state) {
	case "DELIVRD", "DELIVERED":
		return Delivered
	case "EXPIRED":
		return Expired
	case "UNDELIV", "UNDELIVERABLE", "REJECTD", "REJECTED", "DELETED", "UNKNOWN":
		return Undelivered
	}
	return ""
}

// ParseReceipt reads a delivery receipt from sm. ok is false when sm is
// not a receipt (a mobile-originated message) or names no message id.
//
// The TLVs receipted_message_id and message_state are preferred to the
// text, whose format (SMPP 3.4 appendix B) is only a convention:
//
//	id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD err:E text:…
func ParseReceipt(sm *pdu.SM) (r Receipt, ok bool) {
	if !sm.IsReceipt() {
		return Receipt{}, false
	}
	fields := receiptFields(string(sm.Text()))
	r.Phone = sm.SourceAddr
	r.MessageID = fields["id"]
	if v, ok := sm.TLVs.String(pdu.TagReceiptedMessageID); ok && v != "" {
		r.MessageID = v
	}
	r.State = strings.ToUpper(fields["stat"])
	if n, ok := sm.TLVs.Uint(pdu.TagMessageState); ok {
		if st, known := messageStates[n]; known && (r.State == "" || statusOf(r.State) == "") {
			r.State = st
		}
	}
	r.Status = statusOf(r.State)
	r.Err = fields["err"]
	if v, ok := sm.TLVs.Get(pdu.TagNetworkErrorCode); ok && r.Err == "" && len(v) == 3 {
		r.Err = string(rune('0'+v[0])) + ":" + itoa(int(v[1])<<8|int(v[2]))
	}
	if t, err := time.Parse("0601021504", fields["done date"]); err == nil {
		r.Done = t
	}
	return r, r.MessageID != ""
}

// receiptKeys are the fields of the receipt text.
var receiptKeys = []string{"id", "sub", "dlvrd", "submit date", "done date", "stat", "err", "text"}

// receiptFields reads the receipt text's "key:value" fields. Values run
// to the next space, except text's, which runs to the end.
func receiptFields(s string) map[string]string {
	out := map[string]string{}
	lower := strings.ToLower(s)
	for _, k := range receiptKeys {
		i := 0
		for {
			j := strings.Index(lower[i:], k+":")
			if j < 0 {
				i = -1
				break
			}
			i += j
			if i == 0 || lower[i-1] == ' ' {
				break
			}
			i += len(k)
		}
		if i < 0 {
			continue
		}
		v := s[i+len(k)+1:]
		if k != "text" {
			if sp := strings.IndexByte(v, ' '); sp >= 0 {
				v = v[:sp]
			}
		}
		out[k] = v
	}
	return out
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [12]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
