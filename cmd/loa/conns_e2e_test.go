package main

import (
	"bufio"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

// TestAPIPortBoundsItsConnections: the API port keeps at most
// LOA_HTTP_MAX_CONNS connections open; past it a new connection is
// closed before its request is read, so clients holding idle connections
// cannot fill the process's memory and descriptors. (The per-address
// bound, LOA_HTTP_CONNS_PER_ADDR, is for Internet addresses: loopback
// may be a sidecar carrying everyone; internal/connlimit's test covers
// it, TestPublicAddr which addresses it takes. The test's own HTTP
// client may hold some of the four.)
func TestAPIPortBoundsItsConnections(t *testing.T) {
	in := startDev(t, map[string]string{"LOA_HTTP_MAX_CONNS": "4"})
	addr := strings.TrimPrefix(in.base, "http://")
	served := 0
	for range 10 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: loa\r\n\r\n")); err != nil {
			continue // closed before the request was written
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			continue // closed at once: refused
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("healthz: %d", resp.StatusCode)
		}
		served++ // kept open (keep-alive), still counted
	}
	if served == 0 || served > 4 {
		t.Errorf("%d of 10 connections held open were served; want 1 to 4", served)
	}
}

// TestAPIPortBoundsHeaders: a connection holds the headers it has sent
// until they end, and Go's server takes 1 MiB of them by default: one
// client address's 256 connections, each sending nearly that and never
// ending, held 270 MB of the API's heap (32 KiB now: 11 MB). Past
// LOA_HTTP_MAX_HEADER_BYTES (32 KiB; Go reads up to 4 KiB beyond it) a
// request is refused with 431; ordinary headers pass.
func TestAPIPortBoundsHeaders(t *testing.T) {
	in := startDev(t, map[string]string{})
	addr := strings.TrimPrefix(in.base, "http://")
	for size, want := range map[int]int{8 << 10: http.StatusOK, 40 << 10: http.StatusRequestHeaderFieldsTooLarge} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		req := "GET /healthz HTTP/1.1\r\nHost: loa\r\n"
		for n := 0; n < size; n += 1024 {
			req += "X-Filler: " + strings.Repeat("a", 1012) + "\r\n"
		}
		if _, err := c.Write([]byte(req + "\r\n")); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%d bytes of headers: %v", size, err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%d bytes of headers: %d, want %d", size, resp.StatusCode, want)
		}
	}
}

func TestPublicAddr(t *testing.T) {
	for a, want := range map[string]bool{
		"203.0.113.9": true, "2001:db8::1": true, "::ffff:198.51.100.7": true,
		"127.0.0.1": false, "::1": false, "10.1.2.3": false, "172.20.0.5": false, "192.168.1.1": false,
		"100.72.0.1": false, "fd00::1": false, "169.254.1.1": false, "fe80::1": false,
	} {
		if got := publicAddr(netip.MustParseAddr(a)); got != want {
			t.Errorf("publicAddr(%s) = %v, want %v", a, got, want)
		}
	}
}
