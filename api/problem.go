package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
)

// Problem is an RFC 9457 problem detail. Type is stable and may be
// matched by clients; Title and Detail are for people.
type Problem struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Field    string       `json:"field,omitempty"`  // the (first) field that was wrong
	Errors   []FieldError `json:"errors,omitempty"` // every field that was wrong
	// RetryAfter, in seconds, is sent as a Retry-After header too.
	RetryAfter int `json:"retry_after,omitempty"`
}

// FieldError says what is wrong with one field of a request.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

func (p *Problem) Error() string {
	if p.Field != "" {
		return fmt.Sprintf("%s: %s", p.Field, p.Detail)
	}
	return p.Detail
}

// Problem types.
const (
	typeInvalid      = "urn:loa:problem:invalid-field"
	typeMalformed    = "urn:loa:problem:malformed-json"
	typeTooLarge     = "urn:loa:problem:body-too-large"
	typeMediaType    = "urn:loa:problem:unsupported-media-type"
	typeUnauthorized = "urn:loa:problem:unauthorized"
	typeForbidden    = "urn:loa:problem:forbidden"
	typeNotFound     = "urn:loa:problem:not-found"
	typeMethod       = "urn:loa:problem:method-not-allowed"
	typeConflict     = "urn:loa:problem:idempotency-conflict"
	typeUnavailable  = "urn:loa:problem:unavailable"
	typeInternal     = "urn:loa:problem:internal"
)

// invalid returns a 400 problem listing field errors; the first names the
// problem's field.
func invalid(errs ...FieldError) *Problem {
	p := &Problem{Type: typeInvalid, Title: "Invalid request", Status: http.StatusBadRequest, Errors: errs}
	if len(errs) > 0 {
		p.Field, p.Detail = errs[0].Field, errs[0].Detail
		if len(errs) > 1 {
			p.Detail = fmt.Sprintf("%s (and %d more)", p.Detail, len(errs)-1)
		}
	}
	return p
}

func notFound(what string) *Problem {
	return &Problem{Type: typeNotFound, Title: "Not found", Status: http.StatusNotFound, Detail: what + " not found"}
}

func unavailable(detail string) *Problem {
	return &Problem{Type: typeUnavailable, Title: "Service unavailable", Status: http.StatusServiceUnavailable, Detail: detail, RetryAfter: 1}
}

// writeError turns any error into a problem+json response, logging 5xx at
// Error and 4xx at Warn.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var p *Problem
	if !errors.As(err, &p) {
		p = &Problem{Type: typeInternal, Title: "Internal error", Status: http.StatusInternalServerError,
			Detail: "the request could not be completed; it has been logged"}
	}
	p.Instance = r.URL.Path
	attrs := []any{slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", p.Status), slog.Any("error", err)}
	if p.Status >= 500 {
		h.log.Error("request failed", attrs...)
	} else {
		h.log.Warn("request refused", attrs...)
	}
	if p.RetryAfter > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(p.RetryAfter))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
