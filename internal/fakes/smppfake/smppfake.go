package smppfake

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loa-hub/loa/channels/sms"
	"github.com/loa-hub/loa/channels/sms/smpp/pdu"
	"github.com/loa-hub/loa/internal/fakes/fault"
	"github.com/loa-hub/loa/internal/fakes/record"
)

// Message is one whole SMS the fake accepted: a single submit_sm, or
// every part of a concatenated one.
type Message struct {
	// IDs are the message ids the fake answered, in part order.
	IDs  []string `json:"ids"`
	From string   `json:"from"`
	// SourceTON and SourceNPI are the sender's type of number and
	// numbering plan; DestTON and DestNPI the recipient's.
	SourceTON uint8  `json:"source_ton"`
	SourceNPI uint8  `json:"source_npi"`
	To        string `json:"to"`
	DestTON   uint8  `json:"dest_ton"`
	DestNPI   uint8  `json:"dest_npi"`
	// Text is the decoded text of every part, joined.
	Text       string `json:"text"`
	DataCoding uint8  `json:"data_coding"`
	// Parts is the number of segments; Concat says how they were joined:
	// "" for one part, "udh8", "udh16" or "sar".
	Parts              int       `json:"parts"`
	Concat             string    `json:"concat,omitempty"`
	RegisteredDelivery uint8     `json:"registered_delivery"`
	ValidityPeriod     string    `json:"validity_period,omitempty"`
	SystemID           string    `json:"system_id"`
	At                 time.Time `json:"at"`
}

// Receipt is a delivery receipt the fake sent, and how it was answered.
type Receipt struct {
	MessageID string     `json:"message_id"`
	To        string     `json:"to"`
	State     string     `json:"state"`
	Attempts  int        `json:"attempts"`
	Status    pdu.Status `json:"status"` // the last deliver_sm_resp's command_status
	Acked     bool       `json:"acked"`  // answered ESME_ROK

	sm        *pdu.SM // the submit it reports on
	from      *conn   // the session the submit came on
	submitted time.Time
}

// Options configures a fake SMSC. The zero value accepts any system_id
// and password and sends a DELIVRD receipt for every message that asks.
type Options struct {
	// SystemID and Password, when SystemID is set, are the only
	// credentials a bind may use.
	SystemID, Password string
	// TLS, when set, makes the fake listen with TLS.
	TLS *tls.Config
	// Now is the fault clock; time.Now when nil.
	Now func() time.Time
	// ReceiptDelay is how long after the submit_sm_resp a receipt is
	// sent; zero sends it at once.
	ReceiptDelay time.Duration
	// ReceiptRetry is how long the fake waits before sending a receipt
	// again when it was answered with an error (ESME_RX_T_APPN); 1s when
	// zero. It tries at most 5 times.
	ReceiptRetry time.Duration
	// Discard counts messages and receipts without keeping them, for
	// benchmarks.
	Discard bool
}

// Server is a running fake SMSC. Its methods are safe for concurrent use.
type Server struct {
	*fault.Injector

	opts Options
	ln   net.Listener
	log  record.Log[Message]
	seq  atomic.Uint64

	submits atomic.Int64
	unbinds atomic.Int64
	binds   atomic.Int64

	mu        sync.Mutex
	conns     map[*conn]struct{}
	bindErr   pdu.Status
	dropAfter int // drop every connection after this many more submits; 0: never
	receipts  map[string]*Receipt
	states    map[string]string // destination → receipt state
	early     bool              // receipt before the submit_sm_resp
	shuffle   bool              // receipts in random order
	partials  map[string]*partial
	answered  *sync.Cond    // on mu: a connection's answering went down
	acked     int           // receipts answered ESME_ROK
	ackedCh   chan struct{} // closed and replaced when acked grows
	wg        sync.WaitGroup
	closed    chan struct{}
	closeOnce sync.Once
}

// partial is a concatenated message waiting for its other parts.
type partial struct {
	msg   Message
	parts [][]byte
	got   int
	ids   []string
	data  uint8
}

// New starts a fake SMSC on 127.0.0.1 at a free port.
func New(opts Options) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("smppfake: listen: %w", err)
	}
	if opts.TLS != nil {
		ln = tls.NewListener(ln, opts.TLS)
	}
	if opts.ReceiptRetry <= 0 {
		opts.ReceiptRetry = time.Second
	}
	s := &Server{Injector: fault.NewInjector(opts.Now), opts: opts, ln: ln, conns: map[*conn]struct{}{},
		receipts: map[string]*Receipt{}, states: map[string]string{}, partials: map[string]*partial{},
		closed: make(chan struct{})}
	s.answered = sync.NewCond(&s.mu)
	s.log.Discard = opts.Discard
	s.log.DiscardKeys = opts.Discard
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr returns the host:port the fake listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the fake: it closes the listener and every connection. It
// is idempotent.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.Injector.Close()
		_ = s.ln.Close()
		s.DropConnections()
		s.wg.Wait()
	})
}

// Messages returns the whole messages accepted so far.
func (s *Server) Messages() []Message { return s.log.Messages() }

// Count returns how many whole messages were accepted.
func (s *Server) Count() int { return s.log.Count() }

// CountFor returns how many whole messages were accepted for a number.
func (s *Server) CountFor(to string) int { return s.log.CountFor(to) }

// Duplicates returns the numbers that got more than one message.
func (s *Server) Duplicates() map[string]int { return s.log.Duplicates() }

// WaitCount waits until n messages were accepted or ctx ends.
func (s *Server) WaitCount(ctx context.Context, n int) error { return s.log.WaitCount(ctx, n) }

// Submits returns how many submit_sm PDUs the fake read, answered or not.
func (s *Server) Submits() int64 { return s.submits.Load() }

// Binds returns how many binds the fake accepted.
func (s *Server) Binds() int64 { return s.binds.Load() }

// Unbinds returns how many unbind requests the fake answered.
func (s *Server) Unbinds() int64 { return s.unbinds.Load() }

// Receipts returns the receipts sent so far.
func (s *Server) Receipts() []Receipt {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Receipt, 0, len(s.receipts))
	for _, r := range s.receipts {
		out = append(out, *r)
	}
	return out
}

// WaitAcked waits until n receipts have been answered ESME_ROK, or ctx
// ends.
func (s *Server) WaitAcked(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		if s.acked >= n {
			s.mu.Unlock()
			return nil
		}
		if s.ackedCh == nil {
			s.ackedCh = make(chan struct{})
		}
		ch := s.ackedCh
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("smppfake: %w waiting for %d acknowledged receipts", ctx.Err(), n)
		}
	}
}

// Bound returns how many sessions are bound now.
func (s *Server) Bound() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		if c.bound() != 0 {
			n++
		}
	}
	return n
}

// SetBindError makes every bind fail with st (pdu.OK clears it).
func (s *Server) SetBindError(st pdu.Status) {
	s.mu.Lock()
	s.bindErr = st
	s.mu.Unlock()
}

// DropConnections drops every connection now: the fake stops taking
// anything on it, sends what it has already answered, and closes it
// without unbinding. Submits it has not answered are never accepted.
func (s *Server) DropConnections() {
	s.mu.Lock()
	cs := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		c.dropped.Store(true)
		cs = append(cs, c)
	}
	// What was accepted is answered before the connection goes, so a
	// drop never leaves a message taken but unanswered.
	for _, c := range cs {
		for c.answering > 0 {
			s.answered.Wait()
		}
	}
	s.mu.Unlock()
	for _, c := range cs {
		c.drop()
	}
}

// DropAfter makes the fake accept and answer n more submits, then close
// every connection at once; submits read after that are neither
// answered nor accepted. n ≤ 0 cancels it.
func (s *Server) DropAfter(n int) {
	s.mu.Lock()
	s.dropAfter = max(n, 0)
	s.mu.Unlock()
}

// SetReceiptState makes receipts for messages to the number to report
// state ("UNDELIV", "EXPIRED", "REJECTD", "ENROUTE", …); "" restores
// DELIVRD. "none" sends no receipt.
func (s *Server) SetReceiptState(to, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if state == "" {
		delete(s.states, to)
		return
	}
	s.states[to] = state
}

// ReceiptsFirst makes the fake send each receipt before the
// submit_sm_resp of its message (on) or after it (off).
func (s *Server) ReceiptsFirst(on bool) {
	s.mu.Lock()
	s.early = on
	s.mu.Unlock()
}

// ShuffleReceipts sends receipts in random order, each after a random
// delay of up to 50 ms.
func (s *Server) ShuffleReceipts(on bool) {
	s.mu.Lock()
	s.shuffle = on
	s.mu.Unlock()
}

// Mount registers the fault endpoint at path on mux.
func (s *Server) Mount(mux *http.ServeMux, path string) { s.Injector.Mount(mux, path) }

// MountControl registers the SMSC's own controls under prefix on mux:
//
//	POST prefix/_receipts {"first": true, "shuffle": false, "states": {"84912345678": "UNDELIV"}}
//	    receipts before the submit_sm_resp, in random order, and the state per number ("" restores DELIVRD)
//	POST prefix/_drop {"after": 0}
//	    drop every connection now, or after that many more accepted submits
//	POST prefix/_bind {"error": "ESME_RINVPASWD"}
//	    refuse every bind with that status ("" accepts again)
func (s *Server) MountControl(mux *http.ServeMux, prefix string) {
	decode := func(w http.ResponseWriter, r *http.Request, v any) bool {
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(v); err != nil && !errors.Is(err, io.EOF) {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return false
		}
		return true
	}
	mux.HandleFunc("POST "+prefix+"/_receipts", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			First, Shuffle bool
			States         map[string]string
		}
		if !decode(w, r, &req) {
			return
		}
		s.ReceiptsFirst(req.First)
		s.ShuffleReceipts(req.Shuffle)
		for to, st := range req.States {
			s.SetReceiptState(to, st)
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST "+prefix+"/_drop", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ After int }
		if !decode(w, r, &req) {
			return
		}
		if req.After > 0 {
			s.DropAfter(req.After)
		} else {
			s.DropConnections()
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST "+prefix+"/_bind", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Error string }
		if !decode(w, r, &req) {
			return
		}
		st := pdu.OK
		if req.Error != "" {
			var ok bool
			if st, ok = pdu.StatusByName(req.Error); !ok {
				http.Error(w, "unknown command_status "+req.Error, http.StatusBadRequest)
				return
			}
		}
		s.SetBindError(st)
		w.WriteHeader(http.StatusNoContent)
	})
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		c := &conn{srv: s, nc: nc, done: make(chan struct{}), pending: map[uint32]*Receipt{}}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() { defer s.wg.Done(); c.serve() }()
	}
}

// conn is one ESME connection.
type conn struct {
	srv      *Server
	nc       net.Conn
	wmu      sync.Mutex
	mode     atomic.Uint32 // the bind's pdu.CommandID, 0 before
	systemID string        // set before mode
	seq      atomic.Uint32
	done     chan struct{}
	once     sync.Once
	dropped  atomic.Bool // a planned drop is under way: accept nothing more
	// answering counts submits accepted on this connection whose answer
	// is not written yet (guarded by the server's mu).
	answering int

	pmu     sync.Mutex
	pending map[uint32]*Receipt // deliver_sm awaiting their resp
}

func (c *conn) close() {
	c.once.Do(func() {
		close(c.done)
		_ = c.nc.Close()
		c.srv.mu.Lock()
		delete(c.srv.conns, c)
		c.srv.mu.Unlock()
	})
}

// drop half-closes the connection, so the answers already written reach
// the ESME (a close with unread data would reset it and lose them), and
// closes it after the ESME has closed its side or a second has passed.
func (c *conn) drop() {
	c.dropped.Store(true)
	c.wmu.Lock()
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	c.wmu.Unlock()
	_ = c.nc.SetReadDeadline(time.Now().Add(time.Second))
	select {
	case <-c.srv.closed:
		c.close()
	default:
	}
}

func (c *conn) write(p *pdu.PDU) {
	b, err := pdu.Marshal(p)
	if err != nil {
		return
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.nc.Write(b); err != nil {
		go c.close()
	}
}

func (c *conn) bound() pdu.CommandID { return pdu.CommandID(c.mode.Load()) }
func (c *conn) canReceive() bool {
	return c.bound() == pdu.BindTransceiver || c.bound() == pdu.BindReceiver
}
func (c *conn) canSend() bool {
	return c.bound() == pdu.BindTransceiver || c.bound() == pdu.BindTransmitter
}

func (c *conn) serve() {
	defer c.close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.done:
		case <-c.srv.closed:
		}
		cancel()
	}()
	for {
		p, err := pdu.ReadFrom(c.nc, 0)
		if err != nil {
			if p != nil && errors.Is(err, pdu.ErrMalformed) {
				c.write(&pdu.PDU{ID: pdu.GenericNack, Status: pdu.RInvCmdLen, Sequence: p.Sequence})
				continue
			}
			return
		}
		if c.dropped.Load() {
			continue // being dropped: read until the ESME closes, take nothing
		}
		switch p.ID {
		case pdu.BindTransceiver, pdu.BindTransmitter, pdu.BindReceiver:
			c.bind(p)
		case pdu.EnquireLink:
			c.write(&pdu.PDU{ID: pdu.EnquireLinkResp, Sequence: p.Sequence})
		case pdu.Unbind:
			c.srv.unbinds.Add(1)
			c.write(&pdu.PDU{ID: pdu.UnbindResp, Sequence: p.Sequence})
			return
		case pdu.SubmitSM:
			if !c.canSend() {
				c.write(&pdu.PDU{ID: pdu.SubmitSMResp, Status: pdu.RInvBndSts, Sequence: p.Sequence})
				continue
			}
			c.srv.submits.Add(1)
			c.submit(ctx, p)
		case pdu.DeliverSMResp, pdu.DataSMResp, pdu.GenericNack:
			c.receiptAnswered(p)
		case pdu.EnquireLinkResp, pdu.UnbindResp:
		default:
			if p.ID.IsResponse() {
				continue
			}
			c.write(&pdu.PDU{ID: pdu.GenericNack, Status: pdu.RInvCmdID, Sequence: p.Sequence})
		}
	}
}

func (c *conn) bind(p *pdu.PDU) {
	b := p.Body.(*pdu.Bind)
	resp := &pdu.PDU{ID: p.ID.Response(), Sequence: p.Sequence, Body: &pdu.BindResp{SystemID: "loa-fake-smsc",
		TLVs: pdu.TLVs{pdu.U8(pdu.TagSCInterfaceVersion, pdu.InterfaceVersion)}}}
	s := c.srv
	s.mu.Lock()
	bindErr := s.bindErr
	s.mu.Unlock()
	switch {
	case c.bound() != 0:
		resp.Status = pdu.RAlyBnd
	case s.InOutage():
		resp.Status = pdu.RBindFail
	case bindErr != pdu.OK:
		resp.Status = bindErr
	case s.opts.SystemID != "" && b.SystemID != s.opts.SystemID:
		resp.Status = pdu.RInvSysID
	case s.opts.SystemID != "" && b.Password != s.opts.Password:
		resp.Status = pdu.RInvPaswd
	}
	if resp.Status != pdu.OK {
		resp.Body = nil
		c.write(resp)
		return
	}
	c.systemID = b.SystemID
	c.mode.Store(uint32(p.ID))
	s.binds.Add(1)
	c.write(resp)
}

// submit decides, waits and answers one submit_sm, asynchronously so the
// ESME's window is honoured.
func (c *conn) submit(ctx context.Context, p *pdu.PDU) {
	s := c.srv
	sm := p.Body.(*pdu.SM)
	d := s.Decide(sm.DestinationAddr)
	if d.Outage {
		c.close()
		return
	}
	go func() {
		if err := s.Wait(ctx, d); err != nil {
			return // held until the client gave up: never accepted
		}
		resp := &pdu.PDU{ID: pdu.SubmitSMResp, Sequence: p.Sequence, Body: &pdu.MessageIDResp{}}
		switch {
		case d.Error != "":
			st, ok := pdu.StatusByName(d.Error)
			if !ok {
				if n, err := strconv.ParseUint(d.Error, 0, 32); err == nil {
					st = pdu.Status(n)
				} else {
					st = pdu.RSysErr
				}
			}
			resp.Status = st
		case d.Status != 0:
			resp.Status = pdu.Status(d.Status)
		}
		if resp.Status != pdu.OK {
			c.write(resp)
			return
		}
		// Accept, unless the connection is gone or being dropped: such a
		// message is never taken, so the ESME may safely send it again.
		s.mu.Lock()
		if isDone(c) || c.dropped.Load() {
			s.mu.Unlock()
			return
		}
		drop := false
		if s.dropAfter > 0 {
			s.dropAfter--
			if drop = s.dropAfter == 0; drop {
				for o := range s.conns {
					o.dropped.Store(true)
				}
			}
		}
		c.answering++
		id := strconv.FormatUint(s.seq.Add(1)+0x5f3a9c00, 16)
		s.mu.Unlock()
		resp.Body = &pdu.MessageIDResp{MessageID: id}
		s.take(c, sm, id, func() { c.write(resp) })
		s.mu.Lock()
		c.answering--
		s.answered.Broadcast()
		s.mu.Unlock()
		if drop {
			s.DropConnections()
		}
	}()
}

// take records a part, answers it (answer writes the
// submit_sm_resp), and schedules its receipt.
func (s *Server) take(c *conn, sm *pdu.SM, id string, answer func()) {
	now := s.Now()
	ud := sm.Text()
	concat, ref, total, seq := "", "", 1, 1
	if sm.ESMClass&pdu.ESMClassUDHI != 0 && len(ud) > 0 && int(ud[0])+1 <= len(ud) {
		h := ud[1 : 1+int(ud[0])]
		ud = ud[1+int(ud[0]):]
		for len(h) >= 2 && 2+int(h[1]) <= len(h) {
			iei, v := h[0], h[2:2+int(h[1])]
			switch {
			case iei == 0x00 && len(v) == 3:
				concat, ref, total, seq = "udh8", strconv.Itoa(int(v[0])), int(v[1]), int(v[2])
			case iei == 0x08 && len(v) == 4:
				concat, ref, total, seq = "udh16", strconv.Itoa(int(binary.BigEndian.Uint16(v))), int(v[2]), int(v[3])
			}
			h = h[2+int(h[1]):]
		}
	} else if n, ok := sm.TLVs.Uint(pdu.TagSarTotalSegments); ok {
		r, _ := sm.TLVs.Uint(pdu.TagSarMsgRefNum)
		q, _ := sm.TLVs.Uint(pdu.TagSarSegmentSeqnum)
		concat, ref, total, seq = "sar", strconv.Itoa(int(r)), int(n), int(q)
	}
	msg := Message{From: sm.SourceAddr, SourceTON: sm.SourceAddrTON, SourceNPI: sm.SourceAddrNPI, To: sm.DestinationAddr,
		DestTON: sm.DestAddrTON, DestNPI: sm.DestAddrNPI, DataCoding: sm.DataCoding, RegisteredDelivery: sm.RegisteredDelivery,
		ValidityPeriod: sm.ValidityPeriod, SystemID: c.systemID, At: now, Parts: 1, Concat: concat}
	var whole *Message
	if total <= 1 || seq < 1 || seq > total {
		msg.IDs, msg.Text, msg.Concat = []string{id}, decode(sm.DataCoding, ud), ""
		whole = &msg
	} else {
		key := c.systemID + "|" + sm.DestinationAddr + "|" + concat + "|" + ref + "|" + strconv.Itoa(total)
		s.mu.Lock()
		pt := s.partials[key]
		if pt == nil {
			pt = &partial{msg: msg, parts: make([][]byte, total), ids: make([]string, total), data: sm.DataCoding}
			s.partials[key] = pt
		}
		if pt.parts[seq-1] == nil {
			pt.got++
		}
		pt.parts[seq-1], pt.ids[seq-1] = append([]byte{}, ud...), id
		if pt.got == total {
			delete(s.partials, key)
			m := pt.msg
			var text strings.Builder
			for _, p := range pt.parts {
				text.WriteString(decode(pt.data, p))
			}
			m.IDs, m.Text, m.Parts = pt.ids, text.String(), total
			whole = &m
		}
		s.mu.Unlock()
	}
	s.mu.Lock()
	early, shuffle := s.early, s.shuffle
	state := s.states[sm.DestinationAddr]
	s.mu.Unlock()
	if state == "" {
		state = "DELIVRD"
	}
	wantReceipt := sm.RegisteredDelivery&0x03 != 0 && state != "none"
	var r *Receipt
	if wantReceipt {
		r = &Receipt{MessageID: id, To: sm.DestinationAddr, State: state, sm: sm, from: c, submitted: now}
		if !s.opts.Discard {
			s.mu.Lock()
			s.receipts[id] = r
			s.mu.Unlock()
		}
	}
	if wantReceipt && early {
		s.sendReceipt(r)
	}
	if whole != nil {
		s.log.Add(*whole, whole.To)
	}
	answer()
	if wantReceipt && !early {
		delay := s.opts.ReceiptDelay
		if shuffle {
			delay += time.Duration(rand.Int64N(int64(50 * time.Millisecond)))
		}
		if delay == 0 {
			s.sendReceipt(r)
			return
		}
		time.AfterFunc(delay, func() { s.sendReceipt(r) })
	}
}

func decode(coding uint8, b []byte) string {
	switch coding {
	case pdu.CodingUCS2:
		return sms.DecodeUCS2(b)
	case pdu.CodingDefault:
		return sms.DecodeGSM7(b)
	}
	return string(b)
}

var stateNumbers = map[string]uint8{"ENROUTE": 1, "DELIVRD": 2, "EXPIRED": 3, "DELETED": 4, "UNDELIV": 5, "ACCEPTD": 6, "UNKNOWN": 7, "REJECTD": 8}

// sendReceipt sends r on a session of the same account that can
// receive, preferring the one its message came on.
func (s *Server) sendReceipt(r *Receipt) {
	s.mu.Lock()
	r.Attempts++
	from := r.from
	target := from
	if !from.canReceive() || isDone(from) {
		target = nil
		for c := range s.conns {
			if c.canReceive() && c.systemID == from.systemID && !isDone(c) {
				target = c
				break
			}
		}
	}
	s.mu.Unlock()
	if target == nil {
		s.retryReceipt(r)
		return
	}
	dlvrd := "000"
	if r.State == "DELIVRD" {
		dlvrd = "001"
	}
	sm := r.sm
	text := fmt.Sprintf("id:%s sub:001 dlvrd:%s submit date:%s done date:%s stat:%s err:000 text:",
		r.MessageID, dlvrd, r.submitted.Format("0601021504"), s.Now().Format("0601021504"), r.State)
	seq := target.seq.Add(1)
	target.pmu.Lock()
	target.pending[seq] = r
	target.pmu.Unlock()
	target.write(&pdu.PDU{ID: pdu.DeliverSM, Sequence: seq, Body: &pdu.SM{
		SourceAddrTON: sm.DestAddrTON, SourceAddrNPI: sm.DestAddrNPI, SourceAddr: sm.DestinationAddr,
		DestAddrTON: sm.SourceAddrTON, DestAddrNPI: sm.SourceAddrNPI, DestinationAddr: sm.SourceAddr,
		ESMClass: pdu.ESMClassReceipt, ShortMessage: []byte(text),
		TLVs: pdu.TLVs{pdu.CString(pdu.TagReceiptedMessageID, r.MessageID), pdu.U8(pdu.TagMessageState, stateNumbers[r.State])},
	}})
	// A receipt never answered (the connection dropped) is sent again.
	time.AfterFunc(5*s.opts.ReceiptRetry, func() {
		target.pmu.Lock()
		_, waiting := target.pending[seq]
		delete(target.pending, seq)
		target.pmu.Unlock()
		if waiting {
			s.retryReceipt(r)
		}
	})
}

// retryReceipt sends r again after ReceiptRetry, at most 5 attempts in all.
func (s *Server) retryReceipt(r *Receipt) {
	s.mu.Lock()
	attempts := r.Attempts
	s.mu.Unlock()
	if attempts >= 5 {
		return
	}
	select {
	case <-s.closed:
		return
	default:
	}
	time.AfterFunc(s.opts.ReceiptRetry, func() {
		select {
		case <-s.closed:
		default:
			s.sendReceipt(r)
		}
	})
}

func isDone(c *conn) bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// receiptAnswered records a deliver_sm_resp; an error answer schedules
// the receipt again.
func (c *conn) receiptAnswered(p *pdu.PDU) {
	c.pmu.Lock()
	r, ok := c.pending[p.Sequence]
	delete(c.pending, p.Sequence)
	c.pmu.Unlock()
	if !ok {
		return
	}
	s := c.srv
	s.mu.Lock()
	r.Status = p.Status
	if p.Status == pdu.OK && !r.Acked {
		r.Acked = true
		s.acked++
		if s.ackedCh != nil {
			close(s.ackedCh)
			s.ackedCh = nil
		}
	}
	s.mu.Unlock()
	if p.Status != pdu.OK {
		s.retryReceipt(r) // to whichever session can receive then
	}
}

// SendMO sends a mobile-originated message from the number from to the
// short code to, as UCS-2, on a bound session that can receive. It
// reports whether one could.
func (s *Server) SendMO(from, to, text string) bool {
	s.mu.Lock()
	var target *conn
	for c := range s.conns {
		if c.canReceive() && !isDone(c) {
			target = c
			break
		}
	}
	s.mu.Unlock()
	if target == nil {
		return false
	}
	target.write(&pdu.PDU{ID: pdu.DeliverSM, Sequence: target.seq.Add(1), Body: &pdu.SM{
		SourceAddrTON: 1, SourceAddrNPI: 1, SourceAddr: from, DestinationAddr: to,
		DataCoding: pdu.CodingUCS2, ShortMessage: sms.EncodeUCS2(text)}})
	return true
}
