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
// publishes one receipt per delivery. It returns nil once every receipt
// (and dead letter) is acknowledged by Kafka.
func (d *Dispatcher) handleDirect(ctx context.Context, m kafkaMessage, env producer.Envelope, p producer.Direct) error {
	var recs []producer.Record
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
			o, err := d.deliver(ctx, env, p, ch, addr)
			if err != nil {
				return err
			}
			reached = reached || o.status == StatusSent
			recs = append(recs, d.receipt(env, p, ch, addr, len(addrs), o))
			if o.deadLetter {
				dl, err := d.deadLetterRecord(m, o, ch, addr)
				if err != nil {
					return err
				}
				recs = append(recs, dl)
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
}

// deliver sends one message to one address at most once, whatever the
// redeliveries. An error means the outcome is unknown and the Kafka
// message must be handled again.
func (d *Dispatcher) deliver(ctx context.Context, env producer.Envelope, p producer.Direct, ch channels.Name, addr string) (outcome, error) {
	if env.Expired(d.now()) {
		return outcome{status: StatusExpired, class: channels.Expired, reason: "expired before sending"}, nil
	}
	channel, ok := d.channels[ch]
	if !ok {
		return outcome{status: StatusFailed, class: channels.Permanent, reason: "channel not configured: " + string(ch), deadLetter: true}, nil
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

	msg := channels.Message{
		NotificationID: p.NotificationID, Kind: env.Kind, Channel: ch, To: addr,
		Title: p.Title, Body: p.Body, Data: p.Data, Priority: channels.Priority(p.Priority), ExpiresAt: env.ExpiresAt,
	}
	var (
		res     channels.Result
		sendErr error
		attempt int
		backoff = 200 * time.Millisecond
	)
	for attempt = 1; attempt <= d.cfg.SendAttempts; attempt++ {
		sctx, cancel := context.WithTimeout(ctx, d.cfg.SendTimeout)
		res, sendErr = channel.Send(sctx, msg)
		cancel()
		if sendErr == nil || channels.ClassOf(sendErr) != channels.Transient || attempt == d.cfg.SendAttempts {
			break
		}
		wait := max(backoff, channels.RetryAfterOf(sendErr))
		if !env.ExpiresAt.IsZero() && d.now().Add(wait).After(env.ExpiresAt) {
			break
		}
		select {
		case <-ctx.Done():
			d.claims.Release(context.WithoutCancel(ctx), p.NotificationID, string(ch), addr, owner)
			return outcome{}, ctx.Err()
		case <-time.After(wait):
		}
		backoff *= 4
	}
	attempt = min(attempt, d.cfg.SendAttempts)
	if sendErr == nil {
		if err := d.claims.MarkSent(ctx, p.NotificationID, string(ch), addr); err != nil {
			// Sent, but not remembered: a redelivery could send again. Say
			// so loudly; the receipt still records the send.
			d.log.Error("delivery sent but not marked; a redelivery may repeat it", slog.Any("error", err))
		}
		return outcome{status: StatusSent, provider: res.Provider, providerID: res.ProviderID, attempts: attempt}, nil
	}
	// Not sent: free the delivery so a replay can send it.
	if err := d.claims.Release(ctx, p.NotificationID, string(ch), addr, owner); err != nil {
		return outcome{}, err
	}
	class := channels.ClassOf(sendErr)
	o := outcome{class: class, reason: sendErr.Error(), attempts: attempt}
	var ce *channels.Error
	if errors.As(sendErr, &ce) {
		o.provider = ce.Provider
	}
	switch class {
	case channels.Expired:
		o.status = StatusExpired
	case channels.TokenDead:
		o.status = StatusTokenDead
		if ch == channels.Push && d.store != nil {
			if err := d.store.DeactivateDevice(ctx, addr); err != nil {
				return outcome{}, err
			}
		}
	default:
		if env.Expired(d.now()) {
			o.status, o.class = StatusExpired, channels.Expired
			break
		}
		o.status, o.deadLetter = StatusFailed, true
	}
	return o, nil
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
	r := Receipt{
		NotificationID: p.NotificationID, EventID: env.ID, Kind: env.Kind, Lane: string(env.Lane),
		Channel: string(ch), Recipient: addr, Status: o.status, Class: string(o.class), Provider: o.provider,
		ProviderID: o.providerID, Reason: o.reason, Targets: targets, Attempts: o.attempts, Duplicate: o.duplicate,
		At: d.now().UTC(),
	}
	b, _ := json.Marshal(r) // a Receipt always marshals
	return producer.Record{Topic: d.cfg.Names.Topic(topics.Receipts), Key: p.NotificationID, Value: b}
}

func (d *Dispatcher) deadLetterRecord(m kafkaMessage, o outcome, ch channels.Name, addr string) (producer.Record, error) {
	dl := DeadLetter{
		ID:     fmt.Sprintf("%s-%d-%d-%s-%s", m.Topic, m.Partition, m.Offset, ch, shortHash(addr)),
		Reason: o.reason, Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: string(m.Key),
		Envelope: m.Value, Channel: string(ch), Recipient: addr, Provider: o.provider, Attempts: o.attempts, At: d.now().UTC(),
	}
	b, err := json.Marshal(dl)
	if err != nil {
		return producer.Record{}, fmt.Errorf("dispatcher: dead letter: %w", err)
	}
	return producer.Record{Topic: d.cfg.Names.Topic(topics.DeadLetter), Key: dl.ID, Value: b,
		Headers: map[string]string{"reason": truncate(o.reason, 200)}}, nil
}
