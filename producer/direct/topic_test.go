package direct

import (
	"regexp"
	"strings"
	"testing"
)

// TestValidTopicIsFCMsPattern: validTopic accepts exactly what FCM's
// topic pattern, [a-zA-Z0-9-_.~%]{1,900}, does.
func TestValidTopicIsFCMsPattern(t *testing.T) {
	pattern := regexp.MustCompile(`^[a-zA-Z0-9\-_.~%]{1,900}$`)
	cases := []string{"", "a", "news", "Tin-tuc_2026.~%20", strings.Repeat("x", 900), strings.Repeat("x", 901),
		"a b", "a/b", "tin tức", "é", "a\n", "\x00", "a+b", "a:b", "a@b", "[a]", strings.Repeat("%", 899) + "!"}
	for c := byte(0); c < 128; c++ {
		cases = append(cases, "t"+string(c), string(c))
	}
	for _, s := range cases {
		if got, want := validTopic(s), pattern.MatchString(s); got != want {
			t.Errorf("validTopic(%q) = %v, the pattern says %v", s, got, want)
		}
	}
}
