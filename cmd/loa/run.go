package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/loa-hub/loa/channels/sandbox"
	"github.com/loa-hub/loa/internal/kafkaadmin"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer/kafkapub"
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
  loa admin official sso-unlink [--by NAME] USERNAME   forget the official's single sign-on identity
  loa admin areas load FILE   load an areas CSV (see docs/api.md, "Areas")
  loa admin feedback categories load FILE   (code,name,name_en,group,agency,handling_days)
  loa admin feedback route CATEGORY AREA AGENCY
  loa admin deadletters list [--limit N]
  loa admin deadletters replay [--by NAME] ID
  loa help

Configuration comes from LOA_* environment variables (see docs/configuration.md).
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
	// The dispatcher's connections for codes and alerts only (nil: none).
	urgentStore *sqlstore.DB
	urgentRDB   *redis.Client
}

func (s *services) close() {
	if s.pub != nil {
		s.pub.Close()
	}
	for _, c := range []*redis.Client{s.urgentRDB, s.rdb} {
		if c != nil {
			c.Close()
		}
	}
	for _, db := range []*sqlstore.DB{s.urgentStore, s.store} {
		if db != nil {
			db.Close()
		}
	}
}

// connectUrgent opens the dispatcher's own connections for codes and
// alerts (LOA_DB_URGENT_CONNS to PostgreSQL — SQLite has one writer and
// shares its one connection —, LOA_REDIS_URGENT_CONNS to Redis).
func (s *services) connectUrgent(ctx context.Context, cfg config) error {
	if cfg.DBUrgentConns > 0 && s.store.Dialect() == sqlstore.Postgres {
		db, err := sqlstore.Open(ctx, cfg.DatabaseURL)
		if err != nil {
			return err
		}
		db.SetMaxConns(cfg.DBUrgentConns)
		s.urgentStore = db
	}
	if cfg.RedisUrgentConns > 0 {
		c, _, err := openRedisPool(cfg.RedisURL, cfg.RedisUrgentConns)
		if err != nil {
			return err
		}
		s.urgentRDB = c
	}
	return nil
}

func connect(ctx context.Context, cfg config) (*services, error) {
	s := &services{names: topics.Names{Prefix: cfg.TopicPrefix}}
	var err error
	if s.store, err = sqlstore.Open(ctx, cfg.DatabaseURL); err != nil {
		return nil, err
	}
	var where string
	if s.rdb, where, err = openRedisPool(cfg.RedisURL, cfg.RedisConns); err != nil {
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
	// Receipts (a code's, an SMS delivery report's) come one at a time
	// and nobody waits on them in a hurry: they linger so that those of a
	// few codes share a produce request (kafkapub.Config.Linger).
	lingers := map[string]time.Duration{s.names.Topic(topics.Receipts): receiptsLinger}
	if s.pub, err = kafkapub.NewPublisher(kafkapub.Config{Brokers: cfg.KafkaBrokers, Names: s.names, Linger: lingers}); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// receiptsLinger is how long a receipt written alone waits for others:
// at 500 codes a second, the urgent dispatcher's receipts went in about
// 215 produce requests a second, a quarter of what the codes cost the
// broker in requests; 20 ms puts about ten in one. A receipt's delivery
// record is written that much later; no send waits for it.
const receiptsLinger = 20 * time.Millisecond

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
    (a code: oathtool --totp -b %[4]s)  Broadcasts: see docs/api.md, "Broadcasts".
  Ctrl-C stops it.

`, base, cfg.DevAPIKey, demoPassword, demoTOTPSecret)
}

// seedDemo adds the demo citizen account used by the README's tour,
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
	if len(args) >= 2 && args[0] == "official" && args[1] == "sso-unlink" {
		return adminOfficialSSOUnlink(ctx, cfg, args[2:], stdout)
	}
	return errors.New("usage: loa admin official create --username U --full-name N --phone P --unit U --roles R[,R…] [--password-file F]\n" +
		"       loa admin official sso-unlink [--by NAME] USERNAME\n" +
		"       loa admin apikey create|list|revoke …\n       loa admin audit list|purge …\n       loa admin deadletters list|replay …\n       loa admin areas load FILE")
}
