package cap

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"hash"
	"strings"
)

// singleLine normalises the whitespace of a one-line field (a headline, an
// event, an area description): runs of spaces, tabs and line breaks, which
// XML indentation and line wrapping put there, become one space.
func singleLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// multiLine normalises the whitespace of a text field (a description, an
// instruction) without losing its structure: each line is trimmed and its
// runs of spaces become one, so XML indentation never reaches a phone;
// line breaks stay, and blank lines between paragraphs collapse to one.
func multiLine(s string) string {
	var b strings.Builder
	blank := false
	for line := range strings.SplitSeq(s, "\n") {
		line = singleLine(line)
		if line == "" {
			blank = b.Len() > 0
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
			if blank {
				b.WriteByte('\n')
			}
		}
		blank = false
		b.WriteString(line)
	}
	return b.String()
}

// embedded reads the content of a <derefUri> without keeping it: the
// base64 text is decoded as it streams past, counted and hashed. The
// decoder hands over text in its own buffer, so the content is never
// copied into a string.
type embedded struct {
	n    int64 // decoded bytes
	sum  []byte
	err  error
	h    hash.Hash
	quad [4]byte // base64 characters not yet decoded
	q    int
	out  [3]byte
	done bool // padding seen: nothing may follow
}

// UnmarshalXML implements xml.Unmarshaler.
func (e *embedded) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	e.h = sha1.New()
	for {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.CharData:
			e.feed(t)
		case xml.StartElement:
			if err := d.Skip(); err != nil {
				return err
			}
		case xml.EndElement:
			if e.q != 0 && e.err == nil {
				e.err = errors.New("the content stops in the middle of a base64 group")
			}
			e.sum = e.h.Sum(nil)
			e.h = nil
			return nil
		}
	}
}

func (e *embedded) feed(p []byte) {
	for _, c := range p {
		if e.err != nil {
			return
		}
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		if e.done {
			e.err = errors.New("characters after the padding")
			return
		}
		e.quad[e.q] = c
		e.q++
		if e.q < 4 {
			continue
		}
		e.q = 0
		n, err := base64.StdEncoding.Decode(e.out[:], e.quad[:])
		if err != nil {
			e.err = err
			return
		}
		e.h.Write(e.out[:n])
		e.n += int64(n)
		e.done = n < 3
	}
}
