package dispatcher

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/producer/alert"
	"github.com/loa-hub/loa/producer/alert/cap"
)

// TestEscalationToUnacknowledgedPhones: an Extreme alert to 100 people
// (a device and a verified phone each) under a policy of "SMS after 10
// minutes to whoever has not acknowledged"; 60 acknowledge — 30 with a
// session, 30 with the token their push carried — and the dispatcher is
// restarted before the 10 minutes are up. When the controllable clock
// passes them, the other 40 phones get exactly one SMS each, and the 60
// none; the alert's counters say 60 acknowledged, 40 escalated.
func TestEscalationToUnacknowledgedPhones(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		ctx := context.Background()
		var offset atomic.Int64
		base := time.Now()
		clock := func() time.Time { return base.Add(time.Duration(offset.Load())) }
		key := []byte("0123456789abcdef0123456789abcdef")

		if err := r.store.UpsertAreas(ctx, []accounts.Area{{Code: "49", Name: "Quảng Nam", Level: "province"},
			{Code: "20497", Name: "Minh An", Parent: "49", Level: "commune"}}); err != nil {
			t.Fatal(err)
		}
		const n, acked = 100, 60
		if err := r.store.SeedAudience(ctx, "es", n, 0, "smart", "20497", base); err != nil {
			t.Fatal(err)
		}
		cfg := alert.DefaultConfig()
		cfg.Now, cfg.AckKey, cfg.SMSSeverities = clock, key, nil
		cfg.Escalation = map[cap.Severity]time.Duration{cap.SeverityExtreme: 10 * time.Minute}
		svc, err := alert.New(cfg, r.store, r.pub, quietLogger())
		if err != nil {
			t.Fatal(err)
		}
		withClock := func(d *Dispatcher) { d.now, d.cfg.AckKey = clock, key }
		stop := r.start(t, withClock)

		exp := base.Add(6 * time.Hour)
		in, err := svc.FromJSON(ctx, alert.JSONAlert{Identifier: "esc-1", MsgType: "alert", Severity: "Extreme", Urgency: "Immediate",
			Event: "Lũ", Headline: "Lũ khẩn cấp", Description: "Nước lên nhanh", Instruction: "Sơ tán ngay", Expires: &exp,
			Areas: []string{"20497"}}, "loa:key-pctt")
		if err != nil {
			t.Fatal(err)
		}
		res, err := svc.Submit(ctx, alert.Issuer{ID: "key-pctt", Scopes: []string{"alerts:issue"}, AnyArea: true}, in)
		if err != nil {
			t.Fatal(err)
		}
		id := res.Alert.ID
		if err := r.outbox.WaitTotal(waitCtx(t), n); err != nil {
			t.Fatalf("pushes: %d: %v", r.outbox.Total(), err)
		}
		acks := map[string]string{} // device token → its ack token
		for _, e := range r.outbox.Entries(id, 0) {
			if e.Channel != "push" || e.Data["ack"] == "" {
				t.Fatalf("push to %s on %s carries no ack token: %v", e.To, e.Channel, e.Data)
			}
			acks[e.To] = e.Data["ack"]
		}
		if len(acks) != n {
			t.Fatalf("%d devices reached, want %d", len(acks), n)
		}

		// 60 acknowledge: the first 30 with a session, the next 30 from
		// their app with the push's token; some twice.
		for i := 1; i <= acked; i++ {
			acc, tok := fmt.Sprintf("es-acc-%07d", i), fmt.Sprintf("es-tok-%07d", i)
			if i <= acked/2 {
				if _, err := svc.Ack(ctx, id, acc, alert.AckViaSession); err != nil {
					t.Fatal(err)
				}
			} else if _, err := svc.AckByDevice(ctx, id, tok, acks[tok]); err != nil {
				t.Fatalf("device ack of %s: %v", tok, err)
			}
		}
		if _, err := svc.Ack(ctx, id, "es-acc-0000001", alert.AckViaSession); err != nil {
			t.Fatal(err)
		}
		// Someone else's device token without its ack token, or with
		// another device's, acknowledges nothing.
		if _, err := svc.AckByDevice(ctx, id, "es-tok-0000099", acks["es-tok-0000001"]); err != alert.ErrNoAck {
			t.Errorf("forged device ack: %v", err)
		}

		// The dispatcher restarts before the escalation is due.
		stop()
		escID := alert.EscalationID(res.Alert)
		if st, err := r.store.ScheduledStatus(ctx, escID+"-"+id); err != nil || st != sqlstore.ItemPending {
			t.Fatalf("escalation item: %q %v", st, err)
		}
		r.start(t, withClock)
		r.runOutbox(t, clock)
		offset.Store(int64(10*time.Minute + time.Second))

		if err := r.outbox.WaitTotal(waitCtx(t), n+(n-acked)); err != nil {
			t.Fatalf("escalation SMS: %d: %v", r.outbox.Total()-n, err)
		}
		waitFor(t, "the escalation planned to its end", func() bool {
			p, err := r.store.Plan(ctx, escID, "sms", clock())
			return err == nil && p.Done
		})
		var phones []string
		for _, e := range r.outbox.Entries(escID, 0) {
			phones = append(phones, e.To)
			if e.Channel != "sms" || e.Body != alert.EscalationPrefix+"Lũ khẩn cấp. Sơ tán ngay" {
				t.Errorf("escalation %s to %s: %q", e.Channel, e.To, e.Body)
			}
		}
		slices.Sort(phones)
		var want []string
		for i := acked + 1; i <= n; i++ {
			want = append(want, fmt.Sprintf("849%08d", i))
		}
		if !slices.Equal(phones, want) {
			t.Errorf("escalation SMS to %d phones %v…, want the %d that did not acknowledge, once each", len(phones), phones[:min(3, len(phones))], n-acked)
		}
		if p, err := r.store.Plan(ctx, escID, "sms", clock()); err != nil || p.Targeted != n-acked {
			t.Errorf("escalation targeted %d (%v), want %d", p.Targeted, err, n-acked)
		}
		waitFor(t, "the counters", func() bool {
			s, err := svc.Acks(ctx, res.Alert)
			return err == nil && s.Acknowledged == acked && s.Escalated == n-acked
		})
		if len(r.outbox.Entries(id, 0)) != n {
			t.Errorf("the alert itself was sent again or by SMS")
		}
	})
}

// waitFor polls cond until it holds or 2 minutes pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling the store, not synchronising goroutines
	}
}
