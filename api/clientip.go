package api

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// TrustedProxies are the addresses whose X-Forwarded-For header Loa
// believes: the load balancers and reverse proxies in front of the API.
// The zero value trusts nobody, so the client address is always the
// connection's. It is safe for concurrent use.
type TrustedProxies struct {
	prefixes []netip.Prefix
}

// ParseTrustedProxies reads a comma-separated list of addresses and CIDR
// prefixes ("10.0.0.0/8, 192.0.2.7, fd00::/8"), as in LOA_TRUSTED_PROXIES.
// An empty string trusts nobody.
func ParseTrustedProxies(s string) (TrustedProxies, error) {
	var t TrustedProxies
	var bad []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if strings.Contains(part, "/") {
			p, err := netip.ParsePrefix(part)
			if err != nil {
				bad = append(bad, part)
				continue
			}
			t.prefixes = append(t.prefixes, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			bad = append(bad, part)
			continue
		}
		a = a.Unmap()
		t.prefixes = append(t.prefixes, netip.PrefixFrom(a, a.BitLen()))
	}
	if len(bad) > 0 {
		return TrustedProxies{}, fmt.Errorf("api: trusted proxies: %q is not an address or a CIDR prefix", strings.Join(bad, ", "))
	}
	return t, nil
}

// String lists the trusted prefixes, comma-separated.
func (t TrustedProxies) String() string {
	s := make([]string, len(t.prefixes))
	for i, p := range t.prefixes {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// Trusts reports whether a is one of the trusted proxies.
func (t TrustedProxies) Trusts(a netip.Addr) bool { return t.trusts(a) }

func (t TrustedProxies) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP is the address of the client that sent r, for per-address
// limits and the audit log. It is the connection's peer address, unless
// that peer is a trusted proxy: then X-Forwarded-For is read from the
// right (the entry the nearest proxy added) and the first address that is
// not itself a trusted proxy is the client. A client cannot choose its
// address by sending X-Forwarded-For itself: what it sends sits left of
// what the trusted proxies append, and only the proxies' entries are
// believed. An entry that is not an address stops the walk at the last
// proxy that was believed.
func (t TrustedProxies) ClientIP(r *http.Request) string {
	peer := peerAddr(r.RemoteAddr)
	if !peer.IsValid() {
		return r.RemoteAddr
	}
	if len(t.prefixes) == 0 || !t.trusts(peer) {
		return peer.String()
	}
	client := peer
	hops := forwardedFor(r.Header.Values("X-Forwarded-For"))
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.Trim(hops[i], "[]"))
		if err != nil {
			break
		}
		client = a.Unmap()
		if !t.trusts(client) {
			break
		}
	}
	return client.String()
}

// forwardedFor splits every X-Forwarded-For header into its entries, in
// order (several headers are one list, RFC 9110 §5.3).
func forwardedFor(values []string) []string {
	var hops []string
	for _, v := range values {
		for _, h := range strings.Split(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				hops = append(hops, h)
			}
		}
	}
	return hops
}

func peerAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}
