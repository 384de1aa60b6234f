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

func fields(err error) []string {
	e, ok := errors.AsType[*loa.Error](err)
	if !ok {
		return []string{"not a loa.Error: " + err.Error()}
	}
	var out []string
	for _, f := range e.Fields {
		out = append(out, f.Field)
	}
	return out
}

// TestSendAt: a notification with send_at is published by the outbox at
// that time and not before; one cancelled before it is never published;
// one already published cannot be cancelled; bad times are refused at
// once, naming the field.
func TestSendAt(t *testing.T) {
	for name, store := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			pub := &producertest.Recorder{}
			svc := direct.New(direct.DefaultConfig(), store, pub, log)
			ob := producer.NewOutbox(store, pub, log)
			now := time.Now().UTC().Truncate(time.Second)
			body := "Hạn nộp báo cáo quý IV: 72 giờ nữa"
			in := func(key string, sendAt time.Time) direct.Input {
				return direct.Input{To: &direct.To{Phone: ptr("0912345678")}, Body: &body, ClientID: "reporting", IdempotencyKey: key + "-" + name,
					ReceivedAt: now, SendAt: &sendAt}
			}
			// Refused at once.
			exp := now.Add(time.Hour)
			for _, c := range []struct {
				in    direct.Input
				field string
			}{
				{in("past", now.Add(-time.Minute)), "send_at"},
				{in("far", now.Add(91*24*time.Hour)), "send_at"},
				{func() direct.Input { i := in("exp", now.Add(2*time.Hour)); i.ExpiresAt = &exp; return i }(), "expires_at"},
			} {
				if _, err := svc.Submit(ctx, c.in); len(fields(err)) == 0 || fields(err)[0] != c.field {
					t.Errorf("%s: %v, want invalid %s", c.in.IdempotencyKey, err, c.field)
				}
			}
			if pub.Len() != 0 {
				t.Fatalf("published %d for refused requests", pub.Len())
			}

			due := now.Add(72 * time.Hour)
			sent, err := svc.Submit(ctx, in("sent", due))
			if err != nil {
				t.Fatal(err)
			}
			cancelled, err := svc.Submit(ctx, in("cancelled", due.Add(-time.Hour)))
			if err != nil {
				t.Fatal(err)
			}
			if pub.Len() != 0 {
				t.Fatal("a scheduled notification was published at once")
			}
			v, _ := svc.Get(ctx, sent.ID, "reporting", false)
			if v.Status != loa.StatusScheduled || v.SendAt == nil || !v.SendAt.Equal(due) || !v.ExpiresAt.Equal(due.Add(24*time.Hour)) {
				t.Errorf("scheduled view: %+v", v)
			}
			if _, err := svc.Cancel(ctx, cancelled.ID, "another client", false); !errors.Is(err, direct.ErrNotFound) {
				t.Errorf("another client cancels: %v", err)
			}
			cv, err := svc.Cancel(ctx, cancelled.ID, "reporting", false)
			if err != nil || cv.Status != loa.StatusCancelled || cv.CancelledAt == nil {
				t.Fatalf("cancel: %+v %v", cv, err)
			}
			if _, err := svc.Cancel(ctx, cancelled.ID, "reporting", false); err != nil {
				t.Errorf("cancel again: %v", err)
			}
			ob.Now = func() time.Time { return due.Add(-time.Second) }
			if n, err := ob.Poll(ctx); err != nil || n != 0 || pub.Len() != 0 {
				t.Fatalf("before send_at: published %d (%v)", pub.Len(), err)
			}
			ob.Now = func() time.Time { return due }
			for range 2 {
				if _, err := ob.Poll(ctx); err != nil {
					t.Fatal(err)
				}
			}
			envs := pub.Envelopes()
			if len(envs) != 1 || envs[0].ID != sent.ID || !envs[0].ExpiresAt.Equal(due.Add(24*time.Hour)) {
				t.Fatalf("published %+v, want only %s", envs, sent.ID)
			}
			if _, err := svc.Cancel(ctx, sent.ID, "reporting", false); loa.ErrorCode(err) != loa.EConflict || !errors.Is(err, direct.ErrNotCancellable) {
				t.Errorf("cancel after it was sent: %v", err)
			}
			if v, _ := svc.Get(ctx, cancelled.ID, "reporting", false); v.Status != loa.StatusCancelled {
				t.Errorf("cancelled one is %s", v.Status)
			}
			// An immediate notification is not cancellable.
			now2, b := time.Now(), "x"
			acc, err := svc.Submit(ctx, direct.Input{To: &direct.To{Phone: ptr("0912345678")}, Body: &b, ClientID: "reporting", ReceivedAt: now2})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Cancel(ctx, acc.ID, "reporting", false); loa.ErrorCode(err) != loa.EConflict {
				t.Errorf("cancel an immediate one: %v", err)
			}
		})
	}
}
