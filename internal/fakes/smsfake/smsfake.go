package smsfake

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loa-hub/loa/internal/fakes/fault"
	"github.com/loa-hub/loa/internal/fakes/record"
)

// Message is one SMS a fake gateway accepted.
type Message struct {
	Gateway string // "esms", "speedsms" or "webhook"
	// ID is the id the fake answered with (eSMS SMSID, SpeedSMS tranId,
	// webhook "id").
	ID      string
	Phone   string
	Content string
	// Sender is the eSMS Brandname or the SpeedSMS sender.
	Sender  string
	SMSType string
	// Unicode is eSMS's IsUnicode flag.
	Unicode   bool
	RequestID string // eSMS RequestId
	// CallbackURL is where the delivery report goes, "" for none.
	CallbackURL string
	Path        string         // request path
	Body        map[string]any // the JSON request body as decoded
	At          time.Time      // when it was accepted, on the fake's clock
}

// Options configures a fake gateway. The zero value accepts any
// credentials and sends no delivery reports unless a request names a
// callback URL.
type Options struct {
	// Now is the clock outage windows are measured on; time.Now if nil.
	Now func() time.Time
	// CallbackURL receives a delivery report for every accepted message
	// whose request did not name its own callback URL.
	CallbackURL string
	// CallbackHeader is sent with every delivery report to CallbackURL
	// (a gateway account's callback token, for one).
	CallbackHeader http.Header
}

// gateway is what the three fakes share.
type gateway struct {
	*fault.Injector

	kind     string
	srv      *httptest.Server
	log      record.Log[Message]
	requests atomic.Int64
	seq      atomic.Uint64
	callback string
	cbHeader http.Header
	hc       *http.Client

	cbWG      sync.WaitGroup
	cbOK      atomic.Int64
	cbFailed  atomic.Int64
	cbMu      sync.Mutex
	cbReports []json.RawMessage
}

func newGateway(kind string, opts Options, mount func(*http.ServeMux)) (*gateway, error) {
	g := &gateway{
		Injector: fault.NewInjector(opts.Now),
		kind:     kind,
		callback: opts.CallbackURL,
		cbHeader: opts.CallbackHeader,
		hc:       &http.Client{Timeout: 5 * time.Second, Transport: reportTransport()},
	}
	mux := http.NewServeMux()
	g.Injector.Mount(mux, "/_fault")
	mux.HandleFunc("GET /_messages", g.messages)
	mount(mux)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("smsfake: listen: %w", err)
	}
	g.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: mux}}
	g.srv.Start()
	return g, nil
}

// reportTransport keeps the connections delivery reports are posted on,
// as a gateway's callback client does: http.DefaultTransport keeps 2 a
// host, so reports of SMS sent at hundreds a second would each connect
// anew, and Loa's API would pay for accepting every one.
func reportTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 256, 256
	return t
}

// URL is the gateway's base URL, http://127.0.0.1:port.
func (g *gateway) URL() string { return g.srv.URL }

// Close releases held requests, waits for delivery reports in flight and
// stops the gateway.
func (g *gateway) Close() {
	g.Injector.Close()
	g.srv.CloseClientConnections()
	g.srv.Close()
	g.cbWG.Wait()
}

// Count returns the number of messages accepted.
func (g *gateway) Count() int { return g.log.Count() }

// CountFor returns the number of messages accepted for a phone number.
func (g *gateway) CountFor(phone string) int { return g.log.CountFor(phone) }

// Counts returns a copy of the number of messages accepted per phone.
func (g *gateway) Counts() map[string]int { return g.log.Counts() }

// ReportsOK returns how many delivery reports were posted successfully.
func (g *gateway) ReportsOK() int { return int(g.cbOK.Load()) }

// Duplicates returns the phone numbers that were sent more than one message.
func (g *gateway) Duplicates() map[string]int { return g.log.Duplicates() }

// Messages returns the accepted messages in order.
func (g *gateway) Messages() []Message { return g.log.Messages() }

// WaitCount blocks until n messages were accepted or ctx ends.
func (g *gateway) WaitCount(ctx context.Context, n int) error { return g.log.WaitCount(ctx, n) }

// Requests returns how many send requests arrived, whatever their outcome.
func (g *gateway) Requests() int { return int(g.requests.Load()) }

// Reset forgets accepted messages and delivery reports and zeroes the
// counters; the fault plan is kept (see ResetFaults).
func (g *gateway) Reset() {
	g.log.Reset()
	g.requests.Store(0)
	g.cbOK.Store(0)
	g.cbFailed.Store(0)
	g.cbMu.Lock()
	g.cbReports = nil
	g.cbMu.Unlock()
}

// ResetFaults clears the fault plan.
func (g *gateway) ResetFaults() { g.Injector.Reset() }

// Reports returns the delivery reports posted successfully so far, as
// sent.
func (g *gateway) Reports() []json.RawMessage {
	g.cbMu.Lock()
	defer g.cbMu.Unlock()
	return append([]json.RawMessage(nil), g.cbReports...)
}

// ReportsFailed returns how many delivery reports could not be posted
// (connection refused, non-2xx answer). They are not retried.
func (g *gateway) ReportsFailed() int { return int(g.cbFailed.Load()) }

func (g *gateway) messages(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	msgs := g.log.Messages()
	_ = json.NewEncoder(w).Encode(struct {
		Count    int       `json:"count"`
		Messages []Message `json:"messages"`
	}{len(msgs), msgs})
}

// hold applies latency and hang for phone and returns the decision; ok
// is false when the client gave up meanwhile.
func (g *gateway) hold(r *http.Request, phone string) (d fault.Decision, ok bool) {
	d = g.Decide(phone)
	return d, g.Wait(r.Context(), d) == nil
}

// failHTTP answers an outage or a bare status decision; it reports
// whether it answered.
func (g *gateway) failHTTP(w http.ResponseWriter, d fault.Decision) bool {
	status := d.Status
	if d.Outage {
		status = http.StatusServiceUnavailable
	}
	if status == 0 {
		return false
	}
	if d.RetryAfter > 0 {
		w.Header().Set("Retry-After", fault.RetryAfterHeader(d.RetryAfter))
	}
	http.Error(w, http.StatusText(status), status)
	return true
}

func (g *gateway) accept(m Message) {
	m.Gateway = g.kind
	m.At = g.Now()
	g.log.Add(m, m.Phone)
}

func (g *gateway) nextID() uint64 { return g.seq.Add(1) }

// report posts a delivery report to url in the background. Close waits
// for it.
func (g *gateway) report(url string, body any) {
	var header http.Header
	if url == "" {
		url, header = g.callback, g.cbHeader
	}
	if url == "" {
		return
	}
	b, err := json.Marshal(body)
	if err != nil {
		return
	}
	g.cbWG.Add(1)
	go func() {
		defer g.cbWG.Done()
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
		if err != nil {
			g.cbFailed.Add(1)
			return
		}
		for k, v := range header {
			req.Header[k] = v
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := g.hc.Do(req)
		if err != nil {
			g.cbFailed.Add(1)
			return
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16)) // read to the end, so the connection is kept
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			g.cbFailed.Add(1)
			return
		}
		g.cbOK.Add(1)
		g.cbMu.Lock()
		g.cbReports = append(g.cbReports, b)
		g.cbMu.Unlock()
	}()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func decodeBody(r *http.Request) (map[string]any, []byte, error) {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(http.MaxBytesReader(nil, r.Body, 1<<20)); err != nil {
		return nil, nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		return nil, buf.Bytes(), err
	}
	return m, buf.Bytes(), nil
}
