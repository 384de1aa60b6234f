package main

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/accounts/oidc"
	accredis "github.com/loa-hub/loa/accounts/redis"
	"github.com/loa-hub/loa/internal/metrics"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/otp"
	"github.com/loa-hub/loa/producer"
)

// accountsConfig is the accounts domain's part of the configuration.
type accountsConfig struct {
	SecretKeyFile      string
	CitizenSessionTTL  time.Duration
	OfficialSessionTTL time.Duration
	OIDCIssuer         string
	OIDCClientID       string
	Topics             []string
	Policy             accounts.PasswordPolicy
	Argon2             accounts.Argon2Params
	HashLimit          accounts.HashLimit
	CodesPerIP         int
	// AnonymousCodesPerHour: LOA_ANONYMOUS_CODES_PER_HOUR (0: no cap).
	AnonymousCodesPerHour int
	PendingTTL            time.Duration
	// CodePublishTimeout bounds handing a code to Kafka
	// (LOA_CODE_PUBLISH_TIMEOUT).
	CodePublishTimeout time.Duration
	// ApprovalUnit is the unit whose broadcast_approver role approves
	// broadcasts and alerts (LOA_APPROVAL_UNIT).
	ApprovalUnit string
}

func loadAccountsConfig(getenv func(string) string, errs *[]error) accountsConfig {
	c := accountsConfig{
		SecretKeyFile: getenv("LOA_SECRET_KEY_FILE"),
		OIDCIssuer:    getenv("LOA_OIDC_ISSUER"),
		OIDCClientID:  getenv("LOA_OIDC_CLIENT_ID"),
		ApprovalUnit:  strings.TrimSpace(getenv("LOA_APPROVAL_UNIT")),
		Topics:        accounts.DefaultTopics,
		Policy:        accounts.DefaultPasswordPolicy(),
		Argon2:        accounts.DefaultArgon2Params(),
	}
	c.CitizenSessionTTL = durVar(getenv, "LOA_SESSION_TTL_CITIZEN", 12*time.Hour, errs)
	c.OfficialSessionTTL = durVar(getenv, "LOA_SESSION_TTL_OFFICIAL", 8*time.Hour, errs)
	c.Policy.MinLength = intVar(getenv, "LOA_PASSWORD_MIN_LENGTH", c.Policy.MinLength, 8, 128, errs)
	c.Policy.History = intVar(getenv, "LOA_PASSWORD_HISTORY", c.Policy.History, 0, 24, errs)
	c.Policy.MaxAge = durVar(getenv, "LOA_PASSWORD_MAX_AGE", c.Policy.MaxAge, errs)
	c.Argon2.Memory = uint32(intVar(getenv, "LOA_ARGON2_MEMORY_KIB", int(c.Argon2.Memory), 8, 1<<20, errs))
	c.Argon2.Time = uint32(intVar(getenv, "LOA_ARGON2_TIME", int(c.Argon2.Time), 1, 64, errs))
	c.HashLimit = accounts.DefaultHashLimit()
	c.HashLimit.Concurrency = intVar(getenv, "LOA_PASSWORD_HASH_CONCURRENCY", c.HashLimit.Concurrency, 1, 64, errs)
	c.HashLimit.Queue = intVar(getenv, "LOA_PASSWORD_HASH_QUEUE", c.HashLimit.Queue, 0, 10_000, errs)
	c.HashLimit.Wait = durVar(getenv, "LOA_PASSWORD_HASH_WAIT", c.HashLimit.Wait, errs)
	c.CodesPerIP = intVar(getenv, "LOA_CODES_PER_IP", 20, 1, 1_000_000, errs)
	c.AnonymousCodesPerHour = intVar(getenv, "LOA_ANONYMOUS_CODES_PER_HOUR", 5000, 0, 100_000_000, errs)
	c.PendingTTL = durVar(getenv, "LOA_REGISTRATION_TTL", 30*time.Minute, errs)
	c.CodePublishTimeout = durVar(getenv, "LOA_CODE_PUBLISH_TIMEOUT", accounts.DefaultCodePublishTimeout, errs)
	if c.CodePublishTimeout <= 0 {
		*errs = append(*errs, errors.New("LOA_CODE_PUBLISH_TIMEOUT must be positive"))
	}
	if v := getenv("LOA_TOPICS"); v != "" {
		c.Topics = nil
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				c.Topics = append(c.Topics, t)
			}
		}
		if len(c.Topics) == 0 {
			*errs = append(*errs, errors.New("LOA_TOPICS: no topic named"))
		}
	}
	if (c.OIDCIssuer == "") != (c.OIDCClientID == "") {
		*errs = append(*errs, errors.New("LOA_OIDC_ISSUER and LOA_OIDC_CLIENT_ID go together: set both or neither"))
	}
	if err := c.Argon2.Validate(); err != nil {
		*errs = append(*errs, fmt.Errorf("LOA_ARGON2_*: %w", err))
	}
	return c
}

// keys are the secrets derived from LOA_SECRET_KEY_FILE with HKDF, one per
// use, so that no key serves two purposes.
type keys struct {
	sealer, smsCodes, recovery []byte
	// alertAck signs and checks the acknowledgement tokens of alert
	// pushes (producer.AckToken); the API and the dispatcher share it.
	alertAck []byte
}

// loadKeys reads the master secret. In dev mode a missing file is created
// under LOA_DATA_DIR; elsewhere LOA_SECRET_KEY_FILE is required.
func loadKeys(cfg config, dev bool) (keys, error) {
	path := cfg.Accounts.SecretKeyFile
	if path == "" {
		if !dev {
			return keys{}, errors.New("LOA_SECRET_KEY_FILE is not set: the API needs a 32-byte secret (e.g. `openssl rand -base64 32 > secret.key`)")
		}
		path = filepath.Join(cfg.DataDir, "secret.key")
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			b := make([]byte, 32)
			rand.Read(b)
			if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
				return keys{}, fmt.Errorf("dev secret key: %w", err)
			}
			if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(b)+"\n"), 0o600); err != nil {
				return keys{}, fmt.Errorf("dev secret key: %w", err)
			}
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return keys{}, fmt.Errorf("LOA_SECRET_KEY_FILE: %w", err)
	}
	master, err := parseKey(raw)
	if err != nil {
		return keys{}, fmt.Errorf("LOA_SECRET_KEY_FILE %s: %w", path, err)
	}
	derive := func(info string) ([]byte, error) { return hkdf.Key(sha256.New, master, nil, "loa "+info, 32) }
	var k keys
	var errs [4]error
	k.sealer, errs[0] = derive("totp sealer")
	k.smsCodes, errs[1] = derive("sms code hmac")
	k.recovery, errs[2] = derive("recovery code hmac")
	k.alertAck, errs[3] = derive("alert ack")
	return k, errors.Join(errs[:]...)
}

// parseKey accepts what otp.LoadSealerKeyFile accepts: 32 raw bytes, 64
// hex characters, or base64 of 32 bytes.
func parseKey(raw []byte) ([]byte, error) {
	if len(raw) == 32 {
		return raw, nil
	}
	text := bytes.TrimSpace(raw)
	if b, err := hex.DecodeString(string(text)); err == nil && len(b) == 32 {
		return b, nil
	}
	if b, err := base64.StdEncoding.DecodeString(string(text)); err == nil && len(b) == 32 {
		return b, nil
	}
	return nil, errors.New("want 32 raw bytes, 64 hex characters or base64 of 32 bytes")
}

// buildAccounts wires the accounts service for the API role.
func buildAccounts(cfg config, store *sqlstore.DB, rdb redis.UniversalClient, pub accounts.Publisher, m *metrics.Metrics, log *slog.Logger, dev bool) (*accounts.Service, error) {
	k, err := loadKeys(cfg, dev)
	if err != nil {
		return nil, err
	}
	sealer, err := otp.NewSealer(k.sealer)
	if err != nil {
		return nil, err
	}
	sms := otp.DefaultSMSConfig()
	sms.Secret, sms.MaxSendsPerIP, sms.KeyPrefix = k.smsCodes, cfg.Accounts.CodesPerIP, cfg.RedisKeyPrefix+sms.KeyPrefix
	codes, err := otp.NewSMSCodes(rdb, sms)
	if err != nil {
		return nil, err
	}
	ac := accounts.DefaultConfig()
	ac.Policy, ac.Topics, ac.RecoveryKey = cfg.Accounts.Policy, cfg.Accounts.Topics, k.recovery
	ac.CitizenSessionTTL, ac.OfficialSessionTTL = cfg.Accounts.CitizenSessionTTL, cfg.Accounts.OfficialSessionTTL
	ac.ApprovalUnit, ac.PendingTTL = cfg.Accounts.ApprovalUnit, cfg.Accounts.PendingTTL
	ac.CodePublishTimeout = cfg.Accounts.CodePublishTimeout
	ac.AnonymousCodesPerHour = cfg.Accounts.AnonymousCodesPerHour
	if ac.ApprovalUnit == "" && dev {
		ac.ApprovalUnit = demoApprovalUnit
	}
	if ac.ApprovalUnit == "" {
		log.Warn("LOA_APPROVAL_UNIT is not set: nobody can approve broadcasts or alerts")
	}
	rs := accredis.New(rdb, cfg.RedisKeyPrefix+accredis.DefaultKeyPrefix)
	d := accounts.Deps{
		Store: store, Sessions: rs, Challenges: rs, Codes: codes, Throttle: rs,
		TOTP:   &otp.TOTPVerifier{Store: store, Redis: rdb, KeyPrefix: cfg.RedisKeyPrefix + otp.DefaultTOTPKeyPrefix},
		Sealer: sealer, Publisher: pub, Hasher: &accounts.Argon2Hasher{Params: cfg.Accounts.Argon2, Limit: cfg.Accounts.HashLimit}, Log: log,
	}
	if b := ac.AnonymousBudget(); b != nil && m != nil {
		d.Metrics = m
		m.RegisterAnonymousBudget(b.Limit, func(ctx context.Context) (int, error) { return codes.BudgetUsed(ctx, *b) })
	}
	if cfg.Accounts.OIDCIssuer != "" {
		v, err := oidc.New(oidc.Config{Issuer: cfg.Accounts.OIDCIssuer, ClientID: cfg.Accounts.OIDCClientID})
		if err != nil {
			return nil, err
		}
		d.OIDC = v
	}
	return accounts.New(ac, d)
}

// demoAreas are administrative units for dev mode beside the embedded
// sample tree of Quảng Nam (internal/areas, three tiers, loaded with
// them): a corner of the two-tier tree since 2025, where Hội An and Tam
// Kỳ are wards of Đà Nẵng, so that both layouts can be tried. The real
// tree is loaded from data (loa admin areas load).
var demoAreas = []accounts.Area{
	{Code: "48", Name: "Thành phố Đà Nẵng", Level: "province"},
	{Code: "20194", Name: "Phường Hội An", Parent: "48", Level: "commune"},
	{Code: "20227", Name: "Phường Tam Kỳ", Parent: "48", Level: "commune"},
}

// offline stands in for the services `loa admin` does not start (Redis,
// Kafka); creating an official needs none of them.
type offline struct{}

var errOffline = errors.New("not available in loa admin")

func (offline) CreateSession(context.Context, string, accounts.Session) error { return errOffline }
func (offline) Session(context.Context, string) (accounts.Session, error) {
	return accounts.Session{}, errOffline
}
func (offline) DeleteSession(context.Context, string) error                { return errOffline }
func (offline) RevokeAccount(context.Context, string, time.Duration) error { return errOffline }
func (offline) PutChallenge(context.Context, string, string, time.Duration) error {
	return errOffline
}
func (offline) Challenge(context.Context, string) (string, error) { return "", errOffline }
func (offline) DeleteChallenge(context.Context, string) error     { return errOffline }
func (offline) IssueWith(context.Context, string, string, string, otp.IssueOptions) (otp.Challenge, string, error) {
	return otp.Challenge{}, "", errOffline
}
func (offline) Verify(context.Context, string, string) (otp.Challenge, error) {
	return otp.Challenge{}, errOffline
}
func (offline) Peek(context.Context, string, string) (otp.Challenge, error) {
	return otp.Challenge{}, errOffline
}
func (offline) Subject(context.Context, string) (string, error)                { return "", errOffline }
func (offline) Wait(context.Context, string, time.Time) (time.Duration, error) { return 0, errOffline }
func (offline) Fail(context.Context, string, time.Time, accounts.Backoff) (time.Duration, error) {
	return 0, errOffline
}
func (offline) Take(context.Context, string, time.Time, accounts.Backoff) (time.Duration, error) {
	return 0, errOffline
}
func (offline) Clear(context.Context, string) error              { return errOffline }
func (offline) Text(string, string) (string, error)              { return "", errOffline }
func (offline) Withdraw(context.Context, string) (bool, error)   { return false, errOffline }
func (offline) Publish(context.Context, producer.Envelope) error { return errOffline }
func (offline) Seal([]byte, []byte) ([]byte, error)              { return nil, errOffline }
func (offline) Open([]byte, []byte) ([]byte, error)              { return nil, errOffline }

type offlineTOTP struct{}

func (offlineTOTP) VerifyFor(context.Context, string, string, string, string) error {
	return errOffline
}

// adminOfficialCreate: loa admin official create --username … --full-name
// … --phone … --unit … --roles … [--password-file F]. Without a password
// file a one-time password is printed; it must be changed at the first
// sign-in.
func adminOfficialCreate(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("official create", flag.ContinueOnError)
	fs.SetOutput(stdout)
	username := fs.String("username", "", "the official's user name (a-z, 0-9, . _ -)")
	fullName := fs.String("full-name", "", "the official's full name")
	phoneNo := fs.String("phone", "", "mobile phone, for pushed and SMS codes")
	email := fs.String("email", "", "e-mail address (optional)")
	unit := fs.String("unit", "", "the official's unit code")
	roles := fs.String("roles", "", "comma-separated roles in the unit: agency_submitter, broadcast_approver, unit_admin, ops, admin")
	pwFile := fs.String("password-file", "", "read the initial password from this file instead of generating a one-time one")
	if err := fs.Parse(args); err != nil {
		return err
	}
	pw := ""
	if *pwFile != "" {
		b, err := os.ReadFile(*pwFile)
		if err != nil {
			return fmt.Errorf("official create: %w", err)
		}
		pw = strings.TrimRight(string(b), "\r\n")
	}
	var rs []accounts.Role
	for _, r := range strings.Split(*roles, ",") {
		if r = strings.TrimSpace(r); r != "" {
			rs = append(rs, accounts.Role(r))
		}
	}
	db, err := openAdminStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	ac := accounts.DefaultConfig()
	ac.Policy, ac.Topics = cfg.Accounts.Policy, cfg.Accounts.Topics
	ac.RecoveryKey = make([]byte, 32) // unused: no factor is enrolled here
	svc, err := accounts.New(ac, accounts.Deps{Store: db, Sessions: offline{}, Challenges: offline{}, Codes: offline{},
		TOTP: offlineTOTP{}, Sealer: offline{}, Publisher: offline{}, Throttle: offline{}, Hasher: &accounts.Argon2Hasher{Params: cfg.Accounts.Argon2, Limit: cfg.Accounts.HashLimit},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	out, err := svc.CreateOfficial(ctx, accounts.Actor{Admin: true, APIKeyID: "loa-admin-cli"}, accounts.NewOfficial{
		Username: *username, FullName: *fullName, Phone: *phoneNo, Email: *email, Unit: *unit, Roles: rs, Password: pw})
	le, _ := errors.AsType[*loa.Error](err)
	if le != nil && le.Code == loa.EInvalid {
		var parts []string
		for _, f := range le.Fields {
			parts = append(parts, "--"+strings.ReplaceAll(strings.ReplaceAll(f.Field, "_", "-"), "password", "password-file")+": "+f.Detail)
		}
		return fmt.Errorf("official create: %s", strings.Join(parts, "; "))
	}
	if errors.Is(err, accounts.ErrTaken) {
		return fmt.Errorf("official create: the %s is taken", le.Field)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "official %s created (id %s, unit %s, roles %s)\n", out.Account.Username, out.Account.ID, out.Account.Unit, *roles)
	if out.OneTimePassword != "" {
		fmt.Fprintf(stdout, "one-time password (shown only now; it must be changed at the first sign-in):\n%s\n", out.OneTimePassword)
	}
	return nil
}

// adminOfficialSSOUnlink forgets the single sign-on identity an official's
// account is bound to (their identity provider account was replaced, so
// its subject changed): their next SSO sign-in, with its second factor,
// binds the new one.
func adminOfficialSSOUnlink(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("official sso-unlink", flag.ContinueOnError)
	fs.SetOutput(stdout)
	by := byFlag(fs, cfg)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: loa admin official sso-unlink [--by NAME] USERNAME")
	}
	db, err := openAdminStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	a, err := db.FindAccount(ctx, accounts.Login{Username: strings.ToLower(fs.Arg(0))})
	if err != nil || a.Kind != accounts.KindOfficial {
		return fmt.Errorf("official sso-unlink: no active official %q", fs.Arg(0))
	}
	l, err := db.SSOLink(ctx, "", "", a.ID)
	if errors.Is(err, accounts.ErrNotFound) {
		fmt.Fprintf(stdout, "%s has no single sign-on identity\n", a.Username)
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := db.UnlinkSSO(ctx, a.ID); err != nil {
		return err
	}
	if err := cliAudit(ctx, db, *by, "loa admin official sso-unlink", "sso.unlink", a.ID, map[string]string{"issuer": l.Issuer, "subject": l.Subject}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: single sign-on identity %s %s forgotten; the next SSO sign-in binds its own\n", a.Username, l.Issuer, l.Subject)
	return nil
}
