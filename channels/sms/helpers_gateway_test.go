package sms_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/channels/channeltest"
)

// gatewayCounter is the part of a fake gateway the contract sink needs.
type gatewayCounter interface {
	CountFor(phone string) int
	channeltest.Hanger
}

// gatewaySink adapts fake gateways to channeltest.Sink; Count sums them.
type gatewaySink []gatewayCounter

func (s gatewaySink) Count(to string) int {
	n := 0
	for _, c := range s {
		n += c.CountFor(to)
	}
	return n
}

func (s gatewaySink) Address(i int) string { return fmt.Sprintf("8490%07d", i) }

// Stall holds requests at the first gateway only.
func (s gatewaySink) Stall() (<-chan struct{}, func()) { return channeltest.StallFake(s[0]) }

func gatewayMessage(to string) channels.Message {
	return channels.Message{
		NotificationID: "otp-1", Kind: "otp", Channel: channels.SMS, To: to,
		Body: "Mã xác thực của bạn là 123456", Priority: channels.High,
		ExpiresAt: time.Now().Add(5 * time.Minute),
	}
}

func asChannelError(t *testing.T, err error) *channels.Error {
	t.Helper()
	var ce *channels.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *channels.Error", err, err)
	}
	return ce
}

// reportReceiver is Loa's side of delivery-report callbacks: every JSON
// body posted to it arrives on the returned channel.
func reportReceiver(t *testing.T) (url string, reports <-chan map[string]any) {
	t.Helper()
	ch := make(chan map[string]any, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ch <- m
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/v1/callbacks/sms/test", ch
}

func awaitReport(t *testing.T, reports <-chan map[string]any) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	select {
	case r := <-reports:
		return r
	case <-ctx.Done():
		t.Fatal("no delivery report arrived")
		return nil
	}
}
