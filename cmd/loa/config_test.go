package main

import (
	"strings"
	"testing"
	"time"
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

// TestSendTimeoutReachesTheFCMClient: LOA_SEND_TIMEOUT bounds an FCM call
// as it bounds every other provider's, rather than the client's own
// 5-second default cutting a call that the operator allowed longer.
func TestSendTimeoutReachesTheFCMClient(t *testing.T) {
	vars := map[string]string{"LOA_SEND_TIMEOUT": "12s", "LOA_FCM_PROJECT_ID": "p", "LOA_FCM_CREDENTIALS_FILE": "/dev/null"}
	c, err := loadConfig(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	if got := fcmConfig(c.Providers.FCM, c.Providers, nil, nil).CallTimeout; got != 12*time.Second {
		t.Fatalf("the FCM client's CallTimeout is %v, want LOA_SEND_TIMEOUT's 12s", got)
	}
}
