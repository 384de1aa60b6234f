package dispatcher

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/producer"
)

// handleFanout sends one batch of a planned audience. The batch's sends
// run concurrently (FanoutConcurrency at a time), each claimed and marked
// like a direct delivery, so a redelivered batch reaches nobody twice;
// all receipts, retries and dead letters of the batch go to Kafka in one
// write, and only then is the batch's offset committed.
func (d *Dispatcher) handleFanout(ctx context.Context, m kafkaMessage, env producer.Envelope, p producer.Fanout) error {
	ch := channels.Name(p.Channel)
	msg := producer.Direct{NotificationID: p.NotificationID, Title: p.Title, Body: p.Body, Data: p.Data,
		Channels: []string{p.Channel}, Priority: p.Priority}
	recipients := p.Recipients
	if rd := env.Redelivery; rd != nil {
		recipients = []string{rd.Recipient} // a retry of one delivery of the batch
	}

	var (
		mu   sync.Mutex
		recs = make([]producer.Record, 0, len(recipients))
		errs []error
		sem  = make(chan struct{}, max(d.cfg.FanoutConcurrency, 1))
		wg   sync.WaitGroup
	)
	for _, addr := range recipients {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			o, err := d.deliver(ctx, env, msg, ch, addr, 1)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			if !o.duplicate {
				d.cfg.Metrics.Delivery(string(ch), o.provider, o.status)
			}
			recs = append(recs, d.receipt(env, msg, ch, addr, 1, o))
			switch {
			case o.retry != nil:
				// The retry carries its one address, not the whole batch.
				one := p
				one.Recipients = []string{addr}
				retry := *o.retry
				retry.Payload, _ = json.Marshal(one) // a Fanout always marshals
				recs = append(recs, d.retryRecord(retry))
			case o.deadLetter:
				dl, err := d.deadLetterRecord(m, o, ch, addr)
				if err != nil {
					errs = append(errs, err)
					return
				}
				recs = append(recs, dl)
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		// Some outcomes are unknown: handle the batch again. What was sent
		// is marked, so only the rest is sent the second time.
		return errs[0]
	}
	return d.pub.Write(ctx, recs...)
}
