package smpp_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/channels/sms/smpp"
	"github.com/loa-hub/loa/channels/sms/smpp/pdu"
	"github.com/loa-hub/loa/internal/fakes/smppfake"
)

// rawSMSC accepts one connection, answers its bind and hands the
// connection to the test.
func rawSMSC(t *testing.T) (addr string, conns <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		t.Cleanup(func() { c.Close() })
		p, err := pdu.ReadFrom(c, 0)
		if err != nil {
			return
		}
		b, _ := pdu.Marshal(&pdu.PDU{ID: p.ID.Response(), Sequence: p.Sequence, Body: &pdu.BindResp{SystemID: "raw"}})
		c.Write(b)
		ch <- c
	}()
	return ln.Addr().String(), ch
}

func write(t *testing.T, c net.Conn, p *pdu.PDU) {
	t.Helper()
	b, err := pdu.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, c net.Conn) *pdu.PDU {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	p, err := pdu.ReadFrom(c, 0)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func dial(t *testing.T, cfg smpp.SessionConfig) *smpp.Session {
	t.Helper()
	cfg.Log = slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := smpp.Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func TestSessionAnswersTheSMSC(t *testing.T) {
	addr, conns := rawSMSC(t)
	s := dial(t, smpp.SessionConfig{Addr: addr, SystemID: "loa"})
	c := <-conns
	if s.SystemID != "raw" {
		t.Errorf("SystemID %q", s.SystemID)
	}
	// A command the ESME does not know: generic_nack.
	write(t, c, &pdu.PDU{ID: pdu.CommandID(0x00000077), Sequence: 5, Body: &pdu.Raw{1, 2}})
	if p := read(t, c); p.ID != pdu.GenericNack || p.Status != pdu.RInvCmdID || p.Sequence != 5 {
		t.Errorf("unknown command answered %+v", p)
	}
	// A frame that does not decode: generic_nack, and the session goes on.
	c.Write([]byte{0, 0, 0, 0x11, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 6, 0xff})
	if p := read(t, c); p.ID != pdu.GenericNack || p.Status != pdu.RInvCmdLen || p.Sequence != 6 {
		t.Errorf("malformed frame answered %+v", p)
	}
	write(t, c, &pdu.PDU{ID: pdu.EnquireLink, Sequence: 7})
	if p := read(t, c); p.ID != pdu.EnquireLinkResp || p.Sequence != 7 {
		t.Errorf("enquire_link answered %+v", p)
	}
	// A generic_nack to a request fails that request.
	done := make(chan error, 1)
	go func() { _, err := s.Submit(context.Background(), &pdu.SM{DestinationAddr: "84912345678"}); done <- err }()
	p := read(t, c)
	write(t, c, &pdu.PDU{ID: pdu.GenericNack, Status: pdu.RInvCmdLen, Sequence: p.Sequence})
	var se *smpp.StatusError
	if err := <-done; !errors.As(err, &se) || se.Status != pdu.RInvCmdLen {
		t.Errorf("submit answered by generic_nack: %v", err)
	}
	// The SMSC unbinds: the session answers and ends.
	write(t, c, &pdu.PDU{ID: pdu.Unbind, Sequence: 8})
	if p := read(t, c); p.ID != pdu.UnbindResp || p.Sequence != 8 {
		t.Errorf("unbind answered %+v", p)
	}
	<-s.Done()
	if !errors.Is(s.Err(), smpp.ErrClosed) || !strings.Contains(s.Err().Error(), "unbound") {
		t.Errorf("Err = %v", s.Err())
	}
}

func TestSessionResponseTimeoutAndDeadLink(t *testing.T) {
	addr, conns := rawSMSC(t)
	s := dial(t, smpp.SessionConfig{Addr: addr, SystemID: "loa", ResponseTimeout: 200 * time.Millisecond, EnquireLink: 300 * time.Millisecond})
	c := <-conns
	go func() { // read and never answer
		for {
			if _, err := pdu.ReadFrom(c, 0); err != nil {
				return
			}
		}
	}()
	if _, err := s.Submit(context.Background(), &pdu.SM{DestinationAddr: "84912345678"}); !errors.Is(err, smpp.ErrTimeout) {
		t.Errorf("unanswered submit: %v, want ErrTimeout", err)
	}
	select {
	case <-s.Done():
		if !strings.Contains(s.Err().Error(), "enquire_link") {
			t.Errorf("Err = %v", s.Err())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an unanswered enquire_link did not end the session")
	}
}

func TestTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	client := srv.Client().Transport.(*http.Transport).TLSClientConfig
	s := start(t, smppfake.Options{TLS: srv.TLS}, func(c *smpp.Config) { c.Session.TLS = client.Clone() })
	ctx, cancel := ctx30()
	defer cancel()
	res, err := s.client.Send(ctx, msg("84912345678", "x"))
	if err != nil {
		t.Fatal(err)
	}
	if r := s.reports.next(t); r.MessageID != res.ProviderID {
		t.Errorf("report %+v", r)
	}
}

// TestWindowKeepsASlotForUrgentRequests: with the window's other slots
// taken by bulk submits the SMSC has not answered, and more bulk waiting,
// a code's submit still goes out at once on the slot kept for urgent
// requests.
func TestWindowKeepsASlotForUrgentRequests(t *testing.T) {
	addr, conns := rawSMSC(t)
	s := dial(t, smpp.SessionConfig{Addr: addr, SystemID: "loa", Window: 4, Reserve: 1, ResponseTimeout: time.Minute, EnquireLink: time.Hour})
	c := <-conns
	bulk := channels.WithRank(context.Background(), channels.Bulk)
	for range 10 {
		go s.Submit(bulk, &pdu.SM{DestinationAddr: "84900000001"}) // held: never answered
	}
	for range 3 {
		if p := read(t, c); p.Body.(*pdu.SM).DestinationAddr != "84900000001" {
			t.Fatalf("unexpected %v", p)
		}
	}
	go s.Submit(channels.WithRank(context.Background(), channels.Urgent), &pdu.SM{DestinationAddr: "84912345678"})
	if p := read(t, c); p.Body.(*pdu.SM).DestinationAddr != "84912345678" {
		t.Fatalf("the fourth submit on the wire is to %s, want the code's", p.Body.(*pdu.SM).DestinationAddr)
	}
	c.Close() // the SMSC goes: the session ends and the held submits with it
	<-s.Done()
}
