package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestStageQuantiles: the stages' buckets of two processes are summed per
// lane, and a quantile is interpolated within its bucket.
func TestStageQuantiles(t *testing.T) {
	text := `loa_delivery_stage_seconds_bucket{lane="otp",stage="fetched",le="0.01"} 40
loa_delivery_stage_seconds_bucket{lane="otp",stage="fetched",le="0.02"} 80
loa_delivery_stage_seconds_bucket{lane="otp",stage="fetched",le="+Inf"} 100
loa_delivery_stage_seconds_bucket{lane="alert",stage="fetched",le="0.01"} 1000
loa_delivery_stage_seconds_bucket{lane="alert",stage="fetched",le="+Inf"} 1000
`
	h := stageHists{}
	h.read(strings.NewReader(text), "otp")
	h.read(strings.NewReader(text), "otp")
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{.2, 5 * time.Millisecond}, {.6, 15 * time.Millisecond}, {.99, 20 * time.Millisecond}} {
		got, n := h.quantile("fetched", c.q)
		if n != 200 || (got-c.want).Abs() > time.Microsecond {
			t.Errorf("q %.2f: %v of %.0f, want %v of 200", c.q, got, n, c.want)
		}
	}
	var out bytes.Buffer
	h.print(&out)
	if !strings.Contains(out.String(), "fetched      200 codes: p50 12.5 ms") {
		t.Errorf("printed:\n%s", out.String())
	}
}

// TestStageWindows: each window's quantiles are of the observations
// between its two scrapes, so a stall shows in its own window only.
func TestStageWindows(t *testing.T) {
	scrape := func(fast, slow int) stageHists {
		h := stageHists{}
		h.read(strings.NewReader(fmt.Sprintf(`loa_delivery_stage_seconds_bucket{lane="otp",stage="fetched",le="0.01"} %d
loa_delivery_stage_seconds_bucket{lane="otp",stage="fetched",le="1"} %d
loa_delivery_stage_seconds_bucket{lane="otp",stage="fetched",le="+Inf"} %d
`, fast, fast+slow, fast+slow)), "otp")
		return h
	}
	// 100 fast codes a window; 50 slow ones in the second.
	scrapes := []stageHists{scrape(0, 0), scrape(100, 0), scrape(200, 50), scrape(300, 50)}
	var out bytes.Buffer
	printWindows(&out, scrapes, 10*time.Second)
	if !strings.Contains(out.String(), "    fetched   10 / 970 / 10\n") {
		t.Errorf("printed:\n%s", out.String())
	}
	if strings.Contains(out.String(), "started") {
		t.Errorf("a stage not observed was printed:\n%s", out.String())
	}
}

// TestPoolWaits: only the pools that were waited for are reported.
func TestPoolWaits(t *testing.T) {
	text := `loa_pool_wait_seconds_total{pool="redis"} 0
loa_pool_wait_seconds_total{pool="redis_urgent"} 12.5
loa_pool_waits_total{pool="redis"} 0
loa_pool_waits_total{pool="redis_urgent"} 3000
`
	got := strings.Join(readPoolWaits(strings.NewReader(text), "dispatcher-1"), "; ")
	if want := "dispatcher-1 redis_urgent: 3000 waits, 12.5 s"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestFastestSecond: the fastest second is the highest rate over a span
// of at least a second between two polls, whatever the polls' spacing.
func TestFastestSecond(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	// 1,000 a second, then 10,000 a second between 2.0 and 3.0 s, polled
	// every 50 ms with a gap of 300 ms at 2.5 s.
	var polls []poll
	got := 0
	for ms := 0; ms <= 4000; ms += 50 {
		if ms > 2450 && ms < 2750 {
			continue
		}
		got = ms // 1 a ms
		if ms > 2000 {
			got = 2000 + 10*(min(ms, 3000)-2000) + max(ms-3000, 0)
		}
		polls = append(polls, poll{at(ms), got})
	}
	if f := fastestSecond(polls); f < 9990 || f > 10010 {
		t.Errorf("fastest second %.0f pushes/s, want 10,000", f)
	}
	if f := fastestSecond(polls[:10]); f != 0 {
		t.Errorf("polls over 450 ms: fastest second %.0f, want 0", f)
	}
}

// TestAtLimit: a run is flagged as perhaps held by the rate limit when its
// fastest second came within a tenth of it, and not when the limit is not
// known.
func TestAtLimit(t *testing.T) {
	for _, c := range []struct {
		fastest, limit float64
		want           bool
	}{{10905, 10000, true}, {9009, 10000, true}, {8999, 10000, false}, {13849, 50000, false}, {20000, 0, false}} {
		if got := atLimit(c.fastest, c.limit); got != c.want {
			t.Errorf("atLimit(%.0f, %.0f) = %v, want %v", c.fastest, c.limit, got, c.want)
		}
	}
}
