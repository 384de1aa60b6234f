package fault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Faults is a plan of faults. The zero value injects nothing.
type Faults struct {
	// Latency is waited before every answer.
	Latency time.Duration
	// Error is the provider-specific error name every request is answered
	// with (see the fake's documentation for the names it knows).
	Error string
	// Status, when Error is empty, makes the fake answer every request
	// with this bare status (an HTTP status, or an SMTP reply code).
	Status int
	// RetryAfter is sent as Retry-After with Error, Status and outage
	// answers when it is positive.
	RetryAfter time.Duration
	// Times limits Error and Status to the next Times requests; zero
	// applies them until the plan changes.
	Times int
	// Hang makes the fake take a request and never answer it, until the
	// client gives up or the fake is closed: a timeout, as seen by the
	// client.
	Hang bool
	// OutageUntil is the end of a total outage on the fake's clock: until
	// then every request gets the provider's outage answer.
	OutageUntil time.Time
	// Recipients maps a recipient (device token, phone number, mailbox)
	// to an error name answered for it alone, before Error is considered.
	Recipients map[string]string
}

// Decision is what a fake does with one request.
type Decision struct {
	Latency time.Duration // wait before answering
	Hang    bool          // never answer
	Outage  bool          // answer with the provider's outage response
	// Error is the error name to answer with, or "" for none.
	Error string
	// Status is a bare status to answer with when Error is "", or 0.
	Status     int
	RetryAfter time.Duration
}

// Failed reports whether d answers with an error of any kind.
func (d Decision) Failed() bool { return d.Outage || d.Error != "" || d.Status != 0 }

// ErrGone is returned by Wait when the client gave up or the fake closed
// while the request was being held; the fake must then neither answer nor
// record the request.
var ErrGone = errors.New("fault: client gone or fake closed")

// Injector holds the current plan of one fake. It is safe for concurrent
// use. Fakes embed it, so its methods are the fakes' fault controls.
type Injector struct {
	now func() time.Time

	mu        sync.Mutex
	f         Faults
	remaining int           // left of f.Times; meaningful when f.Times > 0
	holding   chan struct{} // closed when the next request is held

	closeOnce sync.Once
	closed    chan struct{}
}

// NewInjector returns an Injector with no faults whose outage windows are
// measured on now (time.Now when nil).
func NewInjector(now func() time.Time) *Injector {
	if now == nil {
		now = time.Now
	}
	return &Injector{now: now, closed: make(chan struct{})}
}

// Now returns the time on the injector's clock.
func (i *Injector) Now() time.Time { return i.now() }

// Set replaces the whole plan.
func (i *Injector) Set(f Faults) {
	f.Recipients = maps.Clone(f.Recipients)
	i.mu.Lock()
	i.f = f
	i.remaining = f.Times
	i.mu.Unlock()
}

// Update changes the plan in place under the injector's lock.
func (i *Injector) Update(change func(*Faults)) {
	i.mu.Lock()
	defer i.mu.Unlock()
	before := i.f
	change(&i.f)
	// A new error, status or count starts a fresh count.
	if i.f.Times != before.Times || i.f.Error != before.Error || i.f.Status != before.Status {
		i.remaining = i.f.Times
	}
}

// Faults returns a copy of the current plan.
func (i *Injector) Faults() Faults {
	i.mu.Lock()
	defer i.mu.Unlock()
	f := i.f
	f.Recipients = maps.Clone(f.Recipients)
	return f
}

// Reset clears every fault.
func (i *Injector) Reset() { i.Set(Faults{}) }

// SetLatency makes every answer wait d.
func (i *Injector) SetLatency(d time.Duration) { i.Update(func(f *Faults) { f.Latency = d }) }

// SetError answers every request with the named error, sending
// Retry-After when retryAfter is positive. An empty name clears it.
func (i *Injector) SetError(name string, retryAfter time.Duration) {
	i.Update(func(f *Faults) { f.Error, f.Status, f.RetryAfter, f.Times = name, 0, retryAfter, 0 })
}

// FailNext answers only the next n requests with the named error.
func (i *Injector) FailNext(n int, name string) {
	i.mu.Lock()
	i.f.Error, i.f.Status, i.f.Times = name, 0, n
	i.remaining = n
	i.mu.Unlock()
}

// SetStatus answers every request with a bare status (HTTP status or SMTP
// reply code), sending Retry-After when retryAfter is positive. Zero
// clears it.
func (i *Injector) SetStatus(status int, retryAfter time.Duration) {
	i.Update(func(f *Faults) { f.Error, f.Status, f.RetryAfter, f.Times = "", status, retryAfter, 0 })
}

// SetHang makes the fake hold every request without answering (on) or
// answer normally again (off). Requests held when it is turned off stay
// held until their client gives up.
func (i *Injector) SetHang(on bool) { i.Update(func(f *Faults) { f.Hang = on }) }

// OutageFor starts a total outage lasting d from now on the injector's
// clock.
func (i *Injector) OutageFor(d time.Duration) { i.OutageUntil(i.now().Add(d)) }

// OutageUntil makes the provider totally unavailable until t on the
// injector's clock. A t in the past ends an outage.
func (i *Injector) OutageUntil(t time.Time) { i.Update(func(f *Faults) { f.OutageUntil = t }) }

// FailRecipient answers every request for recipient with the named error;
// an empty name clears it.
func (i *Injector) FailRecipient(recipient, name string) {
	i.Update(func(f *Faults) {
		if name == "" {
			delete(f.Recipients, recipient)
			return
		}
		if f.Recipients == nil {
			f.Recipients = map[string]string{}
		}
		f.Recipients[recipient] = name
	})
}

// Decide returns what to do with one request for recipient ("" when the
// request has none, or before the fake knows it). It consumes one of
// Times when the plan's Error or Status is applied.
func (i *Injector) Decide(recipient string) Decision {
	now := i.now()
	i.mu.Lock()
	defer i.mu.Unlock()
	d := Decision{Latency: i.f.Latency, Hang: i.f.Hang}
	switch {
	case now.Before(i.f.OutageUntil):
		d.Outage = true
		d.RetryAfter = i.f.RetryAfter
	case recipient != "" && i.f.Recipients[recipient] != "":
		d.Error = i.f.Recipients[recipient]
		d.RetryAfter = i.f.RetryAfter
	case i.f.Error != "" || i.f.Status != 0:
		if i.f.Times > 0 {
			if i.remaining <= 0 {
				break
			}
			i.remaining--
		}
		d.Error, d.Status, d.RetryAfter = i.f.Error, i.f.Status, i.f.RetryAfter
	}
	return d
}

// Wait applies d's latency and hang. It returns nil when the fake should
// answer, and ErrGone when ctx (the client's request) ended or the fake
// closed first.
func (i *Injector) Wait(ctx context.Context, d Decision) error {
	if d.Latency > 0 {
		t := time.NewTimer(d.Latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ErrGone
		case <-i.closed:
			return ErrGone
		}
	}
	if d.Hang {
		i.mu.Lock()
		if i.holding != nil {
			close(i.holding)
			i.holding = nil
		}
		i.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-i.closed:
		}
		return ErrGone
	}
	return nil
}

// Holding returns a channel that is closed when Wait next starts holding
// a request because of Hang, so a test can act while a request is held.
func (i *Injector) Holding() <-chan struct{} {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.holding == nil {
		i.holding = make(chan struct{})
	}
	return i.holding
}

// Closed is closed when Close is called.
func (i *Injector) Closed() <-chan struct{} { return i.closed }

// Close releases every held request; later ones are released at once.
// It is idempotent.
func (i *Injector) Close() { i.closeOnce.Do(func() { close(i.closed) }) }

// wireFaults is the JSON form of Faults used by the HTTP control endpoint:
// durations are Go duration strings ("20ms"), times RFC 3339, and
// outage_for is relative to when the request arrives.
type wireFaults struct {
	Latency     string            `json:"latency,omitempty"`
	Error       string            `json:"error,omitempty"`
	Status      int               `json:"status,omitempty"`
	RetryAfter  string            `json:"retry_after,omitempty"`
	Times       int               `json:"times,omitempty"`
	Hang        bool              `json:"hang,omitempty"`
	OutageFor   string            `json:"outage_for,omitempty"`
	OutageUntil *time.Time        `json:"outage_until,omitempty"`
	Recipients  map[string]string `json:"recipients,omitempty"`
}

func parseDuration(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("fault: %s: %w", field, err)
	}
	return d, nil
}

// ParseJSON decodes the JSON control form of a plan, resolving
// outage_for against now:
//
//	{"latency": "20ms", "error": "UNAVAILABLE", "status": 503,
//	 "retry_after": "7s", "times": 3, "hang": false,
//	 "outage_for": "10s", "outage_until": "2025-01-02T15:04:05Z",
//	 "recipients": {"token-1": "UNREGISTERED"}}
//
// Every field is optional; an empty object is the empty plan.
func ParseJSON(data []byte, now time.Time) (Faults, error) {
	var w wireFaults
	if err := json.Unmarshal(data, &w); err != nil {
		return Faults{}, fmt.Errorf("fault: decode: %w", err)
	}
	f := Faults{Error: w.Error, Status: w.Status, Times: w.Times, Hang: w.Hang, Recipients: w.Recipients}
	var err error
	if f.Latency, err = parseDuration("latency", w.Latency); err != nil {
		return Faults{}, err
	}
	if f.RetryAfter, err = parseDuration("retry_after", w.RetryAfter); err != nil {
		return Faults{}, err
	}
	outageFor, err := parseDuration("outage_for", w.OutageFor)
	if err != nil {
		return Faults{}, err
	}
	switch {
	case outageFor > 0:
		f.OutageUntil = now.Add(outageFor)
	case w.OutageUntil != nil:
		f.OutageUntil = *w.OutageUntil
	}
	return f, nil
}

// MarshalJSON encodes f in the control form ParseJSON reads.
func (f Faults) MarshalJSON() ([]byte, error) {
	w := wireFaults{Error: f.Error, Status: f.Status, Times: f.Times, Hang: f.Hang, Recipients: f.Recipients}
	if f.Latency != 0 {
		w.Latency = f.Latency.String()
	}
	if f.RetryAfter != 0 {
		w.RetryAfter = f.RetryAfter.String()
	}
	if !f.OutageUntil.IsZero() {
		t := f.OutageUntil
		w.OutageUntil = &t
	}
	return json.Marshal(w)
}

// ServeHTTP is the control endpoint fakes mount at /_fault: GET returns the
// current plan, POST or PUT replaces it with the JSON body (see ParseJSON),
// DELETE clears it.
func (i *Injector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
	case http.MethodPost, http.MethodPut:
		body, err := readAll(r, 1<<20)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f, err := ParseJSON(body, i.now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		i.Set(f)
	case http.MethodDelete:
		i.Reset()
	default:
		w.Header().Set("Allow", "GET, POST, PUT, DELETE")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(i.Faults())
}

func readAll(r *http.Request, limit int64) ([]byte, error) {
	defer r.Body.Close()
	return io.ReadAll(io.LimitReader(r.Body, limit))
}

// RetryAfterHeader formats d as a Retry-After header value: whole seconds,
// rounded up so a client never comes back early.
func RetryAfterHeader(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

// Mount registers the control endpoint (ServeHTTP) on mux at path for GET,
// POST, PUT and DELETE, so it takes precedence over a catch-all
// "POST /" route.
func (i *Injector) Mount(mux *http.ServeMux, path string) {
	for _, m := range []string{"GET", "POST", "PUT", "DELETE"} {
		mux.Handle(m+" "+path, i)
	}
}

// InOutage reports whether the plan is in a total outage now, without
// consuming anything: for answering at connect time.
func (i *Injector) InOutage() bool {
	now := i.now()
	i.mu.Lock()
	defer i.mu.Unlock()
	return now.Before(i.f.OutageUntil)
}

// RecipientError returns the error name planned for recipient, or "".
func (i *Injector) RecipientError(recipient string) string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.f.Recipients[recipient]
}
