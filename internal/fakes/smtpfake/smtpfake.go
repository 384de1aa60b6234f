package smtpfake

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net"
	"net/http"
	"net/mail"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loa-hub/loa/internal/fakes/fault"
	"github.com/loa-hub/loa/internal/fakes/record"
)

// Message is one message the fake accepted.
type Message struct {
	ID   string   // queue id the fake answered with
	From string   // MAIL FROM address
	To   []string // RCPT TO addresses
	// Raw is the message as received after DATA, dot-unstuffed, with CRLF
	// line endings.
	Raw []byte
	// Header is Raw's header, parsed.
	Header mail.Header
	// Subject is the Subject header with RFC 2047 encoded words decoded.
	Subject  string
	TLS      bool   // the session had done STARTTLS
	AuthUser string // the user AUTH succeeded for, or ""
	At       time.Time
}

// Options configures a Server.
type Options struct {
	// Now is the clock outage windows are measured on; time.Now if nil.
	Now func() time.Time
	// Username and Password, when Username is set, are the only
	// credentials AUTH accepts, and MAIL needs AUTH first.
	Username, Password string
	// RequireTLS refuses MAIL before STARTTLS, and hides AUTH until then.
	RequireTLS bool
	// AuthMechanisms are the SASL mechanisms offered, from PLAIN and
	// LOGIN; both when empty.
	AuthMechanisms []string
	// Hostname is the name in the greeting; "smtpfake.test" when empty.
	Hostname string
}

// Server is a running fake SMTP server. It is safe for concurrent use;
// its fault controls are the embedded Injector's methods.
type Server struct {
	*fault.Injector

	opts     Options
	ln       net.Listener
	tlsConf  *tls.Config
	cert     *x509.Certificate
	log      record.Log[Message]
	seq      atomic.Uint64
	txns     atomic.Int64
	sessions atomic.Int64

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// New starts a fake SMTP server on 127.0.0.1 at a free port with a fresh
// self-signed certificate for 127.0.0.1 and localhost. Call Close when
// done.
func New(opts Options) (*Server, error) {
	if opts.Hostname == "" {
		opts.Hostname = "smtpfake.test"
	}
	cert, leaf, err := selfSigned()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("smtpfake: listen: %w", err)
	}
	s := &Server{
		Injector: fault.NewInjector(opts.Now),
		opts:     opts,
		ln:       ln,
		tlsConf:  &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		cert:     leaf,
		conns:    map[net.Conn]struct{}{},
	}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Host is the server's IP address, "127.0.0.1".
func (s *Server) Host() string { return s.ln.Addr().(*net.TCPAddr).IP.String() }

// Port is the server's port.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Certificate is the server's self-signed certificate.
func (s *Server) Certificate() *x509.Certificate { return s.cert }

// RootCAs is a pool holding only the server's certificate, for a client's
// tls.Config.
func (s *Server) RootCAs() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.cert)
	return p
}

// Close stops accepting, drops every session and waits for them to end.
func (s *Server) Close() {
	s.Injector.Close()
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	s.wg.Wait()
}

// Count returns the number of messages accepted.
func (s *Server) Count() int { return s.log.Count() }

// CountFor returns the number of accepted messages addressed to mailbox
// (compared as given in RCPT TO, case-insensitively).
func (s *Server) CountFor(mailbox string) int { return s.log.CountFor(strings.ToLower(mailbox)) }

// Duplicates returns the mailboxes that received more than one message.
func (s *Server) Duplicates() map[string]int { return s.log.Duplicates() }

// Messages returns the accepted messages in order.
func (s *Server) Messages() []Message { return s.log.Messages() }

// WaitCount blocks until n messages were accepted or ctx ends.
func (s *Server) WaitCount(ctx context.Context, n int) error { return s.log.WaitCount(ctx, n) }

// Transactions returns how many DATA transactions were attempted,
// whatever their outcome.
func (s *Server) Transactions() int { return int(s.txns.Load()) }

// Sessions returns how many connections were accepted.
func (s *Server) Sessions() int { return int(s.sessions.Load()) }

// Reset forgets accepted messages and zeroes the counters; the fault plan
// is kept (see ResetFaults).
func (s *Server) Reset() {
	s.log.Reset()
	s.txns.Store(0)
	s.sessions.Store(0)
}

// ResetFaults clears the fault plan.
func (s *Server) ResetFaults() { s.Injector.Reset() }

// ControlHandler serves the fake's HTTP control endpoints, for a process
// that runs the fake: /_fault (fault.Injector.ServeHTTP) and GET
// /_messages ({"count": n, "messages": [...]}).
func (s *Server) ControlHandler() http.Handler {
	mux := http.NewServeMux()
	s.Injector.Mount(mux, "/_fault")
	mux.HandleFunc("GET /_messages", func(w http.ResponseWriter, r *http.Request) {
		msgs := s.log.Messages()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(struct {
			Count    int       `json:"count"`
			Messages []Message `json:"messages"`
		}{len(msgs), msgs})
	})
	return mux
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		s.sessions.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			(&session{s: s, conn: c}).run()
		}()
	}
}

// session is one SMTP connection.
type session struct {
	s    *Server
	conn net.Conn
	tp   *textproto.Conn

	helo     bool
	tls      bool
	authUser string
	from     string
	rcpts    []string
	inMail   bool
}

func (ss *session) reply(code int, text string) error {
	return ss.tp.PrintfLine("%d %s", code, text)
}

func (ss *session) run() {
	ss.tp = textproto.NewConn(ss.conn)
	s := ss.s
	if s.InOutage() {
		_ = ss.reply(421, "4.3.2 Service not available, closing transmission channel")
		return
	}
	if ss.reply(220, s.opts.Hostname+" ESMTP smtpfake") != nil {
		return
	}
	for {
		line, err := ss.tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		verb = strings.ToUpper(verb)
		switch verb {
		case "EHLO":
			ss.resetTx()
			ss.helo = true
			lines := []string{s.opts.Hostname + " greets " + arg, "8BITMIME", "SMTPUTF8", "SIZE 10485760", "ENHANCEDSTATUSCODES"}
			if !ss.tls {
				lines = append(lines, "STARTTLS")
			}
			if s.opts.Username != "" && (ss.tls || !s.opts.RequireTLS) {
				lines = append(lines, "AUTH "+strings.Join(s.mechs(), " "))
			}
			for i, l := range lines {
				sep := "-"
				if i == len(lines)-1 {
					sep = " "
				}
				if ss.tp.PrintfLine("250%s%s", sep, l) != nil {
					return
				}
			}
		case "HELO":
			ss.resetTx()
			ss.helo = true
			err = ss.reply(250, s.opts.Hostname)
		case "STARTTLS":
			if ss.tls {
				err = ss.reply(503, "5.5.1 TLS already active")
				break
			}
			if err = ss.reply(220, "2.0.0 Ready to start TLS"); err != nil {
				return
			}
			tc := tls.Server(ss.conn, s.tlsConf)
			if err := tc.Handshake(); err != nil {
				return
			}
			ss.conn, ss.tp = tc, textproto.NewConn(tc)
			ss.tls, ss.helo, ss.authUser = true, false, ""
			ss.resetTx()
			s.mu.Lock()
			s.conns[tc] = struct{}{}
			s.mu.Unlock()
			defer func() {
				s.mu.Lock()
				delete(s.conns, tc)
				s.mu.Unlock()
			}()
		case "AUTH":
			err = ss.auth(arg)
		case "MAIL":
			err = ss.mail(arg)
		case "RCPT":
			err = ss.rcpt(arg)
		case "DATA":
			err = ss.data()
		case "RSET":
			ss.resetTx()
			err = ss.reply(250, "2.0.0 Ok")
		case "NOOP":
			err = ss.reply(250, "2.0.0 Ok")
		case "VRFY":
			err = ss.reply(252, "2.5.2 Cannot VRFY user")
		case "QUIT":
			_ = ss.reply(221, "2.0.0 Bye")
			return
		default:
			err = ss.reply(502, "5.5.2 Command not recognized")
		}
		if err != nil {
			return
		}
	}
}

func (ss *session) resetTx() {
	ss.inMail, ss.from, ss.rcpts = false, "", nil
}

func (ss *session) auth(arg string) error {
	s := ss.s
	switch {
	case s.opts.Username == "":
		return ss.reply(502, "5.5.1 AUTH not supported")
	case !ss.helo:
		return ss.reply(503, "5.5.1 EHLO first")
	case s.opts.RequireTLS && !ss.tls:
		return ss.reply(538, "5.7.11 Encryption required for requested authentication mechanism")
	case ss.authUser != "":
		return ss.reply(503, "5.5.1 Already authenticated")
	}
	mech, initial, _ := strings.Cut(arg, " ")
	mech = strings.ToUpper(mech)
	offered := false
	for _, m := range s.mechs() {
		offered = offered || m == mech
	}
	if !offered {
		return ss.reply(504, "5.5.4 Unrecognized authentication type")
	}
	var user, pass string
	switch mech {
	case "PLAIN":
		resp := initial
		if resp == "" {
			var err error
			if resp, err = ss.challenge(""); err != nil {
				return err
			}
		}
		b, err := base64.StdEncoding.DecodeString(resp)
		parts := strings.Split(string(b), "\x00")
		if err != nil || len(parts) != 3 {
			return ss.reply(501, "5.5.2 Malformed AUTH PLAIN response")
		}
		user, pass = parts[1], parts[2]
	case "LOGIN":
		u, err := ss.challenge(base64.StdEncoding.EncodeToString([]byte("Username:")))
		if err != nil {
			return err
		}
		p, err := ss.challenge(base64.StdEncoding.EncodeToString([]byte("Password:")))
		if err != nil {
			return err
		}
		ub, err1 := base64.StdEncoding.DecodeString(u)
		pb, err2 := base64.StdEncoding.DecodeString(p)
		if err1 != nil || err2 != nil {
			return ss.reply(501, "5.5.2 Malformed AUTH LOGIN response")
		}
		user, pass = string(ub), string(pb)
	default:
		return ss.reply(504, "5.5.4 Unrecognized authentication type")
	}
	if user != s.opts.Username || pass != s.opts.Password {
		return ss.reply(535, "5.7.8 Authentication credentials invalid")
	}
	ss.authUser = user
	return ss.reply(235, "2.7.0 Authentication successful")
}

func (s *Server) mechs() []string {
	if len(s.opts.AuthMechanisms) == 0 {
		return []string{"PLAIN", "LOGIN"}
	}
	return s.opts.AuthMechanisms
}

// errAuthCancelled is returned to the AUTH exchange when the client sends
// "*".
var errAuthCancelled = errors.New("smtpfake: auth cancelled")

func (ss *session) challenge(prompt string) (string, error) {
	if err := ss.tp.PrintfLine("334 %s", prompt); err != nil {
		return "", err
	}
	line, err := ss.tp.ReadLine()
	if err != nil {
		return "", err
	}
	if line == "*" {
		_ = ss.reply(501, "5.0.0 Authentication cancelled")
		return "", errAuthCancelled
	}
	return line, nil
}

// path extracts the address from "FROM:<addr> params" or "TO:<addr>".
func path(arg, prefix string) (string, bool) {
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return "", false
	}
	rest := strings.TrimSpace(arg[len(prefix):])
	if !strings.HasPrefix(rest, "<") {
		return "", false
	}
	end := strings.IndexByte(rest, '>')
	if end < 0 {
		return "", false
	}
	return rest[1:end], true
}

func (ss *session) mail(arg string) error {
	s := ss.s
	switch {
	case !ss.helo:
		return ss.reply(503, "5.5.1 EHLO first")
	case ss.inMail:
		return ss.reply(503, "5.5.1 Nested MAIL command")
	case s.opts.RequireTLS && !ss.tls:
		return ss.reply(530, "5.7.0 Must issue a STARTTLS command first")
	case s.opts.Username != "" && ss.authUser == "":
		return ss.reply(530, "5.7.0 Authentication required")
	}
	from, ok := path(arg, "FROM:")
	if !ok {
		return ss.reply(501, "5.5.4 Syntax: MAIL FROM:<address>")
	}
	ss.inMail, ss.from = true, from
	return ss.reply(250, "2.1.0 Ok")
}

func (ss *session) rcpt(arg string) error {
	if !ss.inMail {
		return ss.reply(503, "5.5.1 Need MAIL before RCPT")
	}
	to, ok := path(arg, "TO:")
	if !ok || to == "" {
		return ss.reply(501, "5.5.4 Syntax: RCPT TO:<address>")
	}
	if name := ss.s.RecipientError(strings.ToLower(to)); name != "" {
		code, text := replyFor(name, 0)
		return ss.reply(code, text)
	}
	ss.rcpts = append(ss.rcpts, to)
	return ss.reply(250, "2.1.5 Ok")
}

// replyFor turns a fault name ("451") or status (451) into a reply.
func replyFor(name string, status int) (int, string) {
	code := status
	if name != "" {
		code, _ = strconv.Atoi(name)
	}
	if code < 400 || code > 599 {
		code = 451
	}
	class := code / 100
	return code, fmt.Sprintf("%d.0.0 fault injected by smtpfake", class)
}

func (ss *session) data() error {
	s := ss.s
	if len(ss.rcpts) == 0 {
		return ss.reply(503, "5.5.1 Need RCPT before DATA")
	}
	if err := ss.reply(354, "End data with <CR><LF>.<CR><LF>"); err != nil {
		return err
	}
	body, err := io.ReadAll(ss.tp.DotReader())
	if err != nil {
		return err
	}
	s.txns.Add(1)
	raw := bytes.ReplaceAll(body, []byte("\n"), []byte("\r\n"))

	d := s.Decide("")
	if d.Latency > 0 || d.Hang {
		if err := ss.withhold(d); err != nil {
			return err // the client left: drop the message, end the session
		}
	}
	if d.Outage {
		_ = ss.reply(421, "4.3.2 Service not available, closing transmission channel")
		return errors.New("smtpfake: outage")
	}
	if d.Error != "" || d.Status != 0 {
		ss.resetTx()
		return ss.reply(replyFor(d.Error, d.Status))
	}

	m := Message{
		ID: fmt.Sprintf("Q%08d", s.seq.Add(1)), From: ss.from, To: ss.rcpts, Raw: raw,
		TLS: ss.tls, AuthUser: ss.authUser, At: s.Now(),
	}
	if pm, err := mail.ReadMessage(bytes.NewReader(raw)); err == nil {
		m.Header = pm.Header
		subj := pm.Header.Get("Subject")
		if dec, err := new(mime.WordDecoder).DecodeHeader(subj); err == nil {
			subj = dec
		}
		m.Subject = subj
	}
	keys := make([]string, len(ss.rcpts))
	for i, r := range ss.rcpts {
		keys[i] = strings.ToLower(r)
	}
	s.log.Add(m, keys...)
	ss.resetTx()
	return ss.reply(250, "2.0.0 Ok: queued as "+m.ID)
}

// withhold applies d's latency or hang to the reply the client is waiting
// for. It returns fault.ErrGone when the client disconnected (or sent
// something, which a client waiting for a reply does not) or the server
// closed meanwhile.
func (ss *session) withhold(d fault.Decision) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer cancel()
		var b [1]byte
		_, _ = ss.conn.Read(b[:])
	}()
	if err := ss.s.Wait(ctx, d); err != nil {
		return err // the session ends and its connection is closed
	}
	// Stop the watcher without losing the connection: a read deadline
	// in the past makes its Read return, and is then lifted.
	_ = ss.conn.SetReadDeadline(time.Now())
	<-readerDone
	return ss.conn.SetReadDeadline(time.Time{})
}

// selfSigned makes an ECDSA certificate for 127.0.0.1 and localhost,
// valid for a day.
func selfSigned() (tls.Certificate, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("smtpfake: key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "smtpfake"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("smtpfake: certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, leaf, nil
}
