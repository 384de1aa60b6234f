package dispatcher

import (
	"context"
	"testing"
	"time"

	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

// deadTokens reports TokenDead for the listed tokens.
type deadTokens struct {
	channels.Channel
	dead map[string]bool
}

func (d deadTokens) Send(ctx context.Context, m channels.Message) (channels.Result, error) {
	if d.dead[m.To] {
		return channels.Result{}, &channels.Error{Class: channels.TokenDead, Provider: "test", Code: "UNREGISTERED"}
	}
	return d.Channel.Send(ctx, m)
}

// TestFallbackStopsAtTheFirstChannelThatReaches: a code for an official
// goes to the Egov app, and by SMS only when the push cannot reach them.
func TestFallbackStopsAtTheFirstChannelThatReaches(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		ctx := waitCtx(t)
		now := time.Now()
		seed := func(id, phone, app string, tokens ...string) {
			if err := r.store.SeedAccountApp(ctx, id, "official", phone, "", app, tokens, now); err != nil {
				t.Fatal(err)
			}
		}
		seed("with-egov", "84911111111", "egov", "egov-ok")
		seed("smart-only", "84922222222", "smart", "smart-tok")
		seed("dead-egov", "84933333333", "egov", "egov-dead")
		r.chans[channels.Push] = deadTokens{Channel: r.chans[channels.Push], dead: map[string]bool{"egov-dead": true}}
		for _, acc := range []string{"with-egov", "smart-only", "dead-egov"} {
			env, err := producer.NewEnvelope("code-"+acc, producer.KindDirect, topics.LaneOTP, acc, now, now.Add(5*time.Minute), "",
				producer.Direct{NotificationID: "code-" + acc, To: producer.Recipient{Type: producer.ToAccount, Value: acc},
					Title: "Mã xác thực", Body: "123456", Channels: []string{"push", "sms"}, Priority: "high", Fallback: true, App: "egov"})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.pub.Publish(ctx, env); err != nil {
				t.Fatal(err)
			}
		}
		r.start(t, nil)
		// with-egov: push only; smart-only: SMS (no egov device); dead-egov: SMS after the dead token.
		if err := r.outbox.WaitTotal(ctx, 3); err != nil {
			t.Fatalf("delivered %d: %v", r.outbox.Total(), err)
		}
		waitLedger3(t, r, "code-dead-egov", 2)
		checks := []struct {
			id, ch, to string
			want       int
		}{
			{"code-with-egov", "push", "egov-ok", 1}, {"code-with-egov", "sms", "84911111111", 0},
			{"code-smart-only", "push", "smart-tok", 0}, {"code-smart-only", "sms", "84922222222", 1},
			{"code-dead-egov", "sms", "84933333333", 1},
		}
		for _, c := range checks {
			if got := r.outbox.Count(c.id, channels.Name(c.ch), c.to); got != c.want {
				t.Errorf("%s on %s to %s: %d sends, want %d", c.id, c.ch, c.to, got, c.want)
			}
		}
		c, err := r.store.Contact(ctx, "dead-egov", "egov")
		if err != nil || len(c.Tokens) != 0 {
			t.Errorf("the dead token is still active: %v %v", c.Tokens, err)
		}
	})
}

// waitLedger3 waits until a notification has n ledger rows.
func waitLedger3(t *testing.T, r *rig, id string, n int) {
	t.Helper()
	ctx := waitCtx(t)
	for {
		ds, err := r.store.Deliveries(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) >= n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s has %d ledger rows, want %d", id, len(ds), n)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
