package api_test

import (
	"net/http/httptest"
	"testing"

	"github.com/loa-hub/loa/api"
)

func TestClientIP(t *testing.T) {
	proxies, err := api.ParseTrustedProxies("10.0.0.0/8, 192.0.2.7, fd00::/8")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		trusted api.TrustedProxies
		remote  string
		xff     []string
		want    string
	}{
		{"no proxies: the peer", api.TrustedProxies{}, "198.51.100.4:5555", []string{"203.0.113.9"}, "198.51.100.4"},
		{"untrusted peer: its header is ignored", proxies, "198.51.100.4:5555", []string{"203.0.113.9"}, "198.51.100.4"},
		{"trusted peer: the entry it added", proxies, "10.1.2.3:5555", []string{"203.0.113.9"}, "203.0.113.9"},
		{"a client's forged entry stays left of the proxy's", proxies, "10.1.2.3:5555", []string{"1.1.1.1, 203.0.113.9"}, "203.0.113.9"},
		{"a chain of trusted proxies", proxies, "10.1.2.3:5555", []string{"203.0.113.9, 192.0.2.7", "10.9.9.9"}, "203.0.113.9"},
		{"every hop trusted: the leftmost", proxies, "10.1.2.3:5555", []string{"10.0.0.1, 10.0.0.2"}, "10.0.0.1"},
		{"garbage stops at the last believed proxy", proxies, "10.1.2.3:5555", []string{"203.0.113.9, not-an-ip, 10.0.0.5"}, "10.0.0.5"},
		{"trusted peer without the header", proxies, "10.1.2.3:5555", nil, "10.1.2.3"},
		{"IPv6 proxy and client", proxies, "[fd00::1]:443", []string{"2001:db8::7"}, "2001:db8::7"},
		{"IPv4-mapped peer", proxies, "[::ffff:10.1.2.3]:80", []string{"203.0.113.9"}, "203.0.113.9"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = c.remote
			for _, v := range c.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := c.trusted.ClientIP(r); got != c.want {
				t.Errorf("ClientIP = %q, want %q", got, c.want)
			}
		})
	}
	if _, err := api.ParseTrustedProxies("10.0.0.0/8, proxy.local"); err == nil {
		t.Error("a host name was accepted as a trusted proxy")
	}
}
