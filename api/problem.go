package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/loa-hub/loa"
)

// Problem is an RFC 9457 problem detail, the wire form of a *loa.Error.
// Type is stable and may be matched by clients; Title and Detail are for
// people.
type Problem struct {
	Type     string           `json:"type"`
	Title    string           `json:"title"`
	Status   int              `json:"status"`
	Detail   string           `json:"detail,omitempty"`
	Instance string           `json:"instance,omitempty"`
	Field    string           `json:"field,omitempty"`  // the (first) field that was wrong
	Errors   []loa.FieldError `json:"errors,omitempty"` // every field that was wrong
	// RetryAfter, in seconds, is sent as a Retry-After header too.
	RetryAfter int `json:"retry_after,omitempty"`
}

// Codes of errors only HTTP has.
const (
	codeMediaType = "unsupported-media-type"
	codeMethod    = "method-not-allowed"
)

// problemTypePrefix + an error's code is its problem type.
const problemTypePrefix = "urn:loa:problem:"

// problems is the one table from an error's code to its HTTP status and
// its problem type's title. A code missing here is answered as internal.
var problems = map[string]struct {
	status int
	title  string
}{
	loa.EInvalid:             {http.StatusBadRequest, "Invalid request"},
	loa.EMalformed:           {http.StatusBadRequest, "Malformed request body"},
	loa.ETooLarge:            {http.StatusRequestEntityTooLarge, "Request body too large"},
	codeMediaType:            {http.StatusUnsupportedMediaType, "Unsupported media type"},
	codeMethod:               {http.StatusMethodNotAllowed, "Method not allowed"},
	loa.EUnauthorized:        {http.StatusUnauthorized, "Unauthorized"},
	loa.EBadCredentials:      {http.StatusUnauthorized, "Sign-in failed"},
	loa.EFactorRequired:      {http.StatusUnauthorized, "Second factor required"},
	loa.EFactorRejected:      {http.StatusUnauthorized, "Second factor rejected"},
	loa.EForbidden:           {http.StatusForbidden, "Forbidden"},
	loa.EFourEyes:            {http.StatusForbidden, "Four eyes"},
	loa.EPasswordExpired:     {http.StatusForbidden, "Password expired"},
	loa.EAccountPending:      {http.StatusForbidden, "Account not verified"},
	loa.ENotFound:            {http.StatusNotFound, "Not found"},
	loa.EConflict:            {http.StatusConflict, "Conflict"},
	loa.EIdempotencyConflict: {http.StatusConflict, "Idempotency key or identifier reused"},
	loa.EBroadcastState:      {http.StatusConflict, "Not allowed in this state"},
	loa.EAlertState:          {http.StatusConflict, "Not allowed in this state"},
	loa.EAlreadyReplayed:     {http.StatusConflict, "Already replayed"},
	loa.ENotReplayable:       {http.StatusConflict, "Not replayable"},
	loa.ECodeRejected:        {http.StatusUnprocessableEntity, "Code rejected"},
	loa.ERateLimited:         {http.StatusTooManyRequests, "Too many requests"},
	loa.ELocked:              {http.StatusTooManyRequests, "Locked"},
	loa.EUnavailable:         {http.StatusServiceUnavailable, "Service unavailable"},
	loa.EInternal:            {http.StatusInternalServerError, "Internal error"},
}

// problemOf turns an error into the problem sent for it: a *loa.Error in
// err's chain by its code, anything else as an internal error whose
// detail stays in the log.
func problemOf(err error) *Problem {
	if _, ok := errors.AsType[*loa.Error](err); !ok && unreachable(err) {
		err = loa.Unavailable("a service Loa depends on did not answer; retry").Wrap(err)
	}
	e, ok := errors.AsType[*loa.Error](err)
	kind, known := problems[loa.ErrorCode(err)]
	if !ok || !known || kind.status >= 500 && e.Code != loa.EUnavailable {
		return &Problem{Type: problemTypePrefix + loa.EInternal, Title: "Internal error", Status: http.StatusInternalServerError,
			Detail: "the request could not be completed; it has been logged"}
	}
	p := &Problem{Type: problemTypePrefix + e.Code, Title: kind.title, Status: kind.status,
		Detail: e.Detail, Field: e.Field, Errors: e.Fields}
	if e.RetryAfter > 0 {
		p.RetryAfter = retryAfterSeconds(e.RetryAfter)
	}
	return p
}

// unreachable reports whether err says that a server Loa calls
// (PostgreSQL, Redis, Kafka) could not be reached or dropped the
// connection: the request may succeed a moment later, on a restarted or
// promoted server, so the caller gets 503 with Retry-After, not a 500.
func unreachable(err error) bool {
	if _, ok := errors.AsType[*net.OpError](err); ok {
		return true
	}
	// A connection that ended in the middle of an answer (a server killed
	// or shut down under it) surfaces as an unexpected EOF.
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	// PostgreSQL's own word that it cannot serve now: a connection
	// exception (class 08), or a server starting up, shutting down or
	// recovering from a crash (57P01–57P03).
	if se, ok := errors.AsType[interface {
		error
		SQLState() string
	}](err); ok {
		st := se.SQLState()
		return strings.HasPrefix(st, "08") || st == "57P01" || st == "57P02" || st == "57P03"
	}
	return false
}

// retryAfterSeconds is d in whole seconds for a Retry-After header,
// rounded up: "retry after 0" would invite an immediate retry.
func retryAfterSeconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}

// writeError turns any error into a problem+json response, logging 5xx at
// Error and 4xx at Warn. Anyone can make refusals (a made-up key, a path
// that is no route, a throttled sign-in) as fast as they can send, so
// they are counted (Deps.Refusals) and only a sample is logged: at most
// refusalLines a second a process, the next line logged saying how many
// were not (unlogged_before). The texts a caller chose (the path, an
// error that repeats it) are cut to maxLogText bytes in every line.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	p := problemOf(err)
	p.Instance = r.URL.Path
	attrs := []any{slog.String("method", r.Method), slog.String("path", logText(r.URL.Path)), slog.Int("status", p.Status),
		slog.String("error", logText(err.Error()))}
	if cause := errors.Unwrap(err); cause != nil {
		attrs = append(attrs, slog.String("cause", logText(cause.Error())))
	}
	if p.Status >= 500 {
		h.log.Error("request failed", attrs...)
	} else {
		if h.deps.Refusals != nil {
			h.deps.Refusals.HTTPRefused(p.Status)
		}
		if ok, unlogged := h.refusals.take(h.now()); ok {
			if unlogged > 0 {
				attrs = append(attrs, slog.Int64("unlogged_before", unlogged))
			}
			h.log.Warn("request refused", attrs...)
		}
	}
	writeProblem(w, p)
}

// refusalLines is how many refusals a process logs a second.
const refusalLines = 20

// refusalLog samples the refusals that are logged: refusalLines a
// second, counting the others. Its zero value is ready; safe for
// concurrent use.
type refusalLog struct {
	mu       sync.Mutex
	second   int64
	lines    int
	unlogged int64
}

// take reports whether a refusal at now is logged, and then how many
// were not since the last one that was.
func (l *refusalLog) take(now time.Time) (bool, int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := now.Unix(); s != l.second {
		l.second, l.lines = s, 0
	}
	if l.lines >= refusalLines {
		l.unlogged++
		return false, 0
	}
	l.lines++
	n := l.unlogged
	l.unlogged = 0
	return true, n
}

// maxLogText bounds each text of a log line that a caller chose.
const maxLogText = 256

// logText cuts s to maxLogText bytes (on a rune boundary), marking the
// cut with its length.
func logText(s string) string {
	if len(s) <= maxLogText {
		return s
	}
	cut := maxLogText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s…(%d bytes)", s[:cut], len(s))
}

// writeProblem writes p, with its Retry-After, and logs nothing: for
// refusals counted by a metric instead, which a flood would otherwise
// turn into as many log lines.
func writeProblem(w http.ResponseWriter, p *Problem) {
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
