package sms_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/channels/channeltest"
	"github.com/loa-hub/loa/channels/sms"
	"github.com/loa-hub/loa/internal/fakes/smsfake"
)

func newPair(t *testing.T) (*sms.Failover, *smsfake.ESMS, *smsfake.SpeedSMS) {
	t.Helper()
	first := startESMS(t, smsfake.ESMSOptions{})
	second := startSpeedSMS(t, smsfake.SpeedSMSOptions{})
	f, err := sms.NewFailover("", newESMS(t, first, nil), newSpeedSMS(t, second, nil))
	if err != nil {
		t.Fatal(err)
	}
	return f, first, second
}

func TestFailoverContract(t *testing.T) {
	channeltest.Run(t, func(t *testing.T) (channels.Channel, channeltest.Sink) {
		f, first, second := newPair(t)
		return f, gatewaySink{first, second}
	})
}

func TestFailoverMovesOnWhenFirstIsDown(t *testing.T) {
	f, first, second := newPair(t)
	if f.Name() != "failover(esms,speedsms)" {
		t.Errorf("Name = %q", f.Name())
	}
	first.OutageFor(time.Hour)
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := f.Send(context.Background(), gatewayMessage(fmt.Sprintf("8490%07d", i)))
			if err == nil && res.Provider != "speedsms" {
				err = fmt.Errorf("sent by %s", res.Provider)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if first.Count() != 0 || second.Count() != n || len(second.Duplicates()) != 0 {
		t.Errorf("first accepted %d, second %d (duplicates %v); want 0, %d, none", first.Count(), second.Count(), second.Duplicates(), n)
	}

	// The first recovers: traffic goes back to it.
	first.OutageUntil(time.Time{})
	res, err := f.Send(context.Background(), gatewayMessage("84912345678"))
	if err != nil || res.Provider != "esms" {
		t.Errorf("after recovery: %+v, %v", res, err)
	}
}

func TestFailoverStopsOnPermanent(t *testing.T) {
	f, first, second := newPair(t)
	first.SetError(smsfake.ESMSBadBrandname, 0)
	ce := asChannelError(t, errOf(f.Send(context.Background(), gatewayMessage("84912345678"))))
	if ce.Class != channels.Permanent || ce.Provider != "esms" {
		t.Errorf("got %v, want esms's permanent error", ce)
	}
	if second.Requests() != 0 {
		t.Errorf("second provider was tried after a permanent error")
	}
}

func TestFailoverAllDownReturnsLast(t *testing.T) {
	f, first, second := newPair(t)
	first.SetStatus(503, 0)
	second.SetStatus(502, 3*time.Second)
	ce := asChannelError(t, errOf(f.Send(context.Background(), gatewayMessage("84912345678"))))
	if ce.Class != channels.Transient || ce.Provider != "speedsms" || ce.RetryAfter != 3*time.Second {
		t.Errorf("got %v (retry %s), want speedsms's transient error", ce, ce.RetryAfter)
	}
	if first.Requests() != 1 || second.Requests() != 1 {
		t.Errorf("requests %d, %d; want 1, 1", first.Requests(), second.Requests())
	}
}

func TestFailoverStopsWhenContextEnds(t *testing.T) {
	f, first, second := newPair(t)
	held := first.Holding()
	first.SetHang(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- errOf(f.Send(ctx, gatewayMessage("84912345678"))) }()
	<-held
	cancel()
	if ce := asChannelError(t, <-done); ce.Class != channels.Transient {
		t.Errorf("got %v", ce)
	}
	if second.Requests() != 0 {
		t.Errorf("second provider was tried after the context ended")
	}
}

func TestNewFailoverNeedsProviders(t *testing.T) {
	if _, err := sms.NewFailover("x"); err == nil {
		t.Error("NewFailover with no providers: nil error")
	}
	if _, err := sms.NewFailover("x", nil); err == nil {
		t.Error("NewFailover with a nil provider: nil error")
	}
}

// TestFailoverKeepsACodeTheGatewayMayHave: the first gateway takes the
// request and never answers. A code or an alert (lanes sent at most once)
// is not sent through the second gateway — the first may have it — and
// its error says it may have been delivered; a message of another lane
// fails over. A gateway that answers 503 did not take the message: a code
// fails over then.
func TestFailoverKeepsACodeTheGatewayMayHave(t *testing.T) {
	first := startESMS(t, smsfake.ESMSOptions{})
	second := startSpeedSMS(t, smsfake.SpeedSMSOptions{})
	f, err := sms.NewFailover("", newESMS(t, first, func(c *sms.ESMSConfig) { c.Timeout = 100 * time.Millisecond }), newSpeedSMS(t, second, nil))
	if err != nil {
		t.Fatal(err)
	}
	first.SetHang(true)
	for _, lane := range []channels.Lane{channels.LaneOTP, channels.LaneAlert} {
		m := gatewayMessage("84912345678")
		m.Lane = lane
		err := errOf(f.Send(context.Background(), m))
		if !channels.MaybeDelivered(err) {
			t.Errorf("%s: the first gateway did not answer: got %v, want an error that leaves it maybe delivered", lane, err)
		}
	}
	if n := second.Requests(); n != 0 {
		t.Errorf("the second gateway got %d requests for codes and alerts the first may have", n)
	}
	m := gatewayMessage("84912345679")
	m.Lane = channels.LaneDirect
	if res, err := f.Send(context.Background(), m); err != nil || res.Provider != "speedsms" {
		t.Errorf("a direct notification: %+v, %v; want it sent by the second gateway", res, err)
	}

	first.SetHang(false)
	first.SetStatus(503, 0)
	m = gatewayMessage("84912345670")
	m.Lane = channels.LaneOTP
	if res, err := f.Send(context.Background(), m); err != nil || res.Provider != "speedsms" {
		t.Errorf("a code the first gateway refused with 503: %+v, %v; want it sent by the second", res, err)
	}
}
