package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/producer/broadcast"
)

// TestBroadcastTransitionsAreCompareAndSet: of concurrent moves from one
// state exactly one wins, and only it is in the history and the audit
// log; a four-eyes guard refuses the creator.
func TestBroadcastTransitionsAreCompareAndSet(t *testing.T) {
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			now := time.Now().UTC().Truncate(time.Millisecond)
			b := broadcast.Broadcast{ID: "bc-cas", Status: "submitted", Title: "Tiêu đề", Body: "Nội dung", Topic: "disaster",
				Audience: loa.Audience{Areas: []string{"49"}}, Channels: []string{"push"}, DocNumber: "1/UBND", DocDate: "2026-11-20",
				CreatedBy: "sub", CreatedAt: now, UpdatedAt: now}
			if err := db.CreateBroadcast(ctx, b, "10.0.0.1"); err != nil {
				t.Fatal(err)
			}
			if _, err := db.TransitionBroadcast(ctx, broadcast.Transition{ID: b.ID, From: []string{"submitted"}, To: "approved",
				Actor: "sub", NotBy: "sub", At: now}); !errors.Is(err, sqlstore.ErrStateConflict) {
				t.Errorf("the creator approved: %v", err)
			}
			var (
				wg   sync.WaitGroup
				mu   sync.Mutex
				wins []string
			)
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					to := []string{"approved", "rejected"}[i%2]
					_, err := db.TransitionBroadcast(ctx, broadcast.Transition{ID: b.ID, From: []string{"submitted"}, To: to,
						Actor: fmt.Sprintf("appr-%d", i), Decider: true, At: now})
					if err == nil {
						mu.Lock()
						wins = append(wins, to)
						mu.Unlock()
					} else if !errors.Is(err, sqlstore.ErrStateConflict) {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			if len(wins) != 1 {
				t.Fatalf("%d moves won: %v", len(wins), wins)
			}
			got, err := db.Broadcast(ctx, b.ID)
			if err != nil || got.Status != wins[0] || got.DecidedBy == "" || got.Audience.Areas[0] != "49" || got.Title != "Tiêu đề" {
				t.Errorf("stored: %+v %v", got, err)
			}
			hist, err := db.BroadcastHistory(ctx, b.ID)
			if err != nil || len(hist) != 2 || hist[1].From != "submitted" || hist[1].To != wins[0] {
				t.Errorf("history: %+v %v", hist, err)
			}
			audit, err := db.AuditLog(ctx, b.ID, 10)
			if err != nil || len(audit) != 2 || audit[0].IP != "10.0.0.1" && audit[1].IP != "10.0.0.1" {
				t.Errorf("audit: %+v %v", audit, err)
			}
			if _, err := db.TransitionBroadcast(ctx, broadcast.Transition{ID: "bc-none", From: []string{"draft"}, To: "submitted", At: now}); !errors.Is(err, sqlstore.ErrNotFound) {
				t.Errorf("unknown: %v", err)
			}
		})
	}
}

// TestBroadcastReachAndScope: a broadcast's audience size is stored once
// (a second figure, from another process, leaves the first), read back
// with the broadcast, and the list of an agency submitter holds only the
// broadcasts of their units and their own.
func TestBroadcastReachAndScope(t *testing.T) {
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			now := time.Now().UTC().Truncate(time.Millisecond)
			mk := func(id, unit, by string, at time.Time) {
				t.Helper()
				b := broadcast.Broadcast{ID: id, Status: "submitted", Title: "Tiêu đề", Body: "Nội dung", Topic: "disaster",
					Audience: loa.Audience{Areas: []string{"49"}}, Channels: []string{"push"}, DocNumber: "1/UBND", DocDate: "2026-11-20",
					Unit: unit, CreatedBy: by, CreatedAt: at, UpdatedAt: at}
				if err := db.CreateBroadcast(ctx, b, "10.0.0.1"); err != nil {
					t.Fatal(err)
				}
			}
			mk("bc-snn", "snn", "sub-snn", now)
			mk("bc-evn", "evn", "sub-evn", now.Add(time.Second))
			mk("bc-mine", "", "sub-snn", now.Add(2*time.Second))

			if b, err := db.Broadcast(ctx, "bc-snn"); err != nil || b.Reach != nil {
				t.Fatalf("before a figure is stored: %+v %v", b.Reach, err)
			}
			first := broadcast.Reach{Devices: 1000000, Phones: 999000, CountedAt: now}
			if ok, err := db.RecordReach(ctx, "bc-snn", first); err != nil || !ok {
				t.Fatalf("record: %v %v", ok, err)
			}
			if ok, err := db.RecordReach(ctx, "bc-snn", broadcast.Reach{Devices: 7, Phones: 7, CountedAt: now.Add(time.Hour)}); err != nil || ok {
				t.Fatalf("record again: %v %v, want the first figure kept", ok, err)
			}
			b, err := db.Broadcast(ctx, "bc-snn")
			if err != nil || b.Reach == nil || b.Reach.Devices != first.Devices || b.Reach.Phones != first.Phones || !b.Reach.CountedAt.Equal(now) {
				t.Fatalf("stored: %+v %v, want %+v", b.Reach, err, first)
			}
			if ok, err := db.RecordReach(ctx, "bc-none", first); err != nil || ok {
				t.Errorf("record for no broadcast: %v %v", ok, err)
			}

			ids := func(f broadcast.Filter) []string {
				t.Helper()
				f.Limit = 10
				bs, err := db.Broadcasts(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				var out []string
				for _, b := range bs {
					out = append(out, b.ID)
				}
				return out
			}
			for _, c := range []struct {
				f    broadcast.Filter
				want string
			}{
				{broadcast.Filter{}, "[bc-mine bc-evn bc-snn]"},
				{broadcast.Filter{Mine: true, Units: []string{"snn"}, Author: "sub-snn"}, "[bc-mine bc-snn]"},
				{broadcast.Filter{Mine: true, Units: []string{"evn", "x"}, Author: "sub-evn"}, "[bc-evn]"},
				{broadcast.Filter{Mine: true, Author: "stranger"}, "[]"},
				// A unit-less broadcast is no unit's: a submitter of the
				// unit "" reads only their own.
				{broadcast.Filter{Mine: true, Units: []string{""}, Author: "sub-evn"}, "[bc-evn]"},
				{broadcast.Filter{Status: "draft"}, "[]"},
			} {
				if got := fmt.Sprint(ids(c.f)); got != c.want {
					t.Errorf("%+v: %s, want %s", c.f, got, c.want)
				}
			}
		})
	}
}
