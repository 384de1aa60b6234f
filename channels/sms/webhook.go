package sms

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/channels"
)

// FieldMap names the JSON fields a webhook gateway expects. Empty names
// take the defaults; a field named "-" is left out.
type FieldMap struct {
	Phone   string // the 84… number; default "phone"
	Content string // the text; default "content"
	ID      string // Loa's delivery key, echoed in delivery reports; default "id"
	// Unicode receives true when the text needs UCS-2; default "-"
	// (left out).
	Unicode string
	// ResponseID is the field of the gateway's JSON answer holding its
	// message id, for Result.ProviderID; default "id". Answers that are
	// not JSON objects are accepted without an id.
	ResponseID string
}

func (f FieldMap) withDefaults() FieldMap {
	def := func(s *string, d string) {
		if *s == "" {
			*s = d
		}
	}
	def(&f.Phone, "phone")
	def(&f.Content, "content")
	def(&f.ID, "id")
	def(&f.Unicode, "-")
	def(&f.ResponseID, "id")
	return f
}

// WebhookConfig configures a generic JSON webhook gateway.
type WebhookConfig struct {
	// Name identifies this gateway; "webhook" when empty.
	Name string
	// URL receives one POST per message. Required, http or https.
	URL string
	// Headers are added to every request (for example Authorization).
	Headers map[string]string
	// Fields names the request and answer fields.
	Fields FieldMap
	// Static fields are added to every request body as given (for
	// example a sender name); they never override the mapped fields.
	Static map[string]any
	// HTTPClient is used for calls; when nil, a client of the provider's
	// own that keeps a connection for each send under way.
	HTTPClient *http.Client
	// Timeout bounds one call; DefaultTimeout when zero.
	Timeout time.Duration
	// Now is the clock expiry is checked on; time.Now when nil.
	Now func() time.Time
}

// Validate reports the first thing wrong with c.
func (c WebhookConfig) Validate() error {
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		return errors.New("sms: webhook config: URL is required")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("sms: webhook config: URL %q is not an http(s) URL", c.URL)
	case c.Timeout < 0:
		return errors.New("sms: webhook config: Timeout must not be negative")
	}
	return nil
}

// Webhook sends SMS by POSTing a JSON object to a configured URL. It
// implements Provider and is safe for concurrent use.
type Webhook struct {
	common
	cfg    WebhookConfig
	fields FieldMap
}

// NewWebhook validates cfg and returns the provider. It does not contact
// the gateway.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Webhook{
		common: newCommon(cfg.Name, "webhook", cfg.HTTPClient, cfg.Timeout, cfg.Now),
		cfg:    cfg,
		fields: cfg.Fields.withDefaults(),
	}, nil
}

// Name returns the gateway's name.
func (w *Webhook) Name() string { return w.name }

// Send POSTs {Static…, phone: m.To, content: m.Body, id: delivery key} (with
// the configured field names) to the URL. Any 2xx answer is success; the
// Result's ProviderID is the answer's ResponseID field when there is one.
//
// Errors (*channels.Error): Expired without calling the gateway; Permanent
// for an invalid number, empty text, HTTP 401/403 ("AUTH") and other 4xx;
// Transient for timeouts, network errors, ctx ending and HTTP 408/429/5xx
// (with Retry-After).
func (w *Webhook) Send(ctx context.Context, m channels.Message) (channels.Result, error) {
	out, err := w.prepare(m)
	if err != nil {
		return channels.Result{}, err
	}
	body := make(map[string]any, len(w.cfg.Static)+4)
	for k, v := range w.cfg.Static {
		body[k] = v
	}
	set := func(field string, v any) {
		if field != "-" {
			body[field] = v
		}
	}
	set(w.fields.Phone, out.phone)
	set(w.fields.Content, out.content)
	set(w.fields.ID, out.key)
	set(w.fields.Unicode, out.unicode)
	a, err := w.post(ctx, w.cfg.URL, body, func(h http.Header) {
		for k, v := range w.cfg.Headers {
			h.Set(k, v)
		}
	})
	if err != nil {
		return channels.Result{}, err
	}
	if a.status/100 != 2 {
		return channels.Result{}, w.statusError(a)
	}
	res := channels.Result{Provider: w.name}
	var ans map[string]any
	dec := json.NewDecoder(bytes.NewReader(a.body))
	dec.UseNumber()
	if w.fields.ResponseID != "-" && dec.Decode(&ans) == nil {
		switch id := ans[w.fields.ResponseID].(type) {
		case string:
			res.ProviderID = id
		case json.Number:
			res.ProviderID = id.String()
		}
	}
	return res, nil
}

// parseWebhookReport reads a generic webhook gateway's delivery report
// (ReportWebhook) with f's field names.
func parseWebhookReport(m reportFields, f ReportFormat) (Report, error) {
	idf, stf := f.IDField, f.StatusField
	if idf == "" {
		idf = "gateway_id"
	}
	if stf == "" {
		stf = "status"
	}
	var (
		r   Report
		err error
	)
	if r.ProviderID, err = m.get(idf, true); err != nil {
		return Report{}, err
	}
	r.Phone, _ = m.get("phone", false)
	st, err := m.get(stf, true)
	if err != nil {
		return Report{}, err
	}
	r.Status = webhookStatus(st)
	r.Reason = "delivery report: " + st
	return r, nil
}

// webhookStatus maps the words gateways use (including SMPP's DLR states)
// to a final status, or "" for one that is not final.
func webhookStatus(s string) loa.Status {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "delivered", "delivrd", "success", "ok":
		return loa.StatusDelivered
	case "undelivered", "undeliv", "failed", "rejected", "rejectd", "expired", "deleted", "unknown", "error":
		return loa.StatusUndelivered
	}
	return ""
}
