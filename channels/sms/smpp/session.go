package smpp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/channels/gate"
	"github.com/loa-hub/loa/channels/sms/smpp/pdu"
)

// BindMode is how a session binds.
type BindMode uint8

// Bind modes.
const (
	// Transceiver submits and receives on one connection (bind_transceiver).
	Transceiver BindMode = iota
	// Transmitter only submits (bind_transmitter).
	Transmitter
	// Receiver only receives deliver_sm (bind_receiver).
	Receiver
)

func (m BindMode) command() pdu.CommandID {
	switch m {
	case Transmitter:
		return pdu.BindTransmitter
	case Receiver:
		return pdu.BindReceiver
	}
	return pdu.BindTransceiver
}

// String returns "transceiver", "transmitter" or "receiver".
func (m BindMode) String() string {
	switch m {
	case Transmitter:
		return "transmitter"
	case Receiver:
		return "receiver"
	}
	return "transceiver"
}

// Defaults of SessionConfig.
const (
	DefaultWindow          = 10
	DefaultResponseTimeout = 10 * time.Second
	DefaultEnquireLink     = 30 * time.Second
	DefaultDialTimeout     = 10 * time.Second
)

// SessionConfig configures one SMPP session.
type SessionConfig struct {
	// Addr is the SMSC's host:port.
	Addr string
	// TLS, when set, wraps the connection in TLS with this configuration.
	TLS *tls.Config
	// SystemID, Password and SystemType are the bind's credentials
	// (at most 15, 8 and 12 octets).
	SystemID, Password, SystemType string
	// Mode is the kind of bind; Transceiver when zero.
	Mode BindMode
	// Window is how many requests may await their response at once;
	// DefaultWindow when zero. A request beyond it waits for a slot, in
	// the order of the rank its context carries (channels.WithRank):
	// codes and alerts first.
	Window int
	// Reserve is how many of the window's slots only urgent requests
	// (codes, alerts, the session's own enquire_link) may take; at most
	// Window-1.
	Reserve int
	// ResponseTimeout bounds the wait for each response; a request that
	// gets none fails with ErrTimeout. DefaultResponseTimeout when zero.
	ResponseTimeout time.Duration
	// EnquireLink is how often the session checks the link with
	// enquire_link; DefaultEnquireLink when zero. A check that gets no
	// answer within ResponseTimeout closes the session.
	EnquireLink time.Duration
	// DialTimeout bounds connecting; DefaultDialTimeout when zero.
	DialTimeout time.Duration
	// Handler is called, on the session's reading goroutine, for every
	// deliver_sm and data_sm the SMSC sends. It must call respond exactly
	// once, now or later from any goroutine, with the command_status of
	// the response (pdu.OK to acknowledge). Nil acknowledges everything.
	Handler func(p *pdu.PDU, respond func(pdu.Status))
	// Log receives the session's events; slog.Default() when nil.
	Log *slog.Logger
}

func (c *SessionConfig) defaults() {
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	if c.ResponseTimeout <= 0 {
		c.ResponseTimeout = DefaultResponseTimeout
	}
	if c.EnquireLink <= 0 {
		c.EnquireLink = DefaultEnquireLink
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

// Errors of a session.
var (
	// ErrClosed: the session ended (closed, unbound by the SMSC, or the
	// connection dropped) before the request was answered. Whether the
	// SMSC acted on a request already written is unknown.
	ErrClosed = errors.New("smpp: session closed")
	// ErrTimeout: no response within ResponseTimeout.
	ErrTimeout = errors.New("smpp: no response in time")
)

// StatusError is a response whose command_status is not ESME_ROK.
type StatusError struct {
	Command pdu.CommandID // the request's command
	Status  pdu.Status
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("smpp: %s answered %s", e.Command, e.Status)
}

// BindError is a bind the SMSC refused, or a connection that failed
// before it was bound.
type BindError struct {
	Addr string
	Err  error
}

func (e *BindError) Error() string { return fmt.Sprintf("smpp: bind to %s: %v", e.Addr, e.Err) }
func (e *BindError) Unwrap() error { return e.Err }

// Session is one bound SMPP connection. Its methods are safe for
// concurrent use. It ends when Close is called, when the SMSC unbinds or
// the connection fails; Done is then closed and Err says why.
type Session struct {
	cfg  SessionConfig
	conn net.Conn
	log  *slog.Logger

	// SystemID is the SMSC's system_id from the bind response.
	SystemID string

	seq    atomic.Uint32
	window *gate.Gate
	// life ends when the session does, so a request waiting for a window
	// slot stops waiting.
	life    context.Context
	endLife context.CancelFunc

	wmu sync.Mutex // serialises writes

	mu      sync.Mutex
	pending map[uint32]chan *pdu.PDU
	err     error

	done      chan struct{}
	closeOnce sync.Once
	closing   atomic.Bool
	unbound   chan struct{} // closed when unbind_resp arrives
}

// Dial connects to cfg.Addr, binds, and returns the bound session. A
// refused bind or a failed connection is a *BindError (a refusal wraps
// the *StatusError). The session runs until Close or until the link
// fails; ctx bounds only the dial and the bind.
func Dial(ctx context.Context, cfg SessionConfig) (*Session, error) {
	cfg.defaults()
	d := net.Dialer{Timeout: cfg.DialTimeout}
	var (
		conn net.Conn
		err  error
	)
	if cfg.TLS != nil {
		td := tls.Dialer{NetDialer: &d, Config: cfg.TLS}
		conn, err = td.DialContext(ctx, "tcp", cfg.Addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", cfg.Addr)
	}
	if err != nil {
		return nil, &BindError{Addr: cfg.Addr, Err: err}
	}
	s := &Session{
		cfg: cfg, conn: conn, log: cfg.Log.With(slog.String("smsc", cfg.Addr)),
		window: gate.New(cfg.Window, cfg.Reserve), pending: map[uint32]chan *pdu.PDU{},
		done: make(chan struct{}), unbound: make(chan struct{}),
	}
	s.life, s.endLife = context.WithCancel(context.Background())
	if err := s.bind(ctx); err != nil {
		conn.Close()
		return nil, &BindError{Addr: cfg.Addr, Err: err}
	}
	go s.read()
	go s.keepAlive()
	return s, nil
}

// bind sends the bind and reads its response synchronously, before the
// reading goroutine starts.
func (s *Session) bind(ctx context.Context) error {
	deadline := time.Now().Add(s.cfg.ResponseTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = s.conn.SetDeadline(deadline)
	defer s.conn.SetDeadline(time.Time{})
	stop := context.AfterFunc(ctx, func() { _ = s.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	req := &pdu.PDU{ID: s.cfg.Mode.command(), Sequence: s.nextSeq(), Body: &pdu.Bind{
		SystemID: s.cfg.SystemID, Password: s.cfg.Password, SystemType: s.cfg.SystemType, InterfaceVersion: pdu.InterfaceVersion}}
	b, err := pdu.Marshal(req)
	if err != nil {
		return err
	}
	if _, err := s.conn.Write(b); err != nil {
		return err
	}
	for {
		resp, err := pdu.ReadFrom(s.conn, 0)
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return err
		}
		switch {
		case resp.ID == req.ID.Response() || resp.ID == pdu.GenericNack:
			if resp.Status != pdu.OK {
				return &StatusError{Command: req.ID, Status: resp.Status}
			}
			if br, ok := resp.Body.(*pdu.BindResp); ok {
				s.SystemID = br.SystemID
			}
			return nil
		case resp.ID == pdu.EnquireLink:
			// Some SMSCs check the link before answering the bind.
			_ = s.writePDU(&pdu.PDU{ID: pdu.EnquireLinkResp, Sequence: resp.Sequence})
		default:
			return fmt.Errorf("smpp: %s before the bind response", resp.ID)
		}
	}
}

func (s *Session) nextSeq() uint32 {
	// Sequence numbers run from 1 to 0x7FFFFFFF (section 5.1.4).
	for {
		n := s.seq.Add(1) & 0x7FFFFFFF
		if n != 0 {
			return n
		}
	}
}

// Done is closed when the session has ended.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns why the session ended, or nil while it runs.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Mode returns the session's bind mode.
func (s *Session) Mode() BindMode { return s.cfg.Mode }

// end closes the connection and fails every pending request.
func (s *Session) end(err error) {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.err = err
		pending := s.pending
		s.pending = map[uint32]chan *pdu.PDU{}
		s.mu.Unlock()
		_ = s.conn.Close()
		close(s.done)
		s.endLife()
		for _, ch := range pending {
			close(ch)
		}
		if errors.Is(err, ErrClosed) {
			s.log.Debug("smpp session closed", slog.Any("reason", err))
		} else {
			s.log.Warn("smpp session ended", slog.Any("reason", err))
		}
	})
}

func (s *Session) writePDU(p *pdu.PDU) error {
	b, err := pdu.Marshal(p)
	if err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_ = s.conn.SetWriteDeadline(time.Now().Add(s.cfg.ResponseTimeout))
	if _, err := s.conn.Write(b); err != nil {
		go s.end(fmt.Errorf("%w: write: %v", ErrClosed, err))
		return fmt.Errorf("%w: write: %v", ErrClosed, err)
	}
	return nil
}

// Request sends a request PDU (its Sequence is assigned here) and waits
// for its response, using a window slot while it is outstanding. It
// returns the response when its command_status is ESME_ROK, a
// *StatusError when it is not (the response is returned too), ErrTimeout,
// ErrClosed, or ctx's error when ctx ends first (the request may then
// have been written: its outcome is unknown).
func (s *Session) Request(ctx context.Context, p *pdu.PDU) (*pdu.PDU, error) {
	if r := channels.RankOf(ctx); !s.window.TryAcquire(r) {
		wctx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(s.life, cancel)
		_, err := s.window.Acquire(wctx, r)
		stop()
		cancel()
		switch {
		case err == nil:
		case s.life.Err() != nil:
			return nil, s.closedErr()
		default:
			return nil, fmt.Errorf("%w: smpp: waiting for a window slot: %w", channels.ErrNotAttempted, context.Cause(ctx))
		}
	}
	defer s.window.Release()
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}
	p.Sequence = s.nextSeq()
	ch := make(chan *pdu.PDU, 1)
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return nil, s.closedErr()
	}
	s.pending[p.Sequence] = ch
	s.mu.Unlock()
	forget := func() {
		s.mu.Lock()
		delete(s.pending, p.Sequence)
		s.mu.Unlock()
	}
	if err := s.writePDU(p); err != nil {
		forget()
		return nil, err
	}
	t := time.NewTimer(s.cfg.ResponseTimeout)
	defer t.Stop()
	select {
	case resp, ok := <-ch:
		if !ok {
			return nil, s.closedErr()
		}
		if resp.Status != pdu.OK {
			return resp, &StatusError{Command: p.ID, Status: resp.Status}
		}
		return resp, nil
	case <-t.C:
		forget()
		return nil, fmt.Errorf("%w: %s after %s", ErrTimeout, p.ID, s.cfg.ResponseTimeout)
	case <-ctx.Done():
		forget()
		return nil, context.Cause(ctx)
	}
}

func (s *Session) closedErr() error {
	if err := s.Err(); err != nil && !errors.Is(err, ErrClosed) {
		return fmt.Errorf("%w: %v", ErrClosed, err)
	}
	return ErrClosed
}

// Submit sends a submit_sm and returns the SMSC's message id.
func (s *Session) Submit(ctx context.Context, sm *pdu.SM) (string, error) {
	resp, err := s.Request(ctx, &pdu.PDU{ID: pdu.SubmitSM, Body: sm})
	if err != nil {
		return "", err
	}
	if r, ok := resp.Body.(*pdu.MessageIDResp); ok && r.MessageID != "" {
		return r.MessageID, nil
	}
	return "", &StatusError{Command: pdu.SubmitSM, Status: pdu.RInvMsgID}
}

// read is the session's reading goroutine.
func (s *Session) read() {
	for {
		p, err := pdu.ReadFrom(s.conn, 0)
		if err != nil {
			if p != nil && errors.Is(err, pdu.ErrMalformed) {
				// The frame was whole: answer it and go on.
				s.log.Warn("undecodable PDU from the SMSC", slog.String("command", p.ID.String()), slog.Any("error", err))
				if !p.ID.IsResponse() {
					_ = s.writePDU(&pdu.PDU{ID: pdu.GenericNack, Status: pdu.RInvCmdLen, Sequence: p.Sequence})
				} else {
					s.deliver(p)
				}
				continue
			}
			if s.closing.Load() || errors.Is(err, net.ErrClosed) {
				s.end(ErrClosed)
			} else if errors.Is(err, io.EOF) {
				s.end(fmt.Errorf("%w: the SMSC closed the connection", ErrClosed))
			} else {
				s.end(fmt.Errorf("%w: read: %v", ErrClosed, err))
			}
			return
		}
		switch {
		case p.ID == pdu.GenericNack || p.ID.IsResponse():
			if p.ID == pdu.UnbindResp {
				select {
				case <-s.unbound:
				default:
					close(s.unbound)
				}
			}
			s.deliver(p)
		case p.ID == pdu.EnquireLink:
			_ = s.writePDU(&pdu.PDU{ID: pdu.EnquireLinkResp, Sequence: p.Sequence})
		case p.ID == pdu.Unbind:
			_ = s.writePDU(&pdu.PDU{ID: pdu.UnbindResp, Sequence: p.Sequence})
			s.end(fmt.Errorf("%w: the SMSC unbound", ErrClosed))
			return
		case p.ID == pdu.DeliverSM || p.ID == pdu.DataSM:
			s.handle(p)
		case p.ID == pdu.AlertNotification, p.ID == pdu.Outbind:
			// No response is defined; nothing for Loa to do.
		default:
			_ = s.writePDU(&pdu.PDU{ID: pdu.GenericNack, Status: pdu.RInvCmdID, Sequence: p.Sequence})
		}
	}
}

// deliver hands a response to the request waiting for it.
func (s *Session) deliver(p *pdu.PDU) {
	s.mu.Lock()
	ch, ok := s.pending[p.Sequence]
	delete(s.pending, p.Sequence)
	s.mu.Unlock()
	if !ok {
		s.log.Debug("response to no pending request", slog.String("command", p.ID.String()), slog.Uint64("sequence", uint64(p.Sequence)))
		return
	}
	ch <- p
}

// handle passes a deliver_sm or data_sm to the Handler.
func (s *Session) handle(p *pdu.PDU) {
	var once atomic.Bool
	respond := func(st pdu.Status) {
		if !once.CompareAndSwap(false, true) {
			return
		}
		r := &pdu.PDU{ID: p.ID.Response(), Status: st, Sequence: p.Sequence, Body: &pdu.MessageIDResp{}}
		_ = s.writePDU(r)
	}
	if s.cfg.Handler == nil {
		respond(pdu.OK)
		return
	}
	s.cfg.Handler(p, respond)
}

// keepAlive sends enquire_link every EnquireLink and ends the session
// when one goes unanswered.
func (s *Session) keepAlive() {
	t := time.NewTicker(s.cfg.EnquireLink)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(channels.WithRank(context.Background(), channels.Urgent), s.cfg.ResponseTimeout)
			_, err := s.Request(ctx, &pdu.PDU{ID: pdu.EnquireLink})
			cancel()
			var se *StatusError
			if err != nil && !errors.As(err, &se) && !errors.Is(err, ErrClosed) {
				s.end(fmt.Errorf("%w: enquire_link unanswered: %v", ErrClosed, err))
				return
			}
		}
	}
}

// Close unbinds (waiting for unbind_resp until ctx ends or
// ResponseTimeout passes) and closes the connection. Requests still
// waiting fail with ErrClosed. It is safe to call more than once.
func (s *Session) Close(ctx context.Context) error {
	select {
	case <-s.done:
		return nil
	default:
	}
	s.closing.Store(true)
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ResponseTimeout)
	defer cancel()
	err := s.writePDU(&pdu.PDU{ID: pdu.Unbind, Sequence: s.nextSeq()})
	if err == nil {
		select {
		case <-s.unbound:
		case <-s.done:
		case <-ctx.Done():
			err = fmt.Errorf("smpp: unbind unanswered: %w", context.Cause(ctx))
		}
	}
	s.end(ErrClosed)
	return err
}
