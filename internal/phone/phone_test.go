package phone

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"national", "0912345678", "84912345678"},
		{"international no plus", "84912345678", "84912345678"},
		{"international plus", "+84912345678", "84912345678"},
		{"international spaced", "+84 912 345 678", "84912345678"},
		{"dotted", "0912.345.678", "84912345678"},
		{"hyphenated", "0912-345-678", "84912345678"},
		{"parentheses", "(091) 234-5678", "84912345678"},
		{"surrounding space", "  0912345678\t", "84912345678"},
		{"viettel 032", "0321234567", "84321234567"},
		{"viettel 039", "0391234567", "84391234567"},
		{"viettel 086", "0861234567", "84861234567"},
		{"vietnamobile 052", "0521234567", "84521234567"},
		{"reddi 055", "0551234567", "84551234567"},
		{"vietnamobile 056", "0561234567", "84561234567"},
		{"vietnamobile 058", "0581234567", "84581234567"},
		{"gmobile 059", "0591234567", "84591234567"},
		{"mobifone 070", "0701234567", "84701234567"},
		{"mobifone 076", "0761234567", "84761234567"},
		{"mobifone 079", "0791234567", "84791234567"},
		{"vinaphone 081", "0811234567", "84811234567"},
		{"itelecom 087", "0871234567", "84871234567"},
		{"mobifone 089", "0891234567", "84891234567"},
		{"mobifone 090", "0901234567", "84901234567"},
		{"vietnamobile 092", "0921234567", "84921234567"},
		{"former s-fone 095", "0951234567", "84951234567"},
		{"gmobile 099", "0991234567", "84991234567"},
		{"84 prefix 084", "0841234567", "84841234567"},
		{"84 prefix international", "+84841234567", "84841234567"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Normalize(tt.in)
			if err != nil {
				t.Fatalf("Normalize(%q) error: %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNormalizeInvalid(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		reason string // substring of the error
	}{
		{"empty", "", "empty"},
		{"blank", "   ", "empty"},
		{"only separators", "-- ..", "no digits"},
		{"letters", "0912abc678", "characters other than digits"},
		{"letter O for zero", "O912345678", "characters other than digits"},
		{"full-width digits", "０９１２３４５６７８", "characters other than digits"},
		{"plus in middle", "0912+345678", "'+' allowed only at the start"},
		{"double plus", "++84912345678", "'+' allowed only at the start"},
		{"other country", "+14155552671", "country code is not +84"},
		{"plus without 84", "+0912345678", "country code is not +84"},
		{"trunk zero after 84", "+840912345678", "trunk 0 after country code"},
		{"no trunk", "912345678", "must start with 0, 84 or +84"},
		{"landline hanoi", "02438251234", "landline"},
		{"landline international", "+842438251234", "landline"},
		{"landline short", "0236123456", "landline"},
		{"old 11-digit viettel", "01681234567", "withdrawn in 2018"},
		{"old 11-digit international", "+841681234567", "withdrawn in 2018"},
		{"too short", "091234567", "too short"},
		{"too short international", "8491234567", "too short"},
		{"too long", "09123456789", "too long"},
		{"too long international", "849123456789", "too long"},
		{"unassigned 030", "0301234567", "not a mobile prefix"},
		{"unassigned 031", "0311234567", "not a mobile prefix"},
		{"unassigned 050", "0501234567", "not a mobile prefix"},
		{"unassigned 053", "0531234567", "not a mobile prefix"},
		{"unassigned 057", "0571234567", "not a mobile prefix"},
		{"unassigned 071", "0711234567", "not a mobile prefix"},
		{"unassigned 075", "0751234567", "not a mobile prefix"},
		{"unassigned 080", "0801234567", "not a mobile prefix"},
		{"unassigned 040", "0401234567", "not a mobile prefix"},
		{"unassigned 060", "0601234567", "not a mobile prefix"},
		{"unassigned 000", "0001234567", "not a mobile prefix"},
		{"just zero", "0", "too short"},
		{"just 84", "84", "too short"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Normalize(tt.in)
			if err == nil {
				t.Fatalf("Normalize(%q) = %q, want error", tt.in, got)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Normalize(%q) error %v does not wrap ErrInvalid", tt.in, err)
			}
			if !strings.HasPrefix(err.Error(), "phone: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("Normalize(%q) error %q, want it to mention %q", tt.in, err, tt.reason)
			}
			if got != "" {
				t.Errorf("Normalize(%q) returned %q with an error", tt.in, got)
			}
		})
	}
}

// The error must be loggable: it must not carry the number itself.
func TestNormalizeErrorHidesNumber(t *testing.T) {
	for _, in := range []string{"02438251234", "09123456789", "0301234567", "01681234567"} {
		_, err := Normalize(in)
		if err == nil {
			t.Fatalf("Normalize(%q): want error", in)
		}
		if strings.Contains(err.Error(), in[3:]) {
			t.Errorf("error %q leaks the number %q", err, in)
		}
	}
}

func TestMask(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"84912345678", "84912***678"},
		{"0912345678", "84912***678"},
		{"+84 912 345 678", "84912***678"},
		{"0321234567", "84321***567"},
		{"", "***"},
		{"02438251234", "***"},
		{"not a number", "***"},
		{"+14155552671", "***"},
	}
	for _, tt := range tests {
		if got := Mask(tt.in); got != tt.want {
			t.Errorf("Mask(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
