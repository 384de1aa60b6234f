package fcm

import (
	"context"
	"testing"

	"github.com/loa-hub/loa/channels"
)

// TestPoolAdmitsByRank: with every stream but the reserve taken by bulk
// pushes, an urgent push still gets one at once; and a freed stream goes
// to the urgent push queued after the bulk ones, then to standard, then to
// bulk.
func TestPoolAdmitsByRank(t *testing.T) {
	p := &connPool{capacity: 10, reserve: 2}
	ctx := context.Background()
	for i := range 8 {
		if err := p.acquire(ctx, channels.Bulk, nopObserver{}); err != nil {
			t.Fatalf("bulk %d: %v", i, err)
		}
	}
	done := make(chan string, 10)
	wait := func(r channels.Rank, label string) {
		go func() {
			if err := p.acquire(ctx, r, nopObserver{}); err == nil {
				done <- label
			}
		}()
	}
	queued := func(r channels.Rank) int {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.queue[r].live
	}
	settle := func(r channels.Rank, n int) {
		t.Helper()
		for queued(r) != n {
			select {
			case l := <-done:
				t.Fatalf("%s got a stream while the reserve or the order should hold it back", l)
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
		if err := p.acquire(ctx, channels.Urgent, nopObserver{}); err != nil {
			t.Fatal(err)
		}
	}
	wait(channels.Urgent, "urgent")
	settle(channels.Urgent, 1)
	// All 10 streams taken; three queued. Free them one at a time: the
	// urgent push gets the first; standard and bulk only streams outside
	// the reserve (fewer than 8 in use), standard first.
	want := []struct{ urgent, standard, bulk int }{
		{0, 1, 1}, // 9 in use after the urgent push took the freed one
		{0, 1, 1}, // 9: inside the reserve
		{0, 1, 1}, // 8: inside the reserve
		{0, 0, 1}, // 7 → standard takes one
		{0, 0, 0}, // 7 → bulk takes one
	}
	for i, w := range want {
		p.release()
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
