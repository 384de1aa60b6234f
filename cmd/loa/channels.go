package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/channels/breaker"
	"github.com/loa-hub/loa/channels/email"
	"github.com/loa-hub/loa/channels/fcm"
	"github.com/loa-hub/loa/channels/ratelimit"
	"github.com/loa-hub/loa/channels/sandbox"
	"github.com/loa-hub/loa/channels/sms"
	"github.com/loa-hub/loa/channels/sms/smpp"
	"github.com/loa-hub/loa/dispatcher"
	"github.com/loa-hub/loa/internal/metrics"
	"github.com/loa-hub/loa/internal/phone"
)

// providerConfig is the provider part of the configuration: which real
// providers exist, and how each is guarded. A channel with no provider
// configured is served by the sandbox.
type providerConfig struct {
	FCM     *fcmProvider
	SMS     []smsProvider // in failover order
	SMTP    *smtpProvider
	Breaker breaker.Settings
	// SMSFoldKinds are the event kinds whose SMS text is folded to ASCII
	// (LOA_SMS_FOLD_KINDS), for routes that carry only GSM-7.
	SMSFoldKinds []string
	// Reserve is the share of every provider's burst, and of FCM's
	// streams, that only codes and alerts may use (LOA_PRIORITY_RESERVE).
	Reserve float64
	// CallTimeout bounds one provider call once the send has its token
	// (LOA_SEND_TIMEOUT).
	CallTimeout time.Duration
}

type fcmProvider struct {
	ProjectID, CredentialsFile, Endpoint string
	InsecureTLS                          bool
	Connections                          int
	Limit                                ratelimit.Limit
}

type smsProvider struct {
	Name, Type, URL                    string // Type: esms | speedsms | webhook | smpp
	APIKey, SecretKey, Brandname, Kind string // esms (Kind is its SmsType)
	AccessToken, Sender                string // speedsms
	Fields                             sms.FieldMap
	CallbackURL, CallbackToken         string
	Limit                              ratelimit.Limit
	SMPP                               *smppProvider
}

// smppProvider is the SMPP part of an SMS provider (LOA_SMS_<NAME>_TYPE=smpp).
type smppProvider struct {
	Addr                           string
	SystemID, Password, SystemType string
	Source                         string
	SourceTON, SourceNPI           *uint8
	Sessions, Window               int
	Pair                           bool
	Concat                         smpp.Concatenation
	TLS, InsecureTLS               bool
	ResponseTimeout, EnquireLink   time.Duration
}

type smtpProvider struct {
	Host                     string
	Port                     int
	Username, Password, From string
	InsecureTLS              bool
	Limit                    ratelimit.Limit
}

// loadProviders reads the LOA_FCM_*, LOA_SMS_*, LOA_SMTP_* and
// LOA_BREAKER_* variables.
func loadProviders(getenv func(string) string, errs *[]error) providerConfig {
	var pc providerConfig
	pc.Breaker = breaker.DefaultSettings()
	pc.Breaker.Failures = uint32(intVar(getenv, "LOA_BREAKER_FAILURES", int(pc.Breaker.Failures), 1, 1000, errs))
	pc.Breaker.OpenFor = durVar(getenv, "LOA_BREAKER_OPEN_FOR", pc.Breaker.OpenFor, errs)
	pc.Breaker.HalfOpenRequests = uint32(intVar(getenv, "LOA_BREAKER_HALF_OPEN_REQUESTS", int(pc.Breaker.HalfOpenRequests), 1, 1000, errs))

	pc.Reserve = floatVar(getenv, "LOA_PRIORITY_RESERVE", 0.1, 0, 0.5, errs)
	limit := func(prefix string, rate int) ratelimit.Limit {
		r := intVar(getenv, prefix+"_RATE", rate, 1, 10_000_000, errs)
		burst := intVar(getenv, prefix+"_BURST", max(r/10, 1), 1, 10_000_000, errs)
		return ratelimit.Limit{PerSecond: float64(r), Burst: burst, Reserve: ratelimit.ReserveOf(burst, pc.Reserve)}
	}
	if p := getenv("LOA_FCM_PROJECT_ID"); p != "" {
		pc.FCM = &fcmProvider{
			ProjectID: p, CredentialsFile: getenv("LOA_FCM_CREDENTIALS_FILE"), Endpoint: getenv("LOA_FCM_ENDPOINT"),
			InsecureTLS: getenv("LOA_FCM_INSECURE_TLS") == "1",
			Connections: intVar(getenv, "LOA_FCM_CONNECTIONS", fcm.DefaultConnections, 1, 256, errs),
			// FCM's default project quota: 600,000 messages a minute.
			Limit: limit("LOA_FCM", 10_000),
		}
		if pc.FCM.CredentialsFile == "" && pc.FCM.Endpoint == "" {
			*errs = append(*errs, errors.New("LOA_FCM_CREDENTIALS_FILE is required with LOA_FCM_PROJECT_ID"))
		}
	}
	for _, k := range strings.Split(getenv("LOA_SMS_FOLD_KINDS"), ",") {
		if k = strings.TrimSpace(k); k != "" {
			pc.SMSFoldKinds = append(pc.SMSFoldKinds, k)
		}
	}
	if list := getenv("LOA_SMS_PROVIDERS"); list != "" {
		for _, name := range strings.Split(list, ",") {
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			v := func(k string) string { return getenv("LOA_SMS_" + strings.ToUpper(name) + "_" + k) }
			p := smsProvider{
				Name: name, Type: or(v("TYPE"), name), URL: v("URL"),
				APIKey: v("API_KEY"), SecretKey: v("SECRET_KEY"), Brandname: v("BRANDNAME"), Kind: v("SMS_TYPE"),
				AccessToken: v("ACCESS_TOKEN"), Sender: v("SENDER"),
				Fields:      sms.FieldMap{Phone: v("FIELD_PHONE"), Content: v("FIELD_CONTENT"), ID: v("FIELD_ID"), Unicode: v("FIELD_UNICODE"), ResponseID: v("FIELD_RESPONSE_ID")},
				CallbackURL: v("CALLBACK_URL"), CallbackToken: v("CALLBACK_TOKEN"),
				Limit: limit("LOA_SMS_"+strings.ToUpper(name), 50),
			}
			switch p.Type {
			case "esms", "speedsms", "webhook":
			case "smpp":
				p.SMPP = loadSMPP(getenv, "LOA_SMS_"+strings.ToUpper(name)+"_", errs)
			default:
				*errs = append(*errs, fmt.Errorf("LOA_SMS_%s_TYPE: %q is not esms, speedsms, webhook or smpp", strings.ToUpper(name), p.Type))
			}
			pc.SMS = append(pc.SMS, p)
		}
	}
	if h := getenv("LOA_SMTP_HOST"); h != "" {
		pc.SMTP = &smtpProvider{
			Host: h, Port: intVar(getenv, "LOA_SMTP_PORT", 587, 1, 65535, errs),
			Username: getenv("LOA_SMTP_USERNAME"), Password: getenv("LOA_SMTP_PASSWORD"), From: getenv("LOA_SMTP_FROM"),
			InsecureTLS: getenv("LOA_SMTP_INSECURE_TLS") == "1",
			Limit:       limit("LOA_SMTP", 20),
		}
		if pc.SMTP.From == "" {
			*errs = append(*errs, errors.New("LOA_SMTP_FROM is required with LOA_SMTP_HOST"))
		}
	}
	return pc
}

// loadSMPP reads an SMPP provider's LOA_SMS_<NAME>_* variables (prefix
// ends with "_").
func loadSMPP(getenv func(string) string, prefix string, errs *[]error) *smppProvider {
	v := func(k string) string { return getenv(prefix + k) }
	bad := func(k, format string, args ...any) { *errs = append(*errs, fmt.Errorf(prefix+k+": "+format, args...)) }
	p := &smppProvider{
		SystemID: v("SYSTEM_ID"), SystemType: v("SYSTEM_TYPE"), Source: v("SOURCE_ADDR"),
		Sessions:        intVar(getenv, prefix+"SESSIONS", 1, 1, 64, errs),
		Window:          intVar(getenv, prefix+"WINDOW", smpp.DefaultWindow, 1, 1000, errs),
		TLS:             v("TLS") == "1",
		InsecureTLS:     v("INSECURE_TLS") == "1",
		ResponseTimeout: durVar(getenv, prefix+"RESPONSE_TIMEOUT", smpp.DefaultResponseTimeout, errs),
		EnquireLink:     durVar(getenv, prefix+"ENQUIRE_LINK", smpp.DefaultEnquireLink, errs),
	}
	host := v("HOST")
	port := intVar(getenv, prefix+"PORT", 2775, 1, 65535, errs)
	if host == "" {
		bad("HOST", "required with TYPE=smpp")
	}
	p.Addr = net.JoinHostPort(host, strconv.Itoa(port))
	if p.SystemID == "" {
		bad("SYSTEM_ID", "required with TYPE=smpp")
	}
	switch f := v("PASSWORD_FILE"); {
	case f != "":
		b, err := os.ReadFile(f)
		if err != nil {
			bad("PASSWORD_FILE", "%v", err)
		}
		p.Password = strings.TrimRight(string(b), "\r\n")
	default:
		p.Password = v("PASSWORD")
	}
	if p.Source == "" {
		bad("SOURCE_ADDR", "required with TYPE=smpp (the brandname or number messages are sent from)")
	}
	for k, dst := range map[string]**uint8{"SOURCE_TON": &p.SourceTON, "SOURCE_NPI": &p.SourceNPI} {
		if s := v(k); s != "" {
			n, err := strconv.ParseUint(s, 10, 8)
			if err != nil {
				bad(k, "%q is not a number from 0 to 255", s)
				continue
			}
			u := uint8(n)
			*dst = &u
		}
	}
	switch b := or(v("BIND"), "transceiver"); b {
	case "transceiver":
	case "pair":
		p.Pair = true
	default:
		bad("BIND", "%q is not transceiver or pair", b)
	}
	switch c := or(v("CONCAT"), "udh"); c {
	case "udh":
		p.Concat = smpp.UDH
	case "sar":
		p.Concat = smpp.SAR
	default:
		bad("CONCAT", "%q is not udh or sar", c)
	}
	return p
}

// smppReports records SMPP delivery receipts through the same path as the
// gateways' delivery-report callbacks (held until their send is recorded).
// A carrier's EXPIRED receipt is undelivered in the ledger, with the state
// in its reason.
type smppReports struct {
	reports *dispatcher.Reports
	log     *slog.Logger
}

func (s smppReports) Report(ctx context.Context, rep smpp.Report) error {
	status := loa.StatusDelivered
	if rep.Status != smpp.Delivered {
		status = loa.StatusUndelivered
	}
	reason := "delivery receipt: stat:" + rep.Receipt.State
	if rep.Receipt.Err != "" {
		reason += " err:" + rep.Receipt.Err
	}
	matched, err := s.reports.Record(ctx, dispatcher.DeliveryReport{Provider: rep.Provider, ProviderID: rep.MessageID, Status: status, Reason: reason})
	// Not a warning: a receipt usually comes before the ledger has its
	// send (see api's SMS callbacks).
	if err == nil && !matched && s.log.Enabled(ctx, slog.LevelDebug) {
		s.log.Debug("delivery receipt matches no delivery yet; held until its send is recorded", slog.String("provider", rep.Provider),
			slog.String("provider_id", rep.MessageID), slog.String("phone", phone.Mask(rep.Receipt.Phone)), slog.String("status", string(status)))
	}
	return err
}

// guarded puts a provider behind its breaker and its shared rate limit:
// breaker outermost, so an open breaker spends no tokens.
//
// callTimeout bounds the provider call once it has its token; zero for a
// provider that bounds each call itself (given pc.CallTimeout when built),
// so that a send makes one deadline, not two.
func guarded(name string, p channels.Channel, limit ratelimit.Limit, callTimeout time.Duration, pc providerConfig, rdb redis.UniversalClient,
	keyPrefix string, log *slog.Logger, m *metrics.Metrics) (*breaker.Channel, error) {
	l, err := ratelimit.NewLimiter(rdb, keyPrefix+"rl:"+name, limit, ratelimit.Options{Name: name, Metrics: m, Log: log})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return breaker.New(name, ratelimit.New(name, p, l, ratelimit.ChannelConfig{Metrics: m, CallTimeout: callTimeout}), pc.Breaker, log, m)
}

// fcmConfig is the FCM client's configuration: each call bounded by
// LOA_SEND_TIMEOUT (pc.CallTimeout), as every provider's is.
func fcmConfig(p *fcmProvider, pc providerConfig, hc *http.Client, m *metrics.Metrics) fcm.Config {
	return fcm.Config{ProjectID: p.ProjectID, CredentialsFile: p.CredentialsFile, Endpoint: p.Endpoint, HTTPClient: hc,
		Connections: p.Connections, ReservedShare: pc.Reserve, CallTimeout: pc.CallTimeout, Metrics: m}
}

// runner is a provider that keeps connections open while it runs (an
// SMPP client).
type runner interface {
	Run(ctx context.Context) error
}

// buildChannels returns one Channel per kind: the configured providers
// (guarded, SMS in failover order) and the sandbox for the rest, and the
// providers that must run for their channel to send (SMPP clients, which
// pass delivery receipts to reports).
func buildChannels(ctx context.Context, pc providerConfig, rdb redis.UniversalClient, keyPrefix string, outbox *sandbox.Outbox,
	reports smpp.ReportSink, log *slog.Logger, m *metrics.Metrics) (map[channels.Name]channels.Channel, []runner, error) {
	out := map[channels.Name]channels.Channel{}
	var runners []runner
	var sandboxed []string

	if p := pc.FCM; p != nil {
		hc := &http.Client{}
		if p.InsecureTLS {
			hc.Transport = insecureTransport()
		}
		c, err := fcm.New(ctx, fcmConfig(p, pc, hc, m))
		if err != nil {
			return nil, nil, err
		}
		if out[channels.Push], err = guarded(c.Name(), c, p.Limit, 0, pc, rdb, keyPrefix, log, m); err != nil {
			return nil, nil, err
		}
	} else {
		out[channels.Push] = sandbox.New(channels.Push, outbox)
		sandboxed = append(sandboxed, "push")
	}

	if len(pc.SMS) > 0 {
		var providers []sms.Provider
		for _, p := range pc.SMS {
			var (
				prov sms.Provider
				err  error
			)
			callTimeout := time.Duration(0) // the HTTP gateways bound each call with pc.CallTimeout
			switch p.Type {
			case "esms":
				prov, err = sms.NewESMS(sms.ESMSConfig{Name: p.Name, BaseURL: p.URL, APIKey: p.APIKey, SecretKey: p.SecretKey,
					Brandname: p.Brandname, SMSType: p.Kind, CallbackURL: p.CallbackURL, Timeout: pc.CallTimeout})
			case "speedsms":
				prov, err = sms.NewSpeedSMS(sms.SpeedSMSConfig{Name: p.Name, BaseURL: p.URL, AccessToken: p.AccessToken, Sender: p.Sender,
					Timeout: pc.CallTimeout})
			case "webhook":
				prov, err = sms.NewWebhook(sms.WebhookConfig{Name: p.Name, URL: p.URL, Fields: p.Fields, Timeout: pc.CallTimeout})
			case "smpp":
				var c *smpp.Client
				c, err = newSMPP(p, pc.Reserve, reports, log)
				if err == nil {
					prov = c
					runners = append(runners, c)
				}
				callTimeout = pc.CallTimeout // a submit is bounded by the response timeout, the send by this too
			}
			if err != nil {
				return nil, nil, fmt.Errorf("SMS provider %s: %w", p.Name, err)
			}
			g, err := guarded(prov.Name(), prov, p.Limit, callTimeout, pc, rdb, keyPrefix, log, m)
			if err != nil {
				return nil, nil, err
			}
			providers = append(providers, g)
		}
		f, err := sms.NewFailover("", providers...)
		if err != nil {
			return nil, nil, err
		}
		out[channels.SMS] = f
		if len(pc.SMSFoldKinds) > 0 {
			out[channels.SMS] = sms.NewFolding(f, pc.SMSFoldKinds...)
		}
	} else {
		out[channels.SMS] = sandbox.New(channels.SMS, outbox)
		sandboxed = append(sandboxed, "sms")
	}

	if p := pc.SMTP; p != nil {
		cfg := email.Config{Host: p.Host, Port: p.Port, Username: p.Username, Password: p.Password, From: p.From, Timeout: pc.CallTimeout}
		if p.InsecureTLS {
			cfg.TLS = &tls.Config{InsecureSkipVerify: true, ServerName: p.Host} //nolint:gosec // LOA_SMTP_INSECURE_TLS: local fakes only
		}
		c, err := email.New(cfg)
		if err != nil {
			return nil, nil, err
		}
		name := "smtp:" + p.Host + ":" + strconv.Itoa(p.Port)
		if out[channels.Email], err = guarded(name, c, p.Limit, 0, pc, rdb, keyPrefix, log, m); err != nil {
			return nil, nil, err
		}
	} else {
		out[channels.Email] = sandbox.New(channels.Email, outbox)
		sandboxed = append(sandboxed, "email")
	}
	if len(sandboxed) > 0 {
		log.Info("channels without a provider use the sandbox (recorded in the dev outbox, not sent)",
			slog.String("channels", strings.Join(sandboxed, ",")))
	}
	return out, runners, nil
}

// newSMPP builds the SMPP client of an SMS provider.
func newSMPP(p smsProvider, reserve float64, reports smpp.ReportSink, log *slog.Logger) (*smpp.Client, error) {
	sp := p.SMPP
	cfg := smpp.Config{
		Name: p.Name,
		Session: smpp.SessionConfig{Addr: sp.Addr, SystemID: sp.SystemID, Password: sp.Password, SystemType: sp.SystemType,
			Window: sp.Window, Reserve: ratelimit.ReserveOf(sp.Window, reserve), ResponseTimeout: sp.ResponseTimeout, EnquireLink: sp.EnquireLink},
		Pair: sp.Pair, Sessions: sp.Sessions, SourceAddr: sp.Source, SourceTON: sp.SourceTON, SourceNPI: sp.SourceNPI,
		Concatenation: sp.Concat, Reports: reports, Log: log,
	}
	if sp.TLS {
		host, _, _ := net.SplitHostPort(sp.Addr)
		cfg.Session.TLS = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		if sp.InsecureTLS {
			cfg.Session.TLS.InsecureSkipVerify = true //nolint:gosec // LOA_SMS_<NAME>_INSECURE_TLS: local fakes only
		}
	}
	return smpp.New(cfg)
}

// insecureTransport trusts any certificate: for the local fakes' self-signed
// ones (LOA_*_INSECURE_TLS=1), never for a real provider.
func insecureTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // fakes only, by explicit setting
	t.ForceAttemptHTTP2 = true
	return t
}

func floatVar(getenv func(string) string, name string, def, lo, hi float64, errs *[]error) float64 {
	s := getenv(name)
	if s == "" {
		return def
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < lo || f > hi {
		*errs = append(*errs, fmt.Errorf("%s: %q is not a number from %g to %g", name, s, lo, hi))
		return def
	}
	return f
}
