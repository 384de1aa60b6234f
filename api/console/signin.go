package console

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

func (c *Console) routes() {
	mux := http.NewServeMux()
	mux.Handle("GET "+Prefix+"static/", c.static())
	mux.HandleFunc("GET "+Prefix+"signin", c.signInPage)
	mux.HandleFunc("POST "+Prefix+"signin", c.signIn)
	mux.HandleFunc("GET "+Prefix+"lang", c.setLang)
	mux.HandleFunc("POST "+Prefix+"signout", c.signedIn(c.signOut))
	mux.HandleFunc("GET "+Prefix+"password", c.signedIn(c.passwordPage))
	mux.HandleFunc("POST "+Prefix+"password", c.signedIn(c.changePassword))
	mux.HandleFunc("GET "+Prefix+"{$}", c.signedIn(c.home))
	c.pageRoutes(mux)
	mux.HandleFunc(Prefix, c.signedIn(func(w http.ResponseWriter, r *http.Request) {
		p := c.basePage(r, "notfound.title", "")
		p.Problem = &problem{Status: http.StatusNotFound}
		c.render(w, r, http.StatusNotFound, "error", p)
	}))
	c.mux = mux
}

type signInForm struct {
	Username string
	Next     string
	Sent     string // push | sms: a code was sent
	Errors   map[string]string
}

func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	p := page{Title: "signin.title", CSRF: c.preSession(w, r)}
	f := signInForm{Next: localPath(r.URL.Query().Get("next"))}
	switch r.URL.Query().Get("reason") {
	case "idle":
		p.Flash = "signin.idle"
	case "ended":
		p.Flash = "signin.ended"
	case "signedout":
		p.Flash = "signin.signedout"
	}
	p.Data = f
	c.render(w, r, http.StatusOK, "signin", p)
}

type sessionAnswer struct {
	Token           string    `json:"token"`
	ExpiresAt       time.Time `json:"expires_at"`
	PasswordExpired bool      `json:"password_expired"`
	Kind            string    `json:"kind"`
	CodeSent        string    `json:"code_sent"`
	ClientKey       string    `json:"client_key"`
}

// clientKeyMaxAge is how long the browser keeps the sign-in's client key:
// 400 days, the most browsers allow.
const clientKeyMaxAge = 400 * 24 * 3600

// clientKey returns the client key the browser kept, or "" for none or
// for something that cannot be one.
func clientKey(r *http.Request) string {
	ck, err := r.Cookie(clientCookie)
	if err != nil || len(ck.Value) > 100 || strings.Trim(ck.Value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != "" {
		return ""
	}
	return ck.Value
}

// signIn: the user name, password and second factor go to POST
// /v1/sessions as they are; throttling, the second factor and the
// password's age are the accounts service's business.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	ck, err := r.Cookie(preCookie)
	if err != nil || !c.checkCSRF(r, c.csrfFor("pre", ck.Value)) {
		c.forbidden(w, r, "csrf")
		return
	}
	f := signInForm{Username: r.PostFormValue("username"), Next: localPath(r.PostFormValue("next")), Errors: map[string]string{}}
	req := map[string]string{"username": f.Username, "password": r.PostFormValue("password")}
	if k := clientKey(r); k != "" {
		req["client_key"] = k
	}
	if send := r.PostFormValue("send_code"); send == "push" || send == "sms" {
		req["send_code"] = send
	} else if otp := r.PostFormValue("otp"); otp != "" {
		req["otp"] = otp
	}
	var ans sessionAnswer
	status, err := c.call(r.Context(), r, "", http.MethodPost, "/v1/sessions", req, &ans)
	p := page{Title: "signin.title", CSRF: c.csrfFor("pre", ck.Value)}
	var prob *problem
	switch {
	case err == nil && status == http.StatusAccepted:
		f.Sent = req["send_code"]
		p.Flash = "signin.codesent." + f.Sent
	case err == nil && ans.Kind != "official":
		// The console is for officials; a citizen's session is ended at once.
		c.endSession(w, r, ans.Token)
		f.Errors["username"] = "signin.notofficial"
	case err == nil:
		if err := c.startSession(r.Context(), w, ans.Token, ans.ExpiresAt); err != nil {
			c.fail(w, r, err)
			return
		}
		http.SetCookie(w, c.cookie(preCookie, "", -1, true))
		if ans.ClientKey != "" {
			http.SetCookie(w, c.cookie(clientCookie, ans.ClientKey, clientKeyMaxAge, true))
		}
		next := f.Next
		if ans.PasswordExpired {
			next = Prefix + "password?expired=1"
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	case errors.As(err, &prob):
		switch {
		case prob.Type == "urn:loa:problem:locked":
			f.Errors["otp"] = "signin.locked"
		case prob.Status == http.StatusTooManyRequests:
			p.Error = "signin.throttled"
		case prob.Field == "otp" && prob.Status == http.StatusUnauthorized && req["otp"] == "":
			f.Errors["otp"] = "signin.otprequired"
		case prob.Field == "otp" && prob.Status == http.StatusUnauthorized:
			f.Errors["otp"] = "signin.otpwrong"
		case prob.Status == http.StatusUnauthorized:
			p.Error = "signin.bad"
		case prob.Status == http.StatusBadRequest:
			for _, fe := range prob.Errors {
				f.Errors[fe.Field] = fe.Detail
			}
			if len(f.Errors) == 0 {
				p.Error = prob.Detail
			}
		default:
			p.Error = "signin.unavailable"
		}
	default:
		c.fail(w, r, err)
		return
	}
	p.Data = f
	c.render(w, r, statusOf(prob, http.StatusOK), "signin", p)
}

func statusOf(p *problem, def int) int {
	if p != nil && p.Status >= 400 {
		return p.Status
	}
	return def
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request) {
	c.endSession(w, r, sessionFrom(r.Context()).token)
	http.Redirect(w, r, Prefix+"signin?reason=signedout", http.StatusSeeOther)
}

func (c *Console) passwordPage(w http.ResponseWriter, r *http.Request) {
	p := c.basePage(r, "password.title", "")
	if r.URL.Query().Get("expired") == "1" || p.Me == nil {
		p.Flash = "password.expired"
	}
	p.Data = map[string]string{}
	c.render(w, r, http.StatusOK, "password", p)
}

// changePassword: POST /v1/me/password ends every session of the account
// and opens a new one, which replaces the cookie.
func (c *Console) changePassword(w http.ResponseWriter, r *http.Request) {
	old, nw := r.PostFormValue("old"), r.PostFormValue("new")
	p := c.basePage(r, "password.title", "")
	errs := map[string]string{}
	if nw != r.PostFormValue("confirm") {
		errs["confirm"] = "password.mismatch"
	} else {
		var ans sessionAnswer
		_, err := c.api(r, http.MethodPost, "/v1/me/password", map[string]string{"old": old, "new": nw}, &ans)
		var prob *problem
		switch {
		case err == nil:
			if c.cfg.Idle != nil {
				_ = c.cfg.Idle.End(r.Context(), idleKey(sessionFrom(r.Context()).token))
			}
			if err := c.startSession(r.Context(), w, ans.Token, ans.ExpiresAt); err != nil {
				c.fail(w, r, err)
				return
			}
			http.Redirect(w, r, Prefix+"?flash=password.changed", http.StatusSeeOther)
			return
		case errors.As(err, &prob) && prob.Status < 500:
			for _, fe := range prob.Errors {
				errs[fe.Field] = fe.Detail
			}
			if len(errs) == 0 {
				errs["old"] = prob.Detail
			}
		default:
			c.fail(w, r, err)
			return
		}
	}
	p.Data = errs
	c.render(w, r, http.StatusBadRequest, "password", p)
}

func (c *Console) home(w http.ResponseWriter, r *http.Request) {
	p := c.basePage(r, "home.title", "home")
	if f := r.URL.Query().Get("flash"); f == "password.changed" {
		p.Flash = f
	}
	c.render(w, r, http.StatusOK, "home", p)
}

func formatInt(v any) string {
	var n int64
	switch x := v.(type) {
	case int:
		n = int64(x)
	case int64:
		n = x
	case float64:
		n = int64(x)
	default:
		return "—"
	}
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	var out []byte
	for i, ch := range []byte(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, '.')
		}
		out = append(out, ch)
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

func formatMoney(v float64, currency string) string {
	return formatInt(int64(v+0.5)) + " " + currency
}

func percent(a, b int64) int {
	if b <= 0 {
		return 0
	}
	return int(a * 100 / b)
}

// maskPhone shows the first five and last three digits of a phone.
func maskPhone(s string) string {
	if len(s) < 9 {
		return s
	}
	return s[:5] + "***" + s[len(s)-3:]
}
