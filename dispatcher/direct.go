package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/otp"
	"github.com/loa-hub/loa/producer"
)

type kafkaMessage = kafka.Message

// handleDirect delivers a direct notification on each of its channels and
// returns one receipt per delivery (and a retry or dead letter where one
// is due) for the consumer to publish.
func (d *Dispatcher) handleDirect(ctx context.Context, m kafkaMessage, env producer.Envelope, p producer.Direct) ([]producer.Record, error) {
	var recs []producer.Record
	clock := d.stageClockOf(ctx, env)
	emit := func(dv delivery, o outcome) error {
		d.reportUnanswered(env, p.NotificationID, []outcome{o})
		rc, more, err := d.settle(dv, o)
		if err != nil {
			return err
		}
		recs = append(append(recs, d.receiptRecord(rc)), more...)
		return nil
	}
	skip := func(ch channels.Name, addr, reason string) {
		dv := delivery{env: env, notificationID: p.NotificationID, ch: ch, addr: addr, targets: 1}
		recs = append(recs, d.receiptRecord(d.newReceipt(dv, outcome{status: loa.StatusSkipped, reason: reason})))
	}

	// A redelivered event (from a retry tier or a replay) is about one
	// delivery only.
	if rd := env.Redelivery; rd != nil {
		dv := delivery{m: m, env: env, notificationID: p.NotificationID, ch: channels.Name(rd.Channel), addr: rd.Recipient, targets: max(rd.Targets, 1), clock: clock}
		o, err := d.deliver(ctx, dv, p)
		if err != nil {
			return nil, err
		}
		if err := emit(dv, o); err != nil {
			return nil, err
		}
		return recs, nil
	}

	for _, chName := range p.Channels {
		ch := channels.Name(chName)
		addrs, err := d.resolve(ctx, p.To, ch, p.App)
		if errors.Is(err, sqlstore.ErrNotFound) {
			skip(ch, p.To.Value, "account not found or closed")
			continue
		}
		if err != nil {
			return nil, err
		}
		if len(addrs) == 0 {
			skip(ch, "", "no address on this channel")
			continue
		}
		reached := false
		for _, addr := range addrs {
			dv := delivery{m: m, env: env, notificationID: p.NotificationID, ch: ch, addr: addr, targets: len(addrs), clock: clock}
			if at, ok := d.nightHold(env, p, ch); ok {
				if err := d.holdDirect(ctx, dv, at); err != nil {
					return nil, err
				}
				recs = append(recs, d.receiptRecord(d.newReceipt(dv, outcome{status: loa.StatusRetrying,
					reason: "held for the night: no SMS of a non-urgent notification before " + at.UTC().Format(time.RFC3339)})))
				continue
			}
			o, err := d.deliver(ctx, dv, p)
			if err != nil {
				return nil, err
			}
			reached = reached || o.status == loa.StatusSent
			if err := emit(dv, o); err != nil {
				return nil, err
			}
		}
		if p.Fallback && reached {
			break // reached on this channel: the fallbacks are not needed
		}
	}
	return recs, nil
}

// nightHold reports until when an SMS of a direct notification waits: a
// notification of normal priority on the direct lane (a reminder, a
// feedback reply; not a code, not an alert) sent inside the province's
// night (Config.SMSNight) waits for its end.
func (d *Dispatcher) nightHold(env producer.Envelope, p producer.Direct, ch channels.Name) (time.Time, bool) {
	if ch != channels.SMS || d.cfg.SMSNight == nil || d.store == nil || env.Lane != topics.LaneDirect || channels.Priority(p.Priority) == channels.High {
		return time.Time{}, false
	}
	now := d.now()
	at := d.cfg.SMSNight.Until(now)
	return at, at.After(now)
}

// holdDirect stores the delivery dv as a scheduled redelivery of its
// event, due at: the outbox hands it back to the lane then (durable;
// the same delivery held twice is one item).
func (d *Dispatcher) holdDirect(ctx context.Context, dv delivery, at time.Time) error {
	held := dv.env
	held.ID = fmt.Sprintf("%s-night-%s-%s", dv.env.ID, dv.ch, shortHash(dv.addr))
	held.Redelivery = &producer.Redelivery{Channel: string(dv.ch), Recipient: dv.addr, Targets: dv.targets, DueAt: at.UTC()}
	it, err := producer.NewOutboxItem(held.ID, "held:"+dv.notificationID, at, held)
	if err != nil {
		return err
	}
	return d.store.Schedule(ctx, it, d.now())
}

// deliver sends one message to one address at most once, whatever the
// redeliveries. An error means the outcome is unknown and the Kafka
// message must be handled again.
func (d *Dispatcher) deliver(ctx context.Context, dv delivery, p producer.Direct) (outcome, error) {
	var history []producer.Attempt
	tier := 0
	if rd := dv.env.Redelivery; rd != nil {
		history, tier = rd.History, rd.Tier
	}
	if dv.env.Expired(d.now()) {
		return outcome{status: loa.StatusExpired, class: channels.Expired, reason: "expired before sending", history: history}, nil
	}
	channel, ok := d.channels[dv.ch]
	if !ok {
		return outcome{status: loa.StatusFailed, class: channels.Permanent, reason: "channel not configured: " + string(dv.ch), deadLetter: true, history: history}, nil
	}
	owner := d.ownerOf(dv.m)
	claims, mk := d.claimsOf(dv.env.Lane), d.markerOf(dv.env.Lane)
	key := keyOf(p.NotificationID, string(dv.ch), dv.addr)
	rkey := claims.redisKey(key)
	// A code's withdrawal is looked up with its claim, not before it: in
	// the claim's own round trip to Redis (or, when the configuration
	// brings its own look-up, at the same time), on the way of every code.
	withdrawn := d.lookUpWithdrawal(ctx, dv.env, p.NotificationID)
	// A code is claimed calling at once (see attempt): its claim is its
	// attempt's record in Redis.
	prefix := "p"
	if d.callsAtClaim(dv.env) {
		prefix = "a"
	}
	var claimedAt time.Time
	for {
		claimedAt = d.now()
		st, err := claims.claimOne(ctx, rkey, owner, prefix, withdrawn.queue())
		if err != nil {
			return outcome{}, err
		}
		if withdrawn != nil {
			w := withdrawn.answer()
			withdrawn = nil
			if w {
				if st == claimed || st == takenOver || st == reclaimed {
					claims.ReleaseKeys(context.WithoutCancel(ctx), []string{rkey}, owner)
				}
				return outcome{status: loa.StatusCancelled, reason: "the code was withdrawn: Kafka took it too late, and its request was answered 503"}, nil
			}
		}
		if st == alreadySent {
			return outcome{status: loa.StatusSent, duplicate: true, reason: "already sent"}, nil
		}
		if st == inDoubt {
			return doubted(false), nil
		}
		if st == busy {
			// Another sender holds the delivery: wait for it to finish, or
			// for its lease to lapse if it died.
			select {
			case <-ctx.Done():
				return outcome{}, ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		if st == takenOver || st == reclaimed || st == midCall || d.mayHaveLostMarks(dv.m, dv.env) {
			var wal walCheck
			sent, err := wal.sent(ctx, d, dv.env.ID, key)
			if err != nil {
				if st != midCall { // a calling claim lapses as it is, and says so again
					claims.ReleaseKeys(context.WithoutCancel(ctx), []string{rkey}, owner)
				}
				return outcome{}, err
			}
			if sent {
				if st == takenOver {
					d.reportTakeovers(p.NotificationID, 1, 0)
				}
				if err := claims.MarkSentKeys(ctx, []string{rkey}); err != nil {
					d.log.Warn("restoring a sent mark in Redis failed", slog.Any("error", err))
				}
				return outcome{status: loa.StatusSent, duplicate: true, reason: "already sent (write-ahead record)"}, nil
			}
			// A calling claim is in doubt whatever the record's attempts:
			// the row of the attempt is written behind the call.
			doubt := st == midCall
			if !doubt {
				doubt, err = wal.inDoubt(ctx, d, dv.env, key)
			}
			if err != nil {
				claims.ReleaseKeys(context.WithoutCancel(ctx), []string{rkey}, owner)
				return outcome{}, err
			}
			if doubt {
				d.markDoubted(ctx, p.NotificationID, []string{rkey})
				return doubted(true), nil
			}
			if st == takenOver {
				d.reportTakeovers(p.NotificationID, 0, 1)
			}
		}
		break
	}
	dv.clock.mark(stageClaimed)

	mk.begin()
	sctx, at := d.attemptingClaimed(ctx, dv.env, key, claims, rkey, owner, claimedAt)
	if at != nil {
		at.clock = dv.clock
	}
	// The outcome, and the message's offset after it, wait for the
	// attempt's row when it is written behind the call.
	defer at.wait()
	back := d.atProvider(dv.env.Lane)
	r, err := d.send(sctx, dv.env, channel, d.message(dv, p), history)
	back()
	if err != nil {
		mk.notSent()
		at.unsent() // stopped before the provider call
		claims.ReleaseKeys(context.WithoutCancel(ctx), []string{rkey}, owner)
		return outcome{}, err
	}
	dv.clock.mark(stageAnswered)
	o := d.classify(dv, tier, r)
	if o.class == ClassInDoubt {
		// The provider may have it: the attempt stays written, and the
		// claim says so, so that nothing sends it again.
		mk.notSent()
		d.markDoubted(ctx, p.NotificationID, []string{rkey})
		return o, nil
	}
	if o.status != loa.StatusSent {
		mk.notSent()
		at.unsent()
	}
	if o.status == loa.StatusSent {
		// Recorded at once; the outcome does not wait for more than that.
		recorded := make(chan struct{})
		mk.add(mark{eventID: dv.env.ID, key: key, rkey: rkey, done: func() { close(recorded) }})
		select {
		case <-recorded:
			dv.clock.mark(stageRecorded)
		case <-ctx.Done():
		}
		return o, nil
	}
	// Not sent: free the delivery so a retry or a replay can send it.
	if err := claims.ReleaseKeys(ctx, []string{rkey}, owner); err != nil {
		return outcome{}, err
	}
	return o, nil
}

// withdrawal is the look-up of whether an otp-lane delivery's code was
// withdrawn: queued with its claim, or under way beside it. A nil
// *withdrawal looks up nothing.
type withdrawal struct {
	d          *Dispatcher
	ctx        context.Context
	id         string               // the notification's
	prefix     string               // the SMS codes' Redis key prefix; "" with background
	read       func() (bool, error) // the queued look-up's answer, once executed
	background <-chan bool          // the configuration's own look-up (Config.Withdrawn)
}

// lookUpWithdrawal starts looking up whether the code of an otp-lane
// delivery was withdrawn; nil when there is nothing to look up.
func (d *Dispatcher) lookUpWithdrawal(ctx context.Context, env producer.Envelope, notificationID string) *withdrawal {
	if env.Lane != topics.LaneOTP {
		return nil
	}
	w := &withdrawal{d: d, ctx: ctx, id: notificationID}
	switch {
	case d.cfg.Withdrawn != nil:
		out := make(chan bool, 1)
		go func() {
			v, err := d.cfg.Withdrawn(ctx, notificationID)
			w.warn(err)
			out <- v
		}()
		w.background = out
	case d.withdrawnPrefix != "":
		w.prefix = d.withdrawnPrefix
	default:
		return nil
	}
	return w
}

// queue returns what queues the look-up beside the claim; nil when it
// is not looked up in the claim's round trip.
func (w *withdrawal) queue() func(redis.Pipeliner) {
	if w == nil || w.prefix == "" {
		return nil
	}
	return func(pipe redis.Pipeliner) {
		challenge, ok := strings.CutPrefix(w.id, "code-")
		if !ok {
			return
		}
		w.read = otp.QueueWithdrawn(w.ctx, pipe, w.prefix, challenge)
	}
}

// answer reports whether the code was withdrawn, once the claim is
// answered. A failed look-up is logged and answers not withdrawn: the
// code is sent.
func (w *withdrawal) answer() bool {
	if w.background != nil {
		return <-w.background
	}
	if w.read == nil {
		return false
	}
	v, err := w.read()
	w.warn(err)
	return v
}

func (w *withdrawal) warn(err error) {
	if err != nil {
		w.d.log.Warn("cannot tell whether a code was withdrawn; sending it", slog.String("notification_id", w.id), slog.Any("error", err))
	}
}

// message is what the channel sends for one delivery of p.
func (d *Dispatcher) message(dv delivery, p producer.Direct) channels.Message {
	m := channels.Message{
		NotificationID: p.NotificationID, Kind: dv.env.Kind, Channel: dv.ch, To: dv.addr,
		Title: p.Title, Body: p.Body, Data: p.Data, Priority: channels.Priority(p.Priority), ExpiresAt: dv.env.ExpiresAt,
		Collapse: p.Collapse, Lane: channels.Lane(dv.env.Lane),
	}
	if p.Ack && dv.ch == channels.Push && len(d.cfg.AckKey) > 0 && !strings.HasPrefix(dv.addr, "/topics/") {
		// This device's proof of receipt, for acknowledging without a
		// session.
		m.Data = maps.Clone(p.Data)
		if m.Data == nil {
			m.Data = map[string]string{}
		}
		m.Data["ack"] = producer.AckToken(d.cfg.AckKey, p.NotificationID, dv.addr)
	}
	return m
}

// resolve returns the addresses of a recipient on a channel.
func (d *Dispatcher) resolve(ctx context.Context, to producer.Recipient, ch channels.Name, app string) ([]string, error) {
	switch to.Type {
	case producer.ToPhone:
		if ch == channels.SMS {
			return []string{to.Value}, nil
		}
	case producer.ToEmail:
		if ch == channels.Email {
			return []string{to.Value}, nil
		}
	case producer.ToDevice:
		if ch == channels.Push {
			return []string{to.Value}, nil
		}
	case producer.ToTopic:
		if ch == channels.Push {
			return []string{"/topics/" + to.Value}, nil
		}
	case producer.ToAccount:
		if d.store == nil {
			return nil, errors.New("dispatcher: account recipients need a store")
		}
		c, err := d.store.Contact(ctx, to.Value, app)
		if err != nil {
			return nil, err
		}
		switch ch {
		case channels.Push:
			return c.Tokens, nil
		case channels.SMS:
			if c.Phone != "" {
				return []string{c.Phone}, nil
			}
		case channels.Email:
			if c.Email != "" {
				return []string{c.Email}, nil
			}
		}
	}
	return nil, nil
}
