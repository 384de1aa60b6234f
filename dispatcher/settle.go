package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

// A delivery goes through three steps, the same for a direct
// notification and for a fan-out batch: send (the provider call, with
// short transient failures retried in place), classify (what the result
// means: sent, or which retry tier, dead letter, expiry or dead token
// comes next) and settle (the records that say so: its receipt, and its
// retry-tier record or dead letter).

// outcome is the result of one delivery.
type outcome struct {
	status     loa.Status
	class      channels.Class
	provider   string
	providerID string
	reason     string
	attempts   int
	duplicate  bool
	deadLetter bool
	history    []producer.Attempt
	// redelivery, set when status is loa.StatusRetrying, is the delivery's
	// next retry tier and when it is due.
	redelivery *producer.Redelivery
	// resent counts the provider calls of this send that failed without
	// an answer and were followed by another try (in place, or the retry
	// tier of redelivery): each may deliver the message once more.
	resent int
	// unanswered: the delivery is in doubt because its provider call
	// failed without an answer (see noAnswer).
	unanswered bool
}

// delivery names one delivery of a lane message: what its outcome is
// recorded against.
type delivery struct {
	m   kafkaMessage
	env producer.Envelope
	// batch, for a fan-out message, is its payload: a retry carries the
	// batch narrowed to the one address.
	batch          *producer.Fanout
	notificationID string
	ch             channels.Name
	addr           string
	targets        int
	// clock observes a direct delivery's stages; nil for others.
	clock *stageClock
}

// sendResult is what sending one delivery came to: the provider's answer
// or the last error, and every failed try (those of earlier tiers too).
type sendResult struct {
	res     channels.Result
	err     error
	history []producer.Attempt
	// resent counts the tries that failed without an answer and were
	// tried again in place.
	resent int
}

// send sends msg, retrying a short transient failure in place (up to
// SendAttempts, while the wait is short and before the message expires).
// history is what earlier tiers tried. An error means ctx ended mid-way
// and the outcome is unknown.
//
// A send is bounded only by the message's expiry: it may wait long for
// its turn at a provider's rate limit (a broadcast behind codes and
// alerts, or behind a 50/s gateway), and that wait is back-pressure, not
// a failure. The provider call itself is bounded by the channel (the
// guarded providers' CallTimeout, LOA_SEND_TIMEOUT).
func (d *Dispatcher) send(ctx context.Context, env producer.Envelope, channel channels.Channel, msg channels.Message, history []producer.Attempt) (sendResult, error) {
	backoff := 200 * time.Millisecond
	resent := 0
	history = slices.Clip(history) // shared by a batch's sends: append copies
	if dl, ok := ctx.Deadline(); !env.ExpiresAt.IsZero() && (!ok || dl.After(env.ExpiresAt)) {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, env.ExpiresAt)
		defer cancel()
	}
	for attempt := 1; ; attempt++ {
		res, err := channel.Send(ctx, msg)
		if o := d.queued[env.Lane][msg.Channel]; err == nil && o != nil {
			o.Observe(d.now().Sub(env.CreatedAt).Seconds())
		}
		if errors.Is(err, errClaimLost) {
			// Not called: another sender holds the delivery now, or Redis
			// lost the claim; handling the message again settles it.
			return sendResult{}, err
		}
		if errors.Is(err, channels.ErrNotAttempted) && ctx.Err() != nil && !env.Expired(d.now()) {
			// Stopping while it waited for its turn: hand the message back
			// rather than send it to a retry tier.
			return sendResult{}, ctx.Err()
		}
		if err == nil || channels.ClassOf(err) != channels.Transient || attempt >= d.cfg.SendAttempts {
			return sendResult{res: res, err: err, history: history, resent: resent}, nil
		}
		if atMostOnce(env.Lane) && channels.MaybeDelivered(err) {
			return sendResult{res: res, err: err, history: history, resent: resent}, nil // in doubt (see classify): not tried again
		}
		wait := max(backoff, channels.RetryAfterOf(err))
		if wait > 5*time.Second || (!env.ExpiresAt.IsZero() && d.now().Add(wait).After(env.ExpiresAt)) {
			return sendResult{res: res, err: err, history: history, resent: resent}, nil // a long wait belongs in a retry tier, not in a worker
		}
		if channels.MaybeDelivered(err) {
			resent++
		}
		history = append(history, attemptOf(d.now(), err))
		select {
		case <-ctx.Done():
			return sendResult{}, ctx.Err()
		case <-time.After(wait):
		}
		backoff *= 4
	}
}

// classify says what a send result means for the delivery: sent, or
// what comes next (its retry tier after tier, a dead letter, expired,
// token-dead).
func (d *Dispatcher) classify(dv delivery, tier int, r sendResult) outcome {
	if r.err == nil {
		return outcome{status: loa.StatusSent, provider: r.res.Provider, providerID: r.res.ProviderID, attempts: len(r.history) + 1, resent: r.resent}
	}
	now := d.now()
	history := append(slices.Clip(r.history), attemptOf(now, r.err))
	class := channels.ClassOf(r.err)
	o := outcome{class: class, reason: r.err.Error(), attempts: len(history), history: history, resent: r.resent}
	var ce *channels.Error
	if errors.As(r.err, &ce) {
		o.provider = ce.Provider
	}
	switch class {
	case channels.Expired:
		o.status = loa.StatusExpired
	case channels.TokenDead:
		o.status = loa.StatusTokenDead // the ledger deactivates the device from the receipt
	case channels.Transient:
		if atMostOnce(dv.env.Lane) && channels.MaybeDelivered(r.err) {
			return noAnswer(o)
		}
		if tier >= len(d.cfg.RetryTiers) {
			o.status, o.deadLetter = loa.StatusFailed, true
			o.reason = fmt.Sprintf("gave up after %d attempts: %s", len(history), o.reason)
			break
		}
		due := now.Add(max(d.jitter(d.cfg.RetryTiers[tier]), channels.RetryAfterOf(r.err)))
		if exp := dv.env.ExpiresAt; !exp.IsZero() && !due.Before(exp) {
			o.status, o.class, o.reason = loa.StatusExpired, channels.Expired, "would expire before its retry: "+o.reason
			break
		}
		o.status = loa.StatusRetrying
		if channels.MaybeDelivered(r.err) {
			o.resent++
		}
		o.redelivery = &producer.Redelivery{Channel: string(dv.ch), Recipient: dv.addr, Targets: dv.targets,
			Tier: tier + 1, DueAt: due.UTC(), History: history}
	default:
		o.status, o.deadLetter = loa.StatusFailed, true
	}
	return o
}

// settle is the one place an outcome becomes records: it returns the
// delivery's receipt, and the retry-tier record or the dead letter that
// the outcome asks for. It counts the outcome in the metrics.
func (d *Dispatcher) settle(dv delivery, o outcome) (producer.Receipt, []producer.Record, error) {
	if !o.duplicate {
		d.cfg.Metrics.Delivery(string(dv.ch), o.provider, string(o.status))
	}
	if o.unanswered {
		d.cfg.Metrics.Unanswered(o.resent, 1)
	} else if o.resent > 0 {
		d.cfg.Metrics.Unanswered(o.resent, 0)
	}
	rc := d.newReceipt(dv, o)
	switch {
	case o.redelivery != nil:
		retry := dv.env
		retry.Redelivery = o.redelivery
		if dv.batch != nil {
			// The retry carries its one address, not the whole batch.
			one := *dv.batch
			one.Recipients = []string{dv.addr}
			retry.Payload, _ = json.Marshal(one) // a Fanout always marshals
		}
		return rc, []producer.Record{d.retryRecord(retry)}, nil
	case o.deadLetter:
		dl, err := d.deadLetterRecord(dv.m, o.reason, DeadLetter{Channel: string(dv.ch), Recipient: dv.addr,
			Provider: o.provider, Attempts: o.attempts, History: o.history})
		if err != nil {
			return producer.Receipt{}, nil, err
		}
		return rc, []producer.Record{dl}, nil
	}
	return rc, nil, nil
}

// newReceipt is the receipt of one delivery's outcome.
func (d *Dispatcher) newReceipt(dv delivery, o outcome) producer.Receipt {
	return producer.Receipt{
		NotificationID: dv.notificationID, EventID: dv.env.ID, Kind: dv.env.Kind, Lane: string(dv.env.Lane),
		Channel: string(dv.ch), Recipient: dv.addr, Status: o.status, Class: string(o.class), Provider: o.provider,
		ProviderID: o.providerID, Reason: o.reason, Targets: dv.targets, Attempts: o.attempts, Duplicate: o.duplicate,
		At: d.now().UTC(),
	}
}

// receiptRecord is the loa.receipts record of one receipt.
func (d *Dispatcher) receiptRecord(rc producer.Receipt) producer.Record {
	return receiptRecordIn(d.cfg.Names, rc)
}

// receiptRecordIn is the record of one receipt on names' receipts topic,
// keyed by its notification.
func receiptRecordIn(names topics.Names, rc producer.Receipt) producer.Record {
	b, _ := json.Marshal(rc) // a producer.Receipt always marshals
	return producer.Record{Topic: names.Topic(topics.Receipts), Key: rc.NotificationID, Value: b}
}

func attemptOf(at time.Time, err error) producer.Attempt {
	a := producer.Attempt{At: at.UTC(), Class: string(channels.ClassOf(err)), Reason: truncate(err.Error(), 300)}
	var ce *channels.Error
	if errors.As(err, &ce) {
		a.Provider = ce.Provider
	}
	return a
}
