package email

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strconv"
	"time"

	"github.com/loa-hub/loa/channels"
)

// DefaultTimeout bounds one Send, from dialling to the server's answer to
// the message, when Config.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// Config configures a Client.
type Config struct {
	// Name identifies this relay in results and metrics; "smtp:"+Host
	// when empty.
	Name string
	// Host and Port are the relay's address; Port 587 (submission) when
	// zero. Host is also the name its TLS certificate is checked against
	// unless TLS.ServerName says otherwise.
	Host string
	Port int
	// Username and Password, when Username is set, authenticate with
	// AUTH PLAIN (or LOGIN when the relay offers only that), only ever
	// over TLS.
	Username, Password string
	// From is the sender, e.g. "Cổng thông báo <thongbao@example.gov.vn>".
	// Required.
	From string
	// TLS configures STARTTLS; nil means the system roots and Host as the
	// server name. Tests set RootCAs to a fake's certificate.
	TLS *tls.Config
	// AllowPlaintext lets a message go out unencrypted when the relay
	// does not offer STARTTLS (a local relay in development). Without it
	// such a relay is a Transient failure. Authentication never happens
	// unencrypted.
	AllowPlaintext bool
	// Hostname is the name given in EHLO; "localhost" when empty.
	Hostname string
	// MessageIDDomain is the right-hand side of Message-IDs; "loa" when
	// empty.
	MessageIDDomain string
	// Timeout bounds one Send; DefaultTimeout when zero.
	Timeout time.Duration
	// Now is the clock for expiry and the Date header; time.Now when nil.
	Now func() time.Time
}

// Validate reports the first thing wrong with c.
func (c Config) Validate() error {
	switch {
	case c.Host == "":
		return errors.New("email: config: Host is required")
	case c.Port < 0 || c.Port > 65535:
		return fmt.Errorf("email: config: Port %d is out of range", c.Port)
	case c.From == "":
		return errors.New("email: config: From is required")
	case c.Timeout < 0:
		return errors.New("email: config: Timeout must not be negative")
	}
	if _, err := mail.ParseAddress(c.From); err != nil {
		return fmt.Errorf("email: config: From: %w", err)
	}
	return nil
}

// Client sends e-mail through one SMTP relay, one connection per message.
// It implements channels.Channel and is safe for concurrent use.
type Client struct {
	cfg  Config
	from *mail.Address
	addr string
	name string
	tls  *tls.Config
}

var _ channels.Channel = (*Client)(nil)

// New validates cfg and returns a Client. It does not connect.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	from, _ := mail.ParseAddress(cfg.From)
	if cfg.Port == 0 {
		cfg.Port = 587
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "localhost"
	}
	if cfg.MessageIDDomain == "" {
		cfg.MessageIDDomain = "loa"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLS != nil {
		tc = cfg.TLS.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = cfg.Host
	}
	name := cfg.Name
	if name == "" {
		name = "smtp:" + cfg.Host
	}
	return &Client{cfg: cfg, from: from, addr: net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)), name: name, tls: tc}, nil
}

// Name returns the relay's name.
func (c *Client) Name() string { return c.name }

// Send mails m to the address m.To: Title is the subject, Body the text,
// sent as multipart/alternative with a text/plain part and an escaped
// text/html part. The Result's ProviderID is the Message-ID, which
// carries m.NotificationID (see NotificationID).
//
// Errors (*channels.Error): Expired without connecting when m is past
// ExpiresAt; Permanent for an invalid address and for 5xx replies
// (Code is the reply code, e.g. "550"); Transient for 4xx replies,
// connection and TLS failures, a relay without STARTTLS (unless
// AllowPlaintext), Timeout and ctx ending.
func (c *Client) Send(ctx context.Context, m channels.Message) (channels.Result, error) {
	now := c.cfg.Now()
	if m.Expired(now) {
		return channels.Result{}, &channels.Error{Class: channels.Expired, Provider: c.name, Code: "expired",
			Err: fmt.Errorf("email: message expired at %s", m.ExpiresAt.Format(time.RFC3339))}
	}
	to, err := mail.ParseAddress(m.To)
	if err != nil {
		return channels.Result{}, &channels.Error{Class: channels.Permanent, Provider: c.name, Code: "INVALID_ADDRESS",
			Err: fmt.Errorf("email: recipient: %w", err)}
	}
	msgID, err := newMessageID(m.NotificationID, c.cfg.MessageIDDomain)
	if err != nil {
		return channels.Result{}, c.transient("", err)
	}
	raw, err := compose(c.from, to, m, msgID, now)
	if err != nil {
		return channels.Result{}, &channels.Error{Class: channels.Permanent, Provider: c.name, Code: "COMPOSE", Err: fmt.Errorf("email: %w", err)}
	}

	callCtx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	if err := c.deliver(callCtx, to.Address, raw); err != nil {
		return channels.Result{}, c.classify(ctx, callCtx, err)
	}
	return channels.Result{Provider: c.name, ProviderID: msgID}, nil
}

// errNoStartTLS means the relay did not offer STARTTLS.
var errNoStartTLS = errors.New("email: relay does not offer STARTTLS")

// deliver runs one SMTP session. ctx ending closes the connection, which
// unblocks whatever the session is waiting for.
func (c *Client) deliver(ctx context.Context, to string, raw []byte) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}

	sc, err := smtp.NewClient(conn, c.cfg.Host)
	if err != nil {
		return err
	}
	defer sc.Close()
	if err := sc.Hello(c.cfg.Hostname); err != nil {
		return err
	}
	tlsOn := false
	if ok, _ := sc.Extension("STARTTLS"); ok {
		if err := sc.StartTLS(c.tls); err != nil {
			return fmt.Errorf("starttls: %w", err)
		}
		tlsOn = true
	} else if !c.cfg.AllowPlaintext {
		return errNoStartTLS
	}
	if c.cfg.Username != "" {
		if !tlsOn {
			return errors.New("email: refusing to authenticate without TLS")
		}
		ok, mechs := sc.Extension("AUTH")
		if !ok {
			return errors.New("email: relay does not offer AUTH")
		}
		if err := sc.Auth(c.auth(mechs)); err != nil {
			return err
		}
	}
	if err := sc.Mail(c.from.Address); err != nil {
		return err
	}
	if err := sc.Rcpt(to); err != nil {
		return err
	}
	w, err := sc.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(raw); err != nil {
		return err
	}
	if err := w.Close(); err != nil { // reads the reply to the message
		return err
	}
	_ = sc.Quit() // the message is accepted; a failed goodbye changes nothing
	return nil
}

// classify maps a failed session to a class.
func (c *Client) classify(ctx, callCtx context.Context, err error) error {
	var te *textproto.Error
	switch {
	case ctx.Err() != nil:
		return c.transient("cancelled", context.Cause(ctx))
	case errors.Is(callCtx.Err(), context.DeadlineExceeded):
		return c.transient("timeout", fmt.Errorf("no answer within %s: %w", c.cfg.Timeout, err))
	case errors.As(err, &te):
		class := channels.Transient
		if te.Code >= 500 {
			class = channels.Permanent
		}
		// A reply: the server did not take the message.
		return &channels.Error{Class: class, Provider: c.name, Code: strconv.Itoa(te.Code), Err: channels.Refused(fmt.Errorf("email: %w", err))}
	case errors.Is(err, errNoStartTLS):
		return c.transient("STARTTLS", err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return c.transient("timeout", err)
	}
	if channels.DialFailed(err) {
		return c.transient("network", channels.Refused(err))
	}
	return c.transient("network", err)
}

func (c *Client) transient(code string, err error) error {
	return &channels.Error{Class: channels.Transient, Provider: c.name, Code: code, Err: fmt.Errorf("email: send: %w", err)}
}
