package sms_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/loa-hub/loa/channels/sms"
)

// TestProviderKeepsAConnectionPerSendUnderWay: a provider built without
// an HTTPClient keeps its connections to the gateway for the next sends,
// as many as it has under way at once, instead of dialling one for nearly
// every SMS (http.DefaultTransport keeps 2 a host). Each round has
// `concurrent` sends at the gateway together (it answers none before all
// arrived), so each round needs that many connections; kept, they serve
// every later round.
func TestProviderKeepsAConnectionPerSendUnderWay(t *testing.T) {
	const concurrent, rounds = 8, 10
	var (
		dialled atomic.Int64
		mu      sync.Mutex
		arrived int
		round   = make(chan struct{})
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrived++
		release := round
		if arrived == concurrent {
			arrived = 0
			round = make(chan struct{})
			close(release)
		}
		mu.Unlock()
		<-release
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"m"}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dialled.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	w, err := sms.NewWebhook(sms.WebhookConfig{URL: srv.URL + "/send"})
	if err != nil {
		t.Fatal(err)
	}
	for range rounds {
		var wg sync.WaitGroup
		errs := make(chan error, concurrent)
		for i := range concurrent {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := w.Send(t.Context(), gatewayMessage(gatewaySink{}.Address(i))); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	// Kept connections: about `concurrent` in all (a connection not yet
	// back in the pool when the next round starts costs one more). With 2
	// kept, every round after the first dials at least concurrent-2.
	if n := dialled.Load(); n > 3*concurrent {
		t.Errorf("%d connections dialled for %d rounds of %d sends under way at once; want at most %d", n, rounds, concurrent, 3*concurrent)
	}
}
