package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/producertest"
)

// memDeadLetters is a hand-written DeadLetterStore.
type memDeadLetters struct {
	mu   sync.Mutex
	rows map[string]producer.DeadLetterRecord
}

var _ DeadLetterStore = (*memDeadLetters)(nil)

func (m *memDeadLetters) DeadLetters(context.Context, time.Time, string, int) ([]producer.DeadLetterRecord, error) {
	return nil, nil
}

func (m *memDeadLetters) DeadLetter(_ context.Context, id string) (producer.DeadLetterRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.rows[id]
	if !ok {
		return r, fmt.Errorf("mem: dead letter %s: %w", id, sqlstore.ErrNotFound)
	}
	return r, nil
}

func (m *memDeadLetters) MarkReplayed(ctx context.Context, id, by string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.rows[id]
	switch {
	case !ok:
		return fmt.Errorf("mem: %w", sqlstore.ErrNotFound)
	case !r.ReplayedAt.IsZero():
		return fmt.Errorf("mem: %w", producer.ErrAlreadyReplayed)
	}
	r.ReplayedAt, r.ReplayedBy = at, by
	m.rows[id] = r
	return nil
}

func (m *memDeadLetters) UnmarkReplayed(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rows[id]
	r.ReplayedAt, r.ReplayedBy = time.Time{}, ""
	m.rows[id] = r
	return nil
}

// TestDeadLettersOnAHandWrittenStore: replaying needs only a
// DeadLetterStore. A replay whose publish fails leaves the dead letter
// replayable; a replay sends the event narrowed to the failed delivery,
// once; bytes that are not an event and unknown ids are refused with
// their codes.
func TestDeadLettersOnAHandWrittenStore(t *testing.T) {
	ctx := context.Background()
	env, err := producer.NewEnvelope("n-1", producer.KindPlan, topics.LaneBulk, "n-1", time.Now(), time.Now().Add(time.Hour), "",
		producer.Plan{NotificationID: "n-1", Channels: []string{"sms"}, Body: "x", Priority: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	store := &memDeadLetters{rows: map[string]producer.DeadLetterRecord{
		"dl-1":   {ID: "dl-1", Envelope: string(raw), Channel: "sms", Recipient: "84912345678"},
		"dl-raw": {ID: "dl-raw", Raw: "AAEC"},
	}}
	pub := &producertest.Recorder{}
	dls := NewDeadLetters(store, pub)

	pub.Fail(true)
	if _, err := dls.Replay(ctx, "dl-1", "ops-1"); loa.ErrorCode(err) != loa.EUnavailable {
		t.Fatalf("replay while publishing fails: %v", err)
	}
	pub.Fail(false)
	got, err := dls.Replay(ctx, "dl-1", "ops-1")
	if err != nil {
		t.Fatalf("replay after the failure: %v", err)
	}
	if envs := pub.Envelopes(); len(envs) != 1 || got.Redelivery == nil || got.Redelivery.Channel != "sms" || got.Redelivery.Recipient != "84912345678" {
		t.Fatalf("published %d, redelivery %+v", len(envs), got.Redelivery)
	}
	if _, err := dls.Replay(ctx, "dl-1", "ops-2"); !errors.Is(err, ErrAlreadyReplayed) || loa.ErrorCode(err) != loa.EAlreadyReplayed {
		t.Errorf("second replay: %v", err)
	}
	if _, err := dls.Replay(ctx, "dl-raw", "ops-1"); loa.ErrorCode(err) != loa.ENotReplayable {
		t.Errorf("raw bytes: %v", err)
	}
	if _, err := dls.Replay(ctx, "dl-none", "ops-1"); loa.ErrorCode(err) != loa.ENotFound {
		t.Errorf("unknown: %v", err)
	}
	if len(pub.Envelopes()) != 1 {
		t.Errorf("published %d in all, want 1", len(pub.Envelopes()))
	}
}
