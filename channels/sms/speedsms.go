package sms

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/channels"
)

// DefaultSpeedSMSBaseURL is SpeedSMS's API host.
const DefaultSpeedSMSBaseURL = "https://api.speedsms.vn"

const speedSendPath = "/index.php/sms/send"

// SpeedSMSConfig configures a SpeedSMS-style gateway account.
type SpeedSMSConfig struct {
	// Name identifies this account; "speedsms" when empty.
	Name string
	// BaseURL is the API host; DefaultSpeedSMSBaseURL when empty.
	BaseURL string
	// AccessToken authenticates the account (Basic auth user name).
	// Required.
	AccessToken string
	// Sender is the brandname or device id to send from; "" lets the
	// gateway choose.
	Sender string
	// SMSType is SpeedSMS's sms_type: 2 customer care from a random
	// number (the default when Sender is empty), 3 brandname (the default
	// when Sender is set), 4 default "Notify" brandname, 5 Android app.
	SMSType int
	// HTTPClient is used for calls; when nil, a client of the provider's
	// own that keeps a connection for each send under way.
	HTTPClient *http.Client
	// Timeout bounds one call; DefaultTimeout when zero.
	Timeout time.Duration
	// Now is the clock expiry is checked on; time.Now when nil.
	Now func() time.Time
}

// Validate reports the first thing wrong with c.
func (c SpeedSMSConfig) Validate() error {
	switch {
	case c.AccessToken == "":
		return errors.New("sms: speedsms config: AccessToken is required")
	case c.Timeout < 0:
		return errors.New("sms: speedsms config: Timeout must not be negative")
	}
	return nil
}

// SpeedSMS sends SMS through a SpeedSMS-style gateway. It implements
// Provider and is safe for concurrent use.
type SpeedSMS struct {
	common
	cfg  SpeedSMSConfig
	url  string
	auth string // Basic auth header value
}

// NewSpeedSMS validates cfg and returns the provider. It does not contact
// the gateway.
func NewSpeedSMS(cfg SpeedSMSConfig) (*SpeedSMS, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultSpeedSMSBaseURL
	}
	if cfg.SMSType == 0 {
		cfg.SMSType = 2
		if cfg.Sender != "" {
			cfg.SMSType = 3
		}
	}
	return &SpeedSMS{
		common: newCommon(cfg.Name, "speedsms", cfg.HTTPClient, cfg.Timeout, cfg.Now),
		cfg:    cfg,
		url:    strings.TrimSuffix(cfg.BaseURL, "/") + speedSendPath,
		auth:   "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.AccessToken+":x")),
	}, nil
}

// Name returns the account's name.
func (s *SpeedSMS) Name() string { return s.name }

type speedRequest struct {
	To      []string `json:"to"`
	Content string   `json:"content"`
	SMSType int      `json:"sms_type"`
	Sender  string   `json:"sender"`
}

type speedResponse struct {
	Status  string `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Data    struct {
		TranID       json.Number `json:"tranId"`
		InvalidPhone []string    `json:"invalidPhone"`
	} `json:"data"`
}

// speedPermanent are the error codes resending cannot fix; any other code
// (300 balance, 500 internal, codes Loa does not know) is Transient.
var speedPermanent = map[string]string{
	"007": "AUTH", // IP locked
	"008": "AUTH", // account locked
	"009": "AUTH", // account may not use the API
	"101": "BAD_REQUEST",
	"105": "INVALID_PHONE",
	"110": "BAD_REQUEST", // content encoding not supported
	"113": "BAD_REQUEST", // content too long
}

// Send sends m.Body to the phone number m.To (Title and Data are not
// sent). The Result's ProviderID is SpeedSMS's tranId.
//
// Errors (*channels.Error): Expired without calling the gateway; Permanent
// for an invalid number (locally, code 105, or listed in invalidPhone),
// auth (HTTP 401/403, codes 007-009), malformed requests (101, 110, 113)
// and other HTTP 4xx; Transient for timeouts, network errors, ctx ending,
// HTTP 408/429/5xx (with Retry-After) and any other code.
func (s *SpeedSMS) Send(ctx context.Context, m channels.Message) (channels.Result, error) {
	out, err := s.prepare(m)
	if err != nil {
		return channels.Result{}, err
	}
	req := speedRequest{To: []string{out.phone}, Content: out.content, SMSType: s.cfg.SMSType, Sender: s.cfg.Sender}
	a, err := s.post(ctx, s.url, req, func(h http.Header) { h.Set("Authorization", s.auth) })
	if err != nil {
		return channels.Result{}, err
	}
	var r speedResponse
	decodeErr := json.Unmarshal(a.body, &r)
	if a.status/100 != 2 {
		return channels.Result{}, s.statusError(a)
	}
	if decodeErr != nil {
		return channels.Result{}, &channels.Error{Class: channels.Transient, Provider: s.name, Code: "BAD_ANSWER",
			Err: fmt.Errorf("sms: speedsms: undecodable answer %q: %w", snippet(a.body), decodeErr)}
	}
	if r.Status == "success" && r.Code == "00" {
		if slices.Contains(r.Data.InvalidPhone, out.phone) {
			return channels.Result{}, &channels.Error{Class: channels.Permanent, Provider: s.name, Code: "INVALID_PHONE",
				Err: errors.New("sms: speedsms: gateway lists the number as invalid")}
		}
		return channels.Result{Provider: s.name, ProviderID: r.Data.TranID.String()}, nil
	}
	ce := &channels.Error{Class: channels.Transient, Provider: s.name, Code: r.Code,
		Err: channels.Refused(fmt.Errorf("sms: speedsms: %s %s: %s", r.Status, r.Code, r.Message))}
	if _, ok := speedPermanent[r.Code]; ok {
		ce.Class = channels.Permanent
	}
	if ce.Code == "" {
		ce.Code = strconv.Itoa(a.status)
	}
	return channels.Result{}, ce
}

// parseSpeedSMSReport reads a SpeedSMS-style delivery report
// (ReportSpeedSMS); other notices are not reports.
func parseSpeedSMSReport(m reportFields) (Report, error) {
	if typ, _ := m.get("type", false); typ != "" && typ != "report" {
		return Report{}, nil // an incoming message or another notice: not ours to record
	}
	var (
		r   Report
		err error
	)
	if r.ProviderID, err = m.get("tranId", true); err != nil {
		return Report{}, err
	}
	r.Phone, _ = m.get("phone", false)
	st, err := m.get("status", true)
	if err != nil {
		return Report{}, err
	}
	n, err := strconv.Atoi(st)
	if err != nil {
		return Report{}, loa.Invalid("status", "must be a whole number")
	}
	r.Status = loa.StatusUndelivered
	if n == 0 {
		r.Status = loa.StatusDelivered
	}
	r.Reason = "delivery report: status " + st
	return r, nil
}
