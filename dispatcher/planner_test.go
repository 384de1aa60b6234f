package dispatcher

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

func (r *rig) publishPlan(t testing.TB, id string, lane topics.Lane, p producer.Plan) {
	t.Helper()
	now := time.Now()
	p.NotificationID = id
	env, err := producer.NewEnvelope("plan-"+id, producer.KindPlan, lane, id, now, now.Add(time.Hour), "", p)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.pub.Publish(context.Background(), env); err != nil {
		t.Fatal(err)
	}
}

func (r *rig) seedArea(t testing.TB, n int) {
	t.Helper()
	ctx := context.Background()
	if err := r.store.UpsertAreas(ctx, []accounts.Area{{Code: "49", Name: "Quảng Nam", Level: "province"},
		{Code: "20497", Name: "Minh An", Parent: "49", Level: "commune"}}); err != nil {
		t.Fatal(err)
	}
	if err := r.store.SeedAudience(ctx, "qn", n, 0, "smart", "20497", time.Now()); err != nil {
		t.Fatal(err)
	}
}

// TestPlannerReachesEachDeviceOnce: an audience of 100,000 devices in
// PostgreSQL (20,000 on the embedded store, to keep `make test` quick) is
// planned into batches and delivered to the sandbox, each device exactly
// once — also when the planner is stopped half-way and started again,
// and without planning again what was already planned.
func TestPlannerReachesEachDeviceOnce(t *testing.T) {
	oneBackend(t, func(t *testing.T, r *rig) {
		n := 20000
		if testenv.Configured("LOA_TEST_DATABASE_URL") {
			n = 100000
		}
		r.seedArea(t, n)
		r.publishPlan(t, "bc-100k", topics.LaneBulk, producer.Plan{
			Audience: producer.Audience{Areas: []string{"49"}}, Channels: []string{"push"},
			Title: "Thông báo", Body: "Lịch tiêm chủng tháng 12", Priority: "normal",
		})
		wantBatches := (n + 499) / 500
		var (
			halfway = make(chan struct{})
			once    sync.Once
		)
		stop := r.start(t, func(d *Dispatcher) {
			d.cfg.Workers[topics.LaneBulk] = 16
			d.planHook = func(batches int) {
				if batches >= wantBatches/2 {
					once.Do(func() { close(halfway) })
					<-d.stopping // hold the planner here until the dispatcher stops
				}
			}
		})
		select {
		case <-halfway:
		case <-waitCtx(t).Done():
			t.Fatal("the planner never got half-way")
		}
		stop()
		ctx := context.Background()
		mid, err := r.store.Plan(ctx, "bc-100k", "push", time.Now())
		if err != nil || mid.Done || mid.Batches < wantBatches/2 || mid.Batches >= wantBatches {
			t.Fatalf("after the stop the plan is %+v (%v); want it half-way", mid, err)
		}
		stop = r.start(t, func(d *Dispatcher) { d.cfg.Workers[topics.LaneBulk] = 16 })
		wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		if err := r.outbox.WaitTotal(wctx, int64(n)); err != nil {
			t.Fatalf("delivered %d of %d: %v", r.outbox.Total(), n, err)
		}
		// The last batch can be sent before the planner has read the empty
		// page after it and recorded the plan done.
		end, _ := r.store.Plan(ctx, "bc-100k", "push", time.Now())
		for !end.Done && wctx.Err() == nil {
			select {
			case <-wctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
			end, _ = r.store.Plan(ctx, "bc-100k", "push", time.Now())
		}
		stop()
		if !end.Done || end.Batches != wantBatches || end.Targeted != int64(n) {
			t.Errorf("plan ended as %+v; want %d batches, %d targeted (resumed, not restarted)", end, wantBatches, n)
		}
		if d := r.outbox.Duplicates(); len(d) > 0 {
			t.Fatalf("%d devices reached twice, e.g. %s", len(d), d[0])
		}
		if got := r.outbox.Total(); got != int64(n) {
			t.Fatalf("outbox holds %d, want %d", got, n)
		}
		for i := 1; i <= n; i += 997 {
			if c := r.outbox.Count("bc-100k", channels.Push, fmt.Sprintf("qn-tok-%07d", i)); c != 1 {
				t.Fatalf("device %d reached %d times", i, c)
			}
		}
	})
}

// TestAlertOvertakesABroadcast: while a 100,000-device broadcast (20,000
// on the embedded store) is being sent on the bulk lane, an alert posted
// to the same dispatcher reaches all its devices before the broadcast
// finishes. Ordering is read from the outbox's sequence numbers, not the
// clock.
func TestAlertOvertakesABroadcast(t *testing.T) {
	oneBackend(t, func(t *testing.T, r *rig) {
		n := 20000
		if testenv.Configured("LOA_TEST_DATABASE_URL") {
			n = 100000
		}
		r.seedArea(t, n)
		ctx := context.Background()
		if err := r.store.UpsertAreas(ctx, []accounts.Area{{Code: "20498", Name: "Cẩm Phô", Parent: "49", Level: "commune"}}); err != nil {
			t.Fatal(err)
		}
		const alertDevices = 200
		if err := r.store.SeedAudience(ctx, "al", alertDevices, 500000, "smart", "20498", time.Now()); err != nil {
			t.Fatal(err)
		}
		r.publishPlan(t, "bc-big", topics.LaneBulk, producer.Plan{Audience: producer.Audience{Areas: []string{"20497"}},
			Channels: []string{"push"}, Title: "Thông báo", Body: "Lịch tiêm chủng", Priority: "normal"})
		r.start(t, func(d *Dispatcher) { d.cfg.Workers[topics.LaneBulk] = 16 })
		if err := r.outbox.WaitTotal(waitCtx(t), 1000); err != nil {
			t.Fatal(err)
		}
		r.publishPlan(t, "alert-flood", topics.LaneAlert, producer.Plan{Audience: producer.Audience{Areas: []string{"20498"}},
			Channels: []string{"push"}, Title: "Cảnh báo lũ", Body: "Nước sông Hoài lên nhanh, di dời ngay", Priority: "high"})
		wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		if err := r.outbox.WaitTotal(wctx, int64(n+alertDevices)); err != nil {
			t.Fatalf("delivered %d of %d: %v", r.outbox.Total(), n+alertDevices, err)
		}
		var alertLast, bcLast int64
		alerts := 0
		for _, e := range r.outbox.Entries("", 0) {
			switch e.NotificationID {
			case "alert-flood":
				alerts++
				alertLast = max(alertLast, e.Seq)
			case "bc-big":
				bcLast = max(bcLast, e.Seq)
			}
		}
		if alerts != alertDevices {
			t.Fatalf("the alert reached %d of %d devices", alerts, alertDevices)
		}
		after := bcLast - alertLast
		if alertLast >= bcLast {
			t.Fatalf("the alert's last delivery (#%d) came after the broadcast finished (#%d)", alertLast, bcLast)
		}
		t.Logf("the alert was complete at delivery #%d; the broadcast still had about %d deliveries to go", alertLast, after)
	})
}

// TestAlertPlanPublishesItsFirstBatchAtOnce: an alert's planner writes
// its first batch to Kafka (and records its progress) as soon as its page
// is read, so the first devices of an alert never wait for the rest of its
// audience to be read; then in groups that double (1, 2, 4, … up to a
// broadcast's 8), so a large audience is not planned a write a page. A
// broadcast's planner writes batches in groups of 8 from the start. Each
// group is read from the store in one query.
func TestAlertPlanPublishesItsFirstBatchAtOnce(t *testing.T) {
	oneBackend(t, func(t *testing.T, r *rig) {
		r.seedArea(t, 50)
		var (
			mu    sync.Mutex
			phase = "alert"
			seen  = map[string][]int{}
			reads = map[string][]int{}
			done  = make(chan struct{}, 2)
		)
		r.start(t, func(d *Dispatcher) {
			d.readHook = func(limit int) {
				mu.Lock()
				defer mu.Unlock()
				reads[phase] = append(reads[phase], limit)
			}
			d.planHook = func(batches int) {
				mu.Lock()
				defer mu.Unlock()
				seen[phase] = append(seen[phase], batches)
				if len(seen[phase]) == map[string]int{"alert": 3, "bulk": 2}[phase] {
					done <- struct{}{}
				}
			}
		})
		r.publishPlan(t, "alert-pages", topics.LaneAlert, producer.Plan{Audience: producer.Audience{Areas: []string{"20497"}},
			Channels: []string{"push"}, Title: "Cảnh báo", Body: "Di dời ngay", Priority: "high", BatchSize: 10})
		select {
		case <-done:
		case <-waitCtx(t).Done():
			t.Fatalf("the alert's planner recorded %v", seen)
		}
		mu.Lock()
		phase = "bulk"
		mu.Unlock()
		r.publishPlan(t, "bc-pages", topics.LaneBulk, producer.Plan{Audience: producer.Audience{Areas: []string{"20497"}},
			Channels: []string{"push"}, Title: "Thông báo", Body: "Lịch", Priority: "normal", BatchSize: 5})
		select {
		case <-done:
		case <-waitCtx(t).Done():
			t.Fatalf("the broadcast's planner recorded %v", seen)
		}
		mu.Lock()
		defer mu.Unlock()
		if got, want := fmt.Sprint(seen["alert"]), "[1 3 5]"; got != want {
			t.Errorf("the alert's planner recorded progress at batches %s, want %s (the first batch on its own, then groups of 2 and 4)", got, want)
		}
		if got, want := fmt.Sprint(seen["bulk"]), "[8 10]"; got != want {
			t.Errorf("the broadcast's planner recorded progress at batches %s, want %s (groups of 8)", got, want)
		}
		// Each group's batches are read from the store in one query.
		if got, want := fmt.Sprint(reads["alert"]), "[10 20 40]"; got != want {
			t.Errorf("the alert's planner read the audience %s at a time, want %s (a query a group)", got, want)
		}
		if got, want := fmt.Sprint(reads["bulk"]), "[40 40]"; got != want {
			t.Errorf("the broadcast's planner read the audience %s at a time, want %s (a query a group)", got, want)
		}
	})
}

// TestPlanIsDoneOnlyWithEveryChannel: a plan of two channels is not done
// when its first channel is. A broadcast's status moves to done when its
// plan is and the ledger holds an outcome for everything planned, so
// with the SMS channel not yet started a console broadcast whose pushes
// were all sent ended "done" with its SMS still to come.
func TestPlanIsDoneOnlyWithEveryChannel(t *testing.T) {
	oneBackend(t, func(t *testing.T, r *rig) {
		r.seedArea(t, 20)
		ctx := context.Background()
		type check struct {
			done bool
			err  error
		}
		first := make(chan check, 1)
		var once sync.Once
		r.start(t, func(d *Dispatcher) {
			d.planHook = func(int) {
				once.Do(func() {
					done, err := r.store.PlanDone(ctx, "bc-two")
					first <- check{done, err}
				})
			}
		})
		r.publishPlan(t, "bc-two", topics.LaneBulk, producer.Plan{Audience: producer.Audience{Areas: []string{"20497"}},
			Channels: []string{"push", "sms"}, Title: "Thông báo", Body: "Lịch", Priority: "normal"})
		select {
		case c := <-first:
			if c.err != nil || c.done {
				t.Errorf("with its push channel planned and its SMS channel not, the plan is done: %v (%v)", c.done, c.err)
			}
		case <-waitCtx(t).Done():
			t.Fatal("the planner recorded no progress")
		}
	})
}
