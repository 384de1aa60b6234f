package api_test

import (
	"strings"
	"testing"
)

// TestTextIsNeverReplaced: invalid UTF-8, NUL and lone surrogates in any
// JSON string — nested, in arrays, in field names — are a 400 naming the
// field; encoding/json used to replace them with U+FFFD (or keep NUL) and
// carry on.
func TestTextIsNeverReplaced(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		name, body, field string
	}{
		{"invalid UTF-8 in a value", "{\"to\":{\"phone\":\"0912345678\"},\"body\":\"x\xff\xfey\"}", "body"},
		{"invalid UTF-8, nested", "{\"to\":{\"email\":\"a\xc3@b.vn\"},\"title\":\"t\",\"body\":\"x\"}", "to.email"},
		{"a truncated sequence", "{\"to\":{\"phone\":\"0912345678\"},\"title\":\"Th\xc3\",\"body\":\"x\"}", "title"},
		{"NUL", `{"to":{"phone":"0912345678"},"body":"a\u0000b"}`, "body"},
		{"NUL in an array", `{"to":{"phone":"0912345678"},"body":"x","channels":["sms","\u0000"]}`, "channels[1]"},
		{"NUL in a map value", `{"to":{"phone":"0912345678"},"body":"x","data":{"k":"v\u0000"}}`, "data.k"},
		{"a lone surrogate", `{"to":{"phone":"0912345678"},"body":"x\ud800y"}`, "body"},
		{"a field name with NUL", `{"to":{"phone":"0912345678"},"body":"x","data":{"k\u0000":"v"}}`, "data"},
		{"invalid UTF-8 in a top-level field name", "{\"b\xffody\":\"x\"}", "(body)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, p := f.do(t, "POST", "/v1/notifications", "dev-key", c.body)
			if resp.StatusCode != 400 || p["field"] != c.field || p["type"] != "urn:loa:problem:invalid-field" {
				t.Fatalf("%d %v, want 400 naming %s", resp.StatusCode, p, c.field)
			}
		})
	}
	// What is allowed stays allowed: a real U+FFFD, escaped or not, a
	// surrogate pair, an escaped backslash before a u.
	for _, body := range []string{
		`{"to":{"phone":"0912345678"},"body":"� \ufffd \uD83D\uDE00 \\u0000 Tiếng Việt"}`,
	} {
		if resp, p := f.do(t, "POST", "/v1/notifications", "dev-key", body); resp.StatusCode != 202 {
			t.Errorf("%s: %d %v", body, resp.StatusCode, p)
		}
	}
	if n := f.pub.count(); n != 1 {
		t.Errorf("%d published, want only the good one", n)
	}
}

// TestDeepNestingIsRefusedCheaply: a body that nests arrays as deep as
// its size allows, with a NUL at the bottom, is refused as malformed in
// a short answer, not walked level by level into a field path as long
// as the body.
func TestDeepNestingIsRefusedCheaply(t *testing.T) {
	f := newFixture(t)
	depth := 4000 // within the fixture's 8 KiB body
	body := `{"to":{"phone":"0912345678"},"body":"x","data":{"k":` + strings.Repeat("[", depth) + `"\u0000"` + strings.Repeat("]", depth) + `}}`
	resp, p := f.do(t, "POST", "/v1/notifications", "dev-key", body)
	detail, _ := p["detail"].(string)
	field, _ := p["field"].(string)
	if resp.StatusCode != 400 || p["type"] != "urn:loa:problem:malformed-json" || len(detail)+len(field) > 200 {
		t.Errorf("%d %v, a %d-byte detail and a %d-byte field", resp.StatusCode, p["type"], len(detail), len(field))
	}
	// Nesting within the bound is checked as before.
	ok := `{"to":{"phone":"0912345678"},"body":"x","data":{"k":` + strings.Repeat("[", 10) + `"\u0000"` + strings.Repeat("]", 10) + `}}`
	if resp, p := f.do(t, "POST", "/v1/notifications", "dev-key", ok); resp.StatusCode != 400 || p["field"] != "data.k[0][0][0][0][0][0][0][0][0][0]" {
		t.Errorf("10 levels: %d %v", resp.StatusCode, p)
	}
}

// TestDeepPlainBodyIsRefused: a body with no escape and valid UTF-8 —
// which skips the walk of its strings — is held to the same depth: a
// 400 malformed-json naming the nesting, not the decoder's own error
// about the field's type, and brackets inside strings do not count.
func TestDeepPlainBodyIsRefused(t *testing.T) {
	f := newFixture(t)
	for _, depth := range []int{65, 4000} {
		body := `{"to":{"phone":"0912345678"},"body":"x","data":{"k":` + strings.Repeat("[", depth) + `"v"` + strings.Repeat("]", depth) + `}}`
		resp, p := f.do(t, "POST", "/v1/notifications", "dev-key", body)
		detail, _ := p["detail"].(string)
		if resp.StatusCode != 400 || p["type"] != "urn:loa:problem:malformed-json" || !strings.Contains(detail, "nests objects and arrays deeper than 64 levels") {
			t.Errorf("depth %d: %d %v", depth, resp.StatusCode, p)
		}
	}
	// Brackets in strings are text, however many (a push: the body is
	// longer than an SMS may be).
	body := `{"to":{"device_token":"tok-1"},"title":"t","body":"` + strings.Repeat("[{", 500) + `\"[[["}`
	if resp, p := f.do(t, "POST", "/v1/notifications", "dev-key", body); resp.StatusCode != 202 {
		t.Errorf("brackets in a string: %d %v", resp.StatusCode, p)
	}
	if n := f.pub.count(); n != 1 {
		t.Errorf("%d published, want only the last one", n)
	}
}
