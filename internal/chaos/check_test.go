package chaos

import (
	"strings"
	"testing"
)

// TestRepeatBudget: the sends a killed dispatcher had not recorded bound
// the repeats of every lane that is not sent at most once, together: a
// direct notification under way at the kill may come twice (its lease
// lost with Redis before it lapsed, the takeover is not seen), within
// what the broadcast left of the gauge; without a kill, or past the
// budget, a repeat beyond those sent again after no answer breaks the
// promise.
func TestRepeatBudget(t *testing.T) {
	kill := func(unmarked int64) FaultRecord {
		return FaultRecord{Event: Event{Kind: KillDispatcher}, Unmarked: unmarked}
	}
	cases := []struct {
		name            string
		faults          []FaultRecord
		bulkDup, bulkNA int
		noteDup, noteNA int
		bulkOK, noteOK  bool
	}{
		{"no kill, no repeat", nil, 0, 0, 0, 0, true, true},
		{"no kill, a notification repeated", nil, 0, 0, 1, 0, true, false},
		{"no kill, repeats sent again after no answer", nil, 13, 13, 1, 1, true, true},
		{"a kill: the broadcast and a notification within its unmarked sends", []FaultRecord{kill(130)}, 70, 0, 1, 0, true, true},
		{"a kill: the broadcast took the whole budget", []FaultRecord{kill(70)}, 70, 0, 1, 0, true, false},
		{"a kill: unanswered resends take none of it", []FaultRecord{kill(70)}, 83, 13, 1, 0, true, false},
		{"two kills add up", []FaultRecord{kill(3), kill(2)}, 4, 0, 1, 0, true, true},
		{"the broadcast beyond the budget", []FaultRecord{kill(3)}, 4, 0, 0, 0, false, true},
		{"a kill not measured", []FaultRecord{kill(-1)}, 0, 0, 1, 0, true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			kb := killBudget(c.faults)
			bulk := Row{Kind: KindBroadcast, Duplicates: c.bulkDup}
			kb.judge(&bulk, "every device", "FCM", c.bulkNA)
			note := Row{Kind: KindNotices, Duplicates: c.noteDup}
			kb.judge(&note, "each delivered", "the gateway", c.noteNA)
			if ok := len(bulk.Broken) == 0; ok != c.bulkOK {
				t.Errorf("broadcast kept=%v, want %v: %s %v", ok, c.bulkOK, bulk.Promise, bulk.Broken)
			}
			if ok := len(note.Broken) == 0; ok != c.noteOK {
				t.Errorf("notifications kept=%v, want %v: %s %v", ok, c.noteOK, note.Promise, note.Broken)
			}
			if !strings.HasPrefix(note.Promise, "each delivered; repeats ≤") {
				t.Errorf("promise %q", note.Promise)
			}
		})
	}
}
