package fcm

import (
	"crypto/tls"
	"net"
	"runtime"
	"sync"
	"time"
)

// maxQueued bounds the bytes a coalescer holds for its connection: a
// writer finding that much queued waits for the flusher to take it.
const maxQueued = 256 << 10

// closeGrace bounds how long Close waits for queued bytes to be written
// to a peer that has stopped reading.
const closeGrace = time.Second

// coalescer is a net.Conn whose writes are queued and written by one
// flusher goroutine, which writes, in one call, everything queued while
// its previous write was under way (a group commit). An HTTP/2
// connection carrying many requests at once flushes each request's
// HEADERS and DATA frames separately; through a coalescer the frames of
// every request ready at one moment leave in one write: one system call
// (and, over TLS, one record) instead of one each. A write to an idle
// connection leaves at once: there is no timer.
//
// Bytes leave in the order they were written. Write returns once its
// bytes are queued; when the connection fails to write them, the flusher
// closes it, so that its reader — HTTP/2's read loop — fails every
// request on it, and every later Write returns the error. Close writes
// what is queued, then closes the connection and stops the flusher.
type coalescer struct {
	net.Conn
	stall time.Duration // fails a write not done in this long; none when zero

	mu       sync.Mutex
	ready    sync.Cond // the flusher waits on it for bytes or Close
	room     sync.Cond // writers wait on it for the queue to drain
	queue    []byte    // bytes written, not yet taken by the flusher
	spare    []byte    // the buffer the flusher last wrote, reused as the next queue
	err      error     // the first write error; later writes return it
	closing  bool
	closeErr error
	done     chan struct{} // closed when the flusher has stopped
}

func newCoalescer(c net.Conn) *coalescer { return newStallingCoalescer(c, 0) }

// newStallingCoalescer is newCoalescer whose flusher gives a write stall
// to be done (a deadline), and fails the connection when it is not: its
// writers, who wait for the queue to drain, then get the error instead
// of waiting on a peer that stopped reading.
func newStallingCoalescer(c net.Conn, stall time.Duration) *coalescer {
	w := &coalescer{Conn: c, stall: stall, done: make(chan struct{})}
	w.ready.L, w.room.L = &w.mu, &w.mu
	go w.flush()
	return w
}

// Write queues p and returns; the flusher writes it.
func (w *coalescer) Write(p []byte) (int, error) {
	w.mu.Lock()
	for w.err == nil && !w.closing && len(w.queue) > 0 && len(w.queue)+len(p) > maxQueued {
		w.room.Wait()
	}
	switch {
	case w.err != nil:
		err := w.err
		w.mu.Unlock()
		return 0, err
	case w.closing:
		w.mu.Unlock()
		return 0, net.ErrClosed
	}
	if len(w.queue) == 0 {
		w.ready.Signal()
	}
	w.queue = append(w.queue, p...)
	w.mu.Unlock()
	return len(p), nil
}

// flush writes what is queued, in one write each time, until the
// connection is closed or fails.
func (w *coalescer) flush() {
	defer close(w.done)
	w.mu.Lock()
	for {
		for len(w.queue) == 0 && !w.closing {
			w.ready.Wait()
		}
		if len(w.queue) == 0 {
			break // closing, everything written
		}
		if !w.closing && len(w.queue) < maxQueued/2 {
			// Let the goroutines already runnable — senders woken by
			// their answers, about to write their next request — run
			// before this write, so that theirs go with it. Woken by a
			// writer, the flusher would otherwise run as soon as that
			// writer waits, and write its request alone.
			w.mu.Unlock()
			runtime.Gosched()
			w.mu.Lock()
		}
		buf, closing := w.queue, w.closing
		w.queue, w.spare = w.spare[:0], nil
		w.room.Broadcast()
		w.mu.Unlock()
		if w.stall > 0 && !closing { // Close has set its own deadline
			w.Conn.SetWriteDeadline(time.Now().Add(w.stall)) //nolint:errcheck // a connection without deadlines writes without one
		}
		_, err := w.Conn.Write(buf)
		w.mu.Lock()
		w.spare = buf[:0]
		if err != nil {
			w.err = err
			w.queue = nil
			w.room.Broadcast()
			break
		}
	}
	w.mu.Unlock()
	err := w.Conn.Close()
	w.mu.Lock()
	w.closeErr = err
	w.mu.Unlock()
}

// Close writes what is queued (giving a peer that does not read
// closeGrace), closes the connection and waits for the flusher to stop.
func (w *coalescer) Close() error {
	w.mu.Lock()
	again := w.closing
	w.closing = true
	w.ready.Signal()
	w.room.Broadcast()
	w.mu.Unlock()
	if again {
		<-w.done
		return net.ErrClosed
	}
	w.Conn.SetWriteDeadline(time.Now().Add(closeGrace)) //nolint:errcheck // a failed write ends the flusher all the same
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closeErr
}

// ConnectionState is the TLS connection's state, when the coalescer
// writes to one (HTTP/2 reports it in each response).
func (w *coalescer) ConnectionState() tls.ConnectionState {
	if c, ok := w.Conn.(interface{ ConnectionState() tls.ConnectionState }); ok {
		return c.ConnectionState()
	}
	return tls.ConnectionState{}
}
