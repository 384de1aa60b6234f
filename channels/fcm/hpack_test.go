package fcm

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/http2/hpack"
)

// TestHeaderBlocksDecode: x/net's HPACK decoder, as a server's, reads
// every block the encoder writes as the request's header fields — while
// the fields stay the same (cached blocks of indices), when the
// authorization changes, when the server shrinks its table to nothing
// and grows it again, and with a field too large for the table.
func TestHeaderBlocksDecode(t *testing.T) {
	dec := hpack.NewDecoder(defaultTableSize, nil)
	enc := newHeaderEncoder()
	req, err := http.NewRequest(http.MethodPost, "https://fcm.example:443/v1/projects/p/messages:send", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Goog-Api-Format-Version", "2")
	req.Header.Set("X-Firebase-Client", "fire-admin-go/4.19.0")
	req.Header["Authorization"] = []string{"Bearer " + strings.Repeat("a", 1000)}

	send := func(step string, length int) []byte {
		t.Helper()
		block, err := enc.encode(nil, req, length, 1<<20)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		fields, err := dec.DecodeFull(block)
		if err != nil {
			t.Fatalf("%s: the decoder refused the block: %v", step, err)
		}
		got := map[string][]string{}
		for i, f := range fields {
			if strings.HasPrefix(f.Name, ":") && i > 0 && !strings.HasPrefix(fields[i-1].Name, ":") {
				t.Fatalf("%s: pseudo-header %s after a regular one", step, f.Name)
			}
			got[f.Name] = append(got[f.Name], f.Value)
		}
		want := map[string][]string{":method": {"POST"}, ":scheme": {"https"}, ":authority": {"fcm.example:443"},
			":path": {"/v1/projects/p/messages:send"}, "content-type": {"application/json"}, "x-goog-api-format-version": {"2"},
			"x-firebase-client": {"fire-admin-go/4.19.0"}, "authorization": req.Header["Authorization"],
			"user-agent": {"Go-http-client/2.0"}, "content-length": {strconv.Itoa(length)}}
		if v := req.Header.Get("X-Big"); v != "" {
			want["x-big"] = []string{v}
		}
		if len(got) != len(want) {
			t.Fatalf("%s: decoded %v, want %v", step, got, want)
		}
		for k, v := range want {
			if !slices.Equal(got[k], v) {
				t.Fatalf("%s: %s is %q, want %q", step, k, got[k], v)
			}
		}
		return block
	}

	first := send("first", 312)
	again := send("same fields", 4000)
	if len(again) >= 20 || len(first) < 1000 {
		t.Errorf("blocks of %d then %d bytes: want the first to carry the fields and the next to refer to them", len(first), len(again))
	}
	send("same fields", 7)
	req.Header["Authorization"] = []string{"Bearer " + strings.Repeat("b", 1000)}
	send("new token", 312)
	send("new token again", 312)

	// The server's SETTINGS_HEADER_TABLE_SIZE 0: once it has acknowledged
	// them, its decoder holds nothing, and every later block must start by
	// saying so and refer to nothing in its table.
	enc.setLimit(0)
	dec.SetAllowedMaxDynamicTableSize(0)
	if b := send("table size 0", 312); b[0] != 0x20 {
		t.Errorf("first block after the table was shrunk starts with %#x, want a size update to 0", b[0])
	}
	send("table size 0 again", 312)
	enc.setLimit(1 << 16)
	dec.SetAllowedMaxDynamicTableSize(1 << 16)
	send("table size back", 312)
	if b := send("table size back again", 312); len(b) >= 20 {
		t.Errorf("block of %d bytes after the table grew back: want indices", len(b))
	}

	// A field larger than the whole table is sent as a literal each time.
	req.Header.Set("X-Big", strings.Repeat("c", 5000))
	send("big field", 1)
	send("big field again", 1)
}

// TestHeaderBlockChecks: a request the encoder cannot send fails without
// changing the table (the next block still decodes).
func TestHeaderBlockChecks(t *testing.T) {
	dec := hpack.NewDecoder(defaultTableSize, nil)
	enc := newHeaderEncoder()
	req, _ := http.NewRequest(http.MethodPost, "https://fcm.example/v1/x", nil)
	req.Header.Set("A", "b")
	if _, err := enc.encode(nil, req, 1, 10); err == nil {
		t.Error("a header list over the peer's limit was encoded")
	}
	req.Header["Bad Name"] = []string{"x"}
	if _, err := enc.encode(nil, req, 1, 1<<20); err == nil {
		t.Error("an invalid header field name was encoded")
	}
	delete(req.Header, "Bad Name")
	req.Header.Set("A", "line\nbreak")
	if _, err := enc.encode(nil, req, 1, 1<<20); err == nil {
		t.Error("an invalid header field value was encoded")
	}
	req.Header.Set("A", "b")
	for range 2 {
		b, err := enc.encode(nil, req, 1, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dec.DecodeFull(b); err != nil {
			t.Fatal(err)
		}
	}
}
