package alert_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/internal/areas"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/alert"
	"github.com/loa-hub/loa/producer/alert/cap"
	"github.com/loa-hub/loa/producer/producertest"
)

// recorder records what is published (see producertest.Recorder).
type recorder struct{ producertest.Recorder }

func (r *recorder) plans(t *testing.T) []producer.Plan {
	t.Helper()
	var out []producer.Plan
	for _, e := range r.Envelopes() {
		if e.Kind != producer.KindPlan || e.Lane != topics.LaneAlert {
			t.Fatalf("published %s on %s, want a plan on the alert lane", e.Kind, e.Lane)
		}
		var p producer.Plan
		if err := json.Unmarshal(e.Payload, &p); err != nil {
			t.Fatal(err)
		}
		if p.NotificationID != e.ID {
			t.Errorf("plan %s in envelope %s", p.NotificationID, e.ID)
		}
		out = append(out, p)
	}
	return out
}

func (r *recorder) env(i int) producer.Envelope { return r.Envelopes()[i] }

// testNow is when the test alerts are received: before the golden
// documents expire.
var testNow = time.Date(2026, 11, 20, 9, 0, 0, 0, time.FixedZone("ICT", 7*3600))

type rig struct {
	svc   *alert.Service
	pub   *recorder
	store *sqlstore.DB
}

var (
	issuer   = alert.Issuer{ID: "key-pctt", Actor: "apikey:key-pctt", Scopes: []string{"alerts:issue"}, Identity: "apikey:key-pctt", Areas: []string{"49", "01"}}
	writer   = alert.Issuer{ID: "key-agency", Actor: "apikey:key-agency", Scopes: []string{"alerts:write"}, Identity: "apikey:key-agency"}
	official = alert.Approver{ID: "session:acc-approver", Actor: "acc-approver"}
)

// testSenders: the pre-authorised key relays every authority's feed (the
// golden documents come from several senders); the agency's key speaks
// for PCTT.
var testSenders = map[string][]string{issuer.Identity: {"*"}, writer.Identity: {"pctt@quangnam.gov.vn"}}

// seedAreas adds Quảng Nam's sample units with centroids, and Hà Nội far
// away.
func seedAreas(t *testing.T, store *sqlstore.DB) {
	t.Helper()
	ctx := context.Background()
	if err := store.UpsertAreas(ctx, []accounts.Area{
		{Code: "49", Name: "Quảng Nam", Level: "province"},
		{Code: "20194", Name: "Hội An", Parent: "49", Level: "commune"},
		{Code: "20197", Name: "Đại Lộc", Parent: "49", Level: "commune"},
		{Code: "20227", Name: "Tam Kỳ", Parent: "49", Level: "commune"},
		{Code: "01", Name: "Hà Nội", Level: "province"},
	}); err != nil {
		t.Fatal(err)
	}
	for code, ll := range map[string][2]float64{"49": {15.5394, 108.0191}, "20194": {15.88, 108.33}, "20197": {15.86, 108.05}, "20227": {15.57, 108.47}, "01": {21.03, 105.85}} {
		if _, err := store.SQL().ExecContext(ctx, `UPDATE areas SET lat = $1, lon = $2 WHERE code = $3`, ll[0], ll[1], code); err != nil {
			t.Fatal(err)
		}
	}
}

func newRig(t *testing.T, change ...func(*alert.Config)) *rig {
	t.Helper()
	store := testenv.OpenStore(t, testenv.SQLiteURL(t))
	seedAreas(t, store)
	pub := &recorder{}
	cfg := alert.DefaultConfig()
	cfg.Senders = testSenders
	cfg.Now = func() time.Time { return testNow }
	for _, f := range change {
		f(&cfg)
	}
	svc, err := alert.New(cfg, store, pub, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return &rig{svc: svc, pub: pub, store: store}
}

func (r *rig) post(t *testing.T, iss alert.Issuer, file string) (alert.Result, error) {
	t.Helper()
	f, err := os.Open("cap/testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a, err := r.svc.ParseCAP(context.Background(), f)
	if err != nil {
		return alert.Result{}, err
	}
	return r.svc.Submit(context.Background(), iss, alert.Input{Alert: a})
}

func (r *rig) mustPost(t *testing.T, iss alert.Issuer, file string) alert.StoredAlert {
	t.Helper()
	res, err := r.post(t, iss, file)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return res.Alert
}

func TestPreauthorisedAlertIsPlannedOnTheAlertLane(t *testing.T) {
	r := newRig(t)
	st := r.mustPost(t, issuer, "flood_vi_en.xml")
	if st.Status != alert.StatusSentPreauthorised {
		t.Errorf("status %s", st.Status)
	}
	plans := r.pub.plans(t)
	if len(plans) != 1 {
		t.Fatalf("%d plans", len(plans))
	}
	p, env := plans[0], r.pub.env(0)
	if p.NotificationID != st.ID || env.Key != st.ID {
		t.Errorf("plan %s key %s, want the alert id %s", p.NotificationID, env.Key, st.ID)
	}
	if want := []string{"20194", "20197", "20227"}; !slices.Equal(p.Audience.Areas, want) {
		t.Errorf("areas %v, want %v", p.Audience.Areas, want)
	}
	// Severe: high priority, push only (SMS is for Extreme by default).
	if p.Priority != "high" || !slices.Equal(p.Channels, []string{"push"}) || p.App != "smart" {
		t.Errorf("priority %s channels %v app %s", p.Priority, p.Channels, p.App)
	}
	// The earliest expiry of the info blocks is the TTL.
	if want := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC); !env.ExpiresAt.Equal(want) {
		t.Errorf("expires %v, want %v", env.ExpiresAt, want)
	}
	if !strings.Contains(p.Title, "lũ") && !strings.Contains(p.Title, "Lũ") {
		t.Errorf("title %q is not the Vietnamese headline", p.Title)
	}
	got, err := r.svc.Get(context.Background(), st.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.PublishedAt.IsZero() || len(got.Doc.Infos) != 2 {
		t.Errorf("published %v, %d info blocks kept", got.PublishedAt, len(got.Doc.Infos))
	}
}

func TestRepostIsIdempotent(t *testing.T) {
	r := newRig(t)
	first := r.mustPost(t, issuer, "flood_vi_en.xml")
	res, err := r.post(t, issuer, "flood_vi_en.xml")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Replayed || res.Alert.ID != first.ID {
		t.Errorf("repost: replayed %v id %s, want %s", res.Replayed, res.Alert.ID, first.ID)
	}
	if n := len(r.pub.plans(t)); n != 1 {
		t.Errorf("%d plans published, want 1", n)
	}
}

func TestPublishFailureIsRetriedByRepost(t *testing.T) {
	r := newRig(t)
	r.pub.Fail(true)
	res, err := r.post(t, issuer, "flood_vi_en.xml")
	if !errors.Is(err, alert.ErrPublish) || res.Alert.ID == "" {
		t.Fatalf("err %v, id %q", err, res.Alert.ID)
	}
	r.pub.Fail(false)
	again := r.mustPost(t, issuer, "flood_vi_en.xml")
	if again.ID != res.Alert.ID || len(r.pub.plans(t)) != 1 {
		t.Errorf("repost after failure: id %s (want %s), %d plans", again.ID, res.Alert.ID, len(r.pub.plans(t)))
	}
}

func TestUpdateAndCancelReachTheSameAudience(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	orig := r.mustPost(t, issuer, "flood_vi_en.xml")
	upd := r.mustPost(t, issuer, "flood_update.xml")
	if upd.ID == orig.ID || !slices.Equal(upd.RefIDs, []string{orig.ID}) {
		t.Fatalf("update %s refs %v", upd.ID, upd.RefIDs)
	}
	plans := r.pub.plans(t)
	if len(plans) != 2 {
		t.Fatalf("%d plans", len(plans))
	}
	u := plans[1]
	if u.NotificationID != upd.ID {
		t.Errorf("update planned as %s", u.NotificationID)
	}
	for _, code := range plans[0].Audience.Areas {
		if !slices.Contains(u.Audience.Areas, code) {
			t.Errorf("update audience %v lacks %s of the original", u.Audience.Areas, code)
		}
	}
	// Extreme: SMS too.
	if !strings.HasPrefix(u.Title, alert.UpdatePrefix) || !slices.Equal(u.Channels, []string{"push", "sms"}) || u.Data["references"] != orig.ID {
		t.Errorf("update title %q channels %v data %v", u.Title, u.Channels, u.Data)
	}

	cancel := r.mustPost(t, issuer, "flood_cancel.xml")
	plans = r.pub.plans(t)
	if len(plans) != 3 {
		t.Fatalf("%d plans", len(plans))
	}
	c := plans[2]
	if c.NotificationID != cancel.ID || !strings.HasPrefix(c.Title, alert.CancelPrefix) || !strings.HasPrefix(c.Body, alert.CancelPrefix) {
		t.Errorf("cancel plan %s title %q body %q", c.NotificationID, c.Title, c.Body)
	}
	if !slices.Equal(c.Audience.Areas, plans[0].Audience.Areas) || c.Priority != "high" {
		t.Errorf("cancel audience %v priority %s, want %v high", c.Audience.Areas, c.Priority, plans[0].Audience.Areas)
	}
	if !r.pub.env(2).ExpiresAt.After(testNow) {
		t.Errorf("cancel expires %v", r.pub.env(2).ExpiresAt)
	}
	// The original and its update are stopped where not yet planned.
	for _, id := range []string{orig.ID, upd.ID} {
		for _, ch := range []string{"push"} {
			p, err := r.store.Plan(ctx, id, ch, testNow)
			if err != nil || !p.Cancelled {
				t.Errorf("plan %s/%s cancelled=%v err=%v", id, ch, p.Cancelled, err)
			}
		}
	}
	if p, _ := r.store.Plan(ctx, cancel.ID, "push", testNow); p.Cancelled {
		t.Error("the cancellation notice itself is cancelled")
	}
	d, err := r.svc.Get(ctx, orig.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Updates, []string{upd.ID}) || !slices.Equal(d.CancelledBy, []string{cancel.ID}) {
		t.Errorf("links: updates %v cancelled_by %v", d.Updates, d.CancelledBy)
	}
}

func TestReferenceToUnknownAlertIsStoredAndLinkedLater(t *testing.T) {
	r := newRig(t)
	upd := r.mustPost(t, issuer, "flood_update.xml")
	if upd.Status != alert.StatusSentPreauthorised || len(upd.PendingRefs) != 1 || upd.ChainKey != "VN-49-PCTT-2026-0147" {
		t.Fatalf("update alone: status %s, pending %v, chain %q", upd.Status, upd.PendingRefs, upd.ChainKey)
	}
	if n := len(r.pub.plans(t)); n != 1 {
		t.Fatalf("%d plans, want the update sent on its own", n)
	}
	orig := r.mustPost(t, issuer, "flood_vi_en.xml")
	if orig.Status != alert.StatusSuperseded {
		t.Errorf("original after its update: status %s, want %s", orig.Status, alert.StatusSuperseded)
	}
	if n := len(r.pub.plans(t)); n != 1 {
		t.Errorf("%d plans: the superseded original was sent", n)
	}
	d, err := r.svc.Get(context.Background(), orig.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Updates, []string{upd.ID}) {
		t.Errorf("original's updates %v, want [%s]", d.Updates, upd.ID)
	}
	u, err := r.svc.Get(context.Background(), upd.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(u.RefIDs, []string{orig.ID}) || len(u.PendingRefs) != 0 {
		t.Errorf("update refs %v pending %v", u.RefIDs, u.PendingRefs)
	}
}

// TestOnlyAStandingReferenceReplacesALaterAlert: an Update awaiting
// approval and a rejected Cancel arrive before the alert they refer to.
// Neither stands, so the alert is sent when it arrives, not stored as
// superseded or cancelled; the Update, approved afterwards, goes out as
// the Update of that alert.
func TestOnlyAStandingReferenceReplacesALaterAlert(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	upd := r.mustPost(t, writer, "flood_update.xml")
	cancel := r.mustPost(t, writer, "flood_cancel.xml")
	if upd.Status != alert.StatusPendingApproval || cancel.Status != alert.StatusPendingApproval {
		t.Fatalf("update %s, cancel %s: want both pending", upd.Status, cancel.Status)
	}
	if _, err := r.svc.Reject(ctx, cancel.ID, official, "nhầm cảnh báo"); err != nil {
		t.Fatal(err)
	}
	orig := r.mustPost(t, issuer, "flood_vi_en.xml")
	if orig.Status != alert.StatusSentPreauthorised {
		t.Fatalf("the alert after a pending update and a rejected cancel: %s, want %s", orig.Status, alert.StatusSentPreauthorised)
	}
	plans := r.pub.plans(t)
	if len(plans) != 1 || plans[0].NotificationID != orig.ID {
		t.Fatalf("%d plans, want the alert's", len(plans))
	}
	got, err := r.svc.Approve(ctx, upd.ID, official)
	if err != nil {
		t.Fatal(err)
	}
	plans = r.pub.plans(t)
	if got.Status != alert.StatusSentApproved || !slices.Equal(got.RefIDs, []string{orig.ID}) || len(plans) != 2 ||
		plans[1].NotificationID != upd.ID || plans[1].Collapse != orig.ChainKey || plans[1].Data["references"] != orig.ID {
		t.Errorf("approved update: %s refs %v, %d plans; want it sent as the update of %s", got.Status, got.RefIDs, len(plans), orig.ID)
	}
}

// TestSenderIsThePostersOwn: a CAP document's <sender> is who the alert
// is from, so a key posts only as the senders configured for it and as
// its own Loa identity. The agency's key posting as the weather service,
// and a relay key posting as another key's Loa identity, are refused
// naming alert/sender; nothing is stored or sent, and the refused sender's
// chain is untouched: its own Cancel, posted by a key that may, still
// finds the alert it cancels.
func TestSenderIsThePostersOwn(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	forged := func(t *testing.T, iss alert.Issuer, file, sender string) {
		t.Helper()
		doc, err := os.ReadFile("cap/testdata/" + file)
		if err != nil {
			t.Fatal(err)
		}
		doc = []byte(strings.Replace(string(doc), "<sender>pctt@quangnam.gov.vn</sender>", "<sender>"+sender+"</sender>", 1))
		a, err := r.svc.ParseCAP(ctx, strings.NewReader(string(doc)))
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.svc.Submit(ctx, iss, alert.Input{Alert: a})
		var le *loa.Error
		if !errors.As(err, &le) || le.Code != loa.EForbidden || le.Field != "alert/sender" || !errors.Is(err, alert.ErrSenderNotAllowed) {
			t.Errorf("%s posting as %s: %v, want 403 naming alert/sender", iss.Identity, sender, err)
		}
	}
	orig := r.mustPost(t, issuer, "flood_vi_en.xml")
	forged(t, writer, "flood_cancel.xml", "kttv@quangnam.gov.vn")
	forged(t, writer, "flood_vi_en.xml", "loa:key-agency-2")
	forged(t, issuer, "flood_vi_en.xml", "loa:key-agency") // "*" is not another key's identity
	forged(t, alert.Issuer{ID: "key-new", Actor: "apikey:key-new", Scopes: []string{"alerts:issue"}, Identity: "apikey:key-new"},
		"flood_cancel.xml", "pctt@quangnam.gov.vn") // no senders configured
	if list, err := r.svc.List(ctx, "", "", 10); err != nil || len(list) != 1 {
		t.Fatalf("%d alerts stored, want only the original: %v", len(list), err)
	}
	if n := len(r.pub.plans(t)); n != 1 {
		t.Fatalf("%d plans, want only the original's", n)
	}
	c := r.mustPost(t, writer, "flood_cancel.xml")
	if c.Status != alert.StatusPendingApproval || !slices.Equal(c.RefIDs, []string{orig.ID}) {
		t.Errorf("the agency's own cancel: %s refs %v", c.Status, c.RefIDs)
	}
}

// TestAlertsBelowTheBypassSeverityWaitForQuietHours: an alert whose
// every info block is below the bypass severity (Severe by default) is
// planned to wait for its subscribers' quiet hours, as a bulk notice is;
// a Severe or Extreme one is not, and neither is an Update or Cancel of
// it, whatever its own severity: the all-clear of an Extreme warning does
// not wait for the morning. The Cancel of a Minor alert waits as the
// alert did, and drops what is still held of the chain. With no bypass
// severity every alert goes at once.
func TestAlertsBelowTheBypassSeverityWaitForQuietHours(t *testing.T) {
	ctx := context.Background()
	exp := testNow.Add(6 * time.Hour)
	for _, c := range []struct {
		bypass cap.Severity
		want   map[string]bool // severity → the alert, its Update (Minor) and its Cancel wait for quiet hours
	}{
		{cap.SeveritySevere, map[string]bool{"Minor": true, "Moderate": true, "Severe": false, "Extreme": false}},
		{"", map[string]bool{"Minor": false, "Extreme": false}},
	} {
		r := newRig(t, func(cfg *alert.Config) { cfg.QuietBypass = c.bypass })
		for sev, wait := range c.want {
			post := func(j alert.JSONAlert) producer.Plan {
				t.Helper()
				in, err := r.svc.FromJSON(ctx, j, "loa:key-pctt")
				if err != nil {
					t.Fatal(err)
				}
				res, err := r.svc.Submit(ctx, issuer, in)
				if err != nil {
					t.Fatal(err)
				}
				plans := r.pub.plans(t)
				if p := plans[len(plans)-1]; p.NotificationID == res.Alert.ID {
					return p
				}
				t.Fatalf("%s: no plan published", res.Alert.ID)
				return producer.Plan{}
			}
			id := "q-" + sev
			p := post(alert.JSONAlert{Identifier: id, MsgType: "alert", Severity: sev, Urgency: "Expected",
				Event: "Mưa lớn", Headline: "Mưa lớn", Description: "Mưa 100 mm", Expires: &exp, Areas: []string{"20194"}})
			// A batch of it held for quiet hours, as the planner holds it.
			env, err := producer.NewEnvelope("held-"+id, producer.KindFanout, topics.LaneAlert, id, testNow, exp, "", producer.Fanout{NotificationID: p.NotificationID})
			if err != nil {
				t.Fatal(err)
			}
			it, err := producer.NewOutboxItem("held-"+id, "held:"+p.Collapse, testNow.Add(8*time.Hour), env)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.store.Schedule(ctx, it, testNow); err != nil {
				t.Fatal(err)
			}
			u := post(alert.JSONAlert{MsgType: "update", References: []string{id}, Severity: "Minor", Urgency: "Expected",
				Event: "Mưa lớn", Headline: "Mưa giảm", Description: "Mưa 30 mm", Expires: &exp})
			x := post(alert.JSONAlert{MsgType: "cancel", References: []string{id}})
			if p.QuietHours != wait || u.QuietHours != wait || x.QuietHours != wait {
				t.Errorf("bypass %q, a %s alert: the alert, its Minor update and its cancel wait for quiet hours %v %v %v, want %v",
					c.bypass, sev, p.QuietHours, u.QuietHours, x.QuietHours, wait)
			}
			if st, err := r.store.ScheduledStatus(ctx, it.ID); err != nil || st != sqlstore.ItemCancelled {
				t.Errorf("bypass %q, a %s alert: its held batch is %s after the cancel (%v), want cancelled", c.bypass, sev, st, err)
			}
		}
	}
}

func TestPendingAlertWaitsForAnotherApprover(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	st := r.mustPost(t, writer, "flood_vi_en.xml")
	if st.Status != alert.StatusPendingApproval || len(r.pub.plans(t)) != 0 {
		t.Fatalf("status %s, %d plans", st.Status, len(r.pub.plans(t)))
	}
	if _, err := r.svc.Approve(ctx, st.ID, alert.Approver{ID: writer.ID}); !errors.Is(err, alert.ErrSelfDecision) {
		t.Errorf("issuer approving: %v", err)
	}
	if _, err := r.svc.Approve(ctx, "nope", official); !errors.Is(err, alert.ErrNotFound) {
		t.Errorf("unknown: %v", err)
	}
	if len(r.pub.plans(t)) != 0 {
		t.Fatal("published before approval")
	}
	got, err := r.svc.Approve(ctx, st.ID, official)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != alert.StatusSentApproved || got.DecidedBy != official.ID || len(r.pub.plans(t)) != 1 {
		t.Errorf("approved: %s by %s, %d plans", got.Status, got.DecidedBy, len(r.pub.plans(t)))
	}
	if _, err := r.svc.Reject(ctx, st.ID, official, "late"); !errors.Is(err, alert.ErrNotPending) {
		t.Errorf("reject after approval: %v", err)
	}
	log, err := r.store.AuditLog(ctx, st.ID, 10)
	var actions []string
	for _, e := range log {
		actions = append(actions, e.Action+" by "+e.Actor)
	}
	slices.Sort(actions)
	if err != nil || !slices.Equal(actions, []string{"alert.approve by acc-approver", "alert.issue by apikey:key-agency"}) {
		t.Errorf("audit %v %v", log, err)
	}
}

func TestRejectedAlertIsNeverSent(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	st := r.mustPost(t, writer, "flood_vi_en.xml")
	got, err := r.svc.Reject(ctx, st.ID, official, "không đúng văn bản")
	if err != nil || got.Status != alert.StatusRejected || got.Reason == "" {
		t.Fatalf("reject: %v %+v", err, got)
	}
	if _, err := r.svc.Approve(ctx, st.ID, official); !errors.Is(err, alert.ErrNotPending) {
		t.Errorf("approve after reject: %v", err)
	}
	// Reposting it sends nothing either.
	r.mustPost(t, writer, "flood_vi_en.xml")
	if n := len(r.pub.plans(t)); n != 0 {
		t.Errorf("%d plans", n)
	}
	list, err := r.svc.List(ctx, alert.StatusRejected, "", 10)
	if err != nil || len(list) != 1 || list[0].ID != st.ID {
		t.Errorf("list rejected: %v %v", list, err)
	}
}

func TestPolicyIsConfiguration(t *testing.T) {
	store := testenv.OpenStore(t, testenv.SQLiteURL(t))
	seedAreas(t, store)
	pub := &recorder{}
	cfg := alert.DefaultConfig()
	cfg.Senders = testSenders
	cfg.Now, cfg.PreauthorisedScopes, cfg.SMSSeverities = func() time.Time { return testNow }, []string{"alerts:write"}, []cap.Severity{cap.SeveritySevere}
	svc, err := alert.New(cfg, store, pub, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{svc: svc, pub: pub, store: store}
	// Pre-authorised now, the agency's key is bound to its areas.
	agency := writer
	agency.Areas = []string{"49"}
	st := r.mustPost(t, agency, "flood_vi_en.xml")
	if st.Status != alert.StatusSentPreauthorised || !slices.Equal(st.Channels, []string{"push", "sms"}) {
		t.Errorf("status %s channels %v", st.Status, st.Channels)
	}
	cfg.SMSSeverities = []cap.Severity{"Awful"}
	if _, err := alert.New(cfg, store, pub, slog.Default()); err == nil {
		t.Error("a bad severity is accepted")
	}
}

func TestShapesSelectAreasByCentroid(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []string
	}{
		{"reservoir_polygon.xml", []string{"20197"}},
		// The province's centroid lies in the storm too, but a shape
		// selects only units without units below them.
		{"storm_circle.xml", []string{"20194", "20197", "20227"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			r := newRig(t)
			st := r.mustPost(t, issuer, tc.file)
			got := slices.Sorted(slices.Values(st.AreaCodes))
			if !slices.Equal(got, tc.want) {
				t.Errorf("areas %v, want %v", got, tc.want)
			}
		})
	}
}

func TestJSONAlert(t *testing.T) {
	ctx := context.Background()
	exp := testNow.Add(6 * time.Hour)
	good := func() alert.JSONAlert {
		return alert.JSONAlert{MsgType: "alert", Severity: "Extreme", Urgency: "Immediate", Event: "Lũ", Headline: "Lũ khẩn cấp",
			Description: "Nước lên nhanh", Expires: &exp, Areas: []string{"20194"}}
	}
	r := newRig(t)
	bad := []struct {
		field string
		edit  func(*alert.JSONAlert)
	}{
		{"msg_type", func(j *alert.JSONAlert) { j.MsgType = "ack" }},
		{"severity", func(j *alert.JSONAlert) { j.Severity = "" }},
		{"urgency", func(j *alert.JSONAlert) { j.Urgency = "soon" }},
		{"headline", func(j *alert.JSONAlert) { j.Headline = " " }},
		{"expires", func(j *alert.JSONAlert) { j.Expires = nil }},
		{"expires", func(j *alert.JSONAlert) { past := testNow.Add(-time.Hour); j.Expires = &past }},
		{"areas[1]", func(j *alert.JSONAlert) { j.Areas = []string{"20194", "99999"} }},
		{"areas", func(j *alert.JSONAlert) { j.Areas = nil }},
		{"references", func(j *alert.JSONAlert) { j.MsgType = "update" }},
		{"channels[0]", func(j *alert.JSONAlert) { j.Channels = []string{"email"} }},
		{"polygon", func(j *alert.JSONAlert) { j.Polygon = [][2]float64{{1, 2}} }},
		{"polygon", func(j *alert.JSONAlert) {
			j.Polygon = make([][2]float64, cap.MaxPolygonPoints)
			for i := range j.Polygon {
				j.Polygon[i] = [2]float64{15.8 + float64(i%2)/10, 108.2 + float64(i%3)/10}
			}
		}},
		{"circle.radius_km", func(j *alert.JSONAlert) { j.Circle = &alert.JSONCircle{Lat: 16, Lon: 108} }},
		// Each is looked up in the store: bounded per alert.
		{"references", func(j *alert.JSONAlert) {
			j.MsgType, j.References = "update", slices.Repeat([]string{"PCTT-1"}, cap.MaxReferences+1)
		}},
		{"areas", func(j *alert.JSONAlert) { j.Areas = slices.Repeat([]string{"20194"}, cap.MaxAreaCodes+1) }},
	}
	for _, tc := range bad {
		j := good()
		tc.edit(&j)
		_, err := r.svc.FromJSON(ctx, j, "loa:key-pctt")
		var ve *loa.Error
		if !errors.As(err, &ve) || ve.Field != tc.field {
			t.Errorf("%s: err %v", tc.field, err)
		}
	}
	j := good()
	j.MsgType = "update"
	j.References = []string{"nope"}
	in, err := r.svc.FromJSON(ctx, j, "loa:key-pctt")
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.svc.Submit(ctx, issuer, in)
	var ve *loa.Error
	if !errors.As(err, &ve) || ve.Field != "references[0]" {
		t.Errorf("unknown reference: %v", err)
	}

	// A circle and explicit channels.
	j = good()
	j.Identifier, j.Areas, j.Circle, j.Channels = "bao-1", nil, &alert.JSONCircle{Lat: 15.86, Lon: 108.05, RadiusKm: 5}, []string{"sms"}
	in, err = r.svc.FromJSON(ctx, j, "loa:key-pctt")
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.svc.Submit(ctx, issuer, in)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Alert.AreaCodes, []string{"20197"}) || !slices.Equal(res.Alert.Channels, []string{"sms"}) {
		t.Errorf("areas %v channels %v", res.Alert.AreaCodes, res.Alert.Channels)
	}
	// A cancel by id, with nothing but the reference.
	in, err = r.svc.FromJSON(ctx, alert.JSONAlert{MsgType: "cancel", References: []string{res.Alert.ID}}, "loa:key-pctt")
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.svc.Submit(ctx, issuer, in)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Alert.AreaCodes, []string{"20197"}) || !slices.Equal(c.Alert.Channels, []string{"sms"}) || !c.Alert.ExpiresAt.Equal(exp) {
		t.Errorf("cancel: areas %v channels %v expires %v", c.Alert.AreaCodes, c.Alert.Channels, c.Alert.ExpiresAt)
	}
	// The same identifier again: the same alert.
	j.Identifier = "bao-1"
	in, _ = r.svc.FromJSON(ctx, j, "loa:key-pctt")
	again, err := r.svc.Submit(ctx, issuer, in)
	if err != nil || !again.Replayed || again.Alert.ID != res.Alert.ID {
		t.Errorf("repost: %v %+v", err, again)
	}
}

// countingStore counts the store's look-ups of areas and addresses, and
// holds leaves more units than the rig's.
type countingStore struct {
	alert.Store
	leaves                  []areas.Centroid
	areaReads, addressReads atomic.Int64
	addressesRead           atomic.Int64
}

func (c *countingStore) AreaExists(ctx context.Context, code string) (bool, error) {
	c.areaReads.Add(1)
	return c.Store.AreaExists(ctx, code)
}

func (c *countingStore) ExistingAreas(ctx context.Context, codes []string) ([]string, error) {
	c.areaReads.Add(1)
	return c.Store.ExistingAreas(ctx, codes)
}

func (c *countingStore) LeafAreaCentroids(ctx context.Context) ([]areas.Centroid, error) {
	if c.leaves != nil {
		return c.leaves, nil
	}
	return c.Store.LeafAreaCentroids(ctx)
}

func (c *countingStore) AccountsByAddress(ctx context.Context, addrs, phones []string) (map[string]string, error) {
	c.addressReads.Add(1)
	c.addressesRead.Add(int64(len(addrs)))
	return c.Store.AccountsByAddress(ctx, addrs, phones)
}

// TestAnAlertsListsAreBoundedWork: what one post makes Loa do grew with
// the lists it names. A 1 MiB JSON alert naming 100,000 unit codes cost
// 7.4 s of the API's CPU, a query a code; a CAP alert's <addresses> of
// 50,000 names 3.6 s and a query each (a repeated name too); a polygon
// over 10,000 units 0.9 s, merging each unit into the list of those
// already found (a copy of the list each). Now a JSON alert's codes are
// one look-up, a repeated address is looked up once, and the units a
// shape covers are merged once.
func TestAnAlertsListsAreBoundedWork(t *testing.T) {
	store := testenv.OpenStore(t, testenv.SQLiteURL(t))
	seedAreas(t, store)
	cs := &countingStore{Store: store}
	cfg := alert.DefaultConfig()
	cfg.Senders = testSenders
	cfg.Now = func() time.Time { return testNow }
	svc, err := alert.New(cfg, cs, &recorder{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	exp := testNow.Add(6 * time.Hour)
	j := alert.JSONAlert{MsgType: "alert", Severity: "Extreme", Urgency: "Immediate", Event: "Lũ", Headline: "Lũ khẩn cấp",
		Description: "Nước lên nhanh", Expires: &exp, Areas: slices.Repeat([]string{"20194", "20197", "20227"}, cap.MaxAreaCodes/3)}
	in, err := svc.FromJSON(ctx, j, "loa:key-pctt")
	if err != nil {
		t.Fatal(err)
	}
	if n := cs.areaReads.Load(); n != 1 {
		t.Errorf("%d area look-ups for a JSON alert naming %d codes, want 1", n, len(j.Areas))
	}
	res, err := svc.Submit(ctx, issuer, in)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Alert.AreaCodes, []string{"20194", "20197", "20227"}) {
		t.Errorf("areas %v", res.Alert.AreaCodes)
	}

	doc, err := os.ReadFile("cap/testdata/scope_private.xml")
	if err != nil {
		t.Fatal(err)
	}
	a, err := svc.ParseCAP(ctx, strings.NewReader(strings.Replace(string(doc),
		`tran.van.b 0905123456 "không có ai" khong.co.ai@example.vn`, strings.Repeat("tran.van.b 0905123456 ", cap.MaxAddresses/2), 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Submit(ctx, issuer, alert.Input{Alert: a}); err != nil {
		t.Fatal(err)
	}
	if n := cs.addressesRead.Load(); n != 2 {
		t.Errorf("%d addresses looked up for %d naming two, want 2", n, cap.MaxAddresses)
	}

	// A polygon over 10,000 units.
	for i := range 10_000 {
		cs.leaves = append(cs.leaves, areas.Centroid{Code: fmt.Sprintf("9%05d", i), Lat: 15 + float64(i%100)/100, Lon: 108 + float64(i/100)/100})
	}
	j = alert.JSONAlert{Identifier: "poly", MsgType: "alert", Severity: "Extreme", Urgency: "Immediate", Event: "Lũ", Headline: "Lũ khẩn cấp",
		Description: "Nước lên nhanh", Expires: &exp, Polygon: [][2]float64{{14, 107}, {17, 107}, {17, 110}, {14, 110}}}
	if in, err = svc.FromJSON(ctx, j, "loa:"+writer.ID); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res, err = svc.Submit(ctx, writer, in)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Alert.AreaCodes) != 10_000 {
		t.Errorf("the polygon covers %d units, want 10,000", len(res.Alert.AreaCodes))
	}
	// 800 MB when each unit found copied the list of those before it.
	if mb := (after.TotalAlloc - before.TotalAlloc) >> 20; mb > 64 {
		t.Errorf("%d MB allocated to post an alert over 10,000 units, want at most 64", mb)
	}
}

// TestOutboxPublishesWhatFailed: an alert whose publish failed is
// published by the outbox once it is due, once.
func TestOutboxPublishesWhatFailed(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	r.pub.Fail(true)
	res, err := r.post(t, issuer, "flood_vi_en.xml")
	if !errors.Is(err, alert.ErrPublish) {
		t.Fatal(err)
	}
	r.pub.Fail(false)
	ob := producer.NewOutbox(r.store, r.pub, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ob.Prepare(producer.RecordAlert, r.svc.BeforePublish)
	ob.Now = func() time.Time { return testNow.Add(alert.PublishGrace - time.Second) }
	if n, err := ob.Poll(ctx); err != nil || n != 0 {
		t.Fatalf("before the grace: published %d, %v", n, err)
	}
	ob.Now = func() time.Time { return testNow.Add(alert.PublishGrace) }
	for range 3 { // a few more polls: nothing more is published
		if _, err := ob.Poll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(r.pub.plans(t)); n != 1 {
		t.Errorf("%d plans, want 1", n)
	}
	if st, err := r.store.Alert(ctx, res.Alert.ID); err != nil || st.PublishedAt.IsZero() {
		t.Errorf("the alert is not marked published: %+v %v", st, err)
	}
}

// TestExpiredPendingAlertCannotBeApproved: approving it would send
// nothing (the plan expired), so it is refused.
func TestExpiredPendingAlertCannotBeApproved(t *testing.T) {
	store := testenv.OpenStore(t, testenv.SQLiteURL(t))
	seedAreas(t, store)
	pub := &recorder{}
	clock := testNow
	cfg := alert.DefaultConfig()
	cfg.Senders = testSenders
	cfg.Now = func() time.Time { return clock }
	svc, err := alert.New(cfg, store, pub, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{svc: svc, pub: pub, store: store}
	st := r.mustPost(t, writer, "flood_vi_en.xml")
	clock = st.ExpiresAt
	if _, err := svc.Approve(context.Background(), st.ID, official); !errors.Is(err, alert.ErrExpiredPending) {
		t.Errorf("approve: %v", err)
	}
	if _, err := svc.Reject(context.Background(), st.ID, official, "expired"); err != nil {
		t.Errorf("reject: %v", err)
	}
	if len(pub.plans(t)) != 0 {
		t.Error("published")
	}
}

// TestAreaTopicsAlert: a JSON alert asking for area topics is planned as
// topic sends, and so are its Update and Cancel.
func TestAreaTopicsAlert(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	exp := testNow.Add(6 * time.Hour)
	in, err := r.svc.FromJSON(ctx, alert.JSONAlert{Identifier: "tp-1", MsgType: "alert", Severity: "Extreme", Urgency: "Immediate", Event: "Lũ",
		Headline: "Lũ khẩn cấp", Description: "Nước lên nhanh", Expires: &exp, Areas: []string{"49"}, AreaTopics: true}, "loa:key-pctt")
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.svc.Submit(ctx, issuer, in)
	if err != nil || !res.Alert.Audience.AreaTopics {
		t.Fatalf("submit: %v %+v", err, res.Alert.Audience)
	}
	in, err = r.svc.FromJSON(ctx, alert.JSONAlert{MsgType: "cancel", References: []string{"tp-1"}}, "loa:key-pctt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Submit(ctx, issuer, in); err != nil {
		t.Fatal(err)
	}
	plans := r.pub.plans(t)
	if len(plans) != 2 || !plans[0].AreaTopics || !plans[1].AreaTopics || !slices.Equal(plans[1].Audience.Areas, []string{"49"}) {
		t.Errorf("plans %+v", plans)
	}
}

// TestPrivateAlertNamesActiveAccountsOnly: a Private alert's <addresses>
// name active accounts only. A pending registration — which anyone may
// make with someone else's citizen ID, and which reserves nothing — is
// never the account an address names: alone it leaves the address
// unmatched, and beside the active account with the same citizen ID it
// never takes the alert from its owner.
func TestPrivateAlertNamesActiveAccountsOnly(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	for _, a := range []struct{ id, status, citizenID, token string }{
		{"acc-squatter", "pending", "049095000123", "tok-squatter"},
		{"acc-owner", "active", "049095000123", "tok-owner"},
		{"acc-nobody-yet", "pending", "049095000999", "tok-nobody-yet"},
	} {
		if err := r.store.SeedAccountApp(ctx, a.id, "citizen", "", "", "smart", []string{a.token}, testNow); err != nil {
			t.Fatal(err)
		}
		if _, err := r.store.SQL().ExecContext(ctx, `UPDATE accounts SET status = $1, citizen_id = $2 WHERE id = $3`, a.status, a.citizenID, a.id); err != nil {
			t.Fatal(err)
		}
	}
	doc, err := os.ReadFile("cap/testdata/scope_private.xml")
	if err != nil {
		t.Fatal(err)
	}
	a, err := r.svc.ParseCAP(ctx, strings.NewReader(strings.Replace(string(doc),
		`<addresses>tran.van.b 0905123456 "không có ai" khong.co.ai@example.vn</addresses>`, `<addresses>049095000999 049095000123</addresses>`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.svc.Submit(ctx, issuer, alert.Input{Alert: a})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Alert.Audience.Accounts; !slices.Equal(got, []string{"acc-owner"}) {
		t.Errorf("the alert's accounts: %v, want [acc-owner]", got)
	}
	if got := res.Alert.Notes.UnmatchedAddresses; !slices.Equal(got, []string{"049095000999"}) {
		t.Errorf("unmatched addresses: %v, want [049095000999] (only a pending registration has it)", got)
	}
}

// postXML posts a CAP document given as text.
func (r *rig) postXML(t *testing.T, iss alert.Issuer, doc string) alert.StoredAlert {
	t.Helper()
	a, err := r.svc.ParseCAP(context.Background(), strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.svc.Submit(context.Background(), iss, alert.Input{Alert: a})
	if err != nil {
		t.Fatal(err)
	}
	return res.Alert
}

// capCancel is a Cancel of VN-49-PCTT-2026-0147 (flood_vi_en.xml) or of
// VN-49-PCTT-2026-0401 (scope_restricted.xml), with the status and scope
// given and its own info block for Hội An.
func capCancel(identifier, status, scope, ref string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>` + identifier + `</identifier>
  <sender>pctt@quangnam.gov.vn</sender>
  <sent>2026-11-20T08:50:00+07:00</sent>
  <status>` + status + `</status>
  <msgType>Cancel</msgType>
  <scope>` + scope + `</scope>
  <references>pctt@quangnam.gov.vn,` + ref + `</references>
  <info>
    <language>vi-VN</language>
    <category>Met</category>
    <event>Lũ</event>
    <urgency>Past</urgency>
    <severity>Minor</severity>
    <certainty>Observed</certainty>
    <headline>Bản tin hủy</headline>
    <area>
      <areaDesc>Hội An</areaDesc>
      <geocode><valueName>VN-ADMIN</valueName><value>20194</value></geocode>
    </area>
  </info>
</alert>`
}

// TestACancelStaysInItsDistribution: a Cancel reaches only its own
// distribution's audience (as an Update does), so it must act only there
// too. An Exercise Cancel of an Actual warning must not stop the warning's
// delivery or its escalation SMS to those who have not acknowledged it;
// and a Public Cancel of a Restricted alert must not tell the public the
// restricted alert's headline, nor carry its id.
func TestACancelStaysInItsDistribution(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, func(c *alert.Config) { c.Escalation = map[cap.Severity]time.Duration{cap.SeveritySevere: time.Hour} })
	orig := r.mustPost(t, issuer, "flood_vi_en.xml")
	escItem := alert.EscalationID(orig) + "-" + orig.ID
	if st, err := r.store.ScheduledStatus(ctx, escItem); err != nil || st != sqlstore.ItemPending {
		t.Fatalf("the warning's escalation: %q %v", st, err)
	}
	drill := r.postXML(t, issuer, capCancel("VN-49-PCTT-2026-0901", "Exercise", "Public", "VN-49-PCTT-2026-0147,2026-11-20T07:00:00+07:00"))
	if drill.Distribution != alert.DistributionTest || !slices.Equal(drill.RefIDs, []string{orig.ID}) {
		t.Fatalf("drill: distribution %s refs %v", drill.Distribution, drill.RefIDs)
	}
	if p, err := r.store.Plan(ctx, orig.ID, "push", testNow); err != nil || p.Cancelled {
		t.Errorf("an Exercise Cancel stopped the Actual warning's push: cancelled=%v err=%v", p.Cancelled, err)
	}
	if st, err := r.store.ScheduledStatus(ctx, escItem); err != nil || st != sqlstore.ItemPending {
		t.Errorf("an Exercise Cancel touched the Actual warning's escalation: %q %v", st, err)
	}
	if drill.ChainKey == orig.ChainKey {
		t.Errorf("the drill shares the warning's chain %q (its collapse key, acknowledgements and escalation)", drill.ChainKey)
	}

	restricted := r.mustPost(t, issuer, "scope_restricted.xml")
	before := len(r.pub.plans(t))
	public := r.postXML(t, issuer, capCancel("VN-49-PCTT-2026-0902", "Actual", "Public", "VN-49-PCTT-2026-0401,2026-11-20T08:00:00+07:00"))
	if public.Distribution != alert.DistributionPublic || !slices.Equal(public.AreaCodes, []string{"20194"}) {
		t.Fatalf("public cancel: distribution %s areas %v", public.Distribution, public.AreaCodes)
	}
	plans := r.pub.plans(t)[before:]
	if len(plans) != 1 {
		t.Fatalf("%d plans for the public cancel", len(plans))
	}
	p := plans[0]
	for _, s := range append([]string{p.Title, p.Body}, slices.Collect(maps.Values(p.Data))...) {
		if strings.Contains(s, "Cảnh báo lũ tại Hội An") || strings.Contains(s, restricted.ID) || strings.Contains(s, "VN-49-PCTT-2026-0401") {
			t.Errorf("the public cancel's push tells of the restricted alert: title %q body %q data %v", p.Title, p.Body, p.Data)
			break
		}
	}
	if pr, err := r.store.Plan(ctx, restricted.ID, "push", testNow); err != nil || pr.Cancelled {
		t.Errorf("a Public Cancel stopped the Restricted alert: cancelled=%v err=%v", pr.Cancelled, err)
	}
}

// TestACancelStopsAnEscalationOnItsWay: the scheduler may publish a
// chain's escalation SMS ("NHẮC LẠI CẢNH BÁO: …", to the phones that have
// not acknowledged) just as a Cancel of the warning comes: its poll
// claimed the item first, so cancelling the item finds it no longer
// pending. The escalation, on another partition than the Cancel, must
// not then reach those phones after the all-clear: the Cancel stops its
// plan as it stops the warning's.
func TestACancelStopsAnEscalationOnItsWay(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, func(c *alert.Config) { c.Escalation = map[cap.Severity]time.Duration{cap.SeveritySevere: time.Hour} })
	orig := r.mustPost(t, issuer, "flood_vi_en.xml")
	esc := alert.EscalationID(orig)
	n, err := r.store.PublishDue(ctx, testNow.Add(time.Hour), 10, func(items []producer.OutboxItem) (int, error) { return len(items), nil })
	if err != nil || n != 1 {
		t.Fatalf("the scheduler published %d items (%v), want the escalation", n, err)
	}
	cancel := r.postXML(t, issuer, capCancel("VN-49-PCTT-2026-0903", "Actual", "Public", "VN-49-PCTT-2026-0147,2026-11-20T07:00:00+07:00"))
	if cancel.ChainKey != orig.ChainKey {
		t.Fatalf("the Cancel is not in the warning's chain: %q, %q", cancel.ChainKey, orig.ChainKey)
	}
	if c, err := r.store.PlanCancelled(ctx, esc); err != nil || !c {
		t.Errorf("the escalation %s published as the Cancel came is still to be sent after it (cancelled=%v, %v)", esc, c, err)
	}
	if c, err := r.store.PlanCancelled(ctx, cancel.ID); err != nil || c {
		t.Errorf("the Cancel's own plan was stopped (%v, %v)", c, err)
	}
}
