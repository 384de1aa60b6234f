package fcm

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	firebase "firebase.google.com/go/v4"
	"google.golang.org/api/option"

	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/internal/fakes/fcmfake"
)

// TestPushRequestsAreTheSDKsEncoding: every push's request, whether the
// SDK encoded the whole message or only its token after the head it
// learnt from an earlier push of the same shape, carries the bytes the
// plain SDK sends for the whole message: for tokens JSON escapes, for
// each kind of message Loa builds, and as shapes change from push to push.
func TestPushRequestsAreTheSDKsEncoding(t *testing.T) {
	f, err := fcmfake.New(fcmfake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	now := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	c, err := New(context.Background(), Config{ProjectID: "loa-test", Endpoint: f.Endpoint(), HTTPClient: f.Client(),
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	app, err := firebase.NewApp(context.Background(), &firebase.Config{ProjectID: "loa-test"},
		option.WithHTTPClient(f.Client()), option.WithEndpoint(f.Endpoint()))
	if err != nil {
		t.Fatal(err)
	}
	sdk, err := app.Messaging(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	base := channels.Message{NotificationID: "n-1", Channel: channels.Push, Title: "Cảnh báo lũ",
		Body: `Mực nước "sông Hương" đang lên <cao>, đề nghị di dời & chờ tin.`, Data: map[string]string{"kind": "alert", "b": "2"},
		Priority: channels.High, ExpiresAt: now.Add(90 * time.Minute)}
	collapse, long, dataOnly, never, normal := base, base, base, base, base
	collapse.Collapse = "VN-49-PCTT-2026-0150"
	long.Collapse = "bc-01a2b3c4/" + strings.Repeat("x", 70)
	dataOnly.Title, dataOnly.Body, dataOnly.Collapse = "", "", "bc-1"
	never.ExpiresAt = time.Time{}
	normal.Priority, normal.Data = channels.Normal, nil
	tokens := []string{"tok-1", "tok-2", `tok<"&>` + "\u2028é", strings.Repeat("t", 300), "tok-3"}
	n := 0
	for vi, m := range []channels.Message{base, collapse, long, dataOnly, never, normal, base} {
		for _, tok := range tokens {
			m.To = tok
			if _, err := c.Send(context.Background(), m); err != nil {
				t.Fatalf("message %d to %q: %v", vi, tok, err)
			}
			msg, _, err := c.message(m, now)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sdk.Send(context.Background(), msg); err != nil {
				t.Fatalf("the SDK, message %d to %q: %v", vi, tok, err)
			}
			n += 2
		}
		if s := c.last.Load(); s.head.Load() == nil {
			t.Errorf("message %d: no head learnt from its first push", vi)
		}
	}
	msgs := f.Messages()
	if len(msgs) != n {
		t.Fatalf("fake has %d messages, want %d", len(msgs), n)
	}
	for i := 0; i < n; i += 2 {
		if loa, plain := msgs[i].Raw, msgs[i+1].Raw; !bytes.Equal(loa, plain) {
			t.Errorf("push %d:\n loa: %s\n sdk: %s", i/2, loa, plain)
		}
	}
}

// answering is a transport that answers, without a network, every
// request as FCM does a successful send, or as Google's token endpoint
// does (at /token).
type answering struct{}

func (answering) RoundTrip(req *http.Request) (*http.Response, error) {
	io.Copy(io.Discard, req.Body) //nolint:errcheck // the body's bytes are not looked at
	req.Body.Close()
	body := `{"name":"projects/loa-test/messages/1"}`
	if req.URL.Path == "/token" {
		body = `{"access_token":"ya29.answering","token_type":"Bearer","expires_in":3600}`
	} else if req.Header.Get("Authorization") != "Bearer ya29.answering" {
		return nil, fmt.Errorf("a send without the access token: %q", req.Header.Get("Authorization"))
	}
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(body)), Request: req}, nil
}

// broadcastPush is a push as a broadcast sends it: a notification with
// data, a collapse key and an expiry.
func broadcastPush(now time.Time) channels.Message {
	return channels.Message{NotificationID: "n-1", Channel: channels.Push, To: "tok-1", Title: "Thông báo",
		Body: "Đo tốc độ gửi thông báo.", Data: map[string]string{"kind": "notice"}, Priority: channels.Normal,
		Collapse: "bc-1", ExpiresAt: now.Add(time.Hour)}
}

// noNetworkClient is a Client with a service account whose sends, and
// access tokens, are answered in the process.
func noNetworkClient(tb testing.TB, now time.Time) *Client {
	sa := filepath.Join(tb.TempDir(), "sa.json")
	if err := fcmfake.WriteServiceAccount(sa, "loa-test", "https://fcm.test/token"); err != nil {
		tb.Fatal(err)
	}
	c, err := New(context.Background(), Config{ProjectID: "loa-test", Endpoint: "https://fcm.test/v1", CredentialsFile: sa,
		HTTPClient: &http.Client{Transport: answering{}}, Now: func() time.Time { return now }})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// TestSendAllocations: a push of a notification whose shape was sent
// before allocates no more than it needs — garbage collection is a tenth
// of the dispatcher's CPU in a broadcast. The SDK encodes only its token
// (87 allocations a push when it encoded each whole message).
func TestSendAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	now := time.Now()
	c, m := noNetworkClient(t, now), broadcastPush(now)
	send := func() {
		if _, err := c.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	send()
	if n := testing.AllocsPerRun(100, send); n > maxSendAllocs {
		t.Errorf("%.0f allocations a push, want at most %d", n, maxSendAllocs)
	}
}

// maxSendAllocs is what a push may allocate in TestSendAllocations: the
// SDK's request and answer, net/http's client, Loa's call record (which
// is also the call's context, and the shape's message is not copied for a
// push the SDK gets only the token of: 59 before).
const maxSendAllocs = 57

// BenchmarkSendNoNetwork is the client's own cost, a broadcast's push
// answered in the process: no HTTP/2, no TLS, no fake (-benchmem for
// its allocations).
func BenchmarkSendNoNetwork(b *testing.B) {
	now := time.Now()
	c, m := noNetworkClient(b, now), broadcastPush(now)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Send(context.Background(), m); err != nil {
			b.Fatal(err)
		}
	}
}
