package dispatcher

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/producer"
)

// Delivery reports written to loa.receipts (Reports.ViaLedger) are
// applied by the ledger, which is the first to know a send's row: a
// report whose send is in the same batch, or in one this ledger folded a
// moment ago, becomes the delivery's row in the batch's own transaction —
// no look-up, no held row, and no second write of the delivery when the
// two are folded together. Only a report whose send is not in hand is
// looked up (one statement a provider a batch), and only one whose send
// is nowhere yet is held, as the API held every early report before.

// ledgerReport is a delivery report read from loa.receipts.
type ledgerReport struct {
	rep producer.DeliveryReport
	at  time.Time // when Loa received it
}

// providerMsg names a message at a provider.
type providerMsg struct{ provider, id string }

// recentSends remembers the provider-addressed rows (SMS, e-mail: not
// push, which nobody reports on) of the batches a ledger folded last, so
// that a report read a batch or two after its send is applied without a
// look-up. Two generations of at most recentSendsMax rows each: a few
// seconds of sends at hundreds a second, and memory bounded whatever the
// rate. Safe for concurrent use.
type recentSends struct {
	mu        sync.Mutex
	cur, prev map[providerMsg]producer.Delivery
}

// recentSendsMax bounds a generation of recentSends: 4,096 rows of about
// 250 bytes, a megabyte or two for both.
const recentSendsMax = 4096

func (s *recentSends) add(rows [][]producer.Delivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range receiptsOf(rows) {
		if !reportable(&r) {
			continue
		}
		if s.cur == nil || len(s.cur) >= recentSendsMax {
			s.prev, s.cur = s.cur, make(map[providerMsg]producer.Delivery, recentSendsMax)
		}
		s.cur[providerMsg{r.Provider, r.ProviderID}] = r
	}
}

func (s *recentSends) get(k providerMsg) (producer.Delivery, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := s.cur[k]; ok {
		return d, true
	}
	d, ok := s.prev[k]
	return d, ok
}

// reportable says whether a delivery report may name r's row: one with
// the provider's id, on a channel whose providers report (not push), as
// sqlstore's look-ups by provider id select.
func reportable(r *producer.Delivery) bool {
	return r.Provider != "" && r.ProviderID != "" && r.Channel != string(channels.Push)
}

// ledgerFold is a batch of loa.receipts messages decoded: the receipts'
// rows, a batch a message (ledgerRows), and the delivery reports.
type ledgerFold struct {
	msgs    []kafka.Message
	size    int // bytes of the messages' values
	batches [][]producer.Delivery
	reps    []ledgerReport
}

// decodeLedger decodes msgs. A report message that cannot be decoded has
// no better place to go than a receipt that cannot: it is logged and
// skipped.
func (d *Dispatcher) decodeLedger(msgs []kafka.Message) *ledgerFold {
	f := &ledgerFold{msgs: msgs}
	rest := msgs
	for i, m := range msgs {
		f.size += len(m.Value)
		rep, at, ok, err := producer.DecodeReport(m.Value)
		if !ok {
			if len(rest) < len(msgs) {
				rest = append(rest, m)
			}
			continue
		}
		if len(rest) == len(msgs) { // the first report: the receipts so far
			rest = append(make([]kafka.Message, 0, len(msgs)), msgs[:i]...)
		}
		if err != nil {
			d.log.Error("undecodable delivery report skipped", slog.Int("partition", m.Partition), slog.Int64("offset", m.Offset), slog.Any("error", err))
			continue
		}
		if at.IsZero() {
			at = d.now()
		}
		f.reps = append(f.reps, ledgerReport{rep: rep, at: at})
	}
	f.batches = d.ledgerRows(rest)
	return f
}

// ledgerReportWait bounds how long the ledger reads on, before it folds
// a batch, for the sends of the batch's reports that are not in it: a
// gateway that reports at once often has its report on loa.receipts a
// few milliseconds before the dispatcher's receipt of the send, and a
// report whose send is nowhere is held — a row written, looked for and
// deleted again. The ledger runs at the bulk side's CPU weight: on a busy
// machine it may not read the send's partition for hundreds of
// milliseconds: 250 ms left 4–40 % of the reports held in codes-alone
// runs at load 9–25, and a second did no better in two runs (4 and 37 %;
// docs/testing.md), while it would hold a ledger whose reports' sends are
// another replica's four times as long.
const ledgerReportWait = 250 * time.Millisecond

// awaitSends extends f with what fetch reads next while some of f's
// reports' sends are neither in f nor among the sends folded lately:
// until they are, ledgerReportWait has passed, or f holds twice a batch's
// messages or half as many bytes again as one (a broadcast's receipts
// come packed a few hundred to a message, and what a fold holds decoded
// is what ledgerBytes bounds the dispatcher's memory by). The reports
// still unmatched then are looked up and held by foldBatch. A report's
// send can be in a partition another ledger reads: the wait is bounded,
// not a promise.
func (d *Dispatcher) awaitSends(ctx context.Context, fetch func(context.Context) (kafka.Message, error), f *ledgerFold) {
	if len(f.reps) == 0 {
		return
	}
	have := map[providerMsg]bool{}
	for _, row := range receiptsOf(f.batches) {
		if reportable(&row) {
			have[providerMsg{row.Provider, row.ProviderID}] = true
		}
	}
	wanted := map[providerMsg]bool{}
	want := func(reps []ledgerReport) {
		for _, p := range reps {
			k := providerMsg{p.rep.Provider, p.rep.ProviderID}
			if have[k] {
				continue
			}
			if _, ok := d.recent.get(k); !ok {
				wanted[k] = true
			}
		}
	}
	want(f.reps)
	if len(wanted) == 0 {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, ledgerReportWait)
	defer cancel()
	for len(wanted) > 0 && len(f.msgs) < 2*ledgerBatch && f.size < ledgerBytes+ledgerBytes/2 {
		m, err := fetch(wctx)
		if err != nil {
			return // waited long enough (or stopping)
		}
		g := d.decodeLedger([]kafka.Message{m})
		f.msgs, f.size = append(f.msgs, m), f.size+g.size
		f.batches, f.reps = append(f.batches, g.batches...), append(f.reps, g.reps...)
		for _, row := range receiptsOf(g.batches) {
			if reportable(&row) {
				k := providerMsg{row.Provider, row.ProviderID}
				have[k] = true
				delete(wanted, k)
			}
		}
		want(g.reps)
	}
}

// resolveReports finds the rows reps are about: in batches (the receipts
// being folded), among the sends folded lately, or else in the store. It
// returns the reports' own rows, to be folded with batches, and the
// reports whose send is nowhere yet, to be held.
func (d *Dispatcher) resolveReports(ctx context.Context, batches [][]producer.Delivery, reps []ledgerReport) ([]producer.Delivery, []sqlstore.HeldReport, error) {
	if len(reps) == 0 {
		return nil, nil, nil
	}
	inBatch := map[providerMsg]producer.Delivery{}
	for _, r := range receiptsOf(batches) {
		if reportable(&r) {
			inBatch[providerMsg{r.Provider, r.ProviderID}] = r // the latest row stands
		}
	}
	var (
		rows    []producer.Delivery
		missing = map[string][]int{} // provider → reps
	)
	for i, p := range reps {
		k := providerMsg{p.rep.Provider, p.rep.ProviderID}
		if s, ok := inBatch[k]; ok {
			rows = append(rows, reportRow(s, p))
		} else if s, ok := d.recent.get(k); ok {
			rows = append(rows, reportRow(s, p))
		} else {
			missing[p.rep.Provider] = append(missing[p.rep.Provider], i)
		}
	}
	var held []sqlstore.HeldReport
	for provider, idx := range missing {
		ids := make([]string, len(idx))
		for j, i := range idx {
			ids[j] = reps[i].rep.ProviderID
		}
		found, err := d.store.DeliveriesByProviderIDs(ctx, provider, ids)
		if err != nil {
			return nil, nil, err
		}
		for _, i := range idx {
			p := reps[i]
			if s, ok := found[p.rep.ProviderID]; ok {
				rows = append(rows, reportRow(s, p))
				continue
			}
			held = append(held, sqlstore.HeldReport{Provider: provider, ProviderID: p.rep.ProviderID, Status: p.rep.Status,
				Reason: p.rep.Reason, ReceivedAt: p.at})
		}
	}
	return rows, held, nil
}

// reportRow is the row of send s once report p is applied: the carrier's
// status and words, the rest the send's.
func reportRow(s producer.Delivery, p ledgerReport) producer.Delivery {
	s.Status, s.Reason, s.UpdatedAt = p.rep.Status, p.rep.Reason, p.at
	return s
}
