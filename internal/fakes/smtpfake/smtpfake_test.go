package smtpfake

import (
	"crypto/tls"
	"net/smtp"
	"net/textproto"
	"strings"
	"testing"
)

func TestSessionRules(t *testing.T) {
	s, err := New(Options{Username: "u", Password: "p", RequireTLS: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	c, err := smtp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("AUTH offered before STARTTLS with RequireTLS")
	}
	if err := c.Mail("a@example.vn"); !isCode(err, 530) {
		t.Errorf("MAIL before STARTTLS: %v, want 530", err)
	}
	if err := c.StartTLS(&tls.Config{RootCAs: s.RootCAs(), ServerName: "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	if ok, mechs := c.Extension("AUTH"); !ok || !strings.Contains(mechs, "PLAIN") {
		t.Errorf("AUTH after STARTTLS: %v %q", ok, mechs)
	}
	if err := c.Mail("a@example.vn"); !isCode(err, 530) {
		t.Errorf("MAIL before AUTH: %v, want 530", err)
	}
	if err := c.Auth(smtp.PlainAuth("", "u", "p", "127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("a@example.vn"); err != nil {
		t.Fatal(err)
	}
	s.FailRecipient("full@example.vn", "452")
	if err := c.Rcpt("full@example.vn"); !isCode(err, 452) {
		t.Errorf("RCPT to a failing mailbox: %v, want 452", err)
	}
	if err := c.Rcpt("B@example.vn"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte("Subject: =?utf-8?q?Th=C3=B4ng_b=C3=A1o?=\r\n\r\n.leading dot\r\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	msgs := s.Messages()
	if len(msgs) != 1 || s.CountFor("b@example.vn") != 1 || s.Transactions() != 1 {
		t.Fatalf("messages %v", msgs)
	}
	m := msgs[0]
	if m.Subject != "Thông báo" || !m.TLS || m.AuthUser != "u" || !strings.HasSuffix(string(m.Raw), "\r\n.leading dot\r\n") {
		t.Errorf("message = %+v raw %q", m, m.Raw)
	}
}

func TestOutageAtGreeting(t *testing.T) {
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.OutageFor(1e12)
	if _, err := smtp.Dial(s.Addr()); !isCode(err, 421) {
		t.Errorf("Dial during outage: %v, want 421", err)
	}
}

func isCode(err error, code int) bool {
	te, ok := err.(*textproto.Error)
	return ok && te.Code == code
}
