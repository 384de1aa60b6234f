package dispatcher

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/internal/topics"
)

// unanswered is a provider that takes some messages and then fails the
// call as if its answer never came (a timeout, a connection lost while the
// answer was due), and refuses others with an answer (a 503) the first
// time, taking them when they come again.
type unanswered struct {
	channels.Channel
	lost    func(m channels.Message) bool // taken, but the answer is lost
	refused func(m channels.Message) bool // refused once, with an answer

	mu   sync.Mutex
	seen map[string]bool // refused once already
}

func (c *unanswered) Send(ctx context.Context, m channels.Message) (channels.Result, error) {
	if err := channels.Calling(ctx); err != nil { // as the rate limit layer does before the provider call
		return channels.Result{}, err
	}
	if c.refused != nil && c.refused(m) {
		c.mu.Lock()
		first := !c.seen[m.To]
		c.seen[m.To] = true
		c.mu.Unlock()
		if first {
			return channels.Result{}, &channels.Error{Class: channels.Transient, Provider: "gw", Code: "503",
				Err: channels.Refused(errors.New("gateway answered 503"))}
		}
	}
	res, err := c.Channel.Send(ctx, m)
	if err == nil && c.lost(m) {
		return channels.Result{}, &channels.Error{Class: channels.Transient, Provider: "gw", Code: "timeout",
			Err: errors.New("no answer within 10s: context deadline exceeded")}
	}
	return res, err
}

// TestUnansweredCodeAndAlertAreNotSentAgain: the SMS gateway takes a code
// and FCM a tenth of an alert's pushes, but their answers never come (the
// calls time out). Neither is sent again — not in place, not in a retry
// tier: each is recorded failed, class in_doubt, with a dead letter saying
// why, and the rest of the alert is sent once. A push the provider
// refused with an answer is sent again, and arrives once.
func TestUnansweredCodeAndAlertAreNotSentAgain(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		const n = 200
		codeID, phone, alertID := r.publishCodeAndAlert(t, n)
		lostPush := func(m channels.Message) bool { return strings.HasSuffix(m.To, "0") } // one in ten
		r.chans[channels.SMS] = &unanswered{Channel: r.chans[channels.SMS], lost: func(m channels.Message) bool { return m.NotificationID == codeID }}
		r.chans[channels.Push] = &unanswered{Channel: r.chans[channels.Push], lost: lostPush, seen: map[string]bool{},
			refused: func(m channels.Message) bool { return strings.HasSuffix(m.To, "5") }}
		r.start(t, func(d *Dispatcher) {
			d.cfg.RetryTiers = []time.Duration{10 * time.Millisecond, 10 * time.Millisecond}
		})
		code := waitFinal(t, r, codeID, 1)
		alert := waitFinal(t, r, alertID, n)
		if c := r.outbox.Count(codeID, channels.SMS, phone); c != 1 {
			t.Errorf("the code was sent %d times", c)
		}
		if d := r.outbox.Duplicates(); len(d) > 0 {
			t.Errorf("%d deliveries sent twice, e.g. %s", len(d), d[0])
		}
		if st, class := code[0].Status, code[0].Class; st != loa.StatusFailed || class != string(ClassInDoubt) {
			t.Errorf("the code's delivery: %s (%s), want failed (in_doubt)", st, class)
		}
		doubts := 1 // the code
		for _, dl := range alert {
			got := r.outbox.Count(alertID, channels.Push, dl.Recipient)
			switch {
			case lostPush(channels.Message{To: dl.Recipient}):
				doubts++
				if dl.Status != loa.StatusFailed || dl.Class != string(ClassInDoubt) || got != 1 {
					t.Errorf("unanswered alert push to %s: %s (%s), sent %d times; want failed (in_doubt), sent once", dl.Recipient, dl.Status, dl.Class, got)
				}
			case dl.Status != loa.StatusSent || got != 1:
				t.Errorf("alert push to %s: %s (%s), sent %d times; want sent once", dl.Recipient, dl.Status, dl.Class, got)
			}
		}
		// One dead letter for each delivery in doubt, saying why.
		ctx := waitCtx(t)
		for {
			rows, err := r.store.DeadLetters(ctx, time.Time{}, "", 10*n)
			if err != nil {
				t.Fatal(err)
			}
			letters := 0
			for _, row := range rows {
				if strings.HasPrefix(row.Reason, "in doubt") && strings.Contains(row.Reason, "no answer within") {
					letters++
				}
			}
			if letters == doubts && len(rows) == letters {
				break
			}
			if letters > doubts || len(rows) > letters {
				t.Fatalf("%d dead letters (%d in doubt), want one per delivery in doubt (%d)", len(rows), letters, doubts)
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%d dead letters in doubt, want %d", letters, doubts)
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
}

// TestUnansweredBulkIsSentAgain: on the other lanes a send whose answer
// was lost is tried again (a broadcast may then repeat what the provider
// did take): nothing is lost.
func TestUnansweredBulkIsSentAgain(t *testing.T) {
	forEachBackend(t, func(t *testing.T, r *rig) {
		const n = 100
		var once sync.Map
		r.chans[channels.Push] = &unanswered{Channel: r.chans[channels.Push], lost: func(m channels.Message) bool {
			_, again := once.LoadOrStore(m.To, true)
			return !again && strings.HasSuffix(m.To, "0")
		}}
		r.publishFanout(t, "bc-lost", topics.LaneBulk, n, n)
		logs := &logLines{}
		r.start(t, func(d *Dispatcher) { d.log = slog.New(logs) })
		for _, dl := range waitFinal(t, r, "bc-lost", n) {
			if dl.Status != loa.StatusSent {
				t.Errorf("push to %s: %s (%s)", dl.Recipient, dl.Status, dl.Class)
			}
		}
		if d := r.outbox.Duplicates(); len(d) != n/10 {
			t.Errorf("%d pushes sent twice, want the %d whose answer was lost", len(d), n/10)
		}
		// The log says how many may have been repeated, and why.
		again := 0
		for _, m := range regexp.MustCompile(`lane=bulk .*sent_again=(\d+)`).FindAllStringSubmatch(logs.text(), -1) {
			k, _ := strconv.Atoi(m[1])
			again += k
		}
		if again != n/10 {
			t.Errorf("the log reports %d sends tried again without an answer, want %d:\n%s", again, n/10, logs.text())
		}
	})
}
