package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/channels"
)

// DefaultESMSBaseURL is eSMS's API host.
const DefaultESMSBaseURL = "https://rest.esms.vn"

// esmsSendPath is eSMS's v4 JSON send method.
const esmsSendPath = "/MainService.svc/json/SendMultipleMessage_V4_post_json/"

// ESMSConfig configures an eSMS-style gateway account.
type ESMSConfig struct {
	// Name identifies this account in results and metrics; "esms" when
	// empty.
	Name string
	// BaseURL is the API host; DefaultESMSBaseURL when empty.
	BaseURL string
	// APIKey and SecretKey authenticate the account (eSMS ApiKey,
	// SecretKey). Both are required.
	APIKey, SecretKey string
	// Brandname is the registered sender name; required for brandname
	// SMS types.
	Brandname string
	// SMSType is eSMS's SmsType: "2" brandname customer care (the
	// default), "8" fixed number.
	SMSType string
	// CallbackURL, when set, receives eSMS's delivery reports (Loa's
	// POST /v1/callbacks/sms/{provider}).
	CallbackURL string
	// Sandbox asks eSMS to accept without sending.
	Sandbox bool
	// HTTPClient is used for calls; when nil, a client of the provider's
	// own that keeps a connection for each send under way.
	HTTPClient *http.Client
	// Timeout bounds one call; DefaultTimeout when zero.
	Timeout time.Duration
	// Now is the clock expiry is checked on; time.Now when nil.
	Now func() time.Time
}

// Validate reports the first thing wrong with c.
func (c ESMSConfig) Validate() error {
	switch {
	case c.APIKey == "" || c.SecretKey == "":
		return errors.New("sms: esms config: APIKey and SecretKey are required")
	case c.Timeout < 0:
		return errors.New("sms: esms config: Timeout must not be negative")
	}
	return nil
}

// ESMS sends SMS through an eSMS-style JSON gateway. It implements
// Provider and is safe for concurrent use.
type ESMS struct {
	common
	cfg ESMSConfig
	url string
}

// NewESMS validates cfg and returns the provider. It does not contact the
// gateway.
func NewESMS(cfg ESMSConfig) (*ESMS, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultESMSBaseURL
	}
	if cfg.SMSType == "" {
		cfg.SMSType = "2"
	}
	return &ESMS{
		common: newCommon(cfg.Name, "esms", cfg.HTTPClient, cfg.Timeout, cfg.Now),
		cfg:    cfg,
		url:    strings.TrimSuffix(cfg.BaseURL, "/") + esmsSendPath,
	}, nil
}

// Name returns the account's name.
func (e *ESMS) Name() string { return e.name }

type esmsRequest struct {
	APIKey      string `json:"ApiKey"`
	SecretKey   string `json:"SecretKey"`
	Phone       string `json:"Phone"`
	Content     string `json:"Content"`
	Brandname   string `json:"Brandname,omitempty"`
	SMSType     string `json:"SmsType"`
	IsUnicode   string `json:"IsUnicode"`
	Sandbox     string `json:"Sandbox,omitempty"`
	RequestID   string `json:"RequestId,omitempty"`
	CallbackURL string `json:"CallbackUrl,omitempty"`
}

type esmsResponse struct {
	CodeResult   string `json:"CodeResult"`
	SMSID        string `json:"SMSID"`
	ErrorMessage string `json:"ErrorMessage"`
}

// esmsPermanent are the CodeResult values that resending cannot fix;
// every other non-100 code (99 unknown error, 103 balance, codes Loa does
// not know) is Transient, so it is retried or failed over, never dropped.
var esmsPermanent = map[string]string{
	"101": "AUTH",      // ApiKey/SecretKey wrong
	"102": "AUTH",      // account locked
	"104": "BRANDNAME", // brandname not registered
	"118": "SMS_TYPE",  // SmsType invalid
	"119": "BRANDNAME", // advertising brandname below its minimum
}

// Send sends m.Body to the phone number m.To (Title and Data are not
// sent). IsUnicode is set when the text does not fit GSM-7; RequestId is a
// hash of the notification id and number, so the gateway can recognise a
// resend. The Result's ProviderID is eSMS's SMSID.
//
// Errors (*channels.Error): Expired without calling the gateway; Permanent
// for an invalid number, empty text, CodeResult 101/102 (auth), 104/119
// (brandname), 118, and HTTP 4xx; Transient for timeouts, network errors,
// ctx ending, HTTP 408/429/5xx (with Retry-After) and any other
// CodeResult. Code carries the CodeResult or HTTP status.
func (e *ESMS) Send(ctx context.Context, m channels.Message) (channels.Result, error) {
	out, err := e.prepare(m)
	if err != nil {
		return channels.Result{}, err
	}
	req := esmsRequest{
		APIKey: e.cfg.APIKey, SecretKey: e.cfg.SecretKey, Phone: out.phone, Content: out.content,
		Brandname: e.cfg.Brandname, SMSType: e.cfg.SMSType, IsUnicode: "0",
		RequestID: out.key, CallbackURL: e.cfg.CallbackURL,
	}
	if out.unicode {
		req.IsUnicode = "1"
	}
	if e.cfg.Sandbox {
		req.Sandbox = "1"
	}
	a, err := e.post(ctx, e.url, req, nil)
	if err != nil {
		return channels.Result{}, err
	}
	if a.status/100 != 2 {
		return channels.Result{}, e.statusError(a)
	}
	var r esmsResponse
	if err := json.Unmarshal(a.body, &r); err != nil {
		return channels.Result{}, &channels.Error{Class: channels.Transient, Provider: e.name, Code: "BAD_ANSWER",
			Err: fmt.Errorf("sms: esms: undecodable answer %q: %w", snippet(a.body), err)}
	}
	if r.CodeResult == "100" {
		return channels.Result{Provider: e.name, ProviderID: r.SMSID}, nil
	}
	ce := &channels.Error{Class: channels.Transient, Provider: e.name, Code: r.CodeResult,
		Err: channels.Refused(fmt.Errorf("sms: esms: CodeResult %s: %s", r.CodeResult, r.ErrorMessage))}
	if _, ok := esmsPermanent[r.CodeResult]; ok {
		ce.Class = channels.Permanent
	}
	return channels.Result{}, ce
}

// parseESMSReport reads an eSMS-style delivery report (ReportESMS).
func parseESMSReport(m reportFields) (Report, error) {
	var (
		r   Report
		err error
	)
	if r.ProviderID, err = m.get("SMSID", true); err != nil {
		return Report{}, err
	}
	r.Phone, _ = m.get("Phone", false)
	st, err := m.get("SendStatus", true)
	if err != nil {
		return Report{}, err
	}
	n, err := strconv.Atoi(st)
	if err != nil {
		return Report{}, loa.Invalid("SendStatus", "must be a whole number")
	}
	switch {
	case n == 5:
		r.Status = loa.StatusDelivered
	case n >= 1 && n <= 3: // still on the way
	default:
		r.Status = loa.StatusUndelivered
	}
	r.Reason = "delivery report: SendStatus " + st
	return r, nil
}
