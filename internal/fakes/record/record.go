package record

import (
	"context"
	"maps"
	"sync"
)

// Log is an append-only list of accepted items with a count per key
// (device token, phone number, mailbox). The zero value is ready to use and
// it is safe for concurrent use.
type Log[T any] struct {
	// Discard makes Add count items without keeping them, so a benchmark
	// of millions of messages does not hold them all; Messages is then
	// empty. Set it before first use.
	Discard bool
	// DiscardKeys also drops the per-key counts (CountFor, Duplicates then
	// see nothing), for benchmarks of millions of distinct recipients
	// whose memory should be the system's, not the fake's.
	DiscardKeys bool

	mu      sync.Mutex
	items   []T
	n       int // items added, kept or not
	byKey   map[string]int
	changed chan struct{} // closed and replaced on every change
}

// changedLocked returns the channel the next change closes.
func (l *Log[T]) changedLocked() chan struct{} {
	if l.changed == nil {
		l.changed = make(chan struct{})
	}
	return l.changed
}

func (l *Log[T]) notifyLocked() {
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
}

// Add records v as accepted for each of keys (a message to several
// recipients counts once for each).
func (l *Log[T]) Add(v T, keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	if !l.Discard {
		l.items = append(l.items, v)
	}
	if !l.DiscardKeys {
		if l.byKey == nil {
			l.byKey = map[string]int{}
		}
		for _, k := range keys {
			l.byKey[k]++
		}
	}
	l.notifyLocked()
}

// Count returns the number of items accepted.
func (l *Log[T]) Count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// CountFor returns the number of items accepted for key.
func (l *Log[T]) CountFor(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byKey[key]
}

// Counts returns a copy of the count per key.
func (l *Log[T]) Counts() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.byKey)
}

// Duplicates returns the keys accepted more than once with their counts;
// empty when every recipient got exactly one message.
func (l *Log[T]) Duplicates() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := map[string]int{}
	for k, n := range l.byKey {
		if n > 1 {
			d[k] = n
		}
	}
	return d
}

// Messages returns a copy of the accepted items in the order they were
// accepted.
func (l *Log[T]) Messages() []T {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]T(nil), l.items...)
}

// Reset forgets everything accepted.
func (l *Log[T]) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.items, l.byKey, l.n = nil, nil, 0
	l.notifyLocked()
}

// WaitCount blocks until at least n items were accepted, and returns nil;
// or until ctx ends, and returns ctx's error.
func (l *Log[T]) WaitCount(ctx context.Context, n int) error {
	for {
		l.mu.Lock()
		if l.n >= n {
			l.mu.Unlock()
			return nil
		}
		ch := l.changedLocked()
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
