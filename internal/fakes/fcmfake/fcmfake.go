package fcmfake

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loa-hub/loa/internal/fakes/fault"
	"github.com/loa-hub/loa/internal/fakes/record"
)

// Error names the fake understands in fault plans (Faults.Error and
// Faults.Recipients). Each is answered the way FCM answers it: the HTTP
// status, the google.rpc status name and, where FCM gives one, an FcmError
// detail with the code below.
const (
	// Unregistered: 404 NOT_FOUND, FcmError UNREGISTERED (the token is gone).
	Unregistered = "UNREGISTERED"
	// InvalidArgument: 400 INVALID_ARGUMENT, FcmError INVALID_ARGUMENT,
	// with a BadRequest field violation on message.token, as FCM answers
	// a malformed registration token.
	InvalidArgument = "INVALID_ARGUMENT"
	// InvalidPayload: 400 INVALID_ARGUMENT, FcmError INVALID_ARGUMENT, not
	// about the token (a malformed message).
	InvalidPayload = "INVALID_PAYLOAD"
	// QuotaExceeded: 429 RESOURCE_EXHAUSTED, FcmError QUOTA_EXCEEDED.
	QuotaExceeded = "QUOTA_EXCEEDED"
	// Internal: 500 INTERNAL, FcmError INTERNAL.
	Internal = "INTERNAL"
	// Unavailable: 503 UNAVAILABLE, FcmError UNAVAILABLE. Also the answer
	// during an outage.
	Unavailable = "UNAVAILABLE"
	// SenderIDMismatch: 403 PERMISSION_DENIED, FcmError SENDER_ID_MISMATCH.
	SenderIDMismatch = "SENDER_ID_MISMATCH"
	// ThirdPartyAuth: 401 UNAUTHENTICATED, FcmError THIRD_PARTY_AUTH_ERROR
	// (bad APNs or web push credentials).
	ThirdPartyAuth = "THIRD_PARTY_AUTH_ERROR"
	// Unauthenticated: 401 UNAUTHENTICATED without an FcmError detail (a
	// bad OAuth2 access token).
	Unauthenticated = "UNAUTHENTICATED"
)

type errorSpec struct {
	status   int
	rpc      string // google.rpc.Code name
	fcmCode  string // FcmError errorCode, "" for none
	message  string
	badToken bool // add a BadRequest field violation on message.token
}

var errorSpecs = map[string]errorSpec{
	Unregistered:     {404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found.", false},
	InvalidArgument:  {400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token", true},
	InvalidPayload:   {400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "Request contains an invalid argument.", false},
	QuotaExceeded:    {429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "Quota exceeded for quota metric 'Send requests'.", false},
	Internal:         {500, "INTERNAL", "INTERNAL", "Internal error encountered.", false},
	Unavailable:      {503, "UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable.", false},
	SenderIDMismatch: {403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", "SenderId mismatch", false},
	ThirdPartyAuth:   {401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR", "Auth error from APNS or Web Push Service", false},
	Unauthenticated:  {401, "UNAUTHENTICATED", "", "Request had invalid authentication credentials. Expected OAuth 2 access token.", false},
}

// Message is one message the fake accepted, as FCM's v1 API received it.
type Message struct {
	// Name is the id the fake answered with: projects/{p}/messages/{id}.
	Name    string
	Project string
	// Proto is the HTTP protocol the request came over ("HTTP/2.0").
	Proto string
	// Exactly one of Token, Topic and Condition is set.
	Token, Topic, Condition string
	Notification            *Notification
	Data                    map[string]string
	Android                 *Android
	// APNS, Webpush and FCMOptions are kept as sent.
	APNS, Webpush, FCMOptions json.RawMessage
	// Raw is the whole "message" object as sent.
	Raw json.RawMessage
}

// Target returns the token, topic or condition the message was sent to.
func (m Message) Target() string {
	switch {
	case m.Token != "":
		return m.Token
	case m.Topic != "":
		return "/topics/" + m.Topic
	}
	return m.Condition
}

// Notification is the platform-independent notification of a Message.
type Notification struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
	Image string `json:"image,omitempty"`
}

// Android is the subset of AndroidConfig the fake checks and keeps.
type Android struct {
	CollapseKey string `json:"collapse_key,omitempty"`
	// Priority is "normal" or "high" (FCM also accepts upper case).
	Priority string `json:"priority,omitempty"`
	// TTL is the protobuf Duration form FCM receives, e.g. "3600s".
	TTL string `json:"ttl,omitempty"`
	// Notification holds the Android notification's tag: a notification
	// with the tag of one already shown replaces it.
	Notification *struct {
		Tag string `json:"tag,omitempty"`
	} `json:"notification,omitempty"`
	// Raw is the whole android object as sent.
	Raw json.RawMessage `json:"-"`
}

// Tag returns the Android notification tag, "" when none.
func (a *Android) Tag() string {
	if a == nil || a.Notification == nil {
		return ""
	}
	return a.Notification.Tag
}

// APNSHeaders returns the APNs headers of the message (apns-priority,
// apns-collapse-id, …).
func (m Message) APNSHeaders() map[string]string {
	var a struct {
		Headers map[string]string `json:"headers"`
	}
	json.Unmarshal(m.APNS, &a) // kept only when it decoded
	return a.Headers
}

// APNSThreadID returns aps.thread-id of the APNs payload, "" when none.
func (m Message) APNSThreadID() string {
	var a struct {
		Payload struct {
			Aps struct {
				ThreadID string `json:"thread-id"`
			} `json:"aps"`
		} `json:"payload"`
	}
	json.Unmarshal(m.APNS, &a)
	return a.Payload.Aps.ThreadID
}

// WebpushHeaders returns the web push headers of the message (TTL,
// Urgency, Topic, …).
func (m Message) WebpushHeaders() map[string]string {
	var w struct {
		Headers map[string]string `json:"headers"`
	}
	json.Unmarshal(m.Webpush, &w)
	return w.Headers
}

// MaxConcurrentStreams is the HTTP/2 stream limit the fake advertises per
// connection: 100, as Google's front ends do, so a sender's connection
// pooling meets the limit it will meet in production.
const MaxConcurrentStreams = 100

// Options configures a Server.
type Options struct {
	// Now is the clock outage windows are measured on; time.Now when nil.
	Now func() time.Time
	// RequireAuth makes the fake answer 401 UNAUTHENTICATED to requests
	// without an access token from its own token endpoint.
	RequireAuth bool
	// CountOnly keeps counts per target but not the messages themselves,
	// for benchmarks of millions of sends; Messages is then empty.
	CountOnly bool
	// TotalOnly keeps only the total count (CountFor and Duplicates then
	// see nothing), so a million-device benchmark measures Loa's memory,
	// not the fake's per-token counters.
	TotalOnly bool
	// Accepted, when set, is called with the target of every message the
	// fake accepts, as it records it: a benchmark times the pushes it is
	// after without the fake keeping every message.
	Accepted func(target string)
}

// Server is a running fake FCM. Its fault controls are the embedded
// Injector's methods; its record is read with Count, CountFor, Messages.
// It is safe for concurrent use.
type Server struct {
	*fault.Injector

	accepted func(target string)

	log         record.Log[Message]
	tls         *httptest.Server // FCM API, HTTP/2 over TLS
	oauth       *httptest.Server // OAuth2 token endpoint, plain HTTP
	requireAuth bool
	seq         atomic.Uint64
	tokenReqs   atomic.Int64
	sendReqs    atomic.Int64
	conns       atomic.Int64 // connections accepted on the API
	inFlight    atomic.Int64 // send requests being handled
	maxInFlight atomic.Int64 // the most there have been at once
	tokens      sync.Map     // issued access token → struct{}
}

// New starts a fake FCM on 127.0.0.1 at a free port, serving:
//
//	POST /v1/projects/{project}/messages:send   the FCM v1 send API
//	POST /token                                  (on TokenURL) OAuth2 tokens
//	GET|POST|DELETE /_fault                      the fault plan (fault.Injector.ServeHTTP)
//	GET /_messages                               {"count": n, "messages": [...]}
//
// Call Close when done.
func New(opts Options) (*Server, error) {
	s := &Server{Injector: fault.NewInjector(opts.Now), requireAuth: opts.RequireAuth, accepted: opts.Accepted}
	s.log.Discard = opts.CountOnly || opts.TotalOnly
	s.log.DiscardKeys = opts.TotalOnly

	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/projects/{project}/messages:send", s.send)
	s.Injector.Mount(mux, "/_fault")
	mux.HandleFunc("GET /_messages", s.messages)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fcmfake: listen: %w", err)
	}
	s.tls = &httptest.Server{Listener: ln, Config: &http.Server{Handler: mux, ConnState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}, HTTP2: &http.HTTP2Config{MaxConcurrentStreams: MaxConcurrentStreams}}, EnableHTTP2: true}
	s.tls.StartTLS()

	omux := http.NewServeMux()
	omux.HandleFunc("POST /token", s.token)
	oln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.tls.Close()
		return nil, fmt.Errorf("fcmfake: listen: %w", err)
	}
	s.oauth = &httptest.Server{Listener: oln, Config: &http.Server{Handler: omux}}
	s.oauth.Start()
	return s, nil
}

// URL is the fake's base URL, https://127.0.0.1:port.
func (s *Server) URL() string { return s.tls.URL }

// Endpoint is the URL to give the SDK with option.WithEndpoint: URL()+"/v1".
func (s *Server) Endpoint() string { return s.tls.URL + "/v1" }

// TokenURL is the OAuth2 token endpoint, for a service account's token_uri.
func (s *Server) TokenURL() string { return s.oauth.URL + "/token" }

// Client returns an HTTP/2 client that trusts the fake's certificate. It
// is shared; do not change it.
func (s *Server) Client() *http.Client { return s.tls.Client() }

// Connections returns how many connections clients have opened to the
// API: a sender that reuses its connections keeps this small.
func (s *Server) Connections() int64 { return s.conns.Load() }

// DropConnections closes every client connection to the API at once, as
// a server restart or a network fault would.
func (s *Server) DropConnections() { s.tls.CloseClientConnections() }

// MaxInFlight returns the most send requests the fake has been handling
// at once (held ones included).
func (s *Server) MaxInFlight() int64 { return s.maxInFlight.Load() }

// InFlight returns how many send requests the fake is handling now (held
// ones included).
func (s *Server) InFlight() int64 { return s.inFlight.Load() }

// Counts returns a copy of the number of messages accepted per target
// (empty with TotalOnly).
func (s *Server) Counts() map[string]int { return s.log.Counts() }

// Certificate returns the fake's self-signed TLS certificate.
func (s *Server) Certificate() *x509.Certificate { return s.tls.Certificate() }

// Close releases held requests and stops the fake. It blocks until every
// request in progress has finished.
func (s *Server) Close() {
	s.Injector.Close()
	s.tls.CloseClientConnections()
	s.tls.Close()
	s.oauth.Close()
}

// Count returns the number of messages accepted (validate_only requests
// are answered but not recorded).
func (s *Server) Count() int { return s.log.Count() }

// CountFor returns the number of messages accepted for a target: a token,
// "/topics/"+topic, or a condition.
func (s *Server) CountFor(target string) int { return s.log.CountFor(target) }

// Duplicates returns the targets that received more than one message.
func (s *Server) Duplicates() map[string]int { return s.log.Duplicates() }

// Messages returns the accepted messages in order.
func (s *Server) Messages() []Message { return s.log.Messages() }

// WaitCount blocks until n messages were accepted or ctx ends.
func (s *Server) WaitCount(ctx context.Context, n int) error { return s.log.WaitCount(ctx, n) }

// Reset forgets the accepted messages and zeroes Requests; the fault plan
// is kept (see ResetFaults).
func (s *Server) Reset() {
	s.log.Reset()
	s.sendReqs.Store(0)
}

// ResetFaults clears the fault plan.
func (s *Server) ResetFaults() { s.Injector.Reset() }

// Requests returns how many send requests arrived, whatever their
// outcome: with Count it shows whether a client retried.
func (s *Server) Requests() int { return int(s.sendReqs.Load()) }

// TokenRequests returns how many access tokens the token endpoint issued.
func (s *Server) TokenRequests() int { return int(s.tokenReqs.Load()) }

func (s *Server) messages(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	msgs := s.log.Messages()
	_ = json.NewEncoder(w).Encode(struct {
		Count    int       `json:"count"`
		Messages []Message `json:"messages"`
	}{len(msgs), msgs})
}

// token implements the OAuth2 JWT-bearer grant Google service accounts use
// (RFC 7523): any assertion is accepted.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" || r.PostForm.Get("assertion") == "" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":"invalid_grant","error_description":"expected a jwt-bearer assertion"}`)
		return
	}
	n := s.tokenReqs.Add(1)
	tok := fmt.Sprintf("ya29.fake-%d", n)
	s.tokens.Store(tok, struct{}{})
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600})
}

// wireMessage is FCM v1's Message with the fields the fake inspects; the
// rest is kept raw. Unknown top-level fields are rejected as FCM does.
type wireMessage struct {
	Name         string            `json:"name,omitempty"`
	Token        string            `json:"token,omitempty"`
	Topic        string            `json:"topic,omitempty"`
	Condition    string            `json:"condition,omitempty"`
	Notification *Notification     `json:"notification,omitempty"`
	Data         map[string]string `json:"data,omitempty"`
	Android      json.RawMessage   `json:"android,omitempty"`
	APNS         json.RawMessage   `json:"apns,omitempty"`
	Webpush      json.RawMessage   `json:"webpush,omitempty"`
	FCMOptions   json.RawMessage   `json:"fcm_options,omitempty"`
}

var (
	ttlRE   = regexp.MustCompile(`^\d+(\.\d{1,9})?s$`)
	topicRE = regexp.MustCompile(`^[a-zA-Z0-9-_.~%]+$`)
)

func (s *Server) send(w http.ResponseWriter, r *http.Request) {
	s.sendReqs.Add(1)
	for n := s.inFlight.Add(1); ; {
		m := s.maxInFlight.Load()
		if n <= m || s.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	defer s.inFlight.Add(-1)
	project := r.PathValue("project")
	if s.requireAuth {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if _, issued := s.tokens.Load(tok); !ok || !issued {
			s.fail(w, Unauthenticated, 0, "")
			return
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return // client gone
	}
	var req struct {
		ValidateOnly bool            `json:"validate_only"`
		Message      json.RawMessage `json:"message"`
	}
	if err := json.Unmarshal(body, &req); err != nil || len(req.Message) == 0 {
		s.fail(w, InvalidPayload, 0, "Invalid JSON payload received.")
		return
	}
	var wm wireMessage
	dec := json.NewDecoder(bytes.NewReader(req.Message))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&wm); err != nil {
		s.fail(w, InvalidPayload, 0, "Invalid JSON payload received. "+err.Error())
		return
	}
	m := Message{
		Project: project, Proto: r.Proto, Token: wm.Token, Topic: wm.Topic, Condition: wm.Condition,
		Notification: wm.Notification, Data: wm.Data,
		APNS: wm.APNS, Webpush: wm.Webpush, FCMOptions: wm.FCMOptions, Raw: req.Message,
	}
	if msg := validate(&m, wm.Android); msg != "" {
		s.fail(w, InvalidPayload, 0, msg)
		return
	}

	d := s.Decide(m.Target())
	if err := s.Wait(r.Context(), d); err != nil {
		return // client gave up: nothing answered, nothing recorded
	}
	switch {
	case d.Outage:
		s.fail(w, Unavailable, d.RetryAfter, "")
		return
	case d.Error != "":
		s.fail(w, d.Error, d.RetryAfter, "")
		return
	case d.Status != 0:
		if d.RetryAfter > 0 {
			w.Header().Set("Retry-After", fault.RetryAfterHeader(d.RetryAfter))
		}
		http.Error(w, http.StatusText(d.Status), d.Status)
		return
	}

	m.Name = fmt.Sprintf("projects/%s/messages/0:%d%%fake", project, s.seq.Add(1))
	if !req.ValidateOnly {
		s.log.Add(m, m.Target())
		if s.accepted != nil {
			s.accepted(m.Target())
		}
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_ = json.NewEncoder(w).Encode(map[string]string{"name": m.Name})
}

// validate checks what FCM checks before accepting a message and fills
// m.Android; it returns FCM's complaint, or "" when m is acceptable.
func validate(m *Message, android json.RawMessage) string {
	targets := 0
	for _, t := range []string{m.Token, m.Topic, m.Condition} {
		if t != "" {
			targets++
		}
	}
	if targets != 1 {
		return "Exactly one of message.token, message.topic or message.condition must be set."
	}
	if m.Topic != "" && !topicRE.MatchString(m.Topic) {
		return "Invalid value at 'message.topic'"
	}
	if len(android) > 0 {
		var a Android
		if err := json.Unmarshal(android, &a); err != nil {
			return "Invalid value at 'message.android': " + err.Error()
		}
		switch a.Priority {
		case "", "normal", "high", "NORMAL", "HIGH":
		default:
			return "Invalid value at 'message.android.priority'"
		}
		if a.TTL != "" && !ttlRE.MatchString(a.TTL) {
			return "Invalid value at 'message.android.ttl'"
		}
		a.Raw = android
		m.Android = &a
	}
	// What APNs and web push services refuse, FCM refuses.
	if id := m.APNSHeaders()["apns-collapse-id"]; len(id) > 64 {
		return "Invalid value at 'message.apns.headers': apns-collapse-id is longer than 64 bytes"
	}
	if topic, ok := m.WebpushHeaders()["Topic"]; ok && !webpushTopicRE.MatchString(topic) {
		return "Invalid value at 'message.webpush.headers': Topic must be at most 32 URL-safe base64 characters"
	}
	return ""
}

var webpushTopicRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// fail answers with the named error in FCM v1's error format. An unknown
// name is answered as 500 INTERNAL with the name in the message.
func (s *Server) fail(w http.ResponseWriter, name string, retryAfter time.Duration, message string) {
	spec, ok := errorSpecs[name]
	if !ok {
		spec = errorSpec{500, "INTERNAL", "INTERNAL", "fcmfake: unknown fault " + strconv.Quote(name), false}
	}
	if message == "" {
		message = spec.message
	}
	details := []map[string]any{}
	if spec.fcmCode != "" {
		details = append(details, map[string]any{
			"@type":     "type.googleapis.com/google.firebase.fcm.v1.FcmError",
			"errorCode": spec.fcmCode,
		})
	}
	if spec.badToken {
		details = append(details, map[string]any{
			"@type": "type.googleapis.com/google.rpc.BadRequest",
			"fieldViolations": []map[string]string{{
				"field":       "message.token",
				"description": "Invalid registration token",
			}},
		})
	}
	if retryAfter > 0 {
		w.Header().Set("Retry-After", fault.RetryAfterHeader(retryAfter))
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(spec.status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"code": spec.status, "message": message, "status": spec.rpc, "details": details,
	}})
}
