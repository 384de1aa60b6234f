package email

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"

	"github.com/loa-hub/loa/channels"
)

// newMessageID returns "<id.random@domain>", where id is the
// notification id with every character other than ASCII letters, digits,
// '-' and '_' replaced by '-'.
func newMessageID(notificationID, domain string) (string, error) {
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", fmt.Errorf("message id: %w", err)
	}
	id := strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			return c
		}
		return '-'
	}, notificationID)
	if id == "" {
		id = "-"
	}
	return "<" + id + "." + hex.EncodeToString(r[:]) + "@" + domain + ">", nil
}

// NotificationID returns the notification id a Message-ID made by a
// Client carries (with characters outside [A-Za-z0-9_-] replaced by '-'),
// and false when messageID is not one of Loa's. It lets bounces and
// replies be matched to their notification.
func NotificationID(messageID string) (string, bool) {
	s := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(messageID), "<"), ">")
	local, _, ok := strings.Cut(s, "@")
	if !ok {
		return "", false
	}
	dot := strings.LastIndexByte(local, '.')
	if dot <= 0 || len(local)-dot-1 != 16 {
		return "", false
	}
	return local[:dot], true
}

// encodeSubject encodes s as RFC 2047 encoded words (base64, which is
// shorter than Q for Vietnamese) when it is not plain ASCII, folding
// between words so no header line gets long.
func encodeSubject(s string) string {
	enc := mime.BEncoding.Encode("utf-8", s)
	return strings.ReplaceAll(enc, "?= =?", "?=\r\n =?")
}

var htmlPart = template.Must(template.New("mail").Parse(`<!DOCTYPE html>
<html lang="vi">
<head><meta charset="utf-8"><title>{{.Title}}</title></head>
<body style="font-family: Arial, sans-serif; line-height: 1.5">
{{if .Title}}<h1 style="font-size: 1.25em">{{.Title}}</h1>
{{end}}{{range .Paragraphs}}<p>{{range $i, $line := .}}{{if $i}}<br>
{{end}}{{$line}}{{end}}</p>
{{end}}</body>
</html>
`))

// compose renders the whole message: headers, then a multipart/alternative
// body with quoted-printable text/plain and text/html parts, CRLF line
// endings throughout.
func compose(from, to *mail.Address, m channels.Message, msgID string, now time.Time) ([]byte, error) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("From", from.String())
	header("To", to.String())
	header("Subject", encodeSubject(m.Title))
	header("Date", now.Format(time.RFC1123Z))
	header("Message-ID", msgID)
	header("MIME-Version", "1.0")
	header("Content-Type", `multipart/alternative; boundary="`+mw.Boundary()+`"`)
	// RFC 3834: tells auto-responders not to answer a notification.
	header("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")

	text := strings.ReplaceAll(m.Body, "\r\n", "\n")
	var paragraphs [][]string
	for _, p := range strings.Split(text, "\n\n") {
		if p = strings.Trim(p, "\n"); p != "" {
			paragraphs = append(paragraphs, strings.Split(p, "\n"))
		}
	}
	var html bytes.Buffer
	if err := htmlPart.Execute(&html, struct {
		Title      string
		Paragraphs [][]string
	}{m.Title, paragraphs}); err != nil {
		return nil, err
	}
	for _, part := range []struct {
		ctype string
		body  string
	}{
		{"text/plain; charset=utf-8", text},
		{"text/html; charset=utf-8", html.String()},
	} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.ctype},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		qp := quotedprintable.NewWriter(pw)
		if _, err := qp.Write([]byte(part.body)); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// auth picks PLAIN, or LOGIN when the relay offers only LOGIN.
func (c *Client) auth(mechs string) smtp.Auth {
	offered := strings.Fields(strings.ToUpper(mechs))
	hasPlain, hasLogin := false, false
	for _, m := range offered {
		hasPlain = hasPlain || m == "PLAIN"
		hasLogin = hasLogin || m == "LOGIN"
	}
	if !hasPlain && hasLogin {
		return &loginAuth{user: c.cfg.Username, pass: c.cfg.Password}
	}
	return smtp.PlainAuth("", c.cfg.Username, c.cfg.Password, c.cfg.Host)
}

// loginAuth is the LOGIN mechanism (draft-murchison-sasl-login), which
// net/smtp lacks and some relays still require. Like smtp.PlainAuth it
// refuses to send credentials unencrypted.
type loginAuth struct{ user, pass string }

func (a *loginAuth) Start(server *smtp.ServerInfo) (string, []byte, error) {
	if !server.TLS {
		return "", nil, errors.New("email: refusing AUTH LOGIN without TLS")
	}
	return "LOGIN", nil, nil
}

func (a *loginAuth) Next(fromServer []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	switch strings.ToLower(strings.TrimSpace(string(fromServer))) {
	case "username:":
		return []byte(a.user), nil
	case "password:":
		return []byte(a.pass), nil
	}
	return nil, fmt.Errorf("email: unexpected AUTH LOGIN challenge %q", fromServer)
}
