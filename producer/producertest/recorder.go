// Package producertest holds test doubles for code that publishes events.
package producertest

import (
	"context"
	"io"
	"sync"

	"github.com/loa-hub/loa/producer"
)

// Recorder is a publisher that keeps every envelope it is given, or fails
// with io.ErrClosedPipe while failing is set. It is safe for concurrent
// use; the zero value is ready.
type Recorder struct {
	mu   sync.Mutex
	envs []producer.Envelope
	fail bool
}

// Publish records e, or fails while Fail(true) is in force.
func (r *Recorder) Publish(_ context.Context, e producer.Envelope) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return io.ErrClosedPipe
	}
	r.envs = append(r.envs, e)
	return nil
}

// Fail makes the following publishes fail (on) or succeed again (off).
func (r *Recorder) Fail(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = on
}

// Envelopes returns a copy of what was published, in order.
func (r *Recorder) Envelopes() []producer.Envelope {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]producer.Envelope(nil), r.envs...)
}

// Take returns what was published and forgets it.
func (r *Recorder) Take() []producer.Envelope {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.envs
	r.envs = nil
	return out
}

// Len returns how many envelopes were published.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.envs)
}
