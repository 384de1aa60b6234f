package producer

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCutJSON(t *testing.T) {
	for _, s := range []string{"", "abc", strings.Repeat("ệ", 500), strings.Repeat("&<>", 300), strings.Repeat("a\"ễ\n&", 400), strings.Repeat("😀", 100)} {
		for _, n := range []int{5, 6, 7, 10, 61, 600, 2400} {
			got := CutJSON(s, n)
			if jsonLen(got) > n || !utf8.ValidString(got) {
				t.Errorf("CutJSON(%.20q…, %d) = %.20q…, %d bytes of JSON", s, n, got, jsonLen(got))
			}
			if jsonLen(s) <= n && got != s {
				t.Errorf("CutJSON cut %.20q…, which fits in %d", s, n)
			}
			if got != s && (!strings.HasSuffix(got, "…") || !strings.HasPrefix(s, strings.TrimSuffix(got, "…")) || jsonLen(got) < n-12) {
				t.Errorf("CutJSON(%.20q…, %d) = %.20q… (%d bytes): not the longest prefix with an ellipsis", s, n, got, jsonLen(got))
			}
		}
	}
}
