package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-hub/loa/channels/sms/smpp"
	"github.com/loa-hub/loa/channels/sms/smpp/pdu"
	"github.com/loa-hub/loa/internal/fakes/fakescmd"
	"github.com/loa-hub/loa/internal/fakes/smppfake"
	"github.com/loa-hub/loa/internal/fakes/smsfake"
	"github.com/loa-hub/loa/internal/testenv"
)

// smppEnv points provider "smsc" at a fake SMSC, the password in a file.
func smppEnv(t *testing.T, env map[string]string, fake *smppfake.Server, password string) map[string]string {
	t.Helper()
	pw := filepath.Join(t.TempDir(), "smsc-password")
	if err := os.WriteFile(pw, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env["LOA_SMS_PROVIDERS"] = "smsc"
	env["LOA_SMS_SMSC_TYPE"] = "smpp"
	env["LOA_SMS_SMSC_HOST"] = fakescmd.HostOf(fake.Addr())
	env["LOA_SMS_SMSC_PORT"] = fakescmd.PortOf(fake.Addr())
	env["LOA_SMS_SMSC_SYSTEM_ID"] = "loa"
	env["LOA_SMS_SMSC_PASSWORD_FILE"] = pw
	env["LOA_SMS_SMSC_SOURCE_ADDR"] = "LOA"
	return env
}

func outcomeOf(st map[string]any) (status string, counts map[string]any) {
	oc, _ := st["outcomes"].([]any)
	if len(oc) != 1 {
		return "", nil
	}
	o := oc[0].(map[string]any)
	counts, _ = o["counts"].(map[string]any)
	status, _ = o["status"].(string)
	return status, counts
}

// TestSMPPEndToEnd: SMS through `loa dev` to a fake SMSC over SMPP; the
// receipts — sent before the submit_sm_resp here — fold into the ledger
// as delivered or undelivered; a 3-part Vietnamese message arrives whole.
func TestSMPPEndToEnd(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			fake, err := smppfake.New(smppfake.Options{SystemID: "loa", Password: "s3cret"})
			if err != nil {
				t.Fatal(err)
			}
			defer fake.Close()
			fake.ReceiptsFirst(true)
			fake.SetReceiptState("84911111111", "UNDELIV")
			fake.SetReceiptState("84922222222", "EXPIRED")
			in := startDev(t, smppEnv(t, backendEnv(t, b.Name), fake, "s3cret"))

			long := strings.Repeat("Lũ khẩn cấp trên sông Thu Bồn, mực nước tại Hội An 3,2 m. ", 3)
			cases := []struct {
				phone, body, status, count string
			}{
				{"0912345678", "Mã xác thực 123456", "sent", "delivered"},
				{"0933333333", long, "sent", "delivered"},
				{"0911111111", "Thông báo", "failed", "undelivered"},
				{"0922222222", "Thông báo", "failed", "undelivered"},
			}
			ids := make([]string, len(cases))
			for i, c := range cases {
				code, out := in.call(t, "POST", "/v1/notifications", fmt.Sprintf(`{"to":{"phone":%q},"body":%q,"channels":["sms"]}`, c.phone, c.body))
				if code != 202 {
					t.Fatalf("POST: %d %v", code, out)
				}
				ids[i] = out["id"].(string)
			}
			for i, c := range cases {
				var st map[string]any
				waitFor(t, c.phone+" "+c.count, func() bool {
					_, st = in.call(t, "GET", "/v1/notifications/"+ids[i], "")
					s, counts := outcomeOf(st)
					return s == c.status && counts[c.count] == float64(1)
				})
				if c.phone == "0922222222" {
					oc := st["outcomes"].([]any)[0].(map[string]any)
					if !strings.Contains(oc["reason"].(string), "EXPIRED") || oc["provider"] != "smsc" {
						t.Errorf("expired receipt: outcome %v", oc)
					}
				}
			}
			var whole bool
			for _, m := range fake.Messages() {
				if m.To == "84933333333" {
					whole = m.Text == long && m.Parts == 3 && m.DataCoding == pdu.CodingUCS2
				}
			}
			if !whole || fake.Count() != len(cases) {
				t.Errorf("fake got %d messages; the long one whole: %v", fake.Count(), whole)
			}
		})
	}
}

// TestSMPPFailoverWhenBindFails: an SMSC that refuses the bind sends the
// SMS on to the next provider, an HTTP gateway.
func TestSMPPFailoverWhenBindFails(t *testing.T) {
	fake, err := smppfake.New(smppfake.Options{SystemID: "loa", Password: "right"})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	gw, err := smsfake.NewESMS(smsfake.ESMSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	env := smppEnv(t, map[string]string{}, fake, "wrong")
	env["LOA_SMS_PROVIDERS"] = "smsc,esms"
	env["LOA_SMS_ESMS_TYPE"], env["LOA_SMS_ESMS_URL"] = "esms", gw.URL()
	env["LOA_SMS_ESMS_API_KEY"], env["LOA_SMS_ESMS_SECRET_KEY"] = "k", "s"
	env["LOA_RETRY_TIERS"] = "100ms,200ms,400ms"
	in := startDev(t, env)
	code, out := in.call(t, "POST", "/v1/notifications", `{"to":{"phone":"0912345678"},"body":"Mã xác thực 123456","channels":["sms"]}`)
	if code != 202 {
		t.Fatalf("POST: %d %v", code, out)
	}
	var st map[string]any
	waitFor(t, "sent", func() bool {
		_, st = in.call(t, "GET", "/v1/notifications/"+out["id"].(string), "")
		return st["status"] == "sent"
	})
	if oc := st["outcomes"].([]any)[0].(map[string]any); oc["provider"] != "esms" {
		t.Errorf("sent by %v, want esms", oc["provider"])
	}
	if gw.CountFor("84912345678") != 1 || fake.Count() != 0 {
		t.Errorf("eSMS got %d, the SMSC %d", gw.CountFor("84912345678"), fake.Count())
	}
}

// TestSMPPDroppedConnectionMidWindow: the SMSC drops every connection
// while submits are outstanding; each SMS still arrives exactly once
// (unanswered submits are retried, delivery claims keep redeliveries out)
// and every notification ends sent.
func TestSMPPDroppedConnectionMidWindow(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			fake, err := smppfake.New(smppfake.Options{SystemID: "loa", Password: "pw"})
			if err != nil {
				t.Fatal(err)
			}
			defer fake.Close()
			// The SMSC holds submits unanswered until the windows are full,
			// then drops every connection.
			fake.SetHang(true)
			env := smppEnv(t, backendEnv(t, b.Name), fake, "pw")
			env["LOA_SMS_SMSC_SESSIONS"], env["LOA_SMS_SMSC_WINDOW"] = "2", "20"
			env["LOA_SMS_SMSC_RATE"], env["LOA_SMS_SMSC_BURST"] = "100000", "1000"
			env["LOA_RETRY_TIERS"] = "100ms,200ms,400ms,800ms,2s"
			env["LOA_BREAKER_OPEN_FOR"] = "200ms"
			in := startDev(t, env)
			const n = 150
			ids := make([]string, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					code, out := in.call(t, "POST", "/v1/notifications", fmt.Sprintf(`{"to":{"phone":"0913%06d"},"body":"Ma %d","channels":["sms"]}`, i, i))
					if code != 202 {
						t.Errorf("POST %d: %d %v", i, code, out)
						return
					}
					ids[i] = out["id"].(string)
				}()
			}
			waitFor(t, "submits outstanding", func() bool { return fake.Submits() >= 20 })
			fake.SetHang(false)
			fake.DropConnections()
			wg.Wait()
			if t.Failed() {
				return
			}
			for i, id := range ids {
				waitFor(t, fmt.Sprintf("notification %d sent", i), func() bool {
					_, st := in.call(t, "GET", "/v1/notifications/"+id, "")
					return st["status"] == "sent"
				})
			}
			if fake.Submits() <= int64(n) {
				t.Errorf("the SMSC read %d submits for %d messages: the drop left none to retry", fake.Submits(), n)
			}
			if fake.Count() != n || len(fake.Duplicates()) != 0 {
				t.Errorf("the SMSC accepted %d messages (duplicates %v), want %d once each", fake.Count(), fake.Duplicates(), n)
			}
		})
	}
}

func TestSMPPConfig(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("s3cret\r\n"), 0o600)
	env := map[string]string{
		"LOA_SMS_PROVIDERS": "vms", "LOA_SMS_VMS_TYPE": "smpp", "LOA_SMS_VMS_HOST": "smsc.example.vn",
		"LOA_SMS_VMS_SYSTEM_ID": "loa_qna", "LOA_SMS_VMS_PASSWORD_FILE": pw, "LOA_SMS_VMS_SOURCE_ADDR": "8088",
		"LOA_SMS_VMS_SOURCE_TON": "3", "LOA_SMS_VMS_SOURCE_NPI": "0", "LOA_SMS_VMS_SESSIONS": "4", "LOA_SMS_VMS_WINDOW": "50",
		"LOA_SMS_VMS_BIND": "pair", "LOA_SMS_VMS_CONCAT": "sar", "LOA_SMS_VMS_TLS": "1", "LOA_SMS_VMS_RESPONSE_TIMEOUT": "5s",
	}
	cfg, err := loadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Providers.SMS[0].SMPP
	if p == nil || p.Addr != "smsc.example.vn:2775" || p.Password != "s3cret" || p.SystemID != "loa_qna" || p.Source != "8088" ||
		*p.SourceTON != 3 || *p.SourceNPI != 0 || p.Sessions != 4 || p.Window != 50 || !p.Pair || p.Concat != smpp.SAR || !p.TLS ||
		p.ResponseTimeout != 5*time.Second {
		t.Errorf("smpp provider %+v", p)
	}

	bad := map[string]string{
		"LOA_SMS_PROVIDERS": "vms", "LOA_SMS_VMS_TYPE": "smpp", "LOA_SMS_VMS_PASSWORD_FILE": "/nonexistent",
		"LOA_SMS_VMS_SOURCE_TON": "x", "LOA_SMS_VMS_WINDOW": "0", "LOA_SMS_VMS_BIND": "both", "LOA_SMS_VMS_CONCAT": "udh16",
	}
	_, err = loadConfig(func(k string) string { return bad[k] })
	for _, want := range []string{"LOA_SMS_VMS_HOST", "LOA_SMS_VMS_SYSTEM_ID", "LOA_SMS_VMS_PASSWORD_FILE", "LOA_SMS_VMS_SOURCE_ADDR",
		"LOA_SMS_VMS_SOURCE_TON", "LOA_SMS_VMS_WINDOW", "LOA_SMS_VMS_BIND", "LOA_SMS_VMS_CONCAT"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad config: %v; want %s named", err, want)
		}
	}
}
