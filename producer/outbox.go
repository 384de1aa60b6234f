package producer

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"
)

// OutboxItem is one publication waiting in the outbox: an event to put on
// its lane when it falls due. A producer writes the item in the same
// transaction as the record it publishes (a notification, an alert), or
// on its own for a publication of the future (a scheduled broadcast, an
// outage reminder); the Outbox's poller publishes every pending item once
// it is due.
type OutboxItem struct {
	// ID is unique: writing an item with an ID already written changes
	// nothing, so scheduling is idempotent.
	ID   string
	Kind string // the envelope's kind
	// Subject is what the item belongs to: a broadcast's or an outage's
	// id for cancelling its pending items, or the id of the Record.
	Subject string
	// Record, when not empty, names the stored record (of id Subject)
	// whose "published" mark the store sets when it marks the item
	// published: RecordNotification or RecordAlert.
	Record   string
	DueAt    time.Time
	Envelope []byte // the event, as JSON
}

// Outbox item statuses.
const (
	ItemPending   = "pending"
	ItemPublished = "published"
	ItemCancelled = "cancelled"
)

// Records an outbox item may mark published.
const (
	RecordNotification = "notification"
	RecordAlert        = "alert"
)

// NewOutboxItem returns the item that publishes env at due.
func NewOutboxItem(id, subject string, due time.Time, env Envelope) (OutboxItem, error) {
	if err := env.Validate(); err != nil {
		return OutboxItem{}, fmt.Errorf("producer: outbox: %w", err)
	}
	b, err := json.Marshal(env)
	if err != nil {
		return OutboxItem{}, fmt.Errorf("producer: outbox: %w", err)
	}
	return OutboxItem{ID: id, Kind: env.Kind, Subject: subject, DueAt: due, Envelope: b}, nil
}

// OutboxStore is the storage of the outbox. internal/sqlstore implements
// it.
type OutboxStore interface {
	// Schedule writes an item; an item with the same ID is left as it is.
	Schedule(ctx context.Context, it OutboxItem, now time.Time) error
	// Due returns up to limit pending items due at now, in the order
	// PublishDue claims them, without claiming them.
	Due(ctx context.Context, now time.Time, limit int) ([]OutboxItem, error)
	// PublishDue claims up to limit pending items due at now, hands them
	// to publish, and marks published (with their records) the first n
	// that publish reports; the rest stay pending. Concurrent pollers
	// claim different items.
	PublishDue(ctx context.Context, now time.Time, limit int, publish func([]OutboxItem) (n int, err error)) (int, error)
}

// EnvelopePublisher puts an envelope on its lane; *kafka.Publisher is
// one.
type EnvelopePublisher interface {
	Publish(ctx context.Context, e Envelope) error
}

// Outbox schedules publications and publishes them when due. Every
// process that publishes may run its poller: the store's claiming makes
// sure each item is published by one of them, and a crash between
// publishing and marking publishes an item again, which consumers absorb.
// Kafka has no delayed delivery, and nothing here waits on a partition:
// waiting work is rows, polled. It is safe for concurrent use.
type Outbox struct {
	store OutboxStore
	pub   EnvelopePublisher
	log   *slog.Logger
	// Interval between polls when nothing was due. Default 1s.
	Interval time.Duration
	// Batch is how many due items one poll claims. Default 200.
	Batch int
	// Now is the clock; time.Now unless a test sets it.
	Now     func() time.Time
	prepare map[string]func(ctx context.Context, id string) error
}

// NewOutbox returns an outbox over store publishing with pub.
func NewOutbox(store OutboxStore, pub EnvelopePublisher, log *slog.Logger) *Outbox {
	return &Outbox{store: store, pub: pub, log: log, Interval: time.Second, Batch: 200, Now: time.Now}
}

// Prepare registers f to run before the poller publishes an item of
// record (RecordAlert, …), with the record's id: the work its producer does
// between storing a record and publishing it, done again when the
// producer's own publish did not happen. An error leaves the item pending
// for a later poll. Call it before Run; f must be idempotent.
func (o *Outbox) Prepare(record string, f func(ctx context.Context, id string) error) {
	if o.prepare == nil {
		o.prepare = map[string]func(ctx context.Context, id string) error{}
	}
	o.prepare[record] = f
}

// Schedule writes env to be published at due, under id (idempotent) and
// subject (for cancelling).
func (o *Outbox) Schedule(ctx context.Context, id, subject string, due time.Time, env Envelope) error {
	it, err := NewOutboxItem(id, subject, due, env)
	if err != nil {
		return err
	}
	return o.store.Schedule(ctx, it, o.Now())
}

// Run polls until ctx ends, then returns nil. A poll that found a full
// batch polls again at once; otherwise it waits Interval.
func (o *Outbox) Run(ctx context.Context) error {
	for {
		n, err := o.Poll(ctx)
		if err != nil && ctx.Err() == nil {
			o.log.Warn("outbox: poll failed; will retry", slog.Any("error", err))
		}
		if n == o.Batch && err == nil {
			continue
		}
		t := time.NewTimer(o.Interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Poll publishes one batch of due items and returns how many it
// published.
func (o *Outbox) Poll(ctx context.Context) (int, error) {
	now := o.Now()
	// Prepare hooks run before the items are claimed, as they may use the
	// store that the claim holds (SQLite has one writer). An item that
	// needs a hook and was not prepared (its hook failed, or it fell due
	// between the look and the claim) stays pending for a later poll.
	prepared := map[string]bool{}
	var prepErr error
	if len(o.prepare) > 0 {
		due, err := o.store.Due(ctx, now, o.Batch)
		if err != nil {
			return 0, err
		}
		for _, it := range due {
			if f := o.prepare[it.Record]; f != nil {
				if err := f(ctx, it.Subject); err != nil {
					prepErr = fmt.Errorf("outbox: prepare %s: %w", it.ID, err)
					break
				}
				prepared[it.ID] = true
			}
		}
	}
	return o.store.PublishDue(ctx, now, o.Batch, func(items []OutboxItem) (int, error) {
		for i, it := range items {
			if o.prepare[it.Record] != nil && !prepared[it.ID] {
				return i, prepErr
			}
			env, err := Decode(it.Envelope)
			if err != nil {
				// A stored item that is not an event can never be published;
				// say so and count it as done rather than block the queue.
				o.log.Error("outbox: undecodable item skipped", slog.String("id", it.ID), slog.Any("error", err))
				continue
			}
			if err := o.pub.Publish(ctx, env); err != nil {
				return i, fmt.Errorf("outbox: publish %s: %w", it.ID, err)
			}
		}
		return len(items), nil
	})
}
