package feedback_test

import (
	"strings"
	"testing"

	"golang.org/x/text/unicode/norm"

	"github.com/loa-hub/loa/producer/feedback"
)

// TestRedactIsCheapForLongTexts: anyone may list public views (GET
// /v1/public/feedback, up to 500 a page; Open311, up to 1,000), and each
// redacts its texts. Redact folded every word of a text afresh (an NFD
// pass and three allocations a word, and the word's span from a regexp,
// one more): 3,802 allocations and 1.2-1.4 ms for a description of 4,000
// characters. Now the words met before are folded once a process and the
// spans cost one allocation. The masking is the same (the other Redact
// tests).
func TestRedactIsCheapForLongTexts(t *testing.T) {
	s := strings.Repeat("Rác thải tồn đọng ở chợ Hội An, bà Nguyễn Thị Hoa phản ánh nhiều lần. ", 60)[:4000]
	var out string
	allocs := testing.AllocsPerRun(10, func() { out = feedback.Redact(s, "Nguyễn Thị Hoa") })
	if allocs > 200 {
		t.Errorf("%.0f allocations to redact 4,000 characters, want at most 200", allocs)
	}
	if strings.Contains(out, "Hoa") || !strings.Contains(out, "[đã ẩn]") {
		t.Errorf("the name is not masked: %.80s", out)
	}
}

// TestRedactMasks: what Redact masks, with the words folded through its
// cache (met once before each case, then again).
func TestRedactMasks(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"Liên hệ Nguyễn Thị Hoa ở chợ", "Liên hệ [đã ẩn] ở chợ"},
		{"gặp chị hoa, chị HOÀ", "gặp chị [đã ẩn], chị [đã ẩn]"},
		{"NGUYEN THI HOA gọi", "[đã ẩn] gọi"},
		{"chị Hoà (NFD: " + norm.NFD.String("Hoà") + ")", "chị [đã ẩn] (NFD: [đã ẩn])"},
		{"Hoang và Hoan không phải", "Hoang và Hoan không phải"},
		{"thư a.b@x.vn, gọi 0905 123 456, CCCD 049195001234", "thư [đã ẩn], gọi [đã ẩn], CCCD [đã ẩn]"},
		{"gọi 0905123456", "gọi [đã ẩn]"},
		{"số 12 Trần Phú, ngày 3/11/2026, mã 12345678", "số 12 Trần Phú, ngày 3/11/2026, mã 12345678"},
	} {
		for range 2 {
			if got := feedback.Redact(c.in, "Nguyễn Thị Hoa"); got != c.want {
				t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
			}
		}
	}
}
