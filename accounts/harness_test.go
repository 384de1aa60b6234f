package accounts_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	goredis "github.com/redis/go-redis/v9"

	"github.com/loa-hub/loa/accounts"
	accredis "github.com/loa-hub/loa/accounts/redis"
	"github.com/loa-hub/loa/internal/metrics"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/otp"
	"github.com/loa-hub/loa/producer"
)

// clock is a controllable clock, safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// publisher records envelopes.
type publisher struct {
	mu   sync.Mutex
	envs []producer.Envelope
	// stall makes Publish hold every envelope until its caller gives up,
	// as a Kafka client does while no broker answers; the envelope is
	// recorded all the same (the client may still write it later).
	stall atomic.Bool
}

func (p *publisher) Publish(ctx context.Context, e producer.Envelope) error {
	p.mu.Lock()
	p.envs = append(p.envs, e)
	p.mu.Unlock()
	if p.stall.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

// last returns the last envelope and its direct payload.
func (p *publisher) last(t *testing.T) (producer.Envelope, producer.Direct) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.envs) == 0 {
		t.Fatal("nothing published")
	}
	e := p.envs[len(p.envs)-1]
	var d producer.Direct
	if err := json.Unmarshal(e.Payload, &d); err != nil {
		t.Fatal(err)
	}
	return e, d
}

// directs returns the direct payloads of every envelope published.
func (p *publisher) directs(t *testing.T) []producer.Direct {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []producer.Direct
	for _, e := range p.envs {
		var d producer.Direct
		if err := json.Unmarshal(e.Payload, &d); err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

func (p *publisher) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.envs)
}

// lastCode is the code in the last published message (the SMS text starts
// with it).
func (p *publisher) lastCode(t *testing.T) string {
	t.Helper()
	_, d := p.last(t)
	return d.Body[:6]
}

// countingHasher counts the password work done, for the "same work for an
// unknown user and a wrong password" check.
type countingHasher struct {
	accounts.Hasher
	verifies, dummies atomic.Int64
	// during, when set, runs once in the next Verify, before the hash is
	// checked: what another request does while a password is verified.
	during atomic.Pointer[func()]
}

func (h *countingHasher) Verify(hash, pw string) (bool, error) {
	h.verifies.Add(1)
	if f := h.during.Swap(nil); f != nil {
		(*f)()
	}
	return h.Hasher.Verify(hash, pw)
}

func (h *countingHasher) DummyVerify(pw string) error {
	h.dummies.Add(1)
	return h.Hasher.DummyVerify(pw)
}

// cheap argon2 parameters keep the tests fast.
var cheap = accounts.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLength: 16, KeyLength: 32}

var start = time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)

type rig struct {
	svc    *accounts.Service
	store  *sqlstore.DB
	pub    *publisher
	hasher *countingHasher
	clock  *clock
	cfg    accounts.Config
	logs   *logBuffer // what the service logged
	// metrics are the service's: the refusals of the budget of
	// anonymous codes, and its hour's count read from Redis.
	metrics *metrics.Metrics
	// prefix is the rig's Redis key prefix.
	prefix string
}

// logBuffer is a log's text, safe for concurrent writes.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// redisClients returns miniredis and, when configured, the real Redis,
// each with a fresh key prefix.
func redisClients(t *testing.T) map[string]goredis.UniversalClient {
	out := map[string]goredis.UniversalClient{}
	mr := testenv.Miniredis(t)
	out["miniredis"] = goredis.NewClient(&goredis.Options{Addr: mr.Addr()})
	if os.Getenv("LOA_TEST_REDIS_URL") != "" || testenv.Required() {
		opt, err := goredis.ParseURL(testenv.RedisURL(t))
		if err != nil {
			t.Fatal(err)
		}
		out["redis"] = goredis.NewClient(opt)
	}
	for _, c := range out {
		t.Cleanup(func() { c.Close() })
	}
	return out
}

// forEachStore runs f on SQLite (and PostgreSQL when configured) with
// miniredis.
func forEachStore(t *testing.T, f func(t *testing.T, r *rig)) {
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			mr := testenv.Miniredis(t)
			rdb := goredis.NewClient(&goredis.Options{Addr: mr.Addr()})
			t.Cleanup(func() { rdb.Close() })
			f(t, newRig(t, db, rdb, nil))
		})
	}
}

func newRig(t *testing.T, db *sqlstore.DB, rdb goredis.UniversalClient, tweak func(*accounts.Config)) *rig {
	t.Helper()
	return newRigOIDC(t, db, rdb, tweak, nil)
}

// newRigOIDC is newRig with single sign-on verified by v.
func newRigOIDC(t *testing.T, db *sqlstore.DB, rdb goredis.UniversalClient, tweak func(*accounts.Config), v accounts.IDTokenVerifier) *rig {
	t.Helper()
	clk := &clock{t: start}
	prefix := "t" + testenv.ID() + ":"
	smsCfg := otp.DefaultSMSConfig()
	smsCfg.Secret = []byte(strings.Repeat("s", 32))
	smsCfg.Now = clk.Now
	smsCfg.KeyPrefix = prefix + "otp:{sms}:"
	codes, err := otp.NewSMSCodes(rdb, smsCfg)
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := otp.NewSealer([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	cfg := accounts.DefaultConfig()
	cfg.RecoveryKey, cfg.ApprovalUnit = []byte(strings.Repeat("r", 32)), "sotttt"
	cfg.Now = clk.Now
	if tweak != nil {
		tweak(&cfg)
	}
	rs := accredis.New(rdb, prefix+"acct:{s}:")
	hasher := &countingHasher{Hasher: &accounts.Argon2Hasher{Params: cheap}}
	pub := &publisher{}
	logs := &logBuffer{}
	m := metrics.New()
	if b := cfg.AnonymousBudget(); b != nil {
		m.RegisterAnonymousBudget(b.Limit, func(ctx context.Context) (int, error) { return codes.BudgetUsed(ctx, *b) })
	}
	svc, err := accounts.New(cfg, accounts.Deps{
		Store: db, Sessions: rs, Challenges: rs, Codes: codes, Throttle: rs,
		TOTP:   &otp.TOTPVerifier{Store: db, Redis: rdb, Now: clk.Now, KeyPrefix: prefix + "totp:"},
		Sealer: sealer, Publisher: pub, Hasher: hasher, OIDC: v, Metrics: m,
		Log: slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.UpsertAreas(context.Background(), []accounts.Area{
		{Code: "49", Name: "Quảng Nam", Level: "province"},
		{Code: "20194", Name: "Phường Hội An", Parent: "49", Level: "commune"},
	}); err != nil {
		t.Fatal(err)
	}
	return &rig{svc: svc, store: db, pub: pub, hasher: hasher, clock: clk, cfg: cfg, logs: logs, metrics: m, prefix: prefix}
}

const goodPassword = "Mật-khẩu-1"

// registerCitizen registers and verifies a citizen, returning its id.
func (r *rig) registerCitizen(t *testing.T, citizenID, phone string) string {
	t.Helper()
	ctx := context.Background()
	reg, err := r.svc.RegisterCitizen(ctx, accounts.CitizenRegistration{FullName: "Nguyễn Văn A", CitizenID: citizenID,
		Phone: phone, Password: goodPassword, IP: "203.0.113.7"})
	if err != nil || reg.CodeErr != nil {
		t.Fatalf("register: %v %v", err, reg.CodeErr)
	}
	if _, err := r.svc.VerifyRegistration(ctx, reg.AccountID, reg.Challenge.ID, r.pub.lastCode(t), "203.0.113.7"); err != nil {
		t.Fatalf("verify: %v", err)
	}
	return reg.AccountID
}

// official creates an official with a known password (not expired) and
// the roles in unit.
func (r *rig) official(t *testing.T, username, phone, unit string, roles ...accounts.Role) accounts.Account {
	t.Helper()
	out, err := r.svc.CreateOfficial(context.Background(), accounts.Actor{Admin: true, APIKeyID: "test"}, accounts.NewOfficial{
		Username: username, FullName: "Cán bộ " + username, Phone: phone, Unit: unit, Roles: roles, Password: goodPassword})
	if err != nil {
		t.Fatalf("create official: %v", err)
	}
	return out.Account
}

// enrolTOTP enrols and confirms a TOTP factor, returning the secret and
// the recovery codes; the clock moves a step on so the confirming code
// is not replayed by the caller.
func (r *rig) enrolTOTP(t *testing.T, accountID string) (string, []string) {
	t.Helper()
	ctx := context.Background()
	en, err := r.svc.BeginTOTP(ctx, accountID, "")
	if err != nil {
		t.Fatal(err)
	}
	code, _ := totp.GenerateCode(en.Secret, r.clock.Now())
	rc, err := r.svc.ConfirmTOTP(ctx, accountID, code, "", "")
	if err != nil {
		t.Fatalf("confirm: %v", err)
	}
	r.clock.Advance(otp.TOTPPeriod)
	return en.Secret, rc
}
