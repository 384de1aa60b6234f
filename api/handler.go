package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/google/uuid"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/channels/sandbox"
	"github.com/loa-hub/loa/internal/metrics"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/producer/alert"
	"github.com/loa-hub/loa/producer/broadcast"
	"github.com/loa-hub/loa/producer/direct"
	"github.com/loa-hub/loa/producer/feedback"
	"github.com/loa-hub/loa/producer/outage"
	"github.com/loa-hub/loa/producer/portal"
)

// Check is one dependency probed by /readyz.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// Deps are what the handlers need. Store, Direct and Log are required.
type Deps struct {
	Store  *sqlstore.DB
	Direct *direct.Service
	Log    *slog.Logger
	// Ready lists the dependencies /readyz probes (Kafka, Redis, the
	// store): at most once a ReadyEvery, whatever the requests.
	Ready []Check
	// Outbox, set only in dev mode, enables GET /v1/dev/outbox.
	Outbox *sandbox.Outbox
	// DevAPIKey, set only in dev mode, is a key with every scope.
	DevAPIKey string
	// DeadLetters replays dead letters for POST
	// /v1/ops/deadletters/{id}/replay (*dispatcher.DeadLetters); without
	// it that route answers 503. Listing reads the Store.
	DeadLetters DeadLetterReplayer
	// SMSCallbacks configures POST /v1/callbacks/sms/{provider}, keyed by
	// SMS provider instance name; a provider not in it gets 404.
	SMSCallbacks map[string]CallbackConfig
	// Reports applies delivery reports to their deliveries, or holds them
	// until the deliveries are recorded (*dispatcher.Reports); without it
	// delivery reports answer 503.
	Reports ReportRecorder
	// MaxBodyBytes bounds request bodies. Default 64 KiB.
	MaxBodyBytes int64
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Metrics, when set, is served at GET /metrics (Prometheus).
	Metrics http.Handler
	// Accounts serves registration, sessions, codes, officials, devices
	// and subscriptions; without it those routes answer 503.
	Accounts *accounts.Service
	// PublicURL is the API's public address (scheme://host[:port][/path],
	// no trailing slash; LOA_PUBLIC_URL), put into the links others
	// follow: Open311's endpoint and media URLs. Empty: those links are
	// root-relative. The request's Host and X-Forwarded-* headers never
	// make a link, so a forged Host cannot reach a response (or a cache).
	PublicURL string
	// TrustedProxies are the proxies whose X-Forwarded-For is believed;
	// the zero value believes none and uses the connection's address.
	TrustedProxies TrustedProxies
	// Broadcasts serves /v1/broadcasts; without it those routes answer
	// 503.
	Broadcasts *broadcast.Service
	// Alerts serves /v1/alerts; without it those routes answer 503.
	Alerts *alert.Service
	// Outages serves /v1/outages (POST, GET, DELETE); without it those
	// routes answer 503. GET /v1/areas needs only the Store.
	Outages *outage.Service
	// SMSPrices price SMS segments in estimates (LOA_SMS_PRICES), in the
	// failover order, in SMSCurrency (default VND).
	SMSPrices   []broadcast.Price
	SMSCurrency string
	// Overview answers GET /v1/ops/overview; without it that route
	// answers 503.
	Overview func(context.Context) metrics.Overview
	// Feedback serves /v1/feedback, /v1/public/feedback and Open311;
	// without it those routes answer 503.
	Feedback *feedback.Service
	// Blobs keeps uploaded photos; without it uploads with photos answer
	// 503.
	Blobs Blobs
	// Portal serves /v1/portal; without it those routes answer 503.
	Portal *portal.Service
	// PublicReads bounds the reads of the public routes (areas, the
	// public feedback views, the portal, Open311, the OpenAPI document)
	// per client address for callers without valid credentials
	// (*quota.Quota, LOA_PUBLIC_READS_*); nil: unbounded.
	PublicReads readQuota
	// PublicReadsInFlight bounds the anonymous reads of the public routes
	// one client address (an IPv6 /64 as one) may have in progress at once
	// in this process, each until its answer is written
	// (LOA_PUBLIC_READS_INFLIGHT); past it 429 at once. A list answer
	// holds its megabytes until a slow reader takes them: 50 connections
	// that never read an Open311 list of 1,000 held 103 MB. 0: unbounded.
	PublicReadsInFlight int
	// KeyNotifications bounds POST /v1/notifications per API key
	// (*quota.Quota keyed by the key's id, LOA_KEY_NOTIFICATIONS_*), so
	// that one noisy or stolen key cannot fill the direct lane that every
	// other key's notifications share; nil: unbounded.
	KeyNotifications readQuota
	// Refusals, when set, counts every refused request (a 4xx) by status
	// (*metrics.Metrics: loa_http_refused_total); the log keeps only a
	// sample of them (see writeError).
	Refusals RefusalCounter
}

// RefusalCounter counts refused requests by HTTP status. Safe for
// concurrent use.
type RefusalCounter interface {
	HTTPRefused(status int)
}

type handler struct {
	deps     Deps
	log      *slog.Logger
	now      func() time.Time
	ready    *readiness
	refusals refusalLog
	inFlight *inFlight // of PublicReadsInFlight; nil: unbounded
}

// NewHandler returns Loa's HTTP handler. It is safe for concurrent use.
func NewHandler(deps Deps) http.Handler {
	if deps.MaxBodyBytes <= 0 {
		deps.MaxBodyBytes = 64 << 10
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	h := &handler{deps: deps, log: deps.Log, now: deps.Now,
		ready: &readiness{checks: deps.Ready, now: deps.Now, log: deps.Log}}
	if deps.PublicReadsInFlight > 0 {
		h.inFlight = &inFlight{max: deps.PublicReadsInFlight, n: map[string]int{}}
	}
	r := chi.NewRouter()
	r.Use(requestID, secureHeaders, h.auditCalls, h.logRequests, h.recoverer, h.checkRequestText)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		h.writeError(w, r, loa.NotFound("route %s not found", r.URL.Path))
	})
	r.MethodNotAllowed(h.methodNotAllowed(r))
	h.routes(r)
	return r
}

// handlerFunc is a handler that returns its error for writeError.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (h *handler) wrap(f handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := f(w, r); err != nil {
			h.writeError(w, r, err)
		}
	}
}

func (h *handler) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				h.log.Error("handler panicked", slog.String("path", r.URL.Path), slog.Any("panic", v))
				h.writeError(w, r, &loa.Error{Code: loa.EInternal, Detail: "the request could not be completed; it has been logged"})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (h *handler) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		start := time.Now()
		next.ServeHTTP(ww, r)
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			return
		}
		h.log.Debug("http request", slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", ww.Status()), slog.Duration("took", time.Since(start)),
			slog.String("request_id", middleware.GetReqID(r.Context())))
	})
}

// requestID gives every request an id, kept in the context where
// middleware.GetReqID finds it and sent back as X-Request-Id. A caller's
// own X-Request-Id is kept when it is a short token (up to 64 letters,
// digits, '-', '_', '.', ':'), so a call can be followed across systems;
// anything else is replaced, since the id goes into the audit log.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(middleware.RequestIDHeader)
		if !validRequestID(id) {
			id = uuid.NewString()
		}
		w.Header().Set(middleware.RequestIDHeader, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), middleware.RequestIDKey, id)))
	})
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':'
		if !ok {
			return false
		}
	}
	return true
}
