package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cookie names. The session cookie holds the API session token; it is
// HttpOnly (no script reads it), SameSite=Strict (no other site's page
// sends it) and, outside dev, Secure.
const (
	sessionCookie = "loa_console"
	preCookie     = "loa_console_pre" // binds the sign-in form's CSRF token before there is a session
	langCookie    = "loa_lang"
	// clientCookie keeps the client_key of the browser's last password
	// sign-in, sent back with the next: its failures then count apart
	// from a stranger's at the same user name, who cannot lock the
	// official out of the console (docs/api.md, Sign-in throttling). It
	// outlives sessions and sign-outs; a sign-in to another account
	// replaces it.
	clientCookie = "loa_console_client"
	csrfField    = "csrf"
	csrfHeader   = "X-CSRF-Token"
)

// IdleStore remembers when each session was last used. RedisIdle
// implements it on the shared Redis, so every replica sees the same.
type IdleStore interface {
	// Start marks the session with key as used now, for ttl.
	Start(ctx context.Context, key string, ttl time.Duration) error
	// Touch renews the mark; false when it has lapsed (the session was
	// idle longer than ttl) or never existed.
	Touch(ctx context.Context, key string, ttl time.Duration) (bool, error)
	// End removes the mark.
	End(ctx context.Context, key string) error
}

// RedisIdle is an IdleStore in Redis: one key per session (named by a
// hash of its token, never the token) that expires after the idle
// timeout. Safe for concurrent use.
type RedisIdle struct {
	RDB    redis.UniversalClient
	Prefix string // e.g. "loa:console:idle:"
}

// Start implements IdleStore.
func (s RedisIdle) Start(ctx context.Context, key string, ttl time.Duration) error {
	return s.RDB.Set(ctx, s.Prefix+key, "1", ttl).Err()
}

// Touch implements IdleStore.
func (s RedisIdle) Touch(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	return s.RDB.PExpire(ctx, s.Prefix+key, ttl).Result()
}

// End implements IdleStore.
func (s RedisIdle) End(ctx context.Context, key string) error {
	return s.RDB.Del(ctx, s.Prefix+key).Err()
}

// session is the signed-in official of a request.
type session struct {
	token string
	csrf  string
	me    *me
}

// me is GET /v1/me.
type me struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	FullName string `json:"full_name"`
	Username string `json:"username"`
	Unit     string `json:"unit"`
	Roles    []struct {
		Unit string `json:"unit"`
		Role string `json:"role"`
	} `json:"roles"`
	// Can is GET /v1/me/capabilities.
	Can []string `json:"-"`
}

// can reports whether the API lets the official do what capability
// names (GET /v1/me/capabilities: each answered by the check of the
// routes behind it). The console offers a page or an action only then,
// and the API still decides every call.
func (m *me) can(capability string) bool {
	return m != nil && slices.Contains(m.Can, capability)
}

func idleKey(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:16])
}

// csrfFor derives the CSRF token of a session (or of a pre-session
// cookie): an HMAC under the console's secret, so every replica checks it
// and nobody without the cookie can compute it.
func (c *Console) csrfFor(kind, value string) string {
	m := hmac.New(sha256.New, c.cfg.Secret)
	m.Write([]byte(kind + "\x00" + value))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (c *Console) cookie(name, value string, maxAge int, httpOnly bool) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: Prefix, MaxAge: maxAge, HttpOnly: httpOnly,
		Secure: !c.cfg.Dev, SameSite: http.SameSiteStrictMode}
}

// preSession returns the CSRF token of a form shown before sign-in,
// setting its cookie when the browser has none.
func (c *Console) preSession(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(preCookie); err == nil && len(ck.Value) == 43 {
		return c.csrfFor("pre", ck.Value)
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, c.cookie(preCookie, v, 3600, true))
	return c.csrfFor("pre", v)
}

// checkCSRF refuses a state-changing request whose CSRF token (form field
// or X-CSRF-Token header) is not the one of its session (or pre-session
// cookie), and one whose Origin is another site's.
func (c *Console) checkCSRF(r *http.Request, want string) bool {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	got := r.Header.Get(csrfHeader)
	if got == "" {
		got = r.PostFormValue(csrfField)
	}
	return want != "" && got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// startSession sets the cookie of a new API session and starts its idle
// clock.
func (c *Console) startSession(ctx context.Context, w http.ResponseWriter, token string, expires time.Time) error {
	if c.cfg.Idle != nil {
		if err := c.cfg.Idle.Start(ctx, idleKey(token), c.cfg.IdleTimeout); err != nil {
			return fmt.Errorf("console: idle clock: %w", err)
		}
	}
	maxAge := int(time.Until(expires).Seconds())
	if maxAge <= 0 {
		maxAge = int((8 * time.Hour).Seconds())
	}
	http.SetCookie(w, c.cookie(sessionCookie, token, maxAge, true))
	return nil
}

// endSession ends the API session and clears the cookie.
func (c *Console) endSession(w http.ResponseWriter, r *http.Request, token string) {
	if token != "" {
		if _, err := c.call(r.Context(), r, token, http.MethodDelete, "/v1/sessions/current", nil, nil); err != nil {
			var p *problem
			if !errors.As(err, &p) || p.Status != http.StatusUnauthorized {
				c.cfg.Log.Warn("console: ending a session", slog.Any("error", err))
			}
		}
		if c.cfg.Idle != nil {
			_ = c.cfg.Idle.End(r.Context(), idleKey(token))
		}
	}
	http.SetCookie(w, c.cookie(sessionCookie, "", -1, true))
}

// toSignIn sends the browser to the sign-in page (htmx: a full redirect).
func (c *Console) toSignIn(w http.ResponseWriter, r *http.Request, reason string) {
	q := url.Values{}
	if reason != "" {
		q.Set("reason", reason)
	}
	if r.Method == http.MethodGet && r.URL.Path != Prefix+"signin" {
		q.Set("next", r.URL.RequestURI())
	}
	target := Prefix + "signin"
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	if r.Header.Get("HX-Request") == "true" {
		w.Header().Set("HX-Redirect", target)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// signedIn admits requests with a live session: the idle clock is
// renewed, the account is read (GET /v1/me), and a POST must carry the
// session's CSRF token. Without a session, after the idle timeout, or
// with a session the API no longer accepts, the browser goes to the
// sign-in page; with an expired password, to the password page.
func (c *Console) signedIn(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(sessionCookie)
		if err != nil || ck.Value == "" {
			c.toSignIn(w, r, "")
			return
		}
		token := ck.Value
		if c.cfg.Idle != nil {
			alive, err := c.cfg.Idle.Touch(r.Context(), idleKey(token), c.cfg.IdleTimeout)
			if err != nil {
				c.cfg.Log.Error("console: idle clock", slog.Any("error", err))
				http.Error(w, "the console cannot reach its session store; try again", http.StatusServiceUnavailable)
				return
			}
			if !alive {
				c.endSession(w, r, token)
				c.toSignIn(w, r, "idle")
				return
			}
		}
		s := &session{token: token, csrf: c.csrfFor("session", token)}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !c.checkCSRF(r, s.csrf) {
			c.forbidden(w, r, "csrf")
			return
		}
		// The check is the console's, not the official's doing: its
		// reads are not audited (the page's own calls are).
		check := r.Context()
		if c.cfg.Unaudited != nil {
			check = c.cfg.Unaudited(check)
		}
		var m me
		_, err = c.call(check, r, token, http.MethodGet, "/v1/me", nil, &m)
		var p *problem
		switch {
		case errors.As(err, &p) && p.Status == http.StatusUnauthorized:
			c.endSession(w, r, "")
			c.toSignIn(w, r, "ended")
			return
		case errors.As(err, &p) && p.Type == "urn:loa:problem:password-expired":
			if r.URL.Path != Prefix+"password" && r.URL.Path != Prefix+"signout" {
				http.Redirect(w, r, Prefix+"password", http.StatusSeeOther)
				return
			}
		case err != nil:
			c.fail(w, r, err)
			return
		default:
			var caps struct {
				Capabilities []string `json:"capabilities"`
			}
			if _, err := c.call(check, r, token, http.MethodGet, "/v1/me/capabilities", nil, &caps); err != nil {
				c.fail(w, r, err)
				return
			}
			m.Can = caps.Capabilities
			s.me = &m
		}
		next(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, s)))
	}
}

// needs admits a signed-in request whose official has capability, and
// answers anyone else 403: for the pages that call no API route which
// would refuse them itself (a form shown before anything is posted).
func (c *Console) needs(capability string, next http.HandlerFunc) http.HandlerFunc {
	return c.signedIn(func(w http.ResponseWriter, r *http.Request) {
		if s := sessionFrom(r.Context()); s == nil || !s.me.can(capability) {
			c.forbidden(w, r, "role")
			return
		}
		next(w, r)
	})
}

// basePage is the page of a signed-in request.
func (c *Console) basePage(r *http.Request, title, nav string) page {
	p := page{Title: title, Nav: nav}
	if s := sessionFrom(r.Context()); s != nil {
		p.Me, p.CSRF = s.me, s.csrf
	}
	return p
}

// forbidden answers 403 with the console's page.
func (c *Console) forbidden(w http.ResponseWriter, r *http.Request, why string) {
	p := c.basePage(r, "forbidden.title", "")
	p.Problem = &problem{Status: http.StatusForbidden, Type: why}
	c.render(w, r, http.StatusForbidden, "error", p)
}

// fail shows an API error: its status and detail (a 5xx's detail stays
// in the log).
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	var p *problem
	if !errors.As(err, &p) {
		c.cfg.Log.Error("console: page failed", slog.String("path", r.URL.Path), slog.Any("error", err))
		p = &problem{Status: http.StatusInternalServerError}
	}
	if p.Status >= 500 && p.Detail == "" {
		p.Detail = ""
	}
	pg := c.basePage(r, "error.title", "")
	pg.Problem = p
	c.render(w, r, p.Status, "error", pg)
}

func lang(r *http.Request) string {
	if ck, err := r.Cookie(langCookie); err == nil && ck.Value == "en" {
		return "en"
	}
	return "vi"
}

// setLang answers GET /console/lang?to=en|vi&back=PATH.
func (c *Console) setLang(w http.ResponseWriter, r *http.Request) {
	to := r.URL.Query().Get("to")
	if to != "en" {
		to = "vi"
	}
	http.SetCookie(w, &http.Cookie{Name: langCookie, Value: to, Path: Prefix, MaxAge: 365 * 24 * 3600,
		Secure: !c.cfg.Dev, SameSite: http.SameSiteStrictMode, HttpOnly: true})
	back := r.URL.Query().Get("back")
	if !strings.HasPrefix(back, Prefix) || strings.HasPrefix(back, "//") || strings.Contains(back, "\\") {
		back = Prefix
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// localPath returns next when it is a console path, else the home page:
// the sign-in page never redirects elsewhere.
func localPath(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		return Prefix
	}
	return next
}

// maxPolled bounds the live views whose last audited poll is kept.
const maxPolled = 10_000

// quietPoll returns r, its context marked unaudited (Config.Unaudited)
// when the session's poll of the live view was audited within
// Config.PollAudit: a view left open polls every 2 s, and each poll's
// read of the broadcast or alert was an audit row (with the session
// check, three rows a poll). The first poll of each PollAudit is
// audited, so a session's reads stay in the log. When maxPolled views
// were audited within PollAudit, a poll of another is audited and not
// remembered.
func (c *Console) quietPoll(r *http.Request, view string) *http.Request {
	s := sessionFrom(r.Context())
	if s == nil || c.cfg.Unaudited == nil {
		return r
	}
	// A digest of the session and the view, not the view itself: the
	// view is the id as the URL gave it, up to the request line's size,
	// and it is kept before the API says whether there is such an item.
	h := sha256.Sum256([]byte(s.token + "\x00" + view))
	key := string(h[:])
	now := c.cfg.Now()
	c.pollMu.Lock()
	defer c.pollMu.Unlock()
	if at, ok := c.polled[key]; ok && now.Sub(at) < c.cfg.PollAudit && !now.Before(at) {
		return r.WithContext(c.cfg.Unaudited(r.Context()))
	}
	if len(c.polled) >= maxPolled {
		for k, at := range c.polled {
			if now.Sub(at) >= c.cfg.PollAudit || now.Before(at) {
				delete(c.polled, k)
			}
		}
		if len(c.polled) >= maxPolled {
			return r
		}
	}
	c.polled[key] = now
	return r
}
