package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/loa-hub/loa/dispatcher"
)

// stageHists are the cumulative bucket counts of one lane's
// loa_delivery_stage_seconds, by stage and upper bound, summed over the
// processes scraped.
type stageHists map[string]map[float64]float64

// stageOrder is the order a code passes the stages: the API's, then the
// dispatcher's.
var stageOrder = append([]string{"writing", "published"}, dispatcher.StageNames[:]...)

// scrapeStages adds lane's loa_delivery_stage_seconds buckets from the
// Prometheus text at url to h. A process that does not answer adds
// nothing.
func (h stageHists) scrape(ctx context.Context, url, lane string) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	h.read(resp.Body, lane)
}

// read adds lane's buckets from Prometheus text.
func (h stageHists) read(r io.Reader, lane string) {
	samples(r, func(line string, v float64) {
		if !strings.HasPrefix(line, "loa_delivery_stage_seconds_bucket{") || label(line, "lane") != lane {
			return
		}
		le, err := strconv.ParseFloat(label(line, "le"), 64) // "+Inf" parses as +Inf
		if err != nil {
			return
		}
		st := label(line, "stage")
		if h[st] == nil {
			h[st] = map[float64]float64{}
		}
		h[st][le] += v
	})
}

// quantile is stage's q-quantile, interpolated linearly within its bucket
// as Prometheus's histogram_quantile does, and the observations' count;
// a quantile in the last, unbounded bucket is its lower bound.
func (h stageHists) quantile(stage string, q float64) (time.Duration, float64) {
	b := h[stage]
	les := make([]float64, 0, len(b))
	for le := range b {
		les = append(les, le)
	}
	slices.Sort(les)
	if len(les) == 0 || b[les[len(les)-1]] == 0 {
		return 0, 0
	}
	total := b[les[len(les)-1]]
	rank := q * total
	lo, below := 0.0, 0.0
	for _, le := range les {
		if b[le] >= rank {
			if math.IsInf(le, 1) {
				return seconds(lo), total
			}
			in := b[le] - below
			if in == 0 {
				return seconds(le), total
			}
			return seconds(lo + (le-lo)*(rank-below)/in), total
		}
		lo, below = le, b[le]
	}
	return seconds(lo), total
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// minus is h less an earlier scrape of the same processes: the
// observations made between the two.
func (h stageHists) minus(earlier stageHists) stageHists {
	out := stageHists{}
	for st, b := range h {
		out[st] = map[float64]float64{}
		for le, v := range b {
			out[st][le] = v - earlier[st][le]
		}
	}
	return out
}

// printWindows writes each stage's p99 in each window of a run, from
// scrapes taken at the windows' ends (each the difference from the one
// before), so that a stall in one window shows at the stage it began.
func printWindows(w io.Writer, scrapes []stageHists, window time.Duration) {
	if len(scrapes) < 3 {
		return
	}
	fmt.Fprintf(w, "  a code's stages by %.0f s window (p99 ms of the codes observed in it, from /metrics scraped at each window's end):\n", window.Seconds())
	for _, st := range stageOrder {
		if _, n := scrapes[len(scrapes)-1].quantile(st, .5); n == 0 {
			continue // not observed in this run
		}
		var parts []string
		for i := 1; i < len(scrapes); i++ {
			d := scrapes[i].minus(scrapes[i-1])
			p99, n := d.quantile(st, .99)
			if n == 0 {
				parts = append(parts, "-")
				continue
			}
			parts = append(parts, fmt.Sprintf("%.0f", float64(p99.Microseconds())/1000))
		}
		fmt.Fprintf(w, "    %-9s %s\n", st, strings.Join(parts, " / "))
	}
}

// print writes each stage's quantiles, in the order a code passes them.
func (h stageHists) print(w io.Writer) {
	if len(h) == 0 {
		return
	}
	fmt.Fprintln(w, "  a code's stages, time from its creation in the API (loa_delivery_stage_seconds, quantiles interpolated in its buckets):")
	for _, st := range stageOrder {
		p50, n := h.quantile(st, .5)
		if n == 0 {
			continue
		}
		p95, _ := h.quantile(st, .95)
		p99, _ := h.quantile(st, .99)
		fmt.Fprintf(w, "    %-9s %6.0f codes: p50 %s, p95 %s, p99 %s\n", st, n, ms(p50), ms(p95), ms(p99))
	}
}

// poolWaits reads a process's loa_pool_waits_total and
// loa_pool_wait_seconds_total from the Prometheus text at url, as
// "name pool: N waits, S s" for each pool that was waited for.
func poolWaits(ctx context.Context, name, url string) []string {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	return readPoolWaits(resp.Body, name)
}

func readPoolWaits(r io.Reader, name string) []string {
	waits, secs := map[string]float64{}, map[string]float64{}
	var pools []string
	samples(r, func(line string, v float64) {
		pool := label(line, "pool")
		switch {
		case strings.HasPrefix(line, "loa_pool_waits_total{"):
			waits[pool] = v
			pools = append(pools, pool)
		case strings.HasPrefix(line, "loa_pool_wait_seconds_total{"):
			secs[pool] = v
		}
	})
	var out []string
	for _, p := range pools {
		if waits[p] > 0 {
			out = append(out, fmt.Sprintf("%s %s: %.0f waits, %.1f s", name, p, waits[p], secs[p]))
		}
	}
	return out
}
