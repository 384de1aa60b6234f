package main

import (
	"fmt"
	"strconv"
	"strings"
)

// bulkDispatcherProcs is the Go runtime's GOMAXPROCS of a `loa
// dispatcher` that consumes the bulk lane, unless LOA_PROCS or GOMAXPROCS
// says otherwise. A push is a handful of hand-offs between goroutines —
// a batch to a sender, a sender to its connection's writer, the read
// loop back to the sender, the sender to the marker — each a few
// microseconds of work. With a processor per core, each hand-off to an
// idle processor wakes a thread of its own (a futex call) that then spins
// looking for more work and parks again; on one processor the woken
// goroutine runs next on the same thread, and more requests and answers
// share each write and read. On the 2-core benchmark machine a bulk
// dispatcher spent 5–17 % less CPU a push this way (docs/testing.md),
// and needs 0.6–0.8 of a core for 10,000 pushes a second (62–81 CPU-µs
// a push at 0 and 20 ms): a process needing more than a core is better
// run as more replicas (they share the lanes through consumer groups),
// or given LOA_PROCS. A dispatcher that also consumes the codes' or the
// alerts' lane — the default, every lane — keeps Go's default: a code or
// an alert never waits for a broadcast goroutine's turn on one processor,
// nor is capped at one core beside a broadcast.
const bulkDispatcherProcs = 1

// procs is the GOMAXPROCS to set for the command args[1], and whether to
// set one: none when GOMAXPROCS is set (the runtime has read it);
// LOA_PROCS's value when given; bulkDispatcherProcs for `loa dispatcher`
// of the bulk lane without the codes' and alerts' lanes
// (LOA_DISPATCHER_LANES naming bulk and neither otp nor alert); else none (Go's default: the cores it may use). A malformed LOA_PROCS
// sets none here; loadConfig reports it.
func procs(args []string, getenv func(string) string) (int, bool) {
	if getenv("GOMAXPROCS") != "" {
		return 0, false
	}
	if v := getenv("LOA_PROCS"); v != "" {
		n, err := parseProcs(v)
		return n, err == nil
	}
	if len(args) > 1 && args[1] == "dispatcher" && bulkOnly(getenv("LOA_DISPATCHER_LANES")) {
		return bulkDispatcherProcs, true
	}
	return 0, false
}

// bulkOnly reports whether LOA_DISPATCHER_LANES's value lanes has the
// dispatcher consume the bulk lane and neither the codes' (otp) nor the
// alerts' lane; unset means every lane, so not.
func bulkOnly(lanes string) bool {
	bulk := false
	for _, l := range strings.Split(lanes, ",") {
		switch strings.ToLower(strings.TrimSpace(l)) {
		case "bulk":
			bulk = true
		case "otp", "alert":
			return false
		}
	}
	return bulk
}

// parseProcs reads LOA_PROCS: a whole number of processors from 1 to 1024.
func parseProcs(v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 1 || n > 1024 {
		return 0, fmt.Errorf("LOA_PROCS: %q is not a number of processors from 1 to 1024", v)
	}
	return n, nil
}
