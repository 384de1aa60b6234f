package fcm

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/loa-hub/loa/channels"
)

// h2Conn is one HTTP/2 connection of a pool, which it dials itself: TCP,
// TLS with ALPN "h2", and a coalescer between HTTP/2 and TLS, so that the
// frames of every request ready at one moment are sealed in one TLS
// record and written in one system call. (net/http's own transport puts
// HTTP/2 straight on the *tls.Conn: a record and a write for each frame
// it flushes, two a request.) HTTP/2 itself is Loa's clientConn, not
// net/http's: no goroutine per request, a cached header block (see
// clientConn). When the connection can take no more requests — the
// server sent GOAWAY, it broke, it idled out — the next request dials its
// replacement; requests arriving meanwhile wait for that dial. A request
// the server surely did not process (refused, after a GOAWAY's last
// stream, on a connection that had ended) is sent again, up to
// maxAttempts times in all.
type h2Conn struct {
	host      string // the URL's host, as requests name it
	addr      string // host:port dialled
	dial      func(ctx context.Context, network, addr string) (net.Conn, error)
	tls       *tls.Config
	handshake time.Duration // bounds the TLS handshake; none when zero
	opts      connOptions

	mu      sync.Mutex
	cc      *clientConn
	dialing chan struct{} // closed when the dial under way ends; nil when none is
	dialErr error         // the last dial's error
}

// h2Endpoint reports whether the pool can dial its own HTTP/2
// connections to endpoint through t: an https URL, reached directly (no
// proxy, no custom TLS dialer).
func h2Endpoint(t *http.Transport, endpoint string) (*url.URL, bool) {
	u, err := url.Parse(endpoint)
	//lint:ignore SA1019 DialTLS, if set, must be honoured
	if err != nil || u.Scheme != "https" || u.Host == "" || t.DialTLSContext != nil || t.DialTLS != nil {
		return nil, false
	}
	if t.Proxy != nil {
		p, err := t.Proxy(&http.Request{Method: http.MethodPost, URL: u, Header: http.Header{}})
		if err != nil || p != nil {
			return nil, false
		}
	}
	return u, true
}

// newH2Conn returns an h2Conn to u's host with t's dialer, TLS settings
// and HTTP/2 settings.
func newH2Conn(t *http.Transport, u *url.URL) *h2Conn {
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "443")
	}
	cfg := &tls.Config{}
	if t.TLSClientConfig != nil {
		cfg = t.TLSClientConfig.Clone()
	}
	cfg.NextProtos = []string{"h2"}
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	dial := t.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	o := connOptions{idle: t.IdleConnTimeout, maxList: uint32(min(max(t.MaxResponseHeaderBytes, 0), 1<<32-1))}
	if h := t.HTTP2; h != nil {
		o.pingAfter, o.pingTimeout, o.writeStall = h.SendPingTimeout, h.PingTimeout, h.WriteByteTimeout
	}
	return &h2Conn{host: u.Host, addr: addr, dial: dial, tls: cfg, handshake: t.TLSHandshakeTimeout, opts: o}
}

// maxAttempts bounds how many times a request the server did not process
// (see unprocessedError) is sent.
const maxAttempts = 4

// maxRequestBody bounds a request's body, which is read into memory.
const maxRequestBody = 1 << 20

func (h *h2Conn) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != h.host || req.URL.Scheme != "https" {
		if req.Body != nil {
			req.Body.Close() // a RoundTripper closes the body, even on error
		}
		return nil, fmt.Errorf("fcm: a request to %s on a connection to %s", req.URL.Redacted(), h.host)
	}
	body, err := readBody(req)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		cc, err := h.conn(req.Context())
		if err != nil {
			return nil, err
		}
		resp, err := cc.roundTrip(req, body)
		var u *unprocessedError
		if err == nil || !errors.As(err, &u) || attempt == maxAttempts || req.Context().Err() != nil {
			return resp, err
		}
	}
}

// readBody reads and closes req's body.
func readBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	defer req.Body.Close()
	if n := req.ContentLength; n > 0 && n <= maxRequestBody {
		b := make([]byte, n)
		if _, err := io.ReadFull(req.Body, b); err != nil {
			return nil, fmt.Errorf("%w: fcm: reading the request body: %w", channels.ErrNotAttempted, err)
		}
		return b, nil
	}
	b, err := io.ReadAll(io.LimitReader(req.Body, maxRequestBody+1))
	if err == nil && len(b) > maxRequestBody {
		err = fmt.Errorf("over %d bytes", maxRequestBody)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: fcm: reading the request body: %w", channels.ErrNotAttempted, err)
	}
	return b, nil
}

// conn returns the connection, dialling it when there is none that can
// take a request, or waiting for the dial under way.
func (h *h2Conn) conn(ctx context.Context) (*clientConn, error) {
	h.mu.Lock()
	for {
		if h.cc != nil && h.cc.usable() {
			cc := h.cc
			h.mu.Unlock()
			return cc, nil
		}
		if h.dialing == nil {
			break
		}
		wait := h.dialing
		h.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		h.mu.Lock()
		// A dial that failed fails those who waited for it, unless it
		// only ended with its own caller's context.
		if err := h.dialErr; err != nil && h.dialing == nil && (h.cc == nil || !h.cc.usable()) &&
			!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			h.mu.Unlock()
			return nil, err
		}
	}
	done := make(chan struct{})
	h.dialing = done
	h.mu.Unlock()

	cc, err := h.dialConn(ctx)

	h.mu.Lock()
	if err == nil {
		h.cc = cc
	}
	h.dialErr, h.dialing = err, nil
	close(done)
	h.mu.Unlock()
	return cc, err
}

// dialConn dials a new connection: TCP, TLS (ALPN "h2"), then HTTP/2
// over a coalescer.
func (h *h2Conn) dialConn(ctx context.Context) (*clientConn, error) {
	raw, err := h.dial(ctx, "tcp", h.addr)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(raw, h.tls)
	hctx := ctx
	if h.handshake > 0 {
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeout(ctx, h.handshake)
		defer cancel()
	}
	if err := tc.HandshakeContext(hctx); err != nil {
		raw.Close()
		return nil, err
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
		tc.Close()
		return nil, fmt.Errorf("fcm: %s does not offer HTTP/2 (ALPN %q)", h.addr, p)
	}
	return newClientConn(tc, h.opts)
}

// CloseIdleConnections closes the connection if no request is on it.
func (h *h2Conn) CloseIdleConnections() {
	h.mu.Lock()
	cc := h.cc
	h.mu.Unlock()
	if cc != nil {
		cc.closeIfIdle()
	}
}
