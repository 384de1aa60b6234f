// Package sandbox is the channel of `loa dev` and of tests: instead of
// reaching a provider it records what it would have sent in an Outbox,
// which the dev API serves at GET /v1/dev/outbox.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loa-hub/loa/channels"
)

// Entry is one captured message.
type Entry struct {
	Seq            int64             `json:"seq"`
	NotificationID string            `json:"notification_id"`
	Kind           string            `json:"kind,omitempty"`
	Channel        channels.Name     `json:"channel"`
	To             string            `json:"to"`
	Title          string            `json:"title"`
	Body           string            `json:"body"`
	Data           map[string]string `json:"data,omitempty"`
	Priority       channels.Priority `json:"priority,omitempty"`
	At             time.Time         `json:"at"`
}

// Outbox keeps the most recent captured messages, oldest first, up to a
// capacity; older ones are dropped from the window but still counted. It
// is safe for concurrent use.
type Outbox struct {
	mu      sync.Mutex
	cap     int
	entries []Entry
	seq     int64
	counts  map[string]int // by delivery key, for exactly-once checks
	changed chan struct{}  // closed and replaced on every append
	onAdd   func(Entry)
}

// OnAdd registers f to be called with every captured entry (dev mode
// prints them to the console). Call it before the outbox is used.
func (o *Outbox) OnAdd(f func(Entry)) { o.onAdd = f }

// NewOutbox returns an outbox keeping up to capacity entries (10,000 when
// capacity ≤ 0).
func NewOutbox(capacity int) *Outbox {
	if capacity <= 0 {
		capacity = 10000
	}
	return &Outbox{cap: capacity, counts: map[string]int{}, changed: make(chan struct{})}
}

func deliveryKey(notificationID string, ch channels.Name, to string) string {
	return notificationID + "\x00" + string(ch) + "\x00" + to
}

func (o *Outbox) add(e Entry) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seq++
	e.Seq = o.seq
	o.entries = append(o.entries, e)
	if len(o.entries) > o.cap {
		o.entries = append(o.entries[:0:0], o.entries[len(o.entries)-o.cap:]...)
	}
	o.counts[deliveryKey(e.NotificationID, e.Channel, e.To)]++
	close(o.changed)
	o.changed = make(chan struct{})
	if o.onAdd != nil {
		o.onAdd(e)
	}
}

// Entries returns the captured messages oldest first (newest last),
// optionally only those of one notification, at most limit of the newest
// (all when limit ≤ 0).
func (o *Outbox) Entries(notificationID string, limit int) []Entry {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []Entry
	for _, e := range o.entries {
		if notificationID == "" || e.NotificationID == notificationID {
			out = append(out, e)
		}
	}
	if limit > 0 && len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out
}

// Total returns how many messages were captured since the outbox was made.
func (o *Outbox) Total() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.seq
}

// Count returns how many times one delivery (notification, channel,
// address) was captured.
func (o *Outbox) Count(notificationID string, ch channels.Name, to string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.counts[deliveryKey(notificationID, ch, to)]
}

// Duplicates returns the delivery keys captured more than once.
func (o *Outbox) Duplicates() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for k, n := range o.counts {
		if n > 1 {
			out = append(out, k+" x"+strconv.Itoa(n))
		}
	}
	return out
}

// WaitTotal blocks until at least n messages were captured, or ctx ends.
func (o *Outbox) WaitTotal(ctx context.Context, n int64) error {
	for {
		o.mu.Lock()
		seq, ch := o.seq, o.changed
		o.mu.Unlock()
		if seq >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Channel captures messages of one channel kind into an Outbox.
type Channel struct {
	name   channels.Name
	outbox *Outbox
	now    func() time.Time
	// FailNext, when positive, makes that many coming sends fail with a
	// transient error, for exercising retries in tests.
	FailNext atomic.Int64
}

var _ channels.Channel = (*Channel)(nil)

// New returns a sandbox channel of kind name writing to outbox.
func New(name channels.Name, outbox *Outbox) *Channel {
	return &Channel{name: name, outbox: outbox, now: time.Now}
}

// Send records m in the outbox. It refuses an expired message with an
// Expired error and a cancelled context with a Transient one.
func (c *Channel) Send(ctx context.Context, m channels.Message) (channels.Result, error) {
	provider := "sandbox:" + string(c.name)
	if err := ctx.Err(); err != nil {
		return channels.Result{}, &channels.Error{Class: channels.Transient, Provider: provider, Err: fmt.Errorf("%w: %w", channels.ErrNotAttempted, err)}
	}
	now := c.now()
	if m.Expired(now) {
		return channels.Result{}, channels.Errorf(channels.Expired, provider, "expired at %s", m.ExpiresAt.Format(time.RFC3339))
	}
	if c.FailNext.Load() > 0 && c.FailNext.Add(-1) >= 0 {
		return channels.Result{}, &channels.Error{Class: channels.Transient, Provider: provider, Err: channels.Refused(errors.New("injected failure"))}
	}
	c.outbox.add(Entry{
		NotificationID: m.NotificationID, Kind: m.Kind, Channel: c.name, To: m.To,
		Title: m.Title, Body: m.Body, Data: m.Data, Priority: m.Priority, At: now.UTC(),
	})
	return channels.Result{Provider: provider}, nil
}
