package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
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
			return &Problem{Type: typeMediaType, Title: "Unsupported media type", Status: http.StatusUnsupportedMediaType,
				Detail: fmt.Sprintf("Content-Type %q is not JSON; send application/json", ct)}
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonProblem(err, maxBytes)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return jsonProblem(err, maxBytes)
		}
		return &Problem{Type: typeMalformed, Title: "Malformed JSON", Status: http.StatusBadRequest,
			Detail: "the body must hold exactly one JSON object; found data after it"}
	}
	return nil
}

func jsonProblem(err error, maxBytes int64) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &mbe):
		return &Problem{Type: typeTooLarge, Title: "Request body too large", Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("the request body is over the limit of %d bytes", maxBytes)}
	case errors.As(err, &syn):
		return &Problem{Type: typeMalformed, Title: "Malformed JSON", Status: http.StatusBadRequest,
			Detail: fmt.Sprintf("malformed JSON at byte %d: %v", syn.Offset, syn)}
	case errors.Is(err, io.EOF):
		return &Problem{Type: typeMalformed, Title: "Malformed JSON", Status: http.StatusBadRequest, Detail: "the request body is empty"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &Problem{Type: typeMalformed, Title: "Malformed JSON", Status: http.StatusBadRequest, Detail: "the JSON body ends too early"}
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "(body)"
		}
		return invalid(FieldError{Field: field, Detail: fmt.Sprintf("must be %s, not %s", jsonKind(typ.Type.Kind().String()), typ.Value)})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return invalid(FieldError{Field: name, Detail: "unknown field"})
	}
	return &Problem{Type: typeMalformed, Title: "Malformed JSON", Status: http.StatusBadRequest, Detail: err.Error()}
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
