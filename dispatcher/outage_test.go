package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

// cutProxy forwards TCP connections to a server until it is cut: then it
// drops every connection and refuses new ones, as a server that went away
// would look to its clients, until it is restored.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]struct{}
}

func newCutProxy(t testing.TB, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *cutProxy) serve(c net.Conn) {
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.mu.Unlock()
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		c.Close()
		s.Close()
		return
	}
	p.conns[c], p.conns[s] = struct{}{}, struct{}{}
	p.mu.Unlock()
	go func() { io.Copy(s, c); s.Close(); c.Close() }()
	io.Copy(c, s)
	c.Close()
	s.Close()
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

func (p *cutProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// client returns a Redis client that reaches Redis through the proxy.
func (p *cutProxy) client(t testing.TB, db *redis.Options) *redis.Client {
	opt := *db
	opt.Addr = p.ln.Addr().String()
	opt.MaxRetries = -1 // a cut is a failure at once, not after retries
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = time.Second, time.Second, time.Second
	c := redis.NewClient(&opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// deliveries names deliveries whose claims a test makes Redis lose.
type deliveries struct {
	notificationID, channel string
	addrs                   []string
}

// loseClaims deletes the claim keys of the deliveries and the claims'
// epoch: what a Redis restarted without persistence has lost of them.
func loseClaims(t testing.TB, rdb redis.UniversalClient, prefix string, ds ...deliveries) {
	t.Helper()
	c := NewClaims(rdb, prefix)
	keys := []string{c.epochKey()}
	for _, d := range ds {
		for _, a := range d.addrs {
			keys = append(keys, c.redisKey(keyOf(d.notificationID, d.channel, a)))
		}
	}
	for start := 0; start < len(keys); start += 500 {
		if err := rdb.Del(context.Background(), keys[start:min(start+500, len(keys))]...).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// tokens are the addresses publishFanout gives a notification's devices.
func tokens(id string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-tok-%07d", id, i)
	}
	return out
}

// startOn runs a dispatcher whose Redis client is rdb (see start).
func (r *rig) startOn(t testing.TB, rdb redis.UniversalClient, mutate func(*Dispatcher)) (stop func()) {
	t.Helper()
	saved := r.rdb
	r.rdb = rdb
	defer func() { r.rdb = saved }()
	return r.start(t, mutate)
}

// onSend calls a hook after each send its inner channel accepted, before
// the dispatcher sees the result.
type onSend struct {
	channels.Channel
	after func(m channels.Message)
}

func (c onSend) Send(ctx context.Context, m channels.Message) (channels.Result, error) {
	res, err := c.Channel.Send(ctx, m)
	if err == nil {
		c.after(m)
	}
	return res, err
}

// publishCodeAndAlert publishes an SMS code on the otp lane and a batch of
// n pushes of an alert on the alert lane.
func (r *rig) publishCodeAndAlert(t testing.TB, n int) (codeID, phone, alertID string) {
	t.Helper()
	ctx := waitCtx(t)
	now := time.Now()
	codeID, phone, alertID = "code-1", "84912345678", "alert-1"
	env, err := producer.NewEnvelope("ev-"+codeID, producer.KindDirect, topics.LaneOTP, phone, now, now.Add(5*time.Minute), "",
		producer.Direct{NotificationID: codeID, To: producer.Recipient{Type: producer.ToPhone, Value: phone},
			Body: "Mã xác thực: 493021", Channels: []string{"sms"}, Priority: "high"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.pub.Publish(ctx, env); err != nil {
		t.Fatal(err)
	}
	r.publishFanout(t, alertID, topics.LaneAlert, n, n)
	return codeID, phone, alertID
}

// TestRedisLostBetweenSendAndMarkIsNotSentAgain: Redis goes away (and
// comes back empty, as a Redis without persistence restarts) right after
// the provider accepted a code and an alert's pushes, before the
// dispatcher could mark them sent. The dispatcher dies without committing;
// the next one gets the same messages again and sends none of them twice.
func TestRedisLostBetweenSendAndMarkIsNotSentAgain(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		const n = 40
		codeID, phone, alertID := r.publishCodeAndAlert(t, n)
		opt := r.rdb.(*redis.Client).Options()
		proxy := newCutProxy(t, opt.Addr)
		// Redis goes at the last send: between its send and its mark, and
		// just after the others were marked.
		var sends atomic.Int64
		lose := func(channels.Message) {
			if sends.Add(1) == n+1 {
				proxy.cut()
				loseClaims(t, r.rdb, r.prefix, deliveries{codeID, "sms", []string{phone}}, deliveries{alertID, "push", tokens(alertID, n)})
			}
		}
		sms, push := r.chans[channels.SMS], r.chans[channels.Push]
		r.chans[channels.SMS], r.chans[channels.Push] = onSend{sms, lose}, onSend{push, lose}
		stop := r.startOn(t, proxy.client(t, opt), func(d *Dispatcher) { d.noCommit = true })
		if err := r.outbox.WaitTotal(waitCtx(t), n+1); err != nil {
			t.Fatalf("first dispatcher sent %d of %d: %v", r.outbox.Total(), n+1, err)
		}
		stop() // gracefully: what it sent, it records as far as it can
		proxy.restore()
		r.chans[channels.SMS], r.chans[channels.Push] = sms, push

		r.start(t, nil)
		waitLedgerCount(t, r, codeID, 1)
		waitLedgerCount(t, r, alertID, n)
		if c := r.outbox.Count(codeID, channels.SMS, phone); c != 1 {
			t.Errorf("the code was sent %d times", c)
		}
		if d := r.outbox.Duplicates(); len(d) > 0 {
			t.Errorf("%d deliveries sent twice, e.g. %s", len(d), d[0])
		}
		if got := r.outbox.Total(); got != n+1 {
			t.Errorf("outbox holds %d, want %d", got, n+1)
		}
	})
}

// cuttableLog is a write-ahead record that can be cut off, as a killed
// process's would be.
type cuttableLog struct {
	sentLog
	cut atomic.Bool
}

func (l *cuttableLog) LogSent(ctx context.Context, groups []sqlstore.SentGroup, at time.Time) error {
	if l.cut.Load() {
		return errors.New("cut")
	}
	return l.sentLog.LogSent(ctx, groups, at)
}

// freezer passes sends on until the kill, at its killAt-th send: that
// send reaches the provider but its answer never comes back, and no send
// started after it reaches the provider, as with a process killed at that
// moment. (Sends already in the provider's hands finish, but the dead
// process records nothing more.)
type freezer struct {
	channels.Channel
	killAt int64
	kill   func()
	sends  atomic.Int64
	frozen chan struct{}
	thawed chan struct{}
}

func newFreezer(inner channels.Channel, killAt int64) *freezer {
	return &freezer{Channel: inner, killAt: killAt, frozen: make(chan struct{}), thawed: make(chan struct{})}
}

func (f *freezer) Send(ctx context.Context, m channels.Message) (channels.Result, error) {
	n := f.sends.Add(1)
	if n > f.killAt {
		<-f.thawed
		return channels.Result{}, errors.New("the process is dead")
	}
	res, err := f.Channel.Send(ctx, m)
	if n == f.killAt {
		f.kill()
		close(f.frozen)
		<-f.thawed
	}
	return res, err
}

// logLines keeps the messages logged through it.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Enabled(context.Context, slog.Level) bool { return true }
func (l *logLines) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logLines) WithGroup(string) slog.Handler            { return l }
func (l *logLines) Handle(_ context.Context, r slog.Record) error {
	line := r.Message
	r.Attrs(func(a slog.Attr) bool {
		line += " " + a.String()
		return true
	})
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
	return nil
}

func (l *logLines) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// TestKilledDispatcherResendsOnlyWhatWasInFlight: a dispatcher dies in the
// middle of a broadcast's batches — from one moment it records nothing
// more (Redis, the write-ahead record) and its pending provider calls never
// return. The dispatcher that takes over sends again at most the sends
// that were in flight then: those waiting for the provider's answer, and
// those accepted but not yet recorded; not every send of the unfinished
// batches.
func TestKilledDispatcherResendsOnlyWhatWasInFlight(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		const (
			total   = 2000
			killAt  = 1200
			senders = 16
		)
		r.publishFanout(t, "bc-kill", topics.LaneBulk, total, 500)
		opt := r.rdb.(*redis.Client).Options()
		proxy := newCutProxy(t, opt.Addr)
		push := r.chans[channels.Push]
		fz := newFreezer(push, killAt)
		r.chans[channels.Push] = fz
		wal := &cuttableLog{}
		var (
			d1             *Dispatcher
			unmarkedAtKill int64
		)
		fz.kill = func() {
			unmarkedAtKill = d1.marker.unmarked.Load()
			proxy.cut()
			wal.cut.Store(true)
		}
		stop := r.startOn(t, proxy.client(t, opt), func(d *Dispatcher) {
			d1 = d
			wal.sentLog = d.wal
			d.wal, d.marker.wal = wal, wal
			d.noCommit = true
			d.cfg.ShutdownTimeout = time.Second
			d.cfg.Senders[topics.LaneBulk] = senders
			d.claims.Lease = 2 * time.Second
		})
		// Wait for the kill, then let the dead dispatcher's goroutines go:
		// it can record nothing any more.
		select {
		case <-fz.frozen:
		case <-waitCtx(t).Done():
			t.Fatalf("never reached %d sends", killAt)
		}
		stopped := make(chan struct{})
		go func() { stop(); close(stopped) }()
		close(fz.thawed)
		<-stopped
		// In flight at the kill: the sends started and not yet recorded
		// (in the provider's hands, answered and not yet handed on, or
		// accepted and waiting to be recorded), as the dispatcher counts them.
		inFlight := unmarkedAtKill
		sentBefore := r.outbox.Total()
		r.chans[channels.Push] = push

		logs := &logLines{}
		r.start(t, func(d *Dispatcher) {
			d.claims.Lease = 2 * time.Second
			d.log = slog.New(logs)
		})
		waitLedgerCount(t, r, "bc-kill", total)
		dups := len(r.outbox.Duplicates())
		t.Logf("sent %d before the kill; in flight at the kill (started and unmarked): %d; sent twice: %d",
			sentBefore, inFlight, dups)
		if int64(dups) > inFlight {
			t.Errorf("%d deliveries sent twice, more than the %d in flight at the kill", dups, inFlight)
		}
		if !strings.Contains(logs.text(), "took over deliveries") {
			t.Errorf("the dispatcher that took over did not report it")
		}
		for i := range total {
			if c := r.outbox.Count("bc-kill", channels.Push, fmt.Sprintf("bc-kill-tok-%07d", i)); c == 0 {
				t.Fatalf("device %d never reached", i)
			}
		}
	})
}

// signal is a log handler that closes a channel once a message has been
// logged n times.
type signal struct {
	msg  string
	n    atomic.Int64
	at   int64
	once sync.Once
	ch   chan struct{}
}

func newSignal(msg string, at int64) *signal {
	return &signal{msg: msg, at: at, ch: make(chan struct{})}
}

func (s *signal) Enabled(context.Context, slog.Level) bool { return true }
func (s *signal) WithAttrs([]slog.Attr) slog.Handler       { return s }
func (s *signal) WithGroup(string) slog.Handler            { return s }
func (s *signal) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, s.msg) && s.n.Add(1) >= s.at {
		s.once.Do(func() { close(s.ch) })
	}
	return nil
}

// lastOffset is the number of records on a test topic (one partition).
func lastOffset(t *testing.T, r *rig, topic string) int64 {
	t.Helper()
	conn, err := kafka.DialLeader(context.Background(), "tcp", r.brokers[0], topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	n, err := conn.ReadLastOffset()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRedisRestartMidBroadcast: Redis goes away in the middle of a
// broadcast and comes back empty (restarted without persistence). The
// batches wait for it — they are not sent to the retry tiers — and once it
// is back the broadcast completes, every device reached once: what was
// sent before the restart is in the write-ahead record. A few devices'
// tokens are dead, so the batches have claims to release, which fails
// while Redis is away.
func TestRedisRestartMidBroadcast(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		const total, dead = 4000, 40
		r.publishFanout(t, "bc-redis", topics.LaneBulk, total, 500)
		opt := r.rdb.(*redis.Client).Options()
		proxy := newCutProxy(t, opt.Addr)
		var sends atomic.Int64
		dying := deadTokens{Channel: r.chans[channels.Push], dead: map[string]bool{}}
		for i := 7; i < total; i += total / dead {
			dying.dead[fmt.Sprintf("bc-redis-tok-%07d", i)] = true
		}
		r.chans[channels.Push] = onSend{dying, func(channels.Message) {
			if sends.Add(1) == total/4 {
				proxy.cut()
				loseClaims(t, r.rdb, r.prefix, deliveries{"bc-redis", "push", tokens("bc-redis", total)})
			}
		}}
		failing := newSignal("handling failed", 4)
		r.startOn(t, proxy.client(t, opt), func(d *Dispatcher) { d.log = slog.New(failing) })
		select {
		case <-failing.ch:
		case <-waitCtx(t).Done():
			t.Fatal("the batches never failed for want of Redis")
		}
		proxy.restore()
		waitLedgerCount(t, r, "bc-redis", total-dead)
		if d := r.outbox.Duplicates(); len(d) > 0 {
			t.Errorf("%d devices reached twice, e.g. %s", len(d), d[0])
		}
		if got := r.outbox.Total(); got != total-dead {
			t.Errorf("outbox holds %d, want %d", got, total-dead)
		}
		for i := range topics.MaxRetryTiers {
			if n := lastOffset(t, r, r.names.Topic(topics.RetryTier(i))); n > 0 {
				t.Errorf("%d deliveries went to retry tier %d", n, i+1)
			}
		}
	})
}

// deadOnKill passes sends on to its channel until the kill; a send in the
// provider's hands at the kill, and every send after it, never returns
// to the dispatcher (it waits for its context, as the calls of a killed
// process never return). after is called for each send the provider
// took before the kill.
type deadOnKill struct {
	channels.Channel
	dead   <-chan struct{}
	killed *atomic.Bool // set first thing at the kill
	after  func(ctx context.Context, m channels.Message)
}

func (c deadOnKill) Send(ctx context.Context, m channels.Message) (channels.Result, error) {
	select {
	case <-c.dead:
		<-ctx.Done()
		return channels.Result{}, ctx.Err()
	default:
	}
	if err := channels.Calling(ctx); err != nil { // as the rate limit layer does before the provider call
		return channels.Result{}, err
	}
	if c.killed.Load() {
		// Killed while the attempt was being written: a dead process
		// makes no call.
		<-ctx.Done()
		return channels.Result{}, ctx.Err()
	}
	res, err := c.Channel.Send(ctx, m)
	if err == nil && c.after != nil {
		c.after(ctx, m)
	}
	select {
	case <-c.dead:
		<-ctx.Done()
		return channels.Result{}, ctx.Err()
	default:
	}
	return res, err
}

// TestKilledMidSendCodeAndAlertAreNotSentAgain: a dispatcher is killed
// just after the SMS gateway took a code, before it could record it, and
// while its alert's pushes are under way; from that moment it records
// nothing and its provider calls never return. The dispatcher that takes
// over sends neither the code nor any alert push a second time: a
// delivery whose send had begun is recorded failed, class in_doubt, with
// a dead letter; every other push is sent once; no more are in doubt
// than the sends the killed one had not recorded.
func TestKilledMidSendCodeAndAlertAreNotSentAgain(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		const n = 400
		codeID, phone, alertID := r.publishCodeAndAlert(t, n)
		opt := r.rdb.(*redis.Client).Options()
		proxy := newCutProxy(t, opt.Addr)
		wal := &cuttableLog{}
		var (
			d1       *Dispatcher
			unmarked int64
			once     sync.Once
			pushes   atomic.Int64
			killed   atomic.Bool
		)
		dead, half := make(chan struct{}), make(chan struct{})
		kill := func() {
			once.Do(func() {
				// Cut first, count after: a send that begins between
				// the two is then either counted or unable to write its
				// attempt, as when a process dies at one instant.
				killed.Store(true)
				proxy.cut()
				wal.cut.Store(true)
				unmarked = d1.marker.unmarked.Load()
				close(dead)
			})
		}
		sms, push := r.chans[channels.SMS], r.chans[channels.Push]
		// The kill comes once the gateway has the code and half the
		// alert's pushes went out.
		r.chans[channels.SMS] = deadOnKill{Channel: sms, dead: dead, killed: &killed, after: func(ctx context.Context, m channels.Message) {
			if m.NotificationID != codeID {
				return
			}
			select {
			case <-half:
			case <-ctx.Done():
			}
			kill()
		}}
		r.chans[channels.Push] = deadOnKill{Channel: push, dead: dead, killed: &killed, after: func(_ context.Context, m channels.Message) {
			if pushes.Add(1) == n/2 {
				close(half)
			}
		}}
		stop := r.startOn(t, proxy.client(t, opt), func(d *Dispatcher) {
			d1 = d
			wal.sentLog = d.wal
			d.wal, d.marker.wal = wal, wal
			d.noCommit = true
			d.cfg.ShutdownTimeout = time.Second
			d.claims.Lease = 2 * time.Second
		})
		select {
		case <-dead:
		case <-waitCtx(t).Done():
			t.Fatalf("never killed: %d pushes", pushes.Load())
		}
		stop()
		r.chans[channels.SMS], r.chans[channels.Push] = sms, push
		if c := r.outbox.Count(codeID, channels.SMS, phone); c != 1 {
			t.Fatalf("the gateway has the code %d times before the takeover", c)
		}

		logs := &logLines{}
		r.start(t, func(d *Dispatcher) {
			d.claims.Lease = 2 * time.Second
			d.log = slog.New(logs)
		})
		code := waitFinal(t, r, codeID, 1)
		alert := waitFinal(t, r, alertID, n)
		if c := r.outbox.Count(codeID, channels.SMS, phone); c != 1 {
			t.Errorf("the code was sent %d times", c)
		}
		if d := r.outbox.Duplicates(); len(d) > 0 {
			t.Errorf("%d deliveries sent twice, e.g. %s", len(d), d[0])
		}
		if st, class := code[0].Status, code[0].Class; st != loa.StatusFailed || class != string(ClassInDoubt) {
			t.Errorf("the code's delivery: %s (%s), want failed (in_doubt)", st, class)
		}
		doubts := 0
		for _, dl := range alert {
			reached := r.outbox.Count(alertID, channels.Push, dl.Recipient) > 0
			switch {
			case dl.Status == loa.StatusSent && reached:
			case dl.Status == loa.StatusFailed && dl.Class == string(ClassInDoubt):
				doubts++
			default:
				t.Errorf("alert push to %s: %s (%s), reached %v", dl.Recipient, dl.Status, dl.Class, reached)
			}
		}
		t.Logf("unrecorded sends at the kill: %d; in doubt: the code and %d alert pushes", unmarked, doubts)
		if int64(doubts+1) > unmarked {
			t.Errorf("%d deliveries in doubt, more than the %d the killed dispatcher had not recorded", doubts+1, unmarked)
		}
		if !strings.Contains(logs.text(), "in doubt") {
			t.Errorf("the deliveries in doubt were not reported")
		}
		// One dead letter for each, saying why.
		ctx := waitCtx(t)
		for {
			rows, err := r.store.DeadLetters(ctx, time.Time{}, "", 10*n)
			if err != nil {
				t.Fatal(err)
			}
			letters := 0
			for _, row := range rows {
				if strings.HasPrefix(row.Reason, "in doubt") {
					letters++
				}
			}
			if letters == doubts+1 && len(rows) == letters {
				break
			}
			if letters > doubts+1 || len(rows) > letters {
				t.Fatalf("%d dead letters (%d in doubt), want one per delivery in doubt (%d)", len(rows), letters, doubts+1)
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%d dead letters in doubt, want %d", letters, doubts+1)
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
}

// waitFinal waits until the ledger holds n deliveries of id, each with a
// final status, and returns them.
func waitFinal(t *testing.T, r *rig, id string, n int) []sqlstore.Delivery {
	t.Helper()
	ctx := waitCtx(t)
	for {
		ds, err := r.store.Deliveries(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		final := 0
		for _, d := range ds {
			if d.Status.Final() {
				final++
			}
		}
		if final >= n {
			return ds
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %d of %d deliveries final in the ledger", id, final, n)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestWithdrawnCodeIsNotSent: a code the API withdrew (Kafka took it too
// late; its caller was answered 503 and asks again) is not sent when its
// event arrives after all: its delivery is recorded cancelled. Another
// code is sent as usual.
func TestWithdrawnCodeIsNotSent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		ctx := waitCtx(t)
		now := time.Now()
		for _, id := range []string{"code-withdrawn", "code-live"} {
			env, err := producer.NewEnvelope("ev-"+id, producer.KindDirect, topics.LaneOTP, "84912345678", now, now.Add(5*time.Minute), "",
				producer.Direct{NotificationID: id, To: producer.Recipient{Type: producer.ToPhone, Value: "84912345678"},
					Body: "Mã xác thực: 493021", Channels: []string{"sms"}, Priority: "high"})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.pub.Publish(ctx, env); err != nil {
				t.Fatal(err)
			}
		}
		r.start(t, func(d *Dispatcher) {
			d.cfg.Withdrawn = func(_ context.Context, id string) (bool, error) { return id == "code-withdrawn", nil }
		})
		withdrawn := waitFinal(t, r, "code-withdrawn", 1)
		waitLedgerCount(t, r, "code-live", 1)
		if st := withdrawn[0].Status; st != loa.StatusCancelled {
			t.Errorf("the withdrawn code's delivery: %s, want cancelled", st)
		}
		if c := r.outbox.Count("code-withdrawn", channels.SMS, "84912345678"); c != 0 {
			t.Errorf("the withdrawn code was sent %d times", c)
		}
		if c := r.outbox.Count("code-live", channels.SMS, "84912345678"); c != 1 {
			t.Errorf("the other code was sent %d times", c)
		}
	})
}

// TestCodeIsClaimedWhileItsWithdrawalIsLookedUp: a code's claim is taken
// while its withdrawal is looked up — two Redis round trips at once, not
// one after the other, on the way of every code (the look-up here
// answers only once the claim is in Redis). A code found withdrawn is
// not sent, and its claim is let go at once; the other is sent once.
func TestCodeIsClaimedWhileItsWithdrawalIsLookedUp(t *testing.T) {
	oneBackend(t, func(t *testing.T, r *rig) {
		ctx := waitCtx(t)
		const phone = "84912345671"
		claims := NewClaims(r.rdb, r.prefix)
		rkey := func(id string) string { return claims.redisKey(keyOf(id, string(channels.SMS), phone)) }
		var seen sync.Map // notification id → its claim was in Redis during the look-up
		r.start(t, func(d *Dispatcher) {
			d.cfg.Withdrawn = func(_ context.Context, id string) (bool, error) {
				for {
					if n, err := r.rdb.Exists(ctx, rkey(id)).Result(); err == nil && n == 1 {
						seen.Store(id, true)
						return id == "code-late-withdrawn", nil
					}
					select {
					case <-ctx.Done():
						return false, ctx.Err()
					case <-time.After(20 * time.Millisecond): // polling a condition, not ordering events
					}
				}
			}
		})
		r.publishCode(t, "code-claimed", phone)
		r.publishCode(t, "code-late-withdrawn", phone)
		waitLedgerCount(t, r, "code-claimed", 1)
		withdrawn := waitFinal(t, r, "code-late-withdrawn", 1)
		for _, id := range []string{"code-claimed", "code-late-withdrawn"} {
			if _, ok := seen.Load(id); !ok {
				t.Errorf("%s: its withdrawal was looked up before it was claimed", id)
			}
		}
		if st := withdrawn[0].Status; st != loa.StatusCancelled {
			t.Errorf("the withdrawn code's delivery: %s, want cancelled", st)
		}
		if c := r.outbox.Count("code-late-withdrawn", channels.SMS, phone); c != 0 {
			t.Errorf("the withdrawn code was sent %d times", c)
		}
		if c := r.outbox.Count("code-claimed", channels.SMS, phone); c != 1 {
			t.Errorf("the other code was sent %d times", c)
		}
		if n, err := r.rdb.Exists(ctx, rkey("code-late-withdrawn")).Result(); err != nil || n != 0 {
			t.Errorf("the withdrawn code's claim is still held (%d, %v)", n, err)
		}
	})
}
