package accounts

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalid is wrapped by every error that reports input a citizen,
// organisation or official got wrong: a malformed citizen ID or tax code, a
// password that does not meet the policy. Test with errors.Is. The
// wrapping error says which part is wrong without repeating the value, so
// it can be logged.
var ErrInvalid = errors.New("invalid")

// provinceCodes are the 63 province codes that open a citizen ID (CCCD),
// as listed in the annex of Circular 07/2016/TT-BCA (kept by Circular
// 59/2021/TT-BCA): the province where the citizen's birth was registered.
// The 2025 merger into 34 provinces did not renumber issued cards, and
// every surviving province kept one of these codes, so the list stays
// valid for every card in circulation.
var provinceCodes = map[string]string{
	"001": "Hà Nội", "002": "Hà Giang", "004": "Cao Bằng", "006": "Bắc Kạn",
	"008": "Tuyên Quang", "010": "Lào Cai", "011": "Điện Biên", "012": "Lai Châu",
	"014": "Sơn La", "015": "Yên Bái", "017": "Hòa Bình", "019": "Thái Nguyên",
	"020": "Lạng Sơn", "022": "Quảng Ninh", "024": "Bắc Giang", "025": "Phú Thọ",
	"026": "Vĩnh Phúc", "027": "Bắc Ninh", "030": "Hải Dương", "031": "Hải Phòng",
	"033": "Hưng Yên", "034": "Thái Bình", "035": "Hà Nam", "036": "Nam Định",
	"037": "Ninh Bình", "038": "Thanh Hóa", "040": "Nghệ An", "042": "Hà Tĩnh",
	"044": "Quảng Bình", "045": "Quảng Trị", "046": "Thừa Thiên Huế", "048": "Đà Nẵng",
	"049": "Quảng Nam", "051": "Quảng Ngãi", "052": "Bình Định", "054": "Phú Yên",
	"056": "Khánh Hòa", "058": "Ninh Thuận", "060": "Bình Thuận", "062": "Kon Tum",
	"064": "Gia Lai", "066": "Đắk Lắk", "067": "Đắk Nông", "068": "Lâm Đồng",
	"070": "Bình Phước", "072": "Tây Ninh", "074": "Bình Dương", "075": "Đồng Nai",
	"077": "Bà Rịa - Vũng Tàu", "079": "TP Hồ Chí Minh", "080": "Long An", "082": "Tiền Giang",
	"083": "Bến Tre", "084": "Trà Vinh", "086": "Vĩnh Long", "087": "Đồng Tháp",
	"089": "An Giang", "091": "Kiên Giang", "092": "Cần Thơ", "093": "Hậu Giang",
	"094": "Sóc Trăng", "095": "Bạc Liêu", "096": "Cà Mau",
}

// ValidateCitizenID checks id as a 12-digit citizen ID (căn cước công dân):
//
//	digits 1-3   province code of birth registration (see provinceCodes)
//	digit  4     century and sex: 0/1 born 1900-1999 male/female,
//	             2/3 2000-2099, 4/5 2100-2199, 6/7 2200-2299, 8/9 2300-2399
//	digits 5-6   last two digits of the birth year
//	digits 7-12  random number
//
// The birth year the ID encodes must not be after now's year (children
// get cards from birth, so the current year is allowed). The century code
// bounds it below at 1900, so no separate "too old" check is made. id is
// checked as given: no spaces, dots or other separators are stripped. The
// error wraps ErrInvalid and names the wrong part.
func ValidateCitizenID(id string, now time.Time) error {
	if id == "" {
		return fmt.Errorf("accounts: %w citizen ID: empty", ErrInvalid)
	}
	if !allDigits(id) {
		return fmt.Errorf("accounts: %w citizen ID: contains a character other than 0-9", ErrInvalid)
	}
	if len(id) != 12 {
		return fmt.Errorf("accounts: %w citizen ID: has %d digits, want 12", ErrInvalid, len(id))
	}
	if _, ok := provinceCodes[id[:3]]; !ok {
		return fmt.Errorf("accounts: %w citizen ID: digits 1-3 are not a province code", ErrInvalid)
	}
	century := int(id[3]-'0') / 2 // 0..4
	year := 1900 + 100*century + int(id[4]-'0')*10 + int(id[5]-'0')
	if year > now.Year() {
		return fmt.Errorf("accounts: %w citizen ID: digits 4-6 give a birth year in the future", ErrInvalid)
	}
	return nil
}

// taxWeights are the weights of the first nine digits of a tax code (mã
// số thuế) in its check digit: N10 = 10 − (Σ wᵢ·Nᵢ mod 11). The structure
// N1-N2 province, N3-N9 sequence, N10 check digit is set by the Ministry of
// Finance's circulars (95/2016/TT-BTC, now 105/2020/TT-BTC); the formula
// itself is not published there; this is the one in general use, and it
// reproduces the check digit of every published code we tried (Viettel, VNPT, FPT, Vinamilk, EVN, Vietcombank;
// see the tests). When the sum is divisible by 11 the formula gives 10,
// which is not a digit: no tax code has such a prefix.
var taxWeights = [9]int{31, 29, 23, 19, 17, 13, 7, 5, 3}

// ValidateTaxCode checks code as an organisation's tax code in any form
// NormalizeTaxCode accepts. The error wraps ErrInvalid and names the wrong
// part.
func ValidateTaxCode(code string) error {
	_, err := NormalizeTaxCode(code)
	return err
}

// NormalizeTaxCode returns code in its canonical form: the 10-digit tax
// code of an organisation ("0100109106"), or a dependent unit's 13-digit
// code written as the parent's 10 digits, a hyphen and the 3-digit branch
// number 001-999 ("0100109106-001"). The 13 digits without the hyphen
// ("0100109106001") are accepted and returned with it. The tenth digit
// must be the check digit of the first nine (see taxWeights). code is
// checked as given: no spaces are stripped. The error wraps ErrInvalid
// and names the wrong part.
//
// The 12-digit personal tax code that equals a citizen ID is not a tax
// code in this sense; validate it with ValidateCitizenID.
func NormalizeTaxCode(code string) (string, error) {
	var base, branch string
	switch {
	case len(code) == 10:
		base = code
	case len(code) == 13:
		base, branch = code[:10], code[10:]
	case len(code) == 14 && code[10] == '-':
		base, branch = code[:10], code[11:]
	case code == "":
		return "", fmt.Errorf("accounts: %w tax code: empty", ErrInvalid)
	default:
		return "", fmt.Errorf("accounts: %w tax code: want 10 digits, or 10 digits and a 3-digit branch number", ErrInvalid)
	}
	if !allDigits(base) || !allDigits(branch) {
		return "", fmt.Errorf("accounts: %w tax code: contains a character other than 0-9 (and one hyphen before the branch number)", ErrInvalid)
	}
	sum := 0
	for i, w := range taxWeights {
		sum += w * int(base[i]-'0')
	}
	check := 10 - sum%11
	if check == 10 {
		return "", fmt.Errorf("accounts: %w tax code: digits 1-9 admit no check digit", ErrInvalid)
	}
	if int(base[9]-'0') != check {
		return "", fmt.Errorf("accounts: %w tax code: digit 10 is not the check digit of digits 1-9", ErrInvalid)
	}
	if branch == "" {
		return base, nil
	}
	if branch == "000" {
		return "", fmt.Errorf("accounts: %w tax code: branch number 000 (branches are 001-999)", ErrInvalid)
	}
	return base + "-" + branch, nil
}

// allDigits reports whether s holds only ASCII digits; the empty string
// does.
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
