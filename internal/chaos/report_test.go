package chaos

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestReportPrint: the table names every kind with its verdict, the
// faults with the sends in flight at a kill, and lists each broken
// promise; the schedules print in time order.
func TestReportPrint(t *testing.T) {
	rep := &Report{Devices: 100, AlertDevices: 10, Codes: 5,
		Rows: []Row{
			{Kind: KindBroadcast, Targeted: 100, Reached: 100, Duplicates: 3, Repeated: 3, FakeCount: 103, LedgerSent: 100, Promise: "p"},
			{Kind: KindAlertSMS, Targeted: 10, Reached: 9, Lost: 1, FakeCount: 9, LedgerSent: 9, Broken: []string{"1 recipients never reached"}},
		},
		CodeSummary: CodeSummary{Asked: 5, Accepted: 4, AcceptedDelivered: 4, Refused: map[string]int{"503 urn:loa:problem:unavailable": 1},
			NoAnswer: map[string]int{}},
		Faults: []FaultRecord{{Event: Event{At: 10 * time.Second, Kind: KillDispatcher, Down: 2 * time.Second}, Started: 10 * time.Second,
			Ended: 12 * time.Second, FakeInFlight: 7, Unmarked: 42}},
		Broken: []string{"alert sms: 1 recipients never reached"},
	}
	var b bytes.Buffer
	rep.Print(&b)
	out := b.String()
	for _, want := range []string{"broadcast push", "kept", "BROKEN", "SIGKILL dispatcher-1, back after 2s", "7 / 42",
		"refused 503 urn:loa:problem:unavailable", "1 promise(s) broken", "- alert sms: 1 recipients never reached", "Redis without persistence"} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q:\n%s", want, out)
		}
	}
	if rep.Row(KindAlertSMS).Lost != 1 || rep.Row("nothing").Kind != "" {
		t.Error("Row")
	}

	for _, s := range [][]Event{FullSchedule(90 * time.Second), ShortSchedule()} {
		kinds := map[Kind]bool{}
		for i, e := range s {
			kinds[e.Kind] = true
			if i > 0 && e.At < s[i-1].At {
				t.Errorf("schedule out of order at %d: %v after %v", i, e.At, s[i-1].At)
			}
		}
		for _, k := range []Kind{KillDispatcher, KillAPI, RestartKafka, RestartRedis, RestartPostgres, StallFCM, FailSMS} {
			if !kinds[k] {
				t.Errorf("a schedule has no %s", k)
			}
		}
		b.Reset()
		printSchedule(&b, s)
		if strings.Count(b.String(), "\n") != len(s)+1 {
			t.Errorf("printed schedule:\n%s", b.String())
		}
	}
	if n := len(FullSchedule(90 * time.Second)); n != 9+6 {
		t.Errorf("the full schedule has %d events, want 9 kills and 6 other faults", n)
	}
}

// TestBreakerOpeningAfterAStallIsExpected: the FCM fake stalls from T+8s
// to T+18s and holds what it took; with a 30 s send timeout those sends
// fail from T+38s, and a breaker opening then is the stall's doing, as is
// its closing after the open time. An opening long after, or at the SMS
// gateway for an FCM stall, is not. The failure that tripped it is read
// from the log line.
func TestBreakerOpeningAfterAStallIsExpected(t *testing.T) {
	faults := []FaultRecord{{Event: Event{Kind: StallFCM}, Started: 8 * time.Second, Ended: 18 * time.Second}}
	env := map[string]string{"LOA_SEND_TIMEOUT": "30s", "LOA_BREAKER_OPEN_FOR": "10s"}
	changes := []BreakerChange{
		{At: 38100 * time.Millisecond, Provider: "fcm:loa-fake", To: "open"},
		{At: 48200 * time.Millisecond, Provider: "fcm:loa-fake", To: "closed"},
		{At: 38100 * time.Millisecond, Provider: "esms", To: "open"},
		{At: 90 * time.Second, Provider: "fcm:loa-fake", To: "open"},
		{At: 5 * time.Second, Provider: "fcm:loa-fake", To: "open"},
	}
	markExpected(changes, faults, env)
	for i, want := range []bool{true, true, false, false, false} {
		if changes[i].Expected != want {
			t.Errorf("%s %s at T+%v: expected %v, want %v", changes[i].Provider, changes[i].To, changes[i].At, changes[i].Expected, want)
		}
	}

	line := `time=2026-11-29T07:22:41.183Z level=WARN msg="circuit breaker state changed" provider=fcm:loa-fake from=closed to=open last_failure="channels: transient from fcm:loa-fake (timeout): fcm: send: no answer within 30s"`
	if m := breakerLine.FindStringSubmatch(line); m == nil || m[4] != "open" {
		t.Errorf("breakerLine: %q", m)
	}
	if m := lastFailure.FindStringSubmatch(line); m == nil || !strings.Contains(m[1], "no answer within 30s") {
		t.Errorf("lastFailure: %q", m)
	}
}

// TestUnansweredLineMatchesTheDispatchersLog: the check reads the
// dispatcher's report of sends tried again without an answer as the text
// handler writes it.
func TestUnansweredLineMatchesTheDispatchersLog(t *testing.T) {
	var b bytes.Buffer
	slog.New(slog.NewTextHandler(&b, nil)).Warn("provider calls failed without an answer; the provider may have had those messages",
		slog.String("lane", "bulk"), slog.String("notification_id", "bc-1"), slog.Int("sent_again", 7), slog.Int("in_doubt", 0))
	m := unansweredLine.FindStringSubmatch(b.String())
	if m == nil || m[1] != "bulk" || m[2] != "bc-1" || m[3] != "7" {
		t.Errorf("unansweredLine on %q: %q", b.String(), m)
	}
}

// TestInDoubtIsNotAwaited: the run waits for every recipient to be
// reached, except a code's or an alert's delivery the ledger records in
// doubt, which is never sent again.
func TestInDoubtIsNotAwaited(t *testing.T) {
	name := func(i int) string { return []string{"", "a", "b", "c"}[i] }
	got := map[string]int{"a": 1}
	if n := unreached(3, name, got, nil); n != 2 {
		t.Errorf("unreached = %d, want 2", n)
	}
	if n := unreached(3, name, got, map[string]bool{"b": true}); n != 1 {
		t.Errorf("with b in doubt: unreached = %d, want 1", n)
	}
}
