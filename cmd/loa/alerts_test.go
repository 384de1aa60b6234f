package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/loa-hub/loa/producer/alert/cap"
)

func TestAlertConfig(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	c, err := loadConfig(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Alerts.SMSSeverities, []cap.Severity{cap.SeverityExtreme}) || !slices.Equal(c.Alerts.PreauthorisedScopes, []string{"alerts:issue"}) {
		t.Errorf("defaults %+v", c.Alerts)
	}
	c, err = loadConfig(env(map[string]string{"LOA_ALERT_SMS_SEVERITIES": "Extreme, Severe", "LOA_ALERT_PREAUTHORISED_SCOPE": "none"}))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Alerts.SMSSeverities, []cap.Severity{cap.SeverityExtreme, cap.SeveritySevere}) || c.Alerts.PreauthorisedScopes != nil {
		t.Errorf("set %+v", c.Alerts)
	}
	_, err = loadConfig(env(map[string]string{"LOA_ALERT_SMS_SEVERITIES": "Awful", "LOA_ALERT_PREAUTHORISED_SCOPE": "alerts:everything"}))
	if err == nil || !strings.Contains(err.Error(), "LOA_ALERT_PREAUTHORISED_SCOPE") || !strings.Contains(err.Error(), "Awful") {
		t.Errorf("bad values: %v", err)
	}
}

func TestCAPAudienceConfig(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	c, err := loadConfig(env(map[string]string{"LOA_CAP_TEST_ROLES": "alert_tester, ops",
		"LOA_CAP_RESTRICTION_ROLES": "Lực lượng cứu hộ=alert_responder|ops; *=alert_responder"}))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Alerts.TestRoles, []string{"alert_tester", "ops"}) ||
		!slices.Equal(c.Alerts.RestrictionRoles["Lực lượng cứu hộ"], []string{"alert_responder", "ops"}) ||
		!slices.Equal(c.Alerts.RestrictionRoles["*"], []string{"alert_responder"}) {
		t.Errorf("%v %v", c.Alerts.TestRoles, c.Alerts.RestrictionRoles)
	}
	if _, err := loadConfig(env(map[string]string{"LOA_CAP_TEST_ROLES": "everyone"})); err == nil {
		t.Error("unknown role accepted")
	}
	if _, err := loadConfig(env(map[string]string{"LOA_CAP_RESTRICTION_ROLES": "no equals sign"})); err == nil {
		t.Error("malformed mapping accepted")
	}
}

func TestCAPSendersConfig(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	c, err := loadConfig(env(map[string]string{"LOA_CAP_SENDERS": "apikey:k-pctt=pctt@quangnam.gov.vn|kttv@quangnam.gov.vn; official:phat.canh.bao=pctt@quangnam.gov.vn;apikey:relay=*"}))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Alerts.Senders["apikey:k-pctt"], []string{"pctt@quangnam.gov.vn", "kttv@quangnam.gov.vn"}) ||
		!slices.Equal(c.Alerts.Senders["official:phat.canh.bao"], []string{"pctt@quangnam.gov.vn"}) || !slices.Equal(c.Alerts.Senders["apikey:relay"], []string{"*"}) {
		t.Errorf("%v", c.Alerts.Senders)
	}
	if c, err := loadConfig(env(nil)); err != nil || c.Alerts.Senders != nil {
		t.Errorf("unset: %v %v", c.Alerts.Senders, err)
	}
	for _, bad := range []string{"k-pctt=pctt@quangnam.gov.vn", "apikey:=a@b.vn", "apikey:k=", "official:x=loa:k-other", "apikey:k"} {
		if _, err := loadConfig(env(map[string]string{"LOA_CAP_SENDERS": bad})); err == nil || !strings.Contains(err.Error(), "LOA_CAP_SENDERS") {
			t.Errorf("LOA_CAP_SENDERS=%q: %v", bad, err)
		}
	}
}

func TestCAPSignersConfig(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	pem := "../../producer/alert/cap/testdata/signers/pctt.pem"
	c, err := loadConfig(env(map[string]string{"LOA_CAP_VERIFY_SIGNATURES": "1", "LOA_CAP_SIGNERS": "pctt@quangnam.gov.vn=" + pem}))
	if err != nil || !c.Alerts.Signers.MustSign("pctt@quangnam.gov.vn") || c.Alerts.Signers.MustSign("other@x.vn") {
		t.Fatalf("%v %v", c.Alerts.Signers.Senders(), err)
	}
	if c, err := loadConfig(env(map[string]string{"LOA_CAP_SIGNERS": "pctt@quangnam.gov.vn=" + pem})); err != nil || c.Alerts.Signers != nil {
		t.Errorf("signers without LOA_CAP_VERIFY_SIGNATURES: %v %v", c.Alerts.Signers, err)
	}
	for _, bad := range []string{"", "no-equals", "a@b.vn=/no/such/file.pem"} {
		if _, err := loadConfig(env(map[string]string{"LOA_CAP_VERIFY_SIGNATURES": "1", "LOA_CAP_SIGNERS": bad})); err == nil {
			t.Errorf("LOA_CAP_SIGNERS=%q accepted", bad)
		}
	}
}
