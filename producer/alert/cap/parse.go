package cap

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/loa-hub/loa"
)

// DefaultMaxBytes is the size limit Parse applies when Options.MaxBytes is
// not positive. Most CAP alerts are a few kilobytes, but real feeds embed
// resources (IPAWS documents carry audio and images in <derefUri>, several
// hundred kilobytes), so the limit leaves room for them.
const DefaultMaxBytes = 1 << 20

// Bounds on the shape of a document. A valid CAP alert nests about six
// levels deep (eight with an XML signature) and has a few hundred tokens.
const (
	maxDepth  = 32
	maxTokens = 100_000
)

// Options tunes Parse. The zero value is usable: default size limit, no
// expiry check, every area code accepted.
type Options struct {
	// MaxBytes is the largest document accepted; not positive means
	// DefaultMaxBytes. Parse reads at most MaxBytes+1 bytes from its
	// reader whatever the document.
	MaxBytes int64
	// Now is the time the alert is received, for refusing expired alerts
	// with ErrExpired; zero skips the check.
	Now time.Time
	// Signers, when set, are the senders whose alerts must carry a valid
	// XML signature: an alert from one of them that is unsigned, or whose
	// signature does not verify against the sender's certificates, is
	// refused with ErrSignature. Other senders' signatures are parsed past.
	Signers *Signers
	// KnownArea reports whether code is an administrative unit Loa knows;
	// a VN-ADMIN geocode it rejects is refused with ErrUnknownArea. Nil
	// accepts every code. It must be safe for concurrent use if Parse is
	// called concurrently.
	KnownArea func(code string) bool
}

// Parse reads one CAP 1.2 alert from r and validates it against the CAP
// 1.2 specification and opts.
//
// It returns the alert, or a nil alert and an error: a refusal (*loa.Error, see Refusal)
// wrapping ErrTooLarge, ErrMalformed, ErrInvalid, ErrUnknownArea or
// ErrExpired (the first fault in document order, checks of the whole alert
// such as expiry last), or an error wrapping the reader's when reading
// fails. It does not judge the alert's status: Test, Exercise and Draft
// alerts parse like Actual ones and the caller decides what to do with them.
//
// Parse never holds more than opts.MaxBytes of input; declared entities
// are never expanded because any DTD is refused. It is safe for concurrent
// use.
func Parse(r io.Reader, opts Options) (*Alert, error) {
	limit := opts.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxBytes
	}
	readLimit := limit
	if readLimit < math.MaxInt64 {
		readLimit++
	}
	data, err := io.ReadAll(io.LimitReader(r, readLimit))
	if err != nil {
		return nil, fmt.Errorf("cap: read: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, Refusal("alert", fmt.Sprintf("document is larger than %d bytes", limit), ErrTooLarge)
	}
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))

	signed, verr := scan(data)
	if verr != nil {
		return nil, verr
	}
	var raw xmlAlert
	if err := newDecoder(data).Decode(&raw); err != nil {
		// scan has seen every token already, so this is not expected.
		return nil, syntaxError("alert", err)
	}
	v := validator{knownArea: opts.KnownArea}
	a := v.alert(&raw)
	if v.err != nil {
		return nil, v.err
	}
	a.Signed = signed
	if opts.Signers.MustSign(a.Sender) {
		if !signed {
			return nil, Refusal("alert/Signature", fmt.Sprintf("alerts from %s must be signed (an enveloped XML signature)", a.Sender), ErrSignature)
		}
		if err := opts.Signers.verify(data, a.Sender); err != nil {
			return nil, Refusal("alert/Signature", "the signature does not verify: "+err.Error(), ErrSignature)
		}
	}
	if !opts.Now.IsZero() && a.Expired(opts.Now) {
		i := a.lastExpiring()
		return nil, Refusal(fmt.Sprintf("alert/info[%d]/expires", i), "alert expired at "+a.Infos[i].Expires.Format(timeLayout), ErrExpired)
	}
	return a, nil
}

func newDecoder(data []byte) *xml.Decoder {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	// CharsetReader stays nil: a document declaring anything but UTF-8 is
	// refused by the decoder.
	return d
}

// repeatable reports whether a CAP element may occur more than once in its
// parent; the paths of those elements carry an index.
func repeatable(name string) bool {
	switch name {
	case "code", "info", "category", "responseType", "eventCode", "parameter",
		"resource", "area", "polygon", "circle", "geocode":
		return true
	}
	return false
}

// scan walks every token of data once, before anything is decoded, and
// refuses what is not a single well-formed <alert> in the CAP namespace
// within the depth and token bounds, or that carries a DTD. It reports
// whether the alert carries an XML signature (a <Signature> child in the
// XML-DSig namespace).
func scan(data []byte) (signed bool, _ *loa.Error) {
	type frame struct {
		path     string
		children map[string]int // count of child elements by local name
	}
	d := newDecoder(data)
	var stack []frame
	where := func() string {
		if len(stack) == 0 {
			return "alert"
		}
		return stack[len(stack)-1].path
	}
	rooted := false
	for n := 0; ; n++ {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return false, syntaxError(where(), err)
		}
		if n == maxTokens {
			return false, malformed(where(), fmt.Sprintf("more than %d XML tokens", maxTokens))
		}
		switch t := tok.(type) {
		case xml.Directive:
			return false, malformed(where(), "document type and entity declarations (<!DOCTYPE, <!ENTITY) are not allowed")
		case xml.CharData:
			if len(stack) == 0 && len(bytes.TrimSpace(t)) > 0 {
				return false, malformed("alert", fmt.Sprintf("line %d: text outside the <alert> element", line(d)))
			}
		case xml.StartElement:
			if len(stack) == 0 {
				if rooted {
					return false, malformed("alert", fmt.Sprintf("line %d: element <%s> after </alert>", line(d), t.Name.Local))
				}
				rooted = true
				if t.Name.Local != "alert" {
					return false, invalid("alert", fmt.Sprintf("root element is <%s>, want <alert>", t.Name.Local))
				}
				if t.Name.Space != Namespace {
					return false, invalid("alert", fmt.Sprintf("namespace is %q, want %q", t.Name.Space, Namespace))
				}
				stack = append(stack, frame{path: "alert"})
				continue
			}
			if len(stack) >= maxDepth {
				return false, malformed(where(), fmt.Sprintf("elements nested deeper than %d levels", maxDepth))
			}
			if len(stack) == 1 && t.Name.Local == "Signature" && t.Name.Space == NamespaceDSig {
				signed = true
			}
			parent := &stack[len(stack)-1]
			if parent.children == nil {
				parent.children = map[string]int{}
			}
			name := t.Name.Local
			k := parent.children[name]
			parent.children[name]++
			path := parent.path + "/" + name
			if repeatable(name) {
				path = fmt.Sprintf("%s[%d]", path, k)
			} else if k > 0 && t.Name.Space == Namespace {
				return false, invalid(path, "appears more than once")
			}
			stack = append(stack, frame{path: path})
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		}
	}
	if !rooted {
		return false, malformed("alert", "no <alert> element")
	}
	return signed, nil
}

// line returns the decoder's current line, for locating errors.
func line(d *xml.Decoder) int {
	l, _ := d.InputPos()
	return l
}

func syntaxError(where string, err error) *loa.Error {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return malformed(where, fmt.Sprintf("line %d: %s", se.Line, se.Msg))
	}
	return malformed(where, err.Error())
}

func malformed(where, reason string) *loa.Error {
	return Refusal(where, reason, ErrMalformed)
}

func invalid(where, reason string) *loa.Error {
	return Refusal(where, reason, ErrInvalid)
}
