package outage_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/outage"
	"github.com/loa-hub/loa/producer/producertest"
)

// evnQNA posts for the two wards memStore knows.
var evnQNA = outage.Client{ID: "evn-qna", Areas: []string{"20497", "20500"}}

// memStore is a hand-written outage.Store: the outages and their notices
// in maps, the outbox in memory.
type memStore struct {
	producertest.Outbox
	mu        sync.Mutex
	outages   map[string]outage.Record
	notices   map[string]outage.NoticeRecord
	stopped   map[string]bool // notices whose plans were cancelled
	conflicts int             // SaveOutage reports a concurrent writer this many times
}

var _ outage.Store = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{outages: map[string]outage.Record{}, notices: map[string]outage.NoticeRecord{}, stopped: map[string]bool{}}
}

func (m *memStore) CancelPlan(_ context.Context, id string, _ []string, _ time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopped[id] = true
	return nil
}

func (m *memStore) UnknownAreas(_ context.Context, codes []string) ([]string, error) {
	var out []string
	for _, c := range codes {
		if c != "20497" && c != "20500" {
			out = append(out, c)
		}
	}
	return out, nil
}

func (m *memStore) AreaSubtree(_ context.Context, codes []string) ([]string, error) {
	var out []string
	for _, c := range codes {
		if c == "20497" || c == "20500" {
			out = append(out, c)
		}
	}
	return out, nil
}

func (m *memStore) Outage(_ context.Context, client, id string) (outage.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.outages[client+"/"+id]
	if !ok {
		return o, fmt.Errorf("mem: outage %s: %w", id, outage.ErrNotFound)
	}
	return o, nil
}

func (m *memStore) SaveOutage(_ context.Context, o outage.Record, prev int, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.conflicts > 0 {
		m.conflicts--
		return fmt.Errorf("mem: %w", outage.ErrConflict)
	}
	cur, ok := m.outages[o.Client+"/"+o.ID]
	if (prev == 0) == ok || ok && cur.Version != prev {
		return fmt.Errorf("mem: %w", outage.ErrConflict)
	}
	o.Notified, o.UpdatedAt = false, now
	m.outages[o.Client+"/"+o.ID] = o
	return nil
}

func (m *memStore) MarkOutageNotified(_ context.Context, client, id string, version int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if o := m.outages[client+"/"+id]; o.Version == version {
		o.Notified = true
		m.outages[client+"/"+id] = o
	}
	return nil
}

func (m *memStore) AddOutageNotice(_ context.Context, n outage.NoticeRecord, _ time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.notices[n.ID]; ok {
		old.Status, old.Detail = n.Status, n.Detail
		n = old
	}
	m.notices[n.ID] = n
	return nil
}

func (m *memStore) OutageNotices(ctx context.Context, client, id string) ([]outage.NoticeRecord, error) {
	m.mu.Lock()
	var out []outage.NoticeRecord
	for _, n := range m.notices {
		if n.Client == client && n.OutageID == id {
			out = append(out, n)
		}
	}
	m.mu.Unlock()
	for i, n := range out {
		if n.Status != outage.NoticeScheduled {
			continue
		}
		switch st, _ := m.ScheduledStatus(ctx, n.ID); st {
		case producer.ItemPublished:
			out[i].Status = outage.NoticeSent
		case producer.ItemCancelled:
			out[i].Status = outage.NoticeCancelled
		}
	}
	slices.SortFunc(out, func(a, b outage.NoticeRecord) int {
		return cmp.Or(cmp.Compare(a.Version, b.Version), a.DueAt.Compare(b.DueAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

func (m *memStore) pending() map[string]bool {
	out := map[string]bool{}
	for _, it := range m.Items() {
		if it.Status == producer.ItemPending {
			out[it.ID] = true
		}
	}
	return out
}

// TestServiceOnAHandWrittenStore: the service needs only outage.Store.
// A post schedules the reminders; a change that meets a concurrent writer
// is read again and stored, voids the earlier reminders and sends a
// change notice; a cancellation whose publish fails waits in the outbox
// and goes out with its poll.
func TestServiceOnAHandWrittenStore(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, pub := newMemStore(), &recorder{}
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, ict)
	svc := outage.New(store, pub, outage.DefaultConfig(), log)
	svc.Now = func() time.Time { return now }

	res, err := svc.Post(ctx, evnQNA, []outage.Input{base, {ID: "x", Areas: []string{"99999"}, Location: "x", Start: base.Start, End: base.End}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Accepted) != 1 || res.Accepted[0].Status != outage.StatusCreated || len(res.Rejected) != 1 || res.Rejected[0].Errors[0].Field != "areas" {
		t.Fatalf("result %+v", res)
	}
	first := reminderIDs(res.Accepted[0])
	if p := store.pending(); len(p) != 2 || !p[first["24h"]] || !p[first["2h"]] {
		t.Fatalf("pending %v, want the reminders %v", p, first)
	}
	if got := pub.take(); len(got) != 0 {
		t.Fatalf("published %d at once, want none", len(got))
	}

	store.conflicts = 1
	changed := base
	changed.Location = "Đường Trần Phú"
	res, err = svc.Post(ctx, evnQNA, []outage.Input{changed})
	if err != nil {
		t.Fatal(err)
	}
	o := res.Accepted[0]
	if o.Status != outage.StatusChanged || o.Version != 2 || store.conflicts != 0 {
		t.Fatalf("change: %+v (conflicts left %d)", o, store.conflicts)
	}
	second := reminderIDs(o)
	if p := store.pending(); len(p) != 2 || !p[second["24h"]] || !p[second["2h"]] {
		t.Fatalf("pending %v, want only version 2's reminders %v", p, second)
	}
	for _, id := range first {
		if st, _ := store.ScheduledStatus(ctx, id); st != producer.ItemCancelled {
			t.Errorf("version 1 reminder %s is %s", id, st)
		}
	}
	if got := pub.take(); len(got) != 1 || plan(t, got[0]).Data["notice"] != outage.KindChange {
		t.Fatalf("published %+v, want one change notice", got)
	}

	pub.Fail(true)
	o, err = svc.Cancel(ctx, "evn-qna", base.ID)
	if err != nil {
		t.Fatal(err)
	}
	var cancelID string
	for _, n := range o.Notices {
		if n.Kind == outage.KindCancel {
			cancelID = n.NotificationID
			if n.Status != outage.NoticeScheduled {
				t.Errorf("cancel notice %s, want scheduled while the publisher fails", n.Status)
			}
		}
	}
	if !store.pending()[cancelID] {
		t.Fatalf("cancel notice %q is not waiting in the outbox: %v", cancelID, store.pending())
	}
	pub.Fail(false)
	ob := producer.NewOutbox(store, pub, log)
	ob.Now = func() time.Time { return now }
	if n, err := ob.Poll(ctx); err != nil || n != 1 {
		t.Fatalf("poll published %d, %v; want the cancel notice", n, err)
	}
	if got := pub.take(); len(got) != 1 || got[0].ID != cancelID {
		t.Fatalf("poll published %+v, want %s", got, cancelID)
	}
	o, err = svc.Get(ctx, "evn-qna", base.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range o.Notices {
		if n.NotificationID == cancelID && n.Status != outage.NoticeSent {
			t.Errorf("cancel notice read back %s, want sent", n.Status)
		}
	}
	if _, err := svc.Get(ctx, "evn-qna", "nope"); !errors.Is(err, outage.ErrNotFound) {
		t.Errorf("unknown outage: %v", err)
	}
}
