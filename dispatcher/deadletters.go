package dispatcher

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

// handleDeadLetter indexes one dead letter in the store, where operators
// list and replay it.
func (d *Dispatcher) handleDeadLetter(ctx context.Context, m kafkaMessage) ([]producer.Record, error) {
	var dl DeadLetter
	if err := json.Unmarshal(m.Value, &dl); err != nil || dl.ID == "" {
		// A dead letter of the dead-letter topic has nowhere to go: log it
		// and move on rather than loop.
		d.log.Error("undecodable record on the dead-letter topic; skipped", "offset", m.Offset, "error", err)
		return nil, nil
	}
	if d.store == nil {
		return nil, nil
	}
	history, _ := json.Marshal(dl.History)
	row := producer.DeadLetterRecord{
		ID: dl.ID, Reason: dl.Reason, Topic: dl.Topic, Partition: dl.Partition, Offset: dl.Offset, Key: dl.Key,
		Envelope: string(dl.Envelope), Channel: dl.Channel, Recipient: dl.Recipient, Provider: dl.Provider,
		Attempts: dl.Attempts, History: string(history), At: dl.At,
	}
	if len(dl.Raw) > 0 {
		row.Raw = base64.StdEncoding.EncodeToString(dl.Raw)
	}
	return nil, d.store.RecordDeadLetter(ctx, row)
}

// Errors of DeadLetters.Replay.
var (
	ErrNotReplayable   = errors.New("dispatcher: dead letter cannot be replayed: its bytes are not an event")
	ErrAlreadyReplayed = producer.ErrAlreadyReplayed
)

// DeadLetters lets operators list dead letters and send one back to its
// lane. It is safe for concurrent use.
type DeadLetters struct {
	store DeadLetterStore
	pub   producer.EnvelopePublisher
	now   func() time.Time
}

// DeadLetterStore is the index of dead letters DeadLetters uses;
// internal/sqlstore implements it. A missing dead letter is an error
// wrapping sqlstore.ErrNotFound.
type DeadLetterStore interface {
	// DeadLetters returns up to limit dead letters, newest first, before
	// the cursor.
	DeadLetters(ctx context.Context, beforeAt time.Time, beforeID string, limit int) ([]producer.DeadLetterRecord, error)
	DeadLetter(ctx context.Context, id string) (producer.DeadLetterRecord, error)
	// MarkReplayed records that a dead letter was sent back, once: a
	// second call returns an error wrapping ErrAlreadyReplayed.
	MarkReplayed(ctx context.Context, id, by string, at time.Time) error
	// UnmarkReplayed undoes MarkReplayed.
	UnmarkReplayed(ctx context.Context, id string) error
}

var _ DeadLetterStore = (*sqlstore.DB)(nil)

// NewDeadLetters returns the operators' view of the dead letters.
func NewDeadLetters(store DeadLetterStore, pub producer.EnvelopePublisher) *DeadLetters {
	return &DeadLetters{store: store, pub: pub, now: time.Now}
}

// List returns up to limit dead letters, newest first, before the cursor.
func (s *DeadLetters) List(ctx context.Context, beforeAt time.Time, beforeID string, limit int) ([]producer.DeadLetterRecord, error) {
	return s.store.DeadLetters(ctx, beforeAt, beforeID, limit)
}

// Replay sends the dead letter's event back to its lane, narrowed to the
// delivery that failed and with a fresh set of retry tiers. A dead letter
// is replayed once: a second call returns ErrAlreadyReplayed. The delivery
// claim of a failed delivery was released, so the replay sends it once.
// Errors are *loa.Error: ENotFound (wrapping sqlstore.ErrNotFound),
// EAlreadyReplayed, ENotReplayable, or EUnavailable when the store or
// Kafka failed (the dead letter is left as it was).
func (s *DeadLetters) Replay(ctx context.Context, id, by string) (producer.Envelope, error) {
	env, err := s.replay(ctx, id, by)
	switch {
	case err == nil:
		return env, nil
	case errors.Is(err, sqlstore.ErrNotFound):
		return env, loa.NotFound("dead letter %s not found", id).Wrap(err)
	case errors.Is(err, ErrAlreadyReplayed):
		return env, loa.Errorf(loa.EAlreadyReplayed, "dead letter %s was replayed before; a dead letter is replayed once", id).Wrap(err)
	case errors.Is(err, ErrNotReplayable):
		return env, loa.Errorf(loa.ENotReplayable, "dead letter %s holds bytes that are not an event; there is nothing to send again", id).Wrap(err)
	}
	return env, loa.Unavailable("the dead letter could not be replayed; it was left as it was, try again").Wrap(err)
}

func (s *DeadLetters) replay(ctx context.Context, id, by string) (producer.Envelope, error) {
	row, err := s.store.DeadLetter(ctx, id)
	if err != nil {
		return producer.Envelope{}, err
	}
	if row.Envelope == "" {
		return producer.Envelope{}, ErrNotReplayable
	}
	env, err := producer.Decode([]byte(row.Envelope))
	if err != nil {
		return producer.Envelope{}, fmt.Errorf("%w: %v", ErrNotReplayable, err)
	}
	if row.Channel != "" {
		targets := 1
		if env.Redelivery != nil {
			targets = env.Redelivery.Targets
		}
		env.Redelivery = &producer.Redelivery{Channel: row.Channel, Recipient: row.Recipient, Targets: targets}
	}
	if err := s.store.MarkReplayed(ctx, id, by, s.now()); err != nil {
		return producer.Envelope{}, err
	}
	if err := s.pub.Publish(ctx, env); err != nil {
		if uerr := s.store.UnmarkReplayed(context.WithoutCancel(ctx), id); uerr != nil {
			err = errors.Join(err, uerr)
		}
		return producer.Envelope{}, fmt.Errorf("dispatcher: replay %s: %w", id, err)
	}
	return env, nil
}

// deadLetterConsumer is the consumer that indexes loa.deadletter.
func (d *Dispatcher) deadLetterConsumer() *consumer {
	return &consumer{
		cfg: consumerConfig{
			Brokers: d.cfg.Brokers, Topic: d.cfg.Names.Topic(topics.DeadLetter), Group: d.cfg.Names.Group("loa-deadletters"),
			Workers: 2, ShutdownTimeout: d.cfg.ShutdownTimeout,
		},
		handle: d.handleDeadLetter,
		pub:    d.pub,
		log:    d.log.With("consumer", "deadletters"),
	}
}
