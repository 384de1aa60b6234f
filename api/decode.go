package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

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
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBytes))
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
