package sms

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFold(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"notice", "Thông báo", "Thong bao"},
		{"d bar lower", "đường", "duong"},
		{"d bar upper", "Đà Nẵng", "Da Nang"},
		{"d bar all caps", "ĐIỆN LỰC", "DIEN LUC"},
		{"u horn hook", "Thưởng", "Thuong"},
		{"o horn dot", "Hợp", "Hop"},
		{"o horn upper", "ƠN", "ON"},
		{"a breve", "Nẵng Ắ Ặ", "Nang A A"},
		{"a circumflex", "Cần Thơ", "Can Tho"},
		{"e circumflex", "Nghệ Tiến", "Nghe Tien"},
		{"o circumflex", "Hồ Chí Minh", "Ho Chi Minh"},
		{"y tones", "Kỳ Mỹ Ỷ Ỹ Ỵ", "Ky My Y Y Y"},
		{"i tones", "ìíỉĩị", "iiiii"},
		{
			"all lower",
			"aàáảãạăằắẳẵặâầấẩẫậeèéẻẽẹêềếểễệiìíỉĩịoòóỏõọôồốổỗộơờớởỡợuùúủũụưừứửữựyỳýỷỹỵđ",
			strings.Repeat("a", 18) + strings.Repeat("e", 12) + strings.Repeat("i", 6) +
				strings.Repeat("o", 18) + strings.Repeat("u", 12) + strings.Repeat("y", 6) + "d",
		},
		{
			"all upper",
			"AÀÁẢÃẠĂẰẮẲẴẶÂẦẤẨẪẬEÈÉẺẼẸÊỀẾỂỄỆIÌÍỈĨỊOÒÓỎÕỌÔỒỐỔỖỘƠỜỚỞỠỢUÙÚỦŨỤƯỪỨỬỮỰYỲÝỶỸỴĐ",
			strings.Repeat("A", 18) + strings.Repeat("E", 12) + strings.Repeat("I", 6) +
				strings.Repeat("O", 18) + strings.Repeat("U", 12) + strings.Repeat("Y", 6) + "D",
		},
		{"combining horns and hook", "Thu\u031Bo\u031B\u0309ng", "Thuong"},
		{"combining marks reversed", "Thu\u031Bo\u0309\u031Bng", "Thuong"},
		{"combining tone on precomposed o horn", "H\u01A1\u0323p", "Hop"},
		{"combining circumflex and acute", "Tie\u0302\u0301n", "Tien"},
		{"legacy eth for D bar", "Ðà Lạt", "Da Lat"},
		{"other latin marks", "Ça ñ ü", "Ca n u"},
		{"curly quotes", "“Lũ” ‘khẩn’", "\"Lu\" 'khan'"},
		{"dashes and ellipsis", "7–9 giờ — xem…", "7-9 gio - xem..."},
		{"no-break space", "10\u00A0km", "10 km"},
		{"ascii unchanged", "OTP 123456 {x}", "OTP 123456 {x}"},
		{"non-latin kept", "Ελλάδα 你好 😀", "Ελλαδα 你好 😀"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Fold(tt.in); got != tt.want {
				t.Errorf("Fold(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestEncodingFor(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Encoding
	}{
		{"empty", "", GSM7},
		{"ascii", "Ma OTP cua ban la 123456", GSM7},
		{"gsm accents", "Hà Nội", UCS2}, // à is GSM, ộ is not
		{"gsm latin accents", "àèéìòù É Ç Ä Ö Ñ Ü ä ö ñ ü ß å Å æ Æ ø Ø", GSM7},
		{"gsm greek", "ΔΦΓΛΩΠΨΣΘΞ", GSM7},
		{"gsm symbols", "@£$¥¤§¡¿_!\"#%&'()*+,-./:;<=>?\n\r", GSM7},
		{"extension", "^{}\\[~]|€\f", GSM7},
		{"vietnamese", "Thông báo", UCS2},
		{"d bar", "đ", UCS2},
		{"lower c cedilla not in table", "ç", UCS2},
		{"backtick not in table", "`", UCS2},
		{"tab not in table", "\t", UCS2},
		{"combining mark", "e\u0301", UCS2},
		{"emoji", "OK 😀", UCS2},
		{"invalid utf8", "ab\xff", UCS2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EncodingFor(tt.in); got != tt.want {
				t.Errorf("EncodingFor(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestSegments(t *testing.T) {
	a := func(n int) string { return strings.Repeat("a", n) }
	vi := func(n int) string { return strings.Repeat("ệ", n) }
	emoji := "😀" // U+1F600, a surrogate pair
	tests := []struct {
		name      string
		in        string
		wantEnc   Encoding
		wantUnits int
		wantSegs  int
	}{
		{"empty", "", GSM7, 0, 1},
		{"one char", "a", GSM7, 1, 1},
		{"gsm 160", a(160), GSM7, 160, 1},
		{"gsm 161", a(161), GSM7, 161, 2},
		{"gsm 306", a(306), GSM7, 306, 2},
		{"gsm 307", a(307), GSM7, 307, 3},
		{"gsm 459", a(459), GSM7, 459, 3},
		{"gsm 460", a(460), GSM7, 460, 4},
		{"extension counts 2", "€", GSM7, 2, 1},
		{"all extension chars", "^{}\\[~]|€\f", GSM7, 20, 1},
		{"extension fills 160", a(158) + "€", GSM7, 160, 1},
		{"extension tips over 160", a(159) + "€", GSM7, 161, 2},
		{"80 extension chars", strings.Repeat("[", 80), GSM7, 160, 1},
		{"81 extension chars", strings.Repeat("[", 81), GSM7, 162, 2},
		// 152 + escape pair would straddle the first boundary (153), so
		// the pair moves to part 2: 152 | 2+151 | 1.
		{"escape not split", a(152) + "€" + a(152), GSM7, 306, 3},
		// Escape pair ends exactly on the boundary: 151+2 | 153.
		{"escape ends on boundary", a(151) + "€" + a(153), GSM7, 306, 2},
		{"ucs2 70", vi(70), UCS2, 70, 1},
		{"ucs2 71", vi(71), UCS2, 71, 2},
		{"ucs2 134", vi(134), UCS2, 134, 2},
		{"ucs2 135", vi(135), UCS2, 135, 3},
		{"ucs2 201", vi(201), UCS2, 201, 3},
		{"ucs2 202", vi(202), UCS2, 202, 4},
		{"one gsm-incompatible char makes all ucs2", a(100) + "đ", UCS2, 101, 2},
		{"emoji alone", emoji, UCS2, 2, 1},
		{"35 emoji", strings.Repeat(emoji, 35), UCS2, 70, 1},
		{"36 emoji", strings.Repeat(emoji, 36), UCS2, 72, 2},
		{"emoji fills 70", vi(68) + emoji, UCS2, 70, 1},
		{"emoji tips over 70", vi(69) + emoji, UCS2, 71, 2},
		// 66 + pair would straddle 67, so the pair moves: 66 | 2+65 | 1.
		{"surrogate pair not split", vi(66) + emoji + vi(66), UCS2, 134, 3},
		{"surrogate pair ends on boundary", vi(65) + emoji + vi(67), UCS2, 134, 2},
		{"extension char in ucs2 counts 1", vi(1) + "€", UCS2, 2, 1},
		{"invalid byte counts as one U+FFFD", "a\xffb", UCS2, 3, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, units, segs := Segments(tt.in)
			if enc != tt.wantEnc || units != tt.wantUnits || segs != tt.wantSegs {
				t.Errorf("Segments(%d runes) = (%v, %d, %d), want (%v, %d, %d)",
					utf8.RuneCountInString(tt.in), enc, units, segs, tt.wantEnc, tt.wantUnits, tt.wantSegs)
			}
		})
	}
}

func TestPrepare(t *testing.T) {
	tests := []struct {
		name string
		in   string
		fold bool
		want Text
	}{
		{"precomposed", "Thông báo", false, Text{"Thông báo", UCS2, 9, 1}},
		{"combining nfc", "Tho\u0302ng ba\u0301o", false, Text{"Thông báo", UCS2, 9, 1}},
		{"precomposed folded", "Thông báo", true, Text{"Thong bao", GSM7, 9, 1}},
		{"combining folded", "Tho\u0302ng ba\u0301o", true, Text{"Thong bao", GSM7, 9, 1}},
		{"thuong combining", "Thu\u031Bo\u0309\u031Bng", false, Text{"Thưởng", UCS2, 6, 1}},
		{"hop combining", "Ho\u031B\u0323p", false, Text{"Hợp", UCS2, 3, 1}},
		{"d bar unfolded", "Đ", false, Text{"Đ", UCS2, 1, 1}},
		{"d bar folded", "Đ", true, Text{"D", GSM7, 1, 1}},
		{"invalid utf8 replaced", "a\xffb", false, Text{"a\uFFFDb", UCS2, 3, 1}},
		{"empty", "", false, Text{"", GSM7, 0, 1}},
		{"empty folded", "", true, Text{"", GSM7, 0, 1}},
		{"emoji survives fold", "Lũ 😀", true, Text{"Lu 😀", UCS2, 5, 1}},
		{"otp", "Ma xac thuc: 123456", true, Text{"Ma xac thuc: 123456", GSM7, 19, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Prepare(tt.in, tt.fold); got != tt.want {
				t.Errorf("Prepare(%q, %v) = %+v, want %+v", tt.in, tt.fold, got, tt.want)
			}
		})
	}
}

// A realistic notice crosses segment boundaries differently with and
// without folding; this is the figure an approver sees before sending.
func TestPrepareNoticeCost(t *testing.T) {
	notice := "Thông báo cắt điện: từ 07h00 đến 17h00 ngày 15/6, khu vực phường Hải Châu, " +
		"thành phố Đà Nẵng sẽ tạm ngừng cung cấp điện để bảo dưỡng lưới điện. Xin cảm ơn!"
	n := utf8.RuneCountInString(notice)
	plain := Prepare(notice, false)
	if plain.Encoding != UCS2 || plain.Units != n || plain.Segments != (n+ucs2Part-1)/ucs2Part {
		t.Errorf("unfolded = %+v for %d runes", plain, n)
	}
	folded := Prepare(notice, true)
	if folded.Encoding != GSM7 || folded.Units != n || folded.Segments != 1 {
		t.Errorf("folded = %+v for %d runes", folded, n)
	}
	if strings.ContainsFunc(folded.Body, func(r rune) bool { return r > 0x7F }) {
		t.Errorf("folded body not ASCII: %q", folded.Body)
	}
}

func TestEncodingString(t *testing.T) {
	for _, tt := range []struct {
		e    Encoding
		want string
	}{{GSM7, "GSM-7"}, {UCS2, "UCS-2"}, {Encoding(7), "Encoding(7)"}} {
		if got := tt.e.String(); got != tt.want {
			t.Errorf("%d.String() = %q, want %q", tt.e, got, tt.want)
		}
	}
}
