package fcm

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/loa-hub/loa/channels"
)

// scriptServer is an HTTP/2 server over TLS whose every move a test
// scripts, frame by frame (x/net's Framer and HPACK), to see how
// clientConn meets what a server may do: GOAWAY, RST_STREAM, changed
// SETTINGS, flow-control windows, CONTINUATION, a connection dying.
type scriptServer struct {
	t        *testing.T
	endpoint string
	rt       *connPool
	conns    chan *scriptConn
}

func newScriptServer(t *testing.T, settings ...http2.Setting) *scriptServer {
	t.Helper()
	hs := httptest.NewTLSServer(http.NotFoundHandler()) // for its certificate
	certs := hs.TLS.Certificates
	roots := x509.NewCertPool()
	roots.AddCert(hs.Certificate())
	hs.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scriptServer{t: t, endpoint: "https://" + ln.Addr().String() + "/v1", conns: make(chan *scriptConn, 16)}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			tc := tls.Server(c, &tls.Config{Certificates: certs, NextProtos: []string{"h2"}})
			if err := tc.Handshake(); err != nil {
				t.Errorf("server handshake: %v", err)
				continue
			}
			preface := make([]byte, len(clientPreface))
			if _, err := io.ReadFull(tc, preface); err != nil || string(preface) != clientPreface {
				t.Errorf("client preface %q, %v", preface, err)
				continue
			}
			sc := &scriptConn{t: t, c: tc, fr: http2.NewFramer(tc, tc), dec: hpack.NewDecoder(4096, nil), streams: map[uint32]*scriptStream{}}
			sc.fr.ReadMetaHeaders = sc.dec
			sc.fr.SetMaxReadFrameSize(16 << 10) // what the server advertises by not saying
			sc.enc = hpack.NewEncoder(&sc.hbuf)
			if err := sc.fr.WriteSettings(settings...); err != nil {
				t.Errorf("server settings: %v", err)
			}
			s.conns <- sc
		}
	}()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	s.rt = pool(tr, 1, 0, s.endpoint)
	t.Cleanup(s.rt.CloseIdleConnections)
	return s
}

// scriptWait bounds each step of a script (a connection, a frame, an
// answer) so that a client that never does what the script waits for
// fails its test with a message instead of hanging to the test binary's
// timeout. It is a guard, not a measure: every step takes milliseconds.
const scriptWait = 30 * time.Second

// next is the next connection the client opened.
func (s *scriptServer) next() *scriptConn {
	s.t.Helper()
	select {
	case c := <-s.conns:
		return c
	case <-time.After(scriptWait):
		s.t.Fatalf("the client opened no connection within %v", scriptWait)
		return nil
	}
}

// send sends body on the pool and returns the answer's status and body.
func (s *scriptServer) send(body string) (int, string, error) {
	return s.sendHeader(body, "")
}

func (s *scriptServer) sendHeader(body, header string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), scriptWait)
	defer cancel()
	defer func() {
		if ctx.Err() != nil {
			s.t.Errorf("request %q: no answer within %v", body, scriptWait)
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint+"/projects/p/messages:send", strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	if header != "" {
		req.Header.Set("X-Big", header)
	}
	resp, err := s.rt.RoundTrip(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// async sends body on its own goroutine.
func (s *scriptServer) async(body string) <-chan sendResult {
	ch := make(chan sendResult, 1)
	go func() {
		status, b, err := s.send(body)
		ch <- sendResult{status, b, err}
	}()
	return ch
}

type sendResult struct {
	status int
	body   string
	err    error
}

// scriptConn is one connection of a scriptServer.
type scriptConn struct {
	t        *testing.T
	c        *tls.Conn
	fr       *http2.Framer
	dec      *hpack.Decoder
	enc      *hpack.Encoder
	hbuf     bytes.Buffer
	streams  map[uint32]*scriptStream
	acks     int                       // SETTINGS acknowledgements read
	onAck    func()                    // called at each
	onData   func(id uint32, n int)    // called for each DATA frame
	onHeader func(id uint32, open int) // called for each request's HEADERS, open counting it
	pings    int                       // PING acknowledgements read
	untilAck bool                      // request returns (0, nil, nil) at a PING acknowledgement
}

type scriptStream struct {
	header http.Header
	body   []byte
}

// request reads frames until a request is complete and returns its
// stream id and body; an error when the connection ends first.
func (sc *scriptConn) request() (uint32, *scriptStream, error) {
	for {
		if err := sc.c.SetReadDeadline(time.Now().Add(scriptWait)); err != nil {
			return 0, nil, err
		}
		f, err := sc.fr.ReadFrame()
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			sc.t.Errorf("server: no frame from the client within %v", scriptWait)
		}
		if err != nil {
			return 0, nil, err
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() {
				sc.acks++
				if sc.onAck != nil {
					sc.onAck()
				}
			} else if err := sc.fr.WriteSettingsAck(); err != nil {
				return 0, nil, err
			}
		case *http2.PingFrame:
			if f.IsAck() {
				sc.pings++
				if sc.untilAck {
					return 0, nil, nil
				}
			}
		case *http2.MetaHeadersFrame:
			st := &scriptStream{header: http.Header{}}
			for _, hf := range f.Fields {
				st.header.Add(hf.Name, hf.Value)
			}
			sc.streams[f.StreamID] = st
			if sc.onHeader != nil {
				sc.onHeader(f.StreamID, len(sc.streams))
			}
			if f.StreamEnded() {
				return f.StreamID, st, nil
			}
		case *http2.DataFrame:
			if sc.onData != nil {
				sc.onData(f.StreamID, int(f.Length))
			}
			st := sc.streams[f.StreamID]
			if st == nil {
				sc.t.Errorf("DATA on stream %d, not open", f.StreamID)
				continue
			}
			st.body = append(st.body, f.Data()...)
			if f.StreamEnded() {
				return f.StreamID, st, nil
			}
		}
	}
}

// mustRequest is request, failing the test on an error.
func (sc *scriptConn) mustRequest() (uint32, string) {
	id, st, err := sc.request()
	if err != nil {
		sc.t.Errorf("server reading a request: %v", err)
		return 0, ""
	}
	return id, string(st.body)
}

// answer answers stream id with status and body, and extra header
// fields (split into CONTINUATION frames when over 16 KiB).
func (sc *scriptConn) answer(id uint32, status string, body string, extra ...string) {
	delete(sc.streams, id)
	sc.hbuf.Reset()
	sc.enc.WriteField(hpack.HeaderField{Name: ":status", Value: status})
	sc.enc.WriteField(hpack.HeaderField{Name: "content-type", Value: "application/json"})
	for i := 0; i+1 < len(extra); i += 2 {
		sc.enc.WriteField(hpack.HeaderField{Name: extra[i], Value: extra[i+1]})
	}
	block := sc.hbuf.Bytes()
	first := min(len(block), 16<<10)
	err := sc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block[:first], EndHeaders: first == len(block),
		EndStream: body == ""})
	for block = block[first:]; err == nil && len(block) > 0; {
		n := min(len(block), 16<<10)
		err = sc.fr.WriteContinuation(id, n == len(block), block[:n])
		block = block[n:]
	}
	for b := []byte(body); err == nil && len(b) > 0; {
		n := min(len(b), 16<<10)
		err = sc.fr.WriteData(id, n == len(b), b[:n])
		b = b[n:]
	}
	if err != nil {
		sc.t.Errorf("server answering: %v", err)
	}
}

// TestGoAwaySendsUnprocessedStreamsAgain: a server's GOAWAY names the
// last stream it processes; a request on a later stream is sent again on
// a new connection, the one before it is answered on the old one, and
// each request reaches the server once.
func TestGoAwaySendsUnprocessedStreamsAgain(t *testing.T) {
	s := newScriptServer(t)
	a, b := s.async("one"), s.async("two")
	c1 := s.next()
	id1, body1 := c1.mustRequest()
	id2, body2 := c1.mustRequest()
	first, later := min(id1, id2), max(id1, id2)
	firstBody, laterBody := body1, body2
	if id2 < id1 {
		firstBody, laterBody = body2, body1
	}
	if err := c1.fr.WriteGoAway(first, http2.ErrCodeNo, nil); err != nil {
		t.Fatal(err)
	}
	c1.answer(first, "200", "answered "+firstBody)
	c2 := s.next()
	id3, body3 := c2.mustRequest()
	if body3 != laterBody {
		t.Errorf("new connection got %q, want the request of stream %d, %q", body3, later, laterBody)
	}
	c2.answer(id3, "200", "answered "+body3)
	for _, r := range []sendResult{<-a, <-b} {
		if r.err != nil || r.status != 200 || !strings.HasPrefix(r.body, "answered ") {
			t.Errorf("send: %d %q %v", r.status, r.body, r.err)
		}
	}
	if _, _, err := c1.request(); err == nil {
		t.Error("the old connection was not closed once its last stream was answered")
	}
}

// TestRefusedStreamIsSentAgain: a stream the server refuses
// (REFUSED_STREAM: not processed) is sent again, on the same connection.
func TestRefusedStreamIsSentAgain(t *testing.T) {
	s := newScriptServer(t)
	r := s.async("one")
	c := s.next()
	id, _ := c.mustRequest()
	if err := c.fr.WriteRSTStream(id, http2.ErrCodeRefusedStream); err != nil {
		t.Fatal(err)
	}
	id2, body := c.mustRequest()
	if id2 <= id || body != "one" {
		t.Errorf("after the refusal stream %d %q, want a later stream with the same request", id2, body)
	}
	c.answer(id2, "200", "ok")
	if got := <-r; got.err != nil || got.status != 200 {
		t.Errorf("send: %+v", got)
	}
}

// TestResetStreamFailsTheRequest: a stream the server resets for another
// reason fails its request — which the server may have processed, so it
// is not sent again — and the connection goes on serving.
func TestResetStreamFailsTheRequest(t *testing.T) {
	s := newScriptServer(t)
	r := s.async("one")
	c := s.next()
	id, _ := c.mustRequest()
	if err := c.fr.WriteRSTStream(id, http2.ErrCodeInternal); err != nil {
		t.Fatal(err)
	}
	got := <-r
	if got.err == nil || errors.Is(got.err, channels.ErrNotTaken) {
		t.Errorf("a reset stream: %+v; want an error that leaves the request maybe processed", got)
	}
	r = s.async("two")
	id, body := c.mustRequest()
	c.answer(id, "200", "ok")
	if got := <-r; got.err != nil || body != "two" {
		t.Errorf("the next send, on the same connection: %+v, server read %q", got, body)
	}
}

// TestConnectionLostMidRequest: a connection that dies with a request on
// it fails the request (maybe processed: not sent again); the next
// request dials a new connection.
func TestConnectionLostMidRequest(t *testing.T) {
	s := newScriptServer(t)
	r := s.async("one")
	c := s.next()
	c.mustRequest()
	c.c.Close()
	got := <-r
	if got.err == nil || errors.Is(got.err, channels.ErrNotTaken) {
		t.Errorf("a request on a lost connection: %+v; want an error that leaves it maybe processed", got)
	}
	r = s.async("two")
	c2 := s.next()
	id, body := c2.mustRequest()
	c2.answer(id, "200", "ok")
	if got := <-r; got.err != nil || body != "two" {
		t.Errorf("the next send: %+v, server read %q", got, body)
	}
}

// TestServerStreamLimit: once the client has the server's SETTINGS, it
// opens no more streams at once than the server allows (here one); the
// requests over the limit wait and all get through.
func TestServerStreamLimit(t *testing.T) {
	s := newScriptServer(t, http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 1})
	warm := s.async("warm-up")
	c := s.next()
	id, _ := c.mustRequest()
	c.answer(id, "200", "ok")
	if got := <-warm; got.err != nil {
		t.Fatal(got.err)
	}
	c.onHeader = func(id uint32, open int) {
		if open > 1 {
			t.Errorf("stream %d opened with %d streams open, over the server's limit of 1", id, open)
		}
	}
	const n = 20
	results := make([]<-chan sendResult, n)
	for i := range results {
		results[i] = s.async("push")
	}
	for range n {
		id, _ := c.mustRequest()
		// A PING's round trip before the answer: a client ignoring the
		// limit would open its other streams meanwhile.
		if err := c.fr.WritePing(false, [8]byte{1}); err != nil {
			t.Fatal(err)
		}
		c.untilAck = true
		if _, st, err := c.request(); err != nil || st != nil {
			t.Fatalf("waiting for the PING's acknowledgement: %v, a request instead: %v", err, st != nil)
		}
		c.untilAck = false
		c.answer(id, "200", "ok")
	}
	for _, r := range results {
		if got := <-r; got.err != nil || got.status != 200 {
			t.Errorf("send: %+v", got)
		}
	}
}

// TestFlowControlWindows: a request body larger than the stream's
// window (the server's SETTINGS_INITIAL_WINDOW_SIZE, here 16 bytes) is
// sent as the server's WINDOW_UPDATEs open it, never beyond it.
func TestFlowControlWindows(t *testing.T) {
	s := newScriptServer(t, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 16})
	warm := s.async("warm-up")
	c := s.next()
	id, _ := c.mustRequest()
	c.answer(id, "200", "ok")
	if got := <-warm; got.err != nil {
		t.Fatal(got.err)
	}
	window := map[uint32]int{}
	c.onHeader = func(id uint32, _ int) { window[id] = 16 }
	c.onData = func(id uint32, n int) {
		if window[id] -= n; window[id] < 0 {
			t.Errorf("stream %d: %d bytes over its window", id, -window[id])
		}
		if n > 0 {
			// Give the bytes back, to the stream and the connection.
			window[id] += n
			if err := c.fr.WriteWindowUpdate(id, uint32(n)); err != nil {
				t.Error(err)
			}
			if err := c.fr.WriteWindowUpdate(0, uint32(n)); err != nil {
				t.Error(err)
			}
		}
	}
	want := strings.Repeat("0123456789", 30)
	r := s.async(want)
	id, body := c.mustRequest()
	c.answer(id, "200", "ok")
	if got := <-r; got.err != nil || body != want {
		t.Errorf("send: %+v; server read %q, want %q", got, body, want)
	}
}

// TestHeaderTableSizeZero: after a server's SETTINGS_HEADER_TABLE_SIZE
// of 0 is acknowledged, the client's header blocks say so and refer to
// nothing in the (now empty) table: the server's decoder, emptied at the
// acknowledgement, reads every later request.
func TestHeaderTableSizeZero(t *testing.T) {
	s := newScriptServer(t)
	warm := s.async("warm-up")
	c := s.next()
	id, _ := c.mustRequest()
	c.answer(id, "200", "ok")
	if got := <-warm; got.err != nil {
		t.Fatal(got.err)
	}
	c.onAck = func() {
		// The second acknowledgement is of these SETTINGS (the first,
		// of the connection's, may come after the warm-up).
		if c.acks == 2 {
			c.dec.SetAllowedMaxDynamicTableSize(0)
			c.dec.SetMaxDynamicTableSize(0)
		}
	}
	if err := c.fr.WriteSettings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		r := s.async("push")
		id, st, err := c.request()
		if err != nil {
			t.Fatalf("request %d after the table size change: %v", i, err)
		}
		if got := st.header.Get(":path"); got != "/v1/projects/p/messages:send" {
			t.Errorf("request %d: :path %q", i, got)
		}
		c.answer(id, "200", "ok")
		if got := <-r; got.err != nil {
			t.Fatal(got.err)
		}
	}
}

// TestContinuationFrames: a header block over the frame size goes as
// HEADERS and CONTINUATION frames, both ways.
func TestContinuationFrames(t *testing.T) {
	s := newScriptServer(t)
	big := strings.Repeat("x", 40<<10)
	ch := make(chan sendResult, 1)
	var header string
	go func() {
		req, _ := http.NewRequest(http.MethodPost, s.endpoint+"/projects/p/messages:send", strings.NewReader("{}"))
		req.Header.Set("X-Big", big)
		resp, err := s.rt.RoundTrip(req)
		if err != nil {
			ch <- sendResult{err: err}
			return
		}
		resp.Body.Close()
		header = resp.Header.Get("X-Answer")
		ch <- sendResult{status: resp.StatusCode}
	}()
	c := s.next()
	id, st, err := c.request()
	if err != nil {
		t.Fatal(err)
	}
	if st.header.Get("x-big") != big {
		t.Errorf("server read x-big of %d bytes, want %d", len(st.header.Get("x-big")), len(big))
	}
	c.answer(id, "200", "ok", "x-answer", big)
	if got := <-ch; got.err != nil || header != big {
		t.Errorf("send: %+v, answer's header of %d bytes, want %d", got, len(header), len(big))
	}
}

// TestAnswerOverTheWindow: an answer longer than the stream's window
// fails its request; the connection goes on serving.
func TestAnswerOverTheWindow(t *testing.T) {
	s := newScriptServer(t)
	r := s.async("one")
	c := s.next()
	id, _ := c.mustRequest()
	c.answer(id, "200", strings.Repeat("y", streamWindow+1))
	if got := <-r; got.err == nil {
		t.Errorf("an answer over %d bytes: %+v", streamWindow, got)
	}
	r = s.async("two")
	for {
		id, st, err := c.request()
		if err != nil {
			t.Fatal(err)
		}
		if string(st.body) == "two" {
			c.answer(id, "200", "ok")
			break
		}
	}
	if got := <-r; got.err != nil {
		t.Errorf("the next send: %+v", got)
	}
}

// TestServerPingIsAnswered: a server's PING is acknowledged with its
// data.
func TestServerPingIsAnswered(t *testing.T) {
	s := newScriptServer(t)
	r := s.async("one")
	c := s.next()
	id, _ := c.mustRequest()
	data := [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
	if err := c.fr.WritePing(false, data); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := f.(*http2.PingFrame); ok {
			if !p.IsAck() || p.Data != data {
				t.Errorf("PING answered with %+v", p)
			}
			break
		}
	}
	c.answer(id, "200", "ok")
	if got := <-r; got.err != nil {
		t.Error(got.err)
	}
}
