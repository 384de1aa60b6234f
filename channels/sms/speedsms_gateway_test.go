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

func startSpeedSMS(t *testing.T, opts smsfake.SpeedSMSOptions) *smsfake.SpeedSMS {
	t.Helper()
	f, err := smsfake.NewSpeedSMS(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

func newSpeedSMS(t *testing.T, f *smsfake.SpeedSMS, change func(*sms.SpeedSMSConfig)) *sms.SpeedSMS {
	t.Helper()
	cfg := sms.SpeedSMSConfig{BaseURL: f.URL(), AccessToken: "token"}
	if change != nil {
		change(&cfg)
	}
	p, err := sms.NewSpeedSMS(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSpeedSMSContract(t *testing.T) {
	channeltest.Run(t, func(t *testing.T) (channels.Channel, channeltest.Sink) {
		f := startSpeedSMS(t, smsfake.SpeedSMSOptions{AccessToken: "token"})
		return newSpeedSMS(t, f, nil), gatewaySink{f}
	})
}

func TestSpeedSMSRequestAndReport(t *testing.T) {
	url, reports := reportReceiver(t)
	f := startSpeedSMS(t, smsfake.SpeedSMSOptions{AccessToken: "token", Options: smsfake.Options{CallbackURL: url}})
	p := newSpeedSMS(t, f, func(c *sms.SpeedSMSConfig) { c.Sender = "UBND-TINH" })
	res, err := p.Send(context.Background(), gatewayMessage("+84 912 345 678"))
	if err != nil {
		t.Fatal(err)
	}
	msgs := f.Messages()
	if len(msgs) != 1 {
		t.Fatalf("fake has %d messages", len(msgs))
	}
	got := msgs[0]
	if got.Phone != "84912345678" || got.Sender != "UBND-TINH" || got.SMSType != "3" || got.Content != gatewayMessage("").Body {
		t.Errorf("message = %+v", got)
	}
	if res.Provider != "speedsms" || res.ProviderID != got.ID {
		t.Errorf("Result = %+v, fake id %s", res, got.ID)
	}
	r := awaitReport(t, reports)
	if r["type"] != "report" || r["phone"] != "84912345678" || r["status"] != float64(smsfake.SpeedSMSDelivered) {
		t.Errorf("delivery report = %v", r)
	}

	wrong := newSpeedSMS(t, f, func(c *sms.SpeedSMSConfig) { c.AccessToken = "wrong" })
	if ce := asChannelError(t, errOf(wrong.Send(context.Background(), gatewayMessage("84912345678")))); ce.Class != channels.Permanent || ce.Code != "AUTH" {
		t.Errorf("wrong token: %v, want permanent AUTH", ce)
	}
}

func TestSpeedSMSErrors(t *testing.T) {
	f := startSpeedSMS(t, smsfake.SpeedSMSOptions{})
	p := newSpeedSMS(t, f, nil)
	for _, tc := range []struct {
		fault      string
		status     int
		retryAfter time.Duration
		class      channels.Class
		code       string
	}{
		{fault: smsfake.SpeedSMSIPLocked, class: channels.Permanent, code: "007"},
		{fault: smsfake.SpeedSMSAccountLocked, class: channels.Permanent, code: "008"},
		{fault: smsfake.SpeedSMSInvalidPhone, class: channels.Permanent, code: "105"},
		{fault: smsfake.SpeedSMSBadParams, class: channels.Permanent, code: "101"},
		{fault: smsfake.SpeedSMSNoBalance, class: channels.Transient, code: "300"},
		{fault: smsfake.SpeedSMSInternalError, class: channels.Transient, code: "500"},
		{status: 502, class: channels.Transient, code: "502"},
		{status: 503, retryAfter: 7 * time.Second, class: channels.Transient, code: "503"},
		{status: 403, class: channels.Permanent, code: "AUTH"},
	} {
		t.Run(tc.fault+tc.code, func(t *testing.T) {
			f.Reset()
			if tc.fault != "" {
				f.SetError(tc.fault, 0)
			} else {
				f.SetStatus(tc.status, tc.retryAfter)
			}
			defer f.ResetFaults()
			ce := asChannelError(t, errOf(p.Send(context.Background(), gatewayMessage("84912345678"))))
			if ce.Class != tc.class || ce.Code != tc.code || ce.RetryAfter != tc.retryAfter {
				t.Errorf("got %s %s retry %s (%v), want %s %s retry %s", ce.Class, ce.Code, ce.RetryAfter, ce, tc.class, tc.code, tc.retryAfter)
			}
			if f.Count() != 0 {
				t.Errorf("fake recorded a failed send")
			}
		})
	}
}

func TestSpeedSMSTimeout(t *testing.T) {
	f := startSpeedSMS(t, smsfake.SpeedSMSOptions{})
	p := newSpeedSMS(t, f, func(c *sms.SpeedSMSConfig) { c.Timeout = 150 * time.Millisecond })
	f.SetHang(true)
	start := time.Now()
	ce := asChannelError(t, errOf(p.Send(context.Background(), gatewayMessage("84912345678"))))
	if ce.Class != channels.Transient || ce.Code != "timeout" {
		t.Errorf("hung gateway: %v, want transient timeout", ce)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %s with a 150ms timeout", took)
	}
}
