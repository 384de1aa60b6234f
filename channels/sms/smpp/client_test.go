package smpp_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/channels/channeltest"
	"github.com/loa-hub/loa/channels/sms"
	"github.com/loa-hub/loa/channels/sms/smpp"
	"github.com/loa-hub/loa/channels/sms/smpp/pdu"
	"github.com/loa-hub/loa/internal/fakes/smppfake"
)

// reports is a ReportSink that keeps what it is given.
type reports struct {
	mu   sync.Mutex
	got  []smpp.Report
	fail int // fail this many reports first
	ch   chan smpp.Report
}

func newReports() *reports { return &reports{ch: make(chan smpp.Report, 1000)} }

func (r *reports) Report(_ context.Context, rep smpp.Report) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail > 0 {
		r.fail--
		return errors.New("store unavailable")
	}
	r.got = append(r.got, rep)
	r.ch <- rep
	return nil
}

func (r *reports) next(t *testing.T) smpp.Report {
	t.Helper()
	select {
	case rep := <-r.ch:
		return rep
	case <-time.After(20 * time.Second):
		t.Fatal("no delivery report")
		return smpp.Report{}
	}
}

type setup struct {
	fake    *smppfake.Server
	client  *smpp.Client
	reports *reports
}

// start runs a fake SMSC and a Client bound to it; change adjusts the
// Client's config before it starts.
func start(t *testing.T, fopts smppfake.Options, change func(*smpp.Config)) setup {
	t.Helper()
	if fopts.SystemID == "" {
		fopts.SystemID, fopts.Password = "loa", "secret"
	}
	fake, err := smppfake.New(fopts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	rep := newReports()
	cfg := smpp.Config{
		Name:       "smsc-test",
		Session:    smpp.SessionConfig{Addr: fake.Addr(), SystemID: "loa", Password: "secret", ResponseTimeout: 5 * time.Second},
		SourceAddr: "LOA",
		Reports:    rep,
		Log:        slog.New(slog.DiscardHandler),
	}
	if change != nil {
		change(&cfg)
	}
	c, err := smpp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return setup{fake: fake, client: c, reports: rep}
}

func msg(to, body string) channels.Message {
	return channels.Message{NotificationID: "n-" + to, Kind: "otp", Channel: channels.SMS, To: to, Body: body,
		ExpiresAt: time.Now().Add(5 * time.Minute)}
}

type sink struct{ *smppfake.Server }

func (s sink) Count(to string) int              { return s.CountFor(to) }
func (s sink) Address(i int) string             { return fmt.Sprintf("8490%07d", i) }
func (s sink) Stall() (<-chan struct{}, func()) { return channeltest.StallFake(s.Server) }
func ctx30() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}
func classOf(t *testing.T, err error) *channels.Error { t.Helper(); return asChannelError(t, err) }
func asChannelError(t *testing.T, err error) *channels.Error {
	t.Helper()
	var ce *channels.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *channels.Error", err, err)
	}
	return ce
}

func TestContract(t *testing.T) {
	channeltest.Run(t, func(t *testing.T) (channels.Channel, channeltest.Sink) {
		s := start(t, smppfake.Options{}, nil)
		return s.client, sink{s.fake}
	})
}

func TestGSM7BrandnameMessage(t *testing.T) {
	s := start(t, smppfake.Options{}, nil)
	ctx, cancel := ctx30()
	defer cancel()
	res, err := s.client.Send(ctx, msg("0912345678", "Ma xac thuc cua ban: 123456 {het han 5 phut}"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Provider != "smsc-test" || res.ProviderID == "" {
		t.Errorf("Result %+v", res)
	}
	m := s.fake.Messages()[0]
	if m.To != "84912345678" || m.DestTON != 1 || m.DestNPI != 1 || m.From != "LOA" || m.SourceTON != 5 || m.SourceNPI != 0 {
		t.Errorf("addresses: %+v", m)
	}
	if m.DataCoding != 0 || m.Text != "Ma xac thuc cua ban: 123456 {het han 5 phut}" || m.Parts != 1 || m.RegisteredDelivery != 1 {
		t.Errorf("content: %+v", m)
	}
	// Validity: the five minutes left, relative (about 00:04:59).
	if !strings.HasPrefix(m.ValidityPeriod, "00000000045") || !strings.HasSuffix(m.ValidityPeriod, "000R") {
		t.Errorf("validity period %q", m.ValidityPeriod)
	}
	if m.IDs[0] != res.ProviderID {
		t.Errorf("ProviderID %q, fake's id %q", res.ProviderID, m.IDs[0])
	}
}

// vietnamese3 is a Vietnamese text of three UCS-2 segments.
var vietnamese3 = strings.Repeat("Lũ khẩn cấp trên sông Thu Bồn, mực nước tại Hội An 3,2 m. ", 3)

func TestLongUCS2ArrivesReassembled(t *testing.T) {
	for _, mode := range []smpp.Concatenation{smpp.UDH, smpp.SAR} {
		t.Run(map[smpp.Concatenation]string{smpp.UDH: "udh", smpp.SAR: "sar"}[mode], func(t *testing.T) {
			s := start(t, smppfake.Options{}, func(c *smpp.Config) { c.Concatenation = mode })
			enc, _, segs := sms.Segments(vietnamese3)
			if enc != sms.UCS2 || segs != 3 {
				t.Fatalf("test text: %v, %d segments; want UCS-2, 3", enc, segs)
			}
			ctx, cancel := ctx30()
			defer cancel()
			res, err := s.client.Send(ctx, msg("84912345678", vietnamese3))
			if err != nil {
				t.Fatal(err)
			}
			if s.fake.Count() != 1 {
				t.Fatalf("fake has %d whole messages, want 1", s.fake.Count())
			}
			m := s.fake.Messages()[0]
			want := map[smpp.Concatenation]string{smpp.UDH: "udh8", smpp.SAR: "sar"}[mode]
			if m.Text != vietnamese3 || m.Parts != 3 || m.DataCoding != pdu.CodingUCS2 || m.Concat != want {
				t.Errorf("fake got %d parts (%s), coding %d, text %q", m.Parts, m.Concat, m.DataCoding, m.Text)
			}
			if m.IDs[0] != res.ProviderID {
				t.Errorf("ProviderID %q is not the first part's id %v", res.ProviderID, m.IDs)
			}
			// One report for the message, once all three parts are delivered.
			r := s.reports.next(t)
			if r.MessageID != res.ProviderID || r.Status != smpp.Delivered || r.Parts != 3 || !r.Matched {
				t.Errorf("report %+v", r)
			}
			// Every part's receipt has been answered by now; none made a
			// second report.
			if err := s.fake.WaitAcked(ctx, 3); err != nil {
				t.Fatal(err)
			}
			s.reports.mu.Lock()
			n := len(s.reports.got)
			s.reports.mu.Unlock()
			if n != 1 {
				t.Errorf("%d reports for one message", n)
			}
		})
	}
}

func TestReceiptBeforeResponseIsMatched(t *testing.T) {
	s := start(t, smppfake.Options{}, nil)
	s.fake.ReceiptsFirst(true)
	ctx, cancel := ctx30()
	defer cancel()
	m := msg("84912345678", "Ma xac thuc 654321")
	res, err := s.client.Send(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	r := s.reports.next(t)
	if r.MessageID != res.ProviderID || !r.Matched || r.NotificationID != m.NotificationID || r.To != "84912345678" || r.Status != smpp.Delivered {
		t.Errorf("report %+v for result %+v", r, res)
	}
	for _, rc := range s.fake.Receipts() {
		if rc.MessageID == res.ProviderID && rc.Attempts != 1 {
			t.Errorf("receipt sent %d times", rc.Attempts)
		}
	}
}

func TestReceiptStates(t *testing.T) {
	s := start(t, smppfake.Options{}, nil)
	for to, want := range map[string]smpp.ReceiptStatus{
		"84900000001": smpp.Undelivered, "84900000002": smpp.Expired, "84900000003": smpp.Undelivered,
	} {
		state := map[string]string{"84900000001": "UNDELIV", "84900000002": "EXPIRED", "84900000003": "REJECTD"}[to]
		s.fake.SetReceiptState(to, state)
		ctx, cancel := ctx30()
		res, err := s.client.Send(ctx, msg(to, "x"))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		r := s.reports.next(t)
		if r.MessageID != res.ProviderID || r.Status != want || r.Receipt.State != state {
			t.Errorf("%s: report %+v, want %s", to, r, want)
		}
	}
}

func TestSinkFailureMakesTheSMSCSendAgain(t *testing.T) {
	s := start(t, smppfake.Options{ReceiptRetry: 10 * time.Millisecond}, nil)
	s.reports.fail = 1
	ctx, cancel := ctx30()
	defer cancel()
	res, err := s.client.Send(ctx, msg("84912345678", "x"))
	if err != nil {
		t.Fatal(err)
	}
	r := s.reports.next(t)
	if r.MessageID != res.ProviderID {
		t.Errorf("report %+v", r)
	}
	if err := s.fake.WaitAcked(ctx, 1); err != nil {
		t.Fatal(err)
	}
	rc := s.fake.Receipts()
	if len(rc) != 1 || rc[0].Attempts != 2 || !rc[0].Acked {
		t.Errorf("receipts %+v, want one sent twice and acknowledged", rc)
	}
}

func TestThrottlingIsTransientWithBackoff(t *testing.T) {
	s := start(t, smppfake.Options{}, func(c *smpp.Config) { c.ThrottleBackoff = 3 * time.Second })
	for _, name := range []string{"ESME_RTHROTTLED", "RMSGQFUL"} {
		s.fake.FailNext(1, name)
		ctx, cancel := ctx30()
		_, err := s.client.Send(ctx, msg("84912345678", "x"))
		cancel()
		ce := classOf(t, err)
		if ce.Class != channels.Transient || ce.RetryAfter != 3*time.Second || !strings.Contains(name, ce.Code) {
			t.Errorf("%s: %v (retry %s)", name, ce, ce.RetryAfter)
		}
	}
	if s.fake.Count() != 0 {
		t.Errorf("throttled messages were accepted")
	}
}

func TestPermanentStatuses(t *testing.T) {
	s := start(t, smppfake.Options{}, nil)
	s.fake.FailRecipient("84912345678", "ESME_RINVDSTADR")
	ctx, cancel := ctx30()
	defer cancel()
	if ce := classOf(t, errOf(s.client.Send(ctx, msg("84912345678", "x")))); ce.Class != channels.Permanent || ce.Code != "RINVDSTADR" {
		t.Errorf("got %v", ce)
	}
	if ce := classOf(t, errOf(s.client.Send(ctx, msg("12345", "x")))); ce.Class != channels.Permanent || ce.Code != "INVALID_PHONE" {
		t.Errorf("invalid number: %v", ce)
	}
	s.fake.SetError("RSYSERR", 0)
	if ce := classOf(t, errOf(s.client.Send(ctx, msg("84912345679", "x")))); ce.Class != channels.Transient {
		t.Errorf("RSYSERR: %v", ce)
	}
}

func errOf(_ channels.Result, err error) error { return err }

func TestBindRefusedFailsFastThenRecovers(t *testing.T) {
	fake, err := smppfake.New(smppfake.Options{SystemID: "loa", Password: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	fake.SetBindError(pdu.RInvPaswd)
	c, err := smpp.New(smpp.Config{Session: smpp.SessionConfig{Addr: fake.Addr(), SystemID: "loa", Password: "secret"},
		SourceAddr: "LOA", ReconnectMin: 10 * time.Millisecond, ReconnectMax: 20 * time.Millisecond, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	// Once the bind has been refused, a send fails at once (breaker-visible).
	var ce *channels.Error
	for {
		sctx, scancel := ctx30()
		_, err := c.Send(sctx, msg("84912345678", "x"))
		scancel()
		ce = classOf(t, err)
		if ce.Code == "BIND" {
			break
		}
		if ce.Code != "NOT_BOUND" {
			t.Fatalf("before the bind: %v", ce)
		}
	}
	if ce.Class != channels.Transient || !strings.Contains(ce.Error(), "ESME_RINVPASWD") {
		t.Errorf("got %v", ce)
	}
	fake.SetBindError(pdu.OK)
	sctx, scancel := ctx30()
	defer scancel()
	for {
		_, err := c.Send(sctx, msg("84912345678", "x"))
		if err == nil {
			break
		}
		if sctx.Err() != nil {
			t.Fatalf("never bound again: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDroppedConnectionMidWindowLosesNothingSendsNothingTwice(t *testing.T) {
	s := start(t, smppfake.Options{}, func(c *smpp.Config) {
		c.Sessions = 2
		c.Session.Window = 20
		c.ReconnectMin, c.ReconnectMax = 5*time.Millisecond, 20*time.Millisecond
	})
	s.fake.SetLatency(2 * time.Millisecond)
	s.fake.DropAfter(37)
	const n = 200
	var wg sync.WaitGroup
	failures := make(chan error, n)
	retried := make(chan struct{}, n*10)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			// The dispatcher's part: try again after a transient failure.
			for {
				_, err := s.client.Send(ctx, msg(fmt.Sprintf("8490%07d", i), "x"))
				if err == nil {
					return
				}
				if channels.ClassOf(err) != channels.Transient || ctx.Err() != nil {
					failures <- err
					return
				}
				retried <- struct{}{}
				if i == 0 {
					s.fake.DropAfter(0)
				}
			}
		}()
	}
	wg.Wait()
	close(failures)
	for err := range failures {
		t.Error(err)
	}
	if len(retried) == 0 {
		t.Error("no send failed: the connection was not dropped mid-window")
	}
	if s.fake.Count() != n || len(s.fake.Duplicates()) != 0 {
		t.Errorf("fake accepted %d messages (duplicates %v), want %d once each", s.fake.Count(), s.fake.Duplicates(), n)
	}
}

func TestMobileOriginatedIsNotAReceipt(t *testing.T) {
	got := make(chan smpp.Incoming, 1)
	s := start(t, smppfake.Options{}, func(c *smpp.Config) { c.Incoming = func(in smpp.Incoming) { got <- in } })
	ctx, cancel := ctx30()
	defer cancel()
	if _, err := s.client.Send(ctx, msg("84912345678", "x")); err != nil { // the session is bound
		t.Fatal(err)
	}
	_ = s.reports.next(t)
	if !s.fake.SendMO("84912345678", "8088", "Có, tôi đã nhận") {
		t.Fatal("no session to send on")
	}
	select {
	case in := <-got:
		if in.From != "84912345678" || in.To != "8088" || in.Text != "Có, tôi đã nhận" {
			t.Errorf("incoming %+v", in)
		}
	case <-ctx.Done():
		t.Fatal("no incoming message")
	}
	s.reports.mu.Lock()
	defer s.reports.mu.Unlock()
	if len(s.reports.got) != 1 {
		t.Errorf("the MO message was reported as a receipt: %+v", s.reports.got)
	}
}

func TestPairBindsTransmitterAndReceiver(t *testing.T) {
	s := start(t, smppfake.Options{}, func(c *smpp.Config) { c.Pair = true })
	ctx, cancel := ctx30()
	defer cancel()
	res, err := s.client.Send(ctx, msg("84912345678", "x"))
	if err != nil {
		t.Fatal(err)
	}
	if r := s.reports.next(t); r.MessageID != res.ProviderID {
		t.Errorf("report %+v", r)
	}
	if b := s.fake.Bound(); b != 2 {
		t.Errorf("%d sessions bound, want a transmitter and a receiver", b)
	}
}

func TestRunUnbindsOnStop(t *testing.T) {
	fake, err := smppfake.New(smppfake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	c, err := smpp.New(smpp.Config{Session: smpp.SessionConfig{Addr: fake.Addr(), SystemID: "loa"}, SourceAddr: "LOA", Sessions: 3,
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	sctx, scancel := ctx30()
	defer scancel()
	if err := c.WaitBound(sctx, 3); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	if b, u := fake.Binds(), fake.Unbinds(); u != b || b == 0 {
		t.Errorf("%d sessions unbound when Run returned, of %d bound", u, b)
	}
}
