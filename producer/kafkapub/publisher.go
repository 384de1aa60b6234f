// Package kafkapub is the Kafka adapter of producer: a Publisher that
// writes envelopes to their lane topic and raw records to any topic.
// Producing services depend on producer's interfaces, not on it.
package kafkapub

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

// Config configures a Publisher.
type Config struct {
	Brokers []string
	Names   topics.Names
	// BatchTimeout bounds how long a message waits for its batch to fill;
	// small, because codes are latency-critical. Default 2ms.
	BatchTimeout time.Duration
	// WriteTimeout bounds one write to the brokers. Default 10s.
	WriteTimeout time.Duration
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return fmt.Errorf("producer: no Kafka brokers configured")
	}
	return nil
}

// Publisher writes envelopes to their lane topic and raw records to any
// topic, waiting for every in-sync replica to acknowledge. It is safe for
// concurrent use; concurrent publishes are batched together.
type Publisher struct {
	w     *kafka.Writer
	names topics.Names
}

// NewPublisher returns a Publisher. It does not connect until the first
// publish.
func NewPublisher(cfg Config) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.BatchTimeout == 0 {
		cfg.BatchTimeout = 2 * time.Millisecond
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	return &Publisher{
		names: cfg.Names,
		w: &kafka.Writer{
			Addr: kafka.TCP(cfg.Brokers...),
			// Murmur2 places keys on the partitions the Java client would,
			// so other producers of the same topics agree on ordering.
			Balancer:               &kafka.Murmur2Balancer{},
			RequiredAcks:           kafka.RequireAll,
			BatchTimeout:           cfg.BatchTimeout,
			BatchSize:              1000,
			WriteTimeout:           cfg.WriteTimeout,
			MaxAttempts:            5,
			AllowAutoTopicCreation: false,
		},
	}, nil
}

// Publish writes e to its lane, keyed by e.Key. It returns when the
// brokers acknowledged the write, or with an error; on error the event may
// or may not have been written (consumers are idempotent).
func (p *Publisher) Publish(ctx context.Context, e producer.Envelope) error {
	rec, err := producer.EnvelopeRecord(p.names, e)
	if err != nil {
		return err
	}
	return p.Write(ctx, rec)
}

// Write writes records (to any topics) and waits for acknowledgement.
func (p *Publisher) Write(ctx context.Context, recs ...producer.Record) error {
	msgs := make([]kafka.Message, len(recs))
	for i, r := range recs {
		m := kafka.Message{Topic: r.Topic, Key: []byte(r.Key), Value: r.Value}
		for k, v := range r.Headers {
			m.Headers = append(m.Headers, kafka.Header{Key: k, Value: []byte(v)})
		}
		msgs[i] = m
	}
	if err := p.w.WriteMessages(ctx, msgs...); err != nil {
		return writeError(recs, err)
	}
	return nil
}

// writeError is the error of a write of recs that failed with err.
func writeError(recs []producer.Record, err error) error {
	if we, ok := errors.AsType[kafka.WriteErrors](err); ok {
		err = writeErrors(we)
	}
	return fmt.Errorf("producer: write to %s: %w", topicsOf(recs), err)
}

// writeErrors is kafka.WriteErrors with its messages' errors in the
// chain, so that a caller sees what they were (a broker that refused the
// connection is a reason to answer "retry", not an internal error).
type writeErrors kafka.WriteErrors

func (e writeErrors) Error() string { return kafka.WriteErrors(e).Error() }

func (e writeErrors) Unwrap() []error {
	var out []error
	for _, err := range e {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// Names returns the topic names the publisher writes to.
func (p *Publisher) Names() topics.Names { return p.names }

// Close flushes pending writes and releases connections.
func (p *Publisher) Close() error { return p.w.Close() }

func topicsOf(recs []producer.Record) string {
	seen := map[string]bool{}
	var out []string
	for _, r := range recs {
		if !seen[r.Topic] {
			seen[r.Topic] = true
			out = append(out, r.Topic)
		}
	}
	return strings.Join(out, ",")
}
