package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kfake"
	"golang.org/x/sync/errgroup"

	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/api"
	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/channels/sandbox"
	"github.com/loa-hub/loa/dispatcher"
	"github.com/loa-hub/loa/internal/kafkaadmin"
	"github.com/loa-hub/loa/internal/metrics"
	"github.com/loa-hub/loa/internal/phone"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/alert"
	"github.com/loa-hub/loa/producer/direct"
	"github.com/loa-hub/loa/producer/kafkapub"
	"github.com/loa-hub/loa/producer/outage"
)

const usage = `loa — notification and one-time-code hub

Usage:
  loa dev                     everything in one process on embedded defaults
  loa api                     the HTTP API (real Kafka, Redis, PostgreSQL)
  loa dispatcher              the lane consumers and the delivery ledger
  loa migrate                 create the database schema and the Kafka topics
  loa admin apikey create --name NAME --scopes SCOPE[,SCOPE…]
  loa admin apikey list | revoke ID
  loa admin audit list [--actor A] [--target T] [--route R] [--since T] [--until T]
  loa admin audit purge [--older-than DAYS]
  loa admin official create --username U --full-name NAME --phone P --unit UNIT --roles ROLE[,ROLE…] [--password-file F]
  loa admin areas load FILE   load an areas CSV (see README.md, "Areas")
  loa admin feedback categories load FILE   (code,name,name_en,group,agency,handling_days)
  loa admin feedback route CATEGORY AREA AGENCY
  loa admin deadletters list [--limit N]
  loa admin deadletters replay [--by NAME] ID
  loa help

Configuration comes from LOA_* environment variables (see README.md).
The provider fakes for loa dev are a command of their own: go run ./cmd/loa-fakes.
`

// run is the whole program: it parses args, wires the parts and runs
// until ctx ends. Tests call it on port 0.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) < 2 {
		fmt.Fprint(stdout, usage)
		return errors.New("no command given")
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	log := cfg.logger(stdout)
	switch cmd := args[1]; cmd {
	case "dev":
		return runDev(ctx, cfg, log, stdout)
	case "api":
		if err := cfg.requireReal(cmd, true, true, true); err != nil {
			return err
		}
		return serve(ctx, cfg, log, stdout, roleAPI)
	case "dispatcher":
		if err := cfg.requireReal(cmd, true, true, true); err != nil {
			return err
		}
		return serve(ctx, cfg, log, stdout, roleDispatcher)
	case "migrate":
		if err := cfg.requireReal(cmd, true, false, true); err != nil {
			return err
		}
		return migrate(ctx, cfg, log)
	case "admin":
		if len(args) > 2 && args[2] == "areas" {
			return runAdminAreas(ctx, cfg, args[3:], stdout)
		}
		if len(args) > 2 && args[2] == "feedback" {
			return runAdminFeedback(ctx, cfg, args[3:], stdout)
		}
		if len(args) > 2 && args[2] == "deadletters" {
			return runAdminDeadLetters(ctx, cfg, args[3:], stdout)
		}
		if len(args) > 2 && args[2] == "apikey" {
			return runAdminAPIKey(ctx, cfg, args[3:], stdout)
		}
		if len(args) > 2 && args[2] == "audit" {
			return runAdminAudit(ctx, cfg, args[3:], stdout)
		}
		return runAdmin(ctx, cfg, args[2:], stdout)
	case "fakes":
		return errors.New("the provider fakes are a command of their own: go run ./cmd/loa-fakes (make build puts bin/loa-fakes beside bin/loa)")
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stdout, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

type role int

const (
	roleAPI role = 1 << iota
	roleDispatcher
	roleDev = roleAPI | roleDispatcher
)

// services are the connections every role shares.
type services struct {
	store  *sqlstore.DB
	rdb    *redis.Client
	pub    *kafkapub.Publisher
	names  topics.Names
	outbox *sandbox.Outbox
}

func (s *services) close() {
	if s.pub != nil {
		s.pub.Close()
	}
	if s.rdb != nil {
		s.rdb.Close()
	}
	if s.store != nil {
		s.store.Close()
	}
}

func connect(ctx context.Context, cfg config) (*services, error) {
	s := &services{names: topics.Names{Prefix: cfg.TopicPrefix}}
	var err error
	if s.store, err = sqlstore.Open(ctx, cfg.DatabaseURL); err != nil {
		return nil, err
	}
	var where string
	if s.rdb, where, err = openRedis(cfg.RedisURL); err != nil {
		s.close()
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.rdb.Ping(pctx).Err(); err != nil {
		s.close()
		return nil, fmt.Errorf("redis at %s: %w", where, err)
	}
	if err := kafkaadmin.Ping(pctx, cfg.KafkaBrokers); err != nil {
		s.close()
		return nil, err
	}
	if s.pub, err = kafkapub.NewPublisher(kafkapub.Config{Brokers: cfg.KafkaBrokers, Names: s.names}); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func migrate(ctx context.Context, cfg config, log *slog.Logger) error {
	db, err := sqlstore.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	log.Info("database schema is current", slog.String("dialect", string(db.Dialect())))
	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := kafkaadmin.Ensure(tctx, cfg.KafkaBrokers, topics.Names{Prefix: cfg.TopicPrefix}, cfg.Replication); err != nil {
		return err
	}
	for _, s := range topics.Specs() {
		log.Info("kafka topic ready", slog.String("topic", cfg.TopicPrefix+s.Name), slog.Int("partitions", s.Partitions),
			slog.Duration("retention", s.Retention))
	}
	return nil
}

// runDev starts the embedded services that are not configured, migrates,
// and serves every role in one process.
func runDev(ctx context.Context, cfg config, log *slog.Logger, stdout io.Writer) error {
	var embedded []string
	if len(cfg.KafkaBrokers) == 0 {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0))
		if err != nil {
			return fmt.Errorf("dev: in-process Kafka: %w", err)
		}
		defer c.Close()
		cfg.KafkaBrokers = c.ListenAddrs()
		embedded = append(embedded, "Kafka")
	}
	if cfg.RedisURL == "" {
		m := miniredis.NewMiniRedis()
		if err := m.Start(); err != nil {
			return fmt.Errorf("dev: in-process Redis: %w", err)
		}
		defer m.Close()
		cfg.RedisURL = "redis://" + m.Addr()
		embedded = append(embedded, "Redis")
	}
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = "sqlite:" + filepath.Join(cfg.DataDir, "loa.db")
		embedded = append(embedded, "SQLite")
	}
	if err := migrate(ctx, cfg, log); err != nil {
		return err
	}
	if len(embedded) > 0 {
		log.Info("dev mode: embedded services", slog.String("embedded", strings.Join(embedded, ", ")),
			slog.String("note", "in-process Kafka and Redis keep their state in memory; it is gone when loa dev stops"))
	}
	return serve(ctx, cfg, log, stdout, roleDev)
}

// serve runs the API and/or the dispatcher until ctx ends, then stops
// them in order: HTTP first, then consumers, then the publisher and the
// stores.
func serve(ctx context.Context, cfg config, log *slog.Logger, stdout io.Writer, r role) error {
	s, err := connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.close()

	m := metrics.New()
	var (
		chans     map[channels.Name]channels.Channel
		providers []runner
	)
	if r&roleDispatcher != 0 {
		s.outbox = sandbox.NewOutbox(cfg.OutboxCapacity)
		if r == roleDev {
			s.outbox.OnAdd(func(e sandbox.Entry) {
				to, body := e.To, e.Body
				if e.Channel == channels.SMS {
					to = phone.Mask(to)
				}
				if strings.HasPrefix(e.NotificationID, "code-") {
					// Codes are never logged, not even in dev; the dev outbox
					// endpoint shows them to whoever holds the dev key.
					body = "(a one-time code: read it at /v1/dev/outbox)"
				}
				log.Info("dev outbox", slog.String("channel", string(e.Channel)), slog.String("to", to),
					slog.String("notification_id", e.NotificationID), slog.String("title", e.Title), slog.String("body", body))
			})
		}
		var err error
		reports := smppReports{reports: dispatcher.NewReports(s.store, s.pub, s.names, log.With(slog.String("component", "reports"))), log: log}
		if chans, providers, err = buildChannels(ctx, cfg.Providers, s.rdb, cfg.RedisKeyPrefix, s.outbox, reports, log, m); err != nil {
			return err
		}
	}
	if r == roleDev {
		if err := seedDemo(ctx, s.store); err != nil {
			return err
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	var (
		httpSrv *http.Server
		acc     *accounts.Service
	)
	if r&roleAPI != 0 {
		svc := direct.New(s.store, s.pub, log)
		// Lag, dead letters and scheduled items: shared state every API
		// replica reports alike (dashboards take the max).
		ops := m.RegisterOps(opsSource(s.store, kafkaadmin.NewLagReader(cfg.KafkaBrokers), s.names))
		history := m.NewHistory(ops, cfg.Console.MetricsURLs, 0)
		deps := api.Deps{
			Store: s.store, Direct: svc, Log: log, MaxBodyBytes: cfg.MaxBodyBytes, Metrics: m.Handler(),
			Ready: []api.Check{
				{Name: "database", Check: s.store.Ping},
				{Name: "redis", Check: func(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }},
				{Name: "kafka", Check: func(ctx context.Context) error { return kafkaadmin.Ping(ctx, cfg.KafkaBrokers) }},
			},
		}
		var err error
		acc, err = buildAccounts(cfg, s.store, s.rdb, s.pub, log, r == roleDev)
		if err != nil {
			return fmt.Errorf("accounts: %w", err)
		}
		deps.Accounts, deps.TrustedProxies = acc, cfg.TrustedProxies
		alertCfg := cfg.Alerts
		if k, err := loadKeys(cfg, r == roleDev); err == nil {
			alertCfg.AckKey = k.alertAck
		}
		if deps.Alerts, err = alert.New(alertCfg, s.store, s.pub, log); err != nil {
			return fmt.Errorf("alerts: %w", err)
		}
		if deps.Broadcasts, err = buildBroadcasts(cfg, s.store, s.pub, acc, log); err != nil {
			return fmt.Errorf("broadcasts: %w", err)
		}
		deps.Outages = outage.New(s.store, s.pub, cfg.Outages, log)
		if deps.Blobs, err = buildBlobs(ctx, cfg, r == roleDev); err != nil {
			return fmt.Errorf("blob store: %w", err)
		}
		if deps.Feedback, err = buildFeedback(ctx, cfg, s.store, acc, log, r == roleDev); err != nil {
			return fmt.Errorf("feedback: %w", err)
		}
		if deps.Portal, err = buildPortal(ctx, cfg, s.store, acc, log, r == roleDev); err != nil {
			return fmt.Errorf("portal: %w", err)
		}
		if r == roleDev {
			// Demo officials and a demo audience, so the broadcast flow can
			// be tried at once (after seedDemo: the areas exist by now).
			if err := seedDemoOfficials(ctx, cfg, s.store, acc); err != nil {
				return fmt.Errorf("demo officials: %w", err)
			}
			if err := seedDemoAudience(ctx, s.store, log); err != nil {
				return err
			}
		}
		if r == roleDev {
			deps.Outbox, deps.DevAPIKey = s.outbox, cfg.DevAPIKey
		}
		// Operators' dead letters, and SMS delivery reports (a provider
		// without LOA_SMS_<NAME>_CALLBACK_TOKEN takes none).
		deps.DeadLetters = dispatcher.NewDeadLetters(s.store, s.pub)
		deps.Reports = dispatcher.NewReports(s.store, s.pub, s.names, log.With(slog.String("component", "reports")))
		deps.SMSCallbacks = map[string]api.CallbackConfig{}
		for _, p := range cfg.Providers.SMS {
			if p.Type == "smpp" {
				continue // receipts come over the SMPP session
			}
			cb := api.CallbackConfig{Type: p.Type, Token: p.CallbackToken}
			if err := cb.Validate(); err != nil {
				return fmt.Errorf("LOA_SMS_%s_CALLBACK_TOKEN: %w", strings.ToUpper(p.Name), err)
			}
			deps.SMSCallbacks[p.Name] = cb
		}
		deps.Overview, deps.SMSPrices, deps.SMSCurrency = history.Overview, cfg.Console.Prices, cfg.Console.Currency
		handler, err := withConsole(cfg, api.NewHandler(deps), s.rdb, log, r == roleDev)
		if err != nil {
			return fmt.Errorf("console: %w", err)
		}
		ln, err := net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("listen on LOA_HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
		}
		httpSrv = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second}
		base := "http://" + ln.Addr().String()
		log.Info("loa: listening on " + base)
		if r == roleDev {
			printDevBanner(stdout, base, cfg)
		}
		g.Go(func() error {
			if err := httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
		// One outbox for every producer: scheduled broadcasts, outage
		// reminders and alert escalations when due, what the dispatcher
		// held for quiet hours, direct notifications and alerts whose own
		// publish failed. Every API replica polls it; the store's claiming
		// publishes each item once.
		outbox := producer.NewOutbox(s.store, s.pub, log.With("component", "outbox"))
		outbox.Prepare(producer.RecordAlert, deps.Alerts.BeforePublish)
		g.Go(func() error { return outbox.Run(gctx) })
		g.Go(func() error { return history.Run(gctx) })
		g.Go(func() error { return acc.RunPendingGC(gctx, time.Minute) })
	}

	// The dispatcher gets its own context so that it stops after the HTTP
	// server, not with it; SMPP sessions stop (unbind) after the dispatcher.
	dispCtx, stopDispatcher := context.WithCancel(context.WithoutCancel(ctx))
	defer stopDispatcher()
	provCtx, stopProviders := context.WithCancel(context.WithoutCancel(ctx))
	defer stopProviders()
	var provWG sync.WaitGroup
	for _, p := range providers {
		provWG.Add(1)
		go func() { defer provWG.Done(); _ = p.Run(provCtx) }()
	}
	var dispDone chan error
	if r&roleDispatcher != 0 {
		dcfg := dispatcher.DefaultConfig()
		dcfg.Brokers, dcfg.Names, dcfg.RedisKeyPrefix = cfg.KafkaBrokers, s.names, cfg.RedisKeyPrefix
		dcfg.ShutdownTimeout, dcfg.SentTTL = cfg.ShutdownTimeout, cfg.DeliveryKeyTTL
		dcfg.RetryTiers, dcfg.Metrics, dcfg.ReportHold = cfg.RetryTiers, m, cfg.ReportHold
		// The province's night rule holds SMS for hours: loa dev, where
		// people try Loa at any hour, applies it only when asked.
		if r != roleDev || cfg.SMSNightSet {
			dcfg.SMSNight = cfg.SMSNight
		}
		for l, n := range cfg.Workers {
			dcfg.Workers[l] = n
		}
		for l, n := range cfg.Senders {
			dcfg.Senders[l] = n
		}
		// With the secret, alert pushes carry each device's ack token; a
		// dispatcher without LOA_SECRET_KEY_FILE sends them without, and
		// apps acknowledge with a session only.
		if cfg.Accounts.SecretKeyFile != "" || r == roleDev {
			k, err := loadKeys(cfg, r == roleDev)
			if err != nil {
				return err
			}
			dcfg.AckKey = k.alertAck
		}
		d, err := dispatcher.New(dcfg, s.store, s.rdb, s.pub, chans, log)
		if err != nil {
			return err
		}
		dispDone = make(chan error, 1)
		go func() { dispDone <- d.Run(dispCtx) }()
		if r == roleDispatcher && cfg.MetricsAddr != "" {
			ms, err := serveMetrics(cfg.MetricsAddr, m, log)
			if err != nil {
				return err
			}
			defer ms.Close()
		}
	}

	var dispErr error
	select {
	case <-gctx.Done():
	case dispErr = <-dispDone: // nil channel when there is no dispatcher
		dispDone = nil
		if dispErr == nil {
			dispErr = errors.New("dispatcher stopped unexpectedly")
		}
	}
	log.Info("loa: shutting down")
	if httpSrv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		httpSrv.Shutdown(sctx)
		// Codes answered for but not yet handed to Kafka go out before
		// the publisher closes.
		if err := acc.Flush(sctx); err != nil {
			log.Warn("loa: codes still being sent at shutdown", slog.Any("error", err))
		}
		cancel()
	}
	stopDispatcher()
	if dispDone != nil {
		dispErr = <-dispDone
	}
	stopProviders()
	provWG.Wait()
	cancel()
	gerr := g.Wait()
	log.Info("loa: stopped")
	return errors.Join(gerr, dispErr)
}

func printDevBanner(w io.Writer, base string, cfg config) {
	fmt.Fprintf(w, `
  Loa dev is running.
    API           %[1]s
    health        %[1]s/readyz
    API document  %[1]s/v1/openapi.json
    dev outbox    %[1]s/v1/dev/outbox   (what the sandbox channels would have sent)
    API key       %[2]s   (send as: Authorization: Bearer %[2]s)
  Try:
    curl -s -H 'Authorization: Bearer %[2]s' -H 'Content-Type: application/json' \
      -d '{"to":{"phone":"0912345678"},"title":"Thông báo","body":"Nội dung","channels":["sms"],"ttl_seconds":300,"idempotency_key":"abc-1"}' \
      %[1]s/v1/notifications
    curl -s -H 'Authorization: Bearer %[2]s' %[1]s/v1/dev/outbox
  Demo officials (dev only; password %[3]s, TOTP secret %[4]s, active):
    demo-submitter (agency_submitter), demo-approver (broadcast_approver), demo-ops (ops),
    demo-issuer (alert_issuer), demo-handler (feedback_handler), demo-coordinator (feedback_coordinator),
    demo-editor (editor), demo-chief-editor (chief_editor), demo-admin (admin)
    sign in: POST %[1]s/v1/sessions {"username":"demo-submitter","password":"%[3]s","otp":"<code>"}
    (a code: oathtool --totp -b %[4]s)  Broadcasts: see the README, "Broadcasts".
  Ctrl-C stops it.

`, base, cfg.DevAPIKey, demoPassword, demoTOTPSecret)
}

// seedDemo adds the demo citizen account used by the README's examples,
// once.
func seedDemo(ctx context.Context, store *sqlstore.DB) error {
	if err := seedAreas(ctx, store); err != nil {
		return err
	}
	ok, err := store.AccountExists(ctx, "demo-citizen")
	if err != nil || ok {
		return err
	}
	return store.SeedAccount(ctx, "demo-citizen", "citizen", "84912345678", "demo@example.vn",
		[]string{"demo-device-token-1"}, time.Now())
}

// runAdmin holds operator commands.
func runAdmin(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	if len(args) >= 2 && args[0] == "official" && args[1] == "create" {
		return adminOfficialCreate(ctx, cfg, args[2:], stdout)
	}
	return errors.New("usage: loa admin official create --username U --full-name N --phone P --unit U --roles R[,R…] [--password-file F]\n" +
		"       loa admin apikey create|list|revoke …\n       loa admin audit list|purge …\n       loa admin deadletters list|replay …\n       loa admin areas load FILE")
}

// serveMetrics serves /metrics and /healthz for a process without the API
// (a dispatcher replica), on addr.
func serveMetrics(addr string, m *metrics.Metrics, log *slog.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on LOA_METRICS_ADDR %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"status":"ok"}`)) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	log.Info("metrics on http://" + ln.Addr().String() + "/metrics")
	return srv, nil
}
