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

func startESMS(t *testing.T, opts smsfake.ESMSOptions) *smsfake.ESMS {
	t.Helper()
	f, err := smsfake.NewESMS(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

func newESMS(t *testing.T, f *smsfake.ESMS, change func(*sms.ESMSConfig)) *sms.ESMS {
	t.Helper()
	cfg := sms.ESMSConfig{BaseURL: f.URL(), APIKey: "key", SecretKey: "secret", Brandname: "UBND-TINH"}
	if change != nil {
		change(&cfg)
	}
	p, err := sms.NewESMS(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestESMSContract(t *testing.T) {
	channeltest.Run(t, func(t *testing.T) (channels.Channel, channeltest.Sink) {
		f := startESMS(t, smsfake.ESMSOptions{})
		return newESMS(t, f, nil), gatewaySink{f}
	})
}

func TestESMSRequest(t *testing.T) {
	url, reports := reportReceiver(t)
	f := startESMS(t, smsfake.ESMSOptions{APIKey: "key", SecretKey: "secret", Brandnames: []string{"UBND-TINH"}})
	p := newESMS(t, f, func(c *sms.ESMSConfig) { c.CallbackURL = url })

	m := gatewayMessage("0912 345 678")            // normalised to 84912345678
	m.Body = "Ma\u0303 xa\u0301c thu\u031b\u0323c" // combining marks: NFC makes "Mã xác thực"
	res, err := p.Send(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	ascii := gatewayMessage("84912345679")
	ascii.Body = "Ma xac thuc: 123456"
	if _, err := p.Send(context.Background(), ascii); err != nil {
		t.Fatal(err)
	}

	msgs := f.Messages()
	if len(msgs) != 2 {
		t.Fatalf("fake has %d messages", len(msgs))
	}
	got := msgs[0]
	if got.Phone != "84912345678" || got.Content != "Mã xác thực" || got.Sender != "UBND-TINH" || got.SMSType != "2" {
		t.Errorf("message = %+v", got)
	}
	if !got.Unicode || msgs[1].Unicode {
		t.Errorf("IsUnicode = %v for Vietnamese, %v for ASCII; want true, false", got.Unicode, msgs[1].Unicode)
	}
	if got.RequestID == "" || got.RequestID == msgs[1].RequestID {
		t.Errorf("RequestId %q, %q: want set and distinct per number", got.RequestID, msgs[1].RequestID)
	}
	if res.Provider != "esms" || res.ProviderID != got.ID {
		t.Errorf("Result = %+v, fake id %s", res, got.ID)
	}
	if got.CallbackURL != url {
		t.Errorf("CallbackUrl = %q", got.CallbackURL)
	}

	// Resending the same delivery carries the same RequestId.
	f.Reset()
	if _, err := p.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if again := f.Messages()[0].RequestID; again != got.RequestID {
		t.Errorf("RequestId changed on resend: %q then %q", got.RequestID, again)
	}

	r := awaitReport(t, reports)
	if r["SendStatus"] != float64(smsfake.ESMSDelivered) || r["SMSID"] == "" {
		t.Errorf("delivery report = %v", r)
	}
}

func TestESMSErrors(t *testing.T) {
	f := startESMS(t, smsfake.ESMSOptions{})
	p := newESMS(t, f, nil)
	for _, tc := range []struct {
		name       string
		fault      string
		status     int
		retryAfter time.Duration
		class      channels.Class
		code       string
	}{
		{name: "unknown", fault: smsfake.ESMSUnknownError, class: channels.Transient, code: "99"},
		{name: "auth", fault: smsfake.ESMSAuthFailed, class: channels.Permanent, code: "101"},
		{name: "locked", fault: smsfake.ESMSAccountLocked, class: channels.Permanent, code: "102"},
		{name: "balance", fault: smsfake.ESMSNoBalance, class: channels.Transient, code: "103"},
		{name: "brandname", fault: smsfake.ESMSBadBrandname, class: channels.Permanent, code: "104"},
		{name: "unlisted code", fault: "777", class: channels.Transient, code: "777"},
		{name: "http 503", status: 503, retryAfter: 7 * time.Second, class: channels.Transient, code: "503"},
		{name: "http 500", status: 500, class: channels.Transient, code: "500"},
		{name: "http 429", status: 429, retryAfter: time.Minute, class: channels.Transient, code: "429"},
		{name: "http 401", status: 401, class: channels.Permanent, code: "AUTH"},
		{name: "http 400", status: 400, class: channels.Permanent, code: "400"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.Reset()
			if tc.fault != "" {
				f.SetError(tc.fault, 0)
			} else {
				f.SetStatus(tc.status, tc.retryAfter)
			}
			defer f.ResetFaults()
			_, err := p.Send(context.Background(), gatewayMessage("84912345678"))
			ce := asChannelError(t, err)
			if ce.Class != tc.class || ce.Code != tc.code || ce.RetryAfter != tc.retryAfter {
				t.Errorf("got %s %s retry %s (%v), want %s %s retry %s", ce.Class, ce.Code, ce.RetryAfter, err, tc.class, tc.code, tc.retryAfter)
			}
			if f.Count() != 0 {
				t.Errorf("fake recorded a failed send")
			}
		})
	}
}

func TestESMSRealAuthAndBrandnameChecks(t *testing.T) {
	f := startESMS(t, smsfake.ESMSOptions{APIKey: "key", SecretKey: "secret", Brandnames: []string{"UBND-TINH"}})
	wrongKey := newESMS(t, f, func(c *sms.ESMSConfig) { c.SecretKey = "nope" })
	if ce := asChannelError(t, errOf(wrongKey.Send(context.Background(), gatewayMessage("84912345678")))); ce.Class != channels.Permanent || ce.Code != "101" {
		t.Errorf("wrong secret: %v", ce)
	}
	wrongBrand := newESMS(t, f, func(c *sms.ESMSConfig) { c.Brandname = "KHAC" })
	if ce := asChannelError(t, errOf(wrongBrand.Send(context.Background(), gatewayMessage("84912345678")))); ce.Class != channels.Permanent || ce.Code != "104" {
		t.Errorf("unregistered brandname: %v", ce)
	}
}

func TestESMSInvalidPhoneNotSent(t *testing.T) {
	f := startESMS(t, smsfake.ESMSOptions{})
	p := newESMS(t, f, nil)
	for _, to := range []string{"", "12345", "84241234567" /* Hà Nội landline */, "not a phone"} {
		ce := asChannelError(t, errOf(p.Send(context.Background(), gatewayMessage(to))))
		if ce.Class != channels.Permanent || ce.Code != "INVALID_PHONE" {
			t.Errorf("To %q: %v, want permanent INVALID_PHONE", to, ce)
		}
	}
	if f.Requests() != 0 {
		t.Errorf("gateway called %d times", f.Requests())
	}
}

func TestESMSTimeout(t *testing.T) {
	f := startESMS(t, smsfake.ESMSOptions{})
	p := newESMS(t, f, func(c *sms.ESMSConfig) { c.Timeout = 150 * time.Millisecond })
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

func TestESMSOutageWindow(t *testing.T) {
	now := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	clock := make(chan time.Time, 1)
	clock <- now
	tick := func() time.Time { t := <-clock; clock <- t; return t }
	f := startESMS(t, smsfake.ESMSOptions{Options: smsfake.Options{Now: tick}})
	p := newESMS(t, f, nil)
	f.OutageFor(time.Minute)
	if ce := asChannelError(t, errOf(p.Send(context.Background(), gatewayMessage("84912345678")))); ce.Class != channels.Transient || ce.Code != "503" {
		t.Errorf("during outage: %v", ce)
	}
	<-clock
	clock <- now.Add(2 * time.Minute)
	if _, err := p.Send(context.Background(), gatewayMessage("84912345678")); err != nil {
		t.Errorf("after outage: %v", err)
	}
}

func errOf[T any](_ T, err error) error { return err }
