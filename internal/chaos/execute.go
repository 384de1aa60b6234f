package chaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/loa-hub/loa/internal/fleet"
	"github.com/loa-hub/loa/internal/instance"
)

// FaultRecord is what a fault did, when.
type FaultRecord struct {
	Event
	Started, Ended time.Duration // after T
	// InFlight is, for a dispatcher kill, the FCM fake's requests in
	// flight just before the SIGKILL (both replicas'), and the replica's
	// own count of sends not yet marked when it reports one (-1 if not).
	FakeInFlight int64
	Unmarked     int64
	Err          string
}

// codeResult is one code request and what its caller saw.
type codeResult struct {
	phone     string // normalised, 8497…
	status    int    // HTTP status; 0 when no answer came
	problem   string // the problem type of a refusal
	transport string // the transport error when no answer came
	challenge string
	at        time.Duration // when the answer (or the failure) came, after T
}

// unmarkedMetrics are the dispatcher gauges read just before a kill for
// the sends it had under way and not yet recorded as sent, in order of
// preference.
var unmarkedMetrics = []string{"loa_sends_unrecorded", "loa_sends_unmarked"}

// execute approves the broadcast (T), runs the schedule, the alert and
// the codes, prints progress, and returns once everything arrived and
// the fakes were quiet for Config.Quiet, or at the deadline.
func (r *runner) execute(ctx context.Context) error {
	r.mu.Lock()
	r.t0 = time.Now()
	r.mu.Unlock()
	if err := retry(ctx, "approve", func() error {
		err := r.call(ctx, r.approver, "POST", "/v1/broadcasts/"+r.broadcastID+"/approve", nil, nil)
		var p *fleet.Problem
		if errors.As(err, &p) && p.Status == 409 {
			return nil // approved by an earlier try whose answer was lost
		}
		return err
	}); err != nil {
		return err
	}
	r.logf("broadcast %s approved", r.broadcastID)

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	wg.Add(4)
	go func() {
		defer wg.Done()
		r.runSchedule(runCtx)
		r.mu.Lock()
		r.scheduleDone = time.Now()
		r.mu.Unlock()
	}()
	go func() { defer wg.Done(); r.postAlert(runCtx) }()
	go func() { defer wg.Done(); r.requestCodes(runCtx) }()
	go func() { defer wg.Done(); r.postNotices(runCtx) }()
	go r.progress(runCtx)

	err := r.waitDone(ctx)
	stop()
	wg.Wait()
	return err
}

// runSchedule performs each event at its time, each in its own goroutine
// so that a stall and a kill can overlap.
func (r *runner) runSchedule(ctx context.Context) {
	var wg sync.WaitGroup
	for _, e := range r.cfg.Schedule {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-time.After(time.Until(r.t0.Add(e.At))):
		}
		for giveUp := time.Now().Add(r.cfg.Deadline); e.AfterPushes > 0; {
			if n, err := r.fl.FakeCount(ctx, "fcm"); err == nil && n >= e.AfterPushes {
				break
			}
			if time.Now().After(giveUp) {
				r.logf("the FCM fake never reached %d pushes; %s now", e.AfterPushes, e.Kind)
				break
			}
			select {
			case <-ctx.Done():
				wg.Wait()
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.perform(ctx, e)
		}()
	}
	wg.Wait()
}

func (r *runner) perform(ctx context.Context, e Event) {
	rec := FaultRecord{Event: e, Started: time.Since(r.t0), Unmarked: -1}
	name := string(e.Kind)
	if e.Kind == KillDispatcher {
		name = fmt.Sprintf("kill-dispatcher-%d", e.Target%len(r.fl.Dispatchers)+1)
	}
	r.setActive(name, true)
	defer r.setActive(name, false)
	wait := func(d time.Duration) {
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
	var err error
	switch e.Kind {
	case KillDispatcher:
		d := r.fl.Dispatchers[e.Target%len(r.fl.Dispatchers)]
		if st, serr := r.fl.FCMStats(ctx); serr == nil {
			rec.FakeInFlight = st.InFlight
		}
		rec.Unmarked = r.scrapeUnmarked(ctx, r.fl.MetricsURLs[e.Target%len(r.fl.MetricsURLs)])
		d.Kill()
		r.logf("SIGKILL %s (FCM fake: %d sends in flight; the replica's unmarked sends: %s)", d.Name, rec.FakeInFlight, orNA(rec.Unmarked))
		wait(e.Down)
		_, err = d.Up()
		r.logf("%s started again", d.Name)
	case KillAPI:
		r.fl.API.Kill()
		r.logf("SIGKILL loa api")
		wait(e.Down)
		_, err = r.fl.API.Up()
		r.logf("loa api started again")
	case RestartKafka:
		if r.cfg.Kafka != nil {
			err = fmt.Errorf("the run shares its Kafka broker; it may not restart it")
			break
		}
		r.kafka.Kill()
		r.logf("SIGKILL Kafka")
		wait(e.Down)
		err = r.kafka.Start(ctx)
		r.logf("Kafka is back (%v)", errText(err))
	case RestartRedis:
		r.redis.Kill()
		r.logf("SIGKILL Redis (%s)", persistence(r.cfg.RedisAOF))
		wait(e.Down)
		err = r.redis.Start(ctx)
		r.logf("Redis is back (%v)", errText(err))
	case RestartPostgres:
		r.pg.Crash()
		r.logf("PostgreSQL immediate shutdown")
		wait(e.Down)
		err = r.pg.Start(ctx)
		r.logf("PostgreSQL is back (%v)", errText(err))
	case FailoverRedis:
		var master *instance.Redis
		if master, err = r.redisMaster(ctx); err != nil {
			break
		}
		master.Kill()
		r.logf("SIGKILL the Redis master %s", master.Addr())
		wait(e.Down)
		err = master.Start(ctx)
		r.logf("the old Redis master %s is back (%v); now the master is %s", master.Addr(), errText(err), r.sentinelMasterAddr(ctx))
	case FailoverPostgres:
		if r.standby == nil {
			err = fmt.Errorf("the run has no PostgreSQL standby")
			break
		}
		r.pg.Crash()
		r.logf("PostgreSQL primary crashed")
		wait(e.Down)
		err = r.standby.Promote(ctx)
		r.logf("PostgreSQL standby promoted (%v)", errText(err))
	case StallFCM:
		err = r.fl.SetFault(ctx, "fcm", map[string]any{"hang": true})
		r.logf("FCM fake stalls for %v", e.For)
		wait(e.For)
		r.restoreFCM(ctx)
		r.logf("FCM fake answers again")
	case FailSMS:
		err = r.fl.SetFault(ctx, "esms", map[string]any{"status": 503})
		r.logf("eSMS gateway answers 503 for %v", e.For)
		wait(e.For)
		if cerr := r.fl.SetFault(context.WithoutCancel(ctx), "esms", nil); cerr != nil && err == nil {
			err = cerr
		}
		r.logf("eSMS gateway answers again")
	}
	rec.Ended = time.Since(r.t0)
	if err != nil {
		rec.Err = err.Error()
		r.logf("fault %s: %v", e.Kind, err)
	}
	r.mu.Lock()
	r.faults = append(r.faults, rec)
	r.mu.Unlock()
}

// redisMaster returns the Redis server the Sentinels call the master.
func (r *runner) redisMaster(ctx context.Context) (*instance.Redis, error) {
	addr := r.sentinelMasterAddr(ctx)
	for _, s := range []*instance.Redis{r.redis, r.replica} {
		if s != nil && s.Addr() == addr {
			return s, nil
		}
	}
	return nil, fmt.Errorf("the Sentinels name %q as the master, not one of the run's servers", addr)
}

// sentinelMasterAddr asks the first Sentinel that answers for the
// master's address.
func (r *runner) sentinelMasterAddr(ctx context.Context) string {
	for _, s := range r.sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr()})
		addr, err := c.GetMasterAddrByName(ctx, sentinelMaster).Result()
		c.Close()
		if err == nil && len(addr) == 2 {
			return addr[0] + ":" + addr[1]
		}
	}
	return "?"
}

// restoreFCM ends a stall, keeping the run's latency.
func (r *runner) restoreFCM(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	var plan map[string]any
	if r.cfg.FCMLatency > 0 {
		plan = map[string]any{"latency": r.cfg.FCMLatency.String()}
	}
	if err := r.fl.SetFault(ctx, "fcm", plan); err != nil {
		r.logf("FCM fake: ending the stall: %v", err)
	}
}

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func orNA(n int64) string {
	if n < 0 {
		return "not reported"
	}
	return strconv.FormatInt(n, 10)
}

func (r *runner) setActive(name string, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if on {
		r.active[name] = true
	} else {
		delete(r.active, name)
	}
}

// scrapeUnmarked reads a dispatcher's gauge of sends under way and not
// yet marked sent, -1 when it has none.
func (r *runner) scrapeUnmarked(ctx context.Context, url string) int64 {
	// A loaded machine may take seconds to answer; the kill waits for it.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if errors.Is(err, syscall.ECONNREFUSED) {
		return 0 // not serving yet (starting, or unable to start): it has begun no send
	}
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	values := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64); err == nil {
			values[name] += v
		}
	}
	for _, m := range unmarkedMetrics {
		if v, ok := values[m]; ok {
			return int64(v)
		}
	}
	return -1
}

// postAlert posts the alert at AlertAt, trying again through outages with
// the same identifier (Loa answers a repeat with the same alert).
func (r *runner) postAlert(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(time.Until(r.t0.Add(r.cfg.AlertAt))):
	}
	if r.cfg.AlertDevices == 0 {
		return
	}
	body := map[string]any{
		"identifier": "CHAOS-" + r.broadcastID, "msg_type": "alert", "severity": "Extreme", "urgency": "Immediate",
		"certainty": "Observed", "event": "Lũ", "headline": "Cảnh báo lũ (thử nghiệm)",
		"description": "Mực nước vượt báo động 3.", "instruction": "Di chuyển lên nơi cao.",
		"expires": time.Now().Add(6 * time.Hour).Format(time.RFC3339), "areas": []string{alertArea},
		"channels": []string{"push", "sms"},
	}
	var a struct {
		ID string `json:"id"`
	}
	err := retry(ctx, "post the alert", func() error {
		_, err := r.c.Call(ctx, "POST", "/v1/alerts", r.apiKey, body, &a)
		return err
	})
	r.mu.Lock()
	r.alertID, r.alertErr = a.ID, err
	r.mu.Unlock()
	r.logf("alert %s posted (%v)", a.ID, errText(err))
}

// requestCodes asks for Codes SMS codes at CodeRate, each for its own
// phone, as an app would for a user waiting on a screen: one try, with
// the caller told whatever came back.
func (r *runner) requestCodes(ctx context.Context) {
	defer r.codesDone.Store(true)
	n := r.cfg.Codes
	r.mu.Lock()
	r.codes = make([]codeResult, n)
	r.mu.Unlock()
	interval := time.Duration(float64(time.Second) / r.cfg.CodeRate)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := range n {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-time.After(time.Until(r.t0.Add(time.Duration(i) * interval))):
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			res := codeResult{phone: codePhoneNormal(i)}
			cctx, cancel := context.WithTimeout(ctx, codeTimeout)
			defer cancel()
			var ch struct {
				ChallengeID string `json:"challenge_id"`
			}
			status, err := r.c.Call(cctx, "POST", "/v1/otp/sms", "", map[string]string{"phone": codePhone(i), "purpose": "verify_phone"}, &ch)
			res.status, res.challenge, res.at = status, ch.ChallengeID, time.Since(r.t0)
			var p *fleet.Problem
			switch {
			case errors.As(err, &p):
				res.problem = p.Type
				if res.problem == "" {
					res.problem = fmt.Sprintf("(no problem type) %.60s", p.Detail)
				}
			case err != nil:
				res.status, res.transport = 0, transportClass(err)
			}
			r.mu.Lock()
			r.codes[i] = res
			r.mu.Unlock()
		}()
	}
	wg.Wait()
}

// noticeResult is one direct notification and what its poster saw.
type noticeResult struct {
	phone    string // normalised, 8496…
	id       string // the notification's id, once accepted
	attempts int
	// errors counts the answers before acceptance: "503 urn:…", "no
	// answer (connection refused)".
	errors map[string]int
	// refused is a 4xx answer, after which the poster gives up.
	refused string
}

// postNotices posts Notices direct notifications at NoticeRate, each
// tried again with its idempotency key after a 5xx or no answer until it
// is accepted (or two minutes pass).
func (r *runner) postNotices(ctx context.Context) {
	defer r.noticesDone.Store(true)
	n := r.cfg.Notices
	r.mu.Lock()
	r.notices = make([]noticeResult, n)
	r.mu.Unlock()
	interval := time.Duration(float64(time.Second) / r.cfg.NoticeRate)
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i := range n {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-time.After(time.Until(r.t0.Add(time.Duration(i) * interval))):
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			res := noticeResult{phone: noticePhoneNormal(i), errors: map[string]int{}}
			body := map[string]any{"to": map[string]string{"phone": noticePhone(i)}, "body": fmt.Sprintf("Thông báo thử nghiệm số %d", i),
				"channels": []string{"sms"}, "ttl_seconds": 3600, "idempotency_key": fmt.Sprintf("chaos-notice-%d", i)}
			for giveUp := time.Now().Add(2 * time.Minute); time.Now().Before(giveUp); {
				res.attempts++
				cctx, cancel := context.WithTimeout(ctx, codeTimeout)
				var a struct {
					ID string `json:"id"`
				}
				status, err := r.c.Call(cctx, "POST", "/v1/notifications", r.apiKey, body, &a)
				cancel()
				var p *fleet.Problem
				if err == nil {
					res.id = a.ID
					break
				}
				if errors.As(err, &p) && status < 500 {
					res.refused = fmt.Sprintf("%d %s", status, p.Type)
					break
				}
				if errors.As(err, &p) {
					res.errors[fmt.Sprintf("%d %s", status, p.Type)]++
				} else {
					res.errors["no answer ("+transportClass(err)+")"]++
				}
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
				if ctx.Err() != nil {
					break
				}
			}
			r.mu.Lock()
			r.notices[i] = res
			r.mu.Unlock()
		}()
	}
	wg.Wait()
}

// codeTimeout is how long a caller waits for the answer to a code
// request: a person looking at a screen.
const codeTimeout = 15 * time.Second

// transportClass names a transport error briefly.
func transportClass(err error) string {
	s := err.Error()
	for _, k := range []string{"connection refused", "connection reset", "EOF", "timeout", "deadline exceeded"} {
		if strings.Contains(s, k) {
			return k
		}
	}
	return s
}

// progress prints a line every Progress.
func (r *runner) progress(ctx context.Context) {
	var lastFCM int
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(r.cfg.Progress):
		}
		st, err := r.fl.FCMStats(ctx)
		fcm := "fcm fake ?"
		if err == nil {
			fcm = fmt.Sprintf("pushes %d/%d (%.0f/s)", st.Count, r.cfg.Devices+r.cfg.AlertDevices,
				float64(st.Count-lastFCM)/r.cfg.Progress.Seconds())
			lastFCM = st.Count
		}
		sms := 0
		for _, g := range []string{"esms", "speedsms"} {
			if n, err := r.fl.FakeCount(ctx, g); err == nil {
				sms += n
			}
		}
		r.mu.Lock()
		asked, ok, refused := 0, 0, 0
		for _, c := range r.codes {
			switch {
			case c.phone == "":
			case c.status == 202:
				asked++
				ok++
			default:
				asked++
				refused++
			}
		}
		noticesOK := 0
		for _, n := range r.notices {
			if n.id != "" {
				noticesOK++
			}
		}
		var act []string
		for k := range r.active {
			act = append(act, k)
		}
		r.mu.Unlock()
		sort.Strings(act)
		var down []string
		for _, m := range r.fl.Members() {
			if !m.Running() {
				down = append(down, m.Name)
			}
		}
		line := fmt.Sprintf("%s  sms %d  codes %d asked (%d accepted, %d refused)", fcm, sms, asked, ok, refused)
		if r.cfg.Notices > 0 {
			line += fmt.Sprintf("  notifications %d accepted", noticesOK)
		}
		if len(act) > 0 {
			line += "  faults: " + strings.Join(act, ", ")
		}
		if len(down) > 0 {
			line += "  down: " + strings.Join(down, ", ")
		}
		r.mu.Lock()
		if r.awaited != "" {
			line += "  awaiting: " + r.awaited
		}
		r.mu.Unlock()
		r.logf("%s", line)
	}
}

// waitDone returns once every fault is over, the codes were all asked,
// every recipient was reached and the ledger has no pending delivery,
// and then the fakes saw nothing new for Quiet; or Deadline after the
// last fault.
func (r *runner) waitDone(ctx context.Context) error {
	var (
		quietSince time.Time
		lastTotal  = -1
	)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
		r.mu.Lock()
		faultsOver := r.scheduleDone
		r.mu.Unlock()
		if faultsOver.IsZero() || !r.codesDone.Load() || !r.noticesDone.Load() {
			continue
		}
		if time.Since(faultsOver) > r.cfg.Deadline {
			r.logf("deadline: not everything arrived within %v of the last fault", r.cfg.Deadline)
			return nil
		}
		done, total, awaited := r.complete(ctx)
		r.mu.Lock()
		r.awaited = awaited
		r.mu.Unlock()
		if !done {
			quietSince, lastTotal = time.Time{}, -1
			continue
		}
		r.mu.Lock()
		if r.doneAt == 0 {
			r.doneAt = time.Since(r.t0)
		}
		r.mu.Unlock()
		if total != lastTotal {
			quietSince, lastTotal = time.Now(), total
			continue
		}
		if time.Since(quietSince) >= r.cfg.Quiet {
			r.logf("everything arrived; the fakes were quiet for %v", r.cfg.Quiet)
			return nil
		}
	}
}

// unreached counts the recipients name(1…n) that got nothing and are not
// in doubt.
func unreached(n int, name func(i int) string, got map[string]int, doubt map[string]bool) int {
	out := 0
	for i := 1; i <= n; i++ {
		if to := name(i); got[to] == 0 && !doubt[to] {
			out++
		}
	}
	return out
}

// complete reports whether every recipient was reached (or, for a code or
// an alert, recorded in doubt) and the ledger counts no pending delivery,
// with the fakes' total of messages, and what is still awaited.
func (r *runner) complete(ctx context.Context) (bool, int, string) {
	fcm, err := r.fl.FakeCounts(ctx, "fcm")
	if err != nil {
		return false, 0, "the FCM fake's counts: " + err.Error()
	}
	total := fcm.Count
	var missing []string
	miss := func(n int, what string) {
		if n > 0 {
			missing = append(missing, fmt.Sprintf("%d %s", n, what))
		}
	}
	r.mu.Lock()
	codes := append([]codeResult(nil), r.codes...)
	alertID := r.alertID
	r.mu.Unlock()
	// A code's or an alert's delivery the ledger records in doubt is
	// never sent again: it is not awaited.
	pushDoubt, smsDoubt, codeDoubt := map[string]bool{}, map[string]bool{}, map[string]bool{}
	if alertID != "" {
		var perr, serr error
		pushDoubt, perr = r.inDoubt(ctx, alertID, "push")
		smsDoubt, serr = r.inDoubt(ctx, alertID, "sms")
		if err := errors.Join(perr, serr); err != nil {
			return false, total, "the alert's ledger: " + err.Error()
		}
	}
	rows, err := r.queryDeliveries(ctx, "code-%", "sms")
	if err != nil {
		return false, total, "the codes' ledger: " + err.Error()
	}
	for _, d := range rows {
		if d.class == inDoubtClass {
			codeDoubt[d.recipient] = true
		}
	}
	miss(unreached(r.cfg.Devices, func(i int) string { return fleet.Token(bulkPrefix, i) }, fcm.ByRecipient, nil), "broadcast devices")
	miss(unreached(r.cfg.AlertDevices, func(i int) string { return fleet.Token(alertPrefix, i) }, fcm.ByRecipient, pushDoubt), "alert devices")
	sms := map[string]int{}
	for _, g := range []string{"esms", "speedsms"} {
		c, err := r.fl.FakeCounts(ctx, g)
		if err != nil {
			return false, total, "the SMS fakes' counts: " + err.Error()
		}
		total += c.Count
		for k, v := range c.ByRecipient {
			sms[k] += v
		}
	}
	miss(unreached(r.cfg.AlertDevices, func(i int) string { return fleet.Phone(alertPhones, i) }, sms, smsDoubt), "alert phones")
	n := 0
	for _, c := range codes {
		if c.status == 202 && sms[c.phone] == 0 && !codeDoubt[c.phone] {
			n++
		}
	}
	miss(n, "accepted codes")
	n = 0
	r.mu.Lock()
	for _, nr := range r.notices {
		if nr.id != "" && sms[nr.phone] == 0 {
			n++
		}
	}
	r.mu.Unlock()
	miss(n, "accepted notifications")
	for _, id := range []string{r.broadcastID, alertID} {
		if id == "" {
			continue
		}
		pending, err := r.pendingDeliveries(ctx, id)
		if err != nil {
			missing = append(missing, "the ledger of "+id+": "+err.Error())
		}
		miss(pending, "pending in the ledger of "+id)
	}
	return len(missing) == 0, total, strings.Join(missing, ", ")
}
