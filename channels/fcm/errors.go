package fcm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"
	"golang.org/x/oauth2"

	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/internal/metrics"
)

type callKey struct{}

// call records what the transport saw during one Send. It is the call's
// context as well: the context Send gives the SDK, which carries it to
// the transports (see Value), so a send makes no context of its own for
// the record.
type call struct {
	context.Context // the call's, bounded by CallTimeout
	// cancel ends the call. The observer calls it when FCM answered in a
	// way the SDK would retry (503, network error): the SDK's back-off
	// would hold a worker for up to CallTimeout, while the dispatcher's
	// retry tiers hold nothing.
	cancel context.CancelFunc
	left   bool             // the observer ended the call to leave the retry to Loa
	rank   channels.Rank    // admission order of the push's lane
	wait   metrics.Observer // the push's wait for a stream; nil for none
	// head, when set, is the encoded head of the push's shape: the SDK
	// was given only the token, and the observer sends head + the SDK's
	// encoding of the token. learn, when set instead, is the shape whose
	// head the observer learns from this push's request.
	head  []byte
	learn *shape
	token string // the push's token, to learn from

	mu        sync.Mutex
	requested bool // a request reached the transport
	status    int
	header    http.Header
	body      []byte
	netErr    error
}

// Value returns the call itself for callKey, and otherwise the call's
// context's value.
func (c *call) Value(key any) any {
	if key == (callKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// observer is the outermost transport of the SDK's HTTP client. It lets
// Send see the raw answer, and stops the SDK's internal retry of 503s and
// network errors by cancelling the call. With credentials, auth puts the
// access token on each request, in the same copy of it when the observer
// makes one (see withHead).
type observer struct {
	base http.RoundTripper
	auth *bearer // nil without credentials
}

func (o observer) next() http.RoundTripper {
	if o.auth != nil {
		return o.auth
	}
	return o.base
}

func (o observer) RoundTrip(req *http.Request) (*http.Response, error) {
	c, _ := req.Context().Value(callKey{}).(*call)
	if c == nil {
		return o.next().RoundTrip(req)
	}
	var (
		resp *http.Response
		err  error
	)
	switch {
	case c.head != nil:
		var auth []string
		if o.auth != nil {
			auth, err = o.auth.header()
		}
		var r *http.Request
		if err == nil {
			r, err = withHead(req, c.head, auth)
		} else if req.Body != nil {
			req.Body.Close() // a RoundTripper closes the body, even on error
		}
		if err == nil {
			req = r
			resp, err = o.base.RoundTrip(req)
		}
	case c.learn != nil:
		learnHead(c.learn, c.token, req)
		fallthrough
	default:
		resp, err = o.next().RoundTrip(req)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requested = true
	leave := func() {
		// Unless the call already timed out: that is what it then was.
		c.left = req.Context().Err() == nil
		c.cancel()
	}
	switch {
	case err != nil:
		c.netErr = err
		leave()
	case resp.StatusCode == http.StatusServiceUnavailable:
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if rerr != nil {
			c.netErr = rerr
			leave()
			return nil, rerr
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		c.status, c.header, c.body = resp.StatusCode, resp.Header, body
		leave()
	}
	return resp, err
}

// failure is an FCM error answer reduced to what classification needs.
type failure struct {
	status     int    // HTTP status
	rpc        string // google.rpc status name, e.g. "NOT_FOUND"
	code       string // FcmError errorCode, e.g. "UNREGISTERED"; "" when none
	badToken   bool   // the answer blames message.token
	retryAfter time.Duration
	message    string
}

// v1Error is FCM v1's error body.
type v1Error struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []struct {
			Type            string `json:"@type"`
			ErrorCode       string `json:"errorCode"`
			FieldViolations []struct {
				Field string `json:"field"`
			} `json:"fieldViolations"`
		} `json:"details"`
	} `json:"error"`
}

// parseFailure reads an error answer. The body may be empty or not JSON
// (a proxy's 502 page); status alone then decides.
func parseFailure(status int, header http.Header, body []byte, now time.Time) failure {
	f := failure{status: status, retryAfter: channels.ParseRetryAfter(header.Get("Retry-After"), now)}
	var e v1Error
	if json.Unmarshal(body, &e) == nil {
		f.rpc, f.message = e.Error.Status, e.Error.Message
		for _, d := range e.Error.Details {
			switch d.Type {
			case "type.googleapis.com/google.firebase.fcm.v1.FcmError":
				f.code = d.ErrorCode
			case "type.googleapis.com/google.rpc.BadRequest":
				for _, v := range d.FieldViolations {
					if v.Field == "message.token" {
						f.badToken = true
					}
				}
			}
		}
	}
	if f.message == "" {
		f.message = http.StatusText(status)
	}
	if strings.Contains(strings.ToLower(f.message), "registration token") {
		f.badToken = true
	}
	return f
}

// sdkCode returns the FcmError code the SDK found in err, using the SDK's
// own predicates so Loa follows its reading of the error body.
func sdkCode(err error) string {
	for _, p := range []struct {
		is   func(error) bool
		code string
	}{
		{messaging.IsUnregistered, "UNREGISTERED"},
		{messaging.IsInvalidArgument, "INVALID_ARGUMENT"},
		{messaging.IsQuotaExceeded, "QUOTA_EXCEEDED"},
		{messaging.IsSenderIDMismatch, "SENDER_ID_MISMATCH"},
		{messaging.IsThirdPartyAuthError, "THIRD_PARTY_AUTH_ERROR"},
		{messaging.IsUnavailable, "UNAVAILABLE"},
		{messaging.IsInternal, "INTERNAL"},
	} {
		if p.is(err) {
			return p.code
		}
	}
	return ""
}

// classify turns a failed SDK call into a *channels.Error. ctx is the
// caller's context, callCtx the one the SDK ran under.
func (c *Client) classify(ctx, callCtx context.Context, rec *call, err error, token bool) error {
	rec.mu.Lock()
	requested, status, header, body, netErr, left := rec.requested, rec.status, rec.header, rec.body, rec.netErr, rec.left
	rec.mu.Unlock()

	transient := func(code string, cause error) error {
		return &channels.Error{Class: channels.Transient, Provider: c.provider, Code: code, Err: fmt.Errorf("fcm: send: %w", cause)}
	}
	switch {
	case errors.Is(netErr, errUnexpectedBody):
		return transient("encoding", netErr)
	case errors.Is(netErr, channels.ErrNotAttempted):
		// Gave up waiting for a stream: FCM never saw it.
		return transient("stream_wait", netErr)
	case ctx.Err() != nil:
		return transient("cancelled", context.Cause(ctx))
	case left:
		if status != 0 {
			return c.fromFailure(parseFailure(status, header, body, c.now()), token)
		}
		var re *oauth2.RetrieveError
		if errors.As(netErr, &re) && re.Response != nil && re.Response.StatusCode >= 400 && re.Response.StatusCode < 500 {
			// The token endpoint refused the service account.
			return &channels.Error{Class: channels.Permanent, Provider: c.provider, Code: "AUTH", Err: fmt.Errorf("fcm: credentials: %w", netErr)}
		}
		if channels.DialFailed(netErr) {
			return transient("network", channels.Refused(netErr)) // no connection: FCM does not have it
		}
		return transient("network", netErr)
	case errors.Is(callCtx.Err(), context.DeadlineExceeded):
		return transient("timeout", fmt.Errorf("no answer within %s: %w", c.timeout, err))
	}
	if resp := errorutils.HTTPResponse(err); resp != nil {
		b, _ := io.ReadAll(resp.Body)
		f := parseFailure(resp.StatusCode, resp.Header, b, c.now())
		if code := sdkCode(err); code != "" {
			f.code = code
		}
		return c.fromFailure(f, token)
	}
	if !requested {
		// The SDK refused the message before sending it (bad topic name,
		// bad APNs header): sending it again cannot help.
		return &channels.Error{Class: channels.Permanent, Provider: c.provider, Code: "INVALID_MESSAGE", Err: fmt.Errorf("fcm: %w", err)}
	}
	return transient("", err)
}

// fromFailure maps an FCM error answer to a class.
func (c *Client) fromFailure(f failure, token bool) error {
	code := f.code
	if code == "" {
		code = f.rpc
	}
	if code == "" {
		code = strconv.Itoa(f.status)
	}
	// An answer: FCM did not take the message, whatever the class.
	e := &channels.Error{Provider: c.provider, Code: code, Err: channels.Refused(fmt.Errorf("fcm: send: %d %s: %s", f.status, code, f.message))}
	switch {
	case f.code == "UNREGISTERED":
		e.Class = channels.TokenDead
	case f.code == "INVALID_ARGUMENT" || f.rpc == "INVALID_ARGUMENT":
		// FCM says INVALID_ARGUMENT both for a malformed token and for a
		// malformed message; only the former means the device is gone.
		e.Class = channels.Permanent
		if f.badToken {
			e.Class = channels.TokenDead
		}
	case f.code == "QUOTA_EXCEEDED" || f.status == http.StatusTooManyRequests:
		e.Class, e.RetryAfter = channels.Transient, max(f.retryAfter, c.quota)
	case f.code == "UNAVAILABLE" || f.code == "INTERNAL" || f.status >= 500:
		e.Class, e.RetryAfter = channels.Transient, f.retryAfter
	case f.status == http.StatusRequestTimeout:
		e.Class = channels.Transient
	default:
		// SENDER_ID_MISMATCH, THIRD_PARTY_AUTH_ERROR, UNAUTHENTICATED,
		// PERMISSION_DENIED, NOT_FOUND for the project, other 4xx.
		e.Class = channels.Permanent
	}
	if !token && e.Class == channels.TokenDead {
		e.Class = channels.Permanent // a topic is not a device to deactivate
	}
	return e
}
