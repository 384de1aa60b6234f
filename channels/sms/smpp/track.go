package smpp

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/loa-hub/loa/channels/sms/smpp/pdu"
	"github.com/loa-hub/loa/internal/phone"
)

// Report is a final delivery receipt, in the terms of the message Loa
// sent. A multi-part message is reported once: delivered when every part
// was, otherwise with the first part's failure.
type Report struct {
	// Provider is the Client's name.
	Provider string
	// MessageID is the SMSC's id of the message: of its first part for a
	// multi-part message, which is what Send returned as ProviderID.
	MessageID string
	// Status is delivered, undelivered or expired.
	Status ReceiptStatus
	// Receipt is the receipt that decided Status.
	Receipt Receipt
	// Matched says the message was submitted by this Client since it
	// started; NotificationID, To and Parts are then known. An unmatched
	// report (sent before a restart, or by another replica) names only
	// MessageID, which the ledger knows.
	Matched        bool
	NotificationID string
	To             string
	Parts          int
}

// ReportSink takes the Client's delivery reports. Report returns nil
// once the report is recorded (or is known to be unrecordable and should
// be dropped); an error makes the Client answer the deliver_sm with
// ESME_RX_T_APPN, so the SMSC delivers the receipt again later. It is
// called from several goroutines at once.
type ReportSink interface {
	Report(ctx context.Context, r Report) error
}

// ReportFunc adapts a function to ReportSink.
type ReportFunc func(ctx context.Context, r Report) error

// Report calls f.
func (f ReportFunc) Report(ctx context.Context, r Report) error { return f(ctx, r) }

// sent is what the tracker remembers of a submitted message part.
type sent struct {
	notificationID, to string
	group              *group // nil for a one-part message
}

// group is a multi-part message waiting for its parts' receipts.
type group struct {
	ids       []string // in part order; ids[0] is the message's id
	delivered map[string]bool
	reported  bool
}

// held is a receipt whose message id is unknown while submits are in
// flight: it may be for one of them, answered after the receipt came.
type held struct {
	r         Receipt
	respond   func(pdu.Status)
	watermark uint64 // the last submit ticket issued when it arrived
}

// queued is a report waiting for the sink.
type queued struct {
	rep     Report
	respond func(pdu.Status)
}

// Bounds of what the tracker keeps in memory.
const (
	maxRecent = 50_000 // message parts remembered for matching receipts
	maxHeld   = 10_000 // receipts held for in-flight submits
	reportQ   = 4096   // reports waiting for the sink
	reporters = 16     // goroutines calling the sink
)

// tracker matches delivery receipts to the messages this Client sent,
// including a receipt that arrives before the submit_sm_resp that names
// its message: such a receipt is held until every submit that was in
// flight when it came has been answered (or has failed), then matched
// or, if it is for none of them, passed on unmatched.
type tracker struct {
	provider string
	log      *slog.Logger
	now      func() time.Time

	mu       sync.Mutex
	ticket   uint64
	inflight map[uint64]struct{}
	recent   map[string]sent
	order    []string // ids of recent, oldest first (a ring)
	head     int
	held     []held

	queue chan queued
}

func newTracker(provider string, log *slog.Logger, now func() time.Time) *tracker {
	return &tracker{provider: provider, log: log, now: now, inflight: map[uint64]struct{}{},
		recent: map[string]sent{}, queue: make(chan queued, reportQ)}
}

// begin registers a submit about to be written and returns its ticket.
func (t *tracker) begin() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ticket++
	t.inflight[t.ticket] = struct{}{}
	return t.ticket
}

// end retires ticket; ids are the parts' message ids when the message
// was accepted whole (nil otherwise). Held receipts that can now be
// decided are matched or passed on.
func (t *tracker) end(ticket uint64, ids []string, notificationID, to string) {
	var out []queued
	t.mu.Lock()
	delete(t.inflight, ticket)
	if len(ids) > 0 {
		var g *group
		if len(ids) > 1 {
			g = &group{ids: ids, delivered: map[string]bool{}}
		}
		for _, id := range ids {
			t.remember(id, sent{notificationID: notificationID, to: to, group: g})
		}
	}
	if len(t.held) > 0 {
		oldest := uint64(0)
		for k := range t.inflight {
			if oldest == 0 || k < oldest {
				oldest = k
			}
		}
		kept := t.held[:0]
		for _, h := range t.held {
			if s, ok := t.recent[h.r.MessageID]; ok {
				out = append(out, t.matchLocked(h.r, s, h.respond)...)
				continue
			}
			if oldest == 0 || oldest > h.watermark {
				out = append(out, queued{rep: t.unmatched(h.r), respond: h.respond})
				continue
			}
			kept = append(kept, h)
		}
		clear(t.held[len(kept):])
		t.held = kept
	}
	t.mu.Unlock()
	t.enqueue(out...)
}

// remember adds id to recent, forgetting the oldest beyond maxRecent.
func (t *tracker) remember(id string, s sent) {
	if _, ok := t.recent[id]; !ok {
		if len(t.order) < maxRecent {
			t.order = append(t.order, id)
		} else {
			delete(t.recent, t.order[t.head])
			t.order[t.head] = id
			t.head = (t.head + 1) % maxRecent
		}
	}
	t.recent[id] = s
}

// receipt takes a receipt from a session. respond answers its deliver_sm.
func (t *tracker) receipt(r Receipt, respond func(pdu.Status)) {
	if r.Status == "" {
		respond(pdu.OK) // not final: nothing to record
		return
	}
	var out []queued
	t.mu.Lock()
	switch s, ok := t.recent[r.MessageID]; {
	case ok:
		out = t.matchLocked(r, s, respond)
	case len(t.inflight) == 0:
		out = []queued{{rep: t.unmatched(r), respond: respond}}
	default:
		if len(t.held) >= maxHeld {
			out = append(out, queued{rep: t.unmatched(t.held[0].r), respond: t.held[0].respond})
			t.held = t.held[1:]
		}
		t.held = append(t.held, held{r: r, respond: respond, watermark: t.ticket})
	}
	t.mu.Unlock()
	t.enqueue(out...)
}

// matchLocked turns a receipt for a known part into the message's
// report, or into nothing while other parts' receipts are awaited.
func (t *tracker) matchLocked(r Receipt, s sent, respond func(pdu.Status)) []queued {
	rep := Report{Provider: t.provider, MessageID: r.MessageID, Status: r.Status, Receipt: r, Matched: true,
		NotificationID: s.notificationID, To: s.to, Parts: 1}
	if g := s.group; g != nil {
		rep.MessageID, rep.Parts = g.ids[0], len(g.ids)
		if g.reported {
			respond(pdu.OK) // the message's outcome is already reported
			return nil
		}
		if r.Status == Delivered {
			g.delivered[r.MessageID] = true
			if len(g.delivered) < len(g.ids) {
				respond(pdu.OK)
				return nil
			}
		}
		g.reported = true
	}
	return []queued{{rep: rep, respond: respond}}
}

func (t *tracker) unmatched(r Receipt) Report {
	return Report{Provider: t.provider, MessageID: r.MessageID, Status: r.Status, Receipt: r}
}

// enqueue hands reports to the reporters without ever blocking a
// session's reading goroutine: when the queue is full the SMSC is told
// to deliver the receipt again later.
func (t *tracker) enqueue(qs ...queued) {
	for _, q := range qs {
		select {
		case t.queue <- q:
		default:
			t.log.Warn("delivery receipts are arriving faster than they are recorded; the SMSC will send this one again",
				slog.String("message_id", q.rep.MessageID))
			q.respond(pdu.RxTAppn)
		}
	}
}

// report runs one reporter until ctx ends: it passes queued reports to
// sink and answers their deliver_sm.
func (t *tracker) report(ctx context.Context, sink ReportSink) {
	for {
		select {
		case <-ctx.Done():
			return
		case q := <-t.queue:
			if sink == nil {
				t.log.Info("delivery receipt", slog.String("message_id", q.rep.MessageID), slog.String("status", string(q.rep.Status)),
					slog.String("phone", phone.Mask(q.rep.Receipt.Phone)))
				q.respond(pdu.OK)
				continue
			}
			if err := sink.Report(ctx, q.rep); err != nil {
				t.log.Warn("a delivery receipt could not be recorded; the SMSC will send it again",
					slog.String("message_id", q.rep.MessageID), slog.Any("error", err))
				q.respond(pdu.RxTAppn)
				continue
			}
			q.respond(pdu.OK)
		}
	}
}

// drain answers every queued and held receipt with ESME_RX_T_APPN when
// the Client stops, so the SMSC sends them again to whoever binds next.
func (t *tracker) drain() {
	t.mu.Lock()
	hs := t.held
	t.held = nil
	t.mu.Unlock()
	for _, h := range hs {
		h.respond(pdu.RxTAppn)
	}
	for {
		select {
		case q := <-t.queue:
			q.respond(pdu.RxTAppn)
		default:
			return
		}
	}
}
