package dispatcher

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

// TestReceiptRecordsPackAndDecode: a fan-out batch's receipts are packed
// into few messages, each within the count and size bounds, and decode
// back to the same receipts in order.
func TestReceiptRecordsPackAndDecode(t *testing.T) {
	d := &Dispatcher{cfg: Config{Names: topics.Names{Prefix: "t."}}}
	at := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	mk := func(n int, reason string) []producer.Receipt {
		rs := make([]producer.Receipt, n)
		for i := range rs {
			rs[i] = producer.Receipt{NotificationID: "n1", Channel: "push", Recipient: fmt.Sprintf("tok-%d", i), Status: loa.StatusSent, Reason: reason, Targets: 1, Attempts: 1, At: at}
		}
		return rs
	}
	for _, tc := range []struct {
		name      string
		receipts  []producer.Receipt
		wantRecs  int
		sizeBound bool
	}{
		{"one", mk(1, ""), 1, false},
		{"a batch", mk(500, ""), 1, false},
		{"over the count", mk(1201, ""), 3, false},
		{"over the size", mk(300, strings.Repeat("x", 2000)), 3, true},
		{"none", nil, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs := d.receiptRecords("n1", tc.receipts)
			if len(recs) != tc.wantRecs {
				t.Fatalf("%d receipts packed into %d records, want %d", len(tc.receipts), len(recs), tc.wantRecs)
			}
			var got []producer.Receipt
			for _, r := range recs {
				if r.Topic != "t.loa.receipts" || r.Key != "n1" {
					t.Errorf("record to %q keyed %q", r.Topic, r.Key)
				}
				if len(r.Value) > maxReceiptRecordBytes {
					t.Errorf("record of %d bytes, over %d", len(r.Value), maxReceiptRecordBytes)
				}
				rs, err := producer.DecodeReceipts(r.Value)
				if err != nil {
					t.Fatal(err)
				}
				if len(rs) > maxReceiptsPerRecord {
					t.Errorf("record of %d receipts, over %d", len(rs), maxReceiptsPerRecord)
				}
				got = append(got, rs...)
			}
			if len(got) != len(tc.receipts) {
				t.Fatalf("decoded %d receipts, want %d", len(got), len(tc.receipts))
			}
			for i := range got {
				if got[i] != tc.receipts[i] {
					t.Fatalf("receipt %d: got %+v, want %+v", i, got[i], tc.receipts[i])
				}
			}
		})
	}
}

// TestDecodeReceipts: the one-receipt form (what the direct lane and the
// delivery-report callback write) still decodes; a receipt without its
// notification, or a value that is not a receipt, is an error.
func TestDecodeReceipts(t *testing.T) {
	rs, err := producer.DecodeReceipts([]byte(`{"notification_id":"n1","recipient":"8491","status":"sent"}`))
	if err != nil || len(rs) != 1 || rs[0].NotificationID != "n1" || rs[0].Recipient != "8491" {
		t.Fatalf("one receipt: %+v, %v", rs, err)
	}
	for _, bad := range []string{``, `nope`, `{"status":"sent"}`, `[{"notification_id":"n1"},{"status":"sent"}]`, `[{"notification_id":`} {
		if rs, err := producer.DecodeReceipts([]byte(bad)); err == nil {
			t.Errorf("%q decoded to %+v, want an error", bad, rs)
		}
	}
}
