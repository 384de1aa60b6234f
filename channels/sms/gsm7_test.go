package sms

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEncodeGSM7(t *testing.T) {
	got, ok := EncodeGSM7("@Ma xac thuc: 123456 €[x]")
	want := append([]byte{0x00}, []byte("Ma xac thuc: 123456 ")...)
	want = append(want, 0x1B, 0x65, 0x1B, 0x3C, 'x', 0x1B, 0x3E)
	if !ok || !bytes.Equal(got, want) {
		t.Fatalf("EncodeGSM7 = %x %v, want %x", got, ok, want)
	}
	if s := DecodeGSM7(got); s != "@Ma xac thuc: 123456 €[x]" {
		t.Errorf("DecodeGSM7 = %q", s)
	}
	if _, ok := EncodeGSM7("Thông báo"); ok {
		t.Error("Vietnamese with diacritics encoded as GSM-7")
	}
	// Every character of both tables round-trips, and its septet count
	// agrees with what Segments bills.
	for i, r := range gsmDefault {
		if i == 0x1B {
			continue
		}
		b, ok := EncodeGSM7(string(r))
		if !ok || len(b) != 1 || b[0] != byte(i) || gsmSeptets(r) != 1 || DecodeGSM7(b) != string(r) {
			t.Errorf("%q: %x %v", r, b, ok)
		}
	}
	for r := range gsmExtension {
		b, ok := EncodeGSM7(string(r))
		if !ok || len(b) != 2 || gsmSeptets(r) != 2 || DecodeGSM7(b) != string(r) {
			t.Errorf("%q: %x %v", r, b, ok)
		}
	}
}

func TestUCS2RoundTrip(t *testing.T) {
	for _, s := range []string{"Thông báo lũ", "Cảnh báo 🌊 khẩn", ""} {
		b := EncodeUCS2(s)
		if DecodeUCS2(b) != s {
			t.Errorf("%q → %x → %q", s, b, DecodeUCS2(b))
		}
	}
	if got := EncodeUCS2("Đ🌊"); !bytes.Equal(got, []byte{0x01, 0x10, 0xD8, 0x3C, 0xDF, 0x0A}) {
		t.Errorf("EncodeUCS2 = %x", got)
	}
}

func TestSplitAgreesWithSegments(t *testing.T) {
	texts := []string{
		"", "short", strings.Repeat("a", 160), strings.Repeat("a", 161), strings.Repeat("a", 306), strings.Repeat("a", 307),
		strings.Repeat("a", 152) + "€" + "tail", // the escape pair moves whole to the next part
		strings.Repeat("ệ", 70), strings.Repeat("ệ", 71), strings.Repeat("ệ", 201), strings.Repeat("ệ", 202),
		strings.Repeat("x", 66) + "🌊" + "y", // the surrogate pair is not split
		strings.Repeat("Lũ khẩn cấp trên sông Thu Bồn, mực nước tại Hội An 3,2 m. ", 4),
	}
	for _, s := range texts {
		enc, units, segs := Segments(s)
		enc2, parts := Split(s)
		if enc2 != enc || len(parts) != segs || strings.Join(parts, "") != s {
			t.Errorf("%.20q…: Split %v %d parts, Segments %v %d", s, enc2, len(parts), enc, segs)
			continue
		}
		limit, single := gsmPart, gsmSingle
		size := gsmSeptets
		if enc == UCS2 {
			limit, single, size = ucs2Part, ucs2Single, utf16Units
		}
		if segs == 1 {
			limit = single
		}
		total := 0
		for _, p := range parts {
			if !utf8.ValidString(p) {
				t.Errorf("part %q is not whole runes", p)
			}
			n := 0
			for _, r := range p {
				n += size(r)
			}
			if n > limit {
				t.Errorf("%.20q…: a part of %d units, limit %d", s, n, limit)
			}
			total += n
		}
		if total != units {
			t.Errorf("parts hold %d units, Segments counts %d", total, units)
		}
	}
}
