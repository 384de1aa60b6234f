package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // Asia/Ho_Chi_Minh on hosts without a zone database
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the console is served.
const Prefix = "/console/"

// maxFormBytes bounds a form's body (the longest is a draft broadcast).
const maxFormBytes = 256 << 10

// Config configures the console. API and Secret are required.
type Config struct {
	// API is Loa's API handler; every page calls it in process.
	API http.Handler
	// Secret keys the CSRF tokens (at least 32 bytes; the same on every
	// replica, so a form posted to another replica is accepted).
	Secret []byte
	// Idle ends sessions; nil keeps no idle timeout (tests only).
	Idle IdleStore
	// IdleTimeout is how long a session may go unused. Default 15m.
	IdleTimeout time.Duration
	// Dev drops the Secure flag of the cookies (loa dev serves plain
	// HTTP on the loopback) and shows the dev hints on the sign-in page.
	Dev bool
	// Log is required.
	Log *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Unaudited marks a context so that the API does not write the
	// audit row of a read made with it (api.UnauditedRead): the session
	// check of each page, and a live view's poll already audited for the
	// session within PollAudit. Nil: every call is audited.
	Unaudited func(context.Context) context.Context
	// PollAudit is how often a live view's poll of one broadcast or
	// alert is audited for a session. Default a minute.
	PollAudit time.Duration
}

// Console serves /console/. Safe for concurrent use.
type Console struct {
	cfg   Config
	pages map[string]*template.Template
	zone  *time.Location
	mux   *http.ServeMux

	pollMu sync.Mutex
	// polled: when each session's poll of each live view was last
	// audited (at most maxPolled entries).
	polled map[string]time.Time
}

// New returns the console.
func New(cfg Config) (*Console, error) {
	if cfg.API == nil || cfg.Log == nil {
		return nil, errors.New("console: API and Log are required")
	}
	if len(cfg.Secret) < 32 {
		return nil, errors.New("console: the secret must have at least 32 bytes")
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 15 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PollAudit <= 0 {
		cfg.PollAudit = time.Minute
	}
	zone, err := time.LoadLocation("Asia/Ho_Chi_Minh")
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	c := &Console{cfg: cfg, zone: zone, polled: map[string]time.Time{}}
	if c.pages, err = c.parseTemplates(); err != nil {
		return nil, err
	}
	c.routes()
	return c, nil
}

// Mount returns a handler that serves the console under Prefix, sends GET
// / there, and hands everything else to api.
func Mount(api http.Handler, c *Console) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(Prefix, c)
	mux.Handle("/console", http.RedirectHandler(Prefix, http.StatusMovedPermanently))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix, http.StatusFound)
	})
	mux.Handle("/", api)
	return mux
}

func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Pages, never framed, scripts and styles from the console only.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "+
		"frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	// Forms are small: a stranger's body cannot fill the memory.
	limit := int64(maxFormBytes)
	if r.URL.Path == Prefix+"alerts/cap" {
		limit = maxCAPBytes
	}
	if strings.HasPrefix(r.URL.Path, Prefix+"portal/") && strings.HasSuffix(r.URL.Path, "/cover") {
		limit = maxCoverBytes
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	c.mux.ServeHTTP(w, r)
}

func (c *Console) static() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix(Prefix+"static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}

// page is what every template gets.
type page struct {
	Lang    string
	T       func(string) string
	Title   string
	Me      *me
	CSRF    string
	Nav     string
	Flash   string
	Error   string
	Dev     bool
	Path    string
	Data    any
	Problem *problem
}

func (c *Console) parseTemplates() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"t":      func(string) string { return "" }, // replaced per request
		"time":   c.formatTime,
		"date":   c.formatDate,
		"mask":   maskPhone,
		"join":   strings.Join,
		"money":  formatMoney,
		"num":    formatInt,
		"can":    func(m *me, capability string) bool { return m.can(capability) },
		"lower":  strings.ToLower,
		"status": func(s string) string { return "status-" + strings.ReplaceAll(s, "_", "-") },
		"pct":    percent,
	}
	base, err := template.New("base").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html")
	if err != nil {
		return nil, fmt.Errorf("console: templates: %w", err)
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" || name == "partials" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", n, err)
		}
		out[name] = t
	}
	return out, nil
}

// render writes the page tmpl (a full page, or with fragment set the
// template of that name alone, for htmx).
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, tmpl string, p page) {
	t, ok := c.pages[tmpl]
	if !ok {
		c.cfg.Log.Error("console: no template", slog.String("template", tmpl))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	p.Lang = lang(r)
	tr := translator(p.Lang)
	p.T, p.Dev, p.Path = tr, c.cfg.Dev, r.URL.Path
	if p.Title != "" {
		p.Title = tr(p.Title)
	}
	t, err := t.Clone()
	if err == nil {
		t = t.Funcs(template.FuncMap{"t": tr})
	}
	var buf strings.Builder
	name := "layout"
	if r.Header.Get("HX-Request") == "true" && t.Lookup("fragment") != nil {
		name = "fragment"
	}
	if err == nil {
		err = t.ExecuteTemplate(&buf, name, p)
	}
	if err != nil {
		c.cfg.Log.Error("console: rendering", slog.String("template", tmpl), slog.Any("error", err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(buf.String()))
}

func (c *Console) formatTime(v any) string {
	t, ok := asTime(v)
	if !ok || t.IsZero() {
		return "—"
	}
	return t.In(c.zone).Format("15:04:05 02/01/2006")
}

func (c *Console) formatDate(v any) string {
	t, ok := asTime(v)
	if !ok || t.IsZero() {
		return "—"
	}
	return t.In(c.zone).Format("02/01/2006")
}

func asTime(v any) (time.Time, bool) {
	switch x := v.(type) {
	case time.Time:
		return x, true
	case *time.Time:
		if x == nil {
			return time.Time{}, false
		}
		return *x, true
	case string:
		t, err := time.Parse(time.RFC3339Nano, x)
		return t, err == nil
	}
	return time.Time{}, false
}

// ctxKey carries the signed-in session through a request.
type ctxKey struct{}

func sessionFrom(ctx context.Context) *session {
	s, _ := ctx.Value(ctxKey{}).(*session)
	return s
}
