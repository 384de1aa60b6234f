package feedback_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/text/unicode/norm"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/internal/areas"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/feedback"
	"github.com/loa-hub/loa/producer/producertest"
)

const doic = "sotttt"

// grants adapts the store's role grants, as cmd/loa adapts the accounts
// service.
type grants struct{ db *sqlstore.DB }

func (g grants) Grants(ctx context.Context, id string) ([]feedback.Grant, error) {
	gs, err := g.db.RoleGrants(ctx, id)
	var out []feedback.Grant
	for _, x := range gs {
		out = append(out, feedback.Grant{Unit: x.Unit, Role: string(x.Role)})
	}
	return out, err
}

type rig struct {
	t      *testing.T
	db     *sqlstore.DB
	svc    *feedback.Service
	pub    *producertest.Recorder
	outbox *producer.Outbox
	now    time.Time
}

var ict = feedback.ICT

func newRig(t *testing.T, db *sqlstore.DB) *rig {
	t.Helper()
	return newRigWith(t, db, nil)
}

// newRigWith is newRig with the service's Config changed by set.
func newRigWith(t *testing.T, db *sqlstore.DB, set func(*feedback.Config)) *rig {
	t.Helper()
	ctx := context.Background()
	if err := db.LoadAreas(ctx, areas.Sample()); err != nil {
		t.Fatal(err)
	}
	// Monday 23 November 2026, 09:00 in Hội An.
	r := &rig{t: t, db: db, pub: &producertest.Recorder{}, now: time.Date(2026, 11, 23, 9, 0, 0, 0, ict)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := feedback.DefaultConfig()
	cfg.CoordinatorUnit = doic
	if set != nil {
		set(&cfg)
	}
	svc, err := feedback.New(cfg, feedback.Deps{Store: db, Roles: grants{db}, Directory: db, Log: log, Now: func() time.Time { return r.now }})
	if err != nil {
		t.Fatal(err)
	}
	r.svc = svc
	r.outbox = producer.NewOutbox(db, r.pub, log)
	r.outbox.Now = func() time.Time { return r.now }
	for _, c := range []feedback.Category{
		{Code: "moi-truong", Name: "Môi trường", Agency: "so-tnmt", HandlingDays: 2, Active: true},
		{Code: "giao-thong", Name: "Giao thông", Agency: "so-gtvt", HandlingDays: 5, Active: true},
		{Code: "cu", Name: "Cũ", Agency: "so-gtvt", HandlingDays: 5, Active: false},
	} {
		if err := db.PutFeedbackCategory(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	// Hội An's environmental matters go to the city.
	if err := db.PutFeedbackRoute(ctx, feedback.Route{Category: "moi-truong", Area: "503", Agency: "ubnd-hoian"}); err != nil {
		t.Fatal(err)
	}
	r.official("h-hoian", "ubnd-hoian", feedback.RoleHandler)
	r.official("h-hoian-2", "ubnd-hoian", feedback.RoleHandler)
	r.official("h-tnmt", "so-tnmt", feedback.RoleHandler)
	r.official("h-gtvt", "so-gtvt", feedback.RoleHandler)
	r.official("coord", doic, feedback.RoleCoordinator)
	// A coordinator role outside the DoIC coordinates nothing.
	r.official("coord-elsewhere", "ubnd-hoian", feedback.RoleCoordinator)
	r.citizen("cit-hoa", "Nguyễn Thị Hoa", "84905123456", "049195001234")
	r.citizen("cit-other", "Trần Văn Nam", "84905999888", "049195009999")
	return r
}

func (r *rig) official(id, unit, role string) {
	ctx := context.Background()
	if _, err := r.db.Account(ctx, id); err != nil {
		if err := r.db.CreateAccount(ctx, accounts.Account{ID: id, Kind: accounts.KindOfficial, Status: accounts.StatusActive,
			Username: id, FullName: "Cán bộ " + id, Unit: unit, CreatedAt: r.now}); err != nil {
			r.t.Fatal(err)
		}
	}
	if err := r.db.GrantRole(ctx, id, accounts.RoleGrant{Unit: unit, Role: accounts.Role(role)}, "test", r.now); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) citizen(id, name, phone, cccd string) {
	if err := r.db.CreateAccount(context.Background(), accounts.Account{ID: id, Kind: accounts.KindCitizen, Status: accounts.StatusActive,
		FullName: name, Phone: phone, CitizenID: cccd, PhoneVerifiedAt: r.now, CreatedAt: r.now}); err != nil {
		r.t.Fatal(err)
	}
}

func off(id string) feedback.Actor { return feedback.Actor{AccountID: id, Kind: "official"} }
func cit(id string) feedback.Actor { return feedback.Actor{AccountID: id, Kind: "citizen"} }

func f64(v float64) *float64 { return &v }

func (r *rig) submit(a feedback.Actor, in feedback.Input) feedback.Feedback {
	r.t.Helper()
	ctx := context.Background()
	d, err := r.svc.Prepare(ctx, a, in)
	if err != nil {
		r.t.Fatalf("prepare: %v", err)
	}
	f, err := r.svc.Submit(ctx, a, d)
	if err != nil {
		r.t.Fatalf("submit: %v", err)
	}
	return f
}

func (r *rig) act(a feedback.Actor, id string, st feedback.Step) feedback.Feedback {
	r.t.Helper()
	f, err := r.svc.Act(context.Background(), a, id, st)
	if err != nil {
		r.t.Fatalf("%s by %s: %v", st.Action, a.AccountID, err)
	}
	return f
}

// published polls the outbox at the rig's time and returns the direct
// payloads it published.
func (r *rig) published() []producer.Direct {
	r.t.Helper()
	for {
		n, err := r.outbox.Poll(context.Background())
		if err != nil {
			r.t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	var out []producer.Direct
	for _, e := range r.pub.Take() {
		if e.Kind != producer.KindDirect || e.Lane != topics.LaneDirect {
			r.t.Errorf("published %s on %s; want direct notifications on the direct lane", e.Kind, e.Lane)
		}
		var d producer.Direct
		if err := json.Unmarshal(e.Payload, &d); err != nil {
			r.t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

func code(err error) string {
	if e, ok := errors.AsType[*loa.Error](err); ok {
		return e.Code
	}
	return "not a loa.Error: " + err.Error()
}

var hoiAn = feedback.Input{Category: "moi-truong", Title: "Rác thải ở chợ", Description: "Rác tồn đọng nhiều ngày ở cổng chợ Hội An.",
	Lat: f64(15.8768), Lon: f64(108.3291), Address: "12 Trần Phú"}

func TestWorkflow(t *testing.T) {
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, db)
			ctx := context.Background()
			f := r.submit(cit("cit-hoa"), hoiAn)
			// The point lies in Minh An (20497), in Hội An (503): the route sends it to the city.
			if f.Location.Area != "20497" || f.Agency != "ubnd-hoian" || f.Status != feedback.StatusAssigned {
				t.Fatalf("submitted: area %s agency %s status %s", f.Location.Area, f.Agency, f.Status)
			}
			// Two working days from Monday 09:00, 24 November being Vietnam
			// Culture Day (a day off from 2026): the end of Thursday.
			if want := time.Date(2026, 11, 27, 0, 0, 0, 0, ict); !f.DueAt.Equal(want) {
				t.Errorf("due %s, want %s", f.DueAt.In(ict), want)
			}
			got := r.published()
			if len(got) != 1 || got[0].To != (producer.Recipient{Type: producer.ToAccount, Value: "cit-hoa"}) ||
				strings.Join(got[0].Channels, ",") != "push" || got[0].App != "smart" || !strings.Contains(got[0].Body, f.ID) {
				t.Fatalf("submit notice: %+v", got)
			}

			// Abuse: a handler of another agency, a coordinator outside the DoIC, a citizen.
			for _, a := range []feedback.Actor{off("h-gtvt"), off("coord-elsewhere"), cit("cit-hoa")} {
				_, err := r.svc.Act(ctx, a, f.ID, feedback.Step{Action: feedback.ActAnswer, Text: "Đã xử lý"})
				if code(err) != loa.EForbidden {
					t.Errorf("answer by %s: %v, want forbidden", a.AccountID, err)
				}
				if err := r.svc.Check(ctx, a, f.ID, feedback.ActStart); code(err) != loa.EForbidden {
					t.Errorf("check by %s: %v, want forbidden", a.AccountID, err)
				}
			}
			// Only a coordinator assigns.
			if _, err := r.svc.Act(ctx, off("h-hoian"), f.ID, feedback.Step{Action: feedback.ActAssign, Agency: "so-gtvt"}); code(err) != loa.EForbidden {
				t.Errorf("assign by a handler: %v", err)
			}
			// Nobody else reads it in full; the citizen and its handlers do.
			for _, a := range []feedback.Actor{cit("cit-other"), off("h-gtvt"), {APIKeyID: "k-other"}} {
				if _, err := r.svc.Get(ctx, a, f.ID); code(err) != loa.EForbidden {
					t.Errorf("get by %+v: %v, want forbidden", a, err)
				}
			}
			for _, a := range []feedback.Actor{cit("cit-hoa"), off("h-hoian"), off("coord")} {
				if _, err := r.svc.Get(ctx, a, f.ID); err != nil {
					t.Errorf("get by %+v: %v", a, err)
				}
			}

			r.now = r.now.Add(time.Hour)
			r.act(off("h-hoian"), f.ID, feedback.Step{Action: feedback.ActStart})
			if _, err := r.svc.Act(ctx, off("h-hoian-2"), f.ID, feedback.Step{Action: feedback.ActStart}); code(err) != loa.EConflict {
				t.Errorf("second start: %v, want conflict", err)
			}
			if _, err := r.svc.Act(ctx, off("h-hoian"), f.ID, feedback.Step{Action: feedback.ActTransfer, Agency: "no-such-unit"}); code(err) != loa.EInvalid {
				t.Errorf("transfer to a unit without handlers: %v", err)
			}
			f = r.act(off("h-hoian"), f.ID, feedback.Step{Action: feedback.ActTransfer, Agency: "so-tnmt", Text: "Thuộc thẩm quyền Sở TN&MT"})
			if f.Status != feedback.StatusTransferred || f.Agency != "so-tnmt" {
				t.Fatalf("transferred: %s %s", f.Status, f.Agency)
			}
			// The city's handler has no say any more.
			if _, err := r.svc.Act(ctx, off("h-hoian"), f.ID, feedback.Step{Action: feedback.ActAnswer, Text: "x"}); code(err) != loa.EForbidden {
				t.Errorf("answer by the former agency: %v", err)
			}
			if _, err := r.svc.Act(ctx, off("h-tnmt"), f.ID, feedback.Step{Action: feedback.ActAnswer}); code(err) != loa.EInvalid {
				t.Errorf("answer without text: %v", err)
			}
			f = r.act(off("h-tnmt"), f.ID, feedback.Step{Action: feedback.ActAnswer, Text: "Đã thu gom rác ngày 24/11."})
			got = r.published()
			var actions []string
			for _, d := range got {
				actions = append(actions, d.Data["status"])
			}
			if strings.Join(actions, ",") != "in_progress,transferred,answered" {
				t.Errorf("notices: %v", actions)
			}
			last := got[len(got)-1]
			if strings.Join(last.Channels, ",") != "push,sms" || !last.Fallback {
				t.Errorf("answer notice: channels %v fallback %v; want push then SMS", last.Channels, last.Fallback)
			}

			// Rating: a stranger may not; a poor rating reopens once.
			if _, err := r.svc.Rate(ctx, cit("cit-other"), f.ID, 5, ""); code(err) != loa.EForbidden {
				t.Errorf("rating by a stranger: %v", err)
			}
			if _, err := r.svc.Rate(ctx, off("h-tnmt"), f.ID, 5, ""); code(err) != loa.EForbidden {
				t.Errorf("rating by the handler: %v", err)
			}
			if _, err := r.svc.Rate(ctx, cit("cit-hoa"), f.ID, 6, ""); code(err) != loa.EInvalid {
				t.Errorf("rating 6: %v", err)
			}
			f, err := r.svc.Rate(ctx, cit("cit-hoa"), f.ID, 2, "Vẫn còn rác")
			if err != nil || f.Status != feedback.StatusReceived || !f.Reopened {
				t.Fatalf("rating 2: %v %s", err, f.Status)
			}
			q, err := r.svc.Queue(ctx, off("coord"), feedback.Filter{})
			if err != nil || len(q) != 1 || q[0].ID != f.ID {
				t.Errorf("coordinator's queue: %v %d", err, len(q))
			}
			r.act(off("coord"), f.ID, feedback.Step{Action: feedback.ActAssign, Agency: "ubnd-hoian"})
			r.act(off("h-hoian-2"), f.ID, feedback.Step{Action: feedback.ActAnswer, Text: "Đã thu gom lại."})
			f, err = r.svc.Rate(ctx, cit("cit-hoa"), f.ID, 1, "")
			if err != nil || f.Status != feedback.StatusClosed {
				t.Fatalf("second poor rating closes it: %v %s", err, f.Status)
			}
			if _, err := r.svc.Rate(ctx, cit("cit-hoa"), f.ID, 5, ""); code(err) != loa.EConflict {
				t.Errorf("rating again: %v", err)
			}
			h, err := r.svc.History(ctx, cit("cit-hoa"), f.ID)
			if err != nil {
				t.Fatal(err)
			}
			var steps []string
			for _, e := range h {
				steps = append(steps, e.Action+":"+string(e.To))
			}
			want := "submit:received,assign:assigned,start:in_progress,transfer:transferred,answer:answered,reopen:received,assign:assigned,answer:answered,rate:closed"
			if strings.Join(steps, ",") != want {
				t.Errorf("history\n got %s\nwant %s", strings.Join(steps, ","), want)
			}
			if h[0].Actor != "cit-hoa" || h[1].Actor != "system" || h[2].Actor != "h-hoian" {
				t.Errorf("actors: %+v", h[:3])
			}
			// Every step is in the audit log.
			if log, err := db.AuditLog(ctx, f.ID, 100); err != nil || len(log) != len(h) {
				t.Errorf("audit entries: %d, want %d (%v)", len(log), len(h), err)
			}
		})
	}
}

func TestRatingWindow(t *testing.T) {
	db := testenv.Stores(t)["sqlite"]
	r := newRig(t, db)
	f := r.submit(cit("cit-hoa"), hoiAn)
	r.act(off("h-hoian"), f.ID, feedback.Step{Action: feedback.ActAnswer, Text: "Xong"})
	r.now = r.now.Add(7*24*time.Hour + time.Second)
	if _, err := r.svc.Rate(context.Background(), cit("cit-hoa"), f.ID, 5, ""); code(err) != loa.EConflict {
		t.Errorf("rating after 7 days: %v", err)
	}
}

func TestDeadlines(t *testing.T) {
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, db)
			ctx := context.Background()
			a := r.submit(cit("cit-hoa"), hoiAn) // due at the end of Thursday 26/11
			b := r.submit(cit("cit-hoa"), hoiAn)
			r.published() // the submit notices
			due := a.DueAt
			r.now = due.Add(-24*time.Hour - time.Second)
			if got := r.published(); len(got) != 0 {
				t.Fatalf("published before the reminder time: %+v", got)
			}
			r.now = due.Add(-24 * time.Hour)
			got := r.published()
			to := map[string]int{}
			for _, d := range got {
				to[d.To.Value]++
				if d.App != "egov" || !d.Fallback || !strings.Contains(d.Title, "Sắp đến hạn") {
					t.Errorf("reminder %+v", d)
				}
			}
			if len(got) != 4 || to["h-hoian"] != 2 || to["h-hoian-2"] != 2 {
				t.Fatalf("reminders: %v", to)
			}
			// a is answered in time: its overdue notice is cancelled.
			r.act(off("h-hoian"), a.ID, feedback.Step{Action: feedback.ActAnswer, Text: "Xong"})
			r.published()
			r.now = due
			got = r.published()
			if len(got) != 1 || got[0].To.Value != "coord" || got[0].Data["feedback_id"] != b.ID || !strings.Contains(got[0].Title, "quá hạn") {
				t.Fatalf("overdue notices: %+v", got)
			}
			r.now = due.Add(24 * time.Hour)
			if got := r.published(); len(got) != 0 {
				t.Errorf("published again: %+v", got)
			}
			st, err := r.svc.Stats(ctx)
			if err != nil || len(st) != 1 || st[0].Agency != "ubnd-hoian" || st[0].Received != 2 || st[0].AnsweredOnTime != 1 || st[0].Late != 1 {
				t.Errorf("stats: %+v %v", st, err)
			}
		})
	}
}

func TestDeadlineSkipsHolidays(t *testing.T) {
	c := feedback.DefaultCalendar()
	// Received Friday 13 February 2026; Tết (16–20 February) is off.
	got := c.AddWorkingDays(time.Date(2026, 2, 13, 10, 0, 0, 0, ict), 2)
	if want := time.Date(2026, 2, 25, 0, 0, 0, 0, ict); !got.Equal(want) {
		t.Errorf("due %s, want %s", got.In(ict), want)
	}
	// 26 April 2025 was a Saturday worked in exchange for 2 May.
	if !c.WorkingDay(time.Date(2025, 4, 26, 9, 0, 0, 0, ict)) || c.WorkingDay(time.Date(2025, 5, 2, 9, 0, 0, 0, ict)) {
		t.Error("swapped days")
	}
	if _, err := feedback.ParseCalendar(strings.NewReader("date,kind,name\n2026-13-01,off,x\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad date: %v", err)
	}
}

func TestEscalateAndReject(t *testing.T) {
	db := testenv.Stores(t)["sqlite"]
	r := newRig(t, db)
	ctx := context.Background()
	f := r.submit(cit("cit-hoa"), hoiAn)
	f = r.act(off("h-hoian"), f.ID, feedback.Step{Action: feedback.ActEscalate, Text: "Vượt thẩm quyền của UBND thành phố"})
	if f.Status != feedback.StatusEscalated || f.Agency != doic {
		t.Fatalf("escalated: %s %s", f.Status, f.Agency)
	}
	if _, err := r.svc.Act(ctx, off("h-hoian"), f.ID, feedback.Step{Action: feedback.ActAnswer, Text: "x"}); code(err) != loa.EForbidden {
		t.Errorf("answer after escalation by the agency: %v", err)
	}
	if _, err := r.svc.Act(ctx, off("coord"), f.ID, feedback.Step{Action: feedback.ActReject, Reason: "spam"}); code(err) != loa.EInvalid {
		t.Errorf("reject with a bad reason: %v", err)
	}
	f = r.act(off("coord"), f.ID, feedback.Step{Action: feedback.ActReject, Reason: feedback.ReasonOutOfScope})
	got := r.published()
	last := got[len(got)-1]
	if f.Status != feedback.StatusRejected || !strings.Contains(last.Body, "không thuộc phạm vi") || !last.Fallback {
		t.Errorf("rejected %s, notice %+v", f.Status, last)
	}
}

func TestSubmittedBySystem(t *testing.T) {
	db := testenv.Stores(t)["sqlite"]
	r := newRig(t, db)
	ctx := context.Background()
	key := feedback.Actor{APIKeyID: "k-1912"}
	in := feedback.Input{Category: "giao-thong", Description: "Đèn tín hiệu hỏng", Area: "20570", Source: "system"}
	if _, err := r.svc.Prepare(ctx, key, in); code(err) != loa.EInvalid {
		t.Errorf("without phone: %v", err)
	}
	in.Phone, in.Name = "0912000111", "Lê Văn C"
	f := r.submit(key, in)
	if f.Citizen.AccountID != "" || f.Citizen.Phone != "84912000111" || f.Agency != "so-gtvt" {
		t.Fatalf("%+v", f)
	}
	if got := r.published(); len(got) != 0 {
		t.Errorf("a citizen with no account hears nothing before the answer: %+v", got)
	}
	r.act(off("h-gtvt"), f.ID, feedback.Step{Action: feedback.ActAnswer, Text: "Đã sửa"})
	got := r.published()
	if len(got) != 1 || got[0].To != (producer.Recipient{Type: producer.ToPhone, Value: "84912000111"}) || got[0].Channels[0] != "sms" {
		t.Errorf("answer by SMS: %+v", got)
	}
	// The same phone of a registered citizen links the matter to the account.
	in.Phone = "0905123456"
	f = r.submit(key, in)
	if f.Citizen.AccountID != "cit-hoa" {
		t.Errorf("linked to %q", f.Citizen.AccountID)
	}
	// The key that sent it reads it; an inactive category is unknown.
	if _, err := r.svc.Get(ctx, key, f.ID); err != nil {
		t.Error(err)
	}
	in.Category = "cu"
	if _, err := r.svc.Prepare(ctx, key, in); code(err) != loa.EInvalid {
		t.Errorf("inactive category: %v", err)
	}
}

// TestPublicViewHasNoPersonalData: the public view of a citizen who did
// not agree holds no name, phone, citizen ID, address or exact point,
// serialized; one who agreed is named.
func TestPublicViewHasNoPersonalData(t *testing.T) {
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, db)
			ctx := context.Background()
			in := hoiAn
			in.Description = "Tôi là Nguyễn Thị Hoa, số 0905 123 456, CCCD 049195001234, email hoa@example.vn, ở 12 Trần Phú: rác tồn đọng."
			f := r.submit(cit("cit-hoa"), in)
			r.act(off("h-hoian"), f.ID, feedback.Step{Action: feedback.ActAnswer, Text: "Gửi bà Nguyễn Thị Hoa: đã thu gom."})
			v, err := r.svc.Public(ctx, f.ID)
			if err != nil {
				t.Fatal(err)
			}
			list, err := r.svc.PublicList(ctx, feedback.Filter{})
			if err != nil || len(list) != 1 {
				t.Fatal(err)
			}
			for _, x := range []any{v, list} {
				b, _ := json.Marshal(x)
				for _, secret := range []string{"Hoa", "0905", "84905123456", "049195001234", "hoa@example", "Trần Phú", "15.8768", "108.3291"} {
					if strings.Contains(string(b), secret) {
						t.Errorf("public view holds %q: %s", secret, b)
					}
				}
			}
			// Rounded to the commune: Minh An's centroid.
			if v.Lat != 15.877 || v.Lon != 108.3282 || v.AreaName != "Phường Minh An" || v.Photos != 0 {
				t.Errorf("location %v,%v %s photos %d", v.Lat, v.Lon, v.AreaName, v.Photos)
			}
			in.Public = true
			g := r.submit(cit("cit-hoa"), in)
			v, _ = r.svc.Public(ctx, g.ID)
			if !v.Named || v.Name != "Nguyễn Thị Hoa" || v.Lat != 15.8768 || v.Address != "12 Trần Phú" {
				t.Errorf("named view: %+v", v)
			}
		})
	}
}

// TestPublicReadsTheKeptMasks: anyone may list 500 public views a page
// (Open311: 1,000), and masking a description of 4,000 characters with
// phone numbers costs some 0.6 ms: 0.53-0.74 s of the API's CPU a list
// of 1,000 such matters, for one anonymous request. Each version is now
// stored with its masked texts, and a public read shows those (a row
// whose kept masks say otherwise than Redact shows what was kept); a row
// without them (written before 0167) is masked at its first read and
// kept, over the version read only; one masked by newer rules (an older
// release during an upgrade) is masked afresh and left alone.
func TestPublicReadsTheKeptMasks(t *testing.T) {
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, db)
			ctx := context.Background()
			in := hoiAn
			in.Description = "Gọi Nguyễn Thị Hoa số 0905 123 456 ở 12 Trần Phú."
			f := r.submit(cit("cit-hoa"), in)
			f = r.act(off("h-hoian"), f.ID, feedback.Step{Action: feedback.ActAnswer, Text: "Chị Hoa (0905123456): đã thu gom."})
			kept, err := db.Feedback(ctx, f.ID)
			if err != nil {
				t.Fatal(err)
			}
			want := feedback.Masked{Rules: feedback.MaskRules, Version: f.Version, Title: "Rác thải ở chợ",
				Description: "Gọi [đã ẩn] số [đã ẩn] ở [đã ẩn].", Answer: "Chị [đã ẩn] ([đã ẩn]): đã thu gom."}
			if kept.Masked != want {
				t.Errorf("stored with the answer: %+v, want %+v", kept.Masked, want)
			}

			// Rows as written before 0167, one whose masks are of the
			// version before (a step by an older release), and one whose
			// kept masks differ from what Redact would give.
			row := func(id string, version int, m feedback.Masked) feedback.Feedback {
				g := kept
				g.ID, g.Version, g.Masked = id, version, m
				if err := db.CreateFeedback(ctx, g, nil, nil); err != nil {
					t.Fatal(err)
				}
				return g
			}
			old := row(f.ID+"-old", 1, feedback.Masked{})
			newer := feedback.Masked{Rules: feedback.MaskRules + 1, Version: 1, Description: "newer rules"}
			other := row(f.ID+"-other", 1, newer)
			prev := row(f.ID+"-prev", 2, feedback.Masked{Rules: feedback.MaskRules, Version: 1, Description: "the version before"})
			row(f.ID+"-kept", 1, feedback.Masked{Rules: feedback.MaskRules, Version: 1, Title: "t", Description: "kept", Answer: "a"})
			list, err := r.svc.PublicList(ctx, feedback.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			views := map[string]feedback.PublicView{}
			for _, v := range list {
				views[v.ID] = v
			}
			for _, id := range []string{f.ID, old.ID, other.ID, prev.ID} {
				if v := views[id]; v.Title != want.Title || v.Description != want.Description || v.Answer != want.Answer {
					t.Errorf("view of %s: %q %q %q, want %+v", id, v.Title, v.Description, v.Answer, want)
				}
			}
			if v := views[f.ID+"-kept"]; v.Title != "t" || v.Description != "kept" || v.Answer != "a" {
				t.Errorf("view of a row with kept masks: %q %q %q; want them, not masked afresh", v.Title, v.Description, v.Answer)
			}
			at := func(v int) feedback.Masked { m := want; m.Version = v; return m }
			for id, want := range map[string]feedback.Masked{old.ID: at(1), other.ID: newer, prev.ID: at(2)} {
				g, err := db.Feedback(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if g.Masked != want {
					t.Errorf("%s after its first public read: %+v, want %+v kept", id, g.Masked, want)
				}
			}

			// Masks computed from a version that has moved since are not kept.
			if err := db.MaskFeedback(ctx, []feedback.Feedback{{ID: f.ID, Version: f.Version - 1,
				Masked: feedback.Masked{Rules: feedback.MaskRules + 1, Description: "stale"}}}); err != nil {
				t.Fatal(err)
			}
			if g, _ := db.Feedback(ctx, f.ID); g.Masked != want {
				t.Errorf("masks of an older version overwrote the current: %+v", g.Masked)
			}
		})
	}
}

// TestOneCitizenCannotFloodTheQueue: past PerDay in 24 hours a citizen's
// (or a phone's) feedback is refused with 429 before anything is read or
// stored; another citizen is not affected; a day later it is accepted.
func TestOneCitizenCannotFloodTheQueue(t *testing.T) {
	r := newRig(t, testenv.Stores(t)["sqlite"])
	ctx := context.Background()
	for range 20 {
		r.submit(cit("cit-hoa"), hoiAn)
	}
	_, err := r.svc.Prepare(ctx, cit("cit-hoa"), hoiAn)
	if e, ok := errors.AsType[*loa.Error](err); !ok || e.Code != loa.ERateLimited || e.RetryAfter <= 0 {
		t.Fatalf("21st: %v", err)
	}
	r.submit(cit("cit-other"), hoiAn)
	r.now = r.now.Add(24*time.Hour + time.Second)
	r.submit(cit("cit-hoa"), hoiAn)
}

// TestAKeyCannotUseUpACitizensDay: an integrating system that files 20
// matters with a registered citizen's phone reaches its own limit for that
// phone; the citizen can still file from their account, and another key
// for the same phone is not affected.
func TestAKeyCannotUseUpACitizensDay(t *testing.T) {
	r := newRig(t, testenv.Stores(t)["sqlite"])
	ctx := context.Background()
	key := feedback.Actor{APIKeyID: "k-1912"}
	in := feedback.Input{Category: "giao-thong", Description: "Đèn tín hiệu hỏng", Area: "20570", Phone: "0905123456"}
	for range 20 {
		r.submit(key, in)
	}
	if _, err := r.svc.Prepare(ctx, key, in); code(err) != loa.ERateLimited {
		t.Fatalf("the key's 21st for one phone: %v", err)
	}
	r.submit(cit("cit-hoa"), hoiAn)
	r.submit(feedback.Actor{APIKeyID: "k-other"}, in)
	// And the other way round: the citizen's own 20 do not stop a hotline
	// from filing for them.
	for range 19 {
		r.submit(cit("cit-hoa"), hoiAn)
	}
	if _, err := r.svc.Prepare(ctx, cit("cit-hoa"), hoiAn); code(err) != loa.ERateLimited {
		t.Fatalf("the citizen's 21st: %v", err)
	}
	r.submit(feedback.Actor{APIKeyID: "k-third"}, in)
}

// TestAKeysDayCountsEveryPhone: a key's matters are counted over every
// phone it names (KeyPerDay), and those with photos too
// (KeyPhotosPerDay: a matter past it may not take a photo), on both
// dialects; a day later the key may send again.
func TestAKeysDayCountsEveryPhone(t *testing.T) {
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			r := newRigWith(t, db, func(c *feedback.Config) { c.KeyPerDay, c.KeyPhotosPerDay = 3, 1 })
			ctx := context.Background()
			key := feedback.Actor{APIKeyID: "k-1912"}
			in := func(i int) feedback.Input {
				return feedback.Input{Category: "giao-thong", Description: "Đèn tín hiệu hỏng", Area: "20570", Phone: fmt.Sprintf("090512345%d", i)}
			}
			for i := range 3 {
				d, err := r.svc.Prepare(ctx, key, in(i))
				if err != nil {
					t.Fatalf("prepare %d: %v", i, err)
				}
				err = r.svc.AddPhoto(d, feedback.Photo{Key: fmt.Sprintf("feedback/%d/0.jpg", i), ContentType: "image/jpeg", Size: 1})
				if want := i > 0; (err != nil) != want || err != nil && code(err) != loa.ERateLimited {
					t.Fatalf("photo of matter %d: %v (want refused: %v)", i, err, want)
				}
				if _, err := r.svc.Submit(ctx, key, d); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := r.svc.Prepare(ctx, key, in(3)); code(err) != loa.ERateLimited {
				t.Fatalf("the key's 4th, for a 4th phone: %v", err)
			}
			r.submit(feedback.Actor{APIKeyID: "k-other"}, in(3))
			r.now = r.now.Add(24*time.Hour + time.Second)
			r.submit(key, in(3))
		})
	}
}

func TestPrepareNamesEveryWrongField(t *testing.T) {
	db := testenv.Stores(t)["sqlite"]
	r := newRig(t, db)
	_, err := r.svc.Prepare(context.Background(), cit("cit-hoa"), feedback.Input{Category: "nope", Lat: f64(91), Lon: f64(0), Area: "999999"})
	e, ok := errors.AsType[*loa.Error](err)
	if !ok || e.Code != loa.EInvalid {
		t.Fatalf("%v", err)
	}
	var fields []string
	for _, f := range e.Fields {
		fields = append(fields, f.Field)
	}
	if strings.Join(fields, ",") != "category,description,lat,area" {
		t.Errorf("fields %v", fields)
	}
	// An official's session does not submit.
	if _, err := r.svc.Prepare(context.Background(), off("h-hoian"), hoiAn); code(err) != loa.EForbidden {
		t.Errorf("official submits: %v", err)
	}
}

// TestQueueIsTheHandlersOwn: a handler lists their own agency's queue
// only; asking for another agency's is refused, and a citizen or a
// coordinator outside the DoIC lists nothing.
func TestQueueIsTheHandlersOwn(t *testing.T) {
	r := newRig(t, testenv.Stores(t)["sqlite"])
	ctx := context.Background()
	f := r.submit(cit("cit-hoa"), hoiAn) // to ubnd-hoian
	g := r.submit(cit("cit-hoa"), feedback.Input{Category: "giao-thong", Description: "Ổ gà trên đường Hùng Vương", Area: "20570"})
	q, err := r.svc.Queue(ctx, off("h-hoian"), feedback.Filter{})
	if err != nil || len(q) != 1 || q[0].ID != f.ID {
		t.Errorf("own queue: %v %+v", err, q)
	}
	if _, err := r.svc.Queue(ctx, off("h-hoian"), feedback.Filter{Agency: "so-gtvt"}); code(err) != loa.EForbidden {
		t.Errorf("another agency's queue: %v, want forbidden", err)
	}
	for _, a := range []feedback.Actor{cit("cit-hoa"), off("coord-elsewhere"), {APIKeyID: "k-1"}} {
		if q, err := r.svc.Queue(ctx, a, feedback.Filter{Agency: "so-gtvt"}); code(err) != loa.EForbidden {
			t.Errorf("queue of %+v: %v %d items, want forbidden", a, err, len(q))
		}
	}
	if q, err := r.svc.Queue(ctx, off("h-gtvt"), feedback.Filter{}); err != nil || len(q) != 1 || q[0].ID != g.ID {
		t.Errorf("so-gtvt's queue: %v %+v", err, q)
	}
	// The citizen's own list holds theirs only.
	if mine, err := r.svc.Mine(ctx, cit("cit-other"), feedback.Filter{}); err != nil || len(mine) != 0 {
		t.Errorf("another citizen's list: %v %d", err, len(mine))
	}
}

// TestSubmissionIsNFC: texts sent decomposed (NFD, as some keyboards
// send Vietnamese) are stored composed (NFC, TCVN 6909), so that search,
// masking and comparison see one spelling.
func TestSubmissionIsNFC(t *testing.T) {
	r := newRig(t, testenv.Stores(t)["sqlite"])
	nfd := func(s string) string { return norm.NFD.String(s) }
	in := hoiAn
	in.Title, in.Description, in.Address = nfd("Rác thải ở chợ Hội An"), nfd("Rác tồn đọng nhiều ngày."), nfd("12 Trần Phú")
	if in.Title == "Rác thải ở chợ Hội An" {
		t.Fatal("the input is not decomposed")
	}
	f := r.submit(cit("cit-hoa"), in)
	got, err := r.svc.Get(context.Background(), cit("cit-hoa"), f.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Title != "Rác thải ở chợ Hội An" || got.Description != "Rác tồn đọng nhiều ngày." || got.Location.Address != "12 Trần Phú" {
		t.Errorf("stored %q %q %q, want NFC", got.Title, got.Description, got.Location.Address)
	}
}

// TestAbuseIsNotPublished: a matter rejected as abusive shows nothing of
// what its sender wrote or sent in the public view (title, description,
// name, address, exact point, photos), even when the sender agreed to be
// named; its handling (status, reason, agency) stays public.
func TestAbuseIsNotPublished(t *testing.T) {
	r := newRig(t, testenv.Stores(t)["sqlite"])
	ctx := context.Background()
	in := hoiAn
	in.Title, in.Description, in.Public = "Quảng cáo cá độ bóng đá", "Truy cập cado.example để nhận thưởng, đồ ngu", true
	f := r.submit(cit("cit-hoa"), in)
	f = r.act(off("h-hoian"), f.ID, feedback.Step{Action: feedback.ActReject, Reason: feedback.ReasonAbusive})
	v, err := r.svc.Public(ctx, f.ID)
	if err != nil {
		t.Fatal(err)
	}
	list, err := r.svc.PublicList(ctx, feedback.Filter{})
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %v %d", err, len(list))
	}
	for _, x := range []any{v, list} {
		b, _ := json.Marshal(x)
		for _, s := range []string{"cá độ", "cado.example", "đồ ngu", "Nguyễn Thị Hoa", "Trần Phú", "15.8768"} {
			if strings.Contains(string(b), s) {
				t.Errorf("the public view of an abusive matter holds %q: %s", s, b)
			}
		}
	}
	if v.Status != feedback.StatusRejected || v.RejectReason != feedback.ReasonAbusive || v.Agency != "ubnd-hoian" || v.Named || v.Photos != 0 {
		t.Errorf("view %+v", v)
	}
	// Its sender still reads it in full.
	if g, err := r.svc.Get(ctx, cit("cit-hoa"), f.ID); err != nil || g.Title != in.Title {
		t.Errorf("the sender's view: %v %q", err, g.Title)
	}
}

// TestCategoriesAreTheCoordinators: categories and routes are edited by a
// coordinator of the DoIC or an administrator only — not by a handler, a
// coordinator role outside the DoIC, a citizen or an integrating
// system's key.
func TestCategoriesAreTheCoordinators(t *testing.T) {
	r := newRig(t, testenv.Stores(t)["sqlite"])
	ctx := context.Background()
	c := feedback.Category{Code: "moi-truong", Name: "Môi trường", Agency: "ubnd-hoian", HandlingDays: 1, Active: true}
	for _, a := range []feedback.Actor{off("h-tnmt"), off("coord-elsewhere"), cit("cit-hoa"), {APIKeyID: "k-1"}} {
		if _, err := r.svc.PutCategory(ctx, a, false, c); code(err) != loa.EForbidden {
			t.Errorf("category by %+v: %v, want forbidden", a, err)
		}
		if err := r.svc.PutRoute(ctx, a, false, feedback.Route{Category: "moi-truong", Area: "503", Agency: "so-gtvt"}); code(err) != loa.EForbidden {
			t.Errorf("route by %+v: %v, want forbidden", a, err)
		}
		if err := r.svc.DeleteRoute(ctx, a, false, "moi-truong", "503"); code(err) != loa.EForbidden {
			t.Errorf("route deleted by %+v: %v, want forbidden", a, err)
		}
	}
	if got, _ := r.db.FeedbackCategory(ctx, "moi-truong"); got.Agency != "so-tnmt" || got.HandlingDays != 2 {
		t.Errorf("the category changed: %+v", got)
	}
	if rs, _ := r.db.FeedbackRoutes(ctx, "moi-truong"); len(rs) != 1 || rs[0].Agency != "ubnd-hoian" {
		t.Errorf("the routes changed: %+v", rs)
	}
	if _, err := r.svc.PutCategory(ctx, off("coord"), false, c); err != nil {
		t.Errorf("by the coordinator: %v", err)
	}
}

// countingStats counts the store's computations of the public counts,
// holding each until gate is closed and telling entered when one starts.
type countingStats struct {
	feedback.Store
	n       atomic.Int32
	entered chan struct{}
	gate    chan struct{}
}

func (c *countingStats) FeedbackStats(ctx context.Context, now time.Time) ([]feedback.AgencyStat, error) {
	if c.n.Add(1) == 1 {
		close(c.entered)
	}
	<-c.gate
	return c.Store.FeedbackStats(ctx, now)
}

// TestStatsAreSharedAndReused: the public counts read every matter and
// anyone may ask for them, so a stranger's many requests at once make one
// computation, which every caller shares, and later requests reuse it for
// feedback.StatsTTL.
func TestStatsAreSharedAndReused(t *testing.T) {
	db := testenv.OpenStore(t, testenv.SQLiteURL(t))
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, ict)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	store := &countingStats{Store: db, entered: make(chan struct{}), gate: make(chan struct{})}
	svc, err := feedback.New(feedback.DefaultConfig(), feedback.Deps{Store: store, Roles: grants{db}, Directory: db,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	ask := func() {
		defer wg.Done()
		if _, err := svc.Stats(ctx); err != nil {
			errs <- err
		}
	}
	wg.Add(1)
	go ask()
	<-store.entered // the first computation is under way and held
	for range 49 {
		wg.Add(1)
		go ask()
	}
	close(store.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := store.n.Load(); n != 1 {
		t.Errorf("50 callers made %d computations, want 1", n)
	}
	mu.Lock()
	now = now.Add(feedback.StatsTTL - time.Second)
	mu.Unlock()
	svc.Stats(ctx)
	if n := store.n.Load(); n != 1 {
		t.Errorf("within the TTL: %d computations, want 1", n)
	}
	mu.Lock()
	now = now.Add(2 * time.Second)
	mu.Unlock()
	svc.Stats(ctx)
	if n := store.n.Load(); n != 2 {
		t.Errorf("past the TTL: %d computations, want 2", n)
	}
}

// panickyStats panics on its first computation, then counts.
type panickyStats struct {
	feedback.Store
	calls atomic.Int32
}

func (p *panickyStats) FeedbackStats(ctx context.Context, now time.Time) ([]feedback.AgencyStat, error) {
	if p.calls.Add(1) == 1 {
		panic("the store broke")
	}
	return p.Store.FeedbackStats(ctx, now)
}

// TestStatsSurviveAPanickingComputation: a computation that panics (the
// HTTP server recovers the request) leaves no caller waiting for it: the
// next one computes afresh.
func TestStatsSurviveAPanickingComputation(t *testing.T) {
	db := testenv.OpenStore(t, testenv.SQLiteURL(t))
	store := &panickyStats{Store: db}
	svc, err := feedback.New(feedback.DefaultConfig(), feedback.Deps{Store: store, Roles: grants{db}, Directory: db,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return time.Date(2026, 11, 23, 9, 0, 0, 0, ict) }})
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the store's panic did not reach the caller")
			}
		}()
		svc.Stats(context.Background())
	}()
	if _, err := svc.Stats(context.Background()); err != nil || store.calls.Load() != 2 {
		t.Errorf("after the panic: %v, %d computations", err, store.calls.Load())
	}
}
