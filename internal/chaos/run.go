package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loa-hub/loa/internal/fleet"
	"github.com/loa-hub/loa/internal/instance"
)

// Config is one chaos run.
type Config struct {
	// Loa is the loa binary to run.
	Loa string
	// Dir is where the processes' logs go (created; kept after the run).
	Dir string
	// Out receives the schedule, progress lines and the final table.
	Out io.Writer
	// Devices is the broadcast's audience, AlertDevices the alert's
	// (each also has a phone, reached by SMS), Codes how many SMS codes
	// are requested, CodeRate a second.
	Devices, AlertDevices, Codes int
	CodeRate                     float64
	// Notices is how many direct notifications (one SMS each, to phones
	// of their own) an integrating system posts at NoticeRate a second,
	// each with an idempotency key, trying again with the same key after
	// an error or no answer until it is accepted, as a careful client does.
	Notices    int
	NoticeRate float64
	// AlertAt is when the alert is posted, after the approval.
	AlertAt time.Duration
	// Dispatchers is how many dispatcher replicas run; 2 when 0.
	Dispatchers int
	// RedisAOF runs Redis with its append-only file (appendfsync
	// everysec), so a restart keeps its data; without, it comes back
	// empty.
	RedisAOF bool
	// RedisSentinel runs Redis as a master with a replica and three
	// Sentinels; LOA_REDIS_URL names the master through them. FailoverRedis
	// kills the master and the Sentinels promote the replica.
	RedisSentinel bool
	// PostgresStandby runs a synchronous streaming standby beside
	// PostgreSQL; LOA_DATABASE_URL names both hosts with
	// target_session_attrs=read-write. FailoverPostgres crashes the
	// primary and promotes the standby.
	PostgresStandby bool
	// Kafka, when set, is a broker the run uses (under a topic prefix of
	// its own) instead of starting one; the schedule must not restart it.
	Kafka *instance.Kafka
	// Schedule is the faults, in the order of At.
	Schedule []Event
	// Quiet is how long the fakes must see nothing new, once everything
	// arrived, before the run stops and checks (a late repeat would still
	// be counted); 10 s when 0.
	Quiet time.Duration
	// Deadline bounds the wait for everything to arrive, from the end of
	// the last fault; 10 minutes when 0.
	Deadline time.Duration
	// FCMLatency is the FCM fake's answer time.
	FCMLatency time.Duration
	// Progress is the time between progress lines; 5 s when 0.
	Progress time.Duration
	// Env are extra LOA_* variables for Loa's processes (they override
	// the run's own, listed in Defaults).
	Env map[string]string
}

// Defaults are the LOA_* variables a run gives Loa unless Config.Env says
// otherwise: retry tiers that outlast a 60-second provider stall, SMS
// gateway rates that let 2,000 codes and the alert's SMS through in a
// minute, no per-address code limit (every code comes from this one
// address), and no SMS night: a run's direct notifications are due at
// once, whatever the hour in Vietnam (the night holds normal-priority
// SMS until 06:00, which no deadline of a run outlasts).
var Defaults = map[string]string{
	"LOA_SMS_QUIET_HOURS":          "off",
	"LOA_RETRY_TIERS":              "5s,20s,1m,2m",
	"LOA_CODES_PER_IP":             "1000000",
	"LOA_ANONYMOUS_CODES_PER_HOUR": "100000000",
	"LOA_SMS_ESMS_RATE":            "200",
	"LOA_SMS_SPEEDSMS_RATE":        "200",
	"LOA_ARGON2_MEMORY_KIB":        "8192",
	"LOA_ARGON2_TIME":              "1",
	"LOA_LOG_LEVEL":                "info",
	"LOA_SHUTDOWN_TIMEOUT":         "5s",
	"LOA_ALERT_SMS_SEVERITIES":     "Extreme",
}

// Audience prefixes and phone ranges of the run.
const (
	bulkPrefix  = "bulk"
	alertPrefix = "alert"
	bulkArea    = "90"
	alertArea   = "91"
	alertPhones = 20_000_000 // 84920000001…
	bulkPhones  = 30_000_000
)

// codePhone is the phone of the i-th code request (0970000000…): one
// phone a code, so that every code is told apart at the gateway.
func codePhone(i int) string { return fmt.Sprintf("097%07d", i) }

func codePhoneNormal(i int) string { return fmt.Sprintf("8497%07d", i) }

// noticePhone is the phone of the i-th direct notification.
func noticePhone(i int) string { return fmt.Sprintf("096%07d", i) }

func noticePhoneNormal(i int) string { return fmt.Sprintf("8496%07d", i) }

// runner holds one run's state.
type runner struct {
	cfg   Config
	out   io.Writer
	pg    *instance.Postgres // the primary
	redis *instance.Redis    // the server, or the first master
	kafka *instance.Kafka
	fl    *fleet.Fleet
	c     *fleet.Client

	standby   *instance.Postgres
	replica   *instance.Redis
	sentinels []*instance.Redis
	dbURL     string
	redisURL  string

	submitter, approver, ops *official
	apiKey                   string
	broadcastID, alertID     string
	t0                       time.Time

	mu       sync.Mutex
	faults   []FaultRecord
	codes    []codeResult
	notices  []noticeResult
	active   map[string]bool // faults under way, for progress lines
	alertErr error
	doneAt   time.Duration
	// awaited is what the last completeness check still missed.
	awaited string
	// scheduleDone is when the last fault was over.
	scheduleDone time.Time
	codesDone    atomic.Bool
	noticesDone  atomic.Bool
}

// official is a signed-in official who signs in again when the session
// is gone (a Redis without persistence forgets sessions).
type official struct {
	username, unit, roles, phone string
	token                        string
}

// Run performs one chaos run and returns its report. The error is for a
// run that could not be carried out (a service would not start); broken
// promises are in the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Dispatchers == 0 {
		cfg.Dispatchers = 2
	}
	if cfg.Quiet == 0 {
		cfg.Quiet = 10 * time.Second
	}
	if cfg.Deadline == 0 {
		cfg.Deadline = 10 * time.Minute
	}
	if cfg.Progress == 0 {
		cfg.Progress = 5 * time.Second
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.CodeRate <= 0 {
		cfg.CodeRate = 20
	}
	if cfg.NoticeRate <= 0 {
		cfg.NoticeRate = 10
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, out: cfg.Out, active: map[string]bool{}}
	defer r.close()
	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	if err := r.execute(ctx); err != nil {
		return nil, err
	}
	rep, err := r.check(ctx)
	if err != nil {
		return nil, err
	}
	rep.Print(r.out)
	return rep, nil
}

// env is the LOA_* variables Loa's processes get: Defaults, overridden by
// Config.Env.
func (r *runner) env() map[string]string {
	env := map[string]string{}
	for k, v := range Defaults {
		env[k] = v
	}
	for k, v := range r.cfg.Env {
		env[k] = v
	}
	return env
}

func (r *runner) logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.t0.IsZero() {
		fmt.Fprintf(r.out, "T+%-6s ", time.Since(r.t0).Truncate(100*time.Millisecond))
	}
	fmt.Fprintf(r.out, format+"\n", args...)
}

func (r *runner) close() {
	if r.fl != nil {
		r.fl.Close()
	}
	if r.kafka != nil && r.cfg.Kafka == nil {
		r.kafka.Close()
	}
	for _, s := range append([]*instance.Redis{r.redis, r.replica}, r.sentinels...) {
		if s != nil {
			s.Close()
		}
	}
	for _, p := range []*instance.Postgres{r.pg, r.standby} {
		if p != nil {
			p.Close()
		}
	}
}

// startServices starts the run's PostgreSQL (and standby), Redis (or its
// Sentinel set) and Kafka, and sets dbURL and redisURL.
func (r *runner) startServices(ctx context.Context) error {
	cfg := r.cfg
	// The three start side by side: Kafka's broker takes the longest.
	var wg sync.WaitGroup
	var pgErr, redisErr, kafkaErr error
	wg.Add(3)
	go func() { defer wg.Done(); pgErr = r.startPostgres(ctx) }()
	go func() { defer wg.Done(); redisErr = r.startRedis(ctx) }()
	go func() {
		defer wg.Done()
		if r.kafka = cfg.Kafka; r.kafka == nil {
			r.kafka, kafkaErr = instance.StartKafka(ctx, instance.KafkaOptions{})
		}
	}()
	wg.Wait()
	return errors.Join(pgErr, redisErr, kafkaErr)
}

// startPostgres starts PostgreSQL (and its standby) and sets dbURL.
func (r *runner) startPostgres(ctx context.Context) error {
	var err error
	if r.pg, err = instance.StartPostgres(ctx, instance.PostgresOptions{}); err != nil {
		return err
	}
	r.dbURL = r.pg.URL("loa")
	if r.cfg.PostgresStandby {
		if r.standby, err = instance.StartStandby(ctx, r.pg); err != nil {
			return err
		}
		if err := r.pg.SetSynchronousStandby(ctx); err != nil {
			return err
		}
		r.dbURL = fmt.Sprintf("postgres://loa@127.0.0.1:%d,127.0.0.1:%d/loa?sslmode=disable&target_session_attrs=read-write",
			r.pg.Port, r.standby.Port)
	}
	return nil
}

// startRedis starts Redis (or its Sentinel set) and sets redisURL.
func (r *runner) startRedis(ctx context.Context) error {
	cfg := r.cfg
	var err error
	if r.redis, err = instance.StartRedis(ctx, instance.RedisOptions{AOF: cfg.RedisAOF}); err != nil {
		return err
	}
	r.redisURL = r.redis.URL()
	if cfg.RedisSentinel {
		if r.replica, err = instance.StartRedis(ctx, instance.RedisOptions{AOF: cfg.RedisAOF,
			Args: []string{"--replicaof", "127.0.0.1", strconv.Itoa(r.redis.Port)}}); err != nil {
			return err
		}
		var addrs []string
		for range 3 {
			s, err := instance.StartRedis(ctx, instance.RedisOptions{Sentinel: true,
				SentinelMonitor: fmt.Sprintf("%s 127.0.0.1 %d 2", sentinelMaster, r.redis.Port)})
			if err != nil {
				return err
			}
			r.sentinels = append(r.sentinels, s)
			addrs = append(addrs, s.Addr())
		}
		r.redisURL = fmt.Sprintf("redis://%s/0?master_name=%s&addr=%s&addr=%s", addrs[0], sentinelMaster, addrs[1], addrs[2])
	}
	return nil
}

// sentinelMaster is the name the Sentinels know the master by.
const sentinelMaster = "loa"

// setup starts the services and the fleet, seeds the audiences and signs
// the officials in, and drafts and submits the broadcast.
func (r *runner) setup(ctx context.Context) error {
	cfg := r.cfg
	start := time.Now()
	fmt.Fprintf(r.out, "chaos: starting PostgreSQL%s, Redis (%s%s) and Kafka of our own; logs in %s\n", map[bool]string{true: " with a synchronous standby"}[cfg.PostgresStandby],
		persistence(cfg.RedisAOF), map[bool]string{true: ", a replica and three Sentinels"}[cfg.RedisSentinel], cfg.Dir)
	if err := r.startServices(ctx); err != nil {
		return err
	}
	fmt.Fprintf(r.out, "chaos: postgres %s, redis %s, kafka %s (%v)\n", r.dbURL, r.redisURL, r.kafka.Addr(),
		time.Since(start).Round(time.Second))

	env := r.env()
	var prefix string
	if cfg.Kafka != nil {
		prefix = fmt.Sprintf("chaos-%d-", time.Now().UnixNano())
	}
	var err error
	r.fl, err = fleet.Start(ctx, fleet.Options{
		Loa: cfg.Loa, Dir: cfg.Dir, Dispatchers: cfg.Dispatchers,
		DatabaseURL: r.dbURL, RedisURL: r.redisURL, KafkaBrokers: r.kafka.Addr(), TopicPrefix: prefix, Env: env,
	})
	if err != nil {
		return err
	}
	r.c = r.fl.Client()
	go r.fl.Supervise(ctx)
	fmt.Fprintf(r.out, "chaos: loa api %s, %d dispatchers, fakes %s (%v)\n", r.fl.Base, len(r.fl.Dispatchers), r.fl.Control,
		time.Since(start).Round(time.Second))

	if err := r.fl.LoadAreas(ctx, []fleet.Area{{Code: bulkArea, Name: "Tinh Chaos A"}, {Code: alertArea, Name: "Tinh Chaos B"}}); err != nil {
		return err
	}
	if err := r.fl.SeedAudience(ctx, bulkPrefix, cfg.Devices, bulkPhones, bulkArea); err != nil {
		return err
	}
	if err := r.fl.SeedAudience(ctx, alertPrefix, cfg.AlertDevices, alertPhones, alertArea); err != nil {
		return err
	}
	r.submitter = &official{username: "chaos-submitter", unit: "snn", roles: "agency_submitter", phone: "0900000201"}
	r.approver = &official{username: "chaos-approver", unit: fleet.ApprovalUnit, roles: "broadcast_approver", phone: "0900000202"}
	r.ops = &official{username: "chaos-ops", unit: "ttcntt", roles: "ops", phone: "0900000203"}
	for _, o := range []*official{r.submitter, r.approver, r.ops} {
		if o.token, err = r.fl.Official(ctx, o.username, o.unit, o.roles, o.phone); err != nil {
			return err
		}
	}
	if r.apiKey, err = r.fl.APIKey(ctx, "chaos-system", "alerts:issue,ops,notify:direct", "--alert-areas", bulkArea+","+alertArea); err != nil {
		return err
	}
	if cfg.FCMLatency > 0 {
		if err := r.fl.SetFault(ctx, "fcm", map[string]any{"latency": cfg.FCMLatency.String()}); err != nil {
			return err
		}
	}
	var b struct {
		ID string `json:"id"`
	}
	if _, err := r.c.Call(ctx, "POST", "/v1/broadcasts", r.submitter.token, map[string]any{
		"title": "Thông báo thử nghiệm", "body": "Kiểm tra hệ thống thông báo trong điều kiện sự cố.",
		"topic": "general", "audience": map[string]any{"areas": []string{bulkArea}}, "channels": []string{"push"},
		"request_document": map[string]string{"number": "1/CHAOS", "date": time.Now().Format("2006-01-02")},
	}, &b); err != nil {
		return fmt.Errorf("chaos: draft the broadcast: %w", err)
	}
	r.broadcastID = b.ID
	if _, err := r.c.Call(ctx, "POST", "/v1/broadcasts/"+b.ID+"/submit", r.submitter.token, nil, nil); err != nil {
		return fmt.Errorf("chaos: submit the broadcast: %w", err)
	}
	fmt.Fprintf(r.out, "chaos: %d devices in area %s for the broadcast, %d devices and phones in area %s for the alert, %d codes at %.0f/s (setup %v)\n",
		cfg.Devices, bulkArea, cfg.AlertDevices, alertArea, cfg.Codes, cfg.CodeRate, time.Since(start).Round(time.Second))
	printSchedule(r.out, cfg.Schedule)
	return nil
}

func persistence(aof bool) string {
	if aof {
		return "with an append-only file"
	}
	return "without persistence"
}

// call is Client.Call as official o, signing in again once when the API
// says the session is unknown.
func (r *runner) call(ctx context.Context, o *official, method, path string, body, out any) error {
	_, err := r.c.Call(ctx, method, path, o.token, body, out)
	var p *fleet.Problem
	if errors.As(err, &p) && p.Status == 401 {
		tok, serr := r.fl.SignIn(ctx, o.username, o.phone)
		if serr != nil {
			return fmt.Errorf("%w (and signing in again: %v)", err, serr)
		}
		o.token = tok
		_, err = r.c.Call(ctx, method, path, o.token, body, out)
	}
	return err
}

// retry calls f until it succeeds or ctx ends, as a careful client does
// through an outage: a transport error or a 5xx is tried again.
func retry(ctx context.Context, what string, f func() error) error {
	var err error
	for {
		if err = f(); err == nil {
			return nil
		}
		var p *fleet.Problem
		if errors.As(err, &p) && p.Status < 500 {
			return fmt.Errorf("%s: %w", what, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last: %v)", what, ctx.Err(), err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
