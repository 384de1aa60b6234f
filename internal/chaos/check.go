package chaos

import (
	"bufio"
	"context"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/loa-hub/loa/internal/fleet"
)

// Row is what one kind of traffic got.
type Row struct {
	Kind string
	// Targeted is how many recipients were asked for; Reached how many
	// distinct ones the fake accepted a message for; Lost the difference.
	Targeted, Reached, Lost int
	// Duplicates is the messages beyond one per recipient; Repeated the
	// recipients that got more than one.
	Duplicates, Repeated int
	// FakeCount is every message the fake accepted for these recipients.
	FakeCount int
	// LedgerSent, LedgerFailed, LedgerPending are the delivery ledger's
	// counters (sent includes delivered).
	LedgerSent, LedgerFailed, LedgerPending int
	// InDoubt is the deliveries the ledger records in doubt (a code's or
	// an alert's send under way when its dispatcher was killed: recorded
	// failed with a dead letter, never sent again), InDoubtReached those
	// of them the fake has.
	InDoubt, InDoubtReached int
	// Bound is the most duplicates the promise allows.
	Bound int
	// Promise says what this kind must meet; Broken why it did not.
	Promise string
	Broken  []string
}

// CodeSummary is what the callers of the code requests saw, and what
// reached their phones.
type CodeSummary struct {
	Asked, Accepted int
	// AcceptedDelivered got exactly one SMS; AcceptedLost none;
	// AcceptedRepeated more than one.
	AcceptedDelivered, AcceptedLost, AcceptedRepeated int
	// Refused got an error answer, by problem type; NoAnswer a transport
	// failure (the API was down), by kind.
	Refused  map[string]int
	NoAnswer map[string]int
	// RefusedDelivered and NoAnswerDelivered are codes whose caller saw
	// an error but whose SMS went out anyway (once).
	RefusedDelivered, NoAnswerDelivered int
	// AcceptedInDoubt are accepted codes the ledger records in doubt
	// (never sent again); AcceptedInDoubtLost those of them that never
	// reached the phone (recorded, with a dead letter: not lost silently).
	AcceptedInDoubt, AcceptedInDoubtLost int
}

// BreakerChange is a circuit breaker's change of state in a dispatcher's
// log.
type BreakerChange struct {
	At                time.Duration
	Process, Provider string
	From, To          string
	// Expected says the provider was failing then (a stall or a 503
	// window of the schedule, and what it left behind: see faultWindows).
	Expected bool
	// LastFailure is the failure that tripped an opening, as logged.
	LastFailure string
}

// DeadLetter is one entry of the dead-letter index.
type DeadLetter struct {
	ID, Reason, Channel, Recipient, Provider string
	// Reached says its recipient got the message anyway.
	Reached bool
}

// Report is the outcome of a run.
type Report struct {
	Devices, AlertDevices, Codes int
	RedisAOF, RedisSentinel      bool
	Rows                         []Row
	CodeSummary                  CodeSummary
	// NoticeErrors are the answers notification posters saw before
	// their notification was accepted.
	NoticeErrors map[string]int
	Faults       []FaultRecord
	Breakers     []BreakerChange
	DeadLetters  []DeadLetter
	// Processes is each Loa process's starts and the times it ended by
	// itself (restarted by the supervisor).
	Processes []ProcessCount
	// DoneAt is when everything had arrived and the ledger had nothing
	// pending, after T; zero when that never happened.
	DoneAt time.Duration
	// Broken lists every promise not kept; empty when all were.
	Broken []string
}

// ProcessCount is how often a process was started and ended by itself.
type ProcessCount struct {
	Name          string
	Starts, Exits int
}

// Row returns the row of kind, or a zero Row.
func (rep *Report) Row(kind string) Row {
	for _, r := range rep.Rows {
		if r.Kind == kind {
			return r
		}
	}
	return Row{}
}

// The rows' kinds.
const (
	KindBroadcast = "broadcast push"
	KindAlertPush = "alert push"
	KindAlertSMS  = "alert sms"
	KindCodes     = "code sms"
	KindNotices   = "notification sms"
)

// check gathers what the fakes, the ledger and the logs say and measures
// it against the promises.
func (r *runner) check(ctx context.Context) (*Report, error) {
	cfg := r.cfg
	rep := &Report{Devices: cfg.Devices, AlertDevices: cfg.AlertDevices, Codes: cfg.Codes, RedisAOF: cfg.RedisAOF, RedisSentinel: cfg.RedisSentinel}
	r.mu.Lock()
	rep.Faults = append([]FaultRecord(nil), r.faults...)
	codes := append([]codeResult(nil), r.codes...)
	alertID, alertErr := r.alertID, r.alertErr
	rep.DoneAt = r.doneAt
	r.mu.Unlock()
	sort.Slice(rep.Faults, func(i, j int) bool { return rep.Faults[i].Started < rep.Faults[j].Started })

	fcm, err := r.fl.FakeCounts(ctx, "fcm")
	if err != nil {
		return nil, fmt.Errorf("chaos: read the FCM fake: %w", err)
	}
	sms := map[string]int{}
	for _, g := range []string{"esms", "speedsms"} {
		c, err := r.fl.FakeCounts(ctx, g)
		if err != nil {
			return nil, fmt.Errorf("chaos: read the %s fake: %w", g, err)
		}
		for k, v := range c.ByRecipient {
			sms[k] += v
		}
	}

	// The broadcast: every device once; repeats only from the sends under
	// way when a dispatcher was killed, or sent again after FCM did not
	// answer them (a timeout): the dispatchers log how many.
	kb := killBudget(rep.Faults)
	bulk := tally(KindBroadcast, cfg.Devices, func(i int) int { return fcm.ByRecipient[fleet.Token(bulkPrefix, i)] })
	kb.judge(&bulk, "every device", "FCM", r.unansweredResent("bulk", r.broadcastID))
	r.ledger(ctx, &bulk, r.broadcastID, "push", r.sessionGet("/v1/broadcasts/"+r.broadcastID))
	rep.Rows = append(rep.Rows, bulk)

	// The alert: every device and phone exactly once.
	apush := tally(KindAlertPush, cfg.AlertDevices, func(i int) int { return fcm.ByRecipient[fleet.Token(alertPrefix, i)] })
	asms := tally(KindAlertSMS, cfg.AlertDevices, func(i int) int { return sms[fleet.Phone(alertPhones, i)] })
	for _, row := range []*Row{&apush, &asms} {
		row.Promise = "every recipient exactly once"
		if row.Duplicates > 0 {
			row.Broken = append(row.Broken, fmt.Sprintf("%d recipients got the alert more than once", row.Repeated))
		}
		if alertErr != nil && cfg.AlertDevices > 0 {
			row.Broken = append(row.Broken, "the alert was not accepted: "+alertErr.Error())
		}
		ch := "push"
		if row == &asms {
			ch = "sms"
		}
		if alertID != "" {
			r.ledger(ctx, row, alertID, ch, r.keyGet("/v1/alerts/"+alertID))
			doubt, err := r.inDoubt(ctx, alertID, ch)
			if err != nil {
				row.Broken = append(row.Broken, "read the alert's ledger: "+err.Error())
			}
			for i := 1; i <= cfg.AlertDevices; i++ {
				to, got := fleet.Token(alertPrefix, i), fcm.ByRecipient[fleet.Token(alertPrefix, i)]
				if ch == "sms" {
					to, got = fleet.Phone(alertPhones, i), sms[fleet.Phone(alertPhones, i)]
				}
				if doubt[to] {
					row.InDoubt++
					if got > 0 {
						row.InDoubtReached++
					}
				}
			}
		}
	}
	rep.Rows = append(rep.Rows, apush, asms)

	// The codes: accepted → delivered once; refused → the caller knew.
	cs := CodeSummary{Refused: map[string]int{}, NoAnswer: map[string]int{}}
	crow := Row{Kind: KindCodes, Promise: "every accepted code delivered exactly once, or recorded in doubt; the others refused with a clear error"}
	codeDoubt := map[string]bool{}
	if rows, err := r.queryDeliveries(ctx, "code-%", "sms"); err != nil {
		crow.Broken = append(crow.Broken, "read the codes' ledger: "+err.Error())
	} else {
		for _, d := range rows {
			if d.class == inDoubtClass {
				codeDoubt[d.recipient] = true
			}
		}
	}
	for _, c := range codes {
		if c.phone == "" {
			continue
		}
		cs.Asked++
		n := sms[c.phone]
		crow.FakeCount += n
		switch {
		case c.status == 202:
			cs.Accepted++
			crow.Targeted++
			if codeDoubt[c.phone] {
				cs.AcceptedInDoubt++
				crow.InDoubt++
				if n > 0 {
					crow.InDoubtReached++
				}
			}
			switch {
			case n == 0 && codeDoubt[c.phone]:
				cs.AcceptedInDoubtLost++
			case n == 0:
				cs.AcceptedLost++
			case n == 1:
				cs.AcceptedDelivered++
			default:
				cs.AcceptedRepeated++
			}
		case c.status == 0:
			k := c.transport
			if k != "connection refused" && apiKilledAt(rep.Faults, c.at) {
				k += apiKilled
			}
			cs.NoAnswer[k]++
			if n > 0 {
				cs.NoAnswerDelivered++
			}
		default:
			cs.Refused[fmt.Sprintf("%d %s", c.status, c.problem)]++
			if n > 0 {
				cs.RefusedDelivered++
			}
		}
		if n > 0 {
			crow.Reached++
		}
		if n > 1 {
			crow.Repeated++
			crow.Duplicates += n - 1
		}
	}
	crow.Lost = cs.AcceptedLost
	if cs.AcceptedLost > 0 {
		crow.Broken = append(crow.Broken, fmt.Sprintf("%d accepted codes never reached their phone", cs.AcceptedLost))
	}
	if crow.Duplicates > 0 {
		crow.Broken = append(crow.Broken, fmt.Sprintf("%d phones got their code more than once", crow.Repeated))
	}
	if n := unclearRefusals(cs); n > 0 {
		crow.Broken = append(crow.Broken, fmt.Sprintf("%d code requests were refused without a clear error (a 500, or no answer in %v while the API was up)",
			n, codeTimeout))
	}
	if cs.Accepted+sum(cs.Refused)+sum(cs.NoAnswer) != cs.Asked {
		crow.Broken = append(crow.Broken, "some code requests have no recorded answer")
	}
	r.codeLedger(ctx, &crow, codes)
	rep.Rows = append(rep.Rows, crow)
	rep.CodeSummary = cs
	if cfg.Notices > 0 {
		rep.Rows = append(rep.Rows, r.checkNotices(ctx, sms, rep, &kb))
	}

	for i := range rep.Rows {
		row := &rep.Rows[i]
		// Lost silently: never reached, and not recorded in doubt.
		if silent := row.Lost - (row.InDoubt - row.InDoubtReached); row.Kind != KindCodes && silent > 0 {
			row.Broken = append(row.Broken, fmt.Sprintf("%d recipients never reached", silent))
		}
		// The ledger says sent for what the provider took, and in doubt
		// for what was under way at a kill (the provider may have it).
		if row.LedgerSent+row.InDoubtReached != row.Reached {
			row.Broken = append(row.Broken, fmt.Sprintf("the ledger says %d sent (and %d in doubt that arrived), the fake reached %d",
				row.LedgerSent, row.InDoubtReached, row.Reached))
		}
		for _, b := range row.Broken {
			rep.Broken = append(rep.Broken, row.Kind+": "+b)
		}
	}

	rep.DeadLetters = r.deadLetters(ctx, fcm.ByRecipient, sms)
	for _, d := range rep.DeadLetters {
		if !d.Reached {
			rep.Broken = append(rep.Broken, fmt.Sprintf("dead letter %s (%s to %s): %s", d.ID, d.Channel, d.Recipient, d.Reason))
		}
	}
	rep.Breakers = r.breakerChanges(rep.Faults)
	for _, b := range rep.Breakers {
		if b.To == "open" && !b.Expected {
			rep.Broken = append(rep.Broken, fmt.Sprintf("%s's breaker for %s opened at T+%v while the provider was not failing",
				b.Process, b.Provider, b.At.Round(time.Second)))
		}
	}
	for _, m := range r.fl.Members() {
		rep.Processes = append(rep.Processes, ProcessCount{Name: m.Name, Starts: m.Starts(), Exits: m.Exits()})
	}
	for _, f := range rep.Faults {
		if f.Err != "" {
			rep.Broken = append(rep.Broken, fmt.Sprintf("fault %s at T+%v could not be carried out: %s", f.Kind, f.At, f.Err))
		}
	}
	if rep.DoneAt == 0 {
		rep.Broken = append(rep.Broken, "the run ended at its deadline with deliveries missing or pending")
	}
	return rep, nil
}

// checkNotices: every notification its poster saw accepted reached its
// phone once and the ledger says sent; the errors the poster saw before
// are listed, and a 500 among them is not a clear answer.
func (r *runner) checkNotices(ctx context.Context, sms map[string]int, rep *Report, kb *repeatBudget) Row {
	r.mu.Lock()
	notices := append([]noticeResult(nil), r.notices...)
	r.mu.Unlock()
	row := Row{Kind: KindNotices}
	rep.NoticeErrors = map[string]int{}
	for _, n := range notices {
		if n.phone == "" {
			continue
		}
		row.Targeted++
		c := sms[n.phone]
		row.FakeCount += c
		if c > 0 {
			row.Reached++
		}
		if c > 1 {
			row.Repeated++
			row.Duplicates += c - 1
		}
		for k, v := range n.errors {
			rep.NoticeErrors[k] += v
		}
		switch {
		case n.refused != "":
			row.Broken = append(row.Broken, fmt.Sprintf("notification to %s refused: %s", n.phone, n.refused))
		case n.id == "":
			row.Broken = append(row.Broken, fmt.Sprintf("notification to %s never accepted in %d tries", n.phone, n.attempts))
		default:
			var v struct {
				Status string `json:"status"`
			}
			if err := retry(ctx, "read notification "+n.id, func() error {
				_, err := r.c.Call(ctx, "GET", "/v1/notifications/"+n.id, r.apiKey, nil, &v)
				return err
			}); err != nil {
				row.Broken = append(row.Broken, fmt.Sprintf("accepted notification %s is gone: %v", n.id, err))
				continue
			}
			switch v.Status {
			case "sent", "delivered":
				row.LedgerSent++
			case "failed", "expired", "partial":
				row.LedgerFailed++
			default:
				row.LedgerPending++
			}
		}
	}
	row.Lost = row.Targeted - row.Reached
	// A notification sent again after its gateway did not answer (a
	// timeout), or under way when its dispatcher was killed, may be a
	// repeat: Loa promises at most once for codes and alerts only.
	kb.judge(&row, "each accepted once (retried with its idempotency key) and delivered", "the gateway", r.unansweredResent("direct", ""))
	for k, v := range rep.NoticeErrors {
		if strings.HasPrefix(k, "500 ") {
			row.Broken = append(row.Broken, fmt.Sprintf("%d answers were %s, not a clear error", v, k))
		}
	}
	return row
}

// unclearRefusals counts the refusals a caller could not act on: a 500
// (the API's own failure, not "try again later") and requests the API
// took in but never answered. A refused connection is clear: the API
// was down, and the caller (or its load balancer) goes elsewhere; so is
// one cut as the API was killed under it.
func unclearRefusals(cs CodeSummary) int {
	n := 0
	for k, v := range cs.Refused {
		if strings.HasPrefix(k, "500 ") {
			n += v
		}
	}
	for k, v := range cs.NoAnswer {
		if k != "connection refused" && !strings.HasSuffix(k, apiKilled) {
			n += v
		}
	}
	return n
}

// apiKilled marks a transport failure that came as `loa api` was killed
// under the request: the connection it was answering on died with it, as
// clear to its caller as a refused one.
const apiKilled = " as loa api was killed"

// apiKilledAt reports whether at falls on a kill of `loa api` (a second
// either side of its SIGKILL).
func apiKilledAt(faults []FaultRecord, at time.Duration) bool {
	for _, f := range faults {
		if f.Kind == KillAPI && at >= f.Started-time.Second && at <= f.Started+time.Second {
			return true
		}
	}
	return false
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// tally counts recipients 1…n by how many messages each got.
func tally(kind string, n int, count func(i int) int) Row {
	row := Row{Kind: kind, Targeted: n}
	for i := 1; i <= n; i++ {
		c := count(i)
		row.FakeCount += c
		if c > 0 {
			row.Reached++
		}
		if c > 1 {
			row.Repeated++
			row.Duplicates += c - 1
		}
	}
	row.Lost = n - row.Reached
	return row
}

// stats is the part of a broadcast's or an alert's view the run reads.
type stats struct {
	Stats struct {
		Channels map[string]struct {
			Targeted, Sent, Failed, Pending int
		} `json:"channels"`
	} `json:"stats"`
}

// sessionGet reads path as the ops official (signing in again if needed).
func (r *runner) sessionGet(path string) func(ctx context.Context, out any) error {
	return func(ctx context.Context, out any) error { return r.call(ctx, r.ops, "GET", path, nil, out) }
}

// keyGet reads path with the run's API key.
func (r *runner) keyGet(path string) func(ctx context.Context, out any) error {
	return func(ctx context.Context, out any) error {
		_, err := r.c.Call(ctx, "GET", path, r.apiKey, nil, out)
		return err
	}
}

// ledger fills row's ledger counters from the API's view of a notification.
func (r *runner) ledger(ctx context.Context, row *Row, id, channel string, get func(context.Context, any) error) {
	var s stats
	if err := retry(ctx, "read the ledger of "+id, func() error { return get(ctx, &s) }); err != nil {
		row.Broken = append(row.Broken, err.Error())
		return
	}
	c := s.Stats.Channels[channel]
	row.LedgerSent, row.LedgerFailed, row.LedgerPending = c.Sent, c.Failed, c.Pending
}

// pendingDeliveries is the ledger's count of a notification's deliveries
// without a final outcome, through the API.
func (r *runner) pendingDeliveries(ctx context.Context, id string) (int, error) {
	var s stats
	var err error
	if id == r.broadcastID {
		err = r.sessionGet("/v1/broadcasts/"+id)(ctx, &s)
	} else {
		err = r.keyGet("/v1/alerts/"+id)(ctx, &s)
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range s.Stats.Channels {
		n += c.Pending
	}
	return n, nil
}

// codeLedger counts the codes' deliveries in the ledger (codes are not
// notifications the API lists: their ledger rows are read directly).
func (r *runner) codeLedger(ctx context.Context, row *Row, codes []codeResult) {
	phones := map[string]bool{}
	for _, c := range codes {
		if c.phone != "" {
			phones[c.phone] = true
		}
	}
	rows, err := r.queryDeliveries(ctx, "code-%", "sms")
	if err != nil {
		row.Broken = append(row.Broken, "read the codes' ledger: "+err.Error())
		return
	}
	for _, d := range rows {
		if !phones[d.recipient] {
			continue
		}
		switch d.status {
		case "sent", "delivered":
			row.LedgerSent++
		case "failed", "undelivered", "expired", "token_dead", "skipped", "cancelled":
			row.LedgerFailed++
		default:
			row.LedgerPending++
		}
	}
}

// deadLetters reads the whole dead-letter index through the API.
func (r *runner) deadLetters(ctx context.Context, push map[string]int, sms map[string]int) []DeadLetter {
	var out []DeadLetter
	before := ""
	for {
		var page struct {
			Items []struct {
				ID        string `json:"id"`
				Reason    string `json:"reason"`
				Channel   string `json:"channel"`
				Recipient string `json:"recipient"`
				Provider  string `json:"provider"`
			} `json:"items"`
			Next string `json:"next"`
		}
		path := "/v1/ops/deadletters?limit=500"
		if before != "" {
			path += "&before=" + url.QueryEscape(before)
		}
		if err := retry(ctx, "list dead letters", func() error { _, err := r.c.Call(ctx, "GET", path, r.apiKey, nil, &page); return err }); err != nil {
			return append(out, DeadLetter{ID: "?", Reason: err.Error()})
		}
		for _, it := range page.Items {
			d := DeadLetter{ID: it.ID, Reason: it.Reason, Channel: it.Channel, Recipient: it.Recipient, Provider: it.Provider}
			// The list masks phones; a push's token is shown in full. A
			// delivery in doubt is counted in its row (it was under way at a
			// kill, and is never sent again).
			d.Reached = it.Channel == "push" && push[it.Recipient] > 0 || strings.HasPrefix(it.Reason, "in doubt")
			out = append(out, d)
		}
		if page.Next == "" {
			return out
		}
		before = page.Next
	}
}

var (
	breakerLine = regexp.MustCompile(`time=(\S+) .*msg="circuit breaker state changed" provider=(\S+) from=(\S+) to=(\S+)`)
	lastFailure = regexp.MustCompile(`last_failure=("(?:[^"\\]|\\.)*"|\S+)`)
)

// breakerChanges reads the breakers' changes from the dispatchers' logs
// and marks those that fall in a window where the provider was failing
// (see markExpected).
func (r *runner) breakerChanges(faults []FaultRecord) []BreakerChange {
	var out []BreakerChange
	for _, d := range r.fl.Dispatchers {
		f, err := os.Open(d.LogPath)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			m := breakerLine.FindStringSubmatch(sc.Text())
			if m == nil {
				continue
			}
			at, err := time.Parse(time.RFC3339Nano, m[1])
			if err != nil {
				continue
			}
			b := BreakerChange{At: at.Sub(r.t0), Process: d.Name, Provider: m[2], From: m[3], To: m[4]}
			if lf := lastFailure.FindStringSubmatch(sc.Text()); lf != nil {
				b.LastFailure = lf[1]
				if u, err := strconv.Unquote(lf[1]); err == nil {
					b.LastFailure = u
				}
			}
			out = append(out, b)
		}
		f.Close()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].At < out[j].At })
	markExpected(out, faults, r.env())
	return out
}

var unansweredLine = regexp.MustCompile(`msg="provider calls failed without an answer[^"]*" lane=(\S+) notification_id=(\S+) sent_again=(\d+)`)

// unansweredResent sums, over the dispatchers' logs, the sends of lane
// (of notification id, when not empty) that were tried again after a
// provider call without an answer.
func (r *runner) unansweredResent(lane, id string) int {
	n := 0
	for _, d := range r.fl.Dispatchers {
		b, err := os.ReadFile(d.LogPath)
		if err != nil {
			continue
		}
		for _, m := range unansweredLine.FindAllStringSubmatch(string(b), -1) {
			if m[1] == lane && (id == "" || m[2] == id) {
				k, _ := strconv.Atoi(m[3])
				n += k
			}
		}
	}
	return n
}

// markExpected marks the breaker changes that fall in a window where
// their provider was failing: from the start of a stall of FCM or of the
// eSMS gateway's 503s to its end, plus the send timeout (a send the
// stalled fake held fails only when the sender gives up on it, after the
// stall itself ended), plus the breaker's open time (it half-opens and
// closes after that), plus 5 s.
func markExpected(changes []BreakerChange, faults []FaultRecord, env map[string]string) {
	slack := envDuration(env, "LOA_SEND_TIMEOUT", 10*time.Second) + envDuration(env, "LOA_BREAKER_OPEN_FOR", 30*time.Second) + 5*time.Second
	for i := range changes {
		b := &changes[i]
		for _, fr := range faults {
			fcm := fr.Kind == StallFCM && strings.HasPrefix(b.Provider, "fcm")
			esms := fr.Kind == FailSMS && b.Provider == "esms"
			if (fcm || esms) && b.At >= fr.Started && b.At <= fr.Ended+slack {
				b.Expected = true
			}
		}
	}
}

// envDuration is the duration variable name of env, or def.
func envDuration(env map[string]string, name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(env[name]); err == nil {
		return d
	}
	return def
}

// repeatBudget is what the dispatcher kills of a run allow to be sent
// twice on the lanes that are not at most once (the broadcast, direct
// notifications): the sends a killed replica had begun and not recorded
// (loa_sends_unmarked, read just before each kill) — one gauge over all
// its lanes, so the kinds judged share it, in the order judged.
type repeatBudget struct {
	kills    int
	measured bool // every kill's gauge was read
	spare    int  // unmarked sends not yet taken by a kind's repeats
	total    int
}

func killBudget(faults []FaultRecord) repeatBudget {
	kb := repeatBudget{measured: true}
	for _, f := range faults {
		if f.Kind != KillDispatcher {
			continue
		}
		kb.kills++
		if f.Unmarked < 0 {
			kb.measured = false
		} else {
			kb.total += int(f.Unmarked)
		}
	}
	kb.spare = kb.total
	return kb
}

// judge sets row's promise and bound, and breaks it when its repeats are
// more than those sent again after provider did not answer (unanswered)
// and the kills' unmarked sends left; the repeats beyond the unanswered
// ones are taken from the budget. A send under way at a kill may be sent
// again without the takeover being seen, when Redis lost the lease before
// it lapsed (see dispatcher.Claims): the gauge bounds it all the same.
func (kb *repeatBudget) judge(row *Row, what, provider string, unanswered int) {
	fromKills := max(0, row.Duplicates-unanswered)
	switch {
	case kb.kills == 0:
		row.Bound = unanswered
		row.Promise = fmt.Sprintf("%s; repeats ≤ %d, those sent again after %s did not answer (no dispatcher was killed)", what, unanswered, provider)
		if fromKills > 0 {
			row.Broken = append(row.Broken, fmt.Sprintf("%d repeats, more than the %d sent again after no answer, and no dispatcher was killed",
				row.Duplicates, unanswered))
		}
	case kb.measured:
		row.Bound = kb.spare + unanswered
		row.Promise = fmt.Sprintf("%s; repeats ≤ %d: %d sends the killed replicas had not marked (of %d, shared by the lanes not sent at most once), %d sent again after %s did not answer",
			what, kb.spare+unanswered, kb.spare, kb.total, unanswered, provider)
		if fromKills > kb.spare {
			row.Broken = append(row.Broken, fmt.Sprintf("%d repeats, more than the %d sends in flight at the kills and the %d sent again after no answer",
				row.Duplicates, kb.spare, unanswered))
		}
		kb.spare = max(0, kb.spare-fromKills)
	default:
		row.Bound = unanswered
		row.Promise = fmt.Sprintf("%s; repeats ≤ the sends in flight at the kills", what)
		if fromKills > 0 {
			row.Broken = append(row.Broken, fmt.Sprintf("%d repeats, and the dispatcher reports no count of its unmarked sends (%s) to bound them by",
				row.Duplicates, strings.Join(unmarkedMetrics, " or ")))
		}
	}
}
