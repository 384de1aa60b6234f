package dispatcher

import (
	"context"
	"iter"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

// The ledger folds receipts into the store in batches: it takes what
// loa.receipts has (up to ledgerBatch messages or ledgerBytes of them,
// waiting at most ledgerLinger for more), writes their receipts in
// transactions of at most ledgerTxRows deliveries, and only then commits
// their offsets. A broadcast of a million devices is a million receipts;
// one commit per receipt would make the database the bottleneck.
const (
	ledgerBatch  = 500
	ledgerLinger = 20 * time.Millisecond
	ledgerTxRows = 5000
	// ledgerBytes bounds a batch in memory: a fan-out message holds
	// hundreds of receipts, so 500 of them could be a quarter million.
	// A megabyte is about 4,000 receipts, close to ledgerTxRows: the
	// statement per fold stays as large, while what the fold holds
	// decoded (the receipts, their rows, the statement's arrays) is a
	// quarter of what 4 MiB made it.
	ledgerBytes = 1 << 20
)

// runLedger consumes loa.receipts until ctx ends, then finishes the batch
// in hand and leaves the group.
func (d *Dispatcher) runLedger(ctx context.Context) error {
	c := &consumer{cfg: consumerConfig{Brokers: d.cfg.Brokers, Topic: d.cfg.Names.Topic(topics.Receipts), Group: d.cfg.Names.Group("loa-ledger")},
		log: d.log.With(slog.String("consumer", "ledger"))}
	r := c.newReader()
	defer r.Close()
	for {
		msgs, err := fetchBatch(ctx, r, ledgerBatch, ledgerBytes, ledgerLinger)
		if len(msgs) == 0 {
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				c.log.Warn("fetch failed", slog.Any("error", err))
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(500 * time.Millisecond):
				}
			}
			continue
		}
		f := d.decodeLedger(msgs)
		d.awaitSends(ctx, r.FetchMessage, f)
		msgs = f.msgs
		// Finish the batch even while stopping: it is already fetched.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.ShutdownTimeout+time.Minute)
		err = d.foldBatch(wctx, f)
		for backoff := 100 * time.Millisecond; err != nil; backoff = min(backoff*2, 10*time.Second) {
			c.log.Warn("ledger write failed; retrying", slog.Int("receipts", len(msgs)), slog.Any("error", err))
			select {
			case <-ctx.Done():
				cancel()
				return nil // uncommitted: the next run folds them again
			case <-time.After(backoff):
			}
			err = d.foldBatch(wctx, f)
		}
		cancel()
		if err := r.CommitMessages(context.WithoutCancel(ctx), msgs...); err != nil {
			c.log.Warn("commit failed; the receipts will be folded again (idempotent)", slog.Any("error", err))
		}
	}
}

// fetchBatch fetches one message, waiting until ctx ends, then as many
// more as arrive within linger, up to max messages or maxBytes of values.
func fetchBatch(ctx context.Context, r *kafka.Reader, max, maxBytes int, linger time.Duration) ([]kafka.Message, error) {
	m, err := r.FetchMessage(ctx)
	if err != nil {
		return nil, err
	}
	msgs, size := []kafka.Message{m}, len(m.Value)
	lctx, cancel := context.WithTimeout(ctx, linger)
	defer cancel()
	for len(msgs) < max && size < maxBytes {
		m, err := r.FetchMessage(lctx)
		if err != nil {
			break // linger over (or stopping): write what we have
		}
		msgs, size = append(msgs, m), size+len(m.Value)
	}
	return msgs, nil
}

// ledgerRows decodes the receipts of msgs into ledger rows, in order, one
// receipt batch a message (the ledger stores a message's first sends
// compactly, and a message folded again must make the same batch). A
// fan-out's message packs hundreds of receipts: the rows are counted
// before they are made, not grown as they come.
func (d *Dispatcher) ledgerRows(msgs []kafka.Message) [][]producer.Delivery {
	decoded, n := make([][]producer.Receipt, len(msgs)), 0
	for i, m := range msgs {
		rs, err := producer.DecodeReceipts(m.Value)
		if err != nil {
			d.log.Error("undecodable receipt skipped", slog.Int("partition", m.Partition), slog.Int64("offset", m.Offset), slog.Any("error", err))
			continue
		}
		decoded[i], n = rs, n+len(rs)
	}
	rows := make([]producer.Delivery, 0, n)
	batches := make([][]producer.Delivery, 0, len(msgs))
	for _, rs := range decoded {
		if len(rs) == 0 {
			continue
		}
		start := len(rows)
		for _, r := range rs {
			rows = append(rows, producer.Delivery{
				NotificationID: r.NotificationID, Channel: r.Channel, Recipient: r.Recipient, Status: r.Status,
				Class: r.Class, Provider: r.Provider, ProviderID: r.ProviderID, Reason: r.Reason,
				Targets: r.Targets, Attempts: r.Attempts, UpdatedAt: r.At,
			})
		}
		batches = append(batches, rows[start:len(rows):len(rows)])
	}
	return batches
}

// foldReceipts writes a batch of receipts to the ledger and deactivates
// the devices whose tokens died. A receipt that cannot be decoded has no
// better place to go: it is logged and skipped.
func (d *Dispatcher) foldReceipts(ctx context.Context, msgs []kafka.Message) error {
	return d.foldBatch(ctx, d.decodeLedger(msgs))
}

// foldBatch is foldReceipts for messages decoded. It leaves f as it was,
// to be folded again when it fails.
func (d *Dispatcher) foldBatch(ctx context.Context, f *ledgerFold) error {
	if d.store == nil {
		return nil
	}
	batches, reps := f.batches, f.reps
	for _, r := range receiptsOf(batches) {
		// A dead token is deactivated here, from its receipt, so every
		// replica learns it through the same event and nothing is sent
		// to the device again.
		if r.Status == loa.StatusTokenDead && r.Channel == string(channels.Push) {
			if err := d.store.DeactivateDevice(ctx, r.Recipient); err != nil {
				return err
			}
		}
	}
	// Delivery reports: their rows go with the receipts, in a batch of
	// their own after them (the ledger's precedence puts a report above
	// its send, whatever the order).
	reportRows, held, err := d.resolveReports(ctx, batches, reps)
	if err != nil {
		return err
	}
	if len(reportRows) > 0 {
		batches = append(batches[:len(batches):len(batches)], reportRows)
	}
	// Messages from fan-out carry hundreds of receipts each: write them in
	// transactions of about ledgerTxRows receipts, in order, a message
	// never cut in two.
	for start := 0; start < len(batches); {
		end, n := start, 0
		for end < len(batches) && (end == start || n+len(batches[end]) <= ledgerTxRows) {
			n += len(batches[end])
			end++
		}
		if err := d.store.RecordReceiptBatches(ctx, batches[start:end]); err != nil {
			return err
		}
		start = end
	}
	d.recent.add(batches)
	// Reports whose sends are nowhere yet wait for them, held; the offsets
	// are committed only once they are.
	if err := d.store.HoldReports(ctx, held); err != nil {
		return err
	}
	// Delivery reports that came before these sends were recorded: apply
	// them now, looking only for the sends of this batch. Only SMS
	// gateways report. The reports just held are looked for once more: a
	// send another ledger recorded between the look-up and the hold would
	// otherwise wait for the sweep.
	var sent map[string][]string
	for _, r := range receiptsOf(batches) {
		if r.Channel == string(channels.SMS) && r.ProviderID != "" && r.Status == loa.StatusSent {
			if sent == nil {
				sent = make(map[string][]string)
			}
			sent[r.Provider] = append(sent[r.Provider], r.ProviderID)
		}
	}
	for _, h := range held {
		if sent == nil {
			sent = make(map[string][]string)
		}
		sent[h.Provider] = append(sent[h.Provider], h.ProviderID)
	}
	if sent != nil {
		if _, err := d.reports.MatchSent(ctx, sent); err != nil {
			d.log.Warn("matching held delivery reports failed; the sweep will", slog.Any("error", err))
		}
	}
	return nil
}

// receiptsOf yields the rows of batches in order.
func receiptsOf(batches [][]producer.Delivery) iter.Seq2[int, producer.Delivery] {
	return func(yield func(int, producer.Delivery) bool) {
		i := 0
		for _, b := range batches {
			for _, r := range b {
				if !yield(i, r) {
					return
				}
				i++
			}
		}
	}
}
