package dispatcher

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"time"

	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

// Retry tiers. A delivery that failed transiently is written, as its event
// narrowed to that delivery (Envelope.Redelivery), to the topic of its next
// tier. Each tier topic has one delay, so its messages fall due in the
// order they arrived: the tier's consumer holds the head message until it
// is due and then hands the event back to its lane. The lanes themselves
// never wait, and a message held in a tier is not committed until it is
// back on its lane, so a restart loses nothing.

// retryRecord is the Kafka record that puts env in its tier.
func (d *Dispatcher) retryRecord(env producer.Envelope) producer.Record {
	b, _ := json.Marshal(env) // an Envelope always marshals
	tier := env.Redelivery.Tier - 1
	topic := topics.RetryTier(tier)
	if channels.Lane(env.Lane).Rank() == channels.Urgent {
		topic = topics.UrgentRetryTier(tier)
	}
	return producer.Record{Topic: d.cfg.Names.Topic(topic), Key: env.Key, Value: b,
		Headers: map[string]string{"kind": env.Kind, "due_at": env.Redelivery.DueAt.Format(time.RFC3339Nano)}}
}

// jitter spreads a delay by ± RetryJitter.
func (d *Dispatcher) jitter(delay time.Duration) time.Duration {
	if d.cfg.RetryJitter == 0 {
		return delay
	}
	f := 1 + d.cfg.RetryJitter*(2*rand.Float64()-1)
	return time.Duration(float64(delay) * f)
}

// handleRetryTier holds one tier message until it is due, then returns
// its event as a record for its lane.
func (d *Dispatcher) handleRetryTier(ctx context.Context, m kafkaMessage) ([]producer.Record, error) {
	env, err := producer.Decode(m.Value)
	if err != nil {
		return nil, &poison{reason: err.Error()}
	}
	if env.Redelivery == nil {
		return nil, &poison{reason: "dispatcher: retry-tier event without redelivery details"}
	}
	if wait := env.Redelivery.DueAt.Sub(d.now()); wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-d.stopping:
			return nil, context.Canceled // not due yet: leave it uncommitted for the next run
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	rec, err := producer.EnvelopeRecord(d.cfg.Names, env)
	if err != nil {
		return nil, &poison{reason: err.Error()}
	}
	return []producer.Record{rec}, nil
}
