package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/api"
	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/channels/sms"
	"github.com/loa-hub/loa/dispatcher"
	"github.com/loa-hub/loa/internal/fakes/smsfake"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/direct"
)

// recordWriter keeps the records it was asked to write, or fails them
// all with fail.
type recordWriter struct {
	mu   sync.Mutex
	recs []producer.Record
	fail error
}

func (w *recordWriter) Write(ctx context.Context, recs ...producer.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fail != nil {
		return w.fail
	}
	w.recs = append(w.recs, recs...)
	return nil
}

func (w *recordWriter) receipts(t *testing.T) []producer.Receipt {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []producer.Receipt
	for _, r := range w.recs {
		if r.Topic != "cb.loa.receipts" {
			t.Errorf("record on topic %q, want cb.loa.receipts", r.Topic)
		}
		var rc producer.Receipt
		if err := json.Unmarshal(r.Value, &rc); err != nil {
			t.Fatal(err)
		}
		if r.Key != rc.NotificationID {
			t.Errorf("receipt keyed %q, want its notification %q", r.Key, rc.NotificationID)
		}
		out = append(out, rc)
	}
	return out
}

func (w *recordWriter) reset() {
	w.mu.Lock()
	w.recs = nil
	w.mu.Unlock()
}

const (
	esmsToken  = "esms-callback-token-0123456789"
	speedToken = "speedsms-callback-token-012345"
	hookToken  = "webhook-callback-token-0123456"
)

type callbackFixture struct {
	*fixture
	receipts *recordWriter
	reports  *dispatcher.Reports
	logs     *lockedLog
}

type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newCallbackFixture(t *testing.T) *callbackFixture {
	t.Helper()
	store := testenv.OpenStore(t, testenv.SQLiteURL(t))
	logs := &lockedLog{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w := &recordWriter{}
	pub := &recorder{}
	reports := dispatcher.NewReports(store, w, topics.Names{Prefix: "cb."}, log)
	h := api.NewHandler(api.Deps{
		Store: store, Direct: direct.New(direct.DefaultConfig(), store, pub, log), Log: log, DevAPIKey: "dev-key", Now: func() time.Time { return now },
		SMSCallbacks: map[string]api.CallbackConfig{
			"esms":     {Type: api.CallbackESMS, Token: esmsToken},
			"speedsms": {Type: api.CallbackSpeedSMS, Token: speedToken},
			"webhook":  {Type: api.CallbackWebhook, Token: hookToken},
			"quiet":    {Type: api.CallbackESMS},
		},
		Reports: reports,
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &callbackFixture{fixture: &fixture{srv: srv, pub: pub, store: store}, receipts: w, reports: reports, logs: logs}
}

func (f *callbackFixture) sent(t *testing.T, notificationID, recipient, provider, providerID string) {
	t.Helper()
	err := f.store.RecordDelivery(context.Background(), producer.Delivery{NotificationID: notificationID, Channel: "sms",
		Recipient: recipient, Status: "sent", Provider: provider, ProviderID: providerID, Targets: 1, Attempts: 1, UpdatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSMSCallbacks: each provider style's report becomes a receipt of the
// delivery it names; bad tokens, bad JSON and unknown ids are answered
// without publishing anything.
func TestSMSCallbacks(t *testing.T) {
	f := newCallbackFixture(t)
	f.sent(t, "n-esms", "84912345678", "esms", "esms-00000001")
	f.sent(t, "n-speed", "84987654321", "speedsms", "4711")
	f.sent(t, "n-speed-2", "84987654322", "speedsms", "4712")
	f.sent(t, "n-hook", "84911111111", "webhook", "wh-00000001")

	cases := []struct {
		name, path, body string
		headers          []string
		status           int
		answer           map[string]any // expected fields of the answer
		receipt          string         // notification id of the receipt published, "" for none
		receiptStatus    loa.Status
		problem          string // problem type
	}{
		{name: "esms delivered", path: "/v1/callbacks/sms/esms?token=" + esmsToken,
			body:   `{"SMSID":"esms-00000001","RequestId":"abc","Phone":"84912345678","SendStatus":5,"SendDate":"2026-11-22 09:00:01"}`,
			status: 202, answer: map[string]any{"matched": true, "status": "delivered"}, receipt: "n-esms", receiptStatus: "delivered"},
		{name: "speedsms delivered, token in a header", path: "/v1/callbacks/sms/speedsms",
			headers: []string{"X-Loa-Callback-Token", speedToken},
			body:    `{"type":"report","tranId":4711,"phone":"84987654321","status":0}`,
			status:  202, answer: map[string]any{"matched": true, "status": "delivered"}, receipt: "n-speed", receiptStatus: "delivered"},
		{name: "speedsms undelivered", path: "/v1/callbacks/sms/speedsms?token=" + speedToken,
			body:   `{"type":"report","tranId":"4712","phone":"84987654322","status":64}`,
			status: 202, answer: map[string]any{"matched": true, "status": "undelivered"}, receipt: "n-speed-2", receiptStatus: "undelivered"},
		{name: "webhook delivered", path: "/v1/callbacks/sms/webhook?token=" + hookToken,
			body:   `{"id":"5f2b…","gateway_id":"wh-00000001","status":"delivered"}`,
			status: 202, answer: map[string]any{"matched": true, "status": "delivered"}, receipt: "n-hook", receiptStatus: "delivered"},
		{name: "esms still on its way", path: "/v1/callbacks/sms/esms?token=" + esmsToken,
			body:   `{"SMSID":"esms-00000001","SendStatus":"2"}`,
			status: 202, answer: map[string]any{"matched": true, "status": "pending"}},
		{name: "speedsms incoming message is not a report", path: "/v1/callbacks/sms/speedsms?token=" + speedToken,
			body:   `{"type":"sms","phone":"84987654321","content":"hi"}`,
			status: 202, answer: map[string]any{"matched": false, "status": "ignored"}},
		{name: "unknown provider id", path: "/v1/callbacks/sms/esms?token=" + esmsToken,
			body:   `{"SMSID":"esms-99999999","Phone":"84912345678","SendStatus":5}`,
			status: 202, answer: map[string]any{"matched": false, "status": "held"}},
		{name: "wrong token", path: "/v1/callbacks/sms/esms?token=" + speedToken,
			body: `{"SMSID":"esms-00000001","SendStatus":5}`, status: 401, problem: "urn:loa:problem:unauthorized"},
		{name: "no token", path: "/v1/callbacks/sms/esms",
			body: `{"SMSID":"esms-00000001","SendStatus":5}`, status: 401, problem: "urn:loa:problem:unauthorized"},
		{name: "unconfigured provider", path: "/v1/callbacks/sms/viettel?token=x",
			body: `{}`, status: 404, problem: "urn:loa:problem:not-found"},
		{name: "provider without a token takes no reports", path: "/v1/callbacks/sms/quiet?token=",
			body: `{"SMSID":"esms-00000001","SendStatus":5}`, status: 404, problem: "urn:loa:problem:not-found"},
		{name: "bad JSON", path: "/v1/callbacks/sms/esms?token=" + esmsToken,
			body: `{"SMSID":"esms-00000001",`, status: 400, problem: "urn:loa:problem:malformed-json"},
		{name: "empty body", path: "/v1/callbacks/sms/esms?token=" + esmsToken,
			body: ``, status: 400, problem: "urn:loa:problem:malformed-json"},
		{name: "missing id", path: "/v1/callbacks/sms/esms?token=" + esmsToken,
			body: `{"SendStatus":5}`, status: 400, problem: "urn:loa:problem:invalid-field"},
		{name: "status of the wrong kind", path: "/v1/callbacks/sms/speedsms?token=" + speedToken,
			body: `{"type":"report","tranId":4711,"status":{"code":0}}`, status: 400, problem: "urn:loa:problem:invalid-field"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.receipts.reset()
			resp, out := f.do(t, "POST", c.path, "", c.body, c.headers...)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %v", resp.StatusCode, c.status, out)
			}
			for k, v := range c.answer {
				if out[k] != v {
					t.Errorf("answer %s = %v, want %v (%v)", k, out[k], v, out)
				}
			}
			if c.problem != "" {
				if out["type"] != c.problem || resp.Header.Get("Content-Type") != "application/problem+json" {
					t.Errorf("problem %v (%s), want type %s", out, resp.Header.Get("Content-Type"), c.problem)
				}
			}
			got := f.receipts.receipts(t)
			if c.receipt == "" {
				if len(got) != 0 {
					t.Fatalf("published %v, want nothing", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("published %d receipts, want 1: %v", len(got), got)
			}
			r := got[0]
			if r.NotificationID != c.receipt || r.Status != c.receiptStatus || r.Channel != "sms" || r.Provider == "" || r.ProviderID == "" || r.Targets != 1 {
				t.Errorf("receipt %+v, want %s for %s", r, c.receiptStatus, c.receipt)
			}
		})
	}
	// Held is what a report that comes before the ledger has its send
	// is, nearly every time: a line at debug level, not a warning per SMS.
	if !strings.Contains(f.logs.String(), `level=DEBUG msg="delivery report matches no delivery`) {
		t.Error("an unmatched report was not logged at debug level")
	}
	if strings.Contains(f.logs.String(), `level=WARN msg="delivery report matches no delivery`) {
		t.Error("a held report was logged as a warning")
	}
	if strings.Contains(f.logs.String(), "84912345678") {
		t.Error("a phone number was logged unmasked")
	}
}

// TestSMSCallbackHeldUntilTheLedgerHasTheDelivery: a report that arrives
// before the send receipt has been folded into the ledger is held, and
// applied once the delivery is recorded.
func TestSMSCallbackHeldUntilTheLedgerHasTheDelivery(t *testing.T) {
	f := newCallbackFixture(t)
	resp, out := f.do(t, "POST", "/v1/callbacks/sms/esms?token="+esmsToken, "", `{"SMSID":"esms-late","SendStatus":5}`)
	if resp.StatusCode != 202 || out["matched"] != false || out["status"] != "held" {
		t.Fatalf("%d %v", resp.StatusCode, out)
	}
	if got := f.receipts.receipts(t); len(got) != 0 {
		t.Fatalf("receipts %v before the delivery was recorded", got)
	}
	// The receipt consumer catches up, and matches what was held.
	ctx := context.Background()
	if err := f.store.RecordDelivery(ctx, producer.Delivery{NotificationID: "n-late", Channel: "sms",
		Recipient: "84912345678", Status: "sent", Provider: "esms", ProviderID: "esms-late", Targets: 1, Attempts: 1, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if n, err := f.reports.Match(ctx); err != nil || n != 1 {
		t.Fatalf("matched %d: %v", n, err)
	}
	if got := f.receipts.receipts(t); len(got) != 1 || got[0].NotificationID != "n-late" || got[0].Status != loa.StatusDelivered {
		t.Fatalf("receipts %v", got)
	}
}

// TestSMSCallbackThroughTheLedger: with the reports applied by the ledger
// (dispatcher.Reports.ViaLedger, as `loa api` runs them) a callback is
// answered 202 "held" once its report is on loa.receipts, without a
// look-up or a hold in the store, and 503 when Kafka did not take it, so
// that the gateway sends it again.
func TestSMSCallbackThroughTheLedger(t *testing.T) {
	f := newCallbackFixture(t)
	f.reports.ViaLedger = true
	f.sent(t, "n-esms", "84912345678", "esms", "esms-00000001")
	resp, out := f.do(t, "POST", "/v1/callbacks/sms/esms?token="+esmsToken, "", `{"SMSID":"esms-00000001","SendStatus":5}`)
	if resp.StatusCode != 202 || out["matched"] != false || out["status"] != "held" {
		t.Fatalf("%d %v", resp.StatusCode, out)
	}
	f.receipts.mu.Lock()
	recs := f.receipts.recs
	f.receipts.mu.Unlock()
	if len(recs) != 1 || recs[0].Topic != "cb.loa.receipts" {
		t.Fatalf("records %+v, want the report on cb.loa.receipts", recs)
	}
	rep, _, ok, err := producer.DecodeReport(recs[0].Value)
	if !ok || err != nil || rep.Provider != "esms" || rep.ProviderID != "esms-00000001" || rep.Status != loa.StatusDelivered {
		t.Fatalf("report %+v (%v, %v)", rep, ok, err)
	}
	if n, err := f.store.HeldReports(context.Background()); err != nil || n != 0 {
		t.Errorf("%d reports held in the store (%v)", n, err)
	}

	f.receipts.mu.Lock()
	f.receipts.fail = errors.New("kafka is down")
	f.receipts.mu.Unlock()
	resp, out = f.do(t, "POST", "/v1/callbacks/sms/esms?token="+esmsToken, "", `{"SMSID":"esms-00000001","SendStatus":5}`)
	if resp.StatusCode != 503 || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("%d %s %v, want a 503 problem", resp.StatusCode, resp.Header.Get("Content-Type"), out)
	}
}

// TestSMSCallbacksFromTheFakes: the provider fakes' own reports, for
// messages sent through Loa's SMS providers, become delivered receipts,
// and the notification's status counts a delivered SMS as sent.
func TestSMSCallbacksFromTheFakes(t *testing.T) {
	f := newCallbackFixture(t)
	esmsFake, err := smsfake.NewESMS(smsfake.ESMSOptions{Options: smsfake.Options{CallbackURL: f.srv.URL + "/v1/callbacks/sms/esms?token=" + esmsToken}})
	if err != nil {
		t.Fatal(err)
	}
	defer esmsFake.Close()
	speedFake, err := smsfake.NewSpeedSMS(smsfake.SpeedSMSOptions{Options: smsfake.Options{CallbackURL: f.srv.URL + "/v1/callbacks/sms/speedsms?token=" + speedToken}})
	if err != nil {
		t.Fatal(err)
	}
	defer speedFake.Close()
	hookFake, err := smsfake.NewWebhook(smsfake.WebhookOptions{Options: smsfake.Options{CallbackURL: f.srv.URL + "/v1/callbacks/sms/webhook?token=" + hookToken}})
	if err != nil {
		t.Fatal(err)
	}
	defer hookFake.Close()

	esmsP, err := sms.NewESMS(sms.ESMSConfig{BaseURL: esmsFake.URL(), APIKey: "k", SecretKey: "s", Brandname: "LOA"})
	if err != nil {
		t.Fatal(err)
	}
	speedP, err := sms.NewSpeedSMS(sms.SpeedSMSConfig{BaseURL: speedFake.URL(), AccessToken: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	hookP, err := sms.NewWebhook(sms.WebhookConfig{URL: hookFake.URL() + "/send"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, p := range []sms.Provider{esmsP, speedP, hookP} {
		t.Run(p.Name(), func(t *testing.T) {
			f.receipts.reset()
			code, out := f.post(t, `{"to":{"phone":"0912345678"},"body":"Mã xác thực 123456","channels":["sms"]}`)
			if code != 202 {
				t.Fatalf("POST: %d %v", code, out)
			}
			id := out["id"].(string)
			res, err := p.Send(ctx, channels.Message{NotificationID: id, Channel: channels.SMS, To: "84912345678", Body: "Mã xác thực 123456"})
			if err != nil {
				t.Fatal(err)
			}
			// What the dispatcher's receipt consumer does with the send:
			// record it, and apply a report that came before it.
			f.sent(t, id, "84912345678", res.Provider, res.ProviderID)
			if _, err := f.reports.Match(ctx); err != nil {
				t.Fatal(err)
			}
			var got []producer.Receipt
			waitUntil(t, "the delivery report", func() bool { got = f.receipts.receipts(t); return len(got) > 0 })
			r := got[0]
			if r.NotificationID != id || r.Status != loa.StatusDelivered || r.ProviderID != res.ProviderID || r.Lane != "direct" {
				t.Fatalf("receipt %+v", r)
			}
			// ... and with the report's receipt.
			if err := f.store.RecordDelivery(ctx, producer.Delivery{NotificationID: r.NotificationID, Channel: r.Channel,
				Recipient: r.Recipient, Status: r.Status, Provider: r.Provider, ProviderID: r.ProviderID, Reason: r.Reason,
				Targets: r.Targets, Attempts: r.Attempts, UpdatedAt: r.At}); err != nil {
				t.Fatal(err)
			}
			_, st := f.do(t, "GET", "/v1/notifications/"+id, "dev-key", "")
			oc := st["outcomes"].([]any)[0].(map[string]any)
			if st["status"] != "sent" || oc["status"] != "sent" || oc["counts"].(map[string]any)["delivered"] != float64(1) {
				t.Errorf("status after the report: %v", st)
			}
		})
	}
}

func (f *callbackFixture) post(t *testing.T, body string) (int, map[string]any) {
	t.Helper()
	resp, out := f.do(t, "POST", "/v1/notifications", "dev-key", body)
	return resp.StatusCode, out
}

// waitUntil polls cond for up to 10 seconds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling what another goroutine records, not synchronising
	}
}

func TestCallbackConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg api.CallbackConfig
		ok  bool
	}{
		{api.CallbackConfig{Type: "esms", Token: esmsToken}, true},
		{api.CallbackConfig{Type: "webhook"}, true},
		{api.CallbackConfig{Type: "smpp", Token: esmsToken}, false},
		{api.CallbackConfig{Type: "speedsms", Token: "short"}, false},
	} {
		if err := c.cfg.Validate(); (err == nil) != c.ok {
			t.Errorf("%+v: %v", c.cfg, err)
		}
	}
}
