package alert_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/internal/areas"
	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/alert"
	"github.com/loa-hub/loa/producer/producertest"
)

// memStore is a hand-written alert.Store: alerts, acknowledgements and
// the audit log in memory, the areas of seedAreas, the outbox in memory.
type memStore struct {
	producertest.Outbox
	mu     sync.Mutex
	alerts map[string]alert.StoredAlert
	order  []string
	acks   map[string]map[string]bool // chain → accounts
	// members are in every audience (AccountInAudience).
	members map[string]bool
	audit   []accounts.AuditEntry
	// beforeDecide, when set, runs once before a decision (as another
	// approver would).
	beforeDecide func(id string)
}

var _ alert.Store = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{alerts: map[string]alert.StoredAlert{}, acks: map[string]map[string]bool{}}
}

var memAreas = []areas.Centroid{{Code: "20194", Lat: 15.88, Lon: 108.33}, {Code: "20197", Lat: 15.86, Lon: 108.05},
	{Code: "20227", Lat: 15.57, Lon: 108.47}, {Code: "01", Lat: 21.03, Lon: 105.85}}

func (m *memStore) CreateAlert(ctx context.Context, a alert.StoredAlert, items ...producer.OutboxItem) (alert.StoredAlert, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range m.order {
		if x := m.alerts[id]; x.Sender == a.Sender && x.CAPIdentifier == a.CAPIdentifier {
			return x, false, nil
		}
	}
	m.alerts[a.ID] = a
	m.order = append(m.order, a.ID)
	for _, it := range items {
		if err := m.Schedule(ctx, it, a.CreatedAt); err != nil {
			return a, false, err
		}
	}
	return a, true, nil
}

func (m *memStore) Alert(_ context.Context, id string) (alert.StoredAlert, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.alerts[id]
	if !ok {
		return a, fmt.Errorf("mem: alert %s: %w", id, alert.ErrNotFound)
	}
	return a, nil
}

func (m *memStore) AlertByIdentifier(_ context.Context, sender, identifier string) (alert.StoredAlert, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, a := range m.alerts {
		if a.Sender == sender && a.CAPIdentifier == identifier {
			return a, nil
		}
	}
	return alert.StoredAlert{}, fmt.Errorf("mem: %w", alert.ErrNotFound)
}

func (m *memStore) AlertsAwaiting(context.Context, string, string) ([]alert.Link, error) {
	return nil, nil
}

func (m *memStore) AlertsReferring(_ context.Context, id string) ([]alert.Link, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []alert.Link
	for _, x := range m.order {
		if a := m.alerts[x]; slices.Contains(a.RefIDs, id) {
			out = append(out, alert.Link{ID: a.ID, MsgType: a.MsgType})
		}
	}
	return out, nil
}

func (m *memStore) Alerts(_ context.Context, status, issuer string, limit int) ([]alert.StoredAlert, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []alert.StoredAlert
	for i := len(m.order) - 1; i >= 0 && len(out) < limit; i-- {
		if a := m.alerts[m.order[i]]; (status == "" || a.Status == status) && (issuer == "" || a.Issuer == issuer) {
			out = append(out, a)
		}
	}
	return out, nil
}

func (m *memStore) DecideAlert(ctx context.Context, id, from, to, by, reason string, at time.Time, items ...producer.OutboxItem) (bool, error) {
	if f := m.beforeDecide; f != nil {
		m.beforeDecide = nil
		f(id)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.alerts[id]
	if !ok || a.Status != from {
		return false, nil
	}
	a.Status, a.DecidedBy, a.DecidedAt, a.Reason = to, by, at, reason
	m.alerts[id] = a
	for _, it := range items {
		if err := m.Schedule(ctx, it, at); err != nil {
			return false, err
		}
	}
	return true, nil
}

func (m *memStore) MarkAlertPublished(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.alerts[id]
	if a.PublishedAt.IsZero() {
		a.PublishedAt = at
	}
	m.alerts[id] = a
	m.MarkPublished(producer.RecordAlert, id, at)
	return nil
}

func (m *memStore) AckAlert(_ context.Context, chain, account, _, _ string, _ time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.acks[chain] == nil {
		m.acks[chain] = map[string]bool{}
	}
	first := !m.acks[chain][account]
	m.acks[chain][account] = true
	return first, nil
}

func (m *memStore) AlertAcks(_ context.Context, chain string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(len(m.acks[chain])), nil
}

// AccountInAudience: the accounts an audience names, and those the test
// put in every audience (members).
func (m *memStore) AccountInAudience(_ context.Context, a loa.Audience, account string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Contains(a.Accounts, account) || m.members[account], nil
}

func (m *memStore) DeviceAccount(context.Context, string) (string, error) {
	return "", fmt.Errorf("mem: %w", alert.ErrNotFound)
}

func (m *memStore) ExistingAreas(_ context.Context, codes []string) ([]string, error) {
	var out []string
	for _, c := range codes {
		if ok, _ := m.AreaExists(context.Background(), c); ok {
			out = append(out, c)
		}
	}
	return out, nil
}

// AreaSubtree: "49" holds the three communes of memAreas.
func (m *memStore) AreaSubtree(_ context.Context, codes []string) ([]string, error) {
	var out []string
	for _, c := range codes {
		out = append(out, c)
		if c == "49" {
			out = append(out, "20194", "20197", "20227")
		}
	}
	return out, nil
}

func (m *memStore) AreaExists(_ context.Context, code string) (bool, error) {
	return code == "49" || slices.ContainsFunc(memAreas, func(c areas.Centroid) bool { return c.Code == code }), nil
}

func (m *memStore) LeafAreaCentroids(context.Context) ([]areas.Centroid, error) { return memAreas, nil }

func (m *memStore) AccountsByAddress(context.Context, []string, []string) (map[string]string, error) {
	return map[string]string{}, nil
}

func (m *memStore) AppendAudit(_ context.Context, e accounts.AuditEntry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.audit = append(m.audit, e)
	return nil
}

func (m *memStore) CancelPlan(context.Context, string, []string, time.Time) error { return nil }

func (m *memStore) DeliveryStats(context.Context, string) ([]producer.DeliveryStat, error) {
	return nil, nil
}

// TestServiceOnAHandWrittenStore: the service needs only alert.Store. A
// pre-authorised alert is planned on the alert lane and marked
// published; its Update is linked to it; acknowledging counts an account
// once per chain; a pending alert that another approver rejected first
// cannot be approved, and nothing of it is sent.
func TestServiceOnAHandWrittenStore(t *testing.T) {
	ctx := context.Background()
	store, pub := newMemStore(), &recorder{}
	cfg := alert.DefaultConfig()
	cfg.Senders = testSenders
	cfg.Now = func() time.Time { return testNow }
	svc, err := alert.New(cfg, store, pub, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{svc: svc, pub: pub}

	orig := r.mustPost(t, issuer, "flood_vi_en.xml")
	plans := pub.plans(t)
	if orig.Status != alert.StatusSentPreauthorised || len(plans) != 1 || !slices.Equal(plans[0].Audience.Areas, []string{"20194", "20197", "20227"}) {
		t.Fatalf("status %s, plans %+v", orig.Status, plans)
	}
	if st, _ := store.Alert(ctx, orig.ID); st.PublishedAt.IsZero() || !store.RecordPublished(producer.RecordAlert, orig.ID) {
		t.Errorf("the published alert is not marked published")
	}
	upd := r.mustPost(t, issuer, "flood_update.xml")
	d, err := svc.Get(ctx, orig.ID)
	if err != nil || !slices.Equal(d.Updates, []string{upd.ID}) {
		t.Fatalf("updates of the original: %v %v, want %s", d.Updates, err, upd.ID)
	}

	// An account the alert is not addressed to cannot acknowledge it.
	if _, err := svc.Ack(ctx, orig.ID, "acc-1", alert.AckViaSession); !errors.Is(err, alert.ErrNotFound) {
		t.Errorf("ack by an account outside the audience: %v", err)
	}
	store.members = map[string]bool{"acc-1": true}
	for i, want := range []bool{true, false} {
		if first, err := svc.Ack(ctx, orig.ID, "acc-1", alert.AckViaSession); err != nil || first != want {
			t.Fatalf("ack %d: %v %v, want first=%v", i, first, err, want)
		}
	}
	if st, err := svc.Acks(ctx, upd); err != nil || st.Acknowledged != 1 {
		t.Errorf("acks of the chain: %+v %v, want 1 (the update is the same chain)", st, err)
	}

	pending := newMemStore()
	pub2 := &recorder{}
	svc2, err := alert.New(cfg, pending, pub2, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	st := (&rig{svc: svc2, pub: pub2}).mustPost(t, writer, "flood_vi_en.xml")
	if st.Status != alert.StatusPendingApproval {
		t.Fatalf("posted by a writer: %s", st.Status)
	}
	pending.beforeDecide = func(id string) {
		if ok, err := pending.DecideAlert(ctx, id, alert.StatusPendingApproval, alert.StatusRejected, "session:other", "sai", testNow); !ok || err != nil {
			t.Errorf("the other approver's rejection: %v %v", ok, err)
		}
	}
	if _, err := svc2.Approve(ctx, st.ID, official); !errors.Is(err, alert.ErrNotPending) {
		t.Errorf("approving what another approver rejected: %v", err)
	}
	if n := len(pub2.plans(t)); n != 0 || len(pending.Items()) != 0 {
		t.Errorf("%d plans published, %d outbox items, want none", n, len(pending.Items()))
	}
	if _, err := svc2.Get(ctx, "nope"); !errors.Is(err, alert.ErrNotFound) {
		t.Errorf("unknown alert: %v", err)
	}
}
