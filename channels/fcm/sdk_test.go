package fcm

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	firebase "firebase.google.com/go/v4"
	"google.golang.org/api/option"
)

// recording answers every request as FCM does a successful send and
// keeps each request's URL and headers.
type recording struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (r *recording) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req.Clone(context.Background()))
	r.mu.Unlock()
	authorized := req.Clone(req.Context())
	authorized.Header.Set("Authorization", "Bearer ya29.answering")
	return answering{}.RoundTrip(authorized)
}

// TestNewMessagingFillsTheSDKConfig: a Client, whose messaging client is
// built without the SDK's root package, sends to the same URL with the
// same SDK headers (its version among them) as the SDK's own
// firebase.NewApp and App.Messaging.
func TestNewMessagingFillsTheSDKConfig(t *testing.T) {
	if v := sdkVersion; v != firebase.Version {
		t.Errorf("sdkVersion = %q, the SDK's Version = %q", v, firebase.Version)
	}
	now := time.Now()
	rec := &recording{}
	c, err := New(context.Background(), Config{ProjectID: "loa-test", Endpoint: "https://fcm.test/v1",
		HTTPClient: &http.Client{Transport: rec}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	m := broadcastPush(now)
	if _, err := c.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	app, err := firebase.NewApp(context.Background(), &firebase.Config{ProjectID: "loa-test"},
		option.WithHTTPClient(&http.Client{Transport: rec}), option.WithEndpoint("https://fcm.test/v1"))
	if err != nil {
		t.Fatal(err)
	}
	sdk, err := app.Messaging(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	msg, _, err := c.message(m, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sdk.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	if len(rec.reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(rec.reqs))
	}
	loa, plain := rec.reqs[0], rec.reqs[1]
	if loa.URL.String() != plain.URL.String() {
		t.Errorf("URL %s, the SDK's %s", loa.URL, plain.URL)
	}
	for _, h := range []string{"X-Firebase-Client", "X-Goog-Api-Client", "X-Goog-Api-Format-Version", "Content-Type"} {
		if got, want := loa.Header.Get(h), plain.Header.Get(h); got != want || want == "" {
			t.Errorf("%s: %q, the SDK's %q", h, got, want)
		}
	}
}
