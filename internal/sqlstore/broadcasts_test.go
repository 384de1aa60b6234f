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
