package smppfake_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/loa-hub/loa/channels/sms/smpp"
	"github.com/loa-hub/loa/channels/sms/smpp/pdu"
	"github.com/loa-hub/loa/internal/fakes/smppfake"
)

func post(t *testing.T, url, body string) int {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestControl: the SMSC's controls over HTTP, as `loa-fakes` serves them.
func TestControl(t *testing.T) {
	fake, err := smppfake.New(smppfake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	mux := http.NewServeMux()
	fake.MountControl(mux, "/smpp")
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := smpp.SessionConfig{Addr: fake.Addr(), SystemID: "loa", Log: slog.New(slog.DiscardHandler)}

	if c := post(t, srv.URL+"/smpp/_bind", `{"error": "ESME_RINVPASWD"}`); c != http.StatusNoContent {
		t.Fatalf("_bind: %d", c)
	}
	var se *smpp.StatusError
	if _, err := smpp.Dial(ctx, cfg); !errors.As(err, &se) || se.Status != pdu.RInvPaswd {
		t.Errorf("bind after _bind: %v", err)
	}
	if c := post(t, srv.URL+"/smpp/_bind", `{"error": "NOT_A_STATUS"}`); c != http.StatusBadRequest {
		t.Errorf("_bind with an unknown status: %d", c)
	}
	post(t, srv.URL+"/smpp/_bind", `{}`)
	s, err := smpp.Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	post(t, srv.URL+"/smpp/_receipts", `{"states": {"84911111111": "none"}}`)
	if _, err := s.Submit(ctx, &pdu.SM{DestinationAddr: "84911111111", RegisteredDelivery: 1, ShortMessage: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if n := len(fake.Receipts()); n != 0 {
		t.Errorf("%d receipts for a number set to none", n)
	}
	if c := post(t, srv.URL+"/smpp/_drop", ``); c != http.StatusNoContent {
		t.Fatalf("_drop: %d", c)
	}
	select {
	case <-s.Done():
	case <-ctx.Done():
		t.Fatal("_drop did not drop the session")
	}
}
