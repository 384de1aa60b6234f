package connlimit

import (
	"io"
	"net"
	"net/netip"
	"sync"

	"github.com/loa-hub/loa/internal/quota"
)

// Config bounds a listener's open connections.
type Config struct {
	// Max bounds every open connection together; 0: no bound.
	Max int
	// PerAddr bounds the open connections of one client address (an
	// IPv4 address, an IPv6 /64); 0: no bound.
	PerAddr int
	// Shared reports addresses whose connections carry many clients (the
	// reverse proxies in front): they are not bounded per address, only
	// by Max. Nil: none.
	Shared func(netip.Addr) bool
}

// Observer learns of refused connections; a nil Observer is allowed.
type Observer interface {
	// ConnRefused counts a connection closed at once: its address had
	// PerAddr open (perAddr), or the listener had Max.
	ConnRefused(perAddr bool)
}

// Listener is a net.Listener that closes at once, without reading them,
// the connections past its bounds, and accepts the others. A connection
// counts until it is closed. Safe for concurrent use.
type Listener struct {
	net.Listener
	cfg Config
	obs Observer

	mu   sync.Mutex
	open int
	per  map[string]int
}

// New bounds ln's connections by cfg.
func New(ln net.Listener, cfg Config, obs Observer) *Listener {
	return &Listener{Listener: ln, cfg: cfg, obs: obs, per: map[string]int{}}
}

// Accept returns the next connection within the bounds; those past them
// are closed as they come.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := l.key(c.RemoteAddr())
		l.mu.Lock()
		full := l.cfg.Max > 0 && l.open >= l.cfg.Max
		crowded := !full && key != "" && l.cfg.PerAddr > 0 && l.per[key] >= l.cfg.PerAddr
		if full || crowded {
			l.mu.Unlock()
			if l.obs != nil {
				l.obs.ConnRefused(crowded)
			}
			c.Close()
			continue
		}
		l.open++
		if key != "" {
			l.per[key]++
		}
		l.mu.Unlock()
		return &conn{Conn: c, l: l, key: key}, nil
	}
}

// Open reports how many connections are open.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// key is the address a connection counts on: "" when it is not bounded
// per address.
func (l *Listener) key(a net.Addr) string {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return ""
	}
	addr := ap.Addr().Unmap()
	if l.cfg.Shared != nil && l.cfg.Shared(addr) {
		return ""
	}
	return quota.AddrKey(addr.String())
}

func (l *Listener) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if key != "" {
		if l.per[key]--; l.per[key] <= 0 {
			delete(l.per, key)
		}
	}
}

type conn struct {
	net.Conn
	l    *Listener
	key  string
	once sync.Once
}

// CloseWrite and ReadFrom pass through what net/http uses of a TCP
// connection (a half-close before closing, sendfile).
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *conn) ReadFrom(r io.Reader) (int64, error) { return io.Copy(c.Conn, r) }

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.key) })
	return err
}
