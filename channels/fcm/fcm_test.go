package fcm_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/messaging"
	"google.golang.org/api/option"

	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/channels/channeltest"
	"github.com/loa-hub/loa/channels/fcm"
	"github.com/loa-hub/loa/internal/fakes/fcmfake"
	"github.com/loa-hub/loa/internal/testenv"
)

const project = "loa-test"

func startFake(t *testing.T, opts fcmfake.Options) *fcmfake.Server {
	t.Helper()
	f, err := fcmfake.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

// newClient returns a Client talking to f without authentication; change
// adjusts the config first.
func newClient(t *testing.T, f *fcmfake.Server, change func(*fcm.Config)) *fcm.Client {
	t.Helper()
	cfg := fcm.Config{ProjectID: project, Endpoint: f.Endpoint(), HTTPClient: f.Client(), CallTimeout: 5 * time.Second}
	if change != nil {
		change(&cfg)
	}
	c, err := fcm.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func push(to string) channels.Message {
	return channels.Message{
		NotificationID: "n-1", Channel: channels.Push, To: to,
		Title: "Cảnh báo lũ", Body: "Mực nước sông Hương đang lên, đề nghị di dời.",
		Data: map[string]string{"kind": "alert"}, Priority: channels.High,
	}
}

type sink struct{ f *fcmfake.Server }

func (s sink) Count(to string) int              { return s.f.CountFor(to) }
func (s sink) Address(i int) string             { return fmt.Sprintf("device-token-%03d", i) }
func (s sink) Stall() (<-chan struct{}, func()) { return channeltest.StallFake(s.f) }

func TestContract(t *testing.T) {
	channeltest.Run(t, func(t *testing.T) (channels.Channel, channeltest.Sink) {
		f := startFake(t, fcmfake.Options{})
		return newClient(t, f, nil), sink{f}
	})
}

func TestContractTopics(t *testing.T) {
	channeltest.Run(t, func(t *testing.T) (channels.Channel, channeltest.Sink) {
		f := startFake(t, fcmfake.Options{})
		return newClient(t, f, nil), topicSink{sink{f}}
	})
}

type topicSink struct{ sink }

func (s topicSink) Address(i int) string { return fmt.Sprintf("/topics/area-%03d", i) }

func TestServiceAccountCredentials(t *testing.T) {
	f := startFake(t, fcmfake.Options{RequireAuth: true})
	path := filepath.Join(t.TempDir(), "sa.json")
	if err := fcmfake.WriteServiceAccount(path, project, f.TokenURL()); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, f, func(c *fcm.Config) { c.CredentialsFile = path })
	for i := range 3 {
		if _, err := c.Send(context.Background(), push(fmt.Sprintf("tok-%d", i))); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	if f.Count() != 3 {
		t.Errorf("fake accepted %d, want 3", f.Count())
	}
	if n := f.TokenRequests(); n != 1 {
		t.Errorf("token endpoint asked %d times, want 1 (token cached)", n)
	}

	// Without credentials the fake refuses: an auth error is permanent.
	anon := newClient(t, f, nil)
	_, err := anon.Send(context.Background(), push("tok-x"))
	if channels.ClassOf(err) != channels.Permanent {
		t.Errorf("unauthenticated send: %v, want permanent", err)
	}
}

func TestMessageShape(t *testing.T) {
	now := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	f := startFake(t, fcmfake.Options{})
	c := newClient(t, f, func(c *fcm.Config) { c.Now = func() time.Time { return now } })

	high := push("tok-high")
	high.ExpiresAt = now.Add(90 * time.Minute)
	res, err := c.Send(context.Background(), high)
	if err != nil {
		t.Fatal(err)
	}
	if res.Provider != "fcm:"+project || !strings.HasPrefix(res.ProviderID, "projects/"+project+"/messages/") {
		t.Errorf("Result = %+v", res)
	}
	normal := push("/topics/hue-phuong-1")
	normal.Priority = channels.Normal
	normal.Title, normal.Body = "", ""
	if _, err := c.Send(context.Background(), normal); err != nil {
		t.Fatal(err)
	}

	msgs := f.Messages()
	if len(msgs) != 2 {
		t.Fatalf("fake has %d messages", len(msgs))
	}
	h, n := msgs[0], msgs[1]
	if h.Proto != "HTTP/2.0" {
		t.Errorf("request came over %s, want HTTP/2.0", h.Proto)
	}
	if h.Token != "tok-high" || h.Name != res.ProviderID {
		t.Errorf("token message: %+v", h)
	}
	if h.Notification == nil || h.Notification.Title != high.Title || h.Notification.Body != high.Body {
		t.Errorf("notification = %+v", h.Notification)
	}
	if h.Data["kind"] != "alert" {
		t.Errorf("data = %v", h.Data)
	}
	if h.Android == nil || h.Android.Priority != "high" || h.Android.TTL != "5400s" {
		t.Errorf("android = %+v, want priority high, ttl 5400s", h.Android)
	}
	var apns struct{ Headers map[string]string }
	if err := json.Unmarshal(h.APNS, &apns); err != nil || apns.Headers["apns-priority"] != "10" ||
		apns.Headers["apns-expiration"] != fmt.Sprint(high.ExpiresAt.Unix()) {
		t.Errorf("apns = %s", h.APNS)
	}
	if n.Topic != "hue-phuong-1" || n.Token != "" || n.Notification != nil {
		t.Errorf("topic message: %+v", n)
	}
	if n.Android == nil || n.Android.Priority != "normal" || n.Android.TTL != "" {
		t.Errorf("topic android = %+v, want priority normal and no ttl", n.Android)
	}
}

// TestPushesOfOneMessage: pushes that differ only in their target share
// the FCM message built for the first, yet each carries its own token or
// topic and the time-to-live left at its own send, and a push whose title,
// body, data, priority, expiry or collapse key differs from the push before
// it is never sent with that push's.
func TestPushesOfOneMessage(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	f := startFake(t, fcmfake.Options{})
	c := newClient(t, f, func(c *fcm.Config) {
		c.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	})
	send := func(m channels.Message) {
		t.Helper()
		if _, err := c.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	base := push("tok-a")
	base.ExpiresAt = now.Add(90*time.Minute + 500*time.Millisecond)
	base.Collapse = "bc-1"
	type want struct{ target, ttl, kind, body, priority, collapse, expiration string }
	expiration := fmt.Sprint(base.ExpiresAt.Unix())
	wants := []want{{"tok-a", "5400s", "alert", base.Body, "high", "bc-1", expiration}}
	send(base)
	b := base
	b.To = "tok-b"
	send(b)
	wants = append(wants, want{"tok-b", "5400s", "alert", base.Body, "high", "bc-1", expiration})
	mu.Lock()
	now = now.Add(700 * time.Millisecond) // a second less to live, in FCM's whole seconds
	mu.Unlock()
	b.To = "/topics/hue"
	send(b)
	wants = append(wants, want{"/topics/hue", "5399s", "alert", base.Body, "high", "bc-1", expiration})

	// Each variant follows a push of base, and differs from it in one thing.
	data, body, normal, sooner, other, never := base, base, base, base, base, base
	data.Data = map[string]string{"kind": "notice"}
	body.Body = "Nước đã rút."
	normal.Priority = channels.Normal
	sooner.ExpiresAt = base.ExpiresAt.Add(-600 * time.Millisecond) // the same time-to-live, FCM's whole seconds, a second sooner for APNs
	other.Collapse = "bc-2"
	never.ExpiresAt = time.Time{}
	for i, v := range []struct {
		m    channels.Message
		want want
	}{
		{data, want{ttl: "5399s", kind: "notice", body: base.Body, priority: "high", collapse: "bc-1", expiration: expiration}},
		{body, want{ttl: "5399s", kind: "alert", body: body.Body, priority: "high", collapse: "bc-1", expiration: expiration}},
		{normal, want{ttl: "5399s", kind: "alert", body: base.Body, priority: "normal", collapse: "bc-1", expiration: expiration}},
		{sooner, want{ttl: "5399s", kind: "alert", body: base.Body, priority: "high", collapse: "bc-1", expiration: fmt.Sprint(sooner.ExpiresAt.Unix())}},
		{other, want{ttl: "5399s", kind: "alert", body: base.Body, priority: "high", collapse: "bc-2", expiration: expiration}},
		{never, want{ttl: "", kind: "alert", body: base.Body, priority: "high", collapse: "bc-1", expiration: ""}},
	} {
		first := base
		first.To = fmt.Sprintf("tok-base-%d", i)
		send(first)
		wants = append(wants, want{first.To, "5399s", "alert", base.Body, "high", "bc-1", expiration})
		v.m.To, v.want.target = fmt.Sprintf("tok-variant-%d", i), fmt.Sprintf("tok-variant-%d", i)
		send(v.m)
		wants = append(wants, v.want)
	}

	msgs := f.Messages()
	if len(msgs) != len(wants) {
		t.Fatalf("fake has %d messages, want %d", len(msgs), len(wants))
	}
	for i, w := range wants {
		m := msgs[i]
		if m.Target() != w.target || m.Android == nil || m.Android.TTL != w.ttl || m.Data["kind"] != w.kind ||
			m.Notification == nil || m.Notification.Body != w.body || m.Android.Priority != w.priority ||
			m.Android.CollapseKey != w.collapse || m.APNSHeaders()["apns-expiration"] != w.expiration {
			t.Errorf("push %d: target %s, android %s, data %v, notification %+v, apns %s; want %+v",
				i, m.Target(), m.Android.Raw, m.Data, m.Notification, m.APNS, w)
		}
	}
}

// TestCollapseKey: a message with a collapse key carries it everywhere a
// platform replaces an earlier notification with it — Android's
// collapse_key and notification tag, APNs' apns-collapse-id and
// thread-id, the web push Topic — within each one's limits.
func TestCollapseKey(t *testing.T) {
	f := startFake(t, fcmfake.Options{})
	c := newClient(t, f, nil)
	long := "bc-01a2b3c4-d5e6-7f80-9a0b-1c2d3e4f5a6b/" + strings.Repeat("x", 40) // 81 bytes, "/" not URL-safe
	for _, key := range []string{"VN-49-PCTT-2026-0150", long} {
		m := push("tok-" + key[:5])
		m.Collapse = key
		if _, err := c.Send(context.Background(), m); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
	}
	dataOnly := push("tok-data")
	dataOnly.Title, dataOnly.Body, dataOnly.Collapse = "", "", "VN-49-PCTT-2026-0150"
	if _, err := c.Send(context.Background(), dataOnly); err != nil {
		t.Fatal(err)
	}
	msgs := f.Messages()
	short, hashed, data := msgs[0], msgs[1], msgs[2]
	if short.Android.CollapseKey != "VN-49-PCTT-2026-0150" || short.Android.Tag() != "VN-49-PCTT-2026-0150" ||
		short.APNSHeaders()["apns-collapse-id"] != "VN-49-PCTT-2026-0150" || short.APNSThreadID() != "VN-49-PCTT-2026-0150" ||
		short.WebpushHeaders()["Topic"] != "VN-49-PCTT-2026-0150" || short.APNSHeaders()["apns-priority"] != "10" {
		t.Errorf("short key: android %s apns %s webpush %s", short.Android.Raw, short.APNS, short.Webpush)
	}
	if hashed.Android.CollapseKey != long || hashed.Android.Tag() != long || hashed.APNSThreadID() != long ||
		len(hashed.APNSHeaders()["apns-collapse-id"]) != 64 || len(hashed.WebpushHeaders()["Topic"]) != 32 {
		t.Errorf("long key: android %s apns %s webpush %s", hashed.Android.Raw, hashed.APNS, hashed.Webpush)
	}
	// A data-only message has no notification to tag, but still collapses.
	if data.Android.CollapseKey != "VN-49-PCTT-2026-0150" || data.Android.Tag() != "" || data.APNSThreadID() != "" ||
		data.APNSHeaders()["apns-collapse-id"] != "VN-49-PCTT-2026-0150" {
		t.Errorf("data-only: android %s apns %s", data.Android.Raw, data.APNS)
	}
}

func TestErrorClasses(t *testing.T) {
	f := startFake(t, fcmfake.Options{})
	c := newClient(t, f, nil)
	for _, tc := range []struct {
		fault      string
		status     int
		retryAfter time.Duration
		to         string
		class      channels.Class
		code       string
		minRetry   time.Duration
		exactRetry bool
	}{
		{fault: fcmfake.Unregistered, class: channels.TokenDead, code: "UNREGISTERED"},
		{fault: fcmfake.Unregistered, to: "/topics/x", class: channels.Permanent, code: "UNREGISTERED"},
		{fault: fcmfake.InvalidArgument, class: channels.TokenDead, code: "INVALID_ARGUMENT"},
		{fault: fcmfake.InvalidPayload, class: channels.Permanent, code: "INVALID_ARGUMENT"},
		{fault: fcmfake.QuotaExceeded, class: channels.Transient, code: "QUOTA_EXCEEDED", minRetry: time.Minute, exactRetry: true},
		{fault: fcmfake.QuotaExceeded, retryAfter: 90 * time.Second, class: channels.Transient, code: "QUOTA_EXCEEDED", minRetry: 90 * time.Second, exactRetry: true},
		{fault: fcmfake.Internal, class: channels.Transient, code: "INTERNAL"},
		{fault: fcmfake.Internal, retryAfter: 3 * time.Second, class: channels.Transient, code: "INTERNAL", minRetry: 3 * time.Second, exactRetry: true},
		{fault: fcmfake.Unavailable, retryAfter: 7 * time.Second, class: channels.Transient, code: "UNAVAILABLE", minRetry: 7 * time.Second, exactRetry: true},
		{fault: fcmfake.Unavailable, class: channels.Transient, code: "UNAVAILABLE"},
		{fault: fcmfake.SenderIDMismatch, class: channels.Permanent, code: "SENDER_ID_MISMATCH"},
		{fault: fcmfake.ThirdPartyAuth, class: channels.Permanent, code: "THIRD_PARTY_AUTH_ERROR"},
		{fault: fcmfake.Unauthenticated, class: channels.Permanent, code: "UNAUTHENTICATED"},
		{status: 502, class: channels.Transient, code: "502"},
		{status: 503, retryAfter: 2 * time.Second, class: channels.Transient, code: "503", minRetry: 2 * time.Second, exactRetry: true},
		{status: 404, class: channels.Permanent, code: "404"},
	} {
		name := fmt.Sprintf("%s%d-%s%s", tc.fault, tc.status, tc.retryAfter, tc.to)
		t.Run(name, func(t *testing.T) {
			f.Reset()
			if tc.fault != "" {
				f.SetError(tc.fault, tc.retryAfter)
			} else {
				f.SetStatus(tc.status, tc.retryAfter)
			}
			defer f.ResetFaults()
			to := tc.to
			if to == "" {
				to = "tok-1"
			}
			start := time.Now()
			_, err := c.Send(context.Background(), push(to))
			took := time.Since(start)
			var ce *channels.Error
			if !asError(err, &ce) {
				t.Fatalf("Send: %v, want *channels.Error", err)
			}
			if ce.Class != tc.class || ce.Code != tc.code {
				t.Errorf("got class %q code %q (%v), want %q %q", ce.Class, ce.Code, err, tc.class, tc.code)
			}
			if tc.exactRetry && ce.RetryAfter != tc.minRetry {
				t.Errorf("RetryAfter = %s, want %s", ce.RetryAfter, tc.minRetry)
			}
			if ce.Provider != "fcm:"+project {
				t.Errorf("Provider = %q", ce.Provider)
			}
			if channels.MaybeDelivered(err) {
				t.Errorf("an answer refusing the push reads as maybe delivered: %v", err)
			}
			// The SDK would retry a 503 itself, waiting Retry-After each
			// time; the client must give up after one answer.
			if n := f.Requests(); n != 1 {
				t.Errorf("fake received %d requests, want 1 (no SDK retry)", n)
			}
			if took > 2*time.Second {
				t.Errorf("Send took %s; the SDK's own retry was not cut short", took)
			}
			if f.Count() != 0 {
				t.Errorf("fake recorded %d successes", f.Count())
			}
		})
	}
}

func TestPerTokenFaults(t *testing.T) {
	f := startFake(t, fcmfake.Options{})
	c := newClient(t, f, nil)
	f.FailRecipient("dead-1", fcmfake.Unregistered)
	f.FailRecipient("dead-2", fcmfake.InvalidArgument)
	for _, tc := range []struct {
		to    string
		class channels.Class
	}{{"dead-1", channels.TokenDead}, {"dead-2", channels.TokenDead}, {"alive", ""}} {
		_, err := c.Send(context.Background(), push(tc.to))
		if got := channels.ClassOf(err); got != tc.class {
			t.Errorf("%s: class %q (%v), want %q", tc.to, got, err, tc.class)
		}
	}
	if f.CountFor("alive") != 1 || f.Count() != 1 {
		t.Errorf("counts = %v", f.Messages())
	}
}

func TestTimeoutIsTransient(t *testing.T) {
	f := startFake(t, fcmfake.Options{})
	c := newClient(t, f, func(c *fcm.Config) { c.CallTimeout = 150 * time.Millisecond })
	f.SetHang(true)
	start := time.Now()
	_, err := c.Send(context.Background(), push("tok-1"))
	took := time.Since(start)
	var ce *channels.Error
	if !asError(err, &ce) || ce.Class != channels.Transient || ce.Code != "timeout" {
		t.Fatalf("Send = %v, want transient timeout", err)
	}
	if !channels.MaybeDelivered(err) {
		t.Errorf("no answer within the timeout: FCM may have the push, but %v does not say so", err)
	}
	if took > 2*time.Second {
		t.Errorf("Send took %s with a 150ms CallTimeout", took)
	}
	f.SetHang(false)
	if f.Count() != 0 {
		t.Errorf("fake recorded a timed-out send")
	}
}

func TestLatencyWithinTimeout(t *testing.T) {
	f := startFake(t, fcmfake.Options{})
	c := newClient(t, f, nil)
	f.SetLatency(20 * time.Millisecond)
	if _, err := c.Send(context.Background(), push("tok-1")); err != nil {
		t.Fatal(err)
	}
}

func TestConnectionRefusedIsTransientAndQuick(t *testing.T) {
	f := startFake(t, fcmfake.Options{})
	c := newClient(t, f, nil)
	f.Close()
	start := time.Now()
	_, err := c.Send(context.Background(), push("tok-1"))
	if channels.ClassOf(err) != channels.Transient {
		t.Fatalf("Send to a closed fake = %v, want transient", err)
	}
	if channels.MaybeDelivered(err) {
		t.Errorf("no connection, yet %v reads as maybe delivered", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Send took %s; the SDK's retry of network errors was not cut short", took)
	}
}

func TestOutageWindow(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	f := startFake(t, fcmfake.Options{Now: clock})
	c := newClient(t, f, nil)
	f.OutageFor(10 * time.Second)

	_, err := c.Send(context.Background(), push("tok-1"))
	if channels.ClassOf(err) != channels.Transient {
		t.Fatalf("Send during outage = %v, want transient", err)
	}
	mu.Lock()
	now = now.Add(11 * time.Second)
	mu.Unlock()
	if _, err := c.Send(context.Background(), push("tok-1")); err != nil {
		t.Fatalf("Send after outage: %v", err)
	}
	if f.CountFor("tok-1") != 1 {
		t.Errorf("delivered %d times, want 1", f.CountFor("tok-1"))
	}
}

func TestPayloadTooLarge(t *testing.T) {
	f := startFake(t, fcmfake.Options{})
	c := newClient(t, f, nil)
	m := push("tok-1")
	m.Data = map[string]string{"blob": strings.Repeat("đ", 2100)} // 4,200 bytes
	_, err := c.Send(context.Background(), m)
	var ce *channels.Error
	if !asError(err, &ce) || ce.Class != channels.Permanent || ce.Code != "PAYLOAD_TOO_LARGE" {
		t.Fatalf("Send = %v, want permanent PAYLOAD_TOO_LARGE", err)
	}
	if f.Requests() != 0 {
		t.Errorf("fake was called %d times", f.Requests())
	}
	m.Data = map[string]string{"blob": strings.Repeat("a", 3900)}
	if _, err := c.Send(context.Background(), m); err != nil {
		t.Errorf("Send of a payload under the limit: %v", err)
	}
}

func TestPayloadSizeMatchesJSON(t *testing.T) {
	for _, m := range []channels.Message{
		{},
		{Title: "Thông báo", Body: "Cắt điện <8:00> & \"11:00\"\n\ttab \x01 \u2028"},
		{Data: map[string]string{"a": "b", "đường": "phố\\"}},
		{Title: "x", Data: map[string]string{"k": "v"}},
		{Body: "bad \xff utf8"},
	} {
		want := 0
		if m.Title != "" || m.Body != "" {
			b, _ := json.Marshal(struct {
				Title string `json:"title"`
				Body  string `json:"body"`
			}{m.Title, m.Body})
			want += len(b)
		}
		if len(m.Data) > 0 {
			b, _ := json.Marshal(m.Data)
			want += len(b)
		}
		if got := fcm.PayloadSize(m); got != want {
			t.Errorf("PayloadSize(%+v) = %d, want %d", m, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, cfg := range []fcm.Config{
		{},
		{ProjectID: "p"},
		{ProjectID: "p", Endpoint: "https://x/v1", CallTimeout: -1},
	} {
		if cfg.Validate() == nil {
			t.Errorf("Validate(%+v) = nil", cfg)
		}
	}
	if err := (fcm.Config{ProjectID: "p", CredentialsFile: "sa.json"}).Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func asError(err error, target **channels.Error) bool { return errors.As(err, target) }

// benchTarget is where the send benchmarks send: with
// LOA_BENCH_FCM_ENDPOINT and LOA_BENCH_FCM_CREDENTIALS_FILE (the
// LOA_FCM_ENDPOINT and LOA_FCM_CREDENTIALS_FILE that `loa-fakes` prints, or
// the reference fake's -sa file; its certificate trusted through
// SSL_CERT_FILE) a fake in its own process, so cpu-µs/send is the client's
// alone; otherwise the in-process fake, whose side is then counted too.
// LOA_BENCH_FCM_CONNECTIONS overrides Config.Connections.
func benchTarget(b *testing.B) (cfg fcm.Config, conns func() int) {
	cfg = fcm.Config{ProjectID: project}
	if n, err := strconv.Atoi(os.Getenv("LOA_BENCH_FCM_CONNECTIONS")); err == nil {
		cfg.Connections = n
	}
	if ep := os.Getenv("LOA_BENCH_FCM_ENDPOINT"); ep != "" {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} // the local fake's self-signed certificate
		cfg.ProjectID, cfg.Endpoint, cfg.CredentialsFile = "loa-fake", ep, os.Getenv("LOA_BENCH_FCM_CREDENTIALS_FILE")
		cfg.HTTPClient = &http.Client{Transport: t}
		return cfg, nil
	}
	f, err := fcmfake.New(fcmfake.Options{CountOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(f.Close)
	cfg.Endpoint, cfg.HTTPClient = f.Endpoint(), f.Client()
	return cfg, func() int { return int(f.Connections()) }
}

// runSends sends b.N times through send, 128 at a time, and reports
// sends/s and the process's CPU per send.
func runSends(b *testing.B, send func() error) {
	if err := send(); err != nil { // the OAuth token, when there are credentials
		b.Fatal(err)
	}
	b.SetParallelism(128 / runtime.GOMAXPROCS(0))
	b.ReportAllocs()
	b.ResetTimer()
	io0 := processIO()
	cpu0, start := testenv.ProcessCPU(), time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := send(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	cpu, elapsed := testenv.ProcessCPU()-cpu0, time.Since(start)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "sends/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/send")
	if io0 != nil {
		io := processIO()
		b.ReportMetric(float64(io["syscw"]-io0["syscw"])/float64(b.N), "writes/send")
		b.ReportMetric(float64(io["syscr"]-io0["syscr"])/float64(b.N), "reads/send")
		b.ReportMetric(float64(io["wchar"]-io0["wchar"])/float64(b.N), "B-written/send")
	}
}

// processIO is the process's I/O counters from /proc/self/io (write and
// read system calls, bytes written); nil where there is no such file.
func processIO() map[string]int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return nil
	}
	m := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok {
			m[k], _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return m
}

// BenchmarkSend measures Loa's client against a 0 ms fake over HTTP/2 and
// TLS, 128 sends at a time (see benchTarget for where the fake runs).
func BenchmarkSend(b *testing.B) {
	cfg, conns := benchTarget(b)
	c, err := fcm.New(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	m := push("tok")
	m.ExpiresAt = time.Now().Add(time.Hour)
	runSends(b, func() error { _, err := c.Send(context.Background(), m); return err })
	if conns != nil {
		b.ReportMetric(float64(conns()), "conns")
	}
}

// BenchmarkSendSDK is the yardstick for BenchmarkSend: the plain SDK, as
// gorush uses it (its own transport with OAuth when there are credentials,
// one Send per message), sending the message Loa's client builds.
func BenchmarkSendSDK(b *testing.B) {
	cfg, _ := benchTarget(b)
	opts := []option.ClientOption{option.WithEndpoint(cfg.Endpoint)}
	if cfg.CredentialsFile != "" {
		opts = append(opts, option.WithCredentialsFile(cfg.CredentialsFile))
	} else {
		opts = append(opts, option.WithHTTPClient(cfg.HTTPClient))
	}
	app, err := firebase.NewApp(context.Background(), &firebase.Config{ProjectID: cfg.ProjectID}, opts...)
	if err != nil {
		b.Fatal(err)
	}
	mc, err := app.Messaging(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	ttl := time.Hour
	m := &messaging.Message{
		Token: "tok", Data: map[string]string{"kind": "alert"},
		Notification: &messaging.Notification{Title: "Cảnh báo lũ", Body: "Mực nước sông Hương đang lên, đề nghị di dời."},
		Android:      &messaging.AndroidConfig{Priority: "high", TTL: &ttl},
		APNS:         &messaging.APNSConfig{Headers: map[string]string{"apns-priority": "10", "apns-expiration": "1900000000"}},
	}
	runSends(b, func() error { _, err := mc.Send(context.Background(), m); return err })
}

// TestConnectionPool: a burst of concurrent sends shares Connections
// HTTP/2 connections, at most 100 sends on each (FCM's stream limit),
// instead of dialling (and TLS-handshaking) a connection per send over
// the limit; every send gets through.
func TestConnectionPool(t *testing.T) {
	f := startFake(t, fcmfake.Options{})
	f.SetLatency(2 * time.Millisecond)
	c := newClient(t, f, func(cfg *fcm.Config) { cfg.Connections = 2 })
	const senders, each = 500, 4
	var wg sync.WaitGroup
	errs := make(chan error, senders*each)
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := c.Send(context.Background(), push(fmt.Sprintf("tok-%d-%d", g, i))); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := f.Count(); n != senders*each {
		t.Errorf("fake accepted %d pushes, want %d", n, senders*each)
	}
	if n := f.Connections(); n > 2 {
		t.Errorf("%d connections opened, want at most 2", n)
	}
	if n := f.MaxInFlight(); n > 2*fcmfake.MaxConcurrentStreams {
		t.Errorf("%d sends in flight at once, over 2 connections × %d streams", n, fcmfake.MaxConcurrentStreams)
	}
}

// TestSendsArePackedOntoFewConnections: sends go to the first
// connection with a stream free, not spread over the pool, so that the
// requests in flight share each connection's writes and reads: 150 sends
// held at FCM at once, with 8 connections allowed, use two — 100 streams
// on the first, 50 on the second — and the other six are never dialled.
func TestSendsArePackedOntoFewConnections(t *testing.T) {
	f := startFake(t, fcmfake.Options{})
	c := newClient(t, f, func(cfg *fcm.Config) { cfg.Connections, cfg.CallTimeout = 8, time.Minute })
	channeltest.StallFake(f)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 150 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Send(ctx, push(fmt.Sprintf("tok-%d", i))) // held until cancelled
		}()
	}
	waitUntil(t, "150 pushes are held at FCM", func() bool { return f.MaxInFlight() >= 150 })
	conns := f.Connections()
	cancel()
	wg.Wait()
	if conns != 2 {
		t.Errorf("150 sends at once used %d connections, want 2 (100 streams each)", conns)
	}
}

// TestWaitingForAStreamEndsWithTheCall: while every stream is taken by a
// hung request, further sends wait in the pool, not on the wire, and give
// up as transient failures when their call times out.
func TestWaitingForAStreamEndsWithTheCall(t *testing.T) {
	f := startFake(t, fcmfake.Options{})
	c := newClient(t, f, func(cfg *fcm.Config) { cfg.Connections = 1; cfg.CallTimeout = 300 * time.Millisecond })
	_, release := channeltest.StallFake(f)
	defer release()
	for _, o := range sendAtOnce(c, 250) {
		var ce *channels.Error
		if err := o.err; !asError(err, &ce) || ce.Class != channels.Transient {
			t.Fatalf("a send over the stream limit: %v, want a transient error", err)
		}
	}
	if n := f.MaxInFlight(); n > fcmfake.MaxConcurrentStreams {
		t.Errorf("%d requests reached the fake at once, over the %d streams of one connection", n, fcmfake.MaxConcurrentStreams)
	}
	if n := f.Connections(); n != 1 {
		t.Errorf("%d connections opened, want 1", n)
	}
}

// TestReconnectsAfterConnectionsDrop: when the server drops every
// connection of the pool, sends dial new ones; at most the send in flight
// on each dropped connection fails, and as transient.
func TestReconnectsAfterConnectionsDrop(t *testing.T) {
	f := startFake(t, fcmfake.Options{})
	c := newClient(t, f, func(cfg *fcm.Config) { cfg.Connections = 2 })
	for i := range 10 {
		if _, err := c.Send(context.Background(), push(fmt.Sprintf("before-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	before := f.Connections()
	f.DropConnections()
	failed := 0
	for i := range 20 {
		if _, err := c.Send(context.Background(), push(fmt.Sprintf("after-%d", i))); err != nil {
			var ce *channels.Error
			if !asError(err, &ce) || ce.Class != channels.Transient {
				t.Fatalf("send after the drop: %v, want success or a transient error", err)
			}
			failed++
		}
	}
	if failed > 2 {
		t.Errorf("%d of 20 sends failed after the drop, want at most one per dropped connection", failed)
	}
	if got := f.Count(); got != 10+20-failed {
		t.Errorf("fake accepted %d pushes, want %d", got, 10+20-failed)
	}
	if n := f.Connections(); n <= before || n > before+2 {
		t.Errorf("%d connections after the drop (%d before), want new ones, at most 2", n, before)
	}
}

// TestUrgentPushesHaveReservedStreams: while bulk pushes hold every
// stream they may take (FCM holds them unanswered) and more wait for one,
// an alert still reaches FCM on a stream of the reserve.
func TestUrgentPushesHaveReservedStreams(t *testing.T) {
	f := startFake(t, fcmfake.Options{})
	c := newClient(t, f, func(cfg *fcm.Config) {
		cfg.Connections, cfg.ReservedShare, cfg.CallTimeout = 1, 0.1, time.Minute
	})
	channeltest.StallFake(f)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	send := func(m channels.Message) {
		defer wg.Done()
		c.Send(ctx, m) // held until cancelled
	}
	for i := range 120 {
		m := push(fmt.Sprintf("bulk-%d", i))
		m.Lane = channels.LaneBulk
		wg.Add(1)
		go send(m)
	}
	waitUntil(t, "90 bulk pushes are held at FCM", func() bool { return f.MaxInFlight() >= 90 })
	alert := push("alert-1")
	alert.Lane = channels.LaneAlert
	wg.Add(1)
	go send(alert)
	waitUntil(t, "the alert reaches FCM past 30 queued bulk pushes", func() bool { return f.MaxInFlight() >= 91 })
	// Measured before the cancel: once the held sends are cancelled, the
	// fake still counts their streams until it sees the resets, while the
	// queued bulk pushes are admitted to the freed streams.
	n := f.MaxInFlight()
	cancel()
	wg.Wait()
	if n != 91 {
		t.Fatalf("%d requests reached FCM at once; bulk may use 90 of the 100 streams", n)
	}
}

// waitUntil polls cond, failing after a minute.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, not ordering events
	}
}

// breakableConn fails every write once broken is set, as a connection the
// peer has reset does.
type breakableConn struct {
	net.Conn
	broken *atomic.Bool
}

func (c breakableConn) Write(p []byte) (int, error) {
	if c.broken.Load() {
		return 0, syscall.ECONNRESET
	}
	return c.Conn.Write(p)
}

// TestWriteErrorFailsTheSend: when a connection fails to write a
// request, the send fails as transient at once — it does not wait for its
// call to time out — and the next send dials a new connection.
func TestWriteErrorFailsTheSend(t *testing.T) {
	f := startFake(t, fcmfake.Options{})
	var broken atomic.Bool
	tr := f.Client().Transport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return breakableConn{Conn: c, broken: &broken}, nil
	}
	c := newClient(t, f, func(cfg *fcm.Config) {
		cfg.HTTPClient, cfg.Connections, cfg.CallTimeout = &http.Client{Transport: tr}, 1, time.Hour
	})
	if _, err := c.Send(context.Background(), push("tok-before")); err != nil {
		t.Fatal(err)
	}
	broken.Store(true)
	_, err := c.Send(context.Background(), push("tok-lost"))
	var ce *channels.Error
	if !asError(err, &ce) || ce.Class != channels.Transient || ce.Code == "timeout" {
		t.Fatalf("a send whose write failed: %v, want a transient error other than the call's timeout", err)
	}
	broken.Store(false)
	if _, err := c.Send(context.Background(), push("tok-after")); err != nil {
		t.Fatalf("the send after a failed write: %v", err)
	}
	if f.Connections() != 2 || f.CountFor("tok-lost") != 0 || f.Count() != 2 {
		t.Errorf("%d connections, %d pushes accepted (%v)", f.Connections(), f.Count(), f.Messages())
	}
}

// TestConnectionPoolThroughTheCallersTLSDialer: with a TLS dialer of the
// caller's (as through a proxy), the pool's connections are net/http's,
// one per transport; a burst of sends over
// them all gets through, over HTTP/2, on no more connections than
// configured.
func TestConnectionPoolThroughTheCallersTLSDialer(t *testing.T) {
	f := startFake(t, fcmfake.Options{})
	tr := f.Client().Transport.(*http.Transport).Clone()
	tlsConfig := tr.TLSClientConfig.Clone()
	tlsConfig.NextProtos = []string{"h2"}
	tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return (&tls.Dialer{Config: tlsConfig}).DialContext(ctx, network, addr)
	}
	c := newClient(t, f, func(cfg *fcm.Config) { cfg.HTTPClient, cfg.Connections = &http.Client{Transport: tr}, 2 })
	const sends = 400
	for _, o := range sendAtOnce(c, sends) {
		if o.err != nil {
			t.Fatal(o.err)
		}
	}
	if n := f.Count(); n != sends {
		t.Errorf("fake accepted %d pushes, want %d", n, sends)
	}
	if n := f.Connections(); n > 2 {
		t.Errorf("%d connections opened, want at most 2", n)
	}
	if m := f.Messages(); len(m) == 0 || m[0].Proto != "HTTP/2.0" {
		t.Errorf("requests did not come over HTTP/2")
	}
}

// sendOutcome is what one send of sendAtOnce got.
type sendOutcome struct {
	res channels.Result
	err error
}

// sendAtOnce sends n pushes (tokens tok-0 … tok-n-1) through c, all at
// once, and returns what each got.
func sendAtOnce(c *fcm.Client, n int) []sendOutcome {
	out := make([]sendOutcome, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].res, out[i].err = c.Send(context.Background(), push(fmt.Sprintf("tok-%d", i)))
		}()
	}
	wg.Wait()
	return out
}
