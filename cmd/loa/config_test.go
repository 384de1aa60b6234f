package main

import (
	"strings"
	"testing"
)

func TestTrustedProxiesConfig(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	c, err := loadConfig(env(map[string]string{"LOA_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7"}))
	if err != nil || c.TrustedProxies.String() != "10.0.0.0/8,192.0.2.7/32" {
		t.Fatalf("trusted proxies %q, %v", c.TrustedProxies, err)
	}
	if _, err := loadConfig(env(map[string]string{"LOA_TRUSTED_PROXIES": "10.0.0.0/33"})); err == nil || !strings.Contains(err.Error(), "LOA_TRUSTED_PROXIES") {
		t.Errorf("a bad prefix: %v", err)
	}
	// The old variable believed a header from anyone; a deployment that
	// still sets it is told, rather than silently losing its proxy.
	if _, err := loadConfig(env(map[string]string{"LOA_CLIENT_IP_HEADER": "X-Real-IP"})); err == nil || !strings.Contains(err.Error(), "LOA_TRUSTED_PROXIES") {
		t.Errorf("LOA_CLIENT_IP_HEADER: %v", err)
	}
}
