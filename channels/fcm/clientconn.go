package fcm

import (
	"bufio"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/loa-hub/loa/channels"
)

// clientConn is the client side of one HTTP/2 connection (RFC 9113) to
// FCM, made for what the SDK asks of it: small requests of the same
// header fields to one endpoint, small answers. The goroutine calling
// RoundTrip writes its request's frames itself and waits for the answer;
// one read loop a connection reads every answer, whole, into memory.
// Unlike net/http's HTTP/2 client there is no goroutine per request, and
// a request's header block is a cached run of table indices (see
// headerEncoder).
//
// Frames are read by x/net's Framer, which checks their layout, joins
// CONTINUATION frames and decodes HPACK. Everything else the
// specification asks of a client is here: flow control both ways,
// SETTINGS (stream limit, frame size, window, header table and list
// sizes), PING, GOAWAY, RST_STREAM.
//
// A request the server surely did not process — refused (REFUSED_STREAM),
// beyond a GOAWAY's last stream, not written because the connection had
// ended — fails with an unprocessedError, which h2Conn retries on another
// connection.
type clientConn struct {
	w    *coalescer // writes to the connection; every write is whole frames
	tls  *tls.ConnectionState
	idle time.Duration // closes the connection idle this long; never when zero

	wmu  sync.Mutex // orders header blocks and stream ids; guards enc, hbuf, wbuf
	enc  headerEncoder
	hbuf []byte
	wbuf []byte

	mu       sync.Mutex
	streams  map[uint32]*clientStream // open streams, by id
	nextID   uint32
	active   int  // streams admitted and not ended: those open and those about to be
	closed   bool // no new streams: the connection ended or is ending
	goAway   bool // the server sent GOAWAY
	err      error
	peer     peerSettings // written under wmu and mu
	sendWin  int64        // the connection's send window
	recvWin  int64        // what the server may still send on the connection
	unacked  int64        // bytes read and not yet given back by WINDOW_UPDATE
	changed  chan struct{}
	idleT    *time.Timer
	frames   atomic.Uint64 // frames read, for the health check
	done     chan struct{} // closed when the read loop has ended
	pingData [8]byte
}

// peerSettings are the server's SETTINGS (RFC 9113 §6.5.2).
type peerSettings struct {
	maxStreams uint32
	maxFrame   uint32
	initWindow uint32
	maxList    uint64
}

// clientStream is one request on a clientConn.
type clientStream struct {
	id      uint32
	sendWin int64 // under mu
	done    chan struct{}

	// Set by the read loop, under mu, before done is closed.
	status int
	header http.Header
	body   []byte
	err    error
}

const (
	// streamWindow is the flow-control window of each stream the client
	// gives the server: an answer may be at most that long. FCM's are
	// under a kilobyte; a front end's error page a few.
	streamWindow = 256 << 10
	// connWindow is the connection's flow-control window the client
	// gives the server.
	connWindow = 4 << 20
	// initialMaxStreams is how many streams the client opens before the
	// server's SETTINGS say how many it takes (what net/http assumes).
	initialMaxStreams = 100
	// maxResponseHeaderList bounds an answer's header fields when the
	// transport does not (MaxResponseHeaderBytes).
	maxResponseHeaderList = 1 << 20
	// maxStreamID is the last stream id a client can open.
	maxStreamID = 1<<31 - 1
)

// clientPreface is what a client sends first (RFC 9113 §3.4).
const clientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// unprocessedError is a request the server did not process: sending it
// again, on this connection or another, cannot deliver it twice.
type unprocessedError struct{ err error }

func (e *unprocessedError) Error() string {
	return "fcm: http2: request not processed: " + e.err.Error()
}

func (e *unprocessedError) Unwrap() []error { return []error{e.err, channels.ErrNotTaken} }

var (
	errConnClosed = errors.New("the connection has ended")
	errGoAway     = errors.New("the server is closing the connection (GOAWAY)")
)

// connOptions are a clientConn's settings, from the pool's transport.
type connOptions struct {
	idle        time.Duration // IdleConnTimeout
	pingAfter   time.Duration // HTTP2.SendPingTimeout: a PING after this long without a frame
	pingTimeout time.Duration // HTTP2.PingTimeout: the connection closes when a PING is not answered in this long
	maxList     uint32        // MaxResponseHeaderBytes
	writeStall  time.Duration // HTTP2.WriteByteTimeout; defaultWriteStall when zero
}

// defaultWriteStall is how long a write to a connection may take before
// the connection is given up: its peer has stopped reading. The callers
// of RoundTrip write their own frames, so they would otherwise wait on
// such a peer past their deadlines once the coalescer's queue is full.
const defaultWriteStall = 10 * time.Second

// newClientConn starts HTTP/2 on tc, a TLS connection that negotiated
// "h2", writing through a coalescer.
func newClientConn(tc *tls.Conn, o connOptions) (*clientConn, error) {
	st := tc.ConnectionState()
	cc := &clientConn{
		w:       newStallingCoalescer(tc, cmp.Or(o.writeStall, defaultWriteStall)),
		tls:     &st,
		idle:    o.idle,
		enc:     newHeaderEncoder(),
		streams: map[uint32]*clientStream{},
		nextID:  1,
		peer:    peerSettings{maxStreams: initialMaxStreams, maxFrame: 16 << 10, initWindow: 65535, maxList: 1<<64 - 1},
		sendWin: 65535,
		recvWin: connWindow,
		done:    make(chan struct{}),
	}
	maxList := o.maxList
	if maxList == 0 {
		maxList = maxResponseHeaderList
	}
	b := []byte(clientPreface)
	b = appendFrameHeader(b, 3*6, http2.FrameSettings, 0, 0)
	b = appendSetting(b, http2.SettingEnablePush, 0)
	b = appendSetting(b, http2.SettingInitialWindowSize, streamWindow)
	b = appendSetting(b, http2.SettingMaxHeaderListSize, maxList)
	b = appendWindowUpdate(b, 0, connWindow-65535)
	if _, err := cc.w.Write(b); err != nil {
		cc.w.Close()
		return nil, err
	}
	if cc.idle > 0 {
		cc.idleT = time.AfterFunc(cc.idle, cc.closeIfIdle)
	}
	fr := http2.NewFramer(io.Discard, bufio.NewReaderSize(tc, 16<<10))
	fr.ReadMetaHeaders = hpack.NewDecoder(defaultTableSize, nil)
	fr.MaxHeaderListSize = maxList
	fr.SetMaxReadFrameSize(16 << 10) // the default SETTINGS_MAX_FRAME_SIZE, not changed
	fr.SetReuseFrames()
	go cc.readLoop(fr)
	if o.pingAfter > 0 {
		go cc.healthCheck(o.pingAfter, o.pingTimeout)
	}
	return cc, nil
}

// usable reports whether a new request can start on the connection.
func (cc *clientConn) usable() bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return !cc.closed && !cc.goAway && cc.nextID <= maxStreamID
}

// waitLocked returns a channel closed at the next change of the streams,
// windows or settings.
func (cc *clientConn) waitLocked() <-chan struct{} {
	if cc.changed == nil {
		cc.changed = make(chan struct{})
	}
	return cc.changed
}

// changedLocked wakes those waiting for a change.
func (cc *clientConn) changedLocked() {
	if cc.changed != nil {
		close(cc.changed)
		cc.changed = nil
	}
}

// roundTrip sends req, whose body is body, and returns the answer, read
// whole. It does not close req.Body.
func (cc *clientConn) roundTrip(req *http.Request, body []byte) (*http.Response, error) {
	ctx := req.Context()
	if err := cc.admit(ctx); err != nil {
		return nil, err
	}
	s := &clientStream{done: make(chan struct{})}
	rest, err := cc.writeHeaders(req, s, body)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		cc.writeBody(ctx, s, rest)
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		cc.mu.Lock()
		open := cc.streams[s.id] == s
		if open {
			cc.endLocked(s, ctx.Err())
		}
		cc.mu.Unlock()
		if open {
			cc.write(appendRSTStream(nil, s.id, http2.ErrCodeCancel))
		}
		<-s.done
	}
	if s.err != nil {
		return nil, s.err
	}
	resp := &http.Response{Status: statusLine(s.status), StatusCode: s.status, Proto: "HTTP/2.0", ProtoMajor: 2,
		Header: s.header, ContentLength: int64(len(s.body)), Request: req, TLS: cc.tls}
	if len(s.body) == 0 {
		resp.Body = http.NoBody
	} else {
		b := &bodyReader{}
		b.Reset(s.body)
		resp.Body = b
	}
	return resp, nil
}

func statusLine(code int) string {
	if code == http.StatusOK {
		return "200 OK"
	}
	return strconv.Itoa(code) + " " + http.StatusText(code)
}

// admit takes one of the server's streams, waiting while all are in
// use.
func (cc *clientConn) admit(ctx context.Context) error {
	cc.mu.Lock()
	for {
		switch {
		case cc.closed || cc.goAway:
			err := cc.endedLocked()
			cc.mu.Unlock()
			return err
		case uint32(cc.active) < cc.peer.maxStreams:
			cc.active++
			if cc.active == 1 && cc.idleT != nil {
				cc.idleT.Stop()
			}
			cc.mu.Unlock()
			return nil
		}
		wait := cc.waitLocked()
		cc.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return fmt.Errorf("%w: fcm: http2: waiting for a stream the server allows: %w", channels.ErrNotAttempted, ctx.Err())
		}
		cc.mu.Lock()
	}
}

// endedLocked is the error of a request that cannot start because the
// connection has ended or is ending.
func (cc *clientConn) endedLocked() error {
	if cc.goAway && !cc.closed {
		return &unprocessedError{errGoAway}
	}
	err := cc.err
	if err == nil {
		err = errConnClosed
	}
	return &unprocessedError{err}
}

// releaseLocked gives back a stream admitted but not opened.
func (cc *clientConn) releaseLocked() {
	cc.active--
	cc.changedLocked()
	cc.idleLocked()
}

// idleLocked starts the idle timer, or closes a connection the server is
// closing, when no stream is left.
func (cc *clientConn) idleLocked() {
	if cc.active > 0 {
		return
	}
	if cc.goAway && !cc.closed {
		cc.closed = true
		go cc.w.Close() // the read loop then ends
		return
	}
	if cc.idleT != nil && !cc.closed {
		cc.idleT.Reset(cc.idle)
	}
}

// writeHeaders opens s: it writes req's HEADERS and as much of body as
// the flow-control windows allow, and returns the rest.
func (cc *clientConn) writeHeaders(req *http.Request, s *clientStream, body []byte) ([]byte, error) {
	cc.wmu.Lock()
	defer cc.wmu.Unlock()
	block, err := cc.enc.encode(cc.hbuf[:0], req, len(body), cc.peer.maxList)
	if err != nil {
		cc.mu.Lock()
		cc.releaseLocked()
		cc.mu.Unlock()
		return nil, fmt.Errorf("%w: %w", channels.ErrNotAttempted, err)
	}
	cc.hbuf = block[:0]
	cc.mu.Lock()
	if cc.closed || cc.goAway || cc.nextID > maxStreamID {
		if !cc.closed {
			cc.goAway = true // no stream ids left: let the pool dial another connection
		}
		err := cc.endedLocked()
		cc.releaseLocked()
		cc.mu.Unlock()
		return nil, err
	}
	s.id = cc.nextID
	cc.nextID += 2
	cc.streams[s.id] = s
	s.sendWin = int64(cc.peer.initWindow)
	n := min(int64(len(body)), max(min(cc.sendWin, s.sendWin), 0))
	cc.sendWin -= n
	s.sendWin -= n
	maxFrame := int(cc.peer.maxFrame)
	cc.mu.Unlock()

	b := cc.wbuf[:0]
	b = appendHeaders(b, s.id, block, len(body) == 0, maxFrame)
	b = appendData(b, s.id, body[:n], n == int64(len(body)) && len(body) > 0, maxFrame)
	_, err = cc.w.Write(b)
	if cap(b) <= 64<<10 {
		cc.wbuf = b[:0]
	}
	if err != nil {
		// Nothing was written: the connection had failed before.
		cc.mu.Lock()
		if cc.streams[s.id] == s {
			cc.endLocked(s, &unprocessedError{err})
		}
		cc.mu.Unlock()
	}
	return body[n:], nil
}

// writeBody writes the rest of s's body as the windows open, until it
// is written, s ends or ctx ends.
func (cc *clientConn) writeBody(ctx context.Context, s *clientStream, rest []byte) {
	for len(rest) > 0 {
		cc.mu.Lock()
		var n int64
		for {
			if cc.streams[s.id] != s {
				cc.mu.Unlock()
				return
			}
			if n = min(int64(len(rest)), cc.sendWin, s.sendWin, int64(cc.peer.maxFrame)); n > 0 {
				break
			}
			wait := cc.waitLocked()
			cc.mu.Unlock()
			select {
			case <-wait:
			case <-s.done:
				return
			case <-ctx.Done():
				return // roundTrip resets the stream
			}
			cc.mu.Lock()
		}
		cc.sendWin -= n
		s.sendWin -= n
		cc.mu.Unlock()
		if _, err := cc.w.Write(appendData(nil, s.id, rest[:n], n == int64(len(rest)), int(n))); err != nil {
			return // the read loop fails the stream
		}
		rest = rest[n:]
	}
}

// endLocked ends s with err (nil: its answer is complete).
func (cc *clientConn) endLocked(s *clientStream, err error) {
	delete(cc.streams, s.id)
	s.err = err
	close(s.done)
	cc.active--
	cc.changedLocked()
	cc.idleLocked()
}

// write writes frames, unless the connection has failed.
func (cc *clientConn) write(b []byte) {
	cc.w.Write(b) //nolint:errcheck // a failed connection fails its streams in the read loop
}

// closeIfIdle closes the connection if no stream is open: the idle
// timer's, and the pool's CloseIdleConnections.
func (cc *clientConn) closeIfIdle() {
	cc.mu.Lock()
	if cc.active > 0 || cc.closed {
		cc.mu.Unlock()
		return
	}
	cc.closed = true
	cc.mu.Unlock()
	cc.write(appendGoAway(nil, 0, http2.ErrCodeNo))
	cc.w.Close() // the read loop then ends
}

// healthCheck sends a PING when no frame has been read for after, and
// closes the connection when no frame answers it within timeout.
func (cc *clientConn) healthCheck(after, timeout time.Duration) {
	if timeout <= 0 {
		timeout = 15 * time.Second // net/http's default
	}
	t := time.NewTimer(after)
	defer t.Stop()
	seen := cc.frames.Load()
	for {
		select {
		case <-cc.done:
			return
		case <-t.C:
		}
		if n := cc.frames.Load(); n != seen {
			seen = n
			t.Reset(after)
			continue
		}
		cc.write(appendPing(nil, false, cc.pingData))
		t.Reset(timeout)
		select {
		case <-cc.done:
			return
		case <-t.C:
		}
		if cc.frames.Load() == seen {
			cc.w.Close() // the read loop fails every stream
			return
		}
		seen = cc.frames.Load()
		t.Reset(after)
	}
}

// readLoop reads the server's frames until the connection fails or
// closes, then fails every stream still open.
func (cc *clientConn) readLoop(fr *http2.Framer) {
	var err error
	for {
		var f http2.Frame
		f, err = fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				cc.resetStream(se.StreamID, se.Code, fmt.Errorf("fcm: http2: %w", se))
				continue
			}
			if errors.Is(err, http2.ErrFrameTooLarge) {
				err = http2.ConnectionError(http2.ErrCodeFrameSize)
			}
			break
		}
		cc.frames.Add(1)
		if err = cc.handle(f); err != nil {
			break
		}
	}
	var ce http2.ConnectionError
	if errors.As(err, &ce) {
		cc.write(appendGoAway(nil, 0, http2.ErrCode(ce)))
	}
	cc.mu.Lock()
	cc.closed = true
	if cc.err == nil {
		cc.err = fmt.Errorf("fcm: http2: connection ended: %w", err)
	}
	for _, s := range cc.streams {
		cc.endLocked(s, cc.err)
	}
	cc.changedLocked()
	cc.mu.Unlock()
	cc.w.Close()
	if cc.idleT != nil {
		cc.idleT.Stop()
	}
	close(cc.done)
}

// openedLocked reports whether id is a stream the client opened (which
// may have ended since).
func (cc *clientConn) openedLocked(id uint32) bool {
	return id%2 == 1 && id < cc.nextID
}

// resetStream ends stream id with err after the frame reader found it
// broken, and tells the server.
func (cc *clientConn) resetStream(id uint32, code http2.ErrCode, err error) {
	cc.mu.Lock()
	s := cc.streams[id]
	if s != nil {
		cc.endLocked(s, err)
	}
	cc.mu.Unlock()
	cc.write(appendRSTStream(nil, id, code))
}

// handle acts on a frame; an error ends the connection.
func (cc *clientConn) handle(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		return cc.handleHeaders(f)
	case *http2.DataFrame:
		return cc.handleData(f)
	case *http2.RSTStreamFrame:
		cc.mu.Lock()
		defer cc.mu.Unlock()
		if !cc.openedLocked(f.StreamID) {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		if s := cc.streams[f.StreamID]; s != nil {
			var err error = fmt.Errorf("fcm: http2: %w", http2.StreamError{StreamID: f.StreamID, Code: f.ErrCode})
			if f.ErrCode == http2.ErrCodeRefusedStream {
				err = &unprocessedError{err}
			}
			cc.endLocked(s, err)
		}
	case *http2.SettingsFrame:
		if f.IsAck() {
			return nil
		}
		return cc.handleSettings(f)
	case *http2.WindowUpdateFrame:
		cc.mu.Lock()
		defer cc.mu.Unlock()
		if f.StreamID == 0 {
			if cc.sendWin+int64(f.Increment) > 1<<31-1 {
				return http2.ConnectionError(http2.ErrCodeFlowControl)
			}
			cc.sendWin += int64(f.Increment)
		} else if s := cc.streams[f.StreamID]; s != nil {
			if s.sendWin+int64(f.Increment) > 1<<31-1 {
				cc.endLocked(s, fmt.Errorf("fcm: http2: stream %d's window overflowed", s.id))
				go cc.write(appendRSTStream(nil, s.id, http2.ErrCodeFlowControl))
				return nil
			}
			s.sendWin += int64(f.Increment)
		} else if !cc.openedLocked(f.StreamID) {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		cc.changedLocked()
	case *http2.PingFrame:
		if !f.IsAck() {
			cc.write(appendPing(nil, true, f.Data))
		}
	case *http2.GoAwayFrame:
		cc.mu.Lock()
		defer cc.mu.Unlock()
		cc.goAway = true
		if f.ErrCode != http2.ErrCodeNo {
			cc.err = fmt.Errorf("fcm: http2: the server closed the connection: GOAWAY %v", f.ErrCode)
		}
		for id, s := range cc.streams {
			if id > f.LastStreamID {
				cc.endLocked(s, &unprocessedError{errGoAway})
			}
		}
		cc.changedLocked()
		cc.idleLocked()
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol) // push is disabled
	}
	// Other frames (PRIORITY, unknown types) are ignored.
	return nil
}

// handleHeaders reads an answer's header block.
func (cc *clientConn) handleHeaders(f *http2.MetaHeadersFrame) error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if !cc.openedLocked(f.StreamID) {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	s := cc.streams[f.StreamID]
	if s == nil {
		return nil // a stream the client reset; the block was decoded all the same
	}
	fail := func(err error) error {
		cc.endLocked(s, fmt.Errorf("fcm: http2: stream %d: %w", s.id, err))
		go cc.write(appendRSTStream(nil, s.id, http2.ErrCodeProtocol))
		return nil
	}
	if f.Truncated {
		return fail(errors.New("answer's header list larger than allowed"))
	}
	if s.status != 0 {
		// Trailers: read, not kept (FCM sends none).
		if !f.StreamEnded() {
			return fail(errors.New("trailers without END_STREAM"))
		}
		cc.endLocked(s, nil)
		return nil
	}
	code, err := strconv.Atoi(f.PseudoValue("status"))
	if err != nil || code < 100 || code > 999 {
		return fail(fmt.Errorf("answer's :status %q", f.PseudoValue("status")))
	}
	if code < 200 {
		if code == http.StatusSwitchingProtocols || f.StreamEnded() {
			return fail(fmt.Errorf("answer's :status %d", code))
		}
		return nil // an interim answer (100 Continue, 103 Early Hints)
	}
	regular := f.RegularFields()
	h := make(http.Header, len(regular))
	values := make([]string, 0, len(regular))
	for _, hf := range regular {
		key := textproto.CanonicalMIMEHeaderKey(hf.Name)
		if vv, ok := h[key]; ok {
			h[key] = append(vv, hf.Value)
			continue
		}
		values = append(values, hf.Value)
		h[key] = values[len(values)-1 : len(values) : len(values)]
	}
	s.status, s.header = code, h
	if f.StreamEnded() {
		cc.endLocked(s, nil)
	}
	return nil
}

// handleData reads a piece of an answer's body.
func (cc *clientConn) handleData(f *http2.DataFrame) error {
	n := int64(f.Length) // padding included: it counts against the windows
	cc.mu.Lock()
	if !cc.openedLocked(f.StreamID) {
		cc.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if cc.recvWin -= n; cc.recvWin < 0 {
		cc.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	var update int64
	if cc.unacked += n; cc.unacked >= connWindow/2 {
		update, cc.unacked = cc.unacked, 0
		cc.recvWin += update
	}
	var reset http2.ErrCode
	if s := cc.streams[f.StreamID]; s != nil {
		switch {
		case s.status == 0:
			cc.endLocked(s, fmt.Errorf("fcm: http2: stream %d: DATA before the answer's headers", s.id))
			reset = http2.ErrCodeProtocol
		case len(s.body)+int(n) > streamWindow:
			cc.endLocked(s, fmt.Errorf("fcm: http2: stream %d: answer over %d bytes", s.id, streamWindow))
			reset = http2.ErrCodeFlowControl
		default:
			s.body = append(s.body, f.Data()...)
			if f.StreamEnded() {
				cc.endLocked(s, nil)
			}
		}
	}
	cc.mu.Unlock()
	if update > 0 || reset != 0 {
		var b []byte
		if update > 0 {
			b = appendWindowUpdate(b, 0, uint32(update))
		}
		if reset != 0 {
			b = appendRSTStream(b, f.StreamID, reset)
		}
		cc.write(b)
	}
	return nil
}

// handleSettings applies the server's SETTINGS and acknowledges them.
func (cc *clientConn) handleSettings(f *http2.SettingsFrame) error {
	cc.wmu.Lock()
	defer cc.wmu.Unlock()
	cc.mu.Lock()
	err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingMaxConcurrentStreams:
			cc.peer.maxStreams = s.Val
		case http2.SettingMaxFrameSize:
			cc.peer.maxFrame = s.Val
		case http2.SettingMaxHeaderListSize:
			cc.peer.maxList = uint64(s.Val)
		case http2.SettingInitialWindowSize:
			delta := int64(s.Val) - int64(cc.peer.initWindow)
			for _, st := range cc.streams {
				if st.sendWin+delta > 1<<31-1 {
					return http2.ConnectionError(http2.ErrCodeFlowControl)
				}
				st.sendWin += delta
			}
			cc.peer.initWindow = s.Val
		case http2.SettingHeaderTableSize:
			cc.enc.setLimit(s.Val)
		}
		return nil
	})
	cc.changedLocked()
	cc.mu.Unlock()
	if err != nil {
		return err
	}
	// Under wmu: a header block written after the acknowledgement starts
	// with any table size update the settings asked for.
	cc.write(appendFrameHeader(nil, 0, http2.FrameSettings, http2.FlagSettingsAck, 0))
	return nil
}

// Frames, written by hand (RFC 9113 §4.1, §6).

func appendFrameHeader(b []byte, length int, t http2.FrameType, flags http2.Flags, id uint32) []byte {
	return append(b, byte(length>>16), byte(length>>8), byte(length), byte(t), byte(flags),
		byte(id>>24), byte(id>>16), byte(id>>8), byte(id))
}

// appendHeaders appends a HEADERS frame, and CONTINUATION frames when
// block is longer than maxFrame.
func appendHeaders(b []byte, id uint32, block []byte, endStream bool, maxFrame int) []byte {
	t, flags := http2.FrameHeaders, http2.Flags(0)
	if endStream {
		flags = http2.FlagHeadersEndStream
	}
	for first := true; first || len(block) > 0; first = false {
		n := min(len(block), maxFrame)
		f := flags
		if n == len(block) {
			f |= http2.FlagHeadersEndHeaders
		}
		b = appendFrameHeader(b, n, t, f, id)
		b = append(b, block[:n]...)
		block = block[n:]
		t, flags = http2.FrameContinuation, 0
	}
	return b
}

// appendData appends data as DATA frames of at most maxFrame bytes, the
// last with END_STREAM when end; nothing for no data.
func appendData(b []byte, id uint32, data []byte, end bool, maxFrame int) []byte {
	for len(data) > 0 {
		n := min(len(data), maxFrame)
		var f http2.Flags
		if end && n == len(data) {
			f = http2.FlagDataEndStream
		}
		b = appendFrameHeader(b, n, http2.FrameData, f, id)
		b = append(b, data[:n]...)
		data = data[n:]
	}
	return b
}

func appendSetting(b []byte, id http2.SettingID, v uint32) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(id))
	return binary.BigEndian.AppendUint32(b, v)
}

func appendWindowUpdate(b []byte, id, inc uint32) []byte {
	b = appendFrameHeader(b, 4, http2.FrameWindowUpdate, 0, id)
	return binary.BigEndian.AppendUint32(b, inc)
}

func appendRSTStream(b []byte, id uint32, code http2.ErrCode) []byte {
	b = appendFrameHeader(b, 4, http2.FrameRSTStream, 0, id)
	return binary.BigEndian.AppendUint32(b, uint32(code))
}

func appendPing(b []byte, ack bool, data [8]byte) []byte {
	var f http2.Flags
	if ack {
		f = http2.FlagPingAck
	}
	b = appendFrameHeader(b, 8, http2.FramePing, f, 0)
	return append(b, data[:]...)
}

func appendGoAway(b []byte, last uint32, code http2.ErrCode) []byte {
	b = appendFrameHeader(b, 8, http2.FrameGoAway, 0, 0)
	b = binary.BigEndian.AppendUint32(b, last)
	return binary.BigEndian.AppendUint32(b, uint32(code))
}
