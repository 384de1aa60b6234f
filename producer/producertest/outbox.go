package producertest

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/loa-hub/loa/producer"
)

// ErrNoItem is ScheduledStatus's error for an id never scheduled.
var ErrNoItem = errors.New("producertest: no such outbox item")

// Item is an outbox item with its status (producer.ItemPending, …).
type Item struct {
	producer.OutboxItem
	Status string
}

// Outbox is an in-memory producer.OutboxStore with the cancelling that
// services use, for testing a service with a hand-written store. It
// claims items in the order internal/sqlstore does (due time, then id).
// It is safe for concurrent use; the zero value is ready.
type Outbox struct {
	mu        sync.Mutex
	items     map[string]*Item
	published map[string]time.Time // record + "/" + subject
}

var _ producer.OutboxStore = (*Outbox)(nil)

// Schedule writes an item; an item with the same ID is left as it is.
func (o *Outbox) Schedule(_ context.Context, it producer.OutboxItem, _ time.Time) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.items == nil {
		o.items = map[string]*Item{}
	}
	if _, ok := o.items[it.ID]; !ok {
		o.items[it.ID] = &Item{OutboxItem: it, Status: producer.ItemPending}
	}
	return nil
}

func (o *Outbox) due(now time.Time, limit int) []producer.OutboxItem {
	var out []producer.OutboxItem
	for _, it := range o.items {
		if it.Status == producer.ItemPending && !it.DueAt.After(now) {
			out = append(out, it.OutboxItem)
		}
	}
	slices.SortFunc(out, func(a, b producer.OutboxItem) int {
		return cmp.Or(a.DueAt.Compare(b.DueAt), cmp.Compare(a.ID, b.ID))
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// Due returns up to limit pending items due at now.
func (o *Outbox) Due(_ context.Context, now time.Time, limit int) ([]producer.OutboxItem, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.due(now, limit), nil
}

// PublishDue hands up to limit due items to publish and marks published
// the first n it reports, with their records.
func (o *Outbox) PublishDue(_ context.Context, now time.Time, limit int, publish func([]producer.OutboxItem) (int, error)) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	items := o.due(now, limit)
	if len(items) == 0 {
		return 0, nil
	}
	n, err := publish(items)
	for _, it := range items[:n] {
		o.items[it.ID].Status = producer.ItemPublished
		if it.Record != "" {
			o.markRecord(it.Record, it.Subject, now)
		}
	}
	return n, err
}

func (o *Outbox) markRecord(record, id string, at time.Time) {
	if o.published == nil {
		o.published = map[string]time.Time{}
	}
	if _, ok := o.published[record+"/"+id]; !ok {
		o.published[record+"/"+id] = at
	}
}

// MarkPublished marks a record and its pending items published, as a
// store does when its producer published the record itself.
func (o *Outbox) MarkPublished(record, id string, at time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.markRecord(record, id, at)
	for _, it := range o.items {
		if it.Record == record && it.Subject == id && it.Status == producer.ItemPending {
			it.Status = producer.ItemPublished
		}
	}
}

// RecordPublished reports whether the record (producer.RecordAlert, …)
// of id was marked published.
func (o *Outbox) RecordPublished(record, id string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, ok := o.published[record+"/"+id]
	return ok
}

// CancelScheduled cancels the pending items of subject.
func (o *Outbox) CancelScheduled(ctx context.Context, subject string) (int, error) {
	return o.CancelScheduledExcept(ctx, subject, "")
}

// CancelScheduledExcept cancels the pending items of subject but keep.
func (o *Outbox) CancelScheduledExcept(_ context.Context, subject, keep string) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, it := range o.items {
		if it.Subject == subject && it.Status == producer.ItemPending && it.ID != keep {
			it.Status = producer.ItemCancelled
			n++
		}
	}
	return n, nil
}

// ScheduledStatus returns an item's status, or ErrNoItem.
func (o *Outbox) ScheduledStatus(_ context.Context, id string) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	it, ok := o.items[id]
	if !ok {
		return "", ErrNoItem
	}
	return it.Status, nil
}

// Items returns every item, ordered by due time then id.
func (o *Outbox) Items() []Item {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]Item, 0, len(o.items))
	for _, it := range o.items {
		out = append(out, *it)
	}
	slices.SortFunc(out, func(a, b Item) int { return cmp.Or(a.DueAt.Compare(b.DueAt), cmp.Compare(a.ID, b.ID)) })
	return out
}
