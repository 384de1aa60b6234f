package dispatcher

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/producer"
)

// handleFanout sends one batch of a planned audience through its lane's
// senders (see sendBatch) and returns its receipts (packed a few hundred
// to a message), retries and dead letters for the consumer to publish in
// one write, after which the offset is committed.
func (d *Dispatcher) handleFanout(ctx context.Context, m kafkaMessage, env producer.Envelope, p producer.Fanout) ([]producer.Record, error) {
	ch := channels.Name(p.Channel)
	msg := producer.Direct{NotificationID: p.NotificationID, Title: p.Title, Body: p.Body, Data: p.Data,
		Channels: []string{p.Channel}, Priority: p.Priority, Collapse: p.Collapse, Ack: p.Ack}
	recipients := p.Recipients
	var (
		history []producer.Attempt
		tier    int
	)
	if rd := env.Redelivery; rd != nil {
		recipients = []string{rd.Recipient} // a retry of one delivery of the batch
		history, tier = rd.History, rd.Tier
	}
	at := func(i int) delivery {
		return delivery{m: m, env: env, batch: &p, notificationID: p.NotificationID, ch: ch, addr: recipients[i], targets: 1}
	}

	outcomes := make([]outcome, len(recipients))
	channel, ok := d.channels[ch]
	switch {
	case env.Expired(d.now()):
		for i := range outcomes {
			outcomes[i] = outcome{status: loa.StatusExpired, class: channels.Expired, reason: "expired before sending", history: history}
		}
	case d.cancelled(ctx, p.NotificationID):
		for i := range outcomes {
			outcomes[i] = outcome{status: loa.StatusCancelled, reason: "the notification was cancelled"}
		}
	case !ok:
		for i := range outcomes {
			outcomes[i] = outcome{status: loa.StatusFailed, class: channels.Permanent, reason: "channel not configured: " + p.Channel, deadLetter: true}
		}
	default:
		b := &batch{d: d, ctx: ctx, m: m, env: env, channel: channel, msg: msg, at: at, n: len(recipients),
			history: history, tier: tier, owner: d.ownerOf(m), outcomes: outcomes}
		if err := b.run(); err != nil {
			return nil, err
		}
	}

	d.reportUnanswered(env, p.NotificationID, outcomes)
	receipts := make([]producer.Receipt, 0, len(recipients))
	var recs []producer.Record // retries and dead letters
	for i, o := range outcomes {
		rc, more, err := d.settle(at(i), o)
		if err != nil {
			return nil, err
		}
		receipts = append(receipts, rc)
		recs = append(recs, more...)
	}
	return append(d.receiptRecords(msg.NotificationID, receipts), recs...), nil
}

// claimGroup is how many deliveries of a batch are claimed at a time,
// just ahead of the senders: claims are not held long before their send.
const claimGroup = 64

// pool is a lane's long-lived senders. The batches in flight on the lane
// hand it their claimed deliveries; a fixed set of goroutines sends them,
// so the goroutines (and the stacks the garbage collector scans) do not
// grow with the batches in flight, and each lane keeps its own budget.
type pool struct {
	jobs chan job
	wg   sync.WaitGroup
}

type job struct {
	b *batch
	i int
}

// newPool starts senders; turns, when set, gives each send its turn (the
// bulk lane's senders wait there while urgent work is in hand, see
// urgency).
func newPool(senders int, turns *urgency) *pool {
	p := &pool{jobs: make(chan job)}
	for range max(senders, 1) {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for j := range p.jobs {
				turns.acquire()
				j.b.send(j.i)
				turns.release()
			}
		}()
	}
	return p
}

// close stops the senders once the jobs handed to them are done.
func (p *pool) close() {
	close(p.jobs)
	p.wg.Wait()
}

// batch is one fan-out batch being sent. Its deliveries are claimed a
// group at a time, handed to the lane's pool, and each is recorded sent
// (by the marker) as soon as the provider accepted it; those not sent are
// released when the batch ends.
type batch struct {
	d        *Dispatcher
	ctx      context.Context
	m        kafkaMessage
	env      producer.Envelope
	channel  channels.Channel
	msg      producer.Direct
	at       func(int) delivery
	n        int
	history  []producer.Attempt
	tier     int
	owner    string
	outcomes []outcome
	sendCtx  context.Context // ctx until the batch's expiry
	keys     []deliveryKey
	rkeys    []string

	left    sync.WaitGroup // handed to the pool and not settled yet
	mu      sync.Mutex
	held    []bool   // claimed and not settled: renewed while they wait
	release []string // claim keys of deliveries not sent
	doubts  []string // claim keys of deliveries in doubt after their send
	errs    []error
}

// run claims, sends and classifies the batch's deliveries, filling
// outcomes. An error means some outcomes are unknown (the batch is handled
// again; what was sent is recorded and is not sent twice).
func (b *batch) run() error {
	d := b.d
	b.keys, b.rkeys, b.held = make([]deliveryKey, b.n), make([]string, b.n), make([]bool, b.n)
	for i := range b.n {
		b.keys[i] = keyOf(b.msg.NotificationID, b.msg.Channels[0], b.at(i).addr)
		b.rkeys[i] = d.claims.redisKey(b.keys[i])
	}
	p := d.pool(b.env.Lane)
	// The sends share one deadline, the batch's expiry, rather than each
	// setting its own (see Dispatcher.send).
	b.sendCtx = b.ctx
	if !b.env.ExpiresAt.IsZero() {
		var cancel context.CancelFunc
		b.sendCtx, cancel = context.WithDeadline(b.ctx, b.env.ExpiresAt)
		defer cancel()
	}
	claims := d.claimsOf(b.env.Lane)
	renew := time.NewTicker(max(claims.Lease/3, time.Millisecond))
	defer renew.Stop()
	var (
		others   []int // held by another sender: settled last, the slow way
		wal      walCheck
		repaired []string
		doubts   []string // found in doubt
		found    int      // taken over, and found sent in the write-ahead record
		resent   int      // taken over, and sent again
	)
claiming:
	for start := 0; start < b.n; start += claimGroup {
		// Cancelled while the groups before were being sent: what is not
		// claimed yet is not sent.
		if start > 0 && d.cancelledNow(b.ctx, b.msg.NotificationID) {
			for i := start; i < b.n; i++ {
				b.outcomes[i] = outcome{status: loa.StatusCancelled, reason: "the notification was cancelled"}
			}
			break
		}
		end := min(start+claimGroup, b.n)
		states, err := claims.ClaimKeys(b.ctx, b.rkeys[start:end], b.owner)
		if err != nil {
			b.fail(err)
			break
		}
		for k, st := range states {
			i := start + k
			switch st {
			case alreadySent:
				b.outcomes[i] = outcome{status: loa.StatusSent, duplicate: true, reason: "already sent"}
				continue
			case busy:
				others = append(others, i)
				continue
			case inDoubt:
				b.outcomes[i] = doubted(false)
				continue
			}
			if st == takenOver || st == reclaimed || st == midCall || d.mayHaveLostMarks(b.m, b.env) {
				sent, err := wal.sent(b.ctx, d, b.env.ID, b.keys[i])
				// A calling claim is in doubt unless recorded sent (see midCall).
				doubt := st == midCall
				if err == nil && !sent && !doubt {
					doubt, err = wal.inDoubt(b.ctx, d, b.env, b.keys[i])
				}
				if err != nil {
					if st != midCall {
						b.mu.Lock()
						b.release = append(b.release, b.rkeys[i])
						b.mu.Unlock()
					}
					b.fail(err)
					break claiming
				}
				if sent {
					b.outcomes[i] = outcome{status: loa.StatusSent, duplicate: true, reason: "already sent (write-ahead record)"}
					repaired = append(repaired, b.rkeys[i])
					if st == takenOver {
						found++
					}
					continue
				}
				if doubt {
					b.outcomes[i] = doubted(true)
					doubts = append(doubts, b.rkeys[i])
					continue
				}
			}
			if st == takenOver {
				resent++
			}
			b.mu.Lock()
			b.held[i] = true
			b.mu.Unlock()
			b.left.Add(1)
		submit:
			for {
				select {
				case p.jobs <- job{b, i}:
					break submit
				case <-renew.C:
					b.renew()
				case <-b.ctx.Done():
					b.notSent(i, b.ctx.Err())
					break claiming
				}
			}
		}
	}
	d.reportTakeovers(b.msg.NotificationID, found, resent)
	d.markDoubted(b.ctx, b.msg.NotificationID, doubts)
	if len(repaired) > 0 {
		// Redis lost these marks; the write-ahead record had them.
		if err := claims.MarkSentKeys(b.ctx, repaired); err != nil {
			d.log.Warn("restoring sent marks in Redis failed", slog.Any("error", err))
		}
	}

	all := make(chan struct{})
	go func() { b.left.Wait(); close(all) }()
wait:
	for {
		select {
		case <-all:
			break wait
		case <-renew.C:
			b.renew()
		case <-b.ctx.Done():
			return b.ctx.Err() // the senders see it too; what they sent is recorded
		}
	}
	d.markDoubted(context.WithoutCancel(b.ctx), b.msg.NotificationID, b.doubts)
	if err := claims.ReleaseKeys(context.WithoutCancel(b.ctx), b.release, b.owner); err != nil {
		b.errs = append(b.errs, err)
	}
	// Those another sender held (a rebalance mid-batch) are settled last,
	// the slow way, waiting for that sender or its lease: this batch's own
	// claims are settled by then and cannot lapse meanwhile.
	for _, i := range others {
		if len(b.errs) > 0 {
			break
		}
		o, err := d.deliver(b.ctx, b.at(i), b.msg)
		if err != nil {
			b.errs = append(b.errs, err)
			break
		}
		b.outcomes[i] = o
	}
	if len(b.errs) > 0 {
		return b.errs[0]
	}
	return nil
}

// send is one sender's work on delivery i: the provider call, its
// classification, and — when accepted — recording it sent.
func (b *batch) send(i int) {
	if err := b.ctx.Err(); err != nil {
		b.notSent(i, err)
		return
	}
	d, dv := b.d, b.at(i)
	mk := d.markerOf(dv.env.Lane)
	mk.begin()
	ctx, at := d.attempting(b.sendCtx, dv.env, b.keys[i])
	r, err := d.send(ctx, dv.env, b.channel, d.message(dv, b.msg), b.history)
	if err != nil {
		mk.notSent()
		at.unsent() // stopped before the provider call
		b.notSent(i, err)
		return
	}
	o := d.classify(dv, b.tier, r)
	b.outcomes[i] = o
	if o.class == ClassInDoubt {
		// The provider may have it: the attempt stays written, and the
		// claim is marked in doubt when the batch ends.
		mk.notSent()
		b.doubt(i)
		return
	}
	if o.status != loa.StatusSent {
		mk.notSent()
		at.unsent()
		b.notSent(i, nil)
		return
	}
	mk.add(mark{eventID: b.env.ID, key: b.keys[i], rkey: b.rkeys[i], batch: b, index: i})
}

// notSent settles delivery i as not sent: its claim is released when the
// batch ends; err, if any, fails the batch.
func (b *batch) notSent(i int, err error) {
	b.mu.Lock()
	b.held[i] = false
	b.release = append(b.release, b.rkeys[i])
	if err != nil {
		b.errs = append(b.errs, err)
	}
	b.mu.Unlock()
	b.left.Done()
}

// doubt settles delivery i as in doubt: its claim is marked so when the
// batch ends, never released.
func (b *batch) doubt(i int) {
	b.mu.Lock()
	b.held[i] = false
	b.doubts = append(b.doubts, b.rkeys[i])
	b.mu.Unlock()
	b.left.Done()
}

// settled: delivery i is recorded sent.
func (b *batch) settled(i int) {
	b.mu.Lock()
	b.held[i] = false
	b.mu.Unlock()
	b.left.Done()
}

func (b *batch) fail(err error) {
	b.mu.Lock()
	b.errs = append(b.errs, err)
	b.mu.Unlock()
}

// renew extends the leases of the deliveries still waiting for a sender
// (the limiter may hold bulk back while urgent traffic flows), so they do
// not lapse and get taken over by another replica meanwhile.
func (b *batch) renew() {
	b.mu.Lock()
	var rkeys []string
	for i, held := range b.held {
		if held {
			rkeys = append(rkeys, b.rkeys[i])
		}
	}
	b.mu.Unlock()
	states, err := b.d.claimsOf(b.env.Lane).ClaimKeys(b.ctx, rkeys, b.owner)
	if err != nil {
		b.d.log.Warn("renewing claims failed", slog.Int("claims", len(rkeys)), slog.Any("error", err))
		return
	}
	lost := 0
	for _, st := range states {
		if st == busy {
			lost++
		}
	}
	if lost > 0 {
		b.d.log.Warn("claims lapsed while waiting to be sent; another sender may send them too", slog.Int("claims", lost))
	}
}

// walCheck looks an event's sends up in the write-ahead record once, when
// first needed.
type walCheck struct {
	loaded bool
	keys   map[deliveryKey]struct{}
	// The event's attempts, less those unsent, by delivery (see inDoubt).
	attemptsLoaded bool
	attempts       map[deliveryKey]int
}

func (w *walCheck) sent(ctx context.Context, d *Dispatcher, eventID string, k deliveryKey) (bool, error) {
	if d.wal == nil {
		return false, nil
	}
	if !w.loaded {
		b, err := d.wal.SentKeys(ctx, eventID)
		if err != nil {
			return false, err
		}
		w.keys, w.loaded = sentKeys(b), true
	}
	_, ok := w.keys[k]
	return ok, nil
}

// epochSkew covers the difference between the clocks of the producers
// (an event's creation time) and of Redis (an epoch's start).
const epochSkew = 5 * time.Minute

// mayHaveLostMarks reports whether a message may have been handled before
// Redis last lost its data (see Claims): then a delivery Redis does not
// know of may have been sent, and the write-ahead record says.
func (d *Dispatcher) mayHaveLostMarks(m kafkaMessage, env producer.Envelope) bool {
	origin := env.CreatedAt
	if !m.Time.IsZero() && (origin.IsZero() || m.Time.Before(origin)) {
		origin = m.Time
	}
	_, start := d.claims.Epoch()
	return origin.IsZero() || origin.Before(start.Add(epochSkew))
}

// reportTakeovers logs and counts deliveries taken over from senders that
// stopped without recording them (a killed dispatcher): found in the
// write-ahead record (not sent again), or sent again (each a possible
// duplicate, the in-flight window of the kill).
func (d *Dispatcher) reportTakeovers(notificationID string, found, resent int) {
	if found == 0 && resent == 0 {
		return
	}
	d.cfg.Metrics.TakenOver(found, resent)
	d.log.Warn("took over deliveries from a sender that stopped mid-send", slog.String("notification_id", notificationID),
		slog.Int("recorded_sent", found), slog.Int("sent_again", resent))
}

// cancelledNow is cancelled, asked of the store at most once every
// cancelEvery for a notification however many of its batches ask: a
// batch asks before each group of deliveries it claims after its first,
// so a notification cancelled while its batches are being sent stops
// within a group and cancelEvery, without a query a group.
func (d *Dispatcher) cancelledNow(ctx context.Context, notificationID string) bool {
	now := d.now()
	if d.cancelEvery > 0 {
		d.cancelMu.Lock()
		c, ok := d.cancelSeen[notificationID]
		d.cancelMu.Unlock()
		if ok && (c.cancelled || now.Sub(c.at) < d.cancelEvery) {
			return c.cancelled
		}
	}
	v := d.cancelled(ctx, notificationID)
	d.cancelMu.Lock()
	defer d.cancelMu.Unlock()
	if d.cancelSeen == nil || len(d.cancelSeen) >= maxCancelSeen {
		d.cancelSeen = map[string]cancelSeen{}
	}
	d.cancelSeen[notificationID] = cancelSeen{at: now, cancelled: v}
	return v
}

// cancelSeen is what cancelledNow last learnt of a notification.
type cancelSeen struct {
	at        time.Time
	cancelled bool
}

// maxCancelSeen bounds the notifications cancelledNow remembers; past it
// it forgets them all (each is asked again once).
const maxCancelSeen = 4096

// defaultCancelEvery is how often a notification's cancellation is asked
// again while its batches are being sent.
const defaultCancelEvery = 250 * time.Millisecond

// cancelled reports whether the notification's plan was cancelled, so the
// batches already planned are not sent. A store failure counts as not
// cancelled: sending a notice that was just withdrawn is better than
// losing one that was not.
func (d *Dispatcher) cancelled(ctx context.Context, notificationID string) bool {
	if d.store == nil {
		return false
	}
	c, err := d.store.PlanCancelled(ctx, notificationID)
	if err != nil {
		d.log.Warn("cannot tell whether a notification was cancelled; sending", slog.String("notification_id", notificationID), slog.Any("error", err))
	}
	return c
}
