package dispatcher

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/producer"
)

// handleFanout sends one batch of a planned audience. Its deliveries are
// claimed in one Redis round trip, sent concurrently (FanoutConcurrency at
// a time), and marked or released in one more, so a redelivered batch
// reaches nobody twice; it returns its receipts (packed a few hundred to a
// message), retries and dead letters for the consumer to publish in one
// write, after which the offset is committed.
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
		if err := d.sendBatch(ctx, msg, channel, at, len(recipients), outcomes, history, tier); err != nil {
			return nil, err
		}
	}

	receipts := make([]Receipt, 0, len(recipients))
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

// sendBatch claims, sends and classifies the n deliveries of one batch
// (at(i) is the i-th), filling outcomes. An error means some outcomes are
// unknown (the batch is handled again; what was sent is marked and is not
// sent twice).
func (d *Dispatcher) sendBatch(ctx context.Context, msg producer.Direct, channel channels.Channel,
	at func(int) delivery, n int, outcomes []outcome, history []producer.Attempt, tier int) error {
	if n == 0 {
		return nil
	}
	addrs := make([]string, n)
	for i := range n {
		addrs[i] = at(i).addr
	}
	ch := at(0).ch
	owner := newOwner()
	states, err := d.claims.ClaimMany(ctx, msg.NotificationID, string(ch), addrs, owner)
	if err != nil {
		return err
	}
	var (
		mu       sync.Mutex
		errs     []error
		sent     []string
		released []string
		todo     []int // indexes of the claimed deliveries, to send
		others   []int // indexes of those another sender holds
	)
	for i, st := range states {
		switch st {
		case alreadySent:
			outcomes[i] = outcome{status: loa.StatusSent, duplicate: true, reason: "already sent"}
		case busy:
			others = append(others, i)
		default:
			todo = append(todo, i)
		}
	}
	// A few long-lived senders per batch rather than a goroutine per
	// delivery: each grows its stack to the SDK's depth once, not 500 times.
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range min(max(d.cfg.FanoutConcurrency, 1), len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1)) - 1
				if k >= len(todo) {
					return
				}
				i := todo[k]
				dv := at(i)
				r, err := d.send(ctx, dv.env, channel, d.message(dv, msg), history)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
					released = append(released, dv.addr)
				} else {
					outcomes[i] = d.classify(dv, tier, r)
					if outcomes[i].status == loa.StatusSent {
						sent = append(sent, dv.addr)
					} else {
						released = append(released, dv.addr)
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := d.claims.MarkSentMany(ctx, msg.NotificationID, string(ch), sent); err != nil {
		// Sent, but not remembered: a redelivery could send again.
		d.log.Error("batch sent but not marked; a redelivery may repeat it", slog.Any("error", err))
	}
	if err := d.claims.ReleaseMany(context.WithoutCancel(ctx), msg.NotificationID, string(ch), released, owner); err != nil {
		errs = append(errs, err)
	}
	// Those another sender held (a rebalance mid-batch) are settled last,
	// the slow way, waiting for that sender or its lease: this batch's own
	// claims are settled by then and cannot lapse meanwhile.
	for _, i := range others {
		if len(errs) > 0 {
			break
		}
		o, err := d.deliver(ctx, at(i), msg)
		if err != nil {
			errs = append(errs, err)
			break
		}
		outcomes[i] = o
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

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
