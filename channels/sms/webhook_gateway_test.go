package sms_test

import (
	"context"
	"testing"
	"time"

	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/channels/channeltest"
	"github.com/loa-hub/loa/channels/sms"
	"github.com/loa-hub/loa/internal/fakes/smsfake"
)

func startWebhook(t *testing.T, opts smsfake.WebhookOptions) *smsfake.Webhook {
	t.Helper()
	f, err := smsfake.NewWebhook(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

func newWebhook(t *testing.T, f *smsfake.Webhook, change func(*sms.WebhookConfig)) *sms.Webhook {
	t.Helper()
	cfg := sms.WebhookConfig{URL: f.URL() + "/send"}
	if change != nil {
		change(&cfg)
	}
	p, err := sms.NewWebhook(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestWebhookContract(t *testing.T) {
	channeltest.Run(t, func(t *testing.T) (channels.Channel, channeltest.Sink) {
		f := startWebhook(t, smsfake.WebhookOptions{})
		return newWebhook(t, f, nil), gatewaySink{f}
	})
}

func TestWebhookFieldMap(t *testing.T) {
	url, reports := reportReceiver(t)
	f := startWebhook(t, smsfake.WebhookOptions{PhoneField: "msisdn", ContentField: "text", IDField: "ref",
		Options: smsfake.Options{CallbackURL: url}})
	p := newWebhook(t, f, func(c *sms.WebhookConfig) {
		c.Name = "viettel-hook"
		c.Fields = sms.FieldMap{Phone: "msisdn", Content: "text", ID: "ref", Unicode: "ucs2"}
		c.Static = map[string]any{"sender": "UBND-TINH", "msisdn": "must not win"}
		c.Headers = map[string]string{"Authorization": "Bearer abc"}
	})
	res, err := p.Send(context.Background(), gatewayMessage("0912345678"))
	if err != nil {
		t.Fatal(err)
	}
	msgs := f.Messages()
	if len(msgs) != 1 {
		t.Fatalf("fake has %d messages", len(msgs))
	}
	b := msgs[0].Body
	if b["msisdn"] != "84912345678" || b["text"] != gatewayMessage("").Body || b["sender"] != "UBND-TINH" || b["ucs2"] != true {
		t.Errorf("body = %v", b)
	}
	ref, _ := b["ref"].(string)
	if ref == "" {
		t.Errorf("no delivery key in %v", b)
	}
	if msgs[0].Path != "/send" {
		t.Errorf("path = %q", msgs[0].Path)
	}
	if res.Provider != "viettel-hook" || res.ProviderID != msgs[0].ID {
		t.Errorf("Result = %+v", res)
	}
	if f.CountFor("84912345678") != 1 {
		t.Errorf("CountFor = %d", f.CountFor("84912345678"))
	}
	r := awaitReport(t, reports)
	if r["id"] != ref || r["status"] != "delivered" {
		t.Errorf("report = %v, want id %s", r, ref)
	}
}

func TestWebhookErrors(t *testing.T) {
	f := startWebhook(t, smsfake.WebhookOptions{})
	p := newWebhook(t, f, nil)
	for _, tc := range []struct {
		fault      string
		retryAfter time.Duration
		class      channels.Class
		code       string
	}{
		{"500", 0, channels.Transient, "500"},
		{"503", 7 * time.Second, channels.Transient, "503"},
		{"429", 30 * time.Second, channels.Transient, "429"},
		{"408", 0, channels.Transient, "408"},
		{"400", 0, channels.Permanent, "400"},
		{"422", 0, channels.Permanent, "422"},
		{"401", 0, channels.Permanent, "AUTH"},
	} {
		t.Run(tc.fault, func(t *testing.T) {
			f.SetError(tc.fault, tc.retryAfter)
			defer f.ResetFaults()
			ce := asChannelError(t, errOf(p.Send(context.Background(), gatewayMessage("84912345678"))))
			if ce.Class != tc.class || ce.Code != tc.code || ce.RetryAfter != tc.retryAfter {
				t.Errorf("got %s %s retry %s, want %s %s retry %s", ce.Class, ce.Code, ce.RetryAfter, tc.class, tc.code, tc.retryAfter)
			}
		})
	}
	if f.Count() != 0 {
		t.Errorf("fake recorded failed sends")
	}
}

func TestWebhookPerRecipientFault(t *testing.T) {
	f := startWebhook(t, smsfake.WebhookOptions{})
	p := newWebhook(t, f, nil)
	f.FailRecipient("84912345678", "400")
	if ce := asChannelError(t, errOf(p.Send(context.Background(), gatewayMessage("84912345678")))); ce.Class != channels.Permanent {
		t.Errorf("failed recipient: %v", ce)
	}
	if _, err := p.Send(context.Background(), gatewayMessage("84912345679")); err != nil {
		t.Errorf("other recipient: %v", err)
	}
}

func TestWebhookConfigValidate(t *testing.T) {
	for _, cfg := range []sms.WebhookConfig{{}, {URL: "ftp://x"}, {URL: "http://"}, {URL: "http://x", Timeout: -1}} {
		if cfg.Validate() == nil {
			t.Errorf("Validate(%+v) = nil", cfg)
		}
	}
}
