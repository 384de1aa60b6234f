package accounts

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestProvinceCodes(t *testing.T) {
	if len(provinceCodes) != 63 {
		t.Errorf("provinceCodes has %d entries, want the 63 pre-2025 provinces", len(provinceCodes))
	}
	for code, name := range provinceCodes {
		if len(code) != 3 || !allDigits(code) || code < "001" || code > "096" {
			t.Errorf("bad province code %q (%s)", code, name)
		}
	}
}

func TestValidateCitizenID(t *testing.T) {
	now := time.Date(2025, time.June, 15, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		id     string
		reason string // "" for valid, else a substring of the error
	}{
		{"hanoi male 1985", "001085012345", ""},
		{"hanoi female 1999", "001199123456", ""},
		{"hcm male 2000", "079200000001", ""},
		{"quang nam female 2003", "049303987654", ""},
		{"ca mau 1900", "096000000000", ""},
		{"born this year", "048225000001", ""},
		{"born this year female", "048325000001", ""},
		{"thua thien hue", "046190000000", ""},
		{"highest code", "096199999999", ""},

		{"empty", "", "empty"},
		{"letters", "00108501234A", "other than 0-9"},
		{"spaces", "001 085 012 345", "other than 0-9"},
		{"hyphen", "001-085012345", "other than 0-9"},
		{"full-width digits", "００１０８５０１２３４５", "other than 0-9"},
		{"old 9-digit CMND", "012345678", "has 9 digits"},
		{"11 digits", "00108501234", "has 11 digits"},
		{"13 digits", "0010850123456", "has 13 digits"},
		{"province 000", "000085012345", "province code"},
		{"province 003 unused", "003085012345", "province code"},
		{"province 097", "097085012345", "province code"},
		{"province 099", "099085012345", "province code"},
		{"province 100", "100085012345", "province code"},
		{"next year male", "001226000001", "future"},
		{"next year female", "001326000001", "future"},
		{"22nd century", "001400000001", "future"},
		{"23rd century", "001700000001", "future"},
		{"24th century", "001999000001", "future"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateCitizenID(tt.id, now)
			checkErr(t, err, tt.reason)
		})
	}
}

// The year boundary follows now: an ID valid this year was invalid last
// year.
func TestValidateCitizenIDYearBoundary(t *testing.T) {
	id := "001225000001" // born 2025
	if err := ValidateCitizenID(id, time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Errorf("on 2025-01-01: %v", err)
	}
	if err := ValidateCitizenID(id, time.Date(2024, time.December, 31, 23, 59, 59, 0, time.UTC)); !errors.Is(err, ErrInvalid) {
		t.Errorf("on 2024-12-31: err = %v, want ErrInvalid", err)
	}
}

func TestNormalizeTaxCode(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		want   string
		reason string
	}{
		// Published tax codes of large enterprises; the check digits
		// were computed by hand from the weights and agree.
		{"viettel", "0100109106", "0100109106", ""},
		{"vnpt", "0100684378", "0100684378", ""},
		{"fpt", "0101248141", "0101248141", ""},
		{"vinamilk", "0300588569", "0300588569", ""},
		{"evn", "0100100079", "0100100079", ""},
		{"vietcombank", "0100112437", "0100112437", ""},
		// Sum mod 11 = 10 gives check digit 0.
		{"check digit 0", "0100000010", "0100000010", ""},
		{"branch dashed", "0100109106-001", "0100109106-001", ""},
		{"branch undashed", "0100109106001", "0100109106-001", ""},
		{"branch 999", "0300588569-999", "0300588569-999", ""},
		{"branch 123 undashed", "0101248141123", "0101248141-123", ""},

		{"empty", "", "", "empty"},
		{"9 digits", "010010910", "", "want 10 digits"},
		{"11 digits", "01001091061", "", "want 10 digits"},
		{"12 digits (personal, CCCD)", "001085012345", "", "want 10 digits"},
		{"15 chars", "0100109106-0011", "", "want 10 digits"},
		{"letter", "010010910A", "", "other than 0-9"},
		{"spaces", "0100 109106", "", "want 10 digits"},
		{"dash in wrong place", "010010910-6001", "", "want 10 digits"},
		{"13 with short branch", "0100109106-01", "", "other than 0-9"},
		{"wrong check digit", "0100109107", "", "not the check digit"},
		{"wrong check digit off by one", "0100109105", "", "not the check digit"},
		{"transposed digits", "0101009106", "", "not the check digit"},
		{"wrong check digit with branch", "0100109107-001", "", "not the check digit"},
		{"no check digit possible", "0100000050", "", "admit no check digit"},
		{"no check digit possible 9", "0100000059", "", "admit no check digit"},
		{"all zeros", "0000000000", "", "admit no check digit"},
		{"branch 000", "0100109106-000", "", "branch number 000"},
		{"branch 000 undashed", "0100109106000", "", "branch number 000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeTaxCode(tt.in)
			checkErr(t, err, tt.reason)
			if got != tt.want {
				t.Errorf("NormalizeTaxCode(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if verr := ValidateTaxCode(tt.in); (verr == nil) != (err == nil) {
				t.Errorf("ValidateTaxCode(%q) = %v, NormalizeTaxCode error = %v", tt.in, verr, err)
			}
		})
	}
}

// Exactly one check digit is valid for every prefix that admits one.
func TestTaxCodeSingleCheckDigit(t *testing.T) {
	for _, prefix := range []string{"010010910", "030058856", "010000000", "010000001"} {
		valid := 0
		for d := byte('0'); d <= '9'; d++ {
			if ValidateTaxCode(prefix+string(d)) == nil {
				valid++
			}
		}
		if valid != 1 {
			t.Errorf("prefix %s: %d valid check digits, want 1", prefix, valid)
		}
	}
}

// checkErr fails t unless err is nil when reason is empty, or wraps
// ErrInvalid with the accounts prefix and mentions reason otherwise.
func checkErr(t *testing.T, err error, reason string) {
	t.Helper()
	if reason == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", reason)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("error %v does not wrap ErrInvalid", err)
	}
	if !strings.HasPrefix(err.Error(), "accounts: invalid ") {
		t.Errorf("error %q lacks the %q prefix", err, "accounts: invalid ")
	}
	if !strings.Contains(err.Error(), reason) {
		t.Errorf("error %q, want it to mention %q", err, reason)
	}
}
