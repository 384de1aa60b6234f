package main

import (
	"testing"
	"time"
)

// TestOffsetMarks: a partition's offset is committed only up to the last
// message all of whose predecessors are done, whatever order they finish
// in; gaps between fetched offsets do not hold it back.
func TestOffsetMarks(t *testing.T) {
	var o offsetMarks
	for _, off := range []int64{10, 11, 12, 14, 15} { // 13 never fetched
		o.fetched(off)
	}
	steps := []struct {
		done int64
		upTo int64
		ok   bool
	}{
		{11, 0, false}, // 10 still in hand
		{14, 0, false},
		{10, 11, true},
		{12, 14, true}, // 13 is a gap; 14 was done
		{15, 15, true},
	}
	for _, s := range steps {
		upTo, ok := o.done(s.done)
		if upTo != s.upTo || ok != s.ok {
			t.Fatalf("done(%d) = %d, %v; want %d, %v", s.done, upTo, ok, s.upTo, s.ok)
		}
	}
	if len(o.inHand) != 0 || len(o.doneAt) != 0 {
		t.Errorf("left in hand %v, done %v", o.inHand, o.doneAt)
	}
}

// TestFloorTimes: a code is timed from its request to its first arrival;
// one that never arrived, or arrived before it was asked (a stale
// arrival of the same phone), is missing.
func TestFloorTimes(t *testing.T) {
	t0 := time.Unix(1000, 0)
	asked := map[string]time.Time{"a": t0, "b": t0.Add(time.Second), "c": t0, "d": t0.Add(2 * time.Second)}
	arrived := map[string]time.Time{"a": t0.Add(30 * time.Millisecond), "b": t0.Add(1010 * time.Millisecond), "d": t0.Add(time.Second), "x": t0}
	got, missing := floorTimes(asked, arrived)
	if missing != 2 || len(got) != 2 || got[0] != 10*time.Millisecond || got[1] != 30*time.Millisecond {
		t.Errorf("floorTimes = %v, %d missing; want [10ms 30ms], 2", got, missing)
	}
}

// TestSwitchDelta counts only the processes read at both ends: a
// PostgreSQL backend that ended or began between them would otherwise
// subtract or add its whole life's switches.
func TestSwitchDelta(t *testing.T) {
	before := map[int]int64{1: 100, 2: 50, 3: 1000}
	after := map[int]int64{1: 130, 2: 55, 4: 9000}
	if got := switchDelta(before, after); got != 35 {
		t.Errorf("switchDelta = %d, want 35", got)
	}
}
