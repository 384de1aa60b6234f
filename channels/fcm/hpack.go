package fcm

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// headerEncoder writes the header blocks (HPACK, RFC 7541) of one
// connection's requests. Every request the SDK sends FCM carries the same
// header fields but for content-length (and, once an hour, the
// authorization): so the first request of a set of fields inserts each
// into the dynamic table, and later requests refer to them by index — a
// block built once and kept (cached) until the fields or the table
// change — followed by content-length, a literal that is not indexed.
//
// It keeps its own copy of the decoder's dynamic table: the peer's
// decoder changes its table only as this encoder's blocks say. It is not
// safe for concurrent use; blocks must reach the peer in the order they
// were encoded.
type headerEncoder struct {
	maxSize  uint32 // the table's size now, at most the peer's SETTINGS_HEADER_TABLE_SIZE and defaultTableSize
	limit    uint32 // the peer's SETTINGS_HEADER_TABLE_SIZE
	resize   bool   // the next block starts with a size update to maxSize
	table    []hpackEntry
	size     uint32 // of the entries in table
	key      requestKey
	cached   []byte // the key's fields as indices into table; nil when none
	listSize uint64 // of the key's fields (RFC 9113 §6.5.2), content-length not counted
	fields   []hpackEntry
}

// defaultTableSize is HPACK's initial table size, and the most the
// encoder uses: the fields of an FCM request fit in it.
const defaultTableSize = 4096

// hpackEntry is a header field in the dynamic table (oldest first).
type hpackEntry struct{ name, value string }

func (e hpackEntry) size() uint32 { return uint32(len(e.name) + len(e.value) + 32) }

// requestKey is what a request's header block depends on, but for
// content-length.
type requestKey struct {
	method, authority, path, rawPath, rawQuery, opaque string
	header                                             http.Header // a copy
}

func (k *requestKey) matches(req *http.Request, authority string) bool {
	u := req.URL
	if k.header == nil || k.method != req.Method || k.authority != authority || k.path != u.Path || k.rawPath != u.RawPath ||
		k.rawQuery != u.RawQuery || k.opaque != u.Opaque || len(k.header) != len(req.Header) {
		return false
	}
	for name, vv := range req.Header {
		kv, ok := k.header[name]
		if !ok || !slices.Equal(kv, vv) {
			return false
		}
	}
	return true
}

func newHeaderEncoder() headerEncoder {
	return headerEncoder{maxSize: defaultTableSize, limit: defaultTableSize}
}

// setLimit applies the peer's SETTINGS_HEADER_TABLE_SIZE.
func (e *headerEncoder) setLimit(n uint32) {
	e.limit = n
	if m := min(n, defaultTableSize); m != e.maxSize {
		e.maxSize, e.resize = m, true
		e.evict(0)
		e.cached = nil
	}
}

// errHeaderListSize fails a request whose header fields are more than the
// peer accepts (its SETTINGS_MAX_HEADER_LIST_SIZE).
var errHeaderListSize = errors.New("fcm: http2: request header list larger than the peer's limit")

// encode appends to dst the header block of req, whose body is
// contentLength bytes, for a peer that accepts header lists of up to
// maxList bytes. It changes the table only when it returns no error.
func (e *headerEncoder) encode(dst []byte, req *http.Request, contentLength int, maxList uint64) ([]byte, error) {
	authority := req.Host
	if authority == "" {
		authority = req.URL.Host
	}
	var digits [20]byte
	cl := strconv.AppendInt(digits[:0], int64(contentLength), 10)
	if e.cached == nil || !e.key.matches(req, authority) {
		if err := e.learn(req, authority); err != nil {
			return dst, err
		}
		if e.listSize+uint64(len("content-length")+len(cl)+32) > maxList {
			return dst, errHeaderListSize
		}
		// This block inserts the fields; later ones refer to them.
		dst = e.appendResize(dst)
		for _, f := range e.fields {
			dst = e.appendInsert(dst, f)
		}
		e.cache()
		return appendContentLength(dst, cl), nil
	}
	if e.listSize+uint64(len("content-length")+len(cl)+32) > maxList {
		return dst, errHeaderListSize
	}
	dst = e.appendResize(dst)
	dst = append(dst, e.cached...)
	return appendContentLength(dst, cl), nil
}

// learn checks req's header fields and makes them the key's: the pseudo
// header fields, then the others in lower case, by name.
func (e *headerEncoder) learn(req *http.Request, authority string) error {
	host, err := httpguts.PunycodeHostPort(authority)
	if err != nil || !httpguts.ValidHostHeader(host) {
		return fmt.Errorf("fcm: http2: invalid authority %q", authority)
	}
	if req.Method == "" || !validMethod(req.Method) {
		return fmt.Errorf("fcm: http2: invalid method %q", req.Method)
	}
	path := req.URL.RequestURI()
	if req.URL.Opaque != "" || !strings.HasPrefix(path, "/") {
		return fmt.Errorf("fcm: http2: invalid request path %q", path)
	}
	fields := []hpackEntry{{":method", req.Method}, {":scheme", "https"}, {":authority", host}, {":path", path}}
	names := make([]string, 0, len(req.Header))
	for name := range req.Header {
		names = append(names, name)
	}
	slices.Sort(names)
	agent := false
	for _, name := range names {
		if !httpguts.ValidHeaderFieldName(name) {
			return fmt.Errorf("fcm: http2: invalid header field name %q", name)
		}
		lower := strings.ToLower(name)
		switch lower {
		case "host", "content-length", "connection", "proxy-connection", "transfer-encoding", "upgrade", "keep-alive":
			// Set by the connection or not sent over HTTP/2 (RFC 9113 §8.2.2).
			continue
		case "te":
			// Only "trailers" is allowed; nothing here asks for them.
			continue
		case "user-agent":
			agent = true
		}
		for _, v := range req.Header[name] {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("fcm: http2: invalid value for header field %q", name)
			}
			if lower == "user-agent" && v == "" {
				continue
			}
			fields = append(fields, hpackEntry{lower, v})
		}
	}
	if !agent {
		fields = append(fields, hpackEntry{"user-agent", "Go-http-client/2.0"}) // as net/http's HTTP/2 sends
	}
	var list uint64
	for _, f := range fields {
		list += uint64(f.size())
	}
	e.fields, e.listSize, e.cached = fields, list, nil
	e.key = requestKey{method: req.Method, authority: authority, path: req.URL.Path, rawPath: req.URL.RawPath,
		rawQuery: req.URL.RawQuery, opaque: req.URL.Opaque, header: req.Header.Clone()}
	return nil
}

// validMethod reports whether m is an HTTP token.
func validMethod(m string) bool {
	for _, r := range m {
		if !httpguts.IsTokenRune(r) {
			return false
		}
	}
	return true
}

// appendResize appends the dynamic table size update the peer has not
// yet been told of.
func (e *headerEncoder) appendResize(dst []byte) []byte {
	if !e.resize {
		return dst
	}
	e.resize = false
	return appendHpackInt(dst, 0x20, 5, uint64(e.maxSize))
}

// appendInsert appends f as a literal with incremental indexing (or, for
// the pairs HPACK's static table holds, its index) and adds it to the
// table as the peer's decoder will.
func (e *headerEncoder) appendInsert(dst []byte, f hpackEntry) []byte {
	if i := staticIndex(f); i > 0 {
		return appendHpackInt(dst, 0x80, 7, uint64(i))
	}
	dst = append(dst, 0x40)
	dst = appendHpackString(dst, f.name)
	dst = appendHpackString(dst, f.value)
	e.evict(f.size())
	if f.size() <= e.maxSize {
		e.table = append(e.table, f)
		e.size += f.size()
	}
	return dst
}

// evict drops the oldest entries until n more bytes fit (RFC 7541 §4.4).
func (e *headerEncoder) evict(n uint32) {
	i := 0
	for i < len(e.table) && e.size+n > e.maxSize {
		e.size -= e.table[i].size()
		i++
	}
	if i > 0 {
		e.table = slices.Delete(e.table, 0, i)
	}
}

// cache builds the block of the key's fields as they now are in the
// tables: an index for each field a table holds, a literal without
// indexing for any other.
func (e *headerEncoder) cache() {
	var b []byte
	for _, f := range e.fields {
		if i := staticIndex(f); i > 0 {
			b = appendHpackInt(b, 0x80, 7, uint64(i))
			continue
		}
		if i := slices.Index(e.table, f); i >= 0 {
			b = appendHpackInt(b, 0x80, 7, uint64(len(staticTable)+len(e.table)-i))
			continue
		}
		b = append(b, 0x00)
		b = appendHpackString(b, f.name)
		b = appendHpackString(b, f.value)
	}
	e.cached = b
}

// appendContentLength appends content-length: v as a literal without
// indexing, its name from the static table.
func appendContentLength(dst, v []byte) []byte {
	dst = appendHpackInt(dst, 0x00, 4, contentLengthIndex)
	dst = appendHpackInt(dst, 0, 7, uint64(len(v)))
	return append(dst, v...)
}

// contentLengthIndex is content-length's name in HPACK's static table.
const contentLengthIndex = 28

// staticTable is the start of HPACK's static table (RFC 7541 Appendix A):
// the pairs an FCM request can match whole. Its length, 61, is the
// static table's.
var staticTable = [61]hpackEntry{
	1: {":authority", ""}, 2: {":method", "GET"}, 3: {":method", "POST"}, 4: {":path", "/"}, 5: {":path", "/index.html"},
	6: {":scheme", "http"}, 7: {":scheme", "https"},
}

// staticIndex is f's index in HPACK's static table (both name and value
// matching), or 0.
func staticIndex(f hpackEntry) int {
	for i := 2; i <= 7; i++ {
		if staticTable[i] == f {
			return i
		}
	}
	return 0
}

// appendHpackInt appends v as an HPACK integer with an n-bit prefix, the
// first byte's other bits from first (RFC 7541 §5.1).
func appendHpackInt(dst []byte, first byte, n uint, v uint64) []byte {
	max := uint64(1)<<n - 1
	if v < max {
		return append(dst, first|byte(v))
	}
	dst = append(dst, first|byte(max))
	v -= max
	for v >= 128 {
		dst = append(dst, byte(v&0x7f|0x80))
		v >>= 7
	}
	return append(dst, byte(v))
}

// appendHpackString appends s as an HPACK string literal, not Huffman
// coded (RFC 7541 §5.2).
func appendHpackString(dst []byte, s string) []byte {
	dst = appendHpackInt(dst, 0, 7, uint64(len(s)))
	return append(dst, s...)
}
