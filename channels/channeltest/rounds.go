package channeltest

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// RoundServer is an HTTP server that holds each request until n of them
// have arrived, then answers the n together: a round. A client that keeps
// its connections needs n of them for the first round and dials none for
// the later ones, which Dialled shows.
type RoundServer struct {
	*httptest.Server
	// Released receives once per round, when its requests are answered.
	Released <-chan struct{}

	dialled atomic.Int64
}

// NewRoundServer starts a RoundServer of rounds of n requests; answer
// writes each request's response once its round is complete. The server
// stops when the test ends.
func NewRoundServer(t testing.TB, n, rounds int, answer http.HandlerFunc) *RoundServer {
	var (
		mu       sync.Mutex
		arrived  int
		round    = make(chan struct{})
		released = make(chan struct{}, rounds)
	)
	s := &RoundServer{Released: released}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrived++
		release := round
		if arrived == n {
			arrived = 0
			round = make(chan struct{})
			close(release)
			select {
			case released <- struct{}{}:
			default:
			}
		}
		mu.Unlock()
		<-release
		answer(w, r)
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.dialled.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// Dialled is how many connections the server has accepted.
func (s *RoundServer) Dialled() int64 { return s.dialled.Load() }
