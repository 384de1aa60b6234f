package producer

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/loa-hub/loa"
)

// packedSamples are packed values with every field set or left empty, and
// strings encoding/json writes as they are or escapes (quotes, HTML,
// control characters, U+2028, invalid UTF-8).
func packedSamples() []packed {
	strs := []string{"", "tok-1", "fcm:loa-fake", "projects/loa/messages/1700000000000000", "Lỗi gateway",
		`say "no"`, `a\b`, "<&>", "tab\there", "\u2028", "bad \xff utf-8", "nul\x00"}
	var ps []packed
	for i, s := range strs {
		p := packed{Packed: 1, NotificationID: "bc-" + s, EventID: s, Kind: strs[(i+1)%len(strs)], Lane: s, Channel: "push"}
		for j, t := range strs {
			p.Rows = append(p.Rows, packedRow{Recipient: t + fmt.Sprint(j), Status: loa.StatusSent, Class: strs[(i+j)%len(strs)],
				Provider: s, ProviderID: t, Reason: strs[(i*j)%len(strs)], Targets: j - 3, Attempts: i, Duplicate: j%2 == 0,
				At: int64(j-5) * 1_700_000_000_000_000_000 / 7})
		}
		ps = append(ps, p)
	}
	return ps
}

// TestPackedIsWhatJSONWrites: a packed value is written byte for byte as
// encoding/json writes it, so that any reader of loa.receipts reads it;
// and read back as encoding/json reads it, by hand when it has no escaped
// string.
func TestPackedIsWhatJSONWrites(t *testing.T) {
	for i, p := range packedSamples() {
		want, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendPacked(nil, &p); string(got) != string(want) {
			t.Fatalf("sample %d:\n got %s\nwant %s", i, got, want)
		}
		var back packed
		if err := json.Unmarshal(want, &back); err != nil {
			t.Fatal(err)
		}
		if read, ok := readPacked(want); ok && !reflect.DeepEqual(read, back) {
			t.Errorf("sample %d read as\n %+v\nencoding/json reads\n %+v", i, read, back)
		}
	}
	plain := packed{Packed: 1, NotificationID: "bc-1", EventID: "ev-1", Kind: "broadcast", Lane: "bulk", Channel: "push",
		Rows: []packedRow{{Recipient: "tok-1", Status: loa.StatusSent, Provider: "fcm:loa", ProviderID: "projects/loa/messages/1", Targets: 1, Attempts: 1, At: 1},
			{Recipient: "tok-2", Status: loa.StatusTokenDead, Class: "token_dead", Provider: "fcm:loa", Reason: "Lỗi", Targets: 1, Attempts: 2, Duplicate: true}}}
	if read, ok := readPacked(appendPacked(nil, &plain)); !ok || !reflect.DeepEqual(read, plain) {
		t.Errorf("a value without escapes read by hand: %v, %+v", ok, read)
	}
}

// FuzzReadPacked: whatever the reader accepts, encoding/json reads the
// same way.
func FuzzReadPacked(f *testing.F) {
	for _, p := range packedSamples() {
		b, _ := json.Marshal(p)
		f.Add(b)
	}
	f.Add([]byte(`{"packed":1,"notification_id":"n","channel":"push","rows":[{"r":"t","s":"sent","t":01,"a":1,"at":1}]}`))
	f.Add([]byte(`{"packed":1,"notification_id":"n","channel":"push","rows":[{"r":"t","s":"sent","t":1,"a":1,"at":99999999999999999999}]}`))
	f.Add([]byte(`{"packed":1,"notification_id":"n","channel":"push","rows":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		read, ok := readPacked(b)
		if !ok {
			return
		}
		var back packed
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("read by hand, refused by encoding/json (%v): %s", err, b)
		}
		if !reflect.DeepEqual(read, back) {
			t.Fatalf("%s\nread as %+v\nencoding/json reads %+v", b, read, back)
		}
	})
}

// TestDecodingAFanoutsReceiptsAllocates: a fan-out batch's packed
// receipts decode with a string for each receipt's own recipient and
// provider id and little else (what they share is not copied for each),
// not the dozen allocations a receipt of encoding/json's reflection.
func TestDecodingAFanoutsReceiptsAllocates(t *testing.T) {
	rs := make([]Receipt, 500)
	at := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	for i := range rs {
		rs[i] = Receipt{NotificationID: "bc-c8a4dd60", EventID: "ev-0f6c2d4e", Kind: "broadcast", Lane: "bulk", Channel: "push",
			Recipient: fmt.Sprintf("tok-%08d:%s", i, strings.Repeat("x", 140)), Status: loa.StatusSent, Provider: "fcm:loa",
			ProviderID: fmt.Sprintf("projects/loa/messages/%d", 1_700_000_000_000_000+i), Targets: 1, Attempts: 1, At: at}
	}
	vals := PackReceipts(rs, 500, 1<<20)
	if len(vals) != 1 {
		t.Fatalf("%d values, want 1", len(vals))
	}
	n := testing.AllocsPerRun(20, func() {
		if _, err := DecodeReceipts(vals[0]); err != nil {
			t.Fatal(err)
		}
	})
	if max := float64(2*len(rs) + 20); n > max {
		t.Errorf("%.0f allocations for %d receipts, want at most %.0f", n, len(rs), max)
	}
}
