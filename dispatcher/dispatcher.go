package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/internal/metrics"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/otp"
	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/kafkapub"
)

// Config configures a Dispatcher.
type Config struct {
	Brokers []string
	Names   topics.Names
	// Withdrawn reports whether the code a notification on the otp lane
	// carries was withdrawn by the API — Kafka did not take it in time and
	// its caller was told to ask again — so that a copy the Kafka client
	// still delivered is not sent. An error sends it. New sets it to look
	// the challenge up in Redis when it is nil (otp.QueueWithdrawn, under
	// RedisKeyPrefix and the SMS codes' default prefix), in the round trip
	// that claims the code; a look-up set here runs beside the claim.
	Withdrawn func(ctx context.Context, notificationID string) (bool, error)
	// Workers is the concurrency budget of each lane.
	Workers map[topics.Lane]int
	// ShutdownTimeout bounds how long in-flight work may take to finish
	// when the dispatcher stops.
	ShutdownTimeout time.Duration
	// SendAttempts is how many times a transient failure is retried in
	// place (short back-off) before the delivery goes to a retry tier.
	SendAttempts int
	// RetryTiers are the delays of the retry tiers, in order; a delivery
	// that failed transiently waits in tier i for RetryTiers[i] (± jitter,
	// or longer when the provider asked), then goes back to its lane. After
	// the last tier it is dead-lettered. At most topics.MaxRetryTiers.
	RetryTiers []time.Duration
	// RetryJitter spreads tier delays by ± this fraction, so a burst of
	// failures does not come back as a burst.
	RetryJitter float64
	// ClaimLease and SentTTL tune the delivery claims (see Claims).
	ClaimLease time.Duration
	SentTTL    time.Duration
	// ReportHold bounds how long a delivery report that came before its
	// delivery was recorded is kept (see Reports).
	ReportHold time.Duration
	// RedisKeyPrefix namespaces the dispatcher's Redis keys.
	RedisKeyPrefix string
	// Lanes limits which lanes this instance consumes; all when empty.
	Lanes []topics.Lane
	// Ledger enables the receipts consumer that folds outcomes into the
	// store. Default true through DefaultConfig.
	Ledger bool
	// Metrics records delivery outcomes; nil records nothing.
	Metrics *metrics.Metrics
	// Senders is each lane's number of long-lived senders, shared by the
	// fan-out batches in flight on the lane (its Workers bound how many
	// batches are in flight). Direct events are sent by their worker.
	Senders map[topics.Lane]int
	// SMSNight is the province's rule that no SMS of a non-urgent kind
	// (bulk notices, outage reminders, alerts below the bypass severity)
	// is sent inside it, whatever the subscriber says: such SMS are held
	// until it ends (LOA_SMS_QUIET_HOURS). Nil: no such rule.
	SMSNight *accounts.QuietHours
	// AckKey signs the acknowledgement token each device's push of an
	// alert carries (producer.AckToken); without it pushes carry none and
	// apps acknowledge with a session only.
	AckKey []byte
	// BulkShare is how many of the bulk lane's sends may be under way while
	// codes or alerts are in the dispatcher's hands (see urgency); 0: no
	// limit.
	BulkShare int
	// UrgentStore and UrgentRedis, when set, are connections only the
	// urgent lanes (otp, alert) use for their claims, the write-ahead
	// record of their attempts and sends, and the withdrawn-code check, so
	// that bulk work holding every connection of the shared pools never
	// keeps a code waiting for one. Nil: they share the store and the
	// Redis client New is given.
	UrgentStore *sqlstore.DB
	UrgentRedis redis.UniversalClient
	// UrgentReader reads the otp, alert and direct lanes through kafka-go's
	// Reader, which fetches each partition on a connection of its own, as
	// the bulk lane does, instead of one fetch request for all the
	// partitions a broker leads (groupFetcher, the default).
	UrgentReader bool
	// CodeAttemptRowFirst commits a code's attempt in the write-ahead
	// record before its provider call, as an alert's, instead of recording
	// it in the code's claim in Redis and writing the row behind the call
	// (see attempt): for a Redis that may lose its data (no persistence),
	// at the cost of a PostgreSQL commit on every code's way.
	CodeAttemptRowFirst bool
}

// DefaultConfig returns the defaults: generous budgets for codes and
// alerts, the most senders for bulk. Each code is a message of its own,
// handled by one worker from fetch to receipt (claim, write-ahead
// attempt, send, sent mark, receipt: a few round trips to Redis,
// PostgreSQL, the gateway and Kafka), so the otp lane's workers bound
// its codes in flight. A code's attempt row is committed behind its call
// and the code holds its worker until then, so when PostgreSQL's commits
// stall (a checkpoint's flush, a lock, a failover) the workers are what
// keeps codes going to the gateway: 2048 ride out four seconds at 500
// codes a second, where 256 stopped the lane's fetching after half a
// second and every code behind waited for PostgreSQL (docs/testing.md,
// "A stall in PostgreSQL"). A worker costs a goroutine only while it
// holds a code (consumer.go keeps at most 64 idle). Bulk's workers are fan-out batches
// in flight (500 deliveries each, claimed a group at a time ahead of the
// senders): 32 keep its 512 senders busy, and each batch in flight holds
// its recipients, claim keys and outcomes (128 held 16 MB more at the peak
// of a million-device broadcast, for no more pushes a second). Bulk's
// senders are its pushes in flight, so at a provider's latency L they
// bound it to senders ÷ L: 256 held a broadcast to 9,300–9,500 a second
// at 20 ms where 512 sent 14,300–14,800 (docs/testing.md, "Twice the
// bulk senders"), and FCM answers in tens of milliseconds.
func DefaultConfig() Config {
	return Config{
		Workers: map[topics.Lane]int{
			topics.LaneOTP: 2048, topics.LaneAlert: 64, topics.LaneDirect: 32, topics.LaneBulk: 32,
		},
		Senders: map[topics.Lane]int{
			topics.LaneOTP: 16, topics.LaneAlert: 128, topics.LaneDirect: 16, topics.LaneBulk: 512,
		},
		ShutdownTimeout: 10 * time.Second,
		SendAttempts:    1,
		RetryTiers:      []time.Duration{5 * time.Second, time.Minute, 10 * time.Minute},
		RetryJitter:     0.2,
		ClaimLease:      30 * time.Second,
		SentTTL:         72 * time.Hour,
		ReportHold:      24 * time.Hour,
		Ledger:          true,
		BulkShare:       8,
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("dispatcher: no Kafka brokers configured")
	}
	for _, l := range c.Lanes {
		if !l.Valid() {
			return fmt.Errorf("dispatcher: unknown lane %q", l)
		}
	}
	for l, n := range c.Workers {
		if n < 1 {
			return fmt.Errorf("dispatcher: lane %s needs at least one worker, has %d", l, n)
		}
	}
	for l, n := range c.Senders {
		if n < 1 {
			return fmt.Errorf("dispatcher: lane %s needs at least one sender, has %d", l, n)
		}
	}
	if c.SendAttempts < 1 {
		return errors.New("dispatcher: SendAttempts must be at least 1")
	}
	if len(c.RetryTiers) > topics.MaxRetryTiers {
		return fmt.Errorf("dispatcher: at most %d retry tiers, got %d", topics.MaxRetryTiers, len(c.RetryTiers))
	}
	for i, d := range c.RetryTiers {
		if d <= 0 {
			return fmt.Errorf("dispatcher: retry tier %d has no delay", i+1)
		}
	}
	if c.RetryJitter < 0 || c.RetryJitter >= 1 {
		return fmt.Errorf("dispatcher: RetryJitter must be in [0, 1), got %v", c.RetryJitter)
	}
	return nil
}

// Dispatcher consumes the lanes and the receipts. Construct it with New;
// Run it once.
type Dispatcher struct {
	cfg      Config
	store    *sqlstore.DB
	claims   *Claims
	wal      sentLog    // the write-ahead record of sends; nil without a store
	attempts attemptLog // writes the attempts of codes and alerts (doubt.go)
	reports  *Reports   // nil without a store
	// recent is what the ledger folded lately, for the delivery reports
	// that come after their sends (ledger_reports.go).
	recent recentSends
	marker *marker
	// The urgent lanes' own: claims on UrgentRedis (d.claims without it),
	// write-ahead record on UrgentStore (d.wal without it), and marker, so
	// their sends are never recorded behind a broadcast's. Set by Run.
	urgentClaims *Claims
	urgentWAL    sentLog
	urgentMarker *marker
	urgency      *urgency
	// withdrawnPrefix is the SMS codes' Redis key prefix under which a
	// code's withdrawal is looked up with its claim; "" when
	// Config.Withdrawn looks it up, or nothing does.
	withdrawnPrefix string
	pools           map[topics.Lane]*pool
	instance        string // this process's part of its claims' owners
	pub             *kafkapub.Publisher
	channels        map[channels.Name]channels.Channel
	log             *slog.Logger
	now             func() time.Time
	noCommit        bool // tests: simulate a crash before commits
	// cancelEvery is how often a notification's cancellation is asked
	// again while its batches are sent (cancelledNow); 0: every group.
	cancelEvery time.Duration
	cancelMu    sync.Mutex
	cancelSeen  map[string]cancelSeen
	// stopping ends when Run is told to stop; waits that can be resumed
	// by another replica (a message held until its retry is due) give up
	// on it at once instead of at the shutdown timeout.
	stopping <-chan struct{}
	// planHook, for tests, is called after each group of batches a plan
	// records, with the number of batches so far.
	planHook func(batches int)
	// readHook, for tests, is called before each read of a plan's
	// audience, with the most addresses it asks for.
	readHook func(limit int)
	// queued observes each sent delivery's time from publish to the
	// provider's accept, by lane and channel.
	queued map[topics.Lane]map[channels.Name]metrics.Observer
	// stages observes where direct deliveries spend their time (see stage).
	stages map[topics.Lane]*stageObservers
}

// New returns a Dispatcher sending through chans (one Channel per kind).
// The publisher is used for receipts and dead letters and is not closed by
// the Dispatcher.
func New(cfg Config, store *sqlstore.DB, rdb redis.UniversalClient, pub *kafkapub.Publisher, chans map[channels.Name]channels.Channel, log *slog.Logger) (*Dispatcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	claims := NewClaims(rdb, cfg.RedisKeyPrefix)
	if cfg.ClaimLease > 0 {
		claims.Lease = cfg.ClaimLease
	}
	if cfg.SentTTL > 0 {
		claims.SentTTL = cfg.SentTTL
	}
	d := &Dispatcher{cfg: cfg, store: store, claims: claims, pub: pub, channels: chans, log: log, now: time.Now,
		pools: map[topics.Lane]*pool{}, instance: newOwner()[:12], urgency: newUrgency(cfg.BulkShare), cancelEvery: defaultCancelEvery}
	if cfg.Withdrawn == nil && rdb != nil {
		d.withdrawnPrefix = cfg.RedisKeyPrefix + otp.DefaultSMSConfig().KeyPrefix
	}
	if store != nil {
		d.wal = store
		d.reports = NewReports(store, pub, cfg.Names, log.With(slog.String("component", "reports")))
		if cfg.ReportHold > 0 {
			d.reports.Hold = cfg.ReportHold
		}
	}
	d.marker = newMarker(claims, d.wal, cfg.Metrics, log.With(slog.String("component", "marker")), func() time.Time { return d.now() })
	d.marker.linger = bulkMarkLinger
	d.setMetrics(cfg.Metrics)
	return d, nil
}

// setMetrics records outcomes and queue times in m.
func (d *Dispatcher) setMetrics(m *metrics.Metrics) {
	d.cfg.Metrics = m
	d.queued = map[topics.Lane]map[channels.Name]metrics.Observer{}
	d.stages = newStageObservers(m)
	for _, l := range topics.Lanes {
		d.queued[l] = map[channels.Name]metrics.Observer{}
		for _, ch := range []channels.Name{channels.Push, channels.SMS, channels.Email} {
			d.queued[l][ch] = m.LaneQueue(string(l), string(ch))
		}
	}
}

// Run consumes until ctx ends, then shuts down gracefully (see consumer).
// It returns the first consumer error, or nil after a clean stop.
func (d *Dispatcher) Run(ctx context.Context) error {
	lanes := d.cfg.Lanes
	if len(lanes) == 0 {
		lanes = topics.Lanes
	}
	d.stopping = ctx.Done()
	// The marker and the senders outlive the consumers, which finish their
	// batches while stopping.
	d.urgentClaims, d.urgentWAL = d.claims, d.wal
	if d.cfg.UrgentRedis != nil {
		d.urgentClaims = d.claims.on(d.cfg.UrgentRedis)
	}
	if d.cfg.UrgentStore != nil && d.wal != nil {
		d.urgentWAL = d.cfg.UrgentStore
	}
	var urgentMarks sentLog // the urgent sends are written with their attempts
	if d.urgentWAL != nil {
		urgentMarks = attemptLogWAL{d}
	}
	d.urgentMarker = d.marker.sibling(d.urgentClaims, urgentMarks, d.log.With(slog.String("component", "urgent-marker")))
	mctx, stopMarker := context.WithCancel(context.WithoutCancel(ctx))
	markerDone := make(chan struct{}, 2)
	go func() { d.marker.run(mctx); markerDone <- struct{}{} }()
	go func() { d.urgentMarker.run(mctx); markerDone <- struct{}{} }()
	for _, lane := range lanes {
		var turns *urgency
		if lane == topics.LaneBulk {
			turns = d.urgency
		}
		d.pools[lane] = newPool(d.senders(lane), turns)
	}
	defer func() {
		stopMarker()
		<-markerDone
		<-markerDone
		for _, p := range d.pools {
			p.close()
		}
	}()
	g, ctx := errgroup.WithContext(ctx)
	for _, lane := range lanes {
		c := d.laneConsumer(lane)
		g.Go(func() error { return c.Run(ctx) })
	}
	// Codes and alerts have retry tiers of their own, so a bulk retry held
	// for its Retry-After never holds one of theirs up. A tier is consumed
	// where the lanes it hands its events back to are: the urgent tiers
	// beside otp or alert, the others beside direct or bulk.
	for _, urgent := range retryTiersOf(lanes) {
		for i := range d.cfg.RetryTiers {
			topic, group, name := topics.RetryTier(i), fmt.Sprintf("loa-retry-%d", i+1), strconv.Itoa(i+1)
			if urgent {
				topic, group, name = topics.UrgentRetryTier(i), fmt.Sprintf("loa-retry-urgent-%d", i+1), "urgent-"+name
			}
			c := &consumer{
				cfg: consumerConfig{
					Brokers: d.cfg.Brokers, Topic: d.cfg.Names.Topic(topic), Group: d.cfg.Names.Group(group),
					Workers: 16, ShutdownTimeout: d.cfg.ShutdownTimeout,
				},
				handle: d.guard(d.handleRetryTier),
				pub:    d.pub,
				log:    d.log.With(slog.String("retry_tier", name)),
			}
			g.Go(func() error { return c.Run(ctx) })
		}
	}
	if d.cfg.Ledger {
		g.Go(func() error { return d.runLedger(ctx) })
		if d.store != nil {
			g.Go(func() error { return d.sweepSentLog(ctx) })
			g.Go(func() error { return d.reports.Run(ctx) })
		}
		dl := d.deadLetterConsumer()
		g.Go(func() error { return dl.Run(ctx) })
	}
	d.log.Info("dispatcher running", slog.Any("lanes", lanes), slog.Bool("ledger", d.cfg.Ledger))
	return g.Wait()
}

// ConsumesUrgent reports whether a dispatcher given lanes (all when
// empty) consumes a lane of codes or alerts.
func ConsumesUrgent(lanes []topics.Lane) bool {
	return consumesRank(lanes, channels.Urgent)
}

// retryTiersOf says which retry tiers a dispatcher given lanes consumes:
// false for the tiers of direct and bulk, true for the urgent ones.
func retryTiersOf(lanes []topics.Lane) []bool {
	var out []bool
	if consumesRank(lanes, channels.Standard, channels.Bulk) {
		out = append(out, false)
	}
	if ConsumesUrgent(lanes) {
		out = append(out, true)
	}
	return out
}

// consumesRank reports whether lanes (all when empty) hold a lane of one
// of ranks.
func consumesRank(lanes []topics.Lane, ranks ...channels.Rank) bool {
	if len(lanes) == 0 {
		lanes = topics.Lanes
	}
	for _, l := range lanes {
		for _, r := range ranks {
			if channels.Lane(l).Rank() == r {
				return true
			}
		}
	}
	return false
}

func (d *Dispatcher) senders(l topics.Lane) int {
	if n, ok := d.cfg.Senders[l]; ok {
		return n
	}
	return DefaultConfig().Senders[l]
}

// pool returns a lane's senders.
func (d *Dispatcher) pool(l topics.Lane) *pool {
	if p := d.pools[l]; p != nil {
		return p
	}
	panic(fmt.Sprintf("dispatcher: no senders for lane %q: the lane is not consumed here", l))
}

// ownerOf is the claim owner for the deliveries of message m in this
// process: handling m again here (after a failure) finds its own claims,
// while another process — or this one after a restart — waits for their
// leases to lapse.
func (d *Dispatcher) ownerOf(m kafkaMessage) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%d\x00%d", m.Topic, m.Partition, m.Offset)
	return d.instance + strconv.FormatUint(h.Sum64(), 16)
}

// sweepSentLog deletes the write-ahead record of sends older than SentTTL,
// at start and hourly, until ctx ends.
func (d *Dispatcher) sweepSentLog(ctx context.Context) error {
	for {
		n, err := d.store.SweepSentLog(ctx, d.now().Add(-d.claims.SentTTL))
		if err != nil && ctx.Err() == nil {
			d.log.Warn("sweeping the write-ahead record of sends failed", slog.Any("error", err))
		} else if n > 0 {
			d.log.Debug("swept the write-ahead record of sends", slog.Int64("rows", n))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Hour):
		}
	}
}

func (d *Dispatcher) workers(l topics.Lane) int {
	if n, ok := d.cfg.Workers[l]; ok {
		return n
	}
	return DefaultConfig().Workers[l]
}

// poison marks a message that can never be handled; it is dead-lettered.
type poison struct{ reason string }

func (p *poison) Error() string { return p.reason }

// guard is the middleware every handler runs in: a panic or a poison
// error turns the message into a dead letter (and the lane goes on);
// other errors go back to the consumer for a retry.
func (d *Dispatcher) guard(next handleFunc) handleFunc {
	return func(ctx context.Context, m kafkaMessage) (recs []producer.Record, err error) {
		defer func() {
			if r := recover(); r != nil {
				d.log.Error("handler panicked; dead-lettering the message", slog.String("topic", m.Topic),
					slog.Int64("offset", m.Offset), slog.Any("panic", r))
				recs, err = d.deadLetterRecords(m, fmt.Sprintf("panic: %v", r), DeadLetter{})
			}
		}()
		recs, err = next(ctx, m)
		var p *poison
		if errors.As(err, &p) {
			d.log.Warn("undecodable message dead-lettered", slog.String("topic", m.Topic),
				slog.Int("partition", m.Partition), slog.Int64("offset", m.Offset), slog.String("reason", p.reason))
			return d.deadLetterRecords(m, p.reason, DeadLetter{})
		}
		return recs, err
	}
}

// deadLetterRecords is deadLetterRecord as a handler's result.
func (d *Dispatcher) deadLetterRecords(m kafkaMessage, reason string, dl DeadLetter) ([]producer.Record, error) {
	rec, err := d.deadLetterRecord(m, reason, dl)
	if err != nil {
		return nil, err
	}
	return []producer.Record{rec}, nil
}

// deadLetterRecord is the loa.deadletter record of message m, given up
// on for reason; dl may name the one delivery of m that failed (channel,
// recipient, provider, history). Its id names the message and, for a
// delivery, the delivery, so the same failure recorded twice is one dead
// letter.
func (d *Dispatcher) deadLetterRecord(m kafkaMessage, reason string, dl DeadLetter) (producer.Record, error) {
	dl.ID = fmt.Sprintf("%s-%d-%d", m.Topic, m.Partition, m.Offset)
	if dl.Channel != "" {
		dl.ID += "-" + dl.Channel + "-" + shortHash(dl.Recipient)
	}
	dl.Reason, dl.Topic, dl.Partition, dl.Offset, dl.Key, dl.At = reason, m.Topic, m.Partition, m.Offset, string(m.Key), d.now().UTC()
	// A delivery's message was decoded, so it is JSON; only a poison
	// message needs the check.
	if dl.Channel != "" || json.Valid(m.Value) {
		dl.Envelope = m.Value
	} else {
		dl.Raw = m.Value
	}
	b, err := json.Marshal(dl)
	if err != nil {
		return producer.Record{}, fmt.Errorf("dispatcher: dead letter: %w", err)
	}
	return producer.Record{Topic: d.cfg.Names.Topic(topics.DeadLetter), Key: dl.ID, Value: b,
		Headers: map[string]string{"reason": truncate(reason, 200)}}, nil
}

// handleLane decodes a lane message and hands it to its kind's handler.
func (d *Dispatcher) handleLane(ctx context.Context, m kafkaMessage) ([]producer.Record, error) {
	env, err := producer.Decode(m.Value)
	if err != nil {
		return nil, &poison{reason: err.Error()}
	}
	switch env.Kind {
	case producer.KindDirect:
		var p producer.Direct
		if err := json.Unmarshal(env.Payload, &p); err != nil {
			return nil, &poison{reason: "dispatcher: decode direct payload: " + err.Error()}
		}
		return d.handleDirect(ctx, m, env, p)
	case producer.KindFanout:
		var p producer.Fanout
		if err := json.Unmarshal(env.Payload, &p); err != nil {
			return nil, &poison{reason: "dispatcher: decode fanout payload: " + err.Error()}
		}
		if !channels.Name(p.Channel).Valid() {
			return nil, &poison{reason: fmt.Sprintf("dispatcher: fanout for unknown channel %q", p.Channel)}
		}
		return d.handleFanout(ctx, m, env, p)
	case producer.KindPlan:
		var p producer.Plan
		if err := json.Unmarshal(env.Payload, &p); err != nil {
			return nil, &poison{reason: "dispatcher: decode plan payload: " + err.Error()}
		}
		for _, ch := range p.Channels {
			if c := channels.Name(ch); c != channels.Push && c != channels.SMS {
				return nil, &poison{reason: fmt.Sprintf("dispatcher: a plan can use push and sms, not %q", ch)}
			}
		}
		return nil, d.handlePlan(ctx, env, p)
	default:
		return nil, &poison{reason: fmt.Sprintf("dispatcher: no handler for kind %q", env.Kind)}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func shortHash(s string) string {
	var h uint32 = 2166136261
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return fmt.Sprintf("%08x", h)
}

// isPlan picks plan events by the kind header the Publisher sets, so they
// run in the consumer's long pool.
func isPlan(m kafkaMessage) bool {
	for _, h := range m.Headers {
		if h.Key == "kind" {
			return string(h.Value) == producer.KindPlan
		}
	}
	return false
}

// laneConsumer returns the consumer of lane's topic. The urgent lanes
// read through one fetch a broker unless UrgentReader asks for
// kafka-go's Reader; the bulk lane through the Reader.
func (d *Dispatcher) laneConsumer(lane topics.Lane) *consumer {
	return &consumer{
		cfg: consumerConfig{
			Brokers: d.cfg.Brokers, Topic: d.cfg.Names.Lane(lane), Group: d.cfg.Names.Group("loa-dispatcher-" + string(lane)),
			Workers: d.workers(lane), ShutdownTimeout: d.cfg.ShutdownTimeout,
			Long: isPlan, LongWorkers: 2, Pending: d.pendingHook(lane),
			OneFetch: lane != topics.LaneBulk && !d.cfg.UrgentReader,
		},
		handle:   d.guard(d.handleLane),
		pub:      d.pub,
		log:      d.log.With(slog.String("lane", string(lane))),
		noCommit: d.noCommit,
	}
}
