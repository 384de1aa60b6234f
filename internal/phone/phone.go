package phone

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is wrapped by every error Normalize returns; test with
// errors.Is. The wrapping error says what is wrong but never repeats the
// whole number, so it can be logged.
var ErrInvalid = errors.New("invalid phone number")

// mobilePrefixes holds the two digits after the trunk "0" of every mobile
// range in use since the 2018 conversion of 11-digit numbers to 10 digits
// (MIC Decision 798/QĐ-BTTTT and the numbering plan in Circular
// 22/2014/TT-BTTTT as amended). Ranges by operator, for reference only:
//
//	Viettel       032-039, 086, 096, 097, 098
//	VinaPhone     081-085, 088, 091, 094
//	MobiFone      070, 076-079, 089, 090, 093
//	Vietnamobile  052, 056, 058, 092
//	Gmobile       059, 099
//	Itelecom      087
//	Reddi/Wintel  055
//	(S-Fone)      095
//
// 095 belonged to S-Fone, which stopped operating around 2012. We could not
// confirm that the range has been withdrawn from the numbering plan, and
// libphonenumber still classifies 095 as mobile, so it is accepted: wrongly
// rejecting a citizen's real number at registration costs more than an SMS
// to a dead range failing at the gateway. 030, 031, 050, 051, 053, 054, 057
// and 071-075 are reserved in the plan but not assigned to any operator,
// and are rejected. Numbers are portable between operators, so the
// operator is never inferred from the prefix.
var mobilePrefixes = map[string]bool{
	"32": true, "33": true, "34": true, "35": true, "36": true, "37": true, "38": true, "39": true,
	"52": true, "55": true, "56": true, "58": true, "59": true,
	"70": true, "76": true, "77": true, "78": true, "79": true,
	"81": true, "82": true, "83": true, "84": true, "85": true, "86": true, "87": true, "88": true, "89": true,
	"90": true, "91": true, "92": true, "93": true, "94": true, "95": true, "96": true, "97": true, "98": true, "99": true,
}

// nationalLen is the length of a mobile number without trunk or country
// code.
const nationalLen = 9

// Normalize returns s as "84" followed by the 9-digit national number, for
// example "84912345678".
//
// It accepts the national form with its trunk zero ("0912345678"), the
// international form with or without "+" ("84912345678", "+84912345678")
// and any of these written with spaces, dots, hyphens or parentheses as
// separators ("+84 912 345 678", "0912.345.678", "(091) 234-5678").
// Leading and trailing white space is ignored. A "+" is allowed only in
// front and only before 84.
//
// It rejects, with an error wrapping ErrInvalid: empty input, letters or
// other characters, numbers of another country, landlines (02x), the
// 11-digit mobile numbers withdrawn in 2018 (01xx), ranges not assigned to
// a mobile operator (see mobilePrefixes), and numbers that are too short or
// too long. The 9-digit national number without its trunk zero
// ("912345678") is rejected as ambiguous.
func Normalize(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("phone: %w: empty", ErrInvalid)
	}
	plus := false
	if strings.HasPrefix(s, "+") {
		plus = true
		s = s[1:]
	}
	digits := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits = append(digits, c)
		case c == ' ' || c == '.' || c == '-' || c == '(' || c == ')':
			// separators people write; carry no meaning
		case c == '+':
			return "", fmt.Errorf("phone: %w: '+' allowed only at the start", ErrInvalid)
		default:
			return "", fmt.Errorf("phone: %w: contains characters other than digits and separators", ErrInvalid)
		}
	}
	d := string(digits)
	if d == "" {
		return "", fmt.Errorf("phone: %w: no digits", ErrInvalid)
	}

	var national string
	switch {
	case plus || strings.HasPrefix(d, "84"):
		if !strings.HasPrefix(d, "84") {
			return "", fmt.Errorf("phone: %w: country code is not +84", ErrInvalid)
		}
		national = d[2:]
		if strings.HasPrefix(national, "0") {
			// "+84 0912..." is a common mistake: the trunk zero is
			// dropped in the international form.
			return "", fmt.Errorf("phone: %w: trunk 0 after country code 84", ErrInvalid)
		}
	case strings.HasPrefix(d, "0"):
		national = d[1:]
	default:
		return "", fmt.Errorf("phone: %w: must start with 0, 84 or +84", ErrInvalid)
	}

	if strings.HasPrefix(national, "2") {
		return "", fmt.Errorf("phone: %w: 02x is a landline prefix", ErrInvalid)
	}
	if strings.HasPrefix(national, "1") && len(national) == nationalLen+1 {
		return "", fmt.Errorf("phone: %w: 11-digit 01xx numbers were withdrawn in 2018", ErrInvalid)
	}
	if len(national) < nationalLen {
		return "", fmt.Errorf("phone: %w: too short (%d national digits, want %d)", ErrInvalid, len(national), nationalLen)
	}
	if len(national) > nationalLen {
		return "", fmt.Errorf("phone: %w: too long (%d national digits, want %d)", ErrInvalid, len(national), nationalLen)
	}
	if !mobilePrefixes[national[:2]] {
		return "", fmt.Errorf("phone: %w: 0%s is not a mobile prefix", ErrInvalid, national[:2])
	}
	return "84" + national, nil
}

// Mask returns p with the middle hidden, for logs: "84912345678" becomes
// "84912***678". p is normalised first, so any form Normalize accepts is
// masked the same way. Input that does not normalise is returned as "***"
// whole, because it may be a number in a form we do not recognise and so
// must not be printed.
func Mask(p string) string {
	n, err := Normalize(p)
	if err != nil {
		return "***"
	}
	return n[:5] + "***" + n[8:]
}
