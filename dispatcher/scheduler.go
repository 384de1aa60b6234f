package dispatcher

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/producer"
)

// Scheduler publishes scheduled items when they fall due. Every
// dispatcher replica runs one; the store's claiming makes sure each item
// is published by one of them. Kafka has no delayed delivery, and nothing
// here waits on a partition: waiting work is rows, polled.
type Scheduler struct {
	store *sqlstore.DB
	pub   interface {
		Publish(ctx context.Context, e producer.Envelope) error
	}
	log *slog.Logger
	// Interval between polls when nothing was due. Default 1s.
	Interval time.Duration
	// Batch is how many due items one poll claims. Default 200.
	Batch int
	now   func() time.Time
}

// NewScheduler returns a scheduler over store publishing with pub.
func NewScheduler(store *sqlstore.DB, pub interface {
	Publish(ctx context.Context, e producer.Envelope) error
}, log *slog.Logger) *Scheduler {
	return &Scheduler{store: store, pub: pub, log: log, Interval: time.Second, Batch: 200, now: time.Now}
}

// Schedule stores env to be published at due, under id (idempotent) and
// subject (for CancelScheduled).
func Schedule(ctx context.Context, store *sqlstore.DB, id, subject string, due time.Time, env producer.Envelope) error {
	b, err := marshalEnvelope(env)
	if err != nil {
		return err
	}
	return store.Schedule(ctx, sqlstore.ScheduledItem{ID: id, Kind: env.Kind, Subject: subject, DueAt: due, Envelope: string(b)}, time.Now())
}

// Run polls until ctx ends. A poll that found a full batch polls again at
// once; otherwise it waits Interval.
func (s *Scheduler) Run(ctx context.Context) error {
	for {
		n, err := s.poll(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("scheduler: poll failed; will retry", slog.Any("error", err))
		}
		if n == s.Batch && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(s.Interval):
		}
	}
}

// poll publishes one batch of due items and returns how many it published.
func (s *Scheduler) poll(ctx context.Context) (int, error) {
	return s.store.PublishDue(ctx, s.now(), s.Batch, func(items []sqlstore.ScheduledItem) (int, error) {
		for i, it := range items {
			env, err := producer.Decode([]byte(it.Envelope))
			if err != nil {
				// A stored item that is not an event can never be published;
				// say so and count it as done rather than block the queue.
				s.log.Error("scheduler: undecodable item skipped", slog.String("id", it.ID), slog.Any("error", err))
				continue
			}
			if err := s.pub.Publish(ctx, env); err != nil {
				return i, fmt.Errorf("scheduler: publish %s: %w", it.ID, err)
			}
		}
		return len(items), nil
	})
}

func marshalEnvelope(env producer.Envelope) ([]byte, error) {
	if err := env.Validate(); err != nil {
		return nil, fmt.Errorf("dispatcher: schedule: %w", err)
	}
	return json.Marshal(env)
}
