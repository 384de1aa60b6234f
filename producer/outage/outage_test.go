package outage_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/channels/fcm"
	"github.com/loa-hub/loa/internal/areas"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/outage"
	"github.com/loa-hub/loa/producer/producertest"
)

// recorder records what is published (see producertest.Recorder).
type recorder struct{ producertest.Recorder }

func (r *recorder) take() []producer.Envelope { return r.Take() }

var ict = time.FixedZone("ICT", 7*3600)

type rig struct {
	store *sqlstore.DB
	pub   *recorder
	svc   *outage.Service
	now   time.Time
}

func newRig(t *testing.T, db *sqlstore.DB) *rig {
	t.Helper()
	if err := db.LoadAreas(context.Background(), areas.Sample()); err != nil {
		t.Fatal(err)
	}
	r := &rig{store: db, pub: &recorder{}, now: time.Date(2026, 11, 23, 8, 0, 0, 0, ict)}
	r.svc = outage.New(db, r.pub, outage.DefaultConfig(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	r.svc.Now = func() time.Time { return r.now }
	return r
}

// due returns the scheduled items that are due by at, publishing them
// (as the dispatcher's scheduler would), keyed by id.
func (r *rig) due(t *testing.T, at time.Time) map[string]producer.Envelope {
	t.Helper()
	out := map[string]producer.Envelope{}
	_, err := r.store.PublishDue(context.Background(), at, 1000, func(items []producer.OutboxItem) (int, error) {
		for _, it := range items {
			env, err := producer.Decode(it.Envelope)
			if err != nil {
				t.Fatalf("scheduled item %s: %v", it.ID, err)
			}
			if it.DueAt.Before(env.CreatedAt) {
				t.Errorf("item %s due %s before it was created %s", it.ID, it.DueAt, env.CreatedAt)
			}
			out[it.ID] = env
		}
		return len(items), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (r *rig) post(t *testing.T, in ...outage.Input) outage.Result {
	t.Helper()
	res, err := r.svc.Post(context.Background(), outage.Client{ID: "evn-qna", Areas: []string{"49"}}, in)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func plan(t *testing.T, e producer.Envelope) producer.Plan {
	t.Helper()
	var p producer.Plan
	if err := json.Unmarshal(e.Payload, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

var (
	start = time.Date(2026, 11, 25, 7, 0, 0, 0, ict)
	end   = time.Date(2026, 11, 25, 17, 0, 0, 0, ict)
	base  = outage.Input{ID: "PC-QNA-1125-01", Areas: []string{"20497", "20500"}, Location: "Đường Trần Phú, Nguyễn Thái Học",
		Start: "2026-11-25 07:00", End: "2026-11-25T17:00:00+07:00", Reason: "Bảo trì lưới điện"}
)

func check(t *testing.T, e producer.Envelope, id string, expires time.Time) producer.Plan {
	t.Helper()
	if e.Kind != producer.KindPlan || e.Lane != topics.LaneBulk || e.ID != id || !e.ExpiresAt.Equal(expires) {
		t.Errorf("envelope %s kind %s lane %s expires %s; want %s plan on bulk expiring %s", e.ID, e.Kind, e.Lane, e.ExpiresAt, id, expires)
	}
	p := plan(t, e)
	if p.NotificationID != id || strings.Join(p.Audience.Areas, ",") != "20497,20500" || len(p.Audience.Topics) != 0 || p.Channels[0] != "push" {
		t.Errorf("plan %+v", p)
	}
	return p
}

func reminderIDs(o outage.Outage) map[string]string {
	m := map[string]string{}
	for _, n := range o.Notices {
		if n.Version == o.Version && n.Kind == outage.KindReminder {
			m[n.Lead] = n.NotificationID
		}
	}
	return m
}

func TestOutages(t *testing.T) {
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()

			t.Run("reminders at the lead times; a repost changes nothing", func(t *testing.T) {
				r := newRig(t, db)
				res := r.post(t, base)
				if len(res.Rejected) != 0 || len(res.Accepted) != 1 {
					t.Fatalf("result %+v", res)
				}
				o := res.Accepted[0]
				if o.Status != outage.StatusCreated || o.Version != 1 || !o.Start.Equal(start) || !o.End.Equal(end) {
					t.Fatalf("accepted %+v", o)
				}
				if got := r.pub.take(); len(got) != 0 {
					t.Fatalf("published %d events at once; want none", len(got))
				}
				ids := reminderIDs(o)
				if len(ids) != 2 || ids["24h"] == "" || ids["2h"] == "" {
					t.Fatalf("reminders %+v", o.Notices)
				}
				for _, n := range o.Notices {
					want := map[string]time.Time{"24h": start.Add(-24 * time.Hour), "2h": start.Add(-2 * time.Hour)}[n.Lead]
					if !n.DueAt.Equal(want) || n.Status != "scheduled" {
						t.Errorf("notice %+v: want due %s, scheduled", n, want)
					}
				}

				// Posted again, twice: nothing new stored, scheduled or sent.
				for range 2 {
					again := r.post(t, base)
					if a := again.Accepted[0]; a.Status != outage.StatusUnchanged || a.Version != 1 || len(a.Notices) != 2 {
						t.Fatalf("repost: %+v", a)
					}
				}
				if got := r.pub.take(); len(got) != 0 {
					t.Fatalf("a repost published %d events", len(got))
				}
				// Nothing due before the 24 h lead; exactly the two reminders by
				// the start, each once, expiring at the end.
				if d := r.due(t, start.Add(-24*time.Hour-time.Second)); len(d) != 0 {
					t.Fatalf("due too early: %v", d)
				}
				d := r.due(t, start)
				if len(d) != 2 {
					t.Fatalf("%d items due by the start, want 2", len(d))
				}
				p := check(t, d[ids["24h"]], ids["24h"], end)
				if p.Title != "Lịch cắt điện" || p.Body != "Lịch cắt điện: Đường Trần Phú, Nguyễn Thái Học, từ 07:00 ngày 25/11/2026 đến 17:00 ngày 25/11/2026. Lý do: Bảo trì lưới điện." {
					t.Errorf("text %q / %q", p.Title, p.Body)
				}
				check(t, d[ids["2h"]], ids["2h"], end)
				got, err := r.svc.Get(ctx, "evn-qna", base.ID)
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range got.Notices {
					if n.Status != "sent" {
						t.Errorf("after publishing: %+v", n)
					}
				}
			})

			t.Run("a change cancels the reminders, tells the change, schedules new ones", func(t *testing.T) {
				r := newRig(t, db)
				in := base
				in.ID = "PC-QNA-1125-02"
				v1 := r.post(t, in).Accepted[0]
				old := reminderIDs(v1)
				r.now = r.now.Add(time.Hour)
				in.End = "2026-11-25 15:30"
				res := r.post(t, in)
				v2 := res.Accepted[0]
				if v2.Status != outage.StatusChanged || v2.Version != 2 {
					t.Fatalf("change: %+v", v2)
				}
				for _, id := range old {
					if st, _ := r.store.ScheduledStatus(ctx, id); st != sqlstore.ItemCancelled {
						t.Errorf("old reminder %s is %s, want cancelled", id, st)
					}
				}
				newEnd := time.Date(2026, 11, 25, 15, 30, 0, 0, ict)
				pub := r.pub.take()
				if len(pub) != 1 {
					t.Fatalf("published %d, want the change notice", len(pub))
				}
				p := check(t, pub[0], strings.Replace(old["2h"], "-v1-2h", "-v2-change", 1), newEnd)
				if p.Title != "Thay đổi lịch cắt điện" || !strings.Contains(p.Body, "đến 15:30 ngày 25/11/2026") || p.Data["notice"] != "change" {
					t.Errorf("change notice %+v", p)
				}
				d := r.due(t, start)
				nw := reminderIDs(v2)
				if len(d) != 2 || d[nw["24h"]].ID == "" || d[nw["2h"]].ID == "" {
					t.Fatalf("due after the change: %v, want %v", d, nw)
				}
				check(t, d[nw["2h"]], nw["2h"], newEnd)
				// Every notice of one schedule replaces the one before on the
				// phone: they share a collapse key, the schedule's.
				if !strings.HasSuffix(p.Collapse, "/"+in.ID) {
					t.Errorf("change notice's collapse key %q does not name the schedule %s", p.Collapse, in.ID)
				}
				for id, e := range d {
					if c := plan(t, e).Collapse; c != p.Collapse {
						t.Errorf("reminder %s collapses as %q, the change as %q", id, c, p.Collapse)
					}
				}
				// The change posted again: nothing new.
				if a := r.post(t, in).Accepted[0]; a.Status != outage.StatusUnchanged || len(r.pub.take()) != 0 {
					t.Errorf("repost of the change: %+v", a)
				}
			})

			t.Run("a cancellation cancels the reminders and says so, once", func(t *testing.T) {
				r := newRig(t, db)
				in := base
				in.ID = "PC-QNA-1125-03"
				v1 := r.post(t, in).Accepted[0]
				o, err := r.svc.Cancel(ctx, "evn-qna", in.ID)
				if err != nil {
					t.Fatal(err)
				}
				if o.Status != outage.StatusCancelled || o.Version != 2 || !o.Cancelled {
					t.Fatalf("cancel: %+v", o)
				}
				for _, id := range reminderIDs(v1) {
					if st, _ := r.store.ScheduledStatus(ctx, id); st != sqlstore.ItemCancelled {
						t.Errorf("reminder %s is %s, want cancelled", id, st)
					}
				}
				pub := r.pub.take()
				if len(pub) != 1 {
					t.Fatalf("published %d, want the cancellation", len(pub))
				}
				p := check(t, pub[0], strings.Replace(reminderIDs(v1)["2h"], "-v1-2h", "-v2-cancel", 1), end)
				if p.Title != "Hủy lịch cắt điện" || !strings.HasSuffix(p.Collapse, "/"+in.ID) {
					t.Errorf("cancel notice %+v: want it titled as a cancellation and collapsing with the schedule's notices", p)
				}
				// Again, by DELETE or by a posted row: nothing new.
				if o, err := r.svc.Cancel(ctx, "evn-qna", in.ID); err != nil || o.Version != 2 {
					t.Errorf("second cancel: %+v, %v", o, err)
				}
				res := r.post(t, outage.Input{ID: in.ID, Cancelled: true})
				if len(res.Accepted) != 1 || res.Accepted[0].Status != outage.StatusCancelled || len(r.pub.take()) != 0 || len(r.due(t, end)) != 0 {
					t.Errorf("cancel posted again: %+v", res)
				}
				if _, err := r.svc.Cancel(ctx, "evn-qna", "never-posted"); !errors.Is(err, outage.ErrNotFound) {
					t.Errorf("cancel unknown: %v", err)
				}
				res = r.post(t, outage.Input{ID: "never-posted", Cancelled: true})
				if len(res.Rejected) != 1 || res.Rejected[0].Errors[0].Field != "id" {
					t.Errorf("cancel unknown by post: %+v", res)
				}
			})

			t.Run("a reminder that comes due after the end is expired, never sent", func(t *testing.T) {
				r := newRig(t, db)
				in := base
				in.ID = "PC-QNA-1125-04"
				r.post(t, in)
				// The scheduler was down until after the outage ended.
				late := end.Add(time.Minute)
				d := r.due(t, late)
				if len(d) != 2 {
					t.Fatalf("%d due", len(d))
				}
				for id, e := range d {
					if !e.Expired(late) {
						t.Errorf("%s not expired at %s: the dispatcher would send it", id, late)
					}
				}
				// And a schedule whose end has passed is refused outright.
				r.now = late
				res := r.post(t, outage.Input{ID: "PC-old", Areas: []string{"49"}, Location: "x", Start: "2026-11-25 07:00", End: "2026-11-25 17:00"})
				if len(res.Rejected) != 1 || res.Rejected[0].Errors[0].Field != "end" || len(r.pub.take()) != 0 {
					t.Errorf("ended outage: %+v", res)
				}
				// Cancelling an ended outage sends nothing.
				if _, err := r.svc.Cancel(ctx, "evn-qna", in.ID); err != nil || len(r.pub.take()) != 0 {
					t.Errorf("cancel after the end: %v", err)
				}
			})

			t.Run("reminders already due are sent at once, one of them; none once started", func(t *testing.T) {
				r := newRig(t, db)
				in := base
				in.ID = "PC-QNA-1125-05"
				r.now = start.Add(-90 * time.Minute) // both 24 h and 2 h are past
				o := r.post(t, in).Accepted[0]
				pub := r.pub.take()
				ids := reminderIDs(o)
				if len(pub) != 1 {
					t.Fatalf("published %d, want one reminder", len(pub))
				}
				check(t, pub[0], ids["2h"], end)
				st := map[string]string{}
				for _, n := range o.Notices {
					st[n.Lead] = n.Status
				}
				if st["2h"] != "sent" || st["24h"] != "skipped" || len(r.due(t, end)) != 0 {
					t.Errorf("statuses %v", st)
				}
				// Posted 3 h before: the 24 h reminder at once, the 2 h one scheduled.
				in.ID = "PC-QNA-1125-06"
				r.now = start.Add(-3 * time.Hour)
				o = r.post(t, in).Accepted[0]
				ids = reminderIDs(o)
				if pub := r.pub.take(); len(pub) != 1 || pub[0].ID != ids["24h"] {
					t.Errorf("published %v, want the 24h reminder", pub)
				}
				if d := r.due(t, start); len(d) != 1 || d[ids["2h"]].ID == "" {
					t.Errorf("due %v", d)
				}
				// Posted while the outage is on: nothing sent.
				in.ID = "PC-QNA-1125-07"
				r.now = start.Add(time.Hour)
				r.post(t, in)
				if pub := r.pub.take(); len(pub) != 0 || len(r.due(t, end)) != 0 {
					t.Errorf("an ongoing outage got reminders: %v", pub)
				}
			})

			t.Run("a notice the publisher cannot take is scheduled, not lost", func(t *testing.T) {
				r := newRig(t, db)
				in := base
				in.ID = "PC-QNA-1125-08"
				r.post(t, in)
				r.pub.Fail(true)
				o, err := r.svc.Cancel(ctx, "evn-qna", in.ID)
				if err != nil {
					t.Fatal(err)
				}
				d := r.due(t, r.now)
				if len(d) != 1 || !strings.HasSuffix(o.Notices[len(o.Notices)-1].NotificationID, "-v2-cancel") {
					t.Fatalf("due %v notices %+v", d, o.Notices)
				}
			})

			t.Run("rows with errors are refused, good rows kept", func(t *testing.T) {
				r := newRig(t, db)
				good := base
				good.ID = "PC-QNA-1125-09"
				res := r.post(t,
					outage.Input{ID: "bad-area", Areas: []string{"49", "99999"}, Location: "x", Start: "2026-11-25 07:00", End: "2026-11-25 09:00"},
					good,
					outage.Input{ID: "bad-times", Areas: []string{"49"}, Location: "x", Start: "2026-11-25 09:00", End: "2026-11-25 07:00"},
					outage.Input{ID: "bad format", Areas: nil, Start: "25/11/2026", End: ""},
					outage.Input{ID: "PC-QNA-1125-09", Areas: []string{"49"}, Location: "x", Start: "2026-11-25 07:00", End: "2026-11-25 09:00"},
				)
				if len(res.Accepted) != 1 || res.Accepted[0].ID != good.ID {
					t.Fatalf("accepted %+v", res.Accepted)
				}
				want := []struct {
					row    int
					fields string
				}{{1, "areas"}, {3, "end"}, {4, "id,areas,location,start,end"}, {5, "id"}}
				if len(res.Rejected) != len(want) {
					t.Fatalf("rejected %+v", res.Rejected)
				}
				for i, w := range want {
					var fields []string
					for _, e := range res.Rejected[i].Errors {
						fields = append(fields, e.Field)
					}
					if res.Rejected[i].Row != w.row || strings.Join(fields, ",") != w.fields {
						t.Errorf("rejected[%d] = %+v; want row %d fields %s", i, res.Rejected[i], w.row, w.fields)
					}
				}
				if !strings.Contains(res.Rejected[0].Errors[0].Detail, "99999") {
					t.Errorf("unknown area detail: %+v", res.Rejected[0])
				}
			})
		})
	}
}

// TestPostsAreBoundToTheClientsAreas: a client posts for its areas and
// the units below them, never beyond: a row naming another district, the
// province above its own (widening its reach), or, for a client given no
// area, anything, refuses the whole post before a row is stored or a
// notice scheduled. Cancelling its own outage names no area and stays
// allowed after its areas changed.
func TestPostsAreBoundToTheClientsAreas(t *testing.T) {
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			r := newRig(t, db)
			hoiAn := outage.Client{ID: "evn-hoian-" + name, Areas: []string{"503"}}
			inside := base // two wards of Hội An
			res, err := r.svc.Post(ctx, hoiAn, []outage.Input{inside})
			if err != nil || len(res.Accepted) != 1 {
				t.Fatalf("inside its district: %+v %v", res, err)
			}
			for _, c := range []struct {
				name   string
				client outage.Client
				rows   []outage.Input
				row    int
			}{
				{"another district", hoiAn, []outage.Input{{ID: "o-1", Areas: []string{"20470"}}}, 1},
				{"the province above", hoiAn, []outage.Input{{ID: "o-2", Areas: []string{"49"}}}, 1},
				{"a padded code", hoiAn, []outage.Input{{ID: "o-3", Areas: []string{" 502 ", "20497"}}}, 1},
				{"a good row then a bad one", hoiAn, []outage.Input{{ID: "o-4", Areas: []string{"20497"}}, {ID: "o-5", Areas: []string{"505"}}}, 2},
				{"no areas at all", outage.Client{ID: "evn-none-" + name}, []outage.Input{{ID: "o-6", Areas: []string{"20497"}}}, 1},
			} {
				for i := range c.rows {
					c.rows[i].Location, c.rows[i].Start, c.rows[i].End = "x", base.Start, base.End
				}
				res, err := r.svc.Post(ctx, c.client, c.rows)
				var ae *outage.AreaError
				if !errors.As(err, &ae) || ae.Row != c.row || len(res.Accepted) != 0 {
					t.Errorf("%s: %+v %v; want an AreaError for row %d and nothing accepted", c.name, res, err, c.row)
					continue
				}
				for _, row := range c.rows {
					if _, err := r.svc.Get(ctx, c.client.ID, row.ID); !errors.Is(err, outage.ErrNotFound) {
						t.Errorf("%s: %s was stored: %v", c.name, row.ID, err)
					}
				}
			}
			if got := r.pub.take(); len(got) != 0 {
				t.Errorf("published %d notices", len(got))
			}
			if due := r.due(t, end); len(due) != 2 {
				t.Errorf("%d reminders scheduled; want only the accepted outage's 2", len(due))
			}
			// Its areas narrowed to Tam Kỳ, it may still cancel its Hội An outage.
			tamKy := outage.Client{ID: hoiAn.ID, Areas: []string{"502"}}
			res, err = r.svc.Post(ctx, tamKy, []outage.Input{{ID: base.ID, Cancelled: true}})
			if err != nil || len(res.Accepted) != 1 || res.Accepted[0].Status != outage.StatusCancelled {
				t.Fatalf("cancel: %+v %v", res, err)
			}
		})
	}
}

// TestOutagesStartWithinAYear: a schedule starting more than MaxAhead
// after it is posted (a year typed wrong, or a key filling the schedule
// with reminders for years ahead) is refused, naming start; one at the
// bound is kept.
func TestOutagesStartWithinAYear(t *testing.T) {
	r := newRig(t, testenv.OpenStore(t, testenv.SQLiteURL(t)))
	row := func(id string, start time.Time) outage.Input {
		in := base
		in.ID, in.Start, in.End = id, start.Format(time.RFC3339), start.Add(4*time.Hour).Format(time.RFC3339)
		return in
	}
	res := r.post(t, row("far", r.now.Add(outage.MaxAhead+time.Minute)), row("typo", r.now.AddDate(36, 0, 0)),
		row("at-the-bound", r.now.Add(outage.MaxAhead)))
	if len(res.Accepted) != 1 || res.Accepted[0].ID != "at-the-bound" {
		t.Errorf("accepted %+v, want only at-the-bound", res.Accepted)
	}
	if len(res.Rejected) != 2 {
		t.Fatalf("rejected %+v, want far and typo", res.Rejected)
	}
	for _, rej := range res.Rejected {
		if len(rej.Errors) != 1 || rej.Errors[0].Field != "start" {
			t.Errorf("%s refused for %+v, want start", rej.ID, rej.Errors)
		}
		if _, err := r.svc.Get(context.Background(), "evn-qna", rej.ID); !errors.Is(err, outage.ErrNotFound) {
			t.Errorf("%s was stored: %v", rej.ID, err)
		}
	}
}

// TestARowOfTooManyAreasIsRefusedAsItIs: a row naming more than
// MaxAreas codes is refused naming areas, and its codes are not looked
// up: with LOA_MAX_BODY_BYTES raised, a row of 40,000 made one query of
// 40,000 parameters, which SQLite (and past 65,535 PostgreSQL) refuses,
// and the whole post failed with 500.
func TestARowOfTooManyAreasIsRefusedAsItIs(t *testing.T) {
	r := newRig(t, testenv.OpenStore(t, testenv.SQLiteURL(t)))
	in := base
	in.ID = "PC-QNA-1125-many"
	in.Areas = make([]string, 40_000)
	for i := range in.Areas {
		in.Areas[i] = fmt.Sprintf("x%d", i)
	}
	res := r.post(t, in, base)
	if len(res.Accepted) != 1 || len(res.Rejected) != 1 {
		t.Fatalf("accepted %+v rejected %+v, want the second row kept and the first refused", res.Accepted, res.Rejected)
	}
	if errs := res.Rejected[0].Errors; len(errs) != 1 || errs[0].Field != "areas" {
		t.Errorf("refused for %+v, want areas only", errs)
	}
}

// TestLeadTimes: one reminder per configured lead, due that long before
// the start, whatever order the leads are given in.
func TestLeadTimes(t *testing.T) {
	db := testenv.OpenStore(t, testenv.SQLiteURL(t))
	r := newRig(t, db)
	r.svc = outage.New(db, r.pub, outage.Config{LeadTimes: []time.Duration{90 * time.Minute, 48 * time.Hour, 15 * time.Minute}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	r.svc.Now = func() time.Time { return r.now }
	r.now = time.Date(2026, 11, 20, 8, 0, 0, 0, ict)
	o := r.post(t, base).Accepted[0]
	want := map[string]time.Time{"48h": start.Add(-48 * time.Hour), "90m": start.Add(-90 * time.Minute), "15m": start.Add(-15 * time.Minute)}
	if len(o.Notices) != 3 {
		t.Fatalf("notices %+v", o.Notices)
	}
	for i, n := range o.Notices {
		if !n.DueAt.Equal(want[n.Lead]) || n.Status != "scheduled" || !strings.HasSuffix(n.NotificationID, "-v1-"+n.Lead) {
			t.Errorf("notice %+v, want due %s", n, want[n.Lead])
		}
		if i > 0 && n.DueAt.Before(o.Notices[i-1].DueAt) {
			t.Errorf("notices out of order: %+v", o.Notices)
		}
	}
	for _, at := range []time.Time{start.Add(-48 * time.Hour), start.Add(-90 * time.Minute), start.Add(-15 * time.Minute)} {
		if d := r.due(t, at); len(d) != 1 {
			t.Errorf("due at %s: %d items, want 1", at, len(d))
		}
	}
}

func TestParseTime(t *testing.T) {
	want := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	for _, s := range []string{"2026-11-25 07:00", "2026-11-25T07:00:00+07:00", "2026-11-25T00:00:00Z", " 2026-11-25 07:00:00 "} {
		got, err := outage.ParseTime(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %s, %v", s, got, err)
		}
	}
	for _, s := range []string{"25/11/2026 07:00", "2026-11-25", "tomorrow"} {
		if _, err := outage.ParseTime(s); err == nil {
			t.Errorf("ParseTime(%q) accepted", s)
		}
	}
}

func TestConfig(t *testing.T) {
	if err := outage.DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []outage.Config{
		{LeadTimes: nil, Channels: []string{"push"}},
		{LeadTimes: []time.Duration{time.Second}, Channels: []string{"push"}},
		{LeadTimes: []time.Duration{time.Hour, time.Hour}, Channels: []string{"push"}},
		{LeadTimes: []time.Duration{time.Hour}, Channels: []string{"fax"}},
	} {
		if c.Validate() == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

// TestNoticesFitAPush: a location and a reason of 500 characters each,
// full of what JSON escapes six bytes long, would make a notice FCM
// refuses to every device; the body is cut to fit one push.
func TestNoticesFitAPush(t *testing.T) {
	r := newRig(t, testenv.OpenStore(t, testenv.SQLiteURL(t)))
	in := base
	in.Location, in.Reason = strings.Repeat("<&>", 166)+"xy", strings.Repeat("&", 500)
	r.post(t, in)
	envs := r.pub.take()
	for _, e := range r.due(t, end) {
		envs = append(envs, e)
	}
	if len(envs) == 0 {
		t.Fatal("no notices")
	}
	for _, e := range envs {
		p := plan(t, e)
		if n := fcm.PayloadSize(channels.Message{Title: p.Title, Body: p.Body, Data: p.Data}); n > fcm.MaxPayload-producer.PushReserve {
			t.Errorf("notice %s: %d bytes, over the %d a push may carry", p.NotificationID, n, fcm.MaxPayload-producer.PushReserve)
		}
		if !strings.Contains(p.Body, "<&><&>") || !utf8.ValidString(p.Body) {
			t.Errorf("notice %s body %.60q…", p.NotificationID, p.Body)
		}
	}
}

// TestANoticeOnItsWayIsStoppedByTheNextVersion: a reminder that the
// scheduler published as the outage was changed or cancelled (its poll
// claimed the item first, so the cancelling found it no longer pending),
// and a change notice still being planned when a newer version came, must
// not reach phones after the notice that replaces them. They go on
// another partition than it, and they share the schedule's collapse key,
// so a late one would put the old times back on the phone in place of
// "cancelled". The next version stops their plans (the planner plans no
// more of them, and the senders skip their batches and their retries);
// its own notice goes on.
func TestANoticeOnItsWayIsStoppedByTheNextVersion(t *testing.T) {
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			r := newRig(t, db)
			in := base
			in.ID = "PC-QNA-1125-race"
			ids := reminderIDs(r.post(t, in).Accepted[0])
			stopped := func(id string) bool {
				t.Helper()
				c, err := r.store.PlanCancelled(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			// The scheduler publishes the 24-hour reminder; a change comes
			// a minute later, while the reminder is being planned and sent.
			r.now = start.Add(-24 * time.Hour)
			if d := r.due(t, r.now); len(d) != 1 || d[ids["24h"]].ID == "" {
				t.Fatalf("due: %v, want the 24-hour reminder %s", d, ids["24h"])
			}
			r.now = r.now.Add(time.Minute)
			in.End = "2026-11-25 15:30"
			if o := r.post(t, in).Accepted[0]; o.Status != outage.StatusChanged {
				t.Fatalf("change: %+v", o)
			}
			pub := r.pub.take()
			if len(pub) != 1 {
				t.Fatalf("published %d, want the change notice", len(pub))
			}
			change := pub[0].ID
			if !stopped(ids["24h"]) {
				t.Errorf("the first version's 24-hour reminder, published as the change came, is still to be sent after the change notice")
			}
			if stopped(change) {
				t.Errorf("the change notice %s was stopped", change)
			}
			// Cancelled while the change notice is still being sent.
			r.now = r.now.Add(time.Minute)
			o, err := r.svc.Cancel(ctx, "evn-qna", in.ID)
			if err != nil || o.Status != outage.StatusCancelled {
				t.Fatalf("cancel: %+v, %v", o, err)
			}
			pub = r.pub.take()
			if len(pub) != 1 {
				t.Fatalf("published %d, want the cancellation", len(pub))
			}
			if !stopped(change) {
				t.Errorf("the change notice %s is still to be sent after the cancellation", change)
			}
			if stopped(pub[0].ID) {
				t.Errorf("the cancellation %s was stopped", pub[0].ID)
			}
		})
	}
}
