package gate

import (
	"context"
	"testing"

	"github.com/loa-hub/loa/channels"
)

// TestGateAdmitsByRank: with every slot but the reserve taken by bulk
// work, urgent work still gets one at once; and a freed slot goes to the
// urgent work queued after the bulk, then to standard, then to bulk.
func TestGateAdmitsByRank(t *testing.T) {
	p := New(10, 2)
	ctx := context.Background()
	for i := range 8 {
		if _, err := p.Acquire(ctx, channels.Bulk); err != nil {
			t.Fatalf("bulk %d: %v", i, err)
		}
	}
	done := make(chan string, 10)
	wait := func(r channels.Rank, label string) {
		go func() {
			if _, err := p.Acquire(ctx, r); err == nil {
				done <- label
			}
		}()
	}
	queued := p.Queued
	settle := func(r channels.Rank, n int) {
		t.Helper()
		for queued(r) != n {
			select {
			case l := <-done:
				t.Fatalf("%s got a slot while the reserve or the order should hold it back", l)
			default:
			}
		}
	}
	wait(channels.Bulk, "bulk")
	settle(channels.Bulk, 1)
	wait(channels.Standard, "standard")
	settle(channels.Standard, 1)
	// The reserve: two urgent pushes go at once, ahead of the queued ones.
	for range 2 {
		if _, err := p.Acquire(ctx, channels.Urgent); err != nil {
			t.Fatal(err)
		}
	}
	wait(channels.Urgent, "urgent")
	settle(channels.Urgent, 1)
	// All 10 slots taken; three queued. Free them one at a time: the
	// urgent push gets the first; standard and bulk only slots outside
	// the reserve (fewer than 8 in use), standard first.
	want := []struct{ urgent, standard, bulk int }{
		{0, 1, 1}, // 9 in use after the urgent push took the freed one
		{0, 1, 1}, // 9: inside the reserve
		{0, 1, 1}, // 8: inside the reserve
		{0, 0, 1}, // 7 → standard takes one
		{0, 0, 0}, // 7 → bulk takes one
	}
	for i, w := range want {
		p.Release()
		got := struct{ urgent, standard, bulk int }{queued(channels.Urgent), queued(channels.Standard), queued(channels.Bulk)}
		if got != w {
			t.Fatalf("after release %d: queued urgent/standard/bulk %v, want %v", i+1, got, w)
		}
	}
	got := map[string]bool{}
	for range 3 {
		got[<-done] = true
	}
	if len(got) != 3 {
		t.Fatalf("granted %v, want urgent, standard and bulk once each", got)
	}
}
