package broadcast_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/broadcast"
	"github.com/loa-hub/loa/producer/producertest"
)

// recorder records what is published (see producertest.Recorder).
type recorder struct{ producertest.Recorder }

func (r *recorder) plans(t *testing.T) []producer.Plan {
	t.Helper()
	var out []producer.Plan
	for _, e := range r.Envelopes() {
		if e.Kind != producer.KindPlan {
			continue
		}
		var p producer.Plan
		if err := json.Unmarshal(e.Payload, &p); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// roles is a fixed table of officials' roles.
type roles map[string][]accounts.Role

func (r roles) Roles(_ context.Context, id string) ([]accounts.RoleGrant, error) {
	var out []accounts.RoleGrant
	for _, x := range r[id] {
		out = append(out, accounts.RoleGrant{Unit: "u", Role: x})
	}
	return out, nil
}

// CheckApprover is the approver rule on the table: the role, and never a
// submitter.
func (r roles) CheckApprover(_ context.Context, id string, submitters ...string) error {
	if !slices.Contains(r[id], accounts.RoleBroadcastApprover) || id == approverElsewhere.AccountID {
		return accounts.ErrForbidden
	}
	if slices.Contains(submitters, id) {
		return accounts.ErrFourEyes
	}
	return nil
}

var (
	submitter = broadcast.Actor{AccountID: "sub-1"}
	// both may submit and approve: four eyes still stops them approving
	// their own request.
	both     = broadcast.Actor{AccountID: "both-1"}
	approver = broadcast.Actor{AccountID: "appr-1"}
	ops      = broadcast.Actor{AccountID: "ops-1"}
	// approverElsewhere holds broadcast_approver outside the approval
	// unit: CheckApprover refuses them.
	approverElsewhere = broadcast.Actor{AccountID: "appr-elsewhere"}
)

type rig struct {
	svc   *broadcast.Service
	store *sqlstore.DB
	pub   *recorder
	now   time.Time
}

func newRig(t *testing.T, store *sqlstore.DB) *rig {
	t.Helper()
	ctx := context.Background()
	r := &rig{store: store, pub: &recorder{}, now: time.Now().UTC().Truncate(time.Second)}
	if err := store.UpsertAreas(ctx, []accounts.Area{{Code: "49", Name: "Quảng Nam", Level: "province"},
		{Code: "20497", Name: "Minh An", Parent: "49", Level: "commune"}, {Code: "48", Name: "Đà Nẵng", Level: "province"}}); err != nil {
		t.Fatal(err)
	}
	if err := store.SeedAudience(ctx, "bc", 30, 10000, "smart", "20497", r.now); err != nil {
		t.Fatal(err)
	}
	if err := store.SeedAudience(ctx, "dn", 7, 20000, "smart", "48", r.now); err != nil {
		t.Fatal(err)
	}
	svc, err := broadcast.New(broadcast.DefaultConfig(), broadcast.Deps{Store: store, Publisher: r.pub,
		Roles: roles{
			submitter.AccountID:         {accounts.RoleAgencySubmitter},
			both.AccountID:              {accounts.RoleAgencySubmitter, accounts.RoleBroadcastApprover},
			approver.AccountID:          {accounts.RoleBroadcastApprover},
			ops.AccountID:               {accounts.RoleOps},
			approverElsewhere.AccountID: {accounts.RoleBroadcastApprover},
		},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return r.now }})
	if err != nil {
		t.Fatal(err)
	}
	r.svc = svc
	return r
}

func draft() broadcast.Draft {
	return broadcast.Draft{Title: "Cảnh báo lũ", Body: "Hồ chứa nước Phú Ninh xả lũ lúc 14 giờ; người dân vùng hạ du chú ý.", Topic: "disaster",
		Audience: broadcast.Audience{Areas: []string{"49"}}, Channels: []string{"push"},
		Document: broadcast.Document{Number: "123/SNN-TL", Date: "2026-11-20"}}
}

func (r *rig) submitted(t *testing.T, by broadcast.Actor, d broadcast.Draft) broadcast.Broadcast {
	t.Helper()
	ctx := context.Background()
	b, err := r.svc.Create(ctx, by, d)
	if err != nil {
		t.Fatal(err)
	}
	if b, err = r.svc.Submit(ctx, by, b.ID); err != nil || b.Status != "submitted" {
		t.Fatalf("submit: %v %v", b.Status, err)
	}
	return b
}

// TestFourEyes: the submitter cannot approve their own request, a
// non-approver cannot approve, nothing is published before approval; the
// approval publishes one plan keyed by the broadcast; every transition is
// in the history and the audit log.
func TestFourEyes(t *testing.T) {
	for name, store := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			r := newRig(t, store)
			if _, err := r.svc.Create(ctx, approver, draft()); !errors.Is(err, broadcast.ErrForbidden) {
				t.Errorf("an approver drafts: %v", err)
			}
			b := r.submitted(t, both, draft())
			if _, err := r.svc.Approve(ctx, both, b.ID); !errors.Is(err, broadcast.ErrFourEyes) {
				t.Errorf("own approval: %v", err)
			}
			if _, err := r.svc.Reject(ctx, both, b.ID, "không"); !errors.Is(err, broadcast.ErrFourEyes) {
				t.Errorf("own rejection: %v", err)
			}
			for _, a := range []broadcast.Actor{submitter, ops, {AccountID: "nobody"}} {
				if _, err := r.svc.Approve(ctx, a, b.ID); !errors.Is(err, broadcast.ErrForbidden) {
					t.Errorf("%s approves: %v", a.AccountID, err)
				}
			}
			if n := len(r.pub.plans(t)); n != 0 {
				t.Fatalf("%d plans published before approval", n)
			}
			got, err := r.svc.Approve(ctx, approver, b.ID)
			if err != nil || got.Status != "sending" || got.DecidedBy != approver.AccountID {
				t.Fatalf("approve: %+v %v", got, err)
			}
			plans := r.pub.plans(t)
			if len(plans) != 1 || plans[0].NotificationID != b.ID || plans[0].Audience.Areas[0] != "49" || plans[0].Title != "Cảnh báo lũ" {
				t.Fatalf("plans: %+v", plans)
			}
			if _, err := r.svc.Approve(ctx, approver, b.ID); !errors.Is(err, broadcast.ErrState) {
				t.Errorf("approved twice: %v", err)
			}
			if _, err := r.svc.Cancel(ctx, approver, b.ID, ""); !errors.Is(err, broadcast.ErrState) {
				t.Errorf("cancel while sending: %v", err)
			}
			if len(r.pub.plans(t)) != 1 {
				t.Error("published again")
			}
			hist, err := r.svc.History(ctx, ops, b.ID)
			if err != nil {
				t.Fatal(err)
			}
			want := [][3]string{{"both-1", "", "draft"}, {"both-1", "draft", "submitted"}, {"appr-1", "submitted", "approved"}, {"system", "approved", "sending"}}
			if len(hist) != len(want) {
				t.Fatalf("history: %+v", hist)
			}
			for i, w := range want {
				if hist[i].Actor != w[0] || hist[i].From != w[1] || hist[i].To != w[2] || hist[i].At.IsZero() {
					t.Errorf("history[%d] = %+v, want %v", i, hist[i], w)
				}
			}
			audit, err := store.AuditLog(ctx, b.ID, 100)
			if err != nil {
				t.Fatal(err)
			}
			// Moves in one instant are in the audit log in any order.
			actions := []string{"broadcast.create", "broadcast.submitted", "broadcast.approved", "broadcast.sending"}
			if len(audit) != len(actions) {
				t.Fatalf("audit: %+v", audit)
			}
			byAction := map[string]accounts.AuditEntry{}
			for _, e := range audit {
				byAction[e.Action] = e
			}
			for i, a := range actions {
				if e := byAction[a]; e.Actor != want[i][0] || e.Detail["to"] != want[i][2] || e.Detail["from"] != want[i][1] {
					t.Errorf("audit %s = %+v, want %v", a, e, want[i])
				}
			}
		})
	}
}

// TestRejectedAndCancelledSendNothing: a rejected or cancelled request is
// never published and cannot be approved afterwards; the reason is kept.
func TestRejectedAndCancelledSendNothing(t *testing.T) {
	for name, store := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			r := newRig(t, store)
			b := r.submitted(t, submitter, draft())
			var ve *loa.Error
			if _, err := r.svc.Reject(ctx, approver, b.ID, "  "); !errors.As(err, &ve) || ve.Code != loa.EInvalid || ve.Fields[0].Field != "reason" {
				t.Errorf("reject without a reason: %v", err)
			}
			rej, err := r.svc.Reject(ctx, approver, b.ID, "Thiếu văn bản đề nghị")
			if err != nil || rej.Status != "rejected" || rej.Reason != "Thiếu văn bản đề nghị" {
				t.Fatalf("reject: %+v %v", rej, err)
			}
			if _, err := r.svc.Approve(ctx, approver, b.ID); !errors.Is(err, broadcast.ErrState) {
				t.Errorf("approve a rejected request: %v", err)
			}
			if _, err := r.svc.Cancel(ctx, submitter, b.ID, ""); !errors.Is(err, broadcast.ErrState) {
				t.Errorf("cancel a rejected request: %v", err)
			}
			c := r.submitted(t, submitter, draft())
			if _, err := r.svc.Cancel(ctx, ops, c.ID, ""); !errors.Is(err, broadcast.ErrForbidden) {
				t.Errorf("ops cancels: %v", err)
			}
			cc, err := r.svc.Cancel(ctx, submitter, c.ID, "nhầm")
			if err != nil || cc.Status != "cancelled" {
				t.Fatalf("cancel: %+v %v", cc, err)
			}
			if _, err := r.svc.Approve(ctx, approver, c.ID); !errors.Is(err, broadcast.ErrState) {
				t.Errorf("approve a cancelled request: %v", err)
			}
			if _, err := r.svc.Submit(ctx, submitter, c.ID); !errors.Is(err, broadcast.ErrState) {
				t.Errorf("submit a cancelled request: %v", err)
			}
			if n := len(r.pub.plans(t)); n != 0 {
				t.Errorf("%d plans published", n)
			}
			list, err := r.svc.List(ctx, approver, "rejected", 10)
			if err != nil || len(list) != 1 || list[0].ID != b.ID {
				t.Errorf("list rejected: %v %v", list, err)
			}
			if _, err := r.svc.List(ctx, approver, "nonsense", 10); !errors.As(err, &ve) || ve.Code != loa.EInvalid || ve.Fields[0].Field != "status" {
				t.Errorf("list by unknown status: %v", err)
			}
		})
	}
}

// TestScheduledBroadcast: approval of a future send_at is a scheduled
// item due then, nothing is published; cancel removes the item; once the
// scheduler published it, the broadcast is sending and cancel is refused.
func TestScheduledBroadcast(t *testing.T) {
	for name, store := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			r := newRig(t, store)
			d := draft()
			d.SendAt = r.now.Add(2 * time.Hour)
			b := r.submitted(t, submitter, d)
			got, err := r.svc.Approve(ctx, approver, b.ID)
			if err != nil || got.Status != "scheduled" {
				t.Fatalf("approve: %+v %v", got, err)
			}
			if st, err := store.ScheduledStatus(ctx, b.ID+":plan"); err != nil || st != sqlstore.ItemPending {
				t.Fatalf("scheduled item: %q %v", st, err)
			}
			// Not due an hour early.
			n, err := store.PublishDue(ctx, r.now.Add(time.Hour), 10, func(its []producer.OutboxItem) (int, error) { return len(its), nil })
			if err != nil || n != 0 {
				t.Fatalf("due early: %d %v", n, err)
			}
			c, err := r.svc.Cancel(ctx, approver, b.ID, "hoãn")
			if err != nil || c.Status != "cancelled" {
				t.Fatalf("cancel: %+v %v", c, err)
			}
			if st, _ := store.ScheduledStatus(ctx, b.ID+":plan"); st != sqlstore.ItemCancelled {
				t.Errorf("item after cancel: %q", st)
			}
			if n, _ := store.PublishDue(ctx, r.now.Add(3*time.Hour), 10, func(its []producer.OutboxItem) (int, error) { return len(its), nil }); n != 0 {
				t.Errorf("a cancelled item was due: %d", n)
			}

			// A second one the scheduler publishes: then it is sending.
			b2 := r.submitted(t, submitter, d)
			if _, err := r.svc.Approve(ctx, approver, b2.ID); err != nil {
				t.Fatal(err)
			}
			var items []producer.OutboxItem
			if _, err := store.PublishDue(ctx, r.now.Add(2*time.Hour), 10, func(its []producer.OutboxItem) (int, error) {
				items = its
				return len(its), nil
			}); err != nil || len(items) != 1 || !items[0].DueAt.Equal(d.SendAt) || items[0].Subject != b2.ID {
				t.Fatalf("due: %+v %v", items, err)
			}
			env, err := producer.Decode([]byte(items[0].Envelope))
			if err != nil || env.Kind != producer.KindPlan || !env.ExpiresAt.Equal(d.SendAt.Add(24*time.Hour)) {
				t.Fatalf("envelope: %+v %v", env, err)
			}
			if _, err := r.svc.Cancel(ctx, approver, b2.ID, ""); !errors.Is(err, broadcast.ErrState) {
				t.Errorf("cancel after the scheduler published it: %v", err)
			}
			if g, _ := r.svc.Get(ctx, ops, b2.ID); g.Status != "sending" {
				t.Errorf("status after publishing: %s", g.Status)
			}
			if n := len(r.pub.plans(t)); n != 0 {
				t.Errorf("the service published %d plans itself", n)
			}
		})
	}
}

// TestDraftValidation: each bad field is named.
func TestDraftValidation(t *testing.T) {
	r := newRig(t, testenv.OpenStore(t, testenv.SQLiteURL(t)))
	cases := []struct {
		field string
		edit  func(d *broadcast.Draft)
	}{
		{"title", func(d *broadcast.Draft) { d.Title = " " }},
		{"body", func(d *broadcast.Draft) { d.Body = "" }},
		{"title", func(d *broadcast.Draft) { d.Title = string(make([]rune, 201)) }},
		{"topic", func(d *broadcast.Draft) { d.Topic = "" }},
		{"topic", func(d *broadcast.Draft) { d.Topic = "lottery" }},
		{"audience", func(d *broadcast.Draft) { d.Audience = broadcast.Audience{} }},
		{"audience", func(d *broadcast.Draft) { d.Audience.Everyone = true }},
		{"audience.areas[1]", func(d *broadcast.Draft) { d.Audience.Areas = []string{"49", "99999"} }},
		{"audience.areas", func(d *broadcast.Draft) {
			d.Audience.Areas = make([]string, 40_000)
			for i := range d.Audience.Areas {
				d.Audience.Areas[i] = fmt.Sprintf("x%d", i)
			}
		}},
		{"audience.topics[0]", func(d *broadcast.Draft) { d.Audience.Topics = []string{"nope"} }},
		{"audience.accounts[0]", func(d *broadcast.Draft) { d.Audience.Accounts = []string{"no-such-account"} }},
		{"audience.area_topics", func(d *broadcast.Draft) { d.Audience.Topics, d.Audience.AreaTopics = []string{"disaster"}, true }},
		{"channels[1]", func(d *broadcast.Draft) { d.Channels = []string{"push", "fax"} }},
		{"send_at", func(d *broadcast.Draft) { d.SendAt = r.now.Add(-time.Minute) }},
		// Approved now, sent whenever: a send_at years ahead is not a
		// text an approver can weigh.
		{"send_at", func(d *broadcast.Draft) { d.SendAt = r.now.Add(broadcast.MaxSendAhead + time.Minute) }},
		{"send_at", func(d *broadcast.Draft) { d.SendAt = r.now.AddDate(10, 0, 0) }},
		{"request_document.number", func(d *broadcast.Draft) { d.Document.Number = "" }},
		{"request_document.date", func(d *broadcast.Draft) { d.Document.Date = "" }},
		{"request_document.date", func(d *broadcast.Draft) { d.Document.Date = "20/11/2026" }},
		{"request_document.date", func(d *broadcast.Draft) { d.Document.Date = "2026-02-30" }},
		// A push FCM would refuse, to every device: 2,000 characters of
		// Vietnamese, or the English texts beside the Vietnamese.
		{"body", func(d *broadcast.Draft) { d.Body = strings.Repeat("ệ", 2000) }},
		{"body", func(d *broadcast.Draft) {
			d.Body, d.TitleEN, d.BodyEN = strings.Repeat("Nước lên. ", 150), "Flood", strings.Repeat("Water is rising. ", 100)
		}},
	}
	for _, c := range cases {
		d := draft()
		c.edit(&d)
		_, err := r.svc.Create(context.Background(), submitter, d)
		var ve *loa.Error
		if !errors.As(err, &ve) || ve.Code != loa.EInvalid || ve.Fields[0].Field != c.field {
			t.Errorf("want %s named, got %v", c.field, err)
		}
	}
	d := draft()
	d.SendAt = r.now.Add(broadcast.MaxSendAhead)
	if _, err := r.svc.Create(context.Background(), submitter, d); err != nil {
		t.Errorf("send_at at the bound: %v", err)
	}
	// Area topics are kept, and the plan sends one topic message per area
	// with the broadcast's id as its collapse key.
	d = draft()
	d.Audience.AreaTopics = true
	b := r.submitted(t, submitter, d)
	if _, err := r.svc.Approve(context.Background(), approver, b.ID); err != nil {
		t.Fatal(err)
	}
	if p := r.pub.plans(t); len(p) != 1 || !p[0].AreaTopics || p[0].Collapse != b.ID {
		t.Errorf("plans %+v", p)
	}
	// By SMS alone the texts may be as long as the limits allow (the
	// estimate counts the segments); a push that fits is taken whole.
	d = draft()
	d.Body, d.Channels = strings.Repeat("ệ", 2000), []string{"sms"}
	if _, err := r.svc.Create(context.Background(), submitter, d); err != nil {
		t.Errorf("a long SMS-only broadcast: %v", err)
	}
	d = draft()
	d.Body, d.TitleEN, d.BodyEN = strings.Repeat("Nước lên. ", 100), "Flood", strings.Repeat("Water is rising. ", 50)
	if _, err := r.svc.Create(context.Background(), submitter, d); err != nil {
		t.Errorf("a push that fits: %v", err)
	}
	// Decomposed Vietnamese is stored NFC; channels default to push.
	d = draft()
	d.Title, d.Channels = "Ca\u0309nh ba\u0301o", nil
	b, err := r.svc.Create(context.Background(), submitter, d)
	if err != nil || b.Title != "Cảnh báo" || len(b.Channels) != 1 || b.Channels[0] != "push" {
		t.Errorf("normalised: %q %v %v", b.Title, b.Channels, err)
	}
}

// TestEstimate: the audience size counts the area with its children; SMS
// adds the segment estimate.
func TestEstimate(t *testing.T) {
	r := newRig(t, testenv.OpenStore(t, testenv.SQLiteURL(t)))
	ctx := context.Background()
	d := draft()
	b, err := r.svc.Create(ctx, submitter, d)
	if err != nil {
		t.Fatal(err)
	}
	e, err := r.svc.Estimate(ctx, submitter, b)
	if err != nil || e.Devices != 30 || e.Phones != 30 || e.SMS != nil {
		t.Fatalf("push: %+v %v", e, err)
	}
	d.Channels = []string{"push", "sms"}
	d.Audience = broadcast.Audience{Areas: []string{"48"}}
	// 71 Vietnamese characters: UCS-2, two segments of 67.
	d.Body = "Thông báo " + string([]rune("ááááááááááááááááááááááááááááááááááááááááááááááááááááááááááááá"))
	b, err = r.svc.Create(ctx, submitter, d)
	if err != nil {
		t.Fatal(err)
	}
	e, err = r.svc.Estimate(ctx, submitter, b)
	if err != nil || e.Devices != 7 || e.Phones != 7 || e.SMS == nil || e.SMS.Encoding != "UCS-2" || e.SMS.SegmentsPerMessage != 2 || e.SMS.TotalSegments != 14 {
		t.Fatalf("sms: %+v %+v %v", e, e.SMS, err)
	}
	d.Body = "Lich cat dien ngay mai" // GSM-7, one segment
	b, _ = r.svc.Create(ctx, submitter, d)
	if e, _ = r.svc.Estimate(ctx, submitter, b); e.SMS == nil || e.SMS.Encoding != "GSM-7" || e.SMS.TotalSegments != 7 {
		t.Fatalf("gsm: %+v", e.SMS)
	}
}

// TestApprovalWhileKafkaIsDown: an approval whose plan cannot be published
// is kept, as a scheduled item due at once that the scheduler publishes.
func TestApprovalWhileKafkaIsDown(t *testing.T) {
	r := newRig(t, testenv.OpenStore(t, testenv.SQLiteURL(t)))
	ctx := context.Background()
	b := r.submitted(t, submitter, draft())
	r.pub.Fail(true)
	got, err := r.svc.Approve(ctx, approver, b.ID)
	if err != nil || got.Status != "scheduled" {
		t.Fatalf("approve: %+v %v", got, err)
	}
	var items []producer.OutboxItem
	if _, err := r.store.PublishDue(ctx, r.now, 10, func(its []producer.OutboxItem) (int, error) {
		items = its
		return len(its), nil
	}); err != nil || len(items) != 1 || items[0].Subject != b.ID {
		t.Fatalf("due now: %+v %v", items, err)
	}
}

// TestCancelNeedsTheApprovalUnit: an approver cancels as they approve,
// with the role in the approval unit; the role in another unit cancels
// nothing (it used to cancel any agency's broadcast).
func TestCancelNeedsTheApprovalUnit(t *testing.T) {
	r := newRig(t, testenv.OpenStore(t, testenv.SQLiteURL(t)))
	ctx := context.Background()
	b, err := r.svc.Create(ctx, submitter, draft())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Submit(ctx, submitter, b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Cancel(ctx, approverElsewhere, b.ID, "hoãn"); !errors.Is(err, broadcast.ErrForbidden) {
		t.Fatalf("cancel by an approver of another unit: %v, want ErrForbidden", err)
	}
	if got, err := r.svc.Cancel(ctx, approver, b.ID, "hoãn"); err != nil || got.Status != string(broadcast.StatusCancelled) {
		t.Fatalf("cancel by an approver of the approval unit: %v %v", got.Status, err)
	}
}
