package sms

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// Encoding is the data coding an SMS is sent with.
type Encoding uint8

// The two encodings Vietnamese gateways bill by. The zero value is GSM7.
const (
	// GSM7 is the GSM 03.38 default alphabet with its extension table,
	// packed in 7-bit septets.
	GSM7 Encoding = iota
	// UCS2 is 16-bit text. Gateways and handsets in practice treat it as
	// UTF-16, so runes outside the Basic Multilingual Plane (emoji) are
	// sent as surrogate pairs and count two units.
	UCS2
)

// String returns "GSM-7" or "UCS-2", the names gateways and invoices use.
func (e Encoding) String() string {
	switch e {
	case GSM7:
		return "GSM-7"
	case UCS2:
		return "UCS-2"
	}
	return "Encoding(" + strconv.Itoa(int(e)) + ")"
}

// Segment sizes. A message that fits one segment has the whole user data
// to itself; a longer one is split into parts that each carry a 6-byte
// concatenation header (UDH), leaving 153 septets or 67 UTF-16 units.
const (
	gsmSingle  = 160
	gsmPart    = 153
	ucs2Single = 70
	ucs2Part   = 67
)

// Text is a message body ready to hand to a gateway, with what it costs.
type Text struct {
	// Body is the text to send: valid UTF-8, NFC-normalised and, when
	// folding was asked for, without Vietnamese diacritics.
	Body string
	// Encoding is the encoding Body must be sent with.
	Encoding Encoding
	// Units is Body's length in the encoding's units: septets for GSM7
	// (an extension character counts 2), UTF-16 code units for UCS2.
	Units int
	// Segments is the number of SMS Body bills as; at least 1.
	Segments int
}

// Prepare turns text into the body Loa sends and counts what it costs.
// Invalid UTF-8 sequences are replaced by U+FFFD; the text is then
// normalised to NFC, so precomposed and combining-mark input (which
// Vietnamese keyboards and legacy converters both produce) send and bill
// the same. When fold is true the text is also passed through Fold.
func Prepare(text string, fold bool) Text {
	body := norm.NFC.String(strings.ToValidUTF8(text, string(utf8.RuneError)))
	if fold {
		body = Fold(body)
	}
	enc, units, segs := Segments(body)
	return Text{Body: body, Encoding: enc, Units: units, Segments: segs}
}

// Fold returns text with Vietnamese diacritics removed, for routes that
// only carry GSM-7 text: every tone mark (grave, acute, hook above, tilde,
// dot below) and vowel mark (ă, â, ê, ô, ơ, ư) on every vowel, upper and
// lower case, given precomposed or as combining marks; "đ" becomes "d" and
// "Đ" becomes "D" (as does "Ð", U+00D0, which legacy converters emit for
// "Đ"). More generally every combining mark of the Combining Diacritical
// Marks block (U+0300–U+036F) is removed, so "ç" becomes "c"; marks of
// other scripts are kept. Typographic punctuation that word processors put
// into pasted text, and that would by itself force UCS-2, is replaced by
// its ASCII form: curly quotes, en and em dashes, the ellipsis and the
// no-break space. Everything else is unchanged. The result is NFC.
func Fold(text string) string {
	t := transform.Chain(norm.NFD, runes.Remove(runes.Predicate(isLatinMark)), norm.NFC)
	s, _, err := transform.String(t, text)
	if err != nil {
		// The transformers above do not fail on any input; keep the
		// text rather than lose it if that ever changes.
		s = norm.NFC.String(text)
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch r {
		case 'đ', 'ð':
			b.WriteByte('d')
		case 'Đ', 'Ð':
			b.WriteByte('D')
		case '\u2018', '\u2019', '\u201A', '\u2032': // ‘ ’ ‚ ′
			b.WriteByte('\'')
		case '\u201C', '\u201D', '\u201E', '\u2033': // “ ” „ ″
			b.WriteByte('"')
		case '\u2013', '\u2014', '\u2212': // – — −
			b.WriteByte('-')
		case '\u2026': // …
			b.WriteString("...")
		case '\u00A0', '\u202F': // no-break spaces
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// isLatinMark reports whether r is in the Combining Diacritical Marks
// block, which holds every mark Vietnamese uses.
func isLatinMark(r rune) bool { return r >= 0x0300 && r <= 0x036F }

// EncodingFor returns GSM7 when every rune of text is in the GSM 03.38
// default alphabet or its extension table, and UCS2 otherwise. The empty
// text is GSM7. text is judged as given: pass it through Prepare first, or
// a combining mark that NFC would have absorbed forces UCS2.
func EncodingFor(text string) Encoding {
	for _, r := range text {
		if gsmSeptets(r) == 0 {
			return UCS2
		}
	}
	return GSM7
}

// Segments returns the encoding text needs, its length in that encoding's
// units, and the number of SMS segments it is billed as.
//
// GSM7: a text of at most 160 septets is one segment; a longer one is split
// into parts of at most 153 septets. An extension character (form feed and
// ^ { } \ [ ] ~ | €) counts two septets, an escape and the character, and
// the two never straddle a part boundary, so a part may carry 152.
//
// UCS2: at most 70 UTF-16 code units is one segment; a longer text is split
// into parts of at most 67 units. A rune outside the Basic Multilingual
// Plane counts two units, and its surrogate pair never straddles a part
// boundary.
//
// The empty text is GSM7 with 0 units and 1 segment, because gateways
// accept and bill an empty message as one SMS. Like EncodingFor, Segments
// counts text exactly as given and does not normalise it.
func Segments(text string) (enc Encoding, units int, segments int) {
	enc, units = walk(text, func(int, int) { segments++ })
	return enc, units, segments
}

// Split returns the encoding text needs and text cut into the parts it
// is sent as: one part when it fits a single SMS, else parts of at most
// 153 septets or 67 UTF-16 units, cut exactly where Segments counts, so
// len(parts) is always the Segments count the cost estimate shows. Each
// part is a whole number of runes, and an extension character or a
// surrogate pair is never split. The empty text is one empty part.
func Split(text string) (enc Encoding, parts []string) {
	enc, _ = walk(text, func(start, end int) { parts = append(parts, text[start:end]) })
	return enc, parts
}

// walk finds text's encoding and length, and calls part with the byte
// range of each segment in order.
func walk(text string, part func(start, end int)) (enc Encoding, units int) {
	enc = EncodingFor(text)
	single, size := gsmSingle, gsmPart
	unit := gsmSeptets
	if enc == UCS2 {
		single, size = ucs2Single, ucs2Part
		unit = utf16Units
	}
	for _, r := range text {
		units += unit(r)
	}
	if units <= single {
		part(0, len(text))
		return enc, units
	}
	// Fill parts greedily: a character that would not fit whole in the
	// current part starts the next one.
	start, used := 0, 0
	for i, r := range text {
		n := unit(r)
		if used+n > size {
			part(start, i)
			start, used = i, 0
		}
		used += n
	}
	part(start, len(text))
	return enc, units
}

// utf16Units is the number of UTF-16 code units r takes. Invalid runes
// (utf8.RuneError from a bad byte) are sent as U+FFFD, one unit.
func utf16Units(r rune) int {
	if r > 0xFFFF {
		return 2
	}
	return 1
}
