package console

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

type unauditedKey struct{}

// TestLiveViewsRememberedAreSmall: the console remembers, for each
// session and live view, when its poll was last audited (up to maxPolled
// views a process). The view was remembered by its id as the URL gave
// it, before the API was asked whether there is such a broadcast or
// alert, so any signed-in official, whatever their roles, polling made-up
// ids as long as the request line allows (LOA_HTTP_MAX_HEADER_BYTES,
// 32 KiB) made the process keep up to maxPolled of them: some 320 MB for
// a minute, again each minute. Now each is kept as a digest of a fixed
// size.
func TestLiveViewsRememberedAreSmall(t *testing.T) {
	api, id := &fakeAPI{}, &idle{alive: map[string]bool{}}
	clock := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	c, err := New(Config{API: api, Secret: []byte(strings.Repeat("k", 32)), Idle: id,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return clock },
		Unaudited: func(ctx context.Context) context.Context { return context.WithValue(ctx, unauditedKey{}, true) }})
	if err != nil {
		t.Fatal(err)
	}
	session := signIn(t, c)
	const polls, idBytes = 500, 30 << 10
	for i := range polls {
		view := "broadcasts"
		if i%2 == 1 {
			view = "alerts"
		}
		r := httptest.NewRequest("GET", fmt.Sprintf("/console/%s/%0*d/live.json", view, idBytes, i), nil)
		r.AddCookie(session)
		serve(c, r)
	}
	c.pollMu.Lock()
	defer c.pollMu.Unlock()
	if len(c.polled) != polls {
		t.Fatalf("%d views remembered, want %d (one a poll of a new view)", len(c.polled), polls)
	}
	held := 0
	for k := range c.polled {
		held += len(k)
	}
	if held > polls*64 {
		t.Errorf("the views remembered hold %d bytes of keys for %d polls of %d-byte ids, want at most %d", held, polls, idBytes, polls*64)
	}
}
