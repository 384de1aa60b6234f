package dispatcher

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/loa-hub/loa/internal/sqlstore"
)

// gatedLog is a write-ahead record that holds every write until open is
// closed, telling entered of each, and keeps the rows of each write.
type gatedLog struct {
	entered chan struct{}
	open    chan struct{}
	mu      sync.Mutex
	writes  [][]sqlstore.SentGroup
}

func (l *gatedLog) LogSent(ctx context.Context, groups []sqlstore.SentGroup, _ time.Time) error {
	l.entered <- struct{}{}
	select {
	case <-l.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	l.mu.Lock()
	l.writes = append(l.writes, groups)
	l.mu.Unlock()
	return nil
}

func (l *gatedLog) SentKeys(context.Context, string) ([]byte, error) { return nil, nil }

// TestMarksOfAnEventShareWriteAheadRows: while every flusher is busy,
// the marks of two events arrive interleaved; each event's marks are then
// recorded by a flusher of its own, as one write-ahead row, so that no
// write holds rows of both (a row per event in every group of marks taken
// together is how a broadcast's write-ahead rows came to hold 2.8 keys).
func TestMarksOfAnEventShareWriteAheadRows(t *testing.T) {
	wal := &gatedLog{entered: make(chan struct{}, 1024), open: make(chan struct{})}
	mk := newMarker(claimsOn(t, "miniredis"), wal, nil, slog.New(slog.DiscardHandler), time.Now)
	// An event for each flusher, to keep them all busy.
	byQueue := map[chan mark]string{}
	var events []string
	for i := 0; len(events) < markFlushers && i < 1000; i++ {
		e := fmt.Sprintf("event-%d", i)
		if q := mk.queueOf(e); byQueue[q] == "" {
			byQueue[q] = e
			events = append(events, e)
		}
	}
	for i := 0; len(events) < markFlushers; i++ { // fewer queues than flushers
		events = append(events, fmt.Sprintf("other-%d", i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { mk.run(ctx); close(stopped) }()
	defer func() { cancel(); <-stopped }()

	var done sync.WaitGroup
	add := func(event string, i int) {
		done.Add(1)
		mk.begin()
		mk.add(mark{eventID: event, key: keyOf("n", "push", fmt.Sprintf("%s-%d", event, i)),
			rkey: fmt.Sprintf("mk:%s:%d", event, i), done: done.Done})
	}
	for _, e := range events {
		add(e, -1)
		<-wal.entered // one more flusher holds a mark, waiting for the record
	}
	const each = markGroup / 2
	for i := range each {
		add(events[0], i)
		add(events[1], i)
	}
	close(wal.open)
	done.Wait()

	rows := map[string]int{}
	for _, w := range wal.writes {
		both := 0
		for _, r := range w {
			rows[r.EventID]++
			if r.EventID == events[0] || r.EventID == events[1] {
				both++
			}
		}
		if both > 1 {
			t.Errorf("one write-ahead write holds rows of both events: %d rows", len(w))
		}
	}
	for _, e := range events[:2] {
		// The mark that kept a flusher busy, then the rest in one row.
		if rows[e] != 2 {
			t.Errorf("%s: %d write-ahead rows for %d marks queued together, want 2 (the first mark's, then one)", e, rows[e], each+1)
		}
	}
	if n := mk.unmarked.Load(); n != 0 {
		t.Errorf("%d sends unmarked after every mark was recorded", n)
	}
}

// TestMarksArrivingApartShareAGroup: a flusher with a linger (the bulk
// lane's) waits for its group to fill, so marks that come one at a time —
// as a broadcast's do when the provider's answers come spread out — are
// recorded in one write-ahead write and one Redis round trip rather than
// one each; and a flusher waiting so records what it holds when the
// marker stops.
func TestMarksArrivingApartShareAGroup(t *testing.T) {
	wal := &gatedLog{entered: make(chan struct{}, 1024), open: make(chan struct{})}
	close(wal.open)
	mk := newMarker(claimsOn(t, "miniredis"), wal, nil, slog.New(slog.DiscardHandler), time.Now)
	mk.linger = time.Hour // never over within the test: the group fills, or the marker stops
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { mk.run(ctx); close(stopped) }()
	defer func() { cancel(); <-stopped }()

	q := mk.queueOf("event")
	var done sync.WaitGroup
	add := func(i int) {
		done.Add(1)
		mk.begin()
		mk.add(mark{eventID: "event", key: keyOf("n", "push", fmt.Sprint(i)), rkey: fmt.Sprintf("mk:%d", i), done: done.Done})
		for len(q) > 0 { // until a flusher took it: each mark comes alone
			runtime.Gosched()
		}
	}
	for i := range markGroup {
		add(i)
	}
	done.Wait()
	keys := func(w []sqlstore.SentGroup) int {
		n := 0
		for _, r := range w {
			n += len(r.Keys) / sqlstore.SentKeySize
		}
		return n
	}
	wal.mu.Lock()
	if len(wal.writes) != 1 || keys(wal.writes[0]) != markGroup {
		t.Errorf("%d marks arriving one at a time took %d write-ahead writes, want 1 of %d", markGroup, len(wal.writes), markGroup)
	}
	wal.mu.Unlock()

	add(markGroup) // a group of one, waiting for more when the marker stops
	cancel()
	<-stopped
	done.Wait()
	if len(wal.writes) != 2 || keys(wal.writes[1]) != 1 {
		t.Errorf("stopping with a mark gathered: %d writes, want the mark recorded in a second", len(wal.writes))
	}
	if n := mk.unmarked.Load(); n != 0 {
		t.Errorf("%d sends unmarked after every mark was recorded", n)
	}
}
