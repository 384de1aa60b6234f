package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/api"
	"github.com/loa-hub/loa/internal/connlimit"
	"github.com/loa-hub/loa/internal/quota"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/alert"
	"github.com/loa-hub/loa/producer/direct"
	"github.com/loa-hub/loa/producer/outage"
)

// config is everything read from LOA_* variables. Every variable is in
// docs/configuration.md's table (TestEveryVariableIsDocumented).
type config struct {
	HTTPAddr        string
	KafkaBrokers    []string
	TopicPrefix     string
	Replication     int
	RedisURL        string
	RedisKeyPrefix  string
	DatabaseURL     string
	DataDir         string
	DevAPIKey       string
	LogLevel        slog.Level
	LogFormat       string
	MaxBodyBytes    int64
	ShutdownTimeout time.Duration
	SendTimeout     time.Duration
	DeliveryKeyTTL  time.Duration
	ReportHold      time.Duration
	Senders         map[topics.Lane]int
	Workers         map[topics.Lane]int
	// BulkShare is how many bulk sends may be under way while codes or
	// alerts are in the dispatcher's hands (LOA_BULK_SHARE; 0: no limit).
	BulkShare int
	// RedisConns sizes the process's Redis pool (LOA_REDIS_CONNS; 0: the
	// client's default, ten a CPU). Under load a connection stays taken
	// while its goroutine waits for a CPU after Redis answered, so the API
	// issuing hundreds of codes a second on two cores needs more than the
	// default twenty.
	RedisConns int
	// DBUrgentConns and RedisUrgentConns size the dispatcher's pools of
	// connections only codes and alerts use (0: they share the others).
	DBUrgentConns    int
	RedisUrgentConns int
	// DispatcherLanes are the lanes `loa dispatcher` consumes
	// (LOA_DISPATCHER_LANES; nil: all), and DispatcherLedger whether it
	// also runs the ledger, the held delivery reports and the dead-letter
	// consumer (LOA_DISPATCHER_LEDGER).
	DispatcherLanes  []topics.Lane
	DispatcherLedger bool
	// UrgentReader reads the urgent lanes (otp, alert, direct) through
	// kafka-go's Reader, a fetch a partition, instead of the one fetch a
	// broker (LOA_DISPATCHER_URGENT_FETCH=reader; default one).
	UrgentReader bool
	// CodeAttemptRowFirst commits a code's attempt in PostgreSQL before
	// its provider call instead of recording it in its Redis claim first
	// (LOA_CODE_ATTEMPT_FIRST=postgres; default redis).
	CodeAttemptRowFirst bool
	// Nice is the least nice value the process runs at (LOA_NICE; applied
	// by main).
	Nice           int
	OutboxCapacity int
	RetryTiers     []time.Duration
	// SMSNight is the province's night without non-urgent SMS
	// (LOA_SMS_QUIET_HOURS); nil when off.
	SMSNight *accounts.QuietHours
	// SMSNightSet says LOA_SMS_QUIET_HOURS was given: loa dev applies
	// the rule only then.
	SMSNightSet    bool
	MetricsAddr    string
	TrustedProxies api.TrustedProxies
	// HTTPConns bounds the API port's open connections, in all and per
	// client address (LOA_HTTP_MAX_CONNS, LOA_HTTP_CONNS_PER_ADDR).
	HTTPConns connlimit.Config
	// HTTPMaxHeaderBytes bounds a request's headers on the API port
	// (LOA_HTTP_MAX_HEADER_BYTES; Go's default was 1 MiB a connection).
	HTTPMaxHeaderBytes int
	// AuditRetentionDays is how many days `loa admin audit purge` keeps
	// by default.
	AuditRetentionDays int
	// Operator names who runs a `loa admin` command in the audit log
	// ($USER), unless --by says otherwise.
	Operator  string
	Providers providerConfig
	Accounts  accountsConfig
	Alerts    alert.Config
	Outages   outage.Config
	Direct    direct.Config
	// PublicReads bounds the anonymous reads of the public routes per
	// client address (LOA_PUBLIC_READS_LIMIT, LOA_PUBLIC_READS_WINDOW).
	PublicReads quota.Config
	// PublicReadsInFlight bounds one address's anonymous public reads in
	// progress at once in a process (LOA_PUBLIC_READS_INFLIGHT).
	PublicReadsInFlight int
	// KeyNotifications bounds POST /v1/notifications per API key
	// (LOA_KEY_NOTIFICATIONS_LIMIT, LOA_KEY_NOTIFICATIONS_WINDOW).
	KeyNotifications quota.Config
	Console          consoleConfig
	Feedback         feedbackConfig
	PortalBaseURL    string
	// PublicURL is the API's public address (LOA_PUBLIC_URL), for the
	// links Open311 answers with; see api.Deps.PublicURL.
	PublicURL string
}

// loadConfig reads the environment through getenv, applying defaults, and
// reports every bad value at once.
func loadConfig(getenv func(string) string) (config, error) {
	c := config{
		HTTPAddr:       or(getenv("LOA_HTTP_ADDR"), "127.0.0.1:8080"),
		TopicPrefix:    getenv("LOA_KAFKA_TOPIC_PREFIX"),
		RedisURL:       getenv("LOA_REDIS_URL"),
		RedisKeyPrefix: or(getenv("LOA_REDIS_KEY_PREFIX"), "loa:"),
		DatabaseURL:    getenv("LOA_DATABASE_URL"),
		DataDir:        or(getenv("LOA_DATA_DIR"), "./data"),
		DevAPIKey:      or(getenv("LOA_DEV_API_KEY"), "loa-dev-key"),
		LogFormat:      or(getenv("LOA_LOG_FORMAT"), "text"),
		Workers:        map[topics.Lane]int{},
		Senders:        map[topics.Lane]int{},
	}
	var errs []error
	if b := getenv("LOA_KAFKA_BROKERS"); b != "" {
		for _, s := range strings.Split(b, ",") {
			if s = strings.TrimSpace(s); s != "" {
				c.KafkaBrokers = append(c.KafkaBrokers, s)
			}
		}
	}
	c.Replication = intVar(getenv, "LOA_KAFKA_REPLICATION", 1, 1, 7, &errs)
	c.Feedback = loadFeedbackConfig(getenv, &errs)
	c.PortalBaseURL = strings.TrimRight(getenv("LOA_PORTAL_BASE_URL"), "/")
	c.PublicURL = publicURLVar(getenv, "LOA_PUBLIC_URL", &errs)
	c.MaxBodyBytes = int64(intVar(getenv, "LOA_MAX_BODY_BYTES", 64<<10, 1024, 16<<20, &errs))
	c.HTTPConns.Max = intVar(getenv, "LOA_HTTP_MAX_CONNS", 10_000, 0, 1_000_000, &errs)
	c.HTTPConns.PerAddr = intVar(getenv, "LOA_HTTP_CONNS_PER_ADDR", 256, 0, 1_000_000, &errs)
	c.HTTPMaxHeaderBytes = intVar(getenv, "LOA_HTTP_MAX_HEADER_BYTES", 32<<10, 4<<10, 1<<20, &errs)
	c.OutboxCapacity = intVar(getenv, "LOA_OUTBOX_CAPACITY", 10000, 10, 10_000_000, &errs)
	c.ShutdownTimeout = durVar(getenv, "LOA_SHUTDOWN_TIMEOUT", 10*time.Second, &errs)
	c.SendTimeout = durVar(getenv, "LOA_SEND_TIMEOUT", 10*time.Second, &errs)
	c.DeliveryKeyTTL = durVar(getenv, "LOA_DELIVERY_KEY_TTL", 72*time.Hour, &errs)
	c.ReportHold = durVar(getenv, "LOA_DELIVERY_REPORT_HOLD", 24*time.Hour, &errs)
	c.BulkShare = intVar(getenv, "LOA_BULK_SHARE", 8, 0, 100000, &errs)
	c.RedisConns = intVar(getenv, "LOA_REDIS_CONNS", 64, 0, 1000, &errs)
	c.DBUrgentConns = intVar(getenv, "LOA_DB_URGENT_CONNS", 4, 0, 100, &errs)
	c.RedisUrgentConns = intVar(getenv, "LOA_REDIS_URGENT_CONNS", 64, 0, 1000, &errs)
	c.DispatcherLanes = lanesVar(getenv, "LOA_DISPATCHER_LANES", &errs)
	c.DispatcherLedger = boolVar(getenv, "LOA_DISPATCHER_LEDGER", true, &errs)
	switch v := strings.ToLower(strings.TrimSpace(getenv("LOA_DISPATCHER_URGENT_FETCH"))); v {
	case "", "one":
	case "reader":
		c.UrgentReader = true
	default:
		errs = append(errs, fmt.Errorf("LOA_DISPATCHER_URGENT_FETCH: %q is neither one nor reader", v))
	}
	switch v := strings.ToLower(strings.TrimSpace(getenv("LOA_CODE_ATTEMPT_FIRST"))); v {
	case "", "redis":
	case "postgres":
		c.CodeAttemptRowFirst = true
	default:
		errs = append(errs, fmt.Errorf("LOA_CODE_ATTEMPT_FIRST: %q is neither redis nor postgres", v))
	}
	c.Nice = intVar(getenv, "LOA_NICE", 0, 0, 19, &errs)
	c.RetryTiers = []time.Duration{5 * time.Second, time.Minute, 10 * time.Minute}
	if v := getenv("LOA_RETRY_TIERS"); v != "" {
		c.RetryTiers = nil
		for _, part := range strings.Split(v, ",") {
			d, err := time.ParseDuration(strings.TrimSpace(part))
			if err != nil || d <= 0 {
				errs = append(errs, fmt.Errorf("LOA_RETRY_TIERS: %q is not a positive duration", part))
				continue
			}
			c.RetryTiers = append(c.RetryTiers, d)
		}
		if len(c.RetryTiers) > topics.MaxRetryTiers {
			errs = append(errs, fmt.Errorf("LOA_RETRY_TIERS: at most %d tiers", topics.MaxRetryTiers))
		}
	}
	c.SMSNightSet = strings.TrimSpace(getenv("LOA_SMS_QUIET_HOURS")) != ""
	night := or(strings.TrimSpace(getenv("LOA_SMS_QUIET_HOURS")), "22:00-06:00")
	if !strings.EqualFold(night, "off") {
		q, err := accounts.ParseQuietHours(night)
		if err != nil {
			errs = append(errs, fmt.Errorf("LOA_SMS_QUIET_HOURS: %w (or off)", err))
		}
		c.SMSNight = &q
	}
	c.MetricsAddr = getenv("LOA_METRICS_ADDR")
	if v := getenv("LOA_MEMORY_LIMIT"); v != "" { // applied by main (memoryLimit)
		if _, err := parseMemoryLimit(v); err != nil {
			errs = append(errs, err)
		}
	}
	if v := getenv("LOA_GC_PERCENT"); v != "" { // applied by main (gcPercent)
		if _, err := parseGCPercent(v); err != nil {
			errs = append(errs, err)
		}
	}
	if v := getenv("LOA_PROCS"); v != "" { // applied by main (procs)
		if _, err := parseProcs(v); err != nil {
			errs = append(errs, err)
		}
	}
	c.AuditRetentionDays = intVar(getenv, "LOA_AUDIT_RETENTION_DAYS", 365, 1, 100*365, &errs)
	c.Operator = getenv("USER")
	if tp, err := api.ParseTrustedProxies(getenv("LOA_TRUSTED_PROXIES")); err != nil {
		errs = append(errs, fmt.Errorf("LOA_TRUSTED_PROXIES: %w", err))
	} else {
		c.TrustedProxies = tp
	}
	if getenv("LOA_CLIENT_IP_HEADER") != "" {
		// Believing a header from anyone let a client choose its own
		// address; the proxies that may set it are named instead.
		errs = append(errs, errors.New("LOA_CLIENT_IP_HEADER is no longer read: name the proxies whose X-Forwarded-For is believed in LOA_TRUSTED_PROXIES"))
	}
	c.Providers = loadProviders(getenv, &errs)
	c.Providers.CallTimeout = c.SendTimeout
	c.Accounts = loadAccountsConfig(getenv, &errs)
	c.Alerts = loadAlertConfig(getenv, &errs)
	c.Outages = loadOutageConfig(getenv, &errs)
	c.Direct = direct.Config{
		MaxSMSSegments: intVar(getenv, "LOA_DIRECT_SMS_MAX_SEGMENTS", direct.DefaultConfig().MaxSMSSegments, 1, 255, &errs),
		FoldSMS:        slices.Contains(c.Providers.SMSFoldKinds, producer.KindDirect),
	}
	c.PublicReads = quota.DefaultConfig()
	c.PublicReads.Limit = intVar(getenv, "LOA_PUBLIC_READS_LIMIT", c.PublicReads.Limit, 0, 1_000_000, &errs)
	c.PublicReads.Window = durVar(getenv, "LOA_PUBLIC_READS_WINDOW", c.PublicReads.Window, &errs)
	c.PublicReadsInFlight = intVar(getenv, "LOA_PUBLIC_READS_INFLIGHT", 16, 0, 100_000, &errs)
	if err := c.PublicReads.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("LOA_PUBLIC_READS_LIMIT / LOA_PUBLIC_READS_WINDOW: %w", err))
	}
	c.KeyNotifications = quota.DefaultConfig()
	c.KeyNotifications.Limit = intVar(getenv, "LOA_KEY_NOTIFICATIONS_LIMIT", 3000, 0, 10_000_000, &errs)
	c.KeyNotifications.Window = durVar(getenv, "LOA_KEY_NOTIFICATIONS_WINDOW", c.KeyNotifications.Window, &errs)
	c.KeyNotifications.MaxLocal = 10_000
	if err := c.KeyNotifications.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("LOA_KEY_NOTIFICATIONS_LIMIT / LOA_KEY_NOTIFICATIONS_WINDOW: %w", err))
	}
	c.Console = loadConsoleConfig(getenv, &errs)
	for _, l := range topics.Lanes {
		name := "LOA_WORKERS_" + strings.ToUpper(string(l))
		if getenv(name) != "" {
			c.Workers[l] = intVar(getenv, name, 1, 1, 100000, &errs)
		}
		name = "LOA_SENDERS_" + strings.ToUpper(string(l))
		if getenv(name) != "" {
			c.Senders[l] = intVar(getenv, name, 1, 1, 100000, &errs)
		}
	}
	switch strings.ToLower(getenv("LOA_LOG_LEVEL")) {
	case "", "info":
		c.LogLevel = slog.LevelInfo
	case "debug":
		c.LogLevel = slog.LevelDebug
	case "warn":
		c.LogLevel = slog.LevelWarn
	case "error":
		c.LogLevel = slog.LevelError
	default:
		errs = append(errs, fmt.Errorf("LOA_LOG_LEVEL: %q is not debug, info, warn or error", getenv("LOA_LOG_LEVEL")))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("LOA_LOG_FORMAT: %q is not text or json", c.LogFormat))
	}
	return c, errors.Join(errs...)
}

// requireReal checks that the real services are named, for the commands
// that do not embed them.
func (c config) requireReal(cmd string, kafka, redis, db bool) error {
	var errs []error
	if kafka && len(c.KafkaBrokers) == 0 {
		errs = append(errs, errors.New("LOA_KAFKA_BROKERS is not set"))
	}
	if redis && c.RedisURL == "" {
		errs = append(errs, errors.New("LOA_REDIS_URL is not set"))
	}
	if db && c.DatabaseURL == "" {
		errs = append(errs, errors.New("LOA_DATABASE_URL is not set"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("loa %s runs on real services (or use `loa dev`): %w", cmd, errors.Join(errs...))
	}
	return nil
}

func (c config) logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func intVar(getenv func(string) string, name string, def, lo, hi int, errs *[]error) int {
	s := getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		*errs = append(*errs, fmt.Errorf("%s: %q is not a whole number from %d to %d", name, s, lo, hi))
		return def
	}
	return n
}

// publicURLVar reads a public base address: an absolute http or https
// URL with a host, no credentials, query or fragment; returned without a
// trailing slash ("" when unset).
func publicURLVar(getenv func(string) string, name string, errs *[]error) string {
	s := strings.TrimRight(strings.TrimSpace(getenv(name)), "/")
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" ||
		strings.ContainsAny(s, " \t\r\n\"'<>") {
		*errs = append(*errs, fmt.Errorf("%s: %q is not a public address such as https://loa.quangnam.gov.vn (http or https, a host, no query)", name, s))
		return ""
	}
	return s
}

// lanesVar reads a comma-separated list of lanes; nil when unset.
func lanesVar(getenv func(string) string, name string, errs *[]error) []topics.Lane {
	s := strings.TrimSpace(getenv(name))
	if s == "" {
		return nil
	}
	var known []string
	for _, l := range topics.Lanes {
		known = append(known, string(l))
	}
	var lanes []topics.Lane
	seen := map[topics.Lane]bool{}
	for _, part := range strings.Split(s, ",") {
		l := topics.Lane(strings.ToLower(strings.TrimSpace(part)))
		switch {
		case l == "":
			*errs = append(*errs, fmt.Errorf("%s: %q has an empty lane; want lanes from %s, comma-separated", name, s, strings.Join(known, ", ")))
			return nil
		case !l.Valid():
			*errs = append(*errs, fmt.Errorf("%s: %q is not a lane; the lanes are %s", name, strings.TrimSpace(part), strings.Join(known, ", ")))
			return nil
		case seen[l]:
			*errs = append(*errs, fmt.Errorf("%s: lane %s is named twice", name, l))
			return nil
		}
		seen[l] = true
		lanes = append(lanes, l)
	}
	return lanes
}

// boolVar reads on/off (also true/false, 1/0, yes/no).
func boolVar(getenv func(string) string, name string, def bool, errs *[]error) bool {
	switch s := strings.ToLower(strings.TrimSpace(getenv(name))); s {
	case "":
		return def
	case "on", "true", "1", "yes":
		return true
	case "off", "false", "0", "no":
		return false
	default:
		*errs = append(*errs, fmt.Errorf("%s: %q is not on or off", name, getenv(name)))
		return def
	}
}

func durVar(getenv func(string) string, name string, def time.Duration, errs *[]error) time.Duration {
	s := getenv(name)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		*errs = append(*errs, fmt.Errorf("%s: %q is not a positive duration such as 10s or 5m", name, s))
		return def
	}
	return d
}
