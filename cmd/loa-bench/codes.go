package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/loa-hub/loa/internal/fleet"
)

// codePhoneBase numbers the phones codes are asked for (849 and eight
// digits from codePhoneBase+1), apart from the seeded audience's.
const codePhoneBase = 20_000_000

// codeLoad asks the API for SMS codes at a steady rate, each for a phone
// of its own, as citizens confirming their phone do, and keeps when each
// was asked and how the API answered.
type codeLoad struct {
	c    *fleet.Client
	rate int
	// phoneBase numbers the phones asked for (fleet.Phone).
	phoneBase int

	mu     sync.Mutex
	asked  map[string]time.Time // phone → when the request was started
	took   []time.Duration      // the API's answer times, accepted codes
	byRes  map[string]int       // answers by status ("202", "429", "error")
	during time.Duration        // from the first request to the last
	wg     sync.WaitGroup
}

func newCodeLoad(c *fleet.Client, rate int) *codeLoad {
	return &codeLoad{c: c, rate: rate, phoneBase: codePhoneBase, asked: map[string]time.Time{}, byRes: map[string]int{}}
}

// run asks for codes at l.rate from now until stop is closed, ctx ends or
// (when not 0) for has passed. Requests are started on schedule whatever
// the answers' times (an open load), each in its own goroutine.
func (l *codeLoad) run(ctx context.Context, stop <-chan struct{}, until time.Duration) {
	start := time.Now()
	defer func() {
		l.mu.Lock()
		l.during = time.Since(start)
		l.mu.Unlock()
	}()
	for i := 1; ; i++ {
		due := start.Add(time.Duration(i-1) * time.Second / time.Duration(l.rate))
		if until > 0 && due.Sub(start) >= until {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case <-time.After(time.Until(due)):
		}
		l.wg.Add(1)
		go func(phone string) {
			defer l.wg.Done()
			t := time.Now()
			status, err := l.c.Call(ctx, "POST", "/v1/otp/sms", "", map[string]string{"phone": phone, "purpose": "verify_phone"}, nil)
			took := time.Since(t)
			res := fmt.Sprint(status)
			if err != nil && status == 0 {
				res = "error"
			}
			l.mu.Lock()
			defer l.mu.Unlock()
			l.byRes[res]++
			if err == nil {
				l.asked[phone] = t
				l.took = append(l.took, took)
			}
		}(fleet.Phone(l.phoneBase, i))
	}
}

// codeResult is what the codes measured: from the request's start to the
// gateway fake accepting the SMS.
type codeResult struct {
	rate      int
	answers   map[string]int
	accepted  int
	delivered []time.Duration // sorted
	apiTook   []time.Duration // sorted
	missing   int             // accepted but not at a gateway within the wait
	during    time.Duration
	cpu       []procCPU // each process's CPU while the codes were asked
	// The SMS providers' rate limiters, summed over the dispatchers: calls
	// to the shared buckets in Redis, and the codes' waits for a token.
	limiterCalls, waitSum, waitNum float64
	// stages are the otp lane's loa_delivery_stage_seconds of the API and
	// the dispatchers; windowStages the same scraped at the start and at
	// the end of each codeWindow while the codes were asked.
	stages       stageHists
	windowStages []stageHists
	// pools are the processes' connection pools' waits.
	pools []string
	// windows are the delivered codes by when they were asked, in
	// windows of codeWindow from the first request.
	windows []codeWindowResult
}

// codeWindow is how long a window of codes the result splits the
// codes' times by, so that a tail made in a few seconds (a stall) can be
// told from one spread over the run.
const codeWindow = 10 * time.Second

// codeWindowResult is the codes asked in one window.
type codeWindowResult struct {
	start     time.Duration // from the first request
	delivered []time.Duration
}

// addLimiter adds a dispatcher's rate-limiter counts of the providers the
// codes went through (those with otp-lane waits).
func (r *codeResult) addLimiter(c dispatcherCounts) {
	for provider, n := range c.otpWaitNum {
		r.limiterCalls += c.limiterCalls[provider]
		r.waitSum += c.otpWaitSum[provider]
		r.waitNum += n
	}
}

// procCPU is a process's CPU over a part of the run.
type procCPU struct {
	name     string
	cpu      time.Duration
	switches int64 // context switches
}

// collect waits for the requests in flight, then up to wait for every
// accepted code to reach a gateway fake, and measures.
func (l *codeLoad) collect(ctx context.Context, fl *fleet.Fleet, wait time.Duration) (*codeResult, error) {
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	r := &codeResult{rate: l.rate, answers: l.byRes, accepted: len(l.asked), apiTook: slices.Clone(l.took), during: l.during}
	slices.Sort(r.apiTook)
	deadline := time.Now().Add(wait)
	for {
		msgs, err := fl.SMSMessages(ctx)
		if err != nil {
			return nil, err
		}
		got := map[string]time.Time{}
		for _, m := range msgs {
			if t, ok := l.asked[m.Phone]; ok && !m.At.Before(t) {
				if prev, seen := got[m.Phone]; !seen || m.At.Before(prev) {
					got[m.Phone] = m.At
				}
			}
		}
		if len(got) == len(l.asked) || time.Now().After(deadline) {
			r.delivered = r.delivered[:0]
			var first time.Time
			for _, t := range l.asked {
				if first.IsZero() || t.Before(first) {
					first = t
				}
			}
			r.windows = nil
			for phone, at := range got {
				d := at.Sub(l.asked[phone])
				r.delivered = append(r.delivered, d)
				w := int(l.asked[phone].Sub(first) / codeWindow)
				for len(r.windows) <= w {
					r.windows = append(r.windows, codeWindowResult{start: time.Duration(len(r.windows)) * codeWindow})
				}
				r.windows[w].delivered = append(r.windows[w].delivered, d)
			}
			slices.Sort(r.delivered)
			for _, w := range r.windows {
				slices.Sort(w.delivered)
			}
			r.missing = len(l.asked) - len(got)
			return r, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// quantile is the q-quantile of sorted durations (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func (r *codeResult) print(w io.Writer) {
	fmt.Fprintf(w, "\nSMS codes during the broadcast: %d asked at %d/s over %.1f s (answers %s)\n",
		sum(r.answers), r.rate, r.during.Seconds(), answersText(r.answers))
	d := r.delivered
	fmt.Fprintf(w, "  API → gateway fake, %d codes: p50 %s, p95 %s, p99 %s, max %s", len(d),
		ms(quantile(d, .5)), ms(quantile(d, .95)), ms(quantile(d, .99)), ms(quantile(d, 1)))
	if r.missing > 0 {
		fmt.Fprintf(w, "; %d accepted codes never reached a gateway", r.missing)
	}
	fmt.Fprintln(w)
	if len(r.windows) > 1 {
		var parts []string
		for _, w := range r.windows {
			parts = append(parts, fmt.Sprintf("%.0f s: %d, %.0f / %.0f", w.start.Seconds(), len(w.delivered),
				float64(quantile(w.delivered, .99).Microseconds())/1000, float64(quantile(w.delivered, 1).Microseconds())/1000))
		}
		fmt.Fprintf(w, "  by when asked (%.0f s windows from the first: codes, p99 / max ms): %s\n", codeWindow.Seconds(), strings.Join(parts, "; "))
	}
	a := r.apiTook
	fmt.Fprintf(w, "  the API's answer (202): p50 %s, p99 %s, max %s\n", ms(quantile(a, .5)), ms(quantile(a, .99)), ms(quantile(a, 1)))
	r.stages.print(w)
	printWindows(w, r.windowStages, codeWindow)
	if len(r.pools) > 0 {
		fmt.Fprintf(w, "  connection pools' waits for a connection (from /metrics, the whole run): %s\n", strings.Join(r.pools, "; "))
	}
	if r.waitNum > 0 {
		fmt.Fprintf(w, "  the SMS rate limiters (from the dispatchers' /metrics): %.0f calls to Redis (%.3f a code), a code's wait for a token %s on average\n",
			r.limiterCalls, r.limiterCalls/r.waitNum, ms(time.Duration(r.waitSum/r.waitNum*float64(time.Second))))
	}
	if len(r.cpu) > 0 && r.during > 0 {
		var parts []string
		for _, p := range r.cpu {
			parts = append(parts, fmt.Sprintf("%s %.2f", p.name, p.cpu.Seconds()/r.during.Seconds()))
		}
		fmt.Fprintf(w, "  cores used while the codes were asked (with the broadcast's work): %s\n", strings.Join(parts, ", "))
		parts = parts[:0]
		for _, p := range r.cpu {
			parts = append(parts, fmt.Sprintf("%s %.0f", p.name, float64(p.switches)/r.during.Seconds()))
		}
		fmt.Fprintf(w, "  context switches a second meanwhile: %s\n", strings.Join(parts, ", "))
	}
}

// answersText is answers by status, "202: 29990, 503: 10", in order.
func answersText(answers map[string]int) string {
	var out []string
	for k, v := range answers {
		out = append(out, fmt.Sprintf("%s: %d", k, v))
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
