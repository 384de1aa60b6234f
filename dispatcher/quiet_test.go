package dispatcher

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

// TestQuietHoursHoldBulkUntilTheWindowEnds: at 23:00 in Vietnam, for
// subscribers with quiet hours 22:00–06:00, a bulk notice (push and SMS)
// is planned but nothing of it is sent: it waits as scheduled batches. An
// Extreme alert to the same people goes at once. When the controllable
// clock reaches 06:00 the notice is delivered, each device and phone once;
// and the SMS of someone without quiet hours, held by the province's
// night rule, goes at 06:00 too, not before.
func TestQuietHoursHoldBulkUntilTheWindowEnds(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		ctx := context.Background()
		vn, err := time.LoadLocation(accounts.DefaultTimeZone)
		if err != nil {
			t.Fatal(err)
		}
		// 23:00 Vietnam time tonight, kept near the real time so that
		// expiries computed on the wall clock still hold.
		real := time.Now()
		lt := real.In(vn)
		night := time.Date(lt.Year(), lt.Month(), lt.Day(), 23, 0, 0, 0, vn)
		var offset atomic.Int64
		offset.Store(int64(night.Sub(real)))
		clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
		morning := time.Date(lt.Year(), lt.Month(), lt.Day()+1, 6, 0, 0, 0, vn)

		if err := r.store.UpsertAreas(ctx, []accounts.Area{{Code: "49", Name: "Quảng Nam", Level: "province"},
			{Code: "20497", Name: "Minh An", Parent: "49", Level: "commune"}}); err != nil {
			t.Fatal(err)
		}
		const n = 30 // 29 with quiet hours, one without
		if err := r.store.SeedAudience(ctx, "qh", n, 0, "smart", "20497", real); err != nil {
			t.Fatal(err)
		}
		if _, err := r.store.SQL().ExecContext(ctx, `INSERT INTO subscriptions (account_id, updated_at, quiet_start, quiet_end, quiet_tz)
			SELECT id, created_at, 1320, 360, 'Asia/Ho_Chi_Minh' FROM accounts WHERE id LIKE 'qh-acc-%' AND id <> 'qh-acc-0000030'`); err != nil {
			t.Fatal(err)
		}
		publish := func(id string, lane topics.Lane, p producer.Plan) {
			t.Helper()
			p.NotificationID = id
			env, err := producer.NewEnvelope("plan-"+id, producer.KindPlan, lane, id, real, real.Add(48*time.Hour), "", p)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.pub.Publish(ctx, env); err != nil {
				t.Fatal(err)
			}
		}
		nightRule := &accounts.QuietHours{Start: "22:00", End: "06:00", TimeZone: accounts.DefaultTimeZone}
		r.start(t, func(d *Dispatcher) { d.now, d.cfg.SMSNight = clock, nightRule })
		r.runOutbox(t, clock)

		publish("bc-night", topics.LaneBulk, producer.Plan{Audience: producer.Audience{Areas: []string{"49"}},
			Channels: []string{"push", "sms"}, Title: "Lịch tiêm chủng", Body: "Tiêm chủng tại trạm y tế phường sáng mai", Priority: "normal"})
		waitFor(t, "the notice planned", func() bool {
			push, err1 := r.store.Plan(ctx, "bc-night", "push", clock())
			sms, err2 := r.store.Plan(ctx, "bc-night", "sms", clock())
			return err1 == nil && err2 == nil && push.Done && sms.Done
		})
		publish("alert-night", topics.LaneAlert, producer.Plan{Audience: producer.Audience{Areas: []string{"49"}},
			Channels: []string{"push"}, Title: "Lũ khẩn cấp", Body: "Sơ tán ngay", Priority: "high"})
		if err := r.outbox.WaitTotal(waitCtx(t), n+1); err != nil { // n alert pushes, and the one push without quiet hours
			t.Fatalf("delivered %d: %v", r.outbox.Total(), err)
		}
		var held int
		if err := r.store.SQL().QueryRowContext(ctx, `SELECT COUNT(*) FROM scheduled_items WHERE subject = 'held:bc-night' AND status = 'pending'`).Scan(&held); err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, e := range r.outbox.Entries("", 0) {
			got[e.NotificationID+"/"+string(e.Channel)]++
		}
		// The notice was fully planned before the alert was even posted, and
		// all that went of it is the one push outside quiet hours.
		if got["alert-night/push"] != n || got["bc-night/push"] != 1 || got["bc-night/sms"] != 0 || held != 2 {
			t.Fatalf("at 23:00: %v, %d held batches; want the alert to all %d, the notice to the one device without quiet hours", got, held, n)
		}

		// 06:00: the window and the night end.
		offset.Store(int64(morning.Add(time.Second).Sub(real)))
		if err := r.outbox.WaitTotal(waitCtx(t), 3*n); err != nil {
			t.Fatalf("after 06:00: delivered %d: %v", r.outbox.Total(), err)
		}
		got = map[string]int{}
		for _, e := range r.outbox.Entries("bc-night", 0) {
			got[string(e.Channel)]++
		}
		if got["push"] != n || got["sms"] != n {
			t.Errorf("after 06:00 the notice reached %v, want %d devices and %d phones", got, n, n)
		}
		if d := r.outbox.Duplicates(); len(d) != 0 {
			t.Errorf("sent twice: %v", d)
		}
	})
}

// TestNightHoldsNonUrgentDirectSMS: at 23:00 a direct notification of
// normal priority by SMS waits for 06:00 (its receipt says retrying); one
// of high priority goes at once; at 06:00 the held one is sent, once.
func TestNightHoldsNonUrgentDirectSMS(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		ctx := context.Background()
		vn, err := time.LoadLocation(accounts.DefaultTimeZone)
		if err != nil {
			t.Fatal(err)
		}
		real := time.Now()
		lt := real.In(vn)
		night := time.Date(lt.Year(), lt.Month(), lt.Day(), 23, 0, 0, 0, vn)
		morning := time.Date(lt.Year(), lt.Month(), lt.Day()+1, 6, 0, 0, 0, vn)
		var offset atomic.Int64
		offset.Store(int64(night.Sub(real)))
		clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
		nightRule := &accounts.QuietHours{Start: "22:00", End: "06:00", TimeZone: accounts.DefaultTimeZone}
		r.start(t, func(d *Dispatcher) { d.now, d.cfg.SMSNight = clock, nightRule })
		r.runOutbox(t, clock)
		for id, prio := range map[string]string{"n-reminder": "normal", "n-urgent": "high"} {
			env, err := producer.NewEnvelope("ev-"+id, producer.KindDirect, topics.LaneDirect, "84912345678", real, real.Add(48*time.Hour), "",
				producer.Direct{NotificationID: id, To: producer.Recipient{Type: producer.ToPhone, Value: "84912345678"},
					Body: "Nhắc hạn nộp báo cáo", Channels: []string{"sms"}, Priority: prio})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.pub.Publish(ctx, env); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.outbox.WaitTotal(waitCtx(t), 1); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the reminder held", func() bool {
			var n int
			err := r.store.SQL().QueryRowContext(ctx, `SELECT COUNT(*) FROM scheduled_items WHERE subject = 'held:n-reminder' AND status = 'pending'`).Scan(&n)
			return err == nil && n == 1
		})
		if got := len(r.outbox.Entries("n-reminder", 0)); got != 0 || len(r.outbox.Entries("n-urgent", 0)) != 1 {
			t.Fatalf("at 23:00: reminder sent %d times, urgent %d", got, len(r.outbox.Entries("n-urgent", 0)))
		}
		offset.Store(int64(morning.Add(time.Second).Sub(real)))
		if err := r.outbox.WaitTotal(waitCtx(t), 2); err != nil {
			t.Fatalf("after 06:00: %v", err)
		}
		if got := len(r.outbox.Entries("n-reminder", 0)); got != 1 {
			t.Errorf("the reminder was sent %d times", got)
		}
	})
}
