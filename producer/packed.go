package producer

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/loa-hub/loa"
)

// A packed value is written and read by hand, not by encoding/json's
// reflection (a fan-out's receipts are two JSON passes per push). The
// bytes are exactly those json.Marshal writes for a packed, and what
// readPacked does not recognise as such — a string with an escape, a
// field out of order, a value from another writer — encoding/json reads.

// appendPacked appends p as json.Marshal writes it.
func appendPacked(b []byte, p *packed) []byte {
	b = append(b, `{"packed":`...)
	b = strconv.AppendInt(b, int64(p.Packed), 10)
	b = appendField(b, `,"notification_id":`, p.NotificationID, false)
	b = appendField(b, `,"event_id":`, p.EventID, true)
	b = appendField(b, `,"kind":`, p.Kind, true)
	b = appendField(b, `,"lane":`, p.Lane, true)
	b = appendField(b, `,"channel":`, p.Channel, false)
	if p.Rows == nil {
		return append(b, `,"rows":null}`...)
	}
	b = append(b, `,"rows":[`...)
	for i := range p.Rows {
		r := &p.Rows[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = appendField(b, `{"r":`, r.Recipient, false)
		b = appendField(b, `,"s":`, string(r.Status), false)
		b = appendField(b, `,"c":`, r.Class, true)
		b = appendField(b, `,"p":`, r.Provider, true)
		b = appendField(b, `,"i":`, r.ProviderID, true)
		b = appendField(b, `,"e":`, r.Reason, true)
		b = append(b, `,"t":`...)
		b = strconv.AppendInt(b, int64(r.Targets), 10)
		b = append(b, `,"a":`...)
		b = strconv.AppendInt(b, int64(r.Attempts), 10)
		if r.Duplicate {
			b = append(b, `,"d":true`...)
		}
		b = append(b, `,"at":`...)
		b = strconv.AppendInt(b, r.At, 10)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// appendField appends name and s as a JSON string, unless omitEmpty and
// s is empty.
func appendField(b []byte, name, s string, omitEmpty bool) []byte {
	if omitEmpty && s == "" {
		return b
	}
	b = append(b, name...)
	for i := 0; i < len(s); i++ {
		if !plain(s[i]) {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plain reports whether encoding/json writes c, in a string, as itself.
func plain(c byte) bool {
	return c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
}

// packedReader reads a packed value as appendPacked writes it.
type packedReader struct {
	b  []byte
	ok bool
}

// readPacked decodes v, a value appendPacked wrote; ok is false when v is
// not laid out as appendPacked writes it (or has an escaped string),
// and encoding/json must read it.
func readPacked(v []byte) (p packed, ok bool) {
	r := packedReader{b: v, ok: true}
	r.lit(`{"packed":`)
	p.Packed = int(r.num())
	r.lit(`,"notification_id":`)
	p.NotificationID = r.str("")
	if r.opt(`,"event_id":`) {
		p.EventID = r.str("")
	}
	if r.opt(`,"kind":`) {
		p.Kind = r.str("")
	}
	if r.opt(`,"lane":`) {
		p.Lane = r.str("")
	}
	r.lit(`,"channel":`)
	p.Channel = r.str("")
	r.lit(`,"rows":[`)
	var prev packedRow
	for r.ok {
		var row packedRow
		r.lit(`{"r":`)
		row.Recipient = r.str("")
		r.lit(`,"s":`)
		row.Status = loa.Status(r.str(string(prev.Status)))
		if r.opt(`,"c":`) {
			row.Class = r.str(prev.Class)
		}
		if r.opt(`,"p":`) {
			row.Provider = r.str(prev.Provider)
		}
		if r.opt(`,"i":`) {
			row.ProviderID = r.str("")
		}
		if r.opt(`,"e":`) {
			row.Reason = r.str(prev.Reason)
		}
		r.lit(`,"t":`)
		row.Targets = int(r.num())
		r.lit(`,"a":`)
		row.Attempts = int(r.num())
		row.Duplicate = r.opt(`,"d":true`)
		r.lit(`,"at":`)
		row.At = r.num()
		r.lit(`}`)
		if !r.ok {
			break
		}
		if p.Rows == nil {
			p.Rows = make([]packedRow, 0, bytes.Count(r.b, []byte(`{"r":`))+1)
		}
		p.Rows = append(p.Rows, row)
		prev = row
		if !r.opt(`,`) {
			break
		}
	}
	r.lit(`]}`)
	return p, r.ok && len(r.b) == 0 && len(p.Rows) > 0
}

// lit consumes s, which must come next.
func (r *packedReader) lit(s string) {
	if r.ok = r.ok && bytes.HasPrefix(r.b, []byte(s)); r.ok {
		r.b = r.b[len(s):]
	}
}

// opt consumes s if it comes next, and reports whether it did.
func (r *packedReader) opt(s string) bool {
	if r.ok && bytes.HasPrefix(r.b, []byte(s)) {
		r.b = r.b[len(s):]
		return true
	}
	return false
}

// str reads a JSON string without escapes; same, when the string read
// equals it, is returned instead of a new copy.
func (r *packedReader) str(same string) string {
	if !r.ok || len(r.b) == 0 || r.b[0] != '"' {
		r.ok = false
		return ""
	}
	end := bytes.IndexByte(r.b[1:], '"') + 1
	if end == 0 {
		r.ok = false
		return ""
	}
	s := r.b[1:end]
	ascii := true
	for _, c := range s {
		if c == '\\' || c < 0x20 {
			r.ok = false // an escape, or what JSON does not allow in a string
			return ""
		}
		ascii = ascii && c < utf8.RuneSelf
	}
	if !ascii && !utf8.Valid(s) {
		r.ok = false // encoding/json would replace the invalid bytes
		return ""
	}
	r.b = r.b[end+1:]
	if string(s) == same {
		return same
	}
	return string(s)
}

// num reads a JSON integer that fits an int64.
func (r *packedReader) num() int64 {
	if !r.ok {
		return 0
	}
	i := 0
	if i < len(r.b) && r.b[i] == '-' {
		i++
	}
	start := i
	for i < len(r.b) && r.b[i] >= '0' && r.b[i] <= '9' {
		i++
	}
	if i == start || r.b[start] == '0' && i > start+1 {
		r.ok = false // no digits, or a leading zero JSON does not allow
		return 0
	}
	n, err := strconv.ParseInt(string(r.b[:i]), 10, 64)
	if err != nil {
		r.ok = false
		return 0
	}
	r.b = r.b[i:]
	return n
}
