package sms

import "unicode/utf16"

// gsmDefault is the GSM 03.38 default alphabet in code order: the rune
// at index i has code i. Index 0x1B is the escape to the extension table,
// not a character.
var gsmDefault = [128]rune{
	'@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å',
	'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', 0x1B, 'Æ', 'æ', 'ß', 'É',
	' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/',
	'0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?',
	'¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O',
	'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§',
	'¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
	'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à',
}

// gsmExtension maps the characters of the extension table to their code
// after the escape.
var gsmExtension = map[rune]byte{
	'\f': 0x0A, '^': 0x14, '{': 0x28, '}': 0x29, '\\': 0x2F, '[': 0x3C, '~': 0x3D, ']': 0x3E, '|': 0x40, '€': 0x65,
}

// gsmCode maps every default-alphabet character to its code. It is built
// once from gsmDefault and never changed.
var gsmCode = func() map[rune]byte {
	m := make(map[rune]byte, 127)
	for i, r := range gsmDefault {
		if i != 0x1B {
			m[r] = byte(i)
		}
	}
	return m
}()

// gsmSeptets is the number of septets r takes in GSM 03.38: 1 for the
// default alphabet, 2 for the extension table (escape + code), 0 when r
// cannot be sent in GSM-7 at all.
func gsmSeptets(r rune) int {
	if _, ok := gsmCode[r]; ok {
		return 1
	}
	if _, ok := gsmExtension[r]; ok {
		return 2
	}
	return 0
}

// EncodeGSM7 returns text in the GSM 03.38 default alphabet, one septet
// an octet (unpacked, as SMPP's data_coding 0 carries it), extension
// characters as the escape 0x1B and their code. ok is false, and the
// result nil, when a rune of text is in neither table: EncodingFor(text)
// is then UCS2.
func EncodeGSM7(text string) (septets []byte, ok bool) {
	out := make([]byte, 0, len(text))
	for _, r := range text {
		if c, ok := gsmCode[r]; ok {
			out = append(out, c)
			continue
		}
		if c, ok := gsmExtension[r]; ok {
			out = append(out, 0x1B, c)
			continue
		}
		return nil, false
	}
	return out, true
}

// DecodeGSM7 turns unpacked GSM 03.38 septets back into text. An escape
// followed by a code the extension table lacks decodes, as GSM 03.38
// asks, as the default-alphabet character of that code; a trailing escape
// is dropped.
func DecodeGSM7(septets []byte) string {
	out := make([]rune, 0, len(septets))
	for i := 0; i < len(septets); i++ {
		c := septets[i] & 0x7F
		if c == 0x1B {
			if i+1 == len(septets) {
				break
			}
			i++
			e := septets[i] & 0x7F
			r := gsmDefault[e]
			for k, v := range gsmExtension {
				if v == e {
					r = k
					break
				}
			}
			out = append(out, r)
			continue
		}
		out = append(out, gsmDefault[c])
	}
	return string(out)
}

// EncodeUCS2 returns text as big-endian UTF-16, which is what SMSCs and
// handsets take as UCS-2 (data_coding 8): runes outside the Basic
// Multilingual Plane travel as surrogate pairs.
func EncodeUCS2(text string) []byte {
	u := utf16.Encode([]rune(text))
	out := make([]byte, 0, 2*len(u))
	for _, c := range u {
		out = append(out, byte(c>>8), byte(c))
	}
	return out
}

// DecodeUCS2 is EncodeUCS2's inverse; an odd trailing octet is dropped.
func DecodeUCS2(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		u = append(u, uint16(b[i])<<8|uint16(b[i+1]))
	}
	return string(utf16.Decode(u))
}
