package fcm

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// TestCoalescerKeepsEveryWriteInOrder: writes from many goroutines at
// once all arrive, each whole (a frame is never split by another's), in
// the order each goroutine wrote them; and what is queued when Close is
// called still arrives before the connection closes.
func TestCoalescerKeepsEveryWriteInOrder(t *testing.T) {
	client, server := tcpPair(t)
	w := newCoalescer(client)
	const writers, each = 32, 2000
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A record: writer, sequence number, then a body of 0–300 bytes
			// of the writer's id, its length first.
			for i := range each {
				n := (g*7 + i*13) % 301
				rec := make([]byte, 10+n)
				binary.BigEndian.PutUint16(rec[0:], uint16(g))
				binary.BigEndian.PutUint32(rec[2:], uint32(i))
				binary.BigEndian.PutUint32(rec[6:], uint32(n))
				for j := range n {
					rec[10+j] = byte(g)
				}
				if _, err := w.Write(rec); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	read := make(chan error, 1)
	go func() {
		r := bufio.NewReader(server)
		next := make([]int, writers)
		head := make([]byte, 10)
		for total := 0; ; total++ {
			if _, err := io.ReadFull(r, head); err != nil {
				if err == io.EOF && total == writers*each {
					read <- nil
				} else {
					read <- fmt.Errorf("after %d records: %w", total, err)
				}
				return
			}
			g, i, n := int(binary.BigEndian.Uint16(head)), int(binary.BigEndian.Uint32(head[2:])), int(binary.BigEndian.Uint32(head[6:]))
			if g >= writers || i != next[g] || n > 300 {
				read <- fmt.Errorf("record %d: writer %d, number %d, length %d; want number %d", total, g, i, n, next[g])
				return
			}
			body := make([]byte, n)
			if _, err := io.ReadFull(r, body); err != nil || !bytes.Equal(body, bytes.Repeat([]byte{byte(g)}, n)) {
				read <- fmt.Errorf("record %d of writer %d: body cut or mixed (%v)", i, g, err)
				return
			}
			next[g]++
		}
	}()
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-read; err != nil {
		t.Fatal(err)
	}
}

// recordingConn records each write it is given; while hold is set, a
// write first reports that it started, then waits for hold to close.
type recordingConn struct {
	net.Conn
	mu      sync.Mutex
	writes  [][]byte
	started chan struct{}
	hold    chan struct{}
	fail    error
	closed  chan struct{}
}

func newRecordingConn() *recordingConn {
	return &recordingConn{started: make(chan struct{}, 1), hold: make(chan struct{}), closed: make(chan struct{})}
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	first := len(c.writes) == 0
	c.writes = append(c.writes, bytes.Clone(p))
	fail := c.fail
	c.mu.Unlock()
	if first {
		c.started <- struct{}{}
		<-c.hold
	}
	if fail != nil {
		return 0, fail
	}
	return len(p), nil
}

func (c *recordingConn) Read([]byte) (int, error) {
	<-c.closed
	return 0, net.ErrClosed
}

func (c *recordingConn) SetWriteDeadline(time.Time) error { return nil }

func (c *recordingConn) Close() error {
	close(c.closed)
	return nil
}

// TestCoalescerWritesWhatQueuedInOneWrite: what is written while the
// connection's write is under way leaves in the next write, all of it in
// one — the group commit that saves HTTP/2's frames a system call each.
func TestCoalescerWritesWhatQueuedInOneWrite(t *testing.T) {
	c := newRecordingConn()
	w := newCoalescer(c)
	if _, err := w.Write([]byte("first;")); err != nil {
		t.Fatal(err)
	}
	<-c.started // the flusher is writing the first
	var want bytes.Buffer
	for i := range 10 {
		s := fmt.Sprintf("frame-%d;", i)
		want.WriteString(s)
		if _, err := w.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	close(c.hold)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if len(c.writes) != 2 || string(c.writes[0]) != "first;" || string(c.writes[1]) != want.String() {
		t.Fatalf("writes = %q, want %q then %q", c.writes, "first;", want.String())
	}
}

// countingConn records each write; it never blocks.
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	writes int
	bytes  int
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	c.bytes += len(p)
	c.mu.Unlock()
	return len(p), nil
}

func (c *countingConn) Close() error { return nil }

func (c *countingConn) SetWriteDeadline(time.Time) error { return nil }

// TestCoalescerLetsRunnableWritersJoinTheWrite: woken by a write, the
// flusher lets the goroutines already waiting to run write first, so
// that their frames leave in its write. Senders woken together by their
// answers then share a system call, where the flusher, run as soon as the
// first of them waited, wrote each request alone. On one processor, so
// that which goroutine runs next does not depend on the machine: 64
// writers made runnable at once leave in a few writes, not 64.
func TestCoalescerLetsRunnableWritersJoinTheWrite(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	c := &countingConn{}
	w := newCoalescer(c)
	const writers = 64
	frame := bytes.Repeat([]byte{'x'}, 300)
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := w.Write(frame); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if c.bytes != writers*len(frame) {
		t.Fatalf("%d bytes written, want %d", c.bytes, writers*len(frame))
	}
	if c.writes > writers/8 {
		t.Errorf("%d writers runnable at once took %d writes, want at most %d", writers, c.writes, writers/8)
	}
}

// TestCoalescerReportsAWriteError: when the connection fails a write,
// its reader (HTTP/2's read loop, which fails the requests on it) stops
// with an error, and every later write returns the error.
func TestCoalescerReportsAWriteError(t *testing.T) {
	c := newRecordingConn()
	c.fail = errors.New("connection reset by peer")
	w := newCoalescer(c)
	if _, err := w.Write([]byte("lost")); err != nil {
		t.Fatal(err) // queued: the failure comes later
	}
	<-c.started
	close(c.hold)
	if _, err := w.Read(make([]byte, 1)); err == nil {
		t.Fatal("the reader got no error after a failed write")
	}
	<-w.done
	if _, err := w.Write([]byte("after")); !errors.Is(err, c.fail) {
		t.Fatalf("a write after the failure: %v, want %v", err, c.fail)
	}
	w.Close()
}

// TestCoalescerStopsWithTheConnection: Close stops the flusher and
// closes the connection; later writes fail instead of queueing.
func TestCoalescerStopsWithTheConnection(t *testing.T) {
	client, server := tcpPair(t)
	w := newCoalescer(client)
	if _, err := w.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.done:
	default:
		t.Fatal("the flusher still runs after Close returned")
	}
	if _, err := w.Write([]byte("more")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("a write after Close: %v, want net.ErrClosed", err)
	}
	got, err := io.ReadAll(server)
	if err != nil || string(got) != "bye" {
		t.Fatalf("the peer read %q (%v), want %q and the end of the connection", got, err, "bye")
	}
	if err := w.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("a second Close: %v, want net.ErrClosed", err)
	}
}

// TestCoalescerGivesUpOnAPeerThatDoesNotRead: when a write is not done
// within the stall deadline (the peer stopped reading), the connection
// fails, and a writer waiting for room in the full queue gets the error
// instead of waiting for the peer.
func TestCoalescerGivesUpOnAPeerThatDoesNotRead(t *testing.T) {
	client, server := net.Pipe() // a write waits for the peer to read it
	defer server.Close()
	w := newStallingCoalescer(client, 10*time.Millisecond)
	defer w.Close()
	chunk := make([]byte, maxQueued)
	var err error
	for err == nil {
		// The first fills the flusher's write, the second the queue; the
		// third waits for room until the flusher's write fails.
		_, err = w.Write(chunk)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a write to a peer that does not read: %v, want a deadline error", err)
	}
	<-w.done
}
