package dispatcher

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

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

// TestPackedReceiptsKeepEveryField: receipts of different events and
// channels, with every field set or left empty, escapes that grow in JSON
// and times in other zones, come back equal (times in UTC), never over
// the size bound; and an array of receipts, as earlier versions wrote,
// still decodes.
func TestPackedReceiptsKeepEveryField(t *testing.T) {
	hcm := time.FixedZone("ICT", 7*3600)
	at := time.Date(2026, 11, 29, 12, 0, 0, 987654321, hcm)
	var rs []producer.Receipt
	for i := range 90 {
		r := producer.Receipt{NotificationID: fmt.Sprintf("n%d", i/30), EventID: "ev", Kind: "direct", Lane: "otp", Channel: "sms",
			Recipient: fmt.Sprintf("8490%07d", i), Status: loa.StatusSent, Targets: 2, Attempts: i%3 + 1, At: at.Add(time.Duration(i))}
		if i%2 == 0 {
			r.Class, r.Provider, r.ProviderID, r.Duplicate = "transient", "esms", fmt.Sprintf("id-%d", i), true
			r.Reason = strings.Repeat("<Lỗi \"gateway\"> ", 40)
		}
		if i%7 == 0 {
			r.At = time.Time{}
		}
		if i == 45 {
			r.Channel = "push"
		}
		rs = append(rs, r)
	}
	const maxBytes = 8 << 10
	vals := producer.PackReceipts(rs, 500, maxBytes)
	var got []producer.Receipt
	for _, v := range vals {
		if len(v) > maxBytes {
			t.Errorf("a value of %d bytes, over %d", len(v), maxBytes)
		}
		d, err := producer.DecodeReceipts(v)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, d...)
	}
	if len(got) != len(rs) {
		t.Fatalf("%d receipts back, want %d", len(got), len(rs))
	}
	for i := range rs {
		want := rs[i]
		if !want.At.IsZero() {
			want.At = want.At.UTC()
		}
		if got[i] != want {
			t.Fatalf("receipt %d:\n got %+v\nwant %+v", i, got[i], want)
		}
	}
	old, _ := json.Marshal(rs[:3])
	back, err := producer.DecodeReceipts(old)
	if err != nil || len(back) != 3 || back[1].Recipient != rs[1].Recipient {
		t.Fatalf("an array of receipts: %+v, %v", back, err)
	}
}

// BenchmarkReceiptsRoundTrip packs a fan-out batch's 500 push receipts as
// the dispatcher does and decodes them as the ledger does: the CPU the
// receipts cost the dispatcher per push, and the bytes they cost Kafka.
func BenchmarkReceiptsRoundTrip(b *testing.B) {
	d := &Dispatcher{cfg: Config{Names: topics.Names{Prefix: "t."}}}
	at := time.Date(2026, 11, 23, 8, 0, 0, 123456789, time.UTC)
	rs := make([]producer.Receipt, 500)
	for i := range rs {
		rs[i] = producer.Receipt{NotificationID: "bc-c8a4dd60-fc26-4a57-8afa-a688eb6fd976", EventID: "ev-0f6c2d4e-1b7a-4c55-9d0e-7f3a2b1c9e88",
			Kind: "broadcast", Lane: "bulk", Channel: "push", Recipient: fmt.Sprintf("tok-%08d:%s", i, strings.Repeat("x", 140)),
			Status: loa.StatusSent, Provider: "fcm", ProviderID: fmt.Sprintf("projects/loa-bench/messages/%d", 1_700_000_000_000_000+i),
			Targets: 1, Attempts: 1, At: at.Add(time.Duration(i) * time.Microsecond)}
	}
	var bytes int
	cpu0 := processCPU(b)
	b.ResetTimer()
	for range b.N {
		bytes = 0
		for _, r := range d.receiptRecords("n1", rs) {
			bytes += len(r.Value)
			if _, err := producer.DecodeReceipts(r.Value); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N*len(rs)), "CPU-µs/receipt")
	b.ReportMetric(float64(bytes)/float64(len(rs)), "bytes/receipt")
}

// processCPU is this process's CPU time so far (user and system): under
// a loaded machine, a steadier measure of work than the wall clock.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestLedgerRowsAreMadeOnce: the ledger turns a fetch of receipt messages
// (a fan-out batch's hundreds each) into rows in one slice made to size,
// cut into one receipt batch a message: beyond decoding the receipts,
// three allocations, not a slice grown and copied as the rows come.
func TestLedgerRowsAreMadeOnce(t *testing.T) {
	d := &Dispatcher{cfg: Config{Names: topics.Names{Prefix: "t."}}, log: slog.New(slog.DiscardHandler)}
	at := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	var msgs []kafka.Message
	for b := range 4 {
		rs := make([]producer.Receipt, 500)
		for i := range rs {
			rs[i] = producer.Receipt{NotificationID: "bc-1", EventID: fmt.Sprintf("ev-%d", b), Kind: "broadcast", Lane: "bulk", Channel: "push",
				Recipient: fmt.Sprintf("tok-%d-%08d", b, i), Status: loa.StatusSent, Provider: "fcm", ProviderID: fmt.Sprintf("m-%d-%d", b, i),
				Targets: 1, Attempts: 1, At: at}
		}
		for _, r := range d.receiptRecords("bc-1", rs) {
			msgs = append(msgs, kafka.Message{Value: r.Value})
		}
	}
	batches := d.ledgerRows(msgs)
	if len(batches) != len(msgs) {
		t.Fatalf("%d receipt batches from %d messages; want one a message", len(batches), len(msgs))
	}
	var rows []producer.Delivery
	for i, b := range batches {
		if len(b) != 500 || b[0].Recipient != fmt.Sprintf("tok-%d-00000000", i) {
			t.Fatalf("batch %d: %d rows, first %+v", i, len(b), b[0])
		}
		rows = append(rows, b...)
	}
	if len(rows) != 2000 || rows[0].Recipient != "tok-0-00000000" || rows[1999].Recipient != "tok-3-00000499" ||
		rows[1999].ProviderID != "m-3-499" || !rows[1999].UpdatedAt.Equal(at) {
		t.Fatalf("%d rows, first %+v", len(rows), rows[0])
	}
	// AllocsPerRun counts the whole process's allocations, so a goroutine
	// an earlier test left behind (a reader's backoff, a pool's reaper) can
	// add some to one measurement; it cannot take any away. The fewest of
	// a few measurements is this code's own: a slice grown as the rows
	// come adds a dozen or more to every one of them.
	var extra, decoding float64
	for try := range 5 {
		decoding = testing.AllocsPerRun(5, func() {
			for _, m := range msgs {
				if _, err := producer.DecodeReceipts(m.Value); err != nil {
					t.Fatal(err)
				}
			}
		})
		all := testing.AllocsPerRun(5, func() { d.ledgerRows(msgs) })
		if try == 0 || all-decoding < extra {
			extra = all - decoding
		}
		if extra <= 3 {
			break
		}
	}
	if extra > 3 {
		t.Errorf("%v allocations beyond decoding the receipts (%v), want at most 3", extra, decoding)
	}
}
