package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/api"
	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/channels/sandbox"
	"github.com/loa-hub/loa/dispatcher"
	"github.com/loa-hub/loa/internal/connlimit"
	"github.com/loa-hub/loa/internal/kafkaadmin"
	"github.com/loa-hub/loa/internal/metrics"
	"github.com/loa-hub/loa/internal/phone"
	"github.com/loa-hub/loa/internal/quota"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/alert"
	"github.com/loa-hub/loa/producer/direct"
	"github.com/loa-hub/loa/producer/kafkapub"
	"github.com/loa-hub/loa/producer/outage"
)

// The steps of a shutdown, in the order they run. Each waits for the one
// before it: the HTTP server stops taking requests; the codes it answered
// for reach Kafka; the dispatcher finishes its in-flight sends (through
// the providers' sessions and the publisher); SMPP sessions unbind; the
// API's background loops (outbox poller, metrics history, pending
// registrations' GC) stop; the metrics server of a dispatcher replica
// closes; the publisher, Redis and the store close last.
const (
	stopHTTP = iota
	stopCodes
	stopDispatcher
	stopProviders
	stopLoops
	stopMetrics
	stopConnections
	stopSteps
)

var stopNames = [stopSteps]string{"http", "codes", "dispatcher", "providers", "loops", "metrics", "connections"}

// shutdown is what a process stops, by step. The order is the steps',
// whatever the order in which the parts were started; a part not started
// has no step.
type shutdown [stopSteps]func() error

// run runs every step in order, once, and returns their errors joined.
func (s *shutdown) run(log *slog.Logger) error {
	var errs []error
	for i, f := range s {
		if f == nil {
			continue
		}
		s[i] = nil
		if err := f(); err != nil {
			log.Warn("loa: shutdown: "+stopNames[i], slog.Any("error", err))
			errs = append(errs, fmt.Errorf("%s: %w", stopNames[i], err))
		}
	}
	return errors.Join(errs...)
}

// serve runs the roles in r until ctx ends or a part fails, then stops
// everything in the shutdown order.
func serve(ctx context.Context, cfg config, log *slog.Logger, stdout io.Writer, r role) (err error) {
	s, err := connect(ctx, cfg)
	if err != nil {
		return err
	}
	var (
		down    shutdown
		running bool
	)
	down[stopConnections] = func() error { s.close(); return nil }
	defer func() {
		if running {
			log.Info("loa: shutting down")
		}
		err = errors.Join(err, down.run(log))
		if running {
			log.Info("loa: stopped")
		}
	}()

	m := metrics.New()
	observePublished(s.pub, m)
	registerPool(m, "redis", s.rdb)
	registerSQLPool(m, "postgres", s.store)
	var (
		chans     map[channels.Name]channels.Channel
		providers []runner
	)
	if r&roleDispatcher != 0 {
		if chans, providers, err = buildSending(ctx, cfg, s, m, log, r); err != nil {
			return err
		}
	}
	if r == roleDev {
		if err := seedDemo(ctx, s.store); err != nil {
			return err
		}
	}

	// failed ends the wait below when a part stops on its own.
	failed := make(chan error, 2)
	if r&roleAPI != 0 {
		a, err := buildAPI(ctx, cfg, s, m, log, r)
		if err != nil {
			return err
		}
		if r == roleDev {
			printDevBanner(stdout, a.base, cfg)
		}
		a.start(&down, failed, cfg.ShutdownTimeout, log)
	}
	if len(providers) > 0 {
		// SMPP sessions stop (unbind) after the dispatcher, which sends
		// through them.
		pctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		var wg sync.WaitGroup
		for _, p := range providers {
			wg.Go(func() { _ = p.Run(pctx) })
		}
		down[stopProviders] = func() error { stop(); wg.Wait(); return nil }
	}
	if r&roleDispatcher != 0 {
		d, err := buildDispatcher(cfg, s, chans, m, log, r)
		if err != nil {
			return err
		}
		registerPool(m, "redis_urgent", s.urgentRDB)
		registerSQLPool(m, "postgres_urgent", s.urgentStore)
		// Its own context, so that it stops after the HTTP server, not
		// with it.
		dctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan error, 1)
		go func() { done <- d.Run(dctx) }()
		stopped := make(chan struct{})
		var (
			derr     error
			reported bool // derr went to failed: serve returns it
		)
		go func() {
			derr = <-done
			if reported = dctx.Err() == nil; reported && derr == nil {
				derr = errors.New("dispatcher stopped unexpectedly")
			}
			close(stopped)
			if reported {
				failed <- derr
			}
		}()
		down[stopDispatcher] = func() error {
			stop()
			<-stopped
			if reported {
				return nil
			}
			return derr
		}
	}
	// The metrics' own listener, for Prometheus on the internal network:
	// the API port serves them only to a key with metrics:read.
	if cfg.MetricsAddr != "" {
		ms, err := serveMetrics(cfg.MetricsAddr, m, log)
		if err != nil {
			return err
		}
		down[stopMetrics] = ms.Close
	}

	running = true
	select {
	case <-ctx.Done():
		return nil
	case err := <-failed:
		return err
	}
}

// buildSending builds the channels the dispatcher sends through and the
// providers' long-running parts (SMPP sessions), and the dev outbox.
func buildSending(ctx context.Context, cfg config, s *services, m *metrics.Metrics, log *slog.Logger, r role) (map[channels.Name]channels.Channel, []runner, error) {
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
	rp := dispatcher.NewReports(s.store, s.pub, s.names, log.With(slog.String("component", "reports")))
	rp.ViaLedger = true // applied, or held, by the ledger
	reports := smppReports{reports: rp, log: log}
	return buildChannels(ctx, cfg.Providers, s.rdb, cfg.RedisKeyPrefix, s.outbox, reports, log, m)
}

// apiPart is the API role built and not yet started: its HTTP server on
// its listener, and the loops every API replica runs beside it.
type apiPart struct {
	srv   *http.Server
	ln    net.Listener
	base  string
	acc   *accounts.Service
	loops []func(ctx context.Context) error
}

// buildAPI builds the API role: every producing service, the HTTP
// handler and its listener, the outbox poller, the metrics history and
// the accounts' pending-registration GC.
func buildAPI(ctx context.Context, cfg config, s *services, m *metrics.Metrics, log *slog.Logger, r role) (*apiPart, error) {
	svc := direct.New(cfg.Direct, s.store, s.pub, log)
	// Lag, dead letters and scheduled items: shared state every API
	// replica reports alike (dashboards take the max).
	ops := m.RegisterOps(opsSource(s.store, kafkaadmin.NewLagReader(cfg.KafkaBrokers), s.names))
	history := m.NewHistory(ops, cfg.Console.MetricsURLs, 0)
	deps := api.Deps{
		Store: s.store, Direct: svc, Log: log, MaxBodyBytes: cfg.MaxBodyBytes, Metrics: m.Handler(), Refusals: m,
		Ready: []api.Check{
			{Name: "database", Check: s.store.Ping},
			{Name: "redis", Check: func(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }},
			{Name: "kafka", Check: func(ctx context.Context) error { return kafkaadmin.Ping(ctx, cfg.KafkaBrokers) }},
		},
	}
	acc, err := buildAccounts(cfg, s.store, s.rdb, s.pub, m, log, r == roleDev)
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	deps.Accounts, deps.TrustedProxies = acc, cfg.TrustedProxies
	deps.PublicReadsInFlight = cfg.PublicReadsInFlight
	if cfg.PublicReads.Limit > 0 {
		deps.PublicReads = quota.New(cfg.PublicReads, s.rdb, cfg.RedisKeyPrefix+"publicreads:", m)
	}
	if cfg.KeyNotifications.Limit > 0 {
		deps.KeyNotifications = quota.New(cfg.KeyNotifications, s.rdb, cfg.RedisKeyPrefix+"keynotifications:", m.KeyNotifications())
	}
	deps.PublicURL = cfg.PublicURL
	if deps.PublicURL == "" && r == roleDev {
		deps.PublicURL = "http://" + cfg.HTTPAddr
	}
	alertCfg := cfg.Alerts
	if r == roleDev && alertCfg.Senders == nil {
		// In dev mode the dev key and the demo issuer try any CAP
		// document, whoever its sender.
		alertCfg.Senders = map[string][]string{"apikey:dev": {"*"}, "official:demo-issuer": {"*"}}
	}
	if k, err := loadKeys(cfg, r == roleDev); err == nil {
		alertCfg.AckKey = k.alertAck
	}
	if deps.Alerts, err = alert.New(alertCfg, s.store, s.pub, log); err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	if deps.Broadcasts, err = buildBroadcasts(cfg, s.store, s.pub, acc, log); err != nil {
		return nil, fmt.Errorf("broadcasts: %w", err)
	}
	deps.Outages = outage.New(s.store, s.pub, cfg.Outages, log)
	if deps.Blobs, err = buildBlobs(ctx, cfg, r == roleDev); err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	if deps.Feedback, err = buildFeedback(ctx, cfg, s.store, acc, log, r == roleDev); err != nil {
		return nil, fmt.Errorf("feedback: %w", err)
	}
	if deps.Portal, err = buildPortal(ctx, cfg, s.store, acc, log, r == roleDev); err != nil {
		return nil, fmt.Errorf("portal: %w", err)
	}
	if r == roleDev {
		// Demo officials and a demo audience, so the broadcast flow can
		// be tried at once (after seedDemo: the areas exist by now).
		if err := seedDemoOfficials(ctx, cfg, s.store, acc); err != nil {
			return nil, fmt.Errorf("demo officials: %w", err)
		}
		if err := seedDemoAudience(ctx, s.store, log); err != nil {
			return nil, err
		}
		deps.Outbox, deps.DevAPIKey = s.outbox, cfg.DevAPIKey
	}
	// Operators' dead letters, and SMS delivery reports (a provider
	// without LOA_SMS_<NAME>_CALLBACK_TOKEN takes none).
	deps.DeadLetters = dispatcher.NewDeadLetters(s.store, s.pub)
	reports := dispatcher.NewReports(s.store, s.pub, s.names, log.With(slog.String("component", "reports")))
	reports.ViaLedger = true // applied, or held, by the ledger
	deps.Reports = reports
	deps.SMSCallbacks = map[string]api.CallbackConfig{}
	for _, p := range cfg.Providers.SMS {
		if p.Type == "smpp" {
			continue // receipts come over the SMPP session
		}
		cb := api.CallbackConfig{Type: p.Type, Token: p.CallbackToken}
		if err := cb.Validate(); err != nil {
			return nil, fmt.Errorf("LOA_SMS_%s_CALLBACK_TOKEN: %w", strings.ToUpper(p.Name), err)
		}
		deps.SMSCallbacks[p.Name] = cb
	}
	deps.Overview, deps.SMSPrices, deps.SMSCurrency = history.Overview, cfg.Console.Prices, cfg.Console.Currency
	handler, err := withConsole(cfg, api.NewHandler(deps), s.rdb, log, r == roleDev)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	// One outbox for every producer: scheduled broadcasts, outage
	// reminders and alert escalations when due, what the dispatcher held
	// for quiet hours, direct notifications and alerts whose own publish
	// failed. Every API replica polls it; the store's claiming publishes
	// each item once.
	outbox := producer.NewOutbox(s.store, s.pub, log.With("component", "outbox"))
	outbox.Prepare(producer.RecordAlert, deps.Alerts.BeforePublish)
	tcp, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on LOA_HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	}
	// An idle connection costs 12–22 KiB and a file descriptor: one
	// client opening tens of thousands would use up the process's memory
	// and descriptors, and lock out everyone else. The proxies in front
	// carry many clients, so only Max bounds them: the trusted ones, and
	// every address of a private network (an ingress's pods, a sidecar's
	// loopback), which the shipped manifests do not name as trusted.
	conns := cfg.HTTPConns
	conns.Shared = func(a netip.Addr) bool { return !publicAddr(a) || cfg.TrustedProxies.Trusts(a) }
	ln := connlimit.New(tcp, conns, m)
	a := &apiPart{ln: ln, base: "http://" + ln.Addr().String(), acc: acc,
		// MaxHeaderBytes: a connection holds what headers it has sent
		// until they end (10 s, then again): at Go's default of 1 MiB,
		// one address's 256 connections held 270 MB of the API's heap.
		srv: &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: cfg.HTTPMaxHeaderBytes},
		loops: []func(context.Context) error{outbox.Run, history.Run, func(ctx context.Context) error { return acc.RunPendingGC(ctx, time.Minute) }},
	}
	log.Info("loa: listening on " + a.base)
	return a, nil
}

// sharedAddrSpace is 100.64.0.0/10 (RFC 6598): carriers' NAT and some
// clusters' pods, never a client on the Internet.
var sharedAddrSpace = netip.MustParsePrefix("100.64.0.0/10")

// publicAddr reports whether a can be a client's own address on the
// Internet: not loopback, link-local, private (RFC 1918, fc00::/7) or
// shared address space.
func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsGlobalUnicast() && !a.IsPrivate() && !sharedAddrSpace.Contains(a)
}

// start serves HTTP and runs the loops, and puts their stopping in down:
// the server (given timeout to finish its requests) and the codes it
// answered for first, the loops later. A part that fails is sent on
// failed.
func (a *apiPart) start(down *shutdown, failed chan<- error, timeout time.Duration, log *slog.Logger) {
	ctx, cancel := context.WithCancel(context.Background())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := a.srv.Serve(a.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	for _, loop := range a.loops {
		g.Go(func() error { return loop(gctx) })
	}
	go func() {
		<-gctx.Done()
		if ctx.Err() == nil {
			failed <- errors.New("the API stopped unexpectedly")
		}
	}()
	var sctx context.Context
	var scancel context.CancelFunc
	down[stopHTTP] = func() error {
		sctx, scancel = context.WithTimeout(context.Background(), timeout)
		a.srv.Shutdown(sctx)
		return nil
	}
	down[stopCodes] = func() error {
		defer scancel()
		// Codes answered for but not yet handed to Kafka go out before the
		// publisher closes.
		if err := a.acc.Flush(sctx); err != nil {
			log.Warn("loa: codes still being sent at shutdown", slog.Any("error", err))
		}
		return nil
	}
	down[stopLoops] = func() error { cancel(); return g.Wait() }
}

// buildDispatcher builds the dispatcher role on chans.
func buildDispatcher(cfg config, s *services, chans map[channels.Name]channels.Channel, m *metrics.Metrics, log *slog.Logger, r role) (*dispatcher.Dispatcher, error) {
	dcfg := dispatcher.DefaultConfig()
	dcfg.Brokers, dcfg.Names, dcfg.RedisKeyPrefix = cfg.KafkaBrokers, s.names, cfg.RedisKeyPrefix
	dcfg.ShutdownTimeout, dcfg.SentTTL = cfg.ShutdownTimeout, cfg.DeliveryKeyTTL
	dcfg.RetryTiers, dcfg.Metrics, dcfg.ReportHold = cfg.RetryTiers, m, cfg.ReportHold
	// The province's night rule holds SMS for hours: loa dev, where people
	// try Loa at any hour, applies it only when asked.
	if r != roleDev || cfg.SMSNightSet {
		dcfg.SMSNight = cfg.SMSNight
	}
	for l, n := range cfg.Workers {
		dcfg.Workers[l] = n
	}
	for l, n := range cfg.Senders {
		dcfg.Senders[l] = n
	}
	dcfg.BulkShare = cfg.BulkShare
	dcfg.Lanes, dcfg.Ledger = cfg.DispatcherLanes, cfg.DispatcherLedger
	dcfg.UrgentReader = cfg.UrgentReader
	dcfg.CodeAttemptRowFirst = cfg.CodeAttemptRowFirst
	// The urgent lanes' own connections, where they are consumed.
	if dispatcher.ConsumesUrgent(dcfg.Lanes) {
		if err := s.connectUrgent(context.Background(), cfg); err != nil {
			return nil, err
		}
	}
	if s.urgentStore != nil {
		dcfg.UrgentStore = s.urgentStore
	}
	if s.urgentRDB != nil {
		dcfg.UrgentRedis = s.urgentRDB
	}
	// With the secret, alert pushes carry each device's ack token; a
	// dispatcher without LOA_SECRET_KEY_FILE sends them without, and apps
	// acknowledge with a session only.
	if cfg.Accounts.SecretKeyFile != "" || r == roleDev {
		k, err := loadKeys(cfg, r == roleDev)
		if err != nil {
			return nil, err
		}
		dcfg.AckKey = k.alertAck
	}
	return dispatcher.New(dcfg, s.store, s.rdb, s.pub, chans, log)
}

// serveMetrics serves /metrics and /healthz on addr, without
// credentials: an address only Prometheus reaches (a dispatcher replica
// has no other HTTP port; an API replica's own port asks for a key).
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

// observePublished records in m when the write to Kafka that carried
// each direct notification the process published began, and when Kafka
// acknowledged it (a code's or an alert's "writing" and "published"
// stages of loa_delivery_stage_seconds).
func observePublished(pub *kafkapub.Publisher, m *metrics.Metrics) {
	if pub == nil {
		return
	}
	type observers struct{ writing, published metrics.Observer }
	obs := map[topics.Lane]observers{}
	for _, l := range topics.Lanes {
		obs[l] = observers{m.DeliveryStage(string(l), "writing"), m.DeliveryStage(string(l), "published")}
	}
	pub.ObservePublished(func(l topics.Lane, writing, published time.Duration) {
		if o, ok := obs[l]; ok {
			o.writing.Observe(writing.Seconds())
			o.published.Observe(published.Seconds())
		}
	})
}

// registerPool exports the waits of a Redis client's connection pool
// (none when c is nil).
func registerPool(m *metrics.Metrics, name string, c *redis.Client) {
	if c == nil {
		return
	}
	m.RegisterPool(name, func() metrics.PoolStats {
		st := c.PoolStats()
		return metrics.PoolStats{Waits: uint64(st.WaitCount), Waited: time.Duration(st.WaitDurationNs)}
	})
}

// registerSQLPool exports the waits of a store's connection pool (none
// when db is nil).
func registerSQLPool(m *metrics.Metrics, name string, db *sqlstore.DB) {
	if db == nil {
		return
	}
	m.RegisterPool(name, func() metrics.PoolStats {
		st := db.SQL().Stats()
		return metrics.PoolStats{Waits: uint64(st.WaitCount), Waited: st.WaitDuration}
	})
}
