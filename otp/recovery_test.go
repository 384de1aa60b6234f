package otp

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

var testPepper = []byte("pepper-pepper-pepper-pepper-32b!")

func TestRecoveryCodes(t *testing.T) {
	plain, hashed, err := NewRecoveryCodes(DefaultRecoveryCodes, testPepper)
	if err != nil {
		t.Fatal(err)
	}
	if len(plain) != 10 || len(hashed) != 10 {
		t.Fatalf("%d codes, %d hashes", len(plain), len(hashed))
	}
	format := regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}$`)
	seen := map[string]bool{}
	for i, c := range plain {
		if !format.MatchString(c) {
			t.Errorf("code %q", c)
		}
		if seen[c] {
			t.Errorf("duplicate code %q", c)
		}
		seen[c] = true
		if strings.Contains(hashed[i], strings.ReplaceAll(c, "-", "")) {
			t.Errorf("hash %q contains its code", hashed[i])
		}
		if idx, ok := MatchRecoveryCode(hashed, c, testPepper); !ok || idx != i {
			t.Errorf("code %d: MatchRecoveryCode = %d, %v", i, idx, ok)
		}
	}

	c := plain[3]
	for name, input := range map[string]string{
		"upper":      strings.ToUpper(c),
		"no dash":    strings.ReplaceAll(c, "-", ""),
		"spaces":     " " + strings.ReplaceAll(c, "-", " ") + " ",
		"look-alike": strings.NewReplacer("0", "O", "1", "l").Replace(c),
	} {
		if idx, ok := MatchRecoveryCode(hashed, input, testPepper); !ok || idx != 3 {
			t.Errorf("%s %q: %d, %v", name, input, idx, ok)
		}
	}

	for name, input := range map[string]string{
		"empty":     "",
		"short":     c[:9],
		"long":      c + "0",
		"bad char":  c[:10] + "u",
		"other":     "00000-00000",
		"different": flipFirst(c),
	} {
		if idx, ok := MatchRecoveryCode(hashed, input, testPepper); ok || idx != -1 {
			t.Errorf("%s %q matched index %d", name, input, idx)
		}
	}
	if _, ok := MatchRecoveryCode(hashed, c, []byte("another-pepper-another-pepper!!!")); ok {
		t.Error("matched under another key")
	}

	// Single use, done by the caller: blank the entry.
	used := append([]string(nil), hashed...)
	used[3] = ""
	if _, ok := MatchRecoveryCode(used, c, testPepper); ok {
		t.Error("used code matched")
	}
}

func flipFirst(c string) string {
	if c[0] == 'a' {
		return "b" + c[1:]
	}
	return "a" + c[1:]
}

func TestNewRecoveryCodesErrors(t *testing.T) {
	if _, _, err := NewRecoveryCodes(0, testPepper); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("n=0: %v", err)
	}
	if _, _, err := NewRecoveryCodes(10, []byte("short")); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("short key: %v", err)
	}
}
