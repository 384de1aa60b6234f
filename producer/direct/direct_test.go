package direct_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/direct"
	"github.com/loa-hub/loa/producer/producertest"
)

// TestOutboxPublishesWhatFailed: a notification whose publish failed is
// stored with its outbox item, and the outbox publishes it once its grace
// is over, once, marking it published.
func TestOutboxPublishesWhatFailed(t *testing.T) {
	for name, store := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			pub := &producertest.Recorder{}
			svc := direct.New(direct.DefaultConfig(), store, pub, log)
			body := "x"
			now := time.Now()
			pub.Fail(true)
			_, err := svc.Submit(ctx, direct.Input{To: &direct.To{Phone: ptr("0912345678")}, Body: &body,
				ClientID: "c", IdempotencyKey: "k-" + name, ReceivedAt: now})
			if loa.ErrorCode(err) != loa.EUnavailable {
				t.Fatalf("submit with Kafka down: %v", err)
			}
			pub.Fail(false)
			ob := producer.NewOutbox(store, pub, log)
			ob.Now = func() time.Time { return now.Add(direct.PublishGrace - time.Second) }
			if n, err := ob.Poll(ctx); err != nil || n != 0 {
				t.Fatalf("before the grace: %d %v", n, err)
			}
			ob.Now = func() time.Time { return now.Add(direct.PublishGrace + time.Second) }
			for range 3 {
				if _, err := ob.Poll(ctx); err != nil {
					t.Fatal(err)
				}
			}
			envs := pub.Envelopes()
			if len(envs) != 1 || envs[0].Kind != producer.KindDirect {
				t.Fatalf("published %d events, want 1 direct", len(envs))
			}
			v, err := svc.Get(ctx, envs[0].ID, "c", false)
			if err != nil || v.Status != loa.StatusQueued {
				t.Errorf("after the outbox: %+v %v", v, err)
			}
			if _, err := svc.Get(ctx, envs[0].ID, "another client", false); !errors.Is(err, direct.ErrNotFound) {
				t.Errorf("another client's notification: %v", err)
			}
		})
	}
}

func ptr(s string) *string { return &s }
