package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	goredis "github.com/redis/go-redis/v9"

	"github.com/loa-hub/loa/accounts"
	accredis "github.com/loa-hub/loa/accounts/redis"
	"github.com/loa-hub/loa/api"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/otp"
	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/direct"
)

// testClock is a controllable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type accFixture struct {
	*fixture
	clock *testClock
	svc   *accounts.Service
}

// newAccountsFixture is the API with an accounts service on SQLite and
// miniredis, cheap argon2, and a controllable clock; the SMS limits are
// the defaults except 6 sends per client address per hour. opts may
// change the API's dependencies (a func(*api.Deps)) or the accounts
// service's (a func(*accounts.Deps)) before either is built.
func newAccountsFixture(t *testing.T, opts ...any) *accFixture {
	t.Helper()
	store := testenv.OpenStore(t, testenv.SQLiteURL(t))
	mr := testenv.Miniredis(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	clk := &testClock{t: now}
	smsCfg := otp.DefaultSMSConfig()
	smsCfg.Secret, smsCfg.Now, smsCfg.MaxSendsPerIP = []byte(strings.Repeat("s", 32)), clk.Now, 6
	codes, err := otp.NewSMSCodes(rdb, smsCfg)
	if err != nil {
		t.Fatal(err)
	}
	sealer, _ := otp.NewSealer([]byte(strings.Repeat("k", 32)))
	cfg := accounts.DefaultConfig()
	cfg.RecoveryKey, cfg.Now, cfg.ApprovalUnit = []byte(strings.Repeat("r", 32)), clk.Now, "sotttt"
	rs := accredis.New(rdb, "")
	pub := &recorder{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	deps := accounts.Deps{Store: store, Sessions: rs, Challenges: rs, Codes: codes, Throttle: rs,
		TOTP: &otp.TOTPVerifier{Store: store, Redis: rdb, Now: clk.Now}, Sealer: sealer, Publisher: pub,
		Hasher: &accounts.Argon2Hasher{Params: accounts.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLength: 16, KeyLength: 32}}, Log: log}
	for _, o := range opts {
		if tw, ok := o.(func(*accounts.Deps)); ok {
			tw(&deps)
		}
	}
	svc, err := accounts.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.UpsertAreas(context.Background(), []accounts.Area{{Code: "49", Name: "Quảng Nam"}}); err != nil {
		t.Fatal(err)
	}
	// The test client is the trusted proxy, so a test names the client's
	// address with X-Forwarded-For.
	proxies, err := api.ParseTrustedProxies("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	adeps := api.Deps{Store: store, Direct: direct.New(direct.DefaultConfig(), store, pub, log), Log: log, DevAPIKey: "dev-key",
		MaxBodyBytes: 8 << 10, Now: clk.Now, Accounts: svc, TrustedProxies: proxies}
	for _, o := range opts {
		switch o := o.(type) {
		case func(*api.Deps):
			o(&adeps)
		case func(*accounts.Deps):
		default:
			t.Fatalf("newAccountsFixture: option %T", o)
		}
	}
	srv := httptest.NewServer(api.NewHandler(adeps))
	t.Cleanup(srv.Close)
	return &accFixture{fixture: &fixture{srv: srv, pub: pub, store: store}, clock: clk, svc: svc}
}

// lastCode is the code in the last published message.
func (f *accFixture) lastCode(t *testing.T) string {
	t.Helper()
	f.flush(t)
	envs := f.pub.Envelopes()
	if len(envs) == 0 {
		t.Fatal("nothing published")
	}
	var d producer.Direct
	if err := json.Unmarshal(envs[len(envs)-1].Payload, &d); err != nil {
		t.Fatal(err)
	}
	return d.Body[:6]
}

// flush waits for the codes and notices the service sends after its
// answer.
func (f *accFixture) flush(t *testing.T) {
	t.Helper()
	if err := f.svc.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// citizen registers and verifies a citizen through the API and signs in,
// returning the account id and a session token.
func (f *accFixture) citizen(t *testing.T, citizenID, phone string) (string, string) {
	t.Helper()
	resp, reg := f.do(t, "POST", "/v1/citizens", "", fmt.Sprintf(`{"full_name":"Nguyễn Văn A","citizen_id":%q,"phone":%q,"password":"Mật-khẩu-1"}`, citizenID, phone))
	if resp.StatusCode != 201 || reg["status"] != "pending" || reg["challenge_id"] == nil {
		t.Fatalf("register: %d %v", resp.StatusCode, reg)
	}
	id := reg["id"].(string)
	resp, v := f.do(t, "POST", "/v1/citizens/"+id+"/verify", "", fmt.Sprintf(`{"challenge_id":%q,"code":%q}`, reg["challenge_id"], f.lastCode(t)))
	if resp.StatusCode != 200 || v["status"] != "active" {
		t.Fatalf("verify: %d %v", resp.StatusCode, v)
	}
	resp, s := f.do(t, "POST", "/v1/sessions", "", fmt.Sprintf(`{"username":%q,"password":"Mật-khẩu-1"}`, citizenID))
	if resp.StatusCode != 201 || s["token"] == nil {
		t.Fatalf("sign in: %d %v", resp.StatusCode, s)
	}
	return id, s["token"].(string)
}

// official creates an official through the API with the dev key and
// signs it in with a pushed code.
func (f *accFixture) official(t *testing.T, username, phone, unit string, roles ...string) (string, string) {
	t.Helper()
	rs, _ := json.Marshal(roles)
	resp, o := f.do(t, "POST", "/v1/officials", "dev-key", fmt.Sprintf(`{"username":%q,"full_name":"Cán bộ","phone":%q,"unit":%q,"roles":%s,"password":"Mật-khẩu-1"}`,
		username, phone, unit, rs))
	if resp.StatusCode != 201 {
		t.Fatalf("create official: %d %v", resp.StatusCode, o)
	}
	resp, p := f.do(t, "POST", "/v1/sessions", "", fmt.Sprintf(`{"username":%q,"password":"Mật-khẩu-1","send_code":"sms"}`, username))
	if resp.StatusCode != 202 {
		t.Fatalf("send code: %d %v", resp.StatusCode, p)
	}
	resp, s := f.do(t, "POST", "/v1/sessions", "", fmt.Sprintf(`{"username":%q,"password":"Mật-khẩu-1","otp":%q}`, username, f.lastCode(t)))
	if resp.StatusCode != 201 {
		t.Fatalf("official sign-in: %d %v", resp.StatusCode, s)
	}
	f.clock.Advance(time.Minute) // past the per-phone cooldown
	return o["id"].(string), s["token"].(string)
}

// TestAccountsBadInputNamesTheField: every new endpoint answers bad input
// with 400 problem+json naming the field.
func TestAccountsBadInputNamesTheField(t *testing.T) {
	f := newAccountsFixture(t)
	_, citizenTok := f.citizen(t, "049095000123", "0912345678")
	offID, offTok := f.official(t, "tran.b", "0911111111", "sotttt", "unit_admin")
	cases := []struct {
		name, method, path, key, body, field string
	}{
		{"citizen: empty", "POST", "/v1/citizens", "", `{}`, "full_name"},
		{"citizen: bad id", "POST", "/v1/citizens", "", `{"full_name":"A","citizen_id":"12345","phone":"0912345678","password":"Mật-khẩu-1"}`, "citizen_id"},
		{"citizen: bad phone", "POST", "/v1/citizens", "", `{"full_name":"A","citizen_id":"049095000999","phone":"0212345678","password":"Mật-khẩu-1"}`, "phone"},
		{"citizen: weak password", "POST", "/v1/citizens", "", `{"full_name":"A","citizen_id":"049095000999","phone":"0987654321","password":"abc"}`, "password"},
		{"citizen: wrong type", "POST", "/v1/citizens", "", `{"full_name":"A","citizen_id":49095000999}`, "citizen_id"},
		{"citizen: unknown field", "POST", "/v1/citizens", "", `{"full_name":"A","dob":"1990"}`, "dob"},
		{"citizen verify: no challenge", "POST", "/v1/citizens/x/verify", "", `{"code":"123456"}`, "challenge_id"},
		{"citizen verify: bad code", "POST", "/v1/citizens/x/verify", "", `{"challenge_id":"abc","code":"12ab"}`, "code"},
		{"organisation: bad tax code", "POST", "/v1/organisations", "", `{"name":"Co","tax_code":"0100109107","phone":"0987654321","password":"Mật-khẩu-1"}`, "tax_code"},
		{"organisation: no name", "POST", "/v1/organisations", "", `{"tax_code":"0100109106","phone":"0987654321","password":"Mật-khẩu-1"}`, "name"},
		{"organisation verify: bad code", "POST", "/v1/organisations/x/verify", "", `{"challenge_id":"abc","code":""}`, "code"},
		{"session: no username", "POST", "/v1/sessions", "", `{"password":"x"}`, "username"},
		{"session: no password", "POST", "/v1/sessions", "", `{"username":"049095000123"}`, "password"},
		{"session: bad send_code", "POST", "/v1/sessions", "", `{"username":"tran.b","password":"x","send_code":"fax"}`, "send_code"},
		{"session: sso not configured", "POST", "/v1/sessions", "", `{"id_token":"eyJ"}`, "id_token"},
		{"otp sms: bad phone", "POST", "/v1/otp/sms", "", `{"phone":"123","purpose":"register"}`, "phone"},
		{"otp sms: bad purpose", "POST", "/v1/otp/sms", "", `{"phone":"0912345678","purpose":"fun"}`, "purpose"},
		{"otp verify: no code", "POST", "/v1/otp/sms/verify", "", `{"challenge_id":"abc"}`, "code"},
		{"mfa challenge: no user", "POST", "/v1/mfa/challenge", "dev-key", `{"method":"push"}`, "user"},
		{"mfa challenge: bad method", "POST", "/v1/mfa/challenge", "dev-key", `{"user":"tran.b","method":"pigeon"}`, "method"},
		{"mfa verify: no code", "POST", "/v1/mfa/verify", "dev-key", `{"user":"tran.b"}`, "code"},
		{"mfa verify: no user", "POST", "/v1/mfa/verify", "dev-key", `{"code":"123456"}`, "user"},
		{"password: weak new", "POST", "/v1/me/password", citizenTok, `{"old":"Mật-khẩu-1","new":"short"}`, "new"},
		{"password: no old", "POST", "/v1/me/password", citizenTok, `{"new":"Mat-khau-moi-2"}`, "old"},
		{"password: wrong old", "POST", "/v1/me/password", citizenTok, `{"old":"Wrong-pass-1","new":"Mat-khau-moi-2"}`, "old"},
		{"totp confirm: bad code", "POST", "/v1/me/totp/confirm", offTok, `{"code":"12"}`, "code"},
		{"device: bad app", "POST", "/v1/me/devices", citizenTok, `{"token":"t1","app":"tv","platform":"android"}`, "app"},
		{"device: no token", "POST", "/v1/me/devices", citizenTok, `{"app":"smart","platform":"android"}`, "token"},
		{"device: bad platform", "POST", "/v1/me/devices", citizenTok, `{"token":"t1","app":"smart","platform":"nokia"}`, "platform"},
		{"subscriptions: missing lists", "PUT", "/v1/me/subscriptions", citizenTok, `{}`, "areas"},
		{"subscriptions: unknown area", "PUT", "/v1/me/subscriptions", citizenTok, `{"areas":["49","zz"],"topics":[]}`, "areas[1]"},
		{"subscriptions: unknown topic", "PUT", "/v1/me/subscriptions", citizenTok, `{"areas":[],"topics":["power","gossip"]}`, "topics[1]"},
		{"subscriptions: wrong type", "PUT", "/v1/me/subscriptions", citizenTok, `{"areas":"49","topics":[]}`, "areas"},
		{"subscriptions: bad quiet hours", "PUT", "/v1/me/subscriptions", citizenTok, `{"areas":[],"topics":[],"quiet_hours":{"start":"22h","end":"06:00"}}`, "quiet_hours"},
		{"subscriptions: empty quiet hours", "PUT", "/v1/me/subscriptions", citizenTok, `{"areas":[],"topics":[],"quiet_hours":{"start":"06:00","end":"06:00"}}`, "quiet_hours"},
		{"subscriptions: unknown zone", "PUT", "/v1/me/subscriptions", citizenTok, `{"areas":[],"topics":[],"quiet_hours":{"start":"22:00","end":"06:00","time_zone":"Mars/Olympus"}}`, "quiet_hours"},
		{"official: bad username", "POST", "/v1/officials", "dev-key", `{"username":"1x","full_name":"A","phone":"0911111112","unit":"u"}`, "username"},
		{"official: bad role", "POST", "/v1/officials", "dev-key", `{"username":"nguyen.c","full_name":"A","phone":"0911111112","unit":"u","roles":["king"]}`, "roles[0]"},
		{"official: no unit", "POST", "/v1/officials", "dev-key", `{"username":"nguyen.c","full_name":"A","phone":"0911111112"}`, "unit"},
		{"role: bad role", "POST", "/v1/officials/" + offID + "/roles", "dev-key", `{"unit":"sotttt","role":"king"}`, "role"},
		{"role: no unit", "POST", "/v1/officials/" + offID + "/roles", "dev-key", `{"role":"ops"}`, "unit"},
		{"role revoke: bad role", "DELETE", "/v1/officials/" + offID + "/roles/sotttt/king", "dev-key", ``, "role"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, p := f.do(t, c.method, c.path, c.key, c.body)
			if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("status %d %s: %v", resp.StatusCode, resp.Header.Get("Content-Type"), p)
			}
			if p["field"] != c.field || p["type"] != "urn:loa:problem:invalid-field" {
				t.Errorf("field %v type %v, want %s: %v", p["field"], p["type"], c.field, p)
			}
		})
	}
}

// TestCodeLimitsOverHTTP: 429 problem+json with Retry-After for the
// per-phone cooldown and window and the per-address limit; expiry on the
// controllable clock.
func TestCodeLimitsOverHTTP(t *testing.T) {
	f := newAccountsFixture(t)
	send := func(phone string) (*http.Response, map[string]any) {
		return f.do(t, "POST", "/v1/otp/sms", "", fmt.Sprintf(`{"phone":%q,"purpose":"verify_phone"}`, phone))
	}
	check429 := func(resp *http.Response, p map[string]any, wantRetry string) {
		t.Helper()
		if resp.StatusCode != 429 || resp.Header.Get("Content-Type") != "application/problem+json" ||
			p["type"] != "urn:loa:problem:rate-limited" || resp.Header.Get("Retry-After") != wantRetry {
			t.Fatalf("want 429 with Retry-After %s: %d %v %v", wantRetry, resp.StatusCode, resp.Header, p)
		}
	}
	resp, ch := send("0912345678")
	if resp.StatusCode != 202 || ch["challenge_id"] == nil {
		t.Fatalf("send: %d %v", resp.StatusCode, ch)
	}
	f.clock.Advance(10 * time.Second)
	resp, p := send("0912345678")
	check429(resp, p, "20") // 30 s cooldown, 10 s gone
	// Five codes per phone per 10 minutes.
	for range 4 {
		f.clock.Advance(30 * time.Second)
		if resp, p := send("0912345678"); resp.StatusCode != 202 {
			t.Fatalf("send within the window: %d %v", resp.StatusCode, p)
		}
	}
	f.clock.Advance(30 * time.Second)
	resp, p = send("0912345678")
	check429(resp, p, fmt.Sprint(int((10*time.Minute-130*time.Second-30*time.Second)/time.Second))) // the first send leaves the window
	// Per client address: 6 an hour in this fixture; 5 used above.
	if resp, p := send("0987654321"); resp.StatusCode != 202 {
		t.Fatalf("sixth from the address: %d %v", resp.StatusCode, p)
	}
	resp, p = send("0933333333")
	if resp.StatusCode != 429 || !strings.Contains(p["detail"].(string), "address") || resp.Header.Get("Retry-After") == "" {
		t.Errorf("seventh from the address: %d %v", resp.StatusCode, p)
	}
	// Expiry: 5 minutes on the clock.
	f.clock.Advance(5 * time.Minute)
	resp, p = f.do(t, "POST", "/v1/otp/sms/verify", "", fmt.Sprintf(`{"challenge_id":%q,"code":%q}`, "AAAAAAAAAAAAAAAAAAAAAA", "123456"))
	if resp.StatusCode != 422 || p["type"] != "urn:loa:problem:code-rejected" {
		t.Errorf("unknown challenge: %d %v", resp.StatusCode, p)
	}
}

// TestSMSCodeRacesOverHTTP: 50 concurrent wrong guesses count at most 5
// before the challenge is void; 20 concurrent right codes succeed once.
func TestSMSCodeRacesOverHTTP(t *testing.T) {
	f := newAccountsFixture(t)
	issue := func(phone string) (string, string) {
		resp, ch := f.do(t, "POST", "/v1/otp/sms", "", fmt.Sprintf(`{"phone":%q,"purpose":"verify_phone"}`, phone))
		if resp.StatusCode != 202 {
			t.Fatalf("send: %d %v", resp.StatusCode, ch)
		}
		return ch["challenge_id"].(string), f.lastCode(t)
	}
	race := func(n int, id, code string) map[string]int {
		var (
			wg  sync.WaitGroup
			mu  sync.Mutex
			out = map[string]int{}
		)
		for range n {
			wg.Go(func() {
				resp, p := f.do(t, "POST", "/v1/otp/sms/verify", "", fmt.Sprintf(`{"challenge_id":%q,"code":%q}`, id, code))
				mu.Lock()
				defer mu.Unlock()
				out[fmt.Sprint(resp.StatusCode, " ", p["detail"])]++
			})
		}
		wg.Wait()
		return out
	}
	id, code := issue("0912345678")
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	got := race(50, id, wrong)
	if got["422 the code is wrong"] > 5 || got["422 the code is wrong"]+got["422 the code can no longer be used (already used, replaced by a newer code, or too many wrong tries); ask for a new one"] != 50 {
		t.Errorf("50 wrong guesses: %v", got)
	}
	if resp, p := f.do(t, "POST", "/v1/otp/sms/verify", "", fmt.Sprintf(`{"challenge_id":%q,"code":%q}`, id, code)); resp.StatusCode != 422 {
		t.Errorf("right code after the challenge went void: %d %v", resp.StatusCode, p)
	}
	id, code = issue("0987654321")
	got = race(20, id, code)
	if got["200 <nil>"] != 1 {
		t.Errorf("20 right codes: %v", got)
	}
}

// TestSessionsOverHTTP: session tokens next to API keys, sign-out,
// restricted sessions, and one answer for unknown users and wrong
// passwords.
func TestSessionsOverHTTP(t *testing.T) {
	f := newAccountsFixture(t)
	id, tok := f.citizen(t, "049095000123", "0912345678")
	if resp, me := f.do(t, "GET", "/v1/me", tok, ""); resp.StatusCode != 200 || me["id"] != id || me["phone"] == "84912345678" {
		t.Errorf("me: %d %v", resp.StatusCode, me)
	}
	for _, c := range []struct {
		name, method, path, key string
		want                    int
	}{
		{"api key on a session route", "GET", "/v1/me", "dev-key", 403},
		{"session on an API-key route", "POST", "/v1/notifications", tok, 403},
		{"session on an API-key MFA route", "POST", "/v1/mfa/verify", tok, 403},
		{"unknown session", "GET", "/v1/me", "ses_nope", 401},
		{"no credentials", "GET", "/v1/me", "", 401},
	} {
		if resp, p := f.do(t, c.method, c.path, c.key, `{"to":{"phone":"0912345678"},"body":"x"}`); resp.StatusCode != c.want {
			t.Errorf("%s: %d, want %d: %v", c.name, resp.StatusCode, c.want, p)
		}
	}
	// Unknown user and wrong password: the same answer.
	r1, p1 := f.do(t, "POST", "/v1/sessions", "", `{"username":"001099000456","password":"Mật-khẩu-1"}`)
	r2, p2 := f.do(t, "POST", "/v1/sessions", "", `{"username":"049095000123","password":"Mật-khẩu-2"}`)
	if r1.StatusCode != 401 || r2.StatusCode != 401 || p1["type"] != p2["type"] || p1["detail"] != p2["detail"] {
		t.Errorf("unknown user %d %v; wrong password %d %v", r1.StatusCode, p1, r2.StatusCode, p2)
	}
	// Sign out.
	if resp, _ := f.do(t, "DELETE", "/v1/sessions/current", tok, ""); resp.StatusCode != 204 {
		t.Fatalf("sign out: %d", resp.StatusCode)
	}
	if resp, _ := f.do(t, "GET", "/v1/me", tok, ""); resp.StatusCode != 401 {
		t.Errorf("after sign-out: %d", resp.StatusCode)
	}
	// 90 days on, the password has expired: only /v1/me/password works.
	f.clock.Advance(91 * 24 * time.Hour)
	resp, s := f.do(t, "POST", "/v1/sessions", "", `{"username":"0912345678","password":"Mật-khẩu-1"}`)
	if resp.StatusCode != 201 || s["password_expired"] != true {
		t.Fatalf("expired sign-in: %d %v", resp.StatusCode, s)
	}
	rtok := s["token"].(string)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/me", ""}, {"PUT", "/v1/me/subscriptions", `{"areas":[],"topics":[]}`}, {"POST", "/v1/me/devices", `{"token":"t","app":"smart","platform":"ios"}`},
		{"DELETE", "/v1/sessions/current", ""},
	} {
		if resp, p := f.do(t, c.method, c.path, rtok, c.body); resp.StatusCode != 403 || p["type"] != "urn:loa:problem:password-expired" {
			t.Errorf("restricted %s %s: %d %v", c.method, c.path, resp.StatusCode, p)
		}
	}
	resp, s = f.do(t, "POST", "/v1/me/password", rtok, `{"old":"Mật-khẩu-1","new":"Mat-khau-moi-2"}`)
	if resp.StatusCode != 200 || s["token"] == nil {
		t.Fatalf("change: %d %v", resp.StatusCode, s)
	}
	if resp, _ := f.do(t, "GET", "/v1/me", s["token"].(string), ""); resp.StatusCode != 200 {
		t.Errorf("new session: %d", resp.StatusCode)
	}
	if resp, _ := f.do(t, "GET", "/v1/me", rtok, ""); resp.StatusCode != 401 {
		t.Errorf("restricted session after the change: %d", resp.StatusCode)
	}
}

// TestOfficialsOverHTTP: TOTP enrolment, MFA for shared apps, roles and
// closing through the API.
func TestOfficialsOverHTTP(t *testing.T) {
	f := newAccountsFixture(t)
	adminID, adminTok := f.official(t, "unit.admin", "0911111111", "sotttt", "unit_admin")
	staffID, staffTok := f.official(t, "staff", "0922222222", "sotttt")
	resp, en := f.do(t, "POST", "/v1/me/totp", staffTok, "")
	if resp.StatusCode != 201 || !strings.HasPrefix(en["otpauth_uri"].(string), "otpauth://totp/") || en["qr_png"] == "" {
		t.Fatalf("begin: %d %v", resp.StatusCode, en)
	}
	code, _ := totp.GenerateCode(en["secret"].(string), f.clock.Now())
	resp, conf := f.do(t, "POST", "/v1/me/totp/confirm", staffTok, fmt.Sprintf(`{"code":%q}`, code))
	if resp.StatusCode != 200 || len(conf["recovery_codes"].([]any)) != 10 {
		t.Fatalf("confirm: %d %v", resp.StatusCode, conf)
	}
	f.clock.Advance(otp.TOTPPeriod)
	code, _ = totp.GenerateCode(en["secret"].(string), f.clock.Now())
	if resp, v := f.do(t, "POST", "/v1/mfa/verify", "dev-key", fmt.Sprintf(`{"user":"staff","code":%q}`, code)); resp.StatusCode != 200 || v["account_id"] != staffID {
		t.Errorf("mfa verify: %d %v", resp.StatusCode, v)
	}
	if resp, v := f.do(t, "POST", "/v1/mfa/verify", "dev-key", fmt.Sprintf(`{"user":"staff","code":%q}`, code)); resp.StatusCode != 422 {
		t.Errorf("replayed: %d %v", resp.StatusCode, v)
	}
	if resp, v := f.do(t, "POST", "/v1/mfa/challenge", "dev-key", `{"user":"staff","method":"push"}`); resp.StatusCode != 202 {
		t.Errorf("challenge: %d %v", resp.StatusCode, v)
	}
	// An unknown user gets the same answer (and no code), so the calling
	// system learns nothing about who is an official.
	n := f.pub.count()
	if resp, v := f.do(t, "POST", "/v1/mfa/challenge", "dev-key", `{"user":"nobody","method":"push"}`); resp.StatusCode != 202 || v["method"] != "push" || v["expires_at"] == nil {
		t.Errorf("challenge for nobody: %d %v", resp.StatusCode, v)
	}
	f.flush(t)
	if f.pub.count() != n {
		t.Errorf("a code was sent for nobody")
	}
	// Roles: the unit admin within the unit; a citizen never.
	if resp, v := f.do(t, "POST", "/v1/officials/"+staffID+"/roles", adminTok, `{"unit":"sotttt","role":"agency_submitter"}`); resp.StatusCode != 200 {
		t.Errorf("grant: %d %v", resp.StatusCode, v)
	}
	if resp, v := f.do(t, "POST", "/v1/officials/"+staffID+"/roles", adminTok, `{"unit":"soyte","role":"agency_submitter"}`); resp.StatusCode != 403 {
		t.Errorf("grant elsewhere: %d %v", resp.StatusCode, v)
	}
	_, citizenTok := f.citizen(t, "049095000123", "0912345678")
	if resp, v := f.do(t, "POST", "/v1/officials/"+staffID+"/close", citizenTok, ""); resp.StatusCode != 403 {
		t.Errorf("citizen closing: %d %v", resp.StatusCode, v)
	}
	// A password reset by the unit's administrator: the one-time password
	// once, never cached; the official's sessions end. A citizen may not,
	// nor may the official reset their own.
	if resp, v := f.do(t, "POST", "/v1/officials/"+staffID+"/password-reset", citizenTok, ""); resp.StatusCode != 403 {
		t.Errorf("citizen resetting: %d %v", resp.StatusCode, v)
	}
	if resp, v := f.do(t, "POST", "/v1/officials/"+adminID+"/password-reset", adminTok, ""); resp.StatusCode != 403 {
		t.Errorf("resetting one's own: %d %v", resp.StatusCode, v)
	}
	resp, reset := f.do(t, "POST", "/v1/officials/"+staffID+"/password-reset", adminTok, "")
	if pw, _ := reset["one_time_password"].(string); resp.StatusCode != 200 || len(pw) < 12 || reset["id"] != staffID || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("reset: %d %v %q", resp.StatusCode, reset, resp.Header.Get("Cache-Control"))
	}
	if resp, _ := f.do(t, "GET", "/v1/me", staffTok, ""); resp.StatusCode != 401 {
		t.Errorf("session after a reset: %d", resp.StatusCode)
	}
	if resp, _ := f.do(t, "DELETE", "/v1/officials/"+staffID+"/roles/sotttt/agency_submitter", adminTok, ""); resp.StatusCode != 204 {
		t.Errorf("revoke: %d", resp.StatusCode)
	}
	if resp, _ := f.do(t, "POST", "/v1/officials/"+staffID+"/close", adminTok, ""); resp.StatusCode != 204 {
		t.Errorf("close: %d", resp.StatusCode)
	}
	if resp, _ := f.do(t, "GET", "/v1/me", staffTok, ""); resp.StatusCode != 401 {
		t.Errorf("closed official's session: %d", resp.StatusCode)
	}
	// Devices and subscriptions.
	resp, d := f.do(t, "POST", "/v1/me/devices", citizenTok, `{"token":"fcm-1","app":"smart","platform":"android"}`)
	if resp.StatusCode != 201 {
		t.Fatalf("device: %d %v", resp.StatusCode, d)
	}
	if resp, _ := f.do(t, "DELETE", "/v1/me/devices/"+d["id"].(string), adminTok, ""); resp.StatusCode != 404 {
		t.Errorf("another account's device: %d", resp.StatusCode)
	}
	// Another account cannot take the token without the device's proof.
	if resp, p := f.do(t, "POST", "/v1/me/devices", adminTok, `{"token":"fcm-1","app":"egov","platform":"android"}`); resp.StatusCode != 409 || p["field"] != "token" {
		t.Errorf("another account registering the token: %d %v", resp.StatusCode, p)
	}
	if resp, p := f.do(t, "POST", "/v1/me/devices", adminTok, `{"token":"fcm-1","app":"egov","platform":"android","proof":"AAAAAAAAAAAAAAAAAAAAAA"}`); resp.StatusCode != 400 || p["field"] != "proof" {
		t.Errorf("a made-up proof: %d %v", resp.StatusCode, p)
	}
	if resp, _ := f.do(t, "DELETE", "/v1/me/devices/"+d["id"].(string), citizenTok, ""); resp.StatusCode != 204 {
		t.Errorf("delete device: %d", resp.StatusCode)
	}
	if resp, s := f.do(t, "PUT", "/v1/me/subscriptions", citizenTok, `{"areas":["49"],"topics":["power"]}`); resp.StatusCode != 200 || len(s["areas"].([]any)) != 1 {
		t.Errorf("subscriptions: %d %v", resp.StatusCode, s)
	}
	// Quiet hours: set (the zone defaulted), kept when the field is left
	// out, cleared with null.
	want := map[string]any{"start": "22:00", "end": "06:00", "time_zone": "Asia/Ho_Chi_Minh"}
	if resp, s := f.do(t, "PUT", "/v1/me/subscriptions", citizenTok, `{"areas":["49"],"topics":["power"],"quiet_hours":{"start":"22:00","end":"06:00"}}`); resp.StatusCode != 200 || fmt.Sprint(s["quiet_hours"]) != fmt.Sprint(want) {
		t.Errorf("set quiet hours: %d %v", resp.StatusCode, s)
	}
	if resp, s := f.do(t, "PUT", "/v1/me/subscriptions", citizenTok, `{"areas":["49"],"topics":[]}`); resp.StatusCode != 200 || fmt.Sprint(s["quiet_hours"]) != fmt.Sprint(want) {
		t.Errorf("quiet hours after a PUT without them: %d %v", resp.StatusCode, s)
	}
	if resp, s := f.do(t, "PUT", "/v1/me/subscriptions", citizenTok, `{"areas":["49"],"topics":[],"quiet_hours":null}`); resp.StatusCode != 200 || s["quiet_hours"] != nil {
		t.Errorf("cleared quiet hours: %d %v", resp.StatusCode, s)
	}
}
