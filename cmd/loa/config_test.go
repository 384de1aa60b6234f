package main

import (
	"fmt"
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

// TestDispatcherLanesConfig: LOA_DISPATCHER_LANES names the lanes a
// dispatcher consumes (all when unset), LOA_DISPATCHER_LEDGER whether it
// runs the ledger, LOA_DISPATCHER_URGENT_FETCH how the urgent lanes are
// read; an unknown, empty or repeated lane, a ledger setting that is not
// on or off and a fetch that is not one or reader are configuration
// errors naming the variable (and the lanes there are).
func TestDispatcherLanesConfig(t *testing.T) {
	load := func(kv map[string]string) (config, error) { return loadConfig(func(k string) string { return kv[k] }) }
	c, err := load(nil)
	if err != nil || c.DispatcherLanes != nil || !c.DispatcherLedger {
		t.Fatalf("defaults: lanes %v, ledger %v, %v", c.DispatcherLanes, c.DispatcherLedger, err)
	}
	c, err = load(map[string]string{"LOA_DISPATCHER_LANES": " otp, Alert,direct ", "LOA_DISPATCHER_LEDGER": "off"})
	if err != nil || fmt.Sprint(c.DispatcherLanes) != "[otp alert direct]" || c.DispatcherLedger {
		t.Fatalf("urgent lanes without the ledger: lanes %v, ledger %v, %v", c.DispatcherLanes, c.DispatcherLedger, err)
	}
	for v, want := range map[string]string{
		"sms":        `"sms" is not a lane; the lanes are otp, alert, direct, bulk`,
		"otp,,bulk":  "empty lane",
		"bulk,bulk":  "lane bulk is named twice",
		"otp;alert":  `"otp;alert" is not a lane`,
		"urgent":     `"urgent" is not a lane`,
		"bulk, otps": `"otps" is not a lane`,
	} {
		_, err := load(map[string]string{"LOA_DISPATCHER_LANES": v})
		if err == nil || !strings.Contains(err.Error(), "LOA_DISPATCHER_LANES") || !strings.Contains(err.Error(), want) {
			t.Errorf("LOA_DISPATCHER_LANES=%q: %v, want an error saying %s", v, err, want)
		}
	}
	if _, err := load(map[string]string{"LOA_DISPATCHER_LEDGER": "sometimes"}); err == nil || !strings.Contains(err.Error(), "LOA_DISPATCHER_LEDGER") {
		t.Errorf("LOA_DISPATCHER_LEDGER=sometimes: %v", err)
	}
	for v, want := range map[string]bool{"": false, "one": false, " Reader ": true, "reader": true} {
		c, err := load(map[string]string{"LOA_DISPATCHER_URGENT_FETCH": v})
		if err != nil || c.UrgentReader != want {
			t.Errorf("LOA_DISPATCHER_URGENT_FETCH=%q: reader %v, %v; want %v", v, c.UrgentReader, err, want)
		}
	}
	if _, err := load(map[string]string{"LOA_DISPATCHER_URGENT_FETCH": "both"}); err == nil || !strings.Contains(err.Error(), "LOA_DISPATCHER_URGENT_FETCH") {
		t.Errorf("LOA_DISPATCHER_URGENT_FETCH=both: %v", err)
	}
	for v, want := range map[string]bool{"": false, "redis": false, " Postgres ": true} {
		c, err := load(map[string]string{"LOA_CODE_ATTEMPT_FIRST": v})
		if err != nil || c.CodeAttemptRowFirst != want {
			t.Errorf("LOA_CODE_ATTEMPT_FIRST=%q: row first %v, %v; want %v", v, c.CodeAttemptRowFirst, err, want)
		}
	}
	if _, err := load(map[string]string{"LOA_CODE_ATTEMPT_FIRST": "kafka"}); err == nil || !strings.Contains(err.Error(), "LOA_CODE_ATTEMPT_FIRST") {
		t.Errorf("LOA_CODE_ATTEMPT_FIRST=kafka: %v", err)
	}
}

// TestPublicURLConfig: LOA_PUBLIC_URL must be an http(s) address with a
// host and nothing a link could carry further (credentials, query,
// fragment, quotes); a trailing slash is dropped.
func TestPublicURLConfig(t *testing.T) {
	for in, want := range map[string]string{
		"":                               "",
		"https://loa.quangnam.gov.vn/":   "https://loa.quangnam.gov.vn",
		"http://10.0.0.5:8080/loa":       "http://10.0.0.5:8080/loa",
		"loa.quangnam.gov.vn":            "!",
		"javascript:alert(1)":            "!",
		"https://u:p@loa.example":        "!",
		"https://loa.example/?x=1":       "!",
		"https://loa.example/#top":       "!",
		`https://loa.example/"><script>`: "!",
	} {
		c, err := loadConfig(func(k string) string {
			if k == "LOA_PUBLIC_URL" {
				return in
			}
			return ""
		})
		if want == "!" {
			if err == nil || !strings.Contains(err.Error(), "LOA_PUBLIC_URL") {
				t.Errorf("%q: %v; want an error naming LOA_PUBLIC_URL", in, err)
			}
			continue
		}
		if err != nil || c.PublicURL != want {
			t.Errorf("%q: %q %v; want %q", in, c.PublicURL, err, want)
		}
	}
}

// TestDirectSMSConfig: LOA_DIRECT_SMS_MAX_SEGMENTS bounds a direct SMS
// (default 5, 1 to 255), and folding direct notifications makes their
// segments count folded.
func TestDirectSMSConfig(t *testing.T) {
	for _, c := range []struct {
		max, fold string
		want      int
		folded    bool
		bad       bool
	}{
		{"", "", 5, false, false},
		{"3", "notification.direct, otp", 3, true, false},
		{"255", "otp", 255, false, false},
		{"0", "", 0, false, true},
		{"256", "", 0, false, true},
		{"x", "", 0, false, true},
	} {
		cfg, err := loadConfig(func(k string) string {
			return map[string]string{"LOA_DIRECT_SMS_MAX_SEGMENTS": c.max, "LOA_SMS_FOLD_KINDS": c.fold}[k]
		})
		if c.bad {
			if err == nil || !strings.Contains(err.Error(), "LOA_DIRECT_SMS_MAX_SEGMENTS") {
				t.Errorf("%q: %v; want an error naming LOA_DIRECT_SMS_MAX_SEGMENTS", c.max, err)
			}
			continue
		}
		if err != nil || cfg.Direct.MaxSMSSegments != c.want || cfg.Direct.FoldSMS != c.folded {
			t.Errorf("%q %q: %+v %v", c.max, c.fold, cfg.Direct, err)
		}
	}
}
