package chaos

import (
	"bytes"
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
