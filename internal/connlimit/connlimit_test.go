package connlimit_test

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/loa-hub/loa/internal/connlimit"
)

type refusals struct {
	mu             sync.Mutex
	perAddr, inAll int
}

func (r *refusals) counts() (perAddr, inAll int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.perAddr, r.inAll
}

func (r *refusals) ConnRefused(perAddr bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if perAddr {
		r.perAddr++
	} else {
		r.inAll++
	}
}

// serve accepts connections from l, says "A" on each and holds it until
// the test closes it through the returned channel's conns.
func serve(t *testing.T, l net.Listener) <-chan net.Conn {
	t.Helper()
	accepted := make(chan net.Conn, 100)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("A"))
			accepted <- c
		}
	}()
	t.Cleanup(func() { l.Close() })
	return accepted
}

// dial connects and tells whether the listener kept the connection (it
// says "A") or closed it at once (EOF).
func dial(t *testing.T, addr string) (net.Conn, bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	b := make([]byte, 1)
	_, err = c.Read(b)
	switch {
	case err == nil && b[0] == 'A':
		return c, true
	case errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err):
		return c, false
	}
	t.Fatalf("read: %q %v", b, err)
	return nil, false
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}

// TestOneAddressCannotHoldEveryConnection: one client address holds at
// most PerAddr connections; past it each new one is closed at once,
// before a byte is read, and a connection it closes frees its place.
// Addresses whose connections carry many clients (the trusted proxies)
// are bounded only by Max, like everyone together.
func TestOneAddressCannotHoldEveryConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	obs := &refusals{}
	l := connlimit.New(ln, connlimit.Config{Max: 5, PerAddr: 3}, obs)
	accepted := serve(t, l)
	addr := ln.Addr().String()
	for i := range 3 {
		if _, ok := dial(t, addr); !ok {
			t.Fatalf("connection %d of 3 refused", i+1)
		}
	}
	if _, ok := dial(t, addr); ok {
		t.Fatal("a fourth connection of one address was kept")
	}
	// The server closes one of the three: a place is free again.
	(<-accepted).Close()
	if _, ok := dial(t, addr); !ok {
		t.Fatal("a connection after one closed was refused")
	}
	if p, a := obs.counts(); p != 1 || a != 0 {
		t.Errorf("refusals counted: %d per address, %d in all; want 1, 0", p, a)
	}
	if n := l.Open(); n != 3 {
		t.Errorf("%d open, want 3", n)
	}

	// Behind a proxy: not bounded per address, but by Max.
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	obs2 := &refusals{}
	proxy := func(a netip.Addr) bool { return a.IsLoopback() }
	serve(t, connlimit.New(ln2, connlimit.Config{Max: 5, PerAddr: 3, Shared: proxy}, obs2))
	for i := range 5 {
		if _, ok := dial(t, ln2.Addr().String()); !ok {
			t.Fatalf("the proxy's connection %d of 5 refused", i+1)
		}
	}
	if _, ok := dial(t, ln2.Addr().String()); ok {
		t.Fatal("a sixth connection past Max was kept")
	}
	if p, a := obs2.counts(); p != 0 || a != 1 {
		t.Errorf("refusals counted: %d per address, %d in all; want 0, 1", p, a)
	}
}
