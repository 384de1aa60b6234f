package sms_test

import (
	"net/http"
	"sync"
	"testing"

	"github.com/loa-hub/loa/channels/channeltest"
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
	srv := channeltest.NewRoundServer(t, concurrent, rounds, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"m"}`))
	})

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
	if n := srv.Dialled(); n > 3*concurrent {
		t.Errorf("%d connections dialled for %d rounds of %d sends under way at once; want at most %d", n, rounds, concurrent, 3*concurrent)
	}
}
