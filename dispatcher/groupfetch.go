package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	fetchAPI "github.com/segmentio/kafka-go/protocol/fetch"
)

// messageReader is what a consumer reads a topic through: kafka-go's
// *kafka.Reader, or a *groupFetcher.
type messageReader interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
	CommitMessages(ctx context.Context, msgs ...kafka.Message) error
	Close() error
}

var (
	_ messageReader = (*kafka.Reader)(nil)
	_ messageReader = (*groupFetcher)(nil)
)

// groupFetcher reads one topic as a member of a consumer group, as
// kafka-go's Reader does, but fetches every partition assigned to it
// that one broker leads in one fetch request.
//
// The Reader reads each partition on a connection of its own, in fetch
// requests of one partition each: at 500 codes a second over loa.otp's
// six partitions, each partition's reader fetched its codes in requests
// of their own, one or two codes each, and every idle partition was asked
// again each MaxWait. One request for all of them returns as soon as any
// has a message, with what all have by then, so the codes that arrive
// together over several partitions share a request, the broker answers
// one long poll instead of one a partition, and the dispatcher wakes once.
//
// Commits are as the Reader's with a CommitInterval: CommitMessages
// stashes the offsets, a loop commits them each interval and once more
// when the generation ends or the fetcher is closed (after its consumer's
// last CommitMessages). A generation's commits are only of the partitions
// it holds; offsets done in an earlier generation of partitions now held
// by another member are left to it (it reads them again, as a Reader's
// would: the claims make that harmless).
type groupFetcher struct {
	topic          string
	addr           net.Addr
	rt             *kafka.Transport
	cg             *kafka.ConsumerGroup
	log            *slog.Logger
	maxWait        time.Duration
	maxBytes       int
	commitInterval time.Duration

	msgs    chan kafka.Message
	stop    context.CancelFunc
	stopped chan struct{} // closed when run has returned (the group left)

	mu      sync.Mutex
	held    map[int]bool  // partitions of the current generation
	offsets map[int]int64 // next offsets to commit, of partitions held

	// requests, when set, is told of each fetch request sent (tests).
	requests func(*fetchAPI.Request)
}

// newGroupFetcher returns a fetcher of topic for group on brokers, taking
// the group's settings of a consumer's Reader (newReader). Start it with
// start.
func newGroupFetcher(brokers []string, topic, group string, commitInterval time.Duration, log *slog.Logger) (*groupFetcher, error) {
	errLog := kafka.LoggerFunc(func(msg string, args ...any) {
		log.Debug("kafka group", slog.String("topic", topic), slog.Any("detail", []any{msg, args}))
	})
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                group,
		Brokers:           brokers,
		Topics:            []string{topic},
		HeartbeatInterval: 2 * time.Second,
		SessionTimeout:    20 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		StartOffset:       kafka.FirstOffset,
		ErrorLogger:       errLog,
	})
	if err != nil {
		return nil, fmt.Errorf("dispatcher: consumer group %s: %w", group, err)
	}
	f := &groupFetcher{
		topic: topic, addr: kafka.TCP(brokers...), rt: &kafka.Transport{MetadataTopics: []string{topic}}, cg: cg, log: log,
		maxWait: time.Second, maxBytes: 1 << 20, commitInterval: commitInterval,
		msgs: make(chan kafka.Message, readerQueue), stopped: make(chan struct{}),
		held: map[int]bool{}, offsets: map[int]int64{},
	}
	return f, nil
}

// start joins the group and starts fetching. Call it once.
func (f *groupFetcher) start() {
	ctx, stop := context.WithCancel(context.Background())
	f.stop = stop
	go f.run(ctx)
}

// FetchMessage returns the next message of the partitions held, or
// ctx's error, or io.EOF once the fetcher is closed.
func (f *groupFetcher) FetchMessage(ctx context.Context) (kafka.Message, error) {
	select {
	case m := <-f.msgs:
		return m, nil
	case <-ctx.Done():
		return kafka.Message{}, ctx.Err()
	case <-f.stopped:
		return kafka.Message{}, io.EOF
	}
}

// CommitMessages stashes the offsets after msgs, for the next commit, of
// the partitions the current generation holds.
func (f *groupFetcher) CommitMessages(_ context.Context, msgs ...kafka.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range msgs {
		if f.held[m.Partition] && m.Offset+1 > f.offsets[m.Partition] {
			f.offsets[m.Partition] = m.Offset + 1
		}
	}
	return nil
}

// Close stops fetching, commits what is stashed and leaves the group.
func (f *groupFetcher) Close() error {
	f.stop()
	<-f.stopped
	f.rt.CloseIdleConnections()
	return nil
}

// run takes part in the group's generations until ctx ends, then leaves.
func (f *groupFetcher) run(ctx context.Context) {
	defer close(f.stopped)
	defer f.cg.Close()
	for {
		gen, err := f.cg.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				return
			}
			f.log.Debug("kafka group", slog.String("topic", f.topic), slog.Any("error", err))
			continue
		}
		assigned := gen.Assignments[f.topic]
		f.mu.Lock()
		f.held, f.offsets = map[int]bool{}, map[int]int64{}
		for _, a := range assigned {
			f.held[a.ID] = true
		}
		f.mu.Unlock()
		gen.Start(func(gctx context.Context) { f.commitLoop(gctx, ctx, gen) })
		// A generation ends as soon as one of its functions returns:
		// each returns only when the generation ends or the fetcher stops.
		gen.Start(func(gctx context.Context) {
			fctx, cancel := context.WithCancel(gctx)
			defer cancel()
			go func() {
				select {
				case <-ctx.Done():
					cancel()
				case <-fctx.Done():
				}
			}()
			f.fetchLoop(fctx, assigned) // at once when no partition is assigned
			<-fctx.Done()
		})
	}
}

// commitLoop commits the stashed offsets each commitInterval, and once
// more when the generation ends or the fetcher stops.
func (f *groupFetcher) commitLoop(gctx, ctx context.Context, gen *kafka.Generation) {
	interval := f.commitInterval
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	committed := map[int]int64{}
	commit := func() {
		f.mu.Lock()
		todo := map[int]int64{}
		for p, o := range f.offsets {
			if committed[p] != o {
				todo[p] = o
			}
		}
		f.mu.Unlock()
		if len(todo) == 0 {
			return
		}
		if err := gen.CommitOffsets(map[string]map[int]int64{f.topic: todo}); err != nil {
			f.log.Warn("commit failed; the messages will be redelivered", slog.String("topic", f.topic), slog.Any("error", err))
			return
		}
		for p, o := range todo {
			committed[p] = o
		}
	}
	for {
		select {
		case <-gctx.Done():
			commit()
			return
		case <-ctx.Done():
			commit()
			return
		case <-t.C:
			commit()
		}
	}
}

// fetchLoop fetches the partitions assigned, from their committed
// offsets, until ctx ends: one request a leader broker at a time, each
// broker's partitions in a goroutine of its own. When a partition's
// leader moves, or a request fails, it looks the leaders up again.
func (f *groupFetcher) fetchLoop(ctx context.Context, assigned []kafka.PartitionAssignment) {
	offsets := map[int]int64{}
	for _, a := range assigned {
		offsets[a.ID] = a.Offset
	}
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil && len(offsets) > 0 {
		byLeader, err := f.leaders(ctx, offsets)
		if err == nil {
			err = f.resolve(ctx, offsets)
		}
		if err == nil {
			var (
				wg   sync.WaitGroup
				mu   sync.Mutex
				errs []error
			)
			lctx, cancel := context.WithCancel(ctx)
			for _, parts := range byLeader {
				own := map[int]int64{}
				for _, p := range parts {
					own[p] = offsets[p]
				}
				wg.Go(func() {
					// A leader's partitions are fetched until a request
					// fails; then all stop and the leaders are looked up
					// again.
					err := f.fetchFrom(lctx, own)
					mu.Lock()
					for p, o := range own {
						offsets[p] = o
					}
					errs = append(errs, err)
					mu.Unlock()
					cancel()
				})
			}
			wg.Wait()
			cancel()
			err = errors.Join(errs...)
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			f.log.Debug("kafka fetch", slog.String("topic", f.topic), slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 500*time.Millisecond)
	}
}

// leaders groups the partitions of offsets by their leader broker.
func (f *groupFetcher) leaders(ctx context.Context, offsets map[int]int64) (map[int][]int, error) {
	md, err := (&kafka.Client{Addr: f.addr, Transport: f.rt}).Metadata(ctx, &kafka.MetadataRequest{Topics: []string{f.topic}})
	if err != nil {
		return nil, err
	}
	out := map[int][]int{}
	for _, t := range md.Topics {
		if t.Name != f.topic {
			continue
		}
		if t.Error != nil {
			return nil, t.Error
		}
		for _, p := range t.Partitions {
			if _, ok := offsets[p.ID]; ok {
				out[p.Leader.ID] = append(out[p.Leader.ID], p.ID)
			}
		}
	}
	n := 0
	for _, ps := range out {
		n += len(ps)
	}
	if n != len(offsets) {
		return nil, fmt.Errorf("dispatcher: %s: leaders of %d of %d partitions known", f.topic, n, len(offsets))
	}
	return out, nil
}

// resolve turns the partitions' negative offsets (no committed offset:
// kafka.FirstOffset, or kafka.LastOffset) into the log's first or next
// offset.
func (f *groupFetcher) resolve(ctx context.Context, offsets map[int]int64) error {
	var req []kafka.OffsetRequest
	for p, o := range offsets {
		if o < 0 {
			req = append(req, kafka.OffsetRequest{Partition: p, Timestamp: o})
		}
	}
	if len(req) == 0 {
		return nil
	}
	res, err := (&kafka.Client{Addr: f.addr, Transport: f.rt}).ListOffsets(ctx, &kafka.ListOffsetsRequest{
		Topics: map[string][]kafka.OffsetRequest{f.topic: req},
	})
	if err != nil {
		return err
	}
	for _, p := range res.Topics[f.topic] {
		if p.Error != nil {
			return p.Error
		}
		switch offsets[p.Partition] {
		case kafka.FirstOffset:
			offsets[p.Partition] = p.FirstOffset
		case kafka.LastOffset:
			offsets[p.Partition] = p.LastOffset
		}
	}
	for p, o := range offsets {
		if o < 0 {
			return fmt.Errorf("dispatcher: %s/%d: no offset to start from", f.topic, p)
		}
	}
	return nil
}

// fetchFrom fetches the partitions of offsets (of one leader) from their
// offsets, in one request at a time, hands their messages on in order and
// keeps offsets at the next to fetch. It returns when ctx ends, or with
// the error of a request or of a partition.
func (f *groupFetcher) fetchFrom(ctx context.Context, offsets map[int]int64) error {
	for ctx.Err() == nil {
		req := &fetchAPI.Request{
			ReplicaID: -1, MaxWaitTime: int32(f.maxWait / time.Millisecond), MinBytes: 1, MaxBytes: int32(f.maxBytes),
			SessionID: -1, SessionEpoch: -1,
			Topics: []fetchAPI.RequestTopic{{Topic: f.topic}},
		}
		for p, o := range offsets {
			req.Topics[0].Partitions = append(req.Topics[0].Partitions, fetchAPI.RequestPartition{
				Partition: int32(p), CurrentLeaderEpoch: -1, FetchOffset: o, LogStartOffset: -1, PartitionMaxBytes: int32(f.maxBytes),
			})
		}
		if f.requests != nil {
			f.requests(req)
		}
		rctx, cancel := context.WithTimeout(ctx, f.maxWait+10*time.Second)
		res, err := f.rt.RoundTrip(rctx, f.addr, req)
		cancel()
		if err != nil {
			return err
		}
		r := res.(*fetchAPI.Response)
		if r.ErrorCode != 0 {
			return kafka.Error(r.ErrorCode)
		}
		var perr error
		for _, t := range r.Topics {
			for _, rp := range t.Partitions {
				p := int(rp.Partition)
				if _, ok := offsets[p]; !ok || t.Topic != f.topic {
					closeRecords(rp.RecordSet.Records)
					continue
				}
				if rp.ErrorCode != 0 {
					err := kafka.Error(rp.ErrorCode)
					if errors.Is(err, kafka.OffsetOutOfRange) {
						// The log was truncated past it (retention): read
						// from its start, as the Reader does.
						offsets[p] = kafka.FirstOffset
					}
					perr = errors.Join(perr, fmt.Errorf("%s/%d: %w", f.topic, p, err))
					closeRecords(rp.RecordSet.Records)
					continue
				}
				if err := f.hand(ctx, p, rp, offsets); err != nil {
					perr = errors.Join(perr, err)
				}
			}
		}
		if perr != nil {
			return perr
		}
	}
	return nil
}

// hand hands on the records of rp from partition p's offset, in order.
func (f *groupFetcher) hand(ctx context.Context, p int, rp fetchAPI.ResponsePartition, offsets map[int]int64) error {
	rs := rp.RecordSet.Records
	if rs == nil {
		return nil
	}
	defer closeRecords(rs)
	for {
		rec, err := rs.ReadRecord()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s/%d: %w", f.topic, p, err)
		}
		if rec.Offset < offsets[p] {
			closeBytes(rec.Key, rec.Value)
			continue // a batch may start before the offset asked for
		}
		m := kafka.Message{Topic: f.topic, Partition: p, Offset: rec.Offset, HighWaterMark: rp.HighWatermark, Time: rec.Time}
		m.Key, err = protocol.ReadAll(rec.Key)
		if err == nil {
			m.Value, err = protocol.ReadAll(rec.Value)
		}
		closeBytes(rec.Key, rec.Value)
		if err != nil {
			return fmt.Errorf("%s/%d: %w", f.topic, p, err)
		}
		if len(rec.Headers) > 0 {
			m.Headers = append([]kafka.Header(nil), rec.Headers...)
		}
		select {
		case f.msgs <- m:
		case <-ctx.Done():
			return nil // offsets stays at m: read again by whoever holds p next
		}
		offsets[p] = rec.Offset + 1
	}
}

// closeRecords releases a response's records, when they hold buffers.
func closeRecords(rs protocol.RecordReader) {
	if c, ok := rs.(io.Closer); ok {
		c.Close()
	}
}

// closeBytes releases record keys and values.
func closeBytes(bs ...protocol.Bytes) {
	for _, b := range bs {
		if b != nil {
			b.Close()
		}
	}
}
