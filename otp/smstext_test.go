package otp

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// gsm7Basic is the GSM 03.38 basic character set's ASCII part: these cost
// one septet each. (ASCII outside it either needs the extension table, two
// septets, or is not representable at all, such as '`'.)
const gsm7Basic = "@$\n\r _!\"#%&'()*+,-./0123456789:;<=>?" +
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func TestSMSTextFitsOneGSM7Segment(t *testing.T) {
	// The longest validities SMSText accepts, and the default.
	for _, ttl := range []time.Duration{5 * time.Minute, 1440 * time.Minute, 24*time.Hour - time.Second} {
		for _, p := range Purposes() {
			text, err := SMSText(p, "999999", ttl)
			if err != nil {
				t.Fatal(err)
			}
			if len(text) > 160 {
				t.Errorf("%s, %s: %d characters: %q", p, ttl, len(text), text)
			}
			for _, r := range text {
				if !strings.ContainsRune(gsm7Basic, r) {
					t.Errorf("%s: %q is not a GSM-7 basic character", p, r)
				}
			}
			if !strings.Contains(text, "999999") {
				t.Errorf("%s: code missing from %q", p, text)
			}
		}
	}
}

func TestSMSTextGolden(t *testing.T) {
	var b strings.Builder
	for _, p := range Purposes() {
		text, err := SMSText(p, "012345", 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(p + ": " + text + "\n")
	}
	b.WriteString("90s: ")
	text, _ := SMSText(PurposeLogin, "012345", 90*time.Second)
	b.WriteString(text + "\n")

	golden := filepath.Join("testdata", "smstext.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if b.String() != string(want) {
		t.Errorf("SMS texts changed (review, then run with -update):\n got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestSMSTextErrors(t *testing.T) {
	tests := []struct {
		purpose, code string
		ttl           time.Duration
		want          error
	}{
		{"newsletter", "123456", time.Minute, ErrUnknownPurpose},
		{"", "123456", time.Minute, ErrUnknownPurpose},
		{PurposeLogin, "12345", time.Minute, ErrInvalidInput},
		{PurposeLogin, "12345a", time.Minute, ErrInvalidInput},
		{PurposeLogin, "123456", 0, ErrInvalidInput},
		{PurposeLogin, "123456", 25 * time.Hour, ErrInvalidInput},
	}
	for _, tc := range tests {
		if _, err := SMSText(tc.purpose, tc.code, tc.ttl); !errors.Is(err, tc.want) {
			t.Errorf("SMSText(%q, %q, %s) = %v, want %v", tc.purpose, tc.code, tc.ttl, err, tc.want)
		}
	}
}
