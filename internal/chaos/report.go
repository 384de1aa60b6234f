package chaos

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Print writes the report: the faults as they happened, a table per kind
// of traffic, the codes' answers, breakers, dead letters, processes, and
// every broken promise.
func (rep *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "\n==== chaos report: %d devices, an alert to %d devices and phones, %d codes; Redis %s ====\n\n",
		rep.Devices, rep.AlertDevices, rep.Codes, persistence(rep.RedisAOF))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "fault\tplanned\tstarted\tended\tin flight at kill (fake / replica)\tresult")
	for _, f := range rep.Faults {
		inflight := ""
		if f.Kind == KillDispatcher {
			inflight = fmt.Sprintf("%d / %s", f.FakeInFlight, orNA(f.Unmarked))
		}
		res := "ok"
		if f.Err != "" {
			res = f.Err
		}
		fmt.Fprintf(tw, "%s\tT+%v\tT+%v\tT+%v\t%s\t%s\n", f.Event, f.At, f.Started.Round(100*time.Millisecond),
			f.Ended.Round(100*time.Millisecond), inflight, res)
	}
	tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kind\ttargeted\treached\tlost\trepeats\trecipients repeated\tfake accepted\tledger sent\tledger failed\tledger pending\tverdict\t")
	for _, r := range rep.Rows {
		verdict := "kept"
		if len(r.Broken) > 0 {
			verdict = "BROKEN"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t\n", r.Kind, r.Targeted, r.Reached, r.Lost, r.Duplicates, r.Repeated,
			r.FakeCount, r.LedgerSent, r.LedgerFailed, r.LedgerPending, verdict)
	}
	tw.Flush()
	for _, r := range rep.Rows {
		fmt.Fprintf(w, "  %s: %s\n", r.Kind, r.Promise)
		if r.InDoubt > 0 {
			fmt.Fprintf(w, "    in doubt after a kill or a provider call without an answer (recorded failed with a dead letter, not sent again): %d, of which %d had arrived\n",
				r.InDoubt, r.InDoubtReached)
		}
	}

	cs := rep.CodeSummary
	fmt.Fprintf(w, "\ncodes: %d asked; %d accepted (%d delivered once, %d lost, %d repeated); %d refused; %d without an answer\n",
		cs.Asked, cs.Accepted, cs.AcceptedDelivered, cs.AcceptedLost, cs.AcceptedRepeated, sum(cs.Refused), sum(cs.NoAnswer))
	for _, k := range sortedKeys(cs.Refused) {
		fmt.Fprintf(w, "  refused %-60s %d\n", k, cs.Refused[k])
	}
	for _, k := range sortedKeys(cs.NoAnswer) {
		fmt.Fprintf(w, "  no answer (%s)%*s %d\n", k, max(0, 48-len(k)), "", cs.NoAnswer[k])
	}
	if cs.AcceptedInDoubt > 0 {
		fmt.Fprintf(w, "  accepted and in doubt after a kill or a provider call without an answer (not sent again): %d, of which %d never arrived (the person asks for a new code)\n",
			cs.AcceptedInDoubt, cs.AcceptedInDoubtLost)
	}
	if cs.RefusedDelivered+cs.NoAnswerDelivered > 0 {
		fmt.Fprintf(w, "  sent although the caller saw an error: %d refused (withdrawn: the code in it does not work), %d without an answer (the caller asks again)\n",
			cs.RefusedDelivered, cs.NoAnswerDelivered)
	}

	if len(rep.NoticeErrors) > 0 {
		fmt.Fprintln(w, "notifications: answers before acceptance (each then tried again with its idempotency key):")
		for _, k := range sortedKeys(rep.NoticeErrors) {
			fmt.Fprintf(w, "  %-60s %d\n", k, rep.NoticeErrors[k])
		}
	}
	if rep.DoneAt > 0 {
		fmt.Fprintf(w, "\neverything arrived and the ledger had nothing pending at T+%v\n", rep.DoneAt.Round(time.Second))
	}
	if len(rep.Breakers) > 0 {
		fmt.Fprintln(w, "\ncircuit breakers:")
		for _, b := range rep.Breakers {
			why := "while the provider was failing"
			if !b.Expected {
				why = "while the provider was NOT failing"
			}
			fmt.Fprintf(w, "  T+%-8v %s %s %s → %s (%s)\n", b.At.Round(100*time.Millisecond), b.Process, b.Provider, b.From, b.To, why)
			if b.LastFailure != "" {
				fmt.Fprintf(w, "             tripped by: %s\n", b.LastFailure)
			}
		}
	}
	fmt.Fprintf(w, "\ndead letters: %d\n", len(rep.DeadLetters))
	for _, d := range rep.DeadLetters {
		fmt.Fprintf(w, "  %s %s to %s via %s: %s\n", d.ID, d.Channel, d.Recipient, d.Provider, d.Reason)
	}
	var procs []string
	for _, p := range rep.Processes {
		procs = append(procs, fmt.Sprintf("%s started %d× (%d exits by itself)", p.Name, p.Starts, p.Exits))
	}
	fmt.Fprintf(w, "processes: %s\n", strings.Join(procs, "; "))
	if rep.RedisSentinel {
		fmt.Fprintf(w, "\nRedis with Sentinels: %s\n", sentinelPromise)
	} else {
		fmt.Fprintf(w, "\nRedis %s: %s\n", persistence(rep.RedisAOF), redisPromise(rep.RedisAOF))
	}

	if len(rep.Broken) == 0 {
		fmt.Fprintln(w, "\nevery promise kept")
		return
	}
	fmt.Fprintf(w, "\n%d promise(s) broken:\n", len(rep.Broken))
	for _, b := range rep.Broken {
		fmt.Fprintf(w, "  - %s\n", b)
	}
}

// redisPromise is what Loa promises across a Redis restart.
func redisPromise(aof bool) string {
	if aof {
		return "a restart loses nothing Loa keeps there: sessions, codes waiting to be verified, delivery claims and rate-limit buckets come back."
	}
	return "a restart empties it: officials and citizens sign in again, a code issued before it can no longer be verified (the caller asks for a new one), rate limits start afresh; nothing is lost and no code or alert is sent twice."
}

// sentinelPromise is what Loa promises across a Sentinel failover.
const sentinelPromise = "Loa's processes follow the promoted replica without a restart; a write the old master acknowledged in its last moments may be missing on the replica (replication is asynchronous), so a session or a code may have to be asked for again; nothing is lost and no code or alert is sent twice."

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
