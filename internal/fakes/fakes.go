package fakes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/loa-hub/loa/internal/fakes/fcmfake"
	"github.com/loa-hub/loa/internal/fakes/smppfake"
	"github.com/loa-hub/loa/internal/fakes/smsfake"
	"github.com/loa-hub/loa/internal/fakes/smtpfake"
)

// Options configures the fakes StartAll starts. The zero value is what
// StartAll uses.
type Options struct {
	// Now is the clock every fake measures outage windows on; time.Now
	// when nil.
	Now func() time.Time
	// CallbackBase, when set, receives the SMS fakes' delivery reports at
	// CallbackBase + "esms", + "speedsms" and + "webhook", e.g.
	// "http://127.0.0.1:8080/v1/callbacks/sms/".
	CallbackBase string
	// CallbackTokens, by fake ("esms", "speedsms", "webhook"), are sent
	// with its delivery reports in X-Loa-Callback-Token, as a gateway
	// account configured with Loa's callback token sends them.
	CallbackTokens map[string]string
	// FCMRequireAuth makes the FCM fake insist on tokens from its OAuth2
	// endpoint.
	FCMRequireAuth bool
	// SMTPUsername and SMTPPassword, when set, are required by the SMTP
	// fake (which always requires STARTTLS before MAIL when they are).
	SMTPUsername, SMTPPassword string
	// FCMRecord is what the FCM fake keeps of the messages it accepts:
	// "all" (the default: every message), "counts" (a count per device
	// token, for runs of hundreds of thousands of devices) or "total"
	// (one number, for benchmarks that measure Loa's memory).
	FCMRecord string
	// SMPPSystemID and SMPPPassword, when set, are the only credentials
	// the fake SMSC binds.
	SMPPSystemID, SMPPPassword string
}

// Set is a running set of every provider fake plus a control server. Its
// fields are the fakes themselves, for tests and benchmarks in the same
// process; URLs is what another process needs.
type Set struct {
	FCM      *fcmfake.Server
	ESMS     *smsfake.ESMS
	SpeedSMS *smsfake.SpeedSMS
	Webhook  *smsfake.Webhook
	SMTP     *smtpfake.Server
	SMPP     *smppfake.Server

	control   *http.Server
	controlLn net.Listener
	closeOnce sync.Once
}

// URLs are where the fakes of a Set listen.
type URLs struct {
	// FCMEndpoint is the FCM fake's API base, for option.WithEndpoint
	// (https, HTTP/2, self-signed certificate).
	FCMEndpoint string `json:"fcm_endpoint"`
	// FCMTokenURL is the FCM fake's OAuth2 token endpoint, for a service
	// account's token_uri.
	FCMTokenURL string `json:"fcm_token_url"`
	ESMS        string `json:"esms"`     // base URL of the eSMS-style gateway
	SpeedSMS    string `json:"speedsms"` // base URL of the SpeedSMS-style gateway
	Webhook     string `json:"webhook"`  // any path under it takes messages
	SMTP        string `json:"smtp"`     // host:port
	SMPP        string `json:"smpp"`     // host:port of the fake SMSC (SMPP 3.4)
	// Control serves GET / (these URLs) and, for each fake f in fcm,
	// esms, speedsms, webhook, smtp and smpp, /f/_fault (the fault plan,
	// see fault.ParseJSON) and GET /f/_messages; and for fcm and the SMS
	// gateways GET /f/_stats (FCMStats, SMSStats) and GET /f/_counts
	// (Counts: per recipient, without the messages); and the fake SMSC's
	// POST /smpp/_receipts, /smpp/_drop and /smpp/_bind (see
	// smppfake.Server.MountControl).
	Control string `json:"control"`
}

// StartAll starts every fake with default options; see Start.
func StartAll(ctx context.Context) (*Set, error) { return Start(ctx, Options{}) }

// Start starts every fake on 127.0.0.1 at free ports, and a control
// server. The set closes when ctx ends or Close is called. On error
// nothing is left running.
func Start(ctx context.Context, opts Options) (_ *Set, err error) {
	s := &Set{}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	cb := func(name string) smsfake.Options {
		o := smsfake.Options{Now: opts.Now}
		t, ok := opts.CallbackTokens[name]
		if opts.CallbackBase == "" || opts.CallbackTokens != nil && !ok {
			return o // no reports; with tokens, none for a fake without one
		}
		o.CallbackURL = opts.CallbackBase + name
		if ok {
			o.CallbackHeader = http.Header{"X-Loa-Callback-Token": {t}}
		}
		return o
	}
	fo := fcmfake.Options{Now: opts.Now, RequireAuth: opts.FCMRequireAuth}
	switch opts.FCMRecord {
	case "", "all":
	case "counts":
		fo.CountOnly = true
	case "total":
		fo.TotalOnly = true
	default:
		return nil, fmt.Errorf("fakes: FCMRecord %q is not all, counts or total", opts.FCMRecord)
	}
	if s.FCM, err = fcmfake.New(fo); err != nil {
		return nil, err
	}
	if s.ESMS, err = smsfake.NewESMS(smsfake.ESMSOptions{Options: cb("esms")}); err != nil {
		return nil, err
	}
	if s.SpeedSMS, err = smsfake.NewSpeedSMS(smsfake.SpeedSMSOptions{Options: cb("speedsms")}); err != nil {
		return nil, err
	}
	if s.Webhook, err = smsfake.NewWebhook(smsfake.WebhookOptions{Options: cb("webhook")}); err != nil {
		return nil, err
	}
	if s.SMTP, err = smtpfake.New(smtpfake.Options{Now: opts.Now, Username: opts.SMTPUsername, Password: opts.SMTPPassword,
		RequireTLS: opts.SMTPUsername != ""}); err != nil {
		return nil, err
	}
	if s.SMPP, err = smppfake.New(smppfake.Options{Now: opts.Now, SystemID: opts.SMPPSystemID, Password: opts.SMPPPassword}); err != nil {
		return nil, err
	}
	if s.controlLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("fakes: listen: %w", err)
	}
	s.control = &http.Server{Handler: s.controlHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.control.Serve(s.controlLn) }()
	context.AfterFunc(ctx, s.Close)
	return s, nil
}

func (s *Set) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(s.URLs())
	})
	s.FCM.Mount(mux, "/fcm/_fault")
	s.ESMS.Mount(mux, "/esms/_fault")
	s.SpeedSMS.Mount(mux, "/speedsms/_fault")
	s.Webhook.Mount(mux, "/webhook/_fault")
	s.SMTP.Mount(mux, "/smtp/_fault")
	s.SMPP.Mount(mux, "/smpp/_fault")
	s.SMPP.MountControl(mux, "/smpp")
	messages := map[string]func() any{
		"fcm":      func() any { return s.FCM.Messages() },
		"esms":     func() any { return s.ESMS.Messages() },
		"speedsms": func() any { return s.SpeedSMS.Messages() },
		"webhook":  func() any { return s.Webhook.Messages() },
		"smtp":     func() any { return s.SMTP.Messages() },
		"smpp":     func() any { return s.SMPP.Messages() },
	}
	mux.HandleFunc("GET /{fake}/_messages", func(w http.ResponseWriter, r *http.Request) {
		get, ok := messages[r.PathValue("fake")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(get())
	})
	stats := map[string]func() any{
		"fcm": func() any {
			return FCMStats{Count: s.FCM.Count(), Requests: s.FCM.Requests(), InFlight: s.FCM.InFlight(),
				MaxInFlight: s.FCM.MaxInFlight(), Connections: s.FCM.Connections(), TokenRequests: s.FCM.TokenRequests()}
		},
		"esms":     func() any { return smsStats(s.ESMS) },
		"speedsms": func() any { return smsStats(s.SpeedSMS) },
		"webhook":  func() any { return smsStats(s.Webhook) },
	}
	mux.HandleFunc("GET /{fake}/_stats", func(w http.ResponseWriter, r *http.Request) {
		get, ok := stats[r.PathValue("fake")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(get())
	})
	counts := map[string]func() (int, map[string]int){
		"fcm":      func() (int, map[string]int) { return s.FCM.Count(), s.FCM.Counts() },
		"esms":     func() (int, map[string]int) { return s.ESMS.Count(), s.ESMS.Counts() },
		"speedsms": func() (int, map[string]int) { return s.SpeedSMS.Count(), s.SpeedSMS.Counts() },
		"webhook":  func() (int, map[string]int) { return s.Webhook.Count(), s.Webhook.Counts() },
	}
	mux.HandleFunc("GET /{fake}/_counts", func(w http.ResponseWriter, r *http.Request) {
		get, ok := counts[r.PathValue("fake")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		n, by := get()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(Counts{Count: n, ByRecipient: by})
	})
	return mux
}

// FCMStats is what GET /fcm/_stats answers: the FCM fake's counters.
type FCMStats struct {
	Count         int   `json:"count"`          // messages accepted
	Requests      int   `json:"requests"`       // send requests, whatever their outcome
	InFlight      int64 `json:"in_flight"`      // send requests being handled now
	MaxInFlight   int64 `json:"max_in_flight"`  // the most at once
	Connections   int64 `json:"connections"`    // connections opened to the API
	TokenRequests int   `json:"token_requests"` // OAuth2 tokens issued
}

// SMSStats is what GET /{gateway}/_stats answers for an SMS gateway fake.
type SMSStats struct {
	Count         int `json:"count"`          // messages accepted
	Requests      int `json:"requests"`       // send requests, whatever their outcome
	ReportsOK     int `json:"reports_ok"`     // delivery reports Loa took
	ReportsFailed int `json:"reports_failed"` // delivery reports that could not be posted
}

type smsGateway interface {
	Count() int
	Requests() int
	ReportsOK() int
	ReportsFailed() int
}

func smsStats(g smsGateway) SMSStats {
	return SMSStats{Count: g.Count(), Requests: g.Requests(), ReportsOK: g.ReportsOK(), ReportsFailed: g.ReportsFailed()}
}

// Counts is what GET /{fake}/_counts answers: the number of messages
// accepted, and per recipient (device token, "/topics/…", phone number).
type Counts struct {
	Count       int            `json:"count"`
	ByRecipient map[string]int `json:"by_recipient"`
}

// URLs returns where the fakes listen.
func (s *Set) URLs() URLs {
	return URLs{
		FCMEndpoint: s.FCM.Endpoint(),
		FCMTokenURL: s.FCM.TokenURL(),
		ESMS:        s.ESMS.URL(),
		SpeedSMS:    s.SpeedSMS.URL(),
		Webhook:     s.Webhook.URL(),
		SMTP:        s.SMTP.Addr(),
		SMPP:        s.SMPP.Addr(),
		Control:     "http://" + s.controlLn.Addr().String(),
	}
}

// String lists the URLs one per line, for a terminal.
func (u URLs) String() string {
	var b strings.Builder
	for _, kv := range [][2]string{
		{"fcm", u.FCMEndpoint}, {"fcm token", u.FCMTokenURL}, {"esms", u.ESMS}, {"speedsms", u.SpeedSMS},
		{"webhook", u.Webhook}, {"smtp", u.SMTP}, {"smpp", u.SMPP}, {"control", u.Control},
	} {
		fmt.Fprintf(&b, "%-10s %s\n", kv[0], kv[1])
	}
	return b.String()
}

// Close stops every fake and the control server, releasing held
// requests. It is idempotent and safe to call from several goroutines.
func (s *Set) Close() {
	s.closeOnce.Do(func() {
		if s.control != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := s.control.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
				_ = s.control.Close()
			}
		}
		if s.FCM != nil {
			s.FCM.Close()
		}
		if s.ESMS != nil {
			s.ESMS.Close()
		}
		if s.SpeedSMS != nil {
			s.SpeedSMS.Close()
		}
		if s.Webhook != nil {
			s.Webhook.Close()
		}
		if s.SMTP != nil {
			s.SMTP.Close()
		}
		if s.SMPP != nil {
			s.SMPP.Close()
		}
	})
}
