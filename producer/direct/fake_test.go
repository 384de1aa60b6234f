package direct_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/direct"
	"github.com/loa-hub/loa/producer/producertest"
)

// memStore is a hand-written direct.Store: notifications in a map, the
// ledger in a slice, the outbox in memory.
type memStore struct {
	producertest.Outbox
	mu         sync.Mutex
	byID       map[string]direct.Notification
	byKey      map[string]string // client + "/" + key → id
	deliveries []producer.Delivery
	accounts   map[string]bool
}

var _ direct.Store = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{byID: map[string]direct.Notification{}, byKey: map[string]string{}, accounts: map[string]bool{}}
}

func (m *memStore) CreateNotification(ctx context.Context, n direct.Notification, items ...producer.OutboxItem) (direct.Notification, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n.IdempotencyKey != "" {
		if id, ok := m.byKey[n.ClientID+"/"+n.IdempotencyKey]; ok {
			return m.get(id), false, nil
		}
		m.byKey[n.ClientID+"/"+n.IdempotencyKey] = n.ID
	}
	m.byID[n.ID] = n
	for _, it := range items {
		if err := m.Schedule(ctx, it, n.CreatedAt); err != nil {
			return direct.Notification{}, false, err
		}
	}
	return n, true, nil
}

// get is the notification with the outbox's published mark; m.mu held.
func (m *memStore) get(id string) direct.Notification {
	n := m.byID[id]
	if n.PublishedAt.IsZero() && m.RecordPublished(producer.RecordNotification, id) {
		n.PublishedAt = n.CreatedAt
	}
	return n
}

func (m *memStore) MarkPublished(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.byID[id]
	n.PublishedAt = at
	m.byID[id] = n
	m.Outbox.MarkPublished(producer.RecordNotification, id, at)
	return nil
}

func (m *memStore) Notification(_ context.Context, id string) (direct.Notification, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.byID[id]; !ok {
		return direct.Notification{}, fmt.Errorf("mem: %w", direct.ErrNotFound)
	}
	return m.get(id), nil
}

func (m *memStore) Deliveries(_ context.Context, id string) ([]producer.Delivery, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []producer.Delivery
	for _, d := range m.deliveries {
		if d.NotificationID == id {
			out = append(out, d)
		}
	}
	return out, nil
}

func (m *memStore) CancelNotification(ctx context.Context, id string, at time.Time) (direct.Notification, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.byID[id]; !ok {
		return direct.Notification{}, fmt.Errorf("mem: %w", direct.ErrNotFound)
	}
	m.CancelScheduled(ctx, id)
	n := m.get(id)
	if !n.PublishedAt.IsZero() {
		return n, fmt.Errorf("mem: %w", direct.ErrAlreadyPublished)
	}
	if n.CancelledAt.IsZero() {
		n.CancelledAt = at
	}
	m.byID[id] = n
	return n, nil
}

func (m *memStore) AccountExists(_ context.Context, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.accounts[id], nil
}

// TestServiceOnAHandWrittenStore: the service needs only direct.Store. A
// submission is stored with its outbox item and published once; a retry
// with the key returns it without publishing again, and the key with
// another body is refused; the status rolls up the ledger; a publish that
// failed is left to the outbox, which marks the notification published.
func TestServiceOnAHandWrittenStore(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, pub := newMemStore(), &producertest.Recorder{}
	store.accounts["acc-1"] = true
	svc := direct.New(direct.DefaultConfig(), store, pub, log)
	now := time.Now()
	body := "Hồ sơ của bạn đã được tiếp nhận"
	in := func(key string, to direct.To) direct.Input {
		return direct.Input{To: &to, Body: &body, Channels: []string{"sms"}, ClientID: "c", IdempotencyKey: key, ReceivedAt: now}
	}

	acc, err := svc.Submit(ctx, in("k1", direct.To{Phone: ptr("0912345678")}))
	if err != nil || acc.Replayed {
		t.Fatalf("submit: %+v %v", acc, err)
	}
	again, err := svc.Submit(ctx, in("k1", direct.To{Phone: ptr("0912345678")}))
	if err != nil || !again.Replayed || again.ID != acc.ID {
		t.Fatalf("retry with the key: %+v %v, want %s replayed", again, err, acc.ID)
	}
	if envs := pub.Take(); len(envs) != 1 || envs[0].ID != acc.ID {
		t.Fatalf("published %+v, want %s once", envs, acc.ID)
	}
	if _, err := svc.Submit(ctx, in("k1", direct.To{Phone: ptr("0987654321")})); !errors.Is(err, direct.ErrConflict) {
		t.Errorf("the key with another body: %v", err)
	}
	if _, err := svc.Submit(ctx, in("k2", direct.To{AccountID: ptr("acc-2")})); len(fields(err)) != 1 || fields(err)[0] != "to.account_id" {
		t.Errorf("an unknown account: %v", err)
	}

	store.deliveries = append(store.deliveries, producer.Delivery{NotificationID: acc.ID, Channel: "sms", Recipient: "84912345678",
		Status: loa.StatusDelivered, Provider: "esms", Targets: 1, Attempts: 1, UpdatedAt: now})
	v, err := svc.Get(ctx, acc.ID, "c", false)
	if err != nil || v.Status != loa.StatusSent || len(v.Outcomes) != 1 || v.Outcomes[0].Counts[loa.StatusDelivered] != 1 || v.Outcomes[0].Provider != "esms" {
		t.Fatalf("get: %+v %v", v, err)
	}
	if _, err := svc.Get(ctx, acc.ID, "another", false); !errors.Is(err, direct.ErrNotFound) {
		t.Errorf("another client's: %v", err)
	}

	pub.Fail(true)
	if _, err := svc.Submit(ctx, in("k3", direct.To{AccountID: ptr("acc-1")})); loa.ErrorCode(err) != loa.EUnavailable {
		t.Fatalf("submit while publishing fails: %v", err)
	}
	pub.Fail(false)
	ob := producer.NewOutbox(store, pub, log)
	ob.Now = func() time.Time { return now.Add(direct.PublishGrace + time.Second) }
	if n, err := ob.Poll(ctx); err != nil || n != 1 {
		t.Fatalf("poll: %d %v, want the failed one", n, err)
	}
	envs := pub.Take()
	if len(envs) != 1 {
		t.Fatalf("outbox published %d", len(envs))
	}
	if v, err := svc.Get(ctx, envs[0].ID, "c", false); err != nil || v.Status != loa.StatusQueued {
		t.Errorf("after the outbox: %+v %v", v, err)
	}
}
