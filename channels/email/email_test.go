package email_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/channels/channeltest"
	"github.com/loa-hub/loa/channels/email"
	"github.com/loa-hub/loa/internal/fakes/smtpfake"
)

func startFake(t *testing.T, opts smtpfake.Options) *smtpfake.Server {
	t.Helper()
	if opts.Username == "" {
		opts.Username, opts.Password = "loa", "s3cret"
	}
	opts.RequireTLS = true
	f, err := smtpfake.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

func newClient(t *testing.T, f *smtpfake.Server, change func(*email.Config)) *email.Client {
	t.Helper()
	cfg := email.Config{
		Host: f.Host(), Port: f.Port(), Username: "loa", Password: "s3cret",
		From: "Cổng thông báo tỉnh <thongbao@example.gov.vn>",
		TLS:  &tls.Config{RootCAs: f.RootCAs()},
	}
	if change != nil {
		change(&cfg)
	}
	c, err := email.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type sink struct{ f *smtpfake.Server }

func (s sink) Count(to string) int              { return s.f.CountFor(to) }
func (s sink) Address(i int) string             { return fmt.Sprintf("nguoidan%02d@example.vn", i) }
func (s sink) Stall() (<-chan struct{}, func()) { return channeltest.StallFake(s.f) }

func TestContract(t *testing.T) {
	channeltest.Run(t, func(t *testing.T) (channels.Channel, channeltest.Sink) {
		f := startFake(t, smtpfake.Options{})
		return newClient(t, f, nil), sink{f}
	})
}

func mailTo(to string) channels.Message {
	return channels.Message{
		NotificationID: "01JN8Z7Q.feedback/42", Kind: "feedback_reply", Channel: channels.Email, To: to,
		Title: "Phản hồi góp ý của bạn về việc sửa đường Lê Lợi, phường Đông Ba – thành phố Huế",
		Body:  "Kính gửi ông/bà,\n\nUBND phường đã tiếp nhận <góp ý> & sẽ xử lý trong 5 ngày.\nTrân trọng.",
	}
}

func TestHeadersAndParts(t *testing.T) {
	now := time.Date(2025, 3, 5, 9, 30, 0, 0, time.FixedZone("ICT", 7*3600))
	f := startFake(t, smtpfake.Options{})
	c := newClient(t, f, func(c *email.Config) { c.Now = func() time.Time { return now } })
	m := mailTo("Nguyễn Văn A <nva@example.vn>")
	res, err := c.Send(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	msgs := f.Messages()
	if len(msgs) != 1 {
		t.Fatalf("fake has %d messages", len(msgs))
	}
	got := msgs[0]
	if !got.TLS || got.AuthUser != "loa" || got.From != "thongbao@example.gov.vn" || len(got.To) != 1 || got.To[0] != "nva@example.vn" {
		t.Errorf("envelope: TLS %v auth %q from %q to %v", got.TLS, got.AuthUser, got.From, got.To)
	}
	if got.Subject != m.Title {
		t.Errorf("decoded Subject = %q, want %q", got.Subject, m.Title)
	}
	if raw := got.Header.Get("Subject"); !strings.HasPrefix(raw, "=?utf-8?b?") {
		t.Errorf("raw Subject %q is not RFC 2047 encoded", raw)
	}
	// RFC 5322's hard limit; long subjects are folded between encoded words.
	for _, line := range strings.Split(string(got.Raw), "\r\n") {
		if len(line) > 998 {
			t.Errorf("line longer than 998: %q", line)
		}
	}
	if !bytes.Contains(got.Raw, []byte("?=\r\n =?utf-8?b?")) {
		t.Errorf("long subject is not folded")
	}
	from, err := (&mail.AddressParser{WordDecoder: new(mime.WordDecoder)}).Parse(got.Header.Get("From"))
	if err != nil || from.Name != "Cổng thông báo tỉnh" {
		t.Errorf("From = %q (%v)", got.Header.Get("From"), err)
	}
	msgID := got.Header.Get("Message-ID")
	if msgID != res.ProviderID || !strings.Contains(msgID, "01JN8Z7Q-feedback-42.") || !strings.HasSuffix(msgID, "@loa>") {
		t.Errorf("Message-ID = %q, Result.ProviderID = %q", msgID, res.ProviderID)
	}
	if id, ok := email.NotificationID(msgID); !ok || id != "01JN8Z7Q-feedback-42" {
		t.Errorf("NotificationID(%q) = %q, %v", msgID, id, ok)
	}
	if d, err := got.Header.Date(); err != nil || !d.Equal(now) {
		t.Errorf("Date = %v (%v), want %v", d, err, now)
	}
	if got.Header.Get("Auto-Submitted") != "auto-generated" || got.Header.Get("MIME-Version") != "1.0" {
		t.Errorf("headers = %v", got.Header)
	}

	parts := readParts(t, got)
	plain, html := parts["text/plain; charset=utf-8"], parts["text/html; charset=utf-8"]
	if plain != m.Body {
		t.Errorf("text/plain = %q, want %q", plain, m.Body)
	}
	for _, want := range []string{"&lt;góp ý&gt; &amp; sẽ", "<p>Kính gửi ông/bà,</p>", "<br>", "<title>Phản hồi góp ý"} {
		if !strings.Contains(html, want) {
			t.Errorf("text/html lacks %q:\n%s", want, html)
		}
	}
}

// readParts decodes a multipart/alternative message's parts by type.
func readParts(t *testing.T, m smtpfake.Message) map[string]string {
	t.Helper()
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type %q (%v)", m.Header.Get("Content-Type"), err)
	}
	pm, err := mail.ReadMessage(bytes.NewReader(m.Raw))
	if err != nil {
		t.Fatal(err)
	}
	parts := map[string]string{}
	mr := multipart.NewReader(pm.Body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if p.Header.Get("Content-Transfer-Encoding") != "quoted-printable" {
			t.Errorf("part %s: transfer encoding %q", p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"))
		}
		b, err := io.ReadAll(quotedprintable.NewReader(p))
		if err != nil {
			t.Fatal(err)
		}
		parts[p.Header.Get("Content-Type")] = strings.ReplaceAll(string(b), "\r\n", "\n")
	}
	if len(parts) != 2 {
		t.Errorf("%d parts, want 2: %v", len(parts), parts)
	}
	return parts
}

func TestLoginAuth(t *testing.T) {
	f := startFake(t, smtpfake.Options{AuthMechanisms: []string{"LOGIN"}})
	c := newClient(t, f, nil)
	if _, err := c.Send(context.Background(), mailTo("a@example.vn")); err != nil {
		t.Fatal(err)
	}
	if got := f.Messages()[0].AuthUser; got != "loa" {
		t.Errorf("AuthUser = %q", got)
	}
}

func TestErrorClasses(t *testing.T) {
	f := startFake(t, smtpfake.Options{})
	c := newClient(t, f, nil)
	for _, tc := range []struct {
		name  string
		setup func()
		class channels.Class
		code  string
	}{
		{"mailbox unknown", func() { f.FailRecipient("a@example.vn", "550") }, channels.Permanent, "550"},
		{"mailbox full", func() { f.FailRecipient("a@example.vn", "452") }, channels.Transient, "452"},
		{"greylisted", func() { f.SetError("451", 0) }, channels.Transient, "451"},
		{"rejected", func() { f.SetError("554", 0) }, channels.Permanent, "554"},
		{"outage", func() { f.OutageFor(time.Hour) }, channels.Transient, "421"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup()
			defer f.ResetFaults()
			_, err := c.Send(context.Background(), mailTo("a@example.vn"))
			ce := chError(t, err)
			if ce.Class != tc.class || ce.Code != tc.code {
				t.Errorf("got %s %s (%v), want %s %s", ce.Class, ce.Code, err, tc.class, tc.code)
			}
		})
	}
	if f.Count() != 0 {
		t.Errorf("fake recorded %d failed sends", f.Count())
	}

	wrong := newClient(t, f, func(c *email.Config) { c.Password = "nope" })
	if ce := chError(t, errOf(wrong.Send(context.Background(), mailTo("a@example.vn")))); ce.Class != channels.Permanent || ce.Code != "535" {
		t.Errorf("wrong password: %v", ce)
	}
	untrusted := newClient(t, f, func(c *email.Config) { c.TLS = nil })
	if ce := chError(t, errOf(untrusted.Send(context.Background(), mailTo("a@example.vn")))); ce.Class != channels.Transient {
		t.Errorf("untrusted certificate: %v", ce)
	}
	bad := newClient(t, f, nil)
	if ce := chError(t, errOf(bad.Send(context.Background(), mailTo("not an address")))); ce.Class != channels.Permanent || ce.Code != "INVALID_ADDRESS" {
		t.Errorf("bad address: %v", ce)
	}
	if f.Count() != 0 {
		t.Errorf("fake recorded %d failed sends", f.Count())
	}
}

func TestTimeoutAndRefused(t *testing.T) {
	f := startFake(t, smtpfake.Options{})
	c := newClient(t, f, func(c *email.Config) { c.Timeout = 200 * time.Millisecond })
	f.SetHang(true)
	start := time.Now()
	ce := chError(t, errOf(c.Send(context.Background(), mailTo("a@example.vn"))))
	if ce.Class != channels.Transient || ce.Code != "timeout" {
		t.Errorf("hung relay: %v", ce)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %s with a 200ms timeout", took)
	}
	f.SetHang(false)
	f.Close()
	if ce := chError(t, errOf(c.Send(context.Background(), mailTo("a@example.vn")))); ce.Class != channels.Transient || ce.Code != "network" {
		t.Errorf("closed relay: %v", ce)
	}
	if f.Count() != 0 {
		t.Errorf("fake recorded a timed-out send")
	}
}

func TestLatency(t *testing.T) {
	f := startFake(t, smtpfake.Options{})
	c := newClient(t, f, nil)
	f.SetLatency(30 * time.Millisecond)
	for i := range 2 { // the session stays usable after a delayed reply
		if _, err := c.Send(context.Background(), mailTo(fmt.Sprintf("a%d@example.vn", i))); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, cfg := range []email.Config{
		{},
		{Host: "smtp.example.vn"},
		{Host: "smtp.example.vn", From: "not an address"},
		{Host: "smtp.example.vn", From: "a@b.vn", Port: 70000},
		{Host: "smtp.example.vn", From: "a@b.vn", Timeout: -1},
	} {
		if cfg.Validate() == nil {
			t.Errorf("Validate(%+v) = nil", cfg)
		}
	}
}

func chError(t *testing.T, err error) *channels.Error {
	t.Helper()
	var ce *channels.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *channels.Error", err, err)
	}
	return ce
}

func errOf[T any](_ T, err error) error { return err }
