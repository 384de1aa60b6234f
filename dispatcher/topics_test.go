package dispatcher

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

// TestAreaTopicSends: a plan asking for area topics sends its push as one
// topic message per unit of its areas (the area and every unit below it)
// and none per device, while its SMS still goes to each phone; a direct
// notification to a topic is one push to "/topics/<name>".
func TestAreaTopicSends(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		ctx := context.Background()
		if err := r.store.UpsertAreas(ctx, []accounts.Area{{Code: "49", Name: "Quảng Nam", Level: "province"},
			{Code: "503", Name: "Hội An", Parent: "49", Level: "district"},
			{Code: "20497", Name: "Minh An", Parent: "503", Level: "commune"},
			{Code: "20500", Name: "Cẩm Phô", Parent: "503", Level: "commune"},
			{Code: "502", Name: "Tam Kỳ", Parent: "49", Level: "district"}}); err != nil {
			t.Fatal(err)
		}
		if err := r.store.SeedAudience(ctx, "tp", 20, 0, "smart", "20497", time.Now()); err != nil {
			t.Fatal(err)
		}
		r.publishPlan(t, "bc-topics", topics.LaneBulk, producer.Plan{Audience: producer.Audience{Areas: []string{"503"}},
			Channels: []string{"push", "sms"}, Title: "Thông báo", Body: "Lịch tiêm chủng", Priority: "normal", AreaTopics: true})
		now := time.Now()
		env, err := producer.NewEnvelope("ev-topic", producer.KindDirect, topics.LaneDirect, "disaster", now, now.Add(time.Hour), "",
			producer.Direct{NotificationID: "n-topic", To: producer.Recipient{Type: producer.ToTopic, Value: "disaster"},
				Title: "T", Body: "B", Channels: []string{"push"}, Priority: "normal"})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.pub.Publish(ctx, env); err != nil {
			t.Fatal(err)
		}
		r.start(t, nil)
		// 3 topics (503, 20497, 20500), 20 phones, 1 direct topic push.
		if err := r.outbox.WaitTotal(waitCtx(t), 24); err != nil {
			t.Fatalf("delivered %d: %v", r.outbox.Total(), err)
		}
		var push, sms []string
		for _, e := range r.outbox.Entries("bc-topics", 0) {
			if e.Channel == "push" {
				push = append(push, e.To)
			} else {
				sms = append(sms, e.To)
			}
		}
		slices.Sort(push)
		if !slices.Equal(push, []string{"/topics/area-20497", "/topics/area-20500", "/topics/area-503"}) || len(sms) != 20 {
			t.Errorf("push to %v and %d phones; want the three area topics and 20 phones", push, len(sms))
		}
		if d := r.outbox.Entries("n-topic", 0); len(d) != 1 || d[0].To != "/topics/disaster" {
			t.Errorf("direct topic notification: %+v", d)
		}
	})
}
