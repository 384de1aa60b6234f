package producer

import (
	"encoding/json"
	"unicode/utf8"
)

// Budgets of a push's texts, in bytes of JSON as the FCM channel counts
// them against FCM's 4,096: PushReserve is left for what the dispatcher
// adds per device (an acknowledgement token), and a notice built from
// longer texts (an article's title and summary) is cut to
// PushTitleJSON and PushBodyJSON.
const (
	PushPayload   = 4096
	PushReserve   = 300
	PushTitleJSON = 600
	PushBodyJSON  = 2400
)

// PushSize is the size of a push of title, body and data as the FCM
// channel counts it against PushPayload (fcm.PayloadSize): the JSON of
// the notification object and of the data object.
func PushSize(title, body string, data map[string]string) int {
	n := len(`{"title":,"body":}`) + jsonLen(title) + jsonLen(body) + 1
	for k, v := range data {
		n += jsonLen(k) + jsonLen(v) + 2
	}
	return n
}

// CutJSON shortens s at a character boundary, marking the cut with an
// ellipsis, so that its JSON encoding is at most n bytes.
func CutJSON(s string, n int) string {
	if jsonLen(s) <= n {
		return s
	}
	const ell = "…"
	// Each byte of s is at most 6 of JSON (\u00XX), each rune at least 1.
	lo, hi := 0, len(s)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		for mid > 0 && mid < len(s) && !utf8.RuneStart(s[mid]) {
			mid--
		}
		if mid <= lo {
			break
		}
		if jsonLen(s[:mid]+ell) <= n {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return s[:lo] + ell
}

func jsonLen(s string) int {
	b, _ := json.Marshal(s) // a string always marshals
	return len(b)
}
