package broadcast_test

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
	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/broadcast"
	"github.com/loa-hub/loa/producer/producertest"
)

// memStore is a hand-written broadcast.Store: broadcasts and their events
// in maps, the plan's progress set by the test, the outbox in memory.
type memStore struct {
	producertest.Outbox
	mu         sync.Mutex
	broadcasts map[string]broadcast.Broadcast
	events     map[string][]broadcast.Event
	// beforeMove, when set, runs before a transition (as another writer
	// would).
	beforeMove func(t broadcast.Transition)
	planDone   bool
	targeted   map[string]int64
	stats      []producer.DeliveryStat
	cancelled  []string // plans cancelled
	// counts is how many times an audience was counted; joined devices
	// are added to every count (devices registered since).
	counts, joined int
	// statsReads is how many times the ledger's counts were read.
	statsReads int
}

var _ broadcast.Store = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{broadcasts: map[string]broadcast.Broadcast{}, events: map[string][]broadcast.Event{}}
}

func (m *memStore) CreateBroadcast(_ context.Context, b broadcast.Broadcast, _ string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.broadcasts[b.ID] = b
	m.events[b.ID] = []broadcast.Event{{Seq: 1, At: b.CreatedAt, Actor: b.CreatedBy, To: b.Status}}
	return nil
}

func (m *memStore) TransitionBroadcast(_ context.Context, t broadcast.Transition) (broadcast.Broadcast, error) {
	if m.beforeMove != nil {
		f := m.beforeMove
		m.beforeMove = nil
		f(t)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.broadcasts[t.ID]
	if !ok {
		return b, fmt.Errorf("mem: %w", broadcast.ErrNotFound)
	}
	if !slices.Contains(t.From, b.Status) || t.NotBy != "" && (b.CreatedBy == t.NotBy || b.SubmittedBy == t.NotBy) {
		return broadcast.Broadcast{}, fmt.Errorf("mem: %w", broadcast.ErrMoved)
	}
	from := b.Status
	b.Status, b.UpdatedAt = t.To, t.At
	if t.Submitter {
		b.SubmittedBy = t.Actor
	}
	if t.Decider {
		b.DecidedBy = t.Actor
	}
	if t.Reason != "" {
		b.Reason = t.Reason
	}
	m.broadcasts[t.ID] = b
	m.events[t.ID] = append(m.events[t.ID], broadcast.Event{Seq: len(m.events[t.ID]) + 1, At: t.At, Actor: t.Actor, From: from, To: t.To, Reason: t.Reason})
	return b, nil
}

func (m *memStore) Broadcast(_ context.Context, id string) (broadcast.Broadcast, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.broadcasts[id]
	if !ok {
		return b, fmt.Errorf("mem: %w", broadcast.ErrNotFound)
	}
	return b, nil
}

func (m *memStore) Broadcasts(_ context.Context, f broadcast.Filter) ([]broadcast.Broadcast, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []broadcast.Broadcast
	for _, b := range m.broadcasts {
		mine := b.CreatedBy == f.Author || b.Unit != "" && slices.Contains(f.Units, b.Unit)
		if (f.Status == "" || b.Status == f.Status) && (!f.Mine || mine) {
			out = append(out, b)
		}
	}
	return out[:min(f.Limit, len(out))], nil
}

func (m *memStore) RecordReach(_ context.Context, id string, r broadcast.Reach) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.broadcasts[id]
	if !ok || b.Reach != nil {
		return false, nil
	}
	b.Reach = &r
	m.broadcasts[id] = b
	return true, nil
}

func (m *memStore) BroadcastHistory(_ context.Context, id string) ([]broadcast.Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.events[id]), nil
}

func (m *memStore) ExistingAreas(_ context.Context, codes []string) ([]string, error) {
	var out []string
	for _, c := range codes {
		if c == "49" || c == "20497" {
			out = append(out, c)
		}
	}
	return out, nil
}

func (m *memStore) AccountExists(context.Context, string) (bool, error) { return true, nil }

func (m *memStore) CountRecipients(_ context.Context, a loa.Audience, _ string) (int, int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.counts++
	return 10*len(a.Areas) + m.joined, 3 * len(a.Areas), nil
}

func (m *memStore) CancelPlan(_ context.Context, id string, _ []string, _ time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cancelled = append(m.cancelled, id)
	return nil
}

func (m *memStore) PlanDone(context.Context, string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.planDone, nil
}

func (m *memStore) PlanTargeted(context.Context, string) (map[string]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.targeted, nil
}

func (m *memStore) DeliveryStats(context.Context, string) ([]producer.DeliveryStat, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.statsReads++
	return slices.Clone(m.stats), nil
}

// TestServiceOnAHandWrittenStore: the service needs only broadcast.Store.
// An approved broadcast with a send time waits in the outbox and is
// published by its poll; reading it then finds it sending, and done once
// every planned delivery has a final outcome. A move that another writer
// beat is refused with the state the request is now in.
func TestServiceOnAHandWrittenStore(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, pub := newMemStore(), &recorder{}
	now := time.Now().UTC().Truncate(time.Second)
	svc, err := broadcast.New(broadcast.DefaultConfig(), broadcast.Deps{Store: store, Publisher: pub, Log: log, Now: func() time.Time { return now },
		Roles: roles{submitter.AccountID: {accounts.RoleAgencySubmitter}, approver.AccountID: {accounts.RoleBroadcastApprover}}})
	if err != nil {
		t.Fatal(err)
	}
	d := draft()
	d.SendAt = now.Add(time.Hour)
	b, err := svc.Create(ctx, submitter, d)
	if err != nil {
		t.Fatal(err)
	}
	if est, err := svc.Estimate(ctx, submitter, b); err != nil || est.Devices != 10 || est.Phones != 3 {
		t.Fatalf("estimate %+v %v", est, err)
	}
	if _, err := svc.Submit(ctx, submitter, b.ID); err != nil {
		t.Fatal(err)
	}
	if b, err = svc.Approve(ctx, approver, b.ID); err != nil || b.Status != string(broadcast.StatusScheduled) {
		t.Fatalf("approve: %s %v, want scheduled", b.Status, err)
	}
	if items := store.Items(); len(items) != 1 || items[0].Subject != b.ID || !items[0].DueAt.Equal(d.SendAt) {
		t.Fatalf("outbox %+v, want the plan due at %s", items, d.SendAt)
	}
	if len(pub.Envelopes()) != 0 {
		t.Fatal("published before its send time")
	}

	ob := producer.NewOutbox(store, pub, log)
	ob.Now = func() time.Time { return d.SendAt }
	if n, err := ob.Poll(ctx); err != nil || n != 1 {
		t.Fatalf("poll at the send time: %d %v", n, err)
	}
	if ps := pub.plans(t); len(ps) != 1 || ps[0].NotificationID != b.ID || ps[0].Audience.Areas[0] != "49" {
		t.Fatalf("published %+v", ps)
	}
	if b, err = svc.Get(ctx, approver, b.ID); err != nil || b.Status != string(broadcast.StatusSending) {
		t.Fatalf("after the poll: %s %v, want sending", b.Status, err)
	}
	store.planDone, store.targeted = true, map[string]int64{"push": 3}
	store.stats = []producer.DeliveryStat{{Channel: "push", Status: loa.StatusSent, Count: 2}}
	if b, _ = svc.Get(ctx, approver, b.ID); b.Status != string(broadcast.StatusSending) {
		t.Fatalf("2 of 3 delivered: %s, want sending", b.Status)
	}
	store.stats = append(store.stats, producer.DeliveryStat{Channel: "push", Status: loa.StatusFailed, Count: 1})
	if b, _ = svc.Get(ctx, approver, b.ID); b.Status != string(broadcast.StatusDone) {
		t.Fatalf("all 3 have an outcome: %s, want done", b.Status)
	}
	if h, err := svc.History(ctx, approver, b.ID); err != nil || len(h) != 6 {
		t.Errorf("history %+v %v, want draft → submitted → approved → scheduled → sending → done", h, err)
	}

	// Another writer cancels between the load and the move.
	b2, err := svc.Create(ctx, submitter, draft())
	if err != nil {
		t.Fatal(err)
	}
	store.beforeMove = func(tr broadcast.Transition) {
		if _, err := store.TransitionBroadcast(ctx, broadcast.Transition{ID: tr.ID, From: []string{"draft"}, To: "cancelled", At: now}); err != nil {
			t.Error(err)
		}
	}
	if _, err := svc.Submit(ctx, submitter, b2.ID); !errors.Is(err, broadcast.ErrState) || loa.ErrorCode(err) != loa.EBroadcastState {
		t.Errorf("submit after another writer cancelled: %v, want a state error", err)
	}
	if _, err := svc.Get(ctx, approver, "bc-none"); !errors.Is(err, broadcast.ErrNotFound) {
		t.Errorf("unknown broadcast: %v", err)
	}
}

// TestGetCountedReadsTheLedgerOnce: a read that shows a broadcast's
// counts (GET /v1/broadcasts/{id}) reads the ledger once, through its own
// count, and the broadcast moves to done from those counts; count is not
// run for an official who may not read the broadcast.
func TestGetCountedReadsTheLedgerOnce(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, pub := newMemStore(), &recorder{}
	now := time.Now().UTC().Truncate(time.Second)
	other := broadcast.Actor{AccountID: "sub-other"}
	svc, err := broadcast.New(broadcast.DefaultConfig(), broadcast.Deps{Store: store, Publisher: pub, Log: log, Now: func() time.Time { return now },
		Roles: unitRoles{submitter.AccountID: {{Unit: "snn", Role: accounts.RoleAgencySubmitter}},
			other.AccountID:    {{Unit: "evn", Role: accounts.RoleAgencySubmitter}},
			approver.AccountID: {{Unit: "sotttt", Role: accounts.RoleBroadcastApprover}}}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := svc.Create(ctx, submitter, draft())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Submit(ctx, submitter, b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Approve(ctx, approver, b.ID); err != nil {
		t.Fatal(err)
	}
	store.planDone = true
	counts := 0
	count := func(stats ...producer.DeliveryStat) func(context.Context) (map[string]int64, []producer.DeliveryStat, error) {
		return func(context.Context) (map[string]int64, []producer.DeliveryStat, error) {
			counts++
			return map[string]int64{"push": 3}, stats, nil
		}
	}
	if _, err := svc.GetCounted(ctx, other, b.ID, count()); !errors.Is(err, broadcast.ErrNotFound) || counts != 0 {
		t.Fatalf("another agency's submitter: %v, %d counts, want not found and none", err, counts)
	}
	got, err := svc.GetCounted(ctx, submitter, b.ID, count(producer.DeliveryStat{Channel: "push", Status: loa.StatusSent, Count: 2}))
	if err != nil || got.Status != string(broadcast.StatusSending) {
		t.Fatalf("2 of 3: %s %v, want sending", got.Status, err)
	}
	got, err = svc.GetCounted(ctx, approver, b.ID, count(producer.DeliveryStat{Channel: "push", Status: loa.StatusSent, Count: 2},
		producer.DeliveryStat{Channel: "push", Status: loa.StatusFailed, Count: 1}))
	if err != nil || got.Status != string(broadcast.StatusDone) {
		t.Fatalf("3 of 3: %s %v, want done", got.Status, err)
	}
	if counts != 2 || store.statsReads != 0 {
		t.Errorf("%d counts by the caller and %d by the service, want 2 and 0", counts, store.statsReads)
	}
}

// unitRoles is a fixed table of officials' role grants, with units.
type unitRoles map[string][]accounts.RoleGrant

func (r unitRoles) Roles(_ context.Context, id string) ([]accounts.RoleGrant, error) {
	return r[id], nil
}

func (r unitRoles) CheckApprover(_ context.Context, id string, submitters ...string) error {
	for _, g := range r[id] {
		if g.Role == accounts.RoleBroadcastApprover && !slices.Contains(submitters, id) {
			return nil
		}
	}
	return accounts.ErrForbidden
}

// TestListChecksABoundedNumber: listing broadcasts being sent whose plans
// are done checks at most Config.ListChecks of them a call for completion
// (a read of each one's ledger counts), each at most once per
// Config.ListRecheck, so a console refreshing a list of many broadcasts
// that never complete costs a bounded number of counts; the others are
// checked by the next calls, and moved to done once complete. A list an
// official of another agency asks for counts nothing of these.
func TestListChecksABoundedNumber(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, pub := newMemStore(), &recorder{}
	now := time.Now().UTC().Truncate(time.Second)
	other := broadcast.Actor{AccountID: "sub-other"}
	cfg := broadcast.DefaultConfig()
	svc, err := broadcast.New(cfg, broadcast.Deps{Store: store, Publisher: pub, Log: log, Now: func() time.Time { return now },
		Roles: unitRoles{submitter.AccountID: {{Unit: "snn", Role: accounts.RoleAgencySubmitter}},
			other.AccountID:    {{Unit: "evn", Role: accounts.RoleAgencySubmitter}},
			approver.AccountID: {{Unit: "sotttt", Role: accounts.RoleBroadcastApprover}}}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	for i := range n {
		if err := store.CreateBroadcast(ctx, broadcast.Broadcast{ID: fmt.Sprintf("bc-%02d", i), Status: string(broadcast.StatusSending),
			Unit: "snn", CreatedBy: submitter.AccountID, CreatedAt: now}, ""); err != nil {
			t.Fatal(err)
		}
	}
	store.planDone, store.targeted = true, map[string]int64{"push": 3}
	store.stats = []producer.DeliveryStat{{Channel: "push", Status: loa.StatusSent, Count: 2}} // never complete
	list := func(a broadcast.Actor) []broadcast.Broadcast {
		t.Helper()
		bs, err := svc.List(ctx, a, "", 500)
		if err != nil {
			t.Fatal(err)
		}
		return bs
	}

	if bs := list(other); len(bs) != 0 || store.statsReads != 0 {
		t.Fatalf("another agency's list: %d broadcasts, %d counts; want none and none", len(bs), store.statsReads)
	}
	for call, want := range []int{8, 16, 20, 20} {
		if bs := list(approver); len(bs) != n {
			t.Fatalf("call %d: %d broadcasts, want %d", call+1, len(bs), n)
		}
		if store.statsReads != want {
			t.Errorf("after call %d at the same time: %d counts in all, want %d", call+1, store.statsReads, want)
		}
	}
	now = now.Add(cfg.ListRecheck)
	list(approver)
	if store.statsReads != 28 {
		t.Errorf("a recheck period later: %d counts in all, want 28", store.statsReads)
	}

	store.stats = append(store.stats, producer.DeliveryStat{Channel: "push", Status: loa.StatusFailed, Count: 1}) // complete now
	if b, err := svc.Get(ctx, approver, "bc-19"); err != nil || b.Status != string(broadcast.StatusDone) {
		t.Fatalf("reading one checks it: %s %v, want done", b.Status, err)
	}
	done := func() int {
		k := 0
		for _, b := range list(approver) {
			if b.Status == string(broadcast.StatusDone) {
				k++
			}
		}
		return k
	}
	if k := done(); k != 9 {
		t.Errorf("after a call: %d done, want 9 (the one read, and 8 of those not checked in this period)", k)
	}
	for range 3 {
		now = now.Add(cfg.ListRecheck)
		done()
	}
	if k := done(); k != n {
		t.Errorf("%d of %d done after the rechecks", k, n)
	}
}
