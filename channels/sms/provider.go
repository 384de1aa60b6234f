package sms

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/unicode/norm"

	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/internal/phone"
)

// DefaultTimeout bounds one gateway call when a provider's Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Provider is one SMS gateway account: a channel with a stable instance
// name for results, breakers and metrics. ESMS, SpeedSMS and Webhook
// implement it; Failover consumes it.
type Provider interface {
	channels.Channel
	Name() string
}

var (
	_ Provider = (*ESMS)(nil)
	_ Provider = (*SpeedSMS)(nil)
	_ Provider = (*Webhook)(nil)
	_ Provider = (*Failover)(nil)
)

// Failover sends through an ordered list of providers: when one fails
// with a Transient error (timeout, 5xx, outage, and later an open breaker)
// the next is tried. It implements channels.Channel and is safe for
// concurrent use if its providers are.
//
// A Transient failure can be ambiguous (a timeout after the gateway took
// the message: channels.MaybeDelivered). Failing over then may, rarely,
// deliver an SMS twice: accepted for other messages, never done for codes
// and alerts (channels.Lane.AtMostOnce), whose failure is returned as it
// is, for the dispatcher to record in doubt.
type Failover struct {
	name      string
	providers []Provider
}

// NewFailover returns a Failover over providers, tried in the order
// given. name identifies it in logs; "" means "failover(a,b,…)". It
// returns an error when providers is empty or holds a nil.
func NewFailover(name string, providers ...Provider) (*Failover, error) {
	if len(providers) == 0 {
		return nil, errors.New("sms: failover: no providers")
	}
	names := make([]string, len(providers))
	for i, p := range providers {
		if p == nil {
			return nil, fmt.Errorf("sms: failover: provider %d is nil", i)
		}
		names[i] = p.Name()
	}
	if name == "" {
		name = "failover(" + strings.Join(names, ",") + ")"
	}
	return &Failover{name: name, providers: append([]Provider(nil), providers...)}, nil
}

// Name returns the failover's name.
func (f *Failover) Name() string { return f.name }

// Send tries each provider in order until one accepts m, and returns that
// provider's Result. It stops at the first error that is not Transient
// (an expired message, an invalid number, a rejected account) and
// returns it, and it stops when ctx ends. When every provider fails
// transiently it returns the last provider's error.
func (f *Failover) Send(ctx context.Context, m channels.Message) (channels.Result, error) {
	var err error
	for _, p := range f.providers {
		var res channels.Result
		res, err = p.Send(ctx, m)
		if err == nil {
			return res, nil
		}
		if channels.ClassOf(err) != channels.Transient || ctx.Err() != nil {
			return channels.Result{}, err
		}
		if m.Lane.AtMostOnce() && channels.MaybeDelivered(err) {
			// This gateway may have it: another would send it twice.
			return channels.Result{}, err
		}
	}
	return channels.Result{}, err
}

// common is what every HTTP provider shares.
type common struct {
	name    string
	hc      *http.Client
	timeout time.Duration
	now     func() time.Time
}

func newCommon(name, def string, hc *http.Client, timeout time.Duration, now func() time.Time) common {
	if name == "" {
		name = def
	}
	if hc == nil {
		hc = &http.Client{Transport: newTransport()}
	}
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	if now == nil {
		now = time.Now
	}
	return common{name: name, hc: hc, timeout: timeout, now: now}
}

// idleConnsPerGateway is how many idle connections a provider keeps to
// its gateway: as many as the sends it may have under way at once (the
// otp lane's senders, 16 by default, and the alert lane's, 128), so that a
// connection is opened once, not for each SMS. http.DefaultTransport
// keeps 2 a host: with codes at 500 a second nearly every send dialled
// a new connection (and the gateway accepted one), a few hundred
// microseconds of CPU on each side and a round trip more for each code.
const idleConnsPerGateway = 512

// newTransport is the HTTP transport of a provider built without an
// HTTPClient: http.DefaultTransport's settings, with idleConnsPerGateway
// connections kept.
func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = idleConnsPerGateway
	t.MaxIdleConnsPerHost = idleConnsPerGateway
	return t
}

// outgoing is a message checked and ready for a gateway.
type outgoing struct {
	phone   string // 84…
	content string // NFC
	unicode bool   // needs UCS-2
	key     string // delivery key, for the gateway's idempotency id
}

// prepare checks m before any gateway is called: an expired message is
// Expired, an invalid number or empty text is Permanent. The text is
// NFC-normalised, so combining-mark input is sent and billed as
// precomposed.
// Folding diacritics, where a route needs it, is Folding's job, before
// the message reaches a provider.
func (c common) prepare(m channels.Message) (outgoing, error) {
	if m.Expired(c.now()) {
		return outgoing{}, &channels.Error{Class: channels.Expired, Provider: c.name, Code: "expired",
			Err: fmt.Errorf("sms: message expired at %s", m.ExpiresAt.Format(time.RFC3339))}
	}
	p, err := phone.Normalize(m.To)
	if err != nil {
		return outgoing{}, &channels.Error{Class: channels.Permanent, Provider: c.name, Code: "INVALID_PHONE", Err: fmt.Errorf("sms: %w", err)}
	}
	text := norm.NFC.String(m.Body)
	if strings.TrimSpace(text) == "" {
		return outgoing{}, &channels.Error{Class: channels.Permanent, Provider: c.name, Code: "EMPTY", Err: errors.New("sms: empty text")}
	}
	return outgoing{phone: p, content: text, unicode: EncodingFor(text) == UCS2, key: deliveryKey(m.NotificationID, p)}, nil
}

// deliveryKey is a stable id for (notification, phone), sent to gateways
// that accept a client request id so they can recognise a resend.
func deliveryKey(notificationID, phone string) string {
	if notificationID == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(notificationID + "\x00" + phone))
	return hex.EncodeToString(sum[:16])
}

// answer is a gateway's HTTP answer.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// post sends body as JSON to url under the provider's timeout. Failures
// to get an answer come back as Transient *channels.Error values.
func (c common) post(ctx context.Context, url string, body any, setHeaders func(http.Header)) (answer, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return answer{}, &channels.Error{Class: channels.Permanent, Provider: c.name, Code: "ENCODE", Err: fmt.Errorf("sms: encode: %w", err)}
	}
	callCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(callCtx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return answer{}, &channels.Error{Class: channels.Permanent, Provider: c.name, Code: "CONFIG", Err: fmt.Errorf("sms: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Accept", "application/json")
	if setHeaders != nil {
		setHeaders(req.Header)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return answer{}, c.netError(ctx, callCtx, err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return answer{}, c.netError(ctx, callCtx, err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: rb}, nil
}

// netError classifies a failure to get an answer: always Transient.
func (c common) netError(ctx, callCtx context.Context, err error) error {
	code := "network"
	var ne net.Error
	switch {
	case ctx.Err() != nil:
		code, err = "cancelled", context.Cause(ctx)
	case errors.Is(callCtx.Err(), context.DeadlineExceeded):
		code, err = "timeout", fmt.Errorf("no answer within %s: %w", c.timeout, err)
	case errors.As(err, &ne) && ne.Timeout():
		code = "timeout"
	case channels.DialFailed(err):
		err = channels.Refused(err) // no connection: the gateway does not have it
	}
	return &channels.Error{Class: channels.Transient, Provider: c.name, Code: code, Err: fmt.Errorf("sms: send: %w", err)}
}

// statusError classifies a non-2xx HTTP answer: 408, 429 and 5xx are
// Transient (with Retry-After), 401 and 403 Permanent "AUTH", any other
// 4xx Permanent.
func (c common) statusError(a answer) error {
	e := &channels.Error{Provider: c.name, Code: strconv.Itoa(a.status),
		Err: channels.Refused(fmt.Errorf("sms: gateway answered %d %s: %s", a.status, http.StatusText(a.status), snippet(a.body)))}
	switch {
	case a.status == http.StatusRequestTimeout, a.status == http.StatusTooManyRequests, a.status >= 500:
		e.Class, e.RetryAfter = channels.Transient, channels.ParseRetryAfter(a.header.Get("Retry-After"), c.now())
	case a.status == http.StatusUnauthorized, a.status == http.StatusForbidden:
		e.Class, e.Code = channels.Permanent, "AUTH"
	default:
		e.Class = channels.Permanent
	}
	return e
}

// snippet is the start of an answer body for an error message.
func snippet(b []byte) string {
	const n = 200
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
