package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/loa-hub/loa"
)

// decodeJSON reads the request body as one JSON object into v, refusing
// unknown fields, trailing data, a wrong content type and bodies over
// maxBytes, each with a problem that says what was wrong.
func decodeJSON(w http.ResponseWriter, r *http.Request, maxBytes int64, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		// curl -d sends application/x-www-form-urlencoded unless told
		// otherwise; its body is still read as JSON, so a mistake in it gets
		// the JSON error that names what is wrong rather than a 415.
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json") && mt != "application/x-www-form-urlencoded") {
			return &loa.Error{Code: codeMediaType, Detail: fmt.Sprintf("Content-Type %q is not JSON; send application/json", ct)}
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBytes))
	if err != nil {
		return bodyError(err, maxBytes)
	}
	if err := checkJSONText(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, maxBytes)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		if cut(err) {
			return bodyError(err, maxBytes)
		}
		return &loa.Error{Code: loa.EMalformed, Detail: "the body must hold exactly one JSON object; found data after it"}
	}
	return nil
}

// bodyError is the error for a body http.MaxBytesReader cut at maxBytes;
// other errors pass unchanged.
func bodyError(err error, maxBytes int64) error {
	if cut(err) {
		return loa.Errorf(loa.ETooLarge, "the request body is over the limit of %d bytes", maxBytes)
	}
	return err
}

// cut reports whether err is http.MaxBytesReader's refusal.
func cut(err error) bool {
	_, ok := errors.AsType[*http.MaxBytesError](err)
	return ok
}

// jsonError says what is wrong with a JSON body the decoder refused.
func jsonError(err error, maxBytes int64) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case cut(err):
		return bodyError(err, maxBytes)
	case errors.As(err, &syn):
		return &loa.Error{Code: loa.EMalformed, Detail: fmt.Sprintf("malformed JSON at byte %d: %v", syn.Offset, syn)}
	case errors.Is(err, io.EOF):
		return &loa.Error{Code: loa.EMalformed, Detail: "the request body is empty"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &loa.Error{Code: loa.EMalformed, Detail: "the JSON body ends too early"}
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "(body)"
		}
		return loa.InvalidFields(loa.FieldError{Field: field, Detail: fmt.Sprintf("must be %s, not %s", jsonKind(typ.Type.Kind().String()), typ.Value)})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return loa.InvalidFields(loa.FieldError{Field: name, Detail: "unknown field"})
	}
	return &loa.Error{Code: loa.EMalformed, Detail: err.Error()}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "int", "int64", "int32", "float64":
		return "a number"
	case "bool":
		return "true or false"
	case "slice":
		return "an array"
	case "map", "struct", "ptr":
		return "an object"
	}
	return goKind
}

// maxJSONDepth bounds how deep objects and arrays of a body checked by
// checkJSONText may nest; Loa's documents nest a few levels.
const maxJSONDepth = 64

// checkJSONText refuses, naming the field, any string of a JSON document
// — a value or a field name — that is not valid UTF-8, that holds NUL
// (U+0000), or that holds an escape encoding/json would silently replace
// with U+FFFD (a lone surrogate such as "\ud800"). Nothing a caller sent
// is ever changed on the way in. A document that is not JSON is left to
// the decoder's own error.
//
// A document nested deeper than maxJSONDepth is refused as malformed,
// whatever its text: the walk keeps a frame per level and names the
// field by its path, the decoders that follow recurse per level, and no
// Loa document nests more than a few levels, so depth must not be the
// sender's to choose.
func checkJSONText(body []byte) error {
	// Raw NUL bytes are not JSON at all; NUL and surrogates reach a string
	// only through a \u escape. Such a body is only measured for depth.
	if utf8.Valid(body) && !bytes.Contains(body, []byte(`\u`)) {
		if jsonDepth(body) > maxJSONDepth {
			return tooDeep()
		}
		return nil
	}
	type frame struct {
		object    bool
		key       string
		index     int
		expectKey bool
	}
	var stack []frame
	path := func() string {
		var b strings.Builder
		for _, f := range stack {
			switch {
			case f.object && f.key != "":
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(f.key)
			case !f.object:
				b.WriteString("[" + strconv.Itoa(f.index) + "]")
			}
		}
		if b.Len() == 0 {
			return "(body)"
		}
		return b.String()
	}
	// advance moves the innermost container past the value just read.
	advance := func() {
		if n := len(stack); n > 0 {
			if stack[n-1].object {
				stack[n-1].expectKey = true
			} else {
				stack[n-1].index++
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	start := int64(0)
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // the end, or not JSON: the decoder says what is wrong
		}
		end := dec.InputOffset()
		raw := body[start:end]
		start = end
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if len(stack) >= maxJSONDepth {
					return tooDeep()
				}
				stack = append(stack, frame{object: t == '{', expectKey: t == '{'})
			default:
				stack = stack[:len(stack)-1]
				advance()
			}
		case string:
			isKey := len(stack) > 0 && stack[len(stack)-1].object && stack[len(stack)-1].expectKey
			if detail := textProblem(t, raw); detail != "" {
				if isKey {
					stack[len(stack)-1].key = "" // the object's path, not its last field's

					return loa.Invalid(path(), "a field name %s", detail)
				}
				return loa.Invalid(path(), "%s", detail)
			}
			if isKey {
				stack[len(stack)-1].key, stack[len(stack)-1].expectKey = t, false
				continue
			}
			advance()
		default:
			advance()
		}
	}
}

// tooDeep refuses a body nested deeper than maxJSONDepth.
func tooDeep() error {
	return loa.Errorf(loa.EMalformed, "the body nests objects and arrays deeper than %d levels", maxJSONDepth)
}

// jsonDepth returns how deep the objects and arrays of body nest, outside
// its strings, or a number over maxJSONDepth as soon as it is. A body
// with fewer than maxJSONDepth+1 brackets in all cannot be too deep, and
// bytes.Count answers that at memory speed; only a body with more is
// walked byte by byte. Malformed text is measured as it comes: the
// decoder says what else is wrong with it.
func jsonDepth(body []byte) int {
	if bytes.Count(body, []byte{'{'})+bytes.Count(body, []byte{'['}) <= maxJSONDepth {
		return 0
	}
	depth, inString, escaped := 0, false, false
	for _, c := range body {
		switch {
		case escaped:
			escaped = false
		case inString:
			switch c {
			case '\\':
				escaped = true
			case '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			if depth++; depth > maxJSONDepth {
				return depth
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return depth
}

// textProblem says what is wrong with the string s decoded from raw (its
// JSON text), or "".
func textProblem(s string, raw []byte) string {
	switch {
	case !utf8.Valid(raw):
		return "is not valid UTF-8; send text in UTF-8"
	case strings.ContainsRune(s, 0):
		return "must not contain the NUL character (U+0000)"
	case strings.Count(s, "\uFFFD") > bytes.Count(raw, []byte("\uFFFD"))+countFold(raw, `\ufffd`):
		return "holds an escape that is not a character (a lone UTF-16 surrogate)"
	}
	return ""
}

func countFold(b []byte, sub string) int {
	return bytes.Count(bytes.ToLower(b), []byte(sub))
}

// checkText refuses a text field that is not valid UTF-8 or holds NUL,
// for input that is not JSON (a CSV cell, a query parameter).
func checkText(field, s string) *loa.FieldError {
	switch {
	case !utf8.ValidString(s):
		return &loa.FieldError{Field: field, Detail: "is not valid UTF-8; send text in UTF-8"}
	case strings.ContainsRune(s, 0):
		return &loa.FieldError{Field: field, Detail: "must not contain the NUL character (U+0000)"}
	}
	return nil
}
