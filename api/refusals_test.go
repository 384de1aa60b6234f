package api_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-hub/loa/api"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/producer/direct"
)

// logLines keeps what a slog text handler writes.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logLines) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSuffix(l.buf.String(), "\n"), "\n")
}

// refusalCounts records what is counted of refusals (the metric).
type refusalCounts struct {
	mu sync.Mutex
	n  map[int]int
}

func (c *refusalCounts) HTTPRefused(status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[status]++
}

func (c *refusalCounts) get(status int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[status]
}

// TestRefusalsWriteABoundedLog: every refused request (a 4xx) was logged
// at Warn, with its whole path, and the error of a path not found
// repeated it. A stranger sending made-up keys, or asking for made-up
// paths as long as the request line allows (Go's 1 MiB of headers), wrote
// log lines as fast as they sent, up to 2 MiB each. Now a process logs at
// most 20 refusals a second, each line's texts cut to a few hundred
// bytes, and the next line logged says how many were not; every refusal
// is counted by status (loa_http_refused_total), which is what shows an
// operator the attack.
func TestRefusalsWriteABoundedLog(t *testing.T) {
	store := testenv.OpenStore(t, testenv.SQLiteURL(t))
	logs := &logLines{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	var (
		mu    sync.Mutex
		clock = now
	)
	counts := &refusalCounts{n: map[int]int{}}
	h := api.NewHandler(api.Deps{
		Store: store, Direct: direct.New(direct.DefaultConfig(), store, &recorder{}, log), Log: log,
		Now:      func() time.Time { mu.Lock(); defer mu.Unlock(); return clock },
		Refusals: counts,
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	get := func(path, key string) int {
		t.Helper()
		req, err := http.NewRequest("GET", srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	long := "/v1/" + strings.Repeat("x", 64<<10)
	for i := range 300 {
		if st := get("/v1/notifications/n-1", fmt.Sprintf("loa_madeup%03d", i)); st != http.StatusUnauthorized {
			t.Fatalf("a made-up key: %d", st)
		}
		if st := get(fmt.Sprintf("%s%03d", long, i), ""); st != http.StatusNotFound {
			t.Fatalf("a made-up path: %d", st)
		}
	}
	lines := logs.lines()
	if len(lines) > 20 {
		t.Errorf("600 refusals within a second wrote %d log lines, want at most 20", len(lines))
	}
	for _, l := range lines {
		if len(l) > 2048 {
			t.Errorf("a refusal's log line is %d bytes: %.200q…", len(l), l)
			break
		}
	}
	if a, b := counts.get(http.StatusUnauthorized), counts.get(http.StatusNotFound); a != 300 || b != 300 {
		t.Errorf("refusals counted: %d 401, %d 404; want 300 each", a, b)
	}
	// A second later, the next refusal is logged and tells how many
	// were not.
	mu.Lock()
	clock = clock.Add(time.Second)
	mu.Unlock()
	get("/v1/notifications/n-1", "loa_madeup")
	last := logs.lines()[len(logs.lines())-1]
	if want := fmt.Sprintf("unlogged_before=%d", 600-len(lines)); !strings.Contains(last, want) {
		t.Errorf("the next refusal's line %q does not say %s", last, want)
	}
}
