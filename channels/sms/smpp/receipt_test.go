package smpp

import (
	"testing"
	"time"

	"github.com/loa-hub/loa/channels/sms/smpp/pdu"
)

func TestParseReceipt(t *testing.T) {
	for _, tc := range []struct {
		name string
		sm   pdu.SM
		want Receipt
		ok   bool
	}{
		{"text only", pdu.SM{ESMClass: pdu.ESMClassReceipt, SourceAddr: "84912345678",
			ShortMessage: []byte("id:0123456789 sub:001 dlvrd:001 submit date:2611230824 done date:2611230825 stat:DELIVRD err:000 text:Ma xac thuc")},
			Receipt{MessageID: "0123456789", State: "DELIVRD", Status: Delivered, Err: "000", Phone: "84912345678",
				Done: time.Date(2026, 11, 23, 8, 25, 0, 0, time.UTC)}, true},
		{"TLVs win over the text", pdu.SM{ESMClass: pdu.ESMClassReceipt,
			ShortMessage: []byte("id:999 stat:UNDELIV err:034"),
			TLVs:         pdu.TLVs{pdu.CString(pdu.TagReceiptedMessageID, "3e7"), pdu.U8(pdu.TagMessageState, 5)}},
			Receipt{MessageID: "3e7", State: "UNDELIV", Status: Undelivered, Err: "034"}, true},
		{"state from message_state alone", pdu.SM{ESMClass: pdu.ESMClassReceipt,
			TLVs: pdu.TLVs{pdu.CString(pdu.TagReceiptedMessageID, "a1"), pdu.U8(pdu.TagMessageState, 3)}},
			Receipt{MessageID: "a1", State: "EXPIRED", Status: Expired}, true},
		{"lower case, not final", pdu.SM{ESMClass: pdu.ESMClassReceipt, ShortMessage: []byte("id:7 stat:enroute")},
			Receipt{MessageID: "7", State: "ENROUTE"}, true},
		{"rejected", pdu.SM{ESMClass: pdu.ESMClassReceipt, ShortMessage: []byte("id:8 sub:001 dlvrd:000 stat:REJECTD err:001 text:")},
			Receipt{MessageID: "8", State: "REJECTD", Status: Undelivered, Err: "001"}, true},
		{"mobile-originated", pdu.SM{ShortMessage: []byte("id:1 stat:DELIVRD")}, Receipt{}, false},
		{"no id", pdu.SM{ESMClass: pdu.ESMClassReceipt, ShortMessage: []byte("stat:DELIVRD")}, Receipt{State: "DELIVRD", Status: Delivered}, false},
	} {
		got, ok := ParseReceipt(&tc.sm)
		if ok != tc.ok || got != tc.want {
			t.Errorf("%s: ParseReceipt = %+v, %v; want %+v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestValidity(t *testing.T) {
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	for exp, want := range map[time.Time]string{
		{}:                                     "",
		now.Add(5 * time.Minute):               "000000000500000R",
		now.Add(26*time.Hour + 90*time.Second): "000001020130000R",
		now.Add(-time.Hour):                    "000000000100000R",
		now.Add(200 * 24 * time.Hour):          "000099000000000R",
	} {
		if got := validity(exp, now); got != want {
			t.Errorf("validity(%s) = %q, want %q", exp.Sub(now), got, want)
		}
	}
}
