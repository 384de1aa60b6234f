package fcm

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"firebase.google.com/go/v4/messaging"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/option"

	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/channels/gate"
	"github.com/loa-hub/loa/internal/metrics"
)

// DefaultCallTimeout bounds one send when Config.CallTimeout is zero.
const DefaultCallTimeout = 5 * time.Second

// MaxPayload is FCM's limit, in bytes, on a message's notification and
// data payload together.
const MaxPayload = 4096

// maxTTL is the longest time-to-live FCM accepts (four weeks).
const maxTTL = 28 * 24 * time.Hour

// DefaultQuotaBackoff is the least a QUOTA_EXCEEDED answer backs off: FCM's quota
// is per minute, so retrying sooner only burns more of it.
const DefaultQuotaBackoff = time.Minute

// DefaultConnections is how many HTTP/2 connections a Client may send
// over when Config.Connections is zero.
const DefaultConnections = 8

// defaultEndpoint is FCM's own v1 API, the SDK's default.
const defaultEndpoint = "https://fcm.googleapis.com/v1"

// messagingScope is the OAuth2 scope the FCM v1 API requires.
const messagingScope = "https://www.googleapis.com/auth/firebase.messaging"

// Config configures a Client. The zero value is not valid: ProjectID and
// either CredentialsFile or Endpoint are required.
type Config struct {
	// ProjectID is the Firebase project messages are sent from.
	ProjectID string
	// CredentialsFile is a Google service-account JSON file
	// (LOA_FCM_CREDENTIALS_FILE). It may be empty only when Endpoint is
	// set: requests are then sent without authentication, which only a
	// fake accepts.
	CredentialsFile string
	// Endpoint is the FCM v1 base URL; empty means FCM's own
	// (https://fcm.googleapis.com/v1). Tests use a fake's URL + "/v1".
	Endpoint string
	// HTTPClient supplies the transport (TLS roots, connection pooling);
	// nil means a clone of http.DefaultTransport. With CredentialsFile,
	// OAuth2 is layered over its transport. Its Timeout is ignored:
	// CallTimeout bounds each send.
	HTTPClient *http.Client
	// CallTimeout bounds each send, including the SDK's own retries;
	// DefaultCallTimeout when zero.
	CallTimeout time.Duration
	// Now is the clock expiry and TTLs are computed on; time.Now when nil.
	Now func() time.Time
	// Connections is how many HTTP/2 connections sends may use;
	// DefaultConnections when zero (LOA_FCM_CONNECTIONS). Each carries up
	// to 100 sends at once, the stream limit FCM advertises, and a
	// connection is used only while those before it are full; a send
	// beyond Connections × 100 waits its turn rather than opening, and
	// TLS-handshaking, a connection of its own.
	// It applies when the transport is an *http.Transport (the default);
	// any other RoundTripper is used as it is.
	Connections int
	// QuotaBackoff is the least a QUOTA_EXCEEDED (429) answer backs off;
	// DefaultQuotaBackoff (a minute, FCM's quota window) when zero. Tests
	// shorten it.
	QuotaBackoff time.Duration
	// ReservedShare is the share (0 to <1) of the streams, Connections ×
	// 100, that only urgent pushes (codes and alerts, by Message.Lane) may
	// take: the others wait when no more than that are free. Urgent pushes
	// also go first to any stream that frees up.
	ReservedShare float64
	// Metrics records how long pushes wait for a stream; nil records
	// nothing.
	Metrics *metrics.Metrics
}

// Validate reports the first thing wrong with c.
func (c Config) Validate() error {
	switch {
	case c.ProjectID == "":
		return errors.New("fcm: config: ProjectID is required")
	case c.CredentialsFile == "" && c.Endpoint == "":
		return errors.New("fcm: config: CredentialsFile is required (it may be empty only with a fake Endpoint)")
	case c.CallTimeout < 0:
		return errors.New("fcm: config: CallTimeout must not be negative")
	case c.Connections < 0:
		return errors.New("fcm: config: Connections must not be negative")
	case c.QuotaBackoff < 0:
		return errors.New("fcm: config: QuotaBackoff must not be negative")
	case c.ReservedShare < 0 || c.ReservedShare >= 1:
		return errors.New("fcm: config: ReservedShare must be in [0, 1)")
	}
	return nil
}

// Client sends push messages through one Firebase project. It implements
// channels.Channel and is safe for concurrent use.
type Client struct {
	msg      *messaging.Client
	provider string
	timeout  time.Duration
	now      func() time.Time
	quota    time.Duration
	waits    map[channels.Lane]metrics.Observer // stream waits, by lane
	last     atomic.Pointer[shape]              // the message last built, but for its target
}

var _ channels.Channel = (*Client)(nil)

// New validates cfg and returns a Client. It reads the credentials file
// but does not contact FCM or the token endpoint; ctx bounds only that
// setup (token refreshes later are not tied to it).
func New(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.CallTimeout == 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.QuotaBackoff == 0 {
		cfg.QuotaBackoff = DefaultQuotaBackoff
	}
	var base http.RoundTripper
	if cfg.HTTPClient != nil {
		base = cfg.HTTPClient.Transport
	}
	if base == nil {
		base = http.DefaultTransport
	}
	provider := "fcm:" + cfg.ProjectID
	if t, ok := base.(*http.Transport); ok {
		n := cmp.Or(cfg.Connections, DefaultConnections)
		base = pool(t, n, int(math.Ceil(cfg.ReservedShare*float64(n*streamsPerConnection))), cmp.Or(cfg.Endpoint, defaultEndpoint))
	}
	obs := observer{base: base}
	if cfg.CredentialsFile != "" {
		b, err := os.ReadFile(cfg.CredentialsFile)
		if err != nil {
			return nil, fmt.Errorf("fcm: credentials: %w", err)
		}
		// The token source keeps the context it is built with for every
		// refresh, so it must outlive a setup context. Tokens are fetched
		// through the configured client (its TLS roots), not the default.
		tctx := context.WithoutCancel(ctx)
		if cfg.HTTPClient != nil {
			tctx = context.WithValue(tctx, oauth2.HTTPClient, cfg.HTTPClient)
		}
		creds, err := google.CredentialsFromJSONWithType(tctx, b, google.ServiceAccount, messagingScope)
		if err != nil {
			return nil, fmt.Errorf("fcm: credentials: %w", err)
		}
		obs.auth = &bearer{src: creds.TokenSource, base: base}
	}
	hc := &http.Client{Transport: obs}
	if cfg.HTTPClient != nil {
		hc.CheckRedirect, hc.Jar = cfg.HTTPClient.CheckRedirect, cfg.HTTPClient.Jar
	}
	opts := []option.ClientOption{option.WithHTTPClient(hc)}
	if cfg.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(cfg.Endpoint))
	}
	mc, err := newMessaging(ctx, cfg.ProjectID, opts)
	if err != nil {
		return nil, fmt.Errorf("fcm: messaging client: %w", err)
	}
	c := &Client{msg: mc, provider: provider, timeout: cfg.CallTimeout, now: cfg.Now, quota: cfg.QuotaBackoff,
		waits: map[channels.Lane]metrics.Observer{}}
	for _, l := range []channels.Lane{channels.LaneOTP, channels.LaneAlert, channels.LaneDirect, channels.LaneBulk, ""} {
		c.waits[l] = cfg.Metrics.StreamWait(provider, string(l))
	}
	return c, nil
}

// streamsPerConnection is how many sends one connection carries at once:
// the HTTP/2 stream limit FCM's front ends advertise.
const streamsPerConnection = 100

// pool returns a RoundTripper sending requests over up to n HTTP/2
// connections, at most streamsPerConnection requests on each. To an https
// endpoint reached directly each is an h2Conn, which writes the frames of
// the requests in flight together; through a proxy or a TLS dialer of the
// caller's, each is a clone of t limited to one connection (through a
// proxy, its write system calls, not its TLS records, coalesced below
// TLS).
//
// Left to itself, an http.Transport whose connection is at the
// server's stream limit dials a new connection for each request over it
// and throws most of them away once a stream frees up: under a fan-out,
// a TLS handshake every few dozen pushes. Its strict mode instead wakes
// every waiting request each time a stream frees up, which collapses
// under a few thousand of them. So the pool admits requests itself — by
// the rank of their lane, first come first served within a rank, with
// reserve of the streams kept for urgent pushes — and gives each to the
// first connection with a stream free (see pick).
func pool(t *http.Transport, n, reserve int, endpoint string) *connPool {
	p := &connPool{streams: gate.New(n*streamsPerConnection, reserve), conns: make([]*pooledConn, n)}
	u, own := h2Endpoint(t, endpoint)
	for i := range p.conns {
		if own {
			p.conns[i] = &pooledConn{rt: newH2Conn(t, u)}
			continue
		}
		// Through a proxy or a dialer of the caller's, each connection is
		// an http.Transport's, limited to one.
		c := t.Clone()
		c.ForceAttemptHTTP2 = true
		// Requests arriving while it dials wait for it. When the server
		// retires the connection (GOAWAY), the next send finds it unusable,
		// drops it from the count and dials its replacement.
		c.MaxConnsPerHost = 1
		h2 := http.HTTP2Config{}
		if c.HTTP2 != nil {
			h2 = *c.HTTP2
		}
		h2.StrictMaxConcurrentRequests = true // never a second connection
		c.HTTP2 = &h2
		c.DialContext = coalescing(c.DialContext)
		p.conns[i] = &pooledConn{rt: c}
	}
	return p
}

// coalescing returns dial, or a net.Dialer's when nil, with each
// connection it dials behind a coalescer: the requests in flight on it
// share write system calls.
func coalescing(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return newCoalescer(c), nil
	}
}

// connPool is the RoundTripper pool returns.
type connPool struct {
	streams *gate.Gate // one slot per stream, over all connections
	conns   []*pooledConn
}

type pooledConn struct {
	rt interface {
		http.RoundTripper
		CloseIdleConnections()
	}
	inFlight atomic.Int32
}

func (p *connPool) RoundTrip(req *http.Request) (*http.Response, error) {
	r, wait := channels.Standard, metrics.Observer(nopObserver{})
	if c, ok := req.Context().Value(callKey{}).(*call); ok && c.wait != nil {
		r, wait = c.rank, c.wait
	}
	waited, err := p.streams.Acquire(req.Context(), r)
	wait.Observe(waited.Seconds())
	if err != nil {
		if req.Body != nil {
			req.Body.Close() // a RoundTripper closes the body, even on error
		}
		return nil, fmt.Errorf("%w: fcm: waiting for a stream: %w", channels.ErrNotAttempted, err)
	}
	c := p.pick()
	c.inFlight.Add(1)
	resp, err := c.rt.RoundTrip(req)
	if err != nil {
		c.inFlight.Add(-1)
		p.streams.Release()
		return nil, err
	}
	// The stream stays open until the body is read to its end or closed.
	resp.Body = &streamBody{ReadCloser: resp.Body, p: p, c: c}
	return resp, nil
}

// pick returns the first connection, in the pool's order, with fewer
// than streamsPerConnection sends in flight, or the least busy when every
// one is that full (sends racing for the last streams). Sends are packed
// onto as few connections as carry them, not spread: a connection's
// coalescer writes the frames of the requests queued while its previous
// write was under way in one system call and one TLS record, and read
// loops read the answers of many streams in one, so the fewer the
// connections the more requests share each write and each read — for the
// dispatcher and for FCM's front end alike. Spread over eight, a
// broadcast answered at once kept a few requests on each connection and
// wrote about one a system call. The later connections are dialled only
// when the first are full (at 20 ms answers, 12,000 pushes a second keep
// about 240 in flight: three connections).
func (p *connPool) pick() *pooledConn {
	c := p.conns[0]
	for _, o := range p.conns {
		n := o.inFlight.Load()
		if n < streamsPerConnection {
			return o
		}
		if n < c.inFlight.Load() {
			c = o
		}
	}
	return c
}

// CloseIdleConnections closes the idle connections of every transport.
func (p *connPool) CloseIdleConnections() {
	for _, c := range p.conns {
		c.rt.CloseIdleConnections()
	}
}

// bearer puts the service account's OAuth2 access token on each request.
// It is what oauth2.Transport does, without the request's deep copy and
// a new header value per request; and what the Google API transport adds
// around it (OpenTelemetry spans and metrics, API client headers) FCM
// does not need.
type bearer struct {
	src  oauth2.TokenSource // caches the token until it nears expiry
	base http.RoundTripper
	last atomic.Pointer[authValue]
}

type authValue struct {
	tok    *oauth2.Token
	header []string
}

func (b *bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	auth, err := b.header()
	if err != nil {
		if req.Body != nil {
			req.Body.Close() // a RoundTripper closes the body, even on error
		}
		return nil, err
	}
	r := *req // the caller's request is not to be changed
	r.Header = withAuth(req.Header, auth)
	return b.base.RoundTrip(&r)
}

// header returns the Authorization header's value.
func (b *bearer) header() ([]string, error) {
	tok, err := b.src.Token()
	if err != nil {
		return nil, err
	}
	v := b.last.Load()
	if v == nil || v.tok != tok {
		v = &authValue{tok: tok, header: []string{tok.Type() + " " + tok.AccessToken}}
		b.last.Store(v)
	}
	return v.header, nil
}

// withAuth returns a copy of h with the Authorization header auth; h
// itself when auth is nil.
func withAuth(h http.Header, auth []string) http.Header {
	if auth == nil {
		return h
	}
	c := make(http.Header, len(h)+1)
	for k, vv := range h {
		c[k] = vv
	}
	c["Authorization"] = auth
	return c
}

type nopObserver struct{}

func (nopObserver) Observe(float64) {}

// streamBody frees its stream when the body is closed or read to its end.
type streamBody struct {
	io.ReadCloser
	p    *connPool
	c    *pooledConn
	done atomic.Bool
}

func (b *streamBody) free() {
	if b.done.CompareAndSwap(false, true) {
		b.c.inFlight.Add(-1)
		b.p.streams.Release()
	}
}

func (b *streamBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.free()
	}
	return n, err
}

func (b *streamBody) Close() error {
	err := b.ReadCloser.Close()
	b.free()
	return err
}

// Name returns the provider instance name, "fcm:" + project id, used in
// results, errors, breakers and metrics.
func (c *Client) Name() string { return c.provider }

// Send delivers m to the device token m.To, or to a topic when m.To is
// "/topics/{name}". Title and Body become the notification, Data the data
// payload; High priority becomes Android priority "high" (APNs 10), Normal
// "normal" (APNs 5); the time left until m.ExpiresAt becomes the TTL.
//
// It returns an *channels.Error of class:
//   - Expired, without calling FCM, when m is past ExpiresAt;
//   - Permanent, without calling FCM, when the payload is over MaxPayload
//     bytes (see PayloadSize) or the SDK rejects the message;
//   - TokenDead for UNREGISTERED, and for INVALID_ARGUMENT about the token;
//   - Transient for QUOTA_EXCEEDED (RetryAfter at least a minute),
//     UNAVAILABLE, INTERNAL and other 5xx (RetryAfter from the answer's
//     Retry-After), network errors, CallTimeout and ctx ending;
//   - Permanent for SENDER_ID_MISMATCH, authentication and permission
//     errors and any other 4xx.
//
// Each call is bounded by CallTimeout. The SDK would retry a 503 or a
// network error itself for several seconds; Send cuts that short on the
// first failure and leaves retrying to the dispatcher's tiers.
func (c *Client) Send(ctx context.Context, m channels.Message) (channels.Result, error) {
	now := c.now()
	if m.Expired(now) {
		return channels.Result{}, &channels.Error{Class: channels.Expired, Provider: c.provider, Code: "expired",
			Err: fmt.Errorf("fcm: message expired at %s", m.ExpiresAt.Format(time.RFC3339))}
	}
	s, err := c.shapeOf(m, now)
	if err != nil {
		return channels.Result{}, err
	}
	rec := &call{rank: m.Lane.Rank(), wait: c.waits[m.Lane]}
	callCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	// The call record is the call's context too (see call.Value), so the
	// transports find it without a context of its own.
	rec.Context, rec.cancel = callCtx, cancel

	var sdk *messaging.Message
	topic, isTopic := strings.CutPrefix(m.To, "/topics/")
	switch head := s.head.Load(); {
	case !isTopic && head != nil:
		// The pushes of one shape differ only in their token, so the SDK
		// encodes the shared part once, in the first push's request (see
		// observer), and the SDK gets only the token of each later push:
		// the shape's message is not copied for it.
		rec.head = *head
		sdk = &messaging.Message{Token: m.To}
	case !isTopic:
		rec.learn, rec.token = s, m.To
		sdk = s.to(m.To, "")
	default:
		sdk = s.to("", topic)
	}
	name, err := c.msg.Send(rec, sdk)
	if err == nil {
		return channels.Result{Provider: c.provider, ProviderID: name}, nil
	}
	return channels.Result{}, c.classify(ctx, callCtx, rec, err, !isTopic)
}

// message turns m into an FCM message, refusing what FCM would refuse,
// and returns the shape it was built on. The pushes of a fan-out differ
// only in their token, so what they share is built once (see shape) and
// each push gets a copy with its target.
func (c *Client) message(m channels.Message, now time.Time) (*messaging.Message, *shape, error) {
	s, err := c.shapeOf(m, now)
	if err != nil {
		return nil, nil, err
	}
	if topic, ok := strings.CutPrefix(m.To, "/topics/"); ok {
		return s.to("", topic), s, nil
	}
	return s.to(m.To, ""), s, nil
}

// shapeOf returns the shape of m sent at now, built when it is not the
// last one's.
func (c *Client) shapeOf(m channels.Message, now time.Time) (*shape, error) {
	if m.To == "" {
		return nil, channels.Errorf(channels.Permanent, c.provider, "fcm: no token or topic")
	}
	ttl := ttlOf(m, now)
	s := c.last.Load()
	if !s.fits(m, ttl) {
		var err error
		if s, err = c.build(m, ttl); err != nil {
			return nil, err
		}
		c.last.Store(s)
	}
	return s, nil
}

// to returns a copy of s's message sent to token or topic. The shared
// parts are only read, by the SDK's validation and encoding.
func (s *shape) to(token, topic string) *messaging.Message {
	msg := s.msg
	msg.Token, msg.Topic = token, topic
	return &msg
}

// shape is an FCM message without its target, and what it was built from.
// Its message is not changed once built: every push that fits it shares
// its parts.
type shape struct {
	title, body, collapse string
	priority              channels.Priority
	expiresAt             time.Time
	ttl                   time.Duration
	data                  map[string]string
	msg                   messaging.Message

	// head is the SDK's encoding of a request for msg sent to a token, up
	// to the token: `{"message":{` and every field before "token", each
	// followed by its comma. It is learnt from the first push's request
	// (see learnHead); nil until then.
	head atomic.Pointer[[]byte]
}

// fits reports whether m, sent with Android time-to-live ttl, is the
// message s was built from, but for its target.
func (s *shape) fits(m channels.Message, ttl time.Duration) bool {
	return s != nil && s.title == m.Title && s.body == m.Body && s.collapse == m.Collapse && s.priority == m.Priority &&
		s.expiresAt.Equal(m.ExpiresAt) && s.ttl == ttl && maps.Equal(s.data, m.Data)
}

// ttlOf is the Android time-to-live of m sent at now: the whole seconds
// until it expires, at most FCM's longest; -1 when m does not expire.
func ttlOf(m channels.Message, now time.Time) time.Duration {
	if m.ExpiresAt.IsZero() {
		return -1
	}
	ttl := min(m.ExpiresAt.Sub(now).Truncate(time.Second), maxTTL)
	return max(ttl, 0) // zero: deliver now or never
}

// build returns the shape of m with time-to-live ttl (see ttlOf).
func (c *Client) build(m channels.Message, ttl time.Duration) (*shape, error) {
	if n := PayloadSize(m); n > MaxPayload {
		return nil, &channels.Error{Class: channels.Permanent, Provider: c.provider, Code: "PAYLOAD_TOO_LARGE",
			Err: fmt.Errorf("fcm: payload is %d bytes, over FCM's %d", n, MaxPayload)}
	}
	s := &shape{title: m.Title, body: m.Body, collapse: m.Collapse, priority: m.Priority, expiresAt: m.ExpiresAt, ttl: ttl,
		data: maps.Clone(m.Data)}
	msg := &s.msg
	msg.Data = s.data
	if m.Title != "" || m.Body != "" {
		msg.Notification = &messaging.Notification{Title: m.Title, Body: m.Body}
	}
	android := &messaging.AndroidConfig{Priority: "normal"}
	apnsPriority := "5"
	if m.Priority == channels.High {
		android.Priority = "high"
		apnsPriority = "10"
	}
	msg.Android = android
	headers := map[string]string{}
	if msg.Notification != nil {
		// APNs refuses priority 10 for a background (data-only) push.
		headers["apns-priority"] = apnsPriority
	}
	if !m.ExpiresAt.IsZero() {
		android.TTL = &s.ttl
		headers["apns-expiration"] = strconv.FormatInt(m.ExpiresAt.Unix(), 10)
	}
	if m.Collapse != "" {
		collapse(msg, headers, m.Collapse)
	}
	if len(headers) > 0 {
		if msg.APNS == nil {
			msg.APNS = &messaging.APNSConfig{}
		}
		msg.APNS.Headers = headers
	}
	return s, nil
}

// collapse makes msg replace, on the device, every earlier message with
// the same key: Android's collapse_key (FCM keeps only the newest message
// undelivered) and notification tag (the shown notification is replaced),
// APNs' apns-collapse-id and thread-id, and the web push Topic header.
func collapse(msg *messaging.Message, headers map[string]string, key string) {
	msg.Android.CollapseKey = key
	headers["apns-collapse-id"] = apnsCollapseID(key)
	if msg.Notification != nil {
		msg.Android.Notification = &messaging.AndroidNotification{Tag: key}
		msg.APNS = &messaging.APNSConfig{Payload: &messaging.APNSPayload{Aps: &messaging.Aps{ThreadID: key}}}
	}
	msg.Webpush = &messaging.WebpushConfig{Headers: map[string]string{"Topic": webpushTopic(key)}}
}

// apnsCollapseID is key as APNs takes it: at most 64 bytes, else its
// SHA-256 in hex.
func apnsCollapseID(key string) string {
	if len(key) <= 64 {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// webpushTopic is key as a web push Topic header (RFC 8030 §5.4): at
// most 32 characters of the URL-safe base64 alphabet, else the first 32
// of its SHA-256 in that alphabet.
func webpushTopic(key string) string {
	ok := len(key) <= 32
	for i := 0; ok && i < len(key); i++ {
		c := key[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
	}
	if ok {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return base64.RawURLEncoding.EncodeToString(sum[:])[:32]
}

// PayloadSize returns the size FCM's 4,096-byte limit is checked against,
// as Loa estimates it: the JSON encoding of the notification object
// ({"title":…,"body":…}) plus that of the data object, strings escaped as
// JSON escapes them. FCM does not publish its exact rule; this counts
// JSON punctuation it may not, so it errs on the side of refusing a
// message a few bytes under the limit rather than having FCM refuse it.
func PayloadSize(m channels.Message) int {
	n := 0
	if m.Title != "" || m.Body != "" {
		n += len(`{"title":,"body":}`) + jsonStringLen(m.Title) + jsonStringLen(m.Body)
	}
	if len(m.Data) > 0 {
		n++ // braces, less the comma the last pair does not have
		for k, v := range m.Data {
			n += jsonStringLen(k) + jsonStringLen(v) + 2 // colon, comma
		}
	}
	return n
}

// jsonStringLen is the length of s encoded as a JSON string by
// encoding/json, quotes included.
func jsonStringLen(s string) int {
	n := 2
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			switch {
			case b == '"' || b == '\\' || b == '\n' || b == '\r' || b == '\t':
				n += 2
			case b < 0x20 || b == '<' || b == '>' || b == '&':
				n += 6 // \u00XX
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			n += 6 // \ufffd
		case r == '\u2028' || r == '\u2029':
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}
