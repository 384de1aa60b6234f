package sms

import "testing"

func TestFitsGSM7(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{"", true},
		{"Ma xac thuc: 123456", true},
		{"Gia: 100€ {ok} [x] ~ | ^ \\", true},
		{"èéùìòÇ Øø Åå ÄÖÑÜäöñüà ¿¡ §", true},
		{"Mã xác thực", false},
		{"Đà Nẵng", false},
		{"á", false}, // NFC á is not in GSM 03.38 (only à, é, è…)
		{"emoji 🙂", false},
		{"`backtick`", false},
	} {
		if got := EncodingFor(tc.s) == GSM7; got != tc.want {
			t.Errorf("EncodingFor(%q) == GSM7 is %v, want %v", tc.s, got, tc.want)
		}
	}
}
