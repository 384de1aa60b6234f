package smpp

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/channels/sms"
	"github.com/loa-hub/loa/channels/sms/smpp/pdu"
	"github.com/loa-hub/loa/internal/phone"
)

// Concatenation is how a message longer than one SMS is sent.
type Concatenation uint8

// Concatenation modes.
const (
	// UDH puts an 8-bit-reference concatenation header (IEI 0x00) in
	// each part's short_message and sets esm_class UDHI.
	UDH Concatenation = iota
	// SAR sends the sar_msg_ref_num, sar_total_segments and
	// sar_segment_seqnum TLVs; the SMSC builds the header.
	SAR
)

// Defaults of Config.
const (
	DefaultThrottleBackoff = time.Second
	DefaultReconnectMin    = 500 * time.Millisecond
	DefaultReconnectMax    = 30 * time.Second
)

// Config configures a Client.
type Config struct {
	// Name identifies the provider in results, breakers and metrics;
	// "smpp" when empty.
	Name string
	// Session is the configuration of each session (address, TLS,
	// credentials, window, timeouts). Its Mode and Handler are set by
	// the Client.
	Session SessionConfig
	// Pair binds a bind_transmitter and a bind_receiver for each session
	// instead of one bind_transceiver.
	Pair bool
	// Sessions is how many sessions (or pairs) the Client keeps bound;
	// 1 when zero.
	Sessions int
	// SourceAddr is the sender: a brandname (alphanumeric, at most 11
	// characters on handsets) or a number.
	SourceAddr string
	// SourceTON and SourceNPI, when set, override the type of number and
	// numbering plan chosen from SourceAddr: 5 (alphanumeric) and 0 for a
	// brandname, 1 (international) and 1 (E.164) for a number.
	SourceTON, SourceNPI *uint8
	// Concatenation is UDH (the default) or SAR.
	Concatenation Concatenation
	// ServiceType is submit_sm's service_type; empty (the SMSC default)
	// when unset.
	ServiceType string
	// ThrottleBackoff is the Retry-After of a send the SMSC refused with
	// ESME_RTHROTTLED or ESME_RMSGQFUL; DefaultThrottleBackoff when zero.
	ThrottleBackoff time.Duration
	// ReconnectMin and ReconnectMax bound the back-off between failed
	// binds (doubling, with jitter); the defaults when zero.
	ReconnectMin, ReconnectMax time.Duration
	// Reports takes delivery receipts. Nil logs them.
	Reports ReportSink
	// Incoming is called with every mobile-originated message (a
	// deliver_sm that is not a receipt). Nil logs them.
	Incoming func(Incoming)
	// Log receives the Client's events; slog.Default() when nil.
	Log *slog.Logger
	// Now is the clock for expiry and validity periods; time.Now when nil.
	Now func() time.Time
}

// Incoming is a mobile-originated message.
type Incoming struct {
	Provider string
	From, To string
	Text     string
	At       time.Time
}

// Validate reports the first thing wrong with c.
func (c Config) Validate() error {
	switch {
	case c.Session.Addr == "":
		return errors.New("smpp: config: Session.Addr is required")
	case c.Session.SystemID == "":
		return errors.New("smpp: config: Session.SystemID is required")
	case len(c.Session.SystemID) > 15, len(c.Session.Password) > 8, len(c.Session.SystemType) > 12:
		return errors.New("smpp: config: system_id, password and system_type may be at most 15, 8 and 12 octets")
	case c.SourceAddr == "":
		return errors.New("smpp: config: SourceAddr is required")
	case len(c.SourceAddr) > 20:
		return errors.New("smpp: config: SourceAddr may be at most 20 octets")
	case c.Sessions < 0 || c.Sessions > 64:
		return errors.New("smpp: config: Sessions must be between 1 and 64")
	case c.Session.Window < 0 || c.Session.Window > 1000:
		return errors.New("smpp: config: Window must be between 1 and 1000")
	case c.Concatenation != UDH && c.Concatenation != SAR:
		return errors.New("smpp: config: Concatenation must be UDH or SAR")
	}
	return nil
}

// Client is an SMS provider over SMPP 3.4: it keeps Config.Sessions
// sessions bound to one SMSC account, submits each message through one
// of them and turns delivery receipts into Reports. It implements
// sms.Provider; Send is safe for concurrent use. Run must be running for
// sends to go out.
type Client struct {
	cfg     Config
	name    string
	log     *slog.Logger
	now     func() time.Time
	srcTON  uint8
	srcNPI  uint8
	tracker *tracker

	slots []*slot // sessions that submit
	rx    []*slot // receiver sessions of Pair mode
	next  atomic.Uint32

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when a slot changes state
	running bool
}

var _ sms.Provider = (*Client)(nil)

// slot is one session kept bound, and what became of its last bind.
type slot struct {
	s       *Session // nil while not bound
	bindErr error    // the last bind's failure, nil after a success or a drop
}

// New validates cfg and returns a Client. It does not connect: Run does.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Name == "" {
		cfg.Name = "smpp"
	}
	if cfg.Sessions == 0 {
		cfg.Sessions = 1
	}
	if cfg.ThrottleBackoff <= 0 {
		cfg.ThrottleBackoff = DefaultThrottleBackoff
	}
	if cfg.ReconnectMin <= 0 {
		cfg.ReconnectMin = DefaultReconnectMin
	}
	if cfg.ReconnectMax < cfg.ReconnectMin {
		cfg.ReconnectMax = max(DefaultReconnectMax, cfg.ReconnectMin)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Session.defaults()
	c := &Client{cfg: cfg, name: cfg.Name, log: cfg.Log.With(slog.String("provider", cfg.Name)), now: cfg.Now,
		changed: make(chan struct{})}
	c.srcTON, c.srcNPI = sourceTONNPI(cfg.SourceAddr)
	if cfg.SourceTON != nil {
		c.srcTON = *cfg.SourceTON
	}
	if cfg.SourceNPI != nil {
		c.srcNPI = *cfg.SourceNPI
	}
	c.tracker = newTracker(c.name, c.log, c.now)
	for range cfg.Sessions {
		c.slots = append(c.slots, &slot{})
		if cfg.Pair {
			c.rx = append(c.rx, &slot{})
		}
	}
	return c, nil
}

// sourceTONNPI chooses the type of number and numbering plan of a sender:
// alphanumeric for a brandname, international E.164 for a number.
func sourceTONNPI(addr string) (ton, npi uint8) {
	for _, r := range strings.TrimPrefix(addr, "+") {
		if !unicode.IsDigit(r) {
			return 5, 0
		}
	}
	return 1, 1
}

// Name returns the provider's name.
func (c *Client) Name() string { return c.name }

// Run keeps the sessions bound, reconnecting with back-off, and passes
// receipts to Config.Reports, until ctx ends; then it unbinds every
// session (waiting at most the response timeout) and returns nil.
// Receipts not yet recorded are answered ESME_RX_T_APPN, so the SMSC
// sends them again. Run may be called once.
func (c *Client) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return errors.New("smpp: Run called twice")
	}
	c.running = true
	c.mu.Unlock()

	rctx, cancelReporters := context.WithCancel(context.WithoutCancel(ctx))
	var rwg sync.WaitGroup
	for range reporters {
		rwg.Add(1)
		go func() { defer rwg.Done(); c.tracker.report(rctx, c.cfg.Reports) }()
	}
	var wg sync.WaitGroup
	mode := Transceiver
	if c.cfg.Pair {
		mode = Transmitter
	}
	for i, sl := range c.slots {
		wg.Add(1)
		go func() { defer wg.Done(); c.keep(ctx, sl, mode, i) }()
	}
	for i, sl := range c.rx {
		wg.Add(1)
		go func() { defer wg.Done(); c.keep(ctx, sl, Receiver, i) }()
	}
	wg.Wait()
	cancelReporters()
	rwg.Wait()
	c.tracker.drain()
	return nil
}

// keep binds sl and binds it again whenever its session ends, until ctx
// ends.
func (c *Client) keep(ctx context.Context, sl *slot, mode BindMode, i int) {
	backoff := c.cfg.ReconnectMin
	log := c.log.With(slog.String("bind", mode.String()), slog.Int("session", i))
	for ctx.Err() == nil {
		cfg := c.cfg.Session
		cfg.Mode = mode
		cfg.Handler = c.handle
		cfg.Log = log
		s, err := Dial(ctx, cfg)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("smpp bind failed", slog.Any("error", err), slog.Duration("retry_in", backoff))
			c.setSlot(sl, nil, err)
			jitter := time.Duration(rand.Int64N(int64(backoff)/2 + 1))
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff/2 + jitter):
			}
			backoff = min(2*backoff, c.cfg.ReconnectMax)
			continue
		}
		backoff = c.cfg.ReconnectMin
		log.Info("smpp session bound", slog.String("smsc_system_id", s.SystemID))
		c.setSlot(sl, s, nil)
		select {
		case <-s.Done():
			c.setSlot(sl, nil, nil)
		case <-ctx.Done():
			c.setSlot(sl, nil, nil)
			cctx, cancel := context.WithTimeout(context.Background(), cfg.ResponseTimeout)
			if err := s.Close(cctx); err != nil {
				log.Warn("smpp unbind", slog.Any("error", err))
			}
			cancel()
			return
		}
	}
}

func (c *Client) setSlot(sl *slot, s *Session, bindErr error) {
	c.mu.Lock()
	sl.s, sl.bindErr = s, bindErr
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// Bound returns how many of the Client's sessions (transmitters and
// receivers alike) are bound now.
func (c *Client) Bound() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, sl := range append(c.slots[:len(c.slots):len(c.slots)], c.rx...) {
		if sl.s != nil {
			n++
		}
	}
	return n
}

// WaitBound waits until at least n sessions are bound, or ctx ends.
func (c *Client) WaitBound(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		changed := c.changed
		c.mu.Unlock()
		if c.Bound() >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("smpp: %d sessions bound, waiting for %d: %w", c.Bound(), n, context.Cause(ctx))
		}
	}
}

// session returns a bound session to submit through, round robin. While
// none is bound it waits for one, unless every session's last bind
// failed: then it fails at once, so the breaker counts the failure and
// failover moves on.
func (c *Client) session(ctx context.Context) (*Session, error) {
	wait := time.NewTimer(c.cfg.Session.DialTimeout + c.cfg.Session.ResponseTimeout)
	defer wait.Stop()
	for {
		c.mu.Lock()
		n := len(c.slots)
		start := int(c.next.Add(1))
		var bindErr error
		failed := 0
		for k := range n {
			sl := c.slots[(start+k)%n]
			if sl.s != nil {
				select {
				case <-sl.s.Done():
					continue
				default:
				}
				s := sl.s
				c.mu.Unlock()
				return s, nil
			}
			if sl.bindErr != nil {
				failed++
				bindErr = sl.bindErr
			}
		}
		changed := c.changed
		c.mu.Unlock()
		if failed == n {
			return nil, &channels.Error{Class: channels.Transient, Provider: c.name, Code: "BIND",
				Err: channels.Refused(fmt.Errorf("smpp: not bound: %w", bindErr))}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, c.classify(context.Cause(ctx))
		case <-wait.C:
			return nil, &channels.Error{Class: channels.Transient, Provider: c.name, Code: "NOT_BOUND",
				Err: channels.Refused(errors.New("smpp: no session bound in time"))}
		}
	}
}

// handle is every session's Handler: receipts go to the tracker, other
// messages to Incoming.
func (c *Client) handle(p *pdu.PDU, respond func(pdu.Status)) {
	var sm *pdu.SM
	switch b := p.Body.(type) {
	case *pdu.SM:
		sm = b
	case *pdu.DataSMBody:
		sm = &pdu.SM{SourceAddrTON: b.SourceAddrTON, SourceAddrNPI: b.SourceAddrNPI, SourceAddr: b.SourceAddr,
			DestAddrTON: b.DestAddrTON, DestAddrNPI: b.DestAddrNPI, DestinationAddr: b.DestinationAddr,
			ESMClass: b.ESMClass, DataCoding: b.DataCoding, TLVs: b.TLVs}
	default:
		respond(pdu.RInvCmdLen)
		return
	}
	if r, ok := ParseReceipt(sm); ok {
		c.tracker.receipt(r, respond)
		return
	}
	if sm.IsReceipt() {
		c.log.Warn("delivery receipt without a message id ignored", slog.String("text", string(sm.Text())))
		respond(pdu.OK)
		return
	}
	in := Incoming{Provider: c.name, From: sm.SourceAddr, To: sm.DestinationAddr, Text: decodeText(sm), At: c.now()}
	respond(pdu.OK)
	if c.cfg.Incoming != nil {
		c.cfg.Incoming(in)
		return
	}
	c.log.Info("mobile-originated SMS", slog.String("from", phone.Mask(in.From)), slog.String("to", in.To),
		slog.Int("chars", len([]rune(in.Text))))
}

// decodeText returns a deliver_sm's text, without its user data header.
func decodeText(sm *pdu.SM) string {
	b := sm.Text()
	if sm.ESMClass&pdu.ESMClassUDHI != 0 && len(b) > 0 && int(b[0])+1 <= len(b) {
		b = b[int(b[0])+1:]
	}
	switch sm.DataCoding {
	case pdu.CodingUCS2:
		return sms.DecodeUCS2(b)
	case pdu.CodingDefault:
		return sms.DecodeGSM7(b)
	}
	return string(b)
}

// Send submits m to the phone number m.To: one submit_sm, or one for
// each part of a long message, all through one session. The text is
// prepared and cut by the sms package's rules (sms.Prepare, sms.Split),
// so the parts sent are the segments the cost estimate counted; GSM-7
// text goes as data_coding 0, anything else as UCS-2 (8). A delivery
// receipt is requested; the validity period is the time left until
// m.ExpiresAt. The Result's ProviderID is the SMSC's message id of the
// first part, which delivery Reports carry.
//
// Errors (*channels.Error): Expired without contacting the SMSC;
// Permanent for an invalid number, empty text, and the statuses no resend
// can fix (invalid source or destination address, message length,
// esm_class, validity); Transient for throttling (ESME_RTHROTTLED,
// ESME_RMSGQFUL, with Retry-After), no session bound (code BIND when the
// SMSC refused the bind), a dropped connection, a response timeout,
// ctx ending, and any other status. Code is the command_status name.
// Like any send whose answer is lost, a dropped connection or a timeout
// leaves it unknown whether the SMSC took the message.
func (c *Client) Send(ctx context.Context, m channels.Message) (channels.Result, error) {
	now := c.now()
	if m.Expired(now) {
		return channels.Result{}, &channels.Error{Class: channels.Expired, Provider: c.name, Code: "expired",
			Err: fmt.Errorf("smpp: message expired at %s", m.ExpiresAt.Format(time.RFC3339))}
	}
	if err := ctx.Err(); err != nil {
		return channels.Result{}, c.classify(context.Cause(ctx))
	}
	to, err := phone.Normalize(m.To)
	if err != nil {
		return channels.Result{}, &channels.Error{Class: channels.Permanent, Provider: c.name, Code: "INVALID_PHONE", Err: fmt.Errorf("smpp: %w", err)}
	}
	parts, err := c.build(m, to, now)
	if err != nil {
		return channels.Result{}, err
	}
	s, err := c.session(ctx)
	if err != nil {
		return channels.Result{}, err
	}
	ctx = channels.WithRank(ctx, m.Lane.Rank()) // for the window
	ticket := c.tracker.begin()
	ids := make([]string, len(parts))
	errs := make([]error, len(parts))
	if len(parts) == 1 {
		ids[0], errs[0] = s.Submit(ctx, parts[0])
	} else {
		var wg sync.WaitGroup
		for i, sm := range parts {
			wg.Add(1)
			go func() { defer wg.Done(); ids[i], errs[i] = s.Submit(ctx, sm) }()
		}
		wg.Wait()
	}
	var worst error
	for _, e := range errs {
		if e == nil {
			continue
		}
		ce := c.classify(e)
		if worst == nil || channels.ClassOf(ce) == channels.Permanent && channels.ClassOf(worst) != channels.Permanent {
			worst = ce
		}
	}
	if worst != nil {
		c.tracker.end(ticket, nil, "", "")
		for _, id := range ids {
			if id != "" && channels.ClassOf(worst) == channels.Transient {
				// Some parts were taken: sending again repeats them.
				return channels.Result{}, &channels.Error{Class: channels.Transient, Provider: c.name, Code: "PARTIAL",
					Err: fmt.Errorf("smpp: some parts taken, one not: %s", worst.Error())}
			}
		}
		return channels.Result{}, worst
	}
	c.tracker.end(ticket, ids, m.NotificationID, to)
	return channels.Result{Provider: c.name, ProviderID: ids[0]}, nil
}

// build turns m into the submit_sm bodies of its parts.
func (c *Client) build(m channels.Message, to string, now time.Time) ([]*pdu.SM, error) {
	text := sms.Prepare(m.Body, false)
	if strings.TrimSpace(text.Body) == "" {
		return nil, &channels.Error{Class: channels.Permanent, Provider: c.name, Code: "EMPTY", Err: errors.New("smpp: empty text")}
	}
	enc, parts := sms.Split(text.Body)
	if len(parts) > 255 {
		return nil, &channels.Error{Class: channels.Permanent, Provider: c.name, Code: "TOO_LONG",
			Err: fmt.Errorf("smpp: %d segments, at most 255", len(parts))}
	}
	base := pdu.SM{
		ServiceType: c.cfg.ServiceType, SourceAddrTON: c.srcTON, SourceAddrNPI: c.srcNPI, SourceAddr: c.cfg.SourceAddr,
		DestAddrTON: 1, DestAddrNPI: 1, DestinationAddr: to, RegisteredDelivery: 1,
		ValidityPeriod: validity(m.ExpiresAt, now),
	}
	if m.Priority == channels.High {
		base.PriorityFlag = 1
	}
	if enc == sms.UCS2 {
		base.DataCoding = pdu.CodingUCS2
	}
	// One reference for every part, the same on a resend of the same
	// delivery, so a handset that got some parts before reassembles them.
	sum := sha256.Sum256([]byte(m.NotificationID + "\x00" + to))
	ref := binary.BigEndian.Uint16(sum[:2])
	out := make([]*pdu.SM, len(parts))
	for i, p := range parts {
		sm := base
		var ud []byte
		if enc == sms.UCS2 {
			ud = sms.EncodeUCS2(p)
		} else {
			ud, _ = sms.EncodeGSM7(p)
		}
		if len(parts) > 1 {
			switch c.cfg.Concatenation {
			case SAR:
				sm.TLVs = pdu.TLVs{pdu.U16(pdu.TagSarMsgRefNum, ref), pdu.U8(pdu.TagSarTotalSegments, uint8(len(parts))),
					pdu.U8(pdu.TagSarSegmentSeqnum, uint8(i+1))}
			default:
				sm.ESMClass |= pdu.ESMClassUDHI
				ud = append([]byte{5, 0, 3, byte(ref), byte(len(parts)), byte(i + 1)}, ud...)
			}
		}
		sm.ShortMessage = ud
		out[i] = &sm
	}
	return out, nil
}

// validity is the relative validity period (SMPP 3.4 section 7.1.1) of a
// message that expires at exp: "YYMMDDhhmmss000R". Zero exp leaves the
// SMSC's default; a period is at least a minute and at most 99 days.
func validity(exp, now time.Time) string {
	if exp.IsZero() {
		return ""
	}
	d := max(exp.Sub(now), time.Minute)
	d = min(d, 99*24*time.Hour)
	days := int(d / (24 * time.Hour))
	d -= time.Duration(days) * 24 * time.Hour
	h, mi, s := int(d/time.Hour), int(d%time.Hour/time.Minute), int(d%time.Minute/time.Second)
	return fmt.Sprintf("0000%02d%02d%02d%02d000R", days, h, mi, s)
}

// permanentStatus are the submit_sm_resp statuses no resend can fix.
var permanentStatus = map[pdu.Status]bool{
	pdu.RInvMsgLen: true, pdu.RInvDstAdr: true, pdu.RInvDstTON: true, pdu.RInvDstNPI: true,
	pdu.RInvSrcAdr: true, pdu.RInvSrcTON: true, pdu.RInvSrcNPI: true, pdu.RInvEsmClass: true,
	pdu.RInvRegDlvFlg: true, pdu.RInvExpiry: true, pdu.RInvSerTyp: true, pdu.RInvPrtFlg: true,
	pdu.RInvOptParamVal: true, pdu.ROptParNotAllwd: true, pdu.RInvParLen: true, pdu.RxPAppn: true, pdu.RxRAppn: true,
}

// classify translates a session error into a *channels.Error.
func (c *Client) classify(err error) error {
	var ce *channels.Error
	if errors.As(err, &ce) {
		return err
	}
	e := &channels.Error{Class: channels.Transient, Provider: c.name, Err: err}
	var se *StatusError
	switch {
	case errors.As(err, &se):
		e.Code = strings.TrimPrefix(se.Status.String(), "ESME_")
		e.Err = channels.Refused(err) // the SMSC answered: it did not take this part
		switch {
		case se.Status == pdu.RThrottled, se.Status == pdu.RMsgQFul:
			e.RetryAfter = c.cfg.ThrottleBackoff
		case permanentStatus[se.Status]:
			e.Class = channels.Permanent
		}
	case errors.Is(err, ErrTimeout):
		e.Code = "timeout"
	case errors.Is(err, ErrClosed):
		e.Code = "connection"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		e.Code = "cancelled"
	}
	return e
}
