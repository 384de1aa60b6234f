package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

type kafkaMessage = kafka.Message

// handleDirect delivers a direct notification on each of its channels and
// publishes one receipt per delivery (and a retry or dead letter where one
// is due). It returns nil once every record is acknowledged by Kafka.
func (d *Dispatcher) handleDirect(ctx context.Context, m kafkaMessage, env producer.Envelope, p producer.Direct) error {
	var recs []producer.Record
	emit := func(ch channels.Name, addr string, targets int, o outcome) error {
		if !o.duplicate {
			d.cfg.Metrics.Delivery(string(ch), o.provider, o.status)
		}
		recs = append(recs, d.receipt(env, p, ch, addr, targets, o))
		switch {
		case o.retry != nil:
			recs = append(recs, d.retryRecord(*o.retry))
		case o.deadLetter:
			dl, err := d.deadLetterRecord(m, o, ch, addr)
			if err != nil {
				return err
			}
			recs = append(recs, dl)
		}
		return nil
	}

	// A redelivered event (from a retry tier or a replay) is about one
	// delivery only.
	if rd := env.Redelivery; rd != nil {
		o, err := d.deliver(ctx, env, p, channels.Name(rd.Channel), rd.Recipient, max(rd.Targets, 1))
		if err != nil {
			return err
		}
		if err := emit(channels.Name(rd.Channel), rd.Recipient, max(rd.Targets, 1), o); err != nil {
			return err
		}
		return d.pub.Write(ctx, recs...)
	}

	for _, chName := range p.Channels {
		ch := channels.Name(chName)
		addrs, err := d.resolve(ctx, p.To, ch, p.App)
		if errors.Is(err, sqlstore.ErrNotFound) {
			recs = append(recs, d.receipt(env, p, ch, p.To.Value, 1, outcome{status: StatusSkipped, reason: "account not found or closed"}))
			continue
		}
		if err != nil {
			return err
		}
		if len(addrs) == 0 {
			recs = append(recs, d.receipt(env, p, ch, "", 1, outcome{status: StatusSkipped, reason: "no address on this channel"}))
			continue
		}
		reached := false
		for _, addr := range addrs {
			o, err := d.deliver(ctx, env, p, ch, addr, len(addrs))
			if err != nil {
				return err
			}
			reached = reached || o.status == StatusSent
			if err := emit(ch, addr, len(addrs), o); err != nil {
				return err
			}
		}
		if p.Fallback && reached {
			break // reached on this channel: the fallbacks are not needed
		}
	}
	return d.pub.Write(ctx, recs...)
}

// outcome is the result of one delivery.
type outcome struct {
	status     string
	class      channels.Class
	provider   string
	providerID string
	reason     string
	attempts   int
	duplicate  bool
	deadLetter bool
	history    []producer.Attempt
	retry      *producer.Envelope // the event to hold in a retry tier
}

// deliver sends one message to one address at most once, whatever the
// redeliveries. An error means the outcome is unknown and the Kafka
// message must be handled again.
func (d *Dispatcher) deliver(ctx context.Context, env producer.Envelope, p producer.Direct, ch channels.Name, addr string, targets int) (outcome, error) {
	var history []producer.Attempt
	tier := 0
	if env.Redelivery != nil {
		history, tier = env.Redelivery.History, env.Redelivery.Tier
	}
	if env.Expired(d.now()) {
		return outcome{status: StatusExpired, class: channels.Expired, reason: "expired before sending", history: history}, nil
	}
	channel, ok := d.channels[ch]
	if !ok {
		return outcome{status: StatusFailed, class: channels.Permanent, reason: "channel not configured: " + string(ch), deadLetter: true, history: history}, nil
	}
	owner := newOwner()
	for {
		state, err := d.claims.Claim(ctx, p.NotificationID, string(ch), addr, owner)
		if err != nil {
			return outcome{}, err
		}
		if state == alreadySent {
			return outcome{status: StatusSent, duplicate: true, reason: "already sent"}, nil
		}
		if state == claimed {
			break
		}
		// Another sender holds the delivery: wait for it to finish, or for
		// its lease to lapse if it died.
		select {
		case <-ctx.Done():
			return outcome{}, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}

	o, err := d.sendClaimed(ctx, env, p, channel, ch, addr, targets, history, tier)
	if err != nil {
		d.claims.Release(context.WithoutCancel(ctx), p.NotificationID, string(ch), addr, owner)
		return outcome{}, err
	}
	if o.status == StatusSent {
		if err := d.claims.MarkSent(ctx, p.NotificationID, string(ch), addr); err != nil {
			// Sent, but not remembered: a redelivery could send again. Say
			// so loudly; the receipt still records the send.
			d.log.Error("delivery sent but not marked; a redelivery may repeat it", slog.Any("error", err))
		}
		return o, nil
	}
	// Not sent: free the delivery so a retry or a replay can send it.
	if err := d.claims.Release(ctx, p.NotificationID, string(ch), addr, owner); err != nil {
		return outcome{}, err
	}
	return o, nil
}

// sendClaimed sends one claimed delivery, retrying a short transient
// failure in place, and classifies the result: sent, or what to do next
// (a retry tier, a dead letter, expired, token-dead). It neither marks nor
// releases the claim. An error means ctx ended mid-way.
func (d *Dispatcher) sendClaimed(ctx context.Context, env producer.Envelope, p producer.Direct, channel channels.Channel,
	ch channels.Name, addr string, targets int, history []producer.Attempt, tier int) (outcome, error) {
	msg := channels.Message{
		NotificationID: p.NotificationID, Kind: env.Kind, Channel: ch, To: addr,
		Title: p.Title, Body: p.Body, Data: p.Data, Priority: channels.Priority(p.Priority), ExpiresAt: env.ExpiresAt,
	}
	var (
		res     channels.Result
		sendErr error
		backoff = 200 * time.Millisecond
	)
	for attempt := 1; ; attempt++ {
		sctx, cancel := context.WithTimeout(ctx, d.cfg.SendTimeout)
		res, sendErr = channel.Send(sctx, msg)
		cancel()
		if sendErr == nil || channels.ClassOf(sendErr) != channels.Transient || attempt >= d.cfg.SendAttempts {
			break
		}
		wait := max(backoff, channels.RetryAfterOf(sendErr))
		if wait > 5*time.Second || (!env.ExpiresAt.IsZero() && d.now().Add(wait).After(env.ExpiresAt)) {
			break // a long wait belongs in a retry tier, not in a worker
		}
		history = append(history, attemptOf(d.now(), sendErr))
		select {
		case <-ctx.Done():
			return outcome{}, ctx.Err()
		case <-time.After(wait):
		}
		backoff *= 4
	}
	if sendErr == nil {
		return outcome{status: StatusSent, provider: res.Provider, providerID: res.ProviderID, attempts: len(history) + 1}, nil
	}
	now := d.now()
	history = append(history, attemptOf(now, sendErr))
	class := channels.ClassOf(sendErr)
	o := outcome{class: class, reason: sendErr.Error(), attempts: len(history), history: history}
	var ce *channels.Error
	if errors.As(sendErr, &ce) {
		o.provider = ce.Provider
	}
	switch class {
	case channels.Expired:
		o.status = StatusExpired
	case channels.TokenDead:
		o.status = StatusTokenDead // the ledger deactivates the device from the receipt
	case channels.Transient:
		if tier >= len(d.cfg.RetryTiers) {
			o.status, o.deadLetter = StatusFailed, true
			o.reason = fmt.Sprintf("gave up after %d attempts: %s", len(history), o.reason)
			break
		}
		due := now.Add(max(d.jitter(d.cfg.RetryTiers[tier]), channels.RetryAfterOf(sendErr)))
		if !env.ExpiresAt.IsZero() && !due.Before(env.ExpiresAt) {
			o.status, o.class, o.reason = StatusExpired, channels.Expired, "would expire before its retry: "+o.reason
			break
		}
		retry := env
		retry.Redelivery = &producer.Redelivery{Channel: string(ch), Recipient: addr, Targets: targets, Tier: tier + 1, DueAt: due.UTC(), History: history}
		o.status, o.retry = StatusRetrying, &retry
	default:
		o.status, o.deadLetter = StatusFailed, true
	}
	return o, nil
}

func attemptOf(at time.Time, err error) producer.Attempt {
	a := producer.Attempt{At: at.UTC(), Class: string(channels.ClassOf(err)), Reason: truncate(err.Error(), 300)}
	var ce *channels.Error
	if errors.As(err, &ce) {
		a.Provider = ce.Provider
	}
	return a
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

func (d *Dispatcher) receipt(env producer.Envelope, p producer.Direct, ch channels.Name, addr string, targets int, o outcome) producer.Record {
	b, _ := json.Marshal(d.newReceipt(env, p, ch, addr, targets, o)) // a Receipt always marshals
	return producer.Record{Topic: d.cfg.Names.Topic(topics.Receipts), Key: p.NotificationID, Value: b}
}

// newReceipt is the receipt of one delivery's outcome.
func (d *Dispatcher) newReceipt(env producer.Envelope, p producer.Direct, ch channels.Name, addr string, targets int, o outcome) Receipt {
	return Receipt{
		NotificationID: p.NotificationID, EventID: env.ID, Kind: env.Kind, Lane: string(env.Lane),
		Channel: string(ch), Recipient: addr, Status: o.status, Class: string(o.class), Provider: o.provider,
		ProviderID: o.providerID, Reason: o.reason, Targets: targets, Attempts: o.attempts, Duplicate: o.duplicate,
		At: d.now().UTC(),
	}
}

func (d *Dispatcher) deadLetterRecord(m kafkaMessage, o outcome, ch channels.Name, addr string) (producer.Record, error) {
	dl := DeadLetter{
		ID:     fmt.Sprintf("%s-%d-%d-%s-%s", m.Topic, m.Partition, m.Offset, ch, shortHash(addr)),
		Reason: o.reason, Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: string(m.Key),
		Envelope: m.Value, Channel: string(ch), Recipient: addr, Provider: o.provider, Attempts: o.attempts,
		History: o.history, At: d.now().UTC(),
	}
	b, err := json.Marshal(dl)
	if err != nil {
		return producer.Record{}, fmt.Errorf("dispatcher: dead letter: %w", err)
	}
	return producer.Record{Topic: d.cfg.Names.Topic(topics.DeadLetter), Key: dl.ID, Value: b,
		Headers: map[string]string{"reason": truncate(o.reason, 200)}}, nil
}
