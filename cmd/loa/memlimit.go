package main

import (
	"fmt"
	"strconv"
	"strings"
)

// dispatcherMemoryLimit is the Go runtime's soft memory limit of
// `loa dispatcher` unless LOA_MEMORY_LIMIT or GOMEMLIMIT says otherwise.
// The dispatcher's live heap is its batches in flight, the readers'
// queues and its connections' buffers — 25 to 35 MB whatever the size of
// a broadcast — but with Go's default (GOGC=100, no limit) the heap grows
// to twice that before a collection, and the runtime keeps what it freed
// after a peak. Under the limit it collects sooner and returns freed pages
// once its memory (heap, stacks, runtime metadata; not the binary's code
// mapped from its file, 33–35 MiB more of the resident set) nears it.
const dispatcherMemoryLimit = 80 << 20

// memoryLimit is the soft memory limit to set for the command args[1],
// and whether to set one: none when GOMEMLIMIT is set (the runtime has
// read it) or LOA_MEMORY_LIMIT is "off"; LOA_MEMORY_LIMIT's size when
// given; dispatcherMemoryLimit for `loa dispatcher`; else none. A
// malformed LOA_MEMORY_LIMIT sets none here; loadConfig reports it.
func memoryLimit(args []string, getenv func(string) string) (int64, bool) {
	if getenv("GOMEMLIMIT") != "" {
		return 0, false
	}
	if v := getenv("LOA_MEMORY_LIMIT"); v != "" {
		n, err := parseMemoryLimit(v)
		return n, err == nil && n > 0
	}
	if len(args) > 1 && args[1] == "dispatcher" {
		return dispatcherMemoryLimit, true
	}
	return 0, false
}

// dispatcherGCPercent is the Go runtime's GOGC of `loa dispatcher` unless
// LOA_GC_PERCENT or GOGC says otherwise. A push allocates about 14 KB,
// most of it the FCM SDK's and HTTP/2's per request, so the collector's
// cost is the allocation rate over GOGC: at Go's default of 100 a
// 100,000-device broadcast took about 100 collections, each scanning the
// senders' stacks and shrinking those parked shallow (to grow them again
// at the next send). At 200 the heap may grow to three times the live
// heap between collections, and the soft memory limit still caps it: the
// runtime collects sooner whenever its memory nears the limit, so the
// resident set's peak stays the limit's. See docs/testing.md for the
// measurements.
const dispatcherGCPercent = 200

// gcPercent is the GOGC to set for the command args[1], and whether to
// set one: none when GOGC is set (the runtime has read it);
// LOA_GC_PERCENT's value when given; dispatcherGCPercent for
// `loa dispatcher`; else none.
// A malformed LOA_GC_PERCENT sets none here; loadConfig reports it.
func gcPercent(args []string, getenv func(string) string) (int, bool) {
	if getenv("GOGC") != "" {
		return 0, false
	}
	if v := getenv("LOA_GC_PERCENT"); v != "" {
		n, err := parseGCPercent(v)
		return n, err == nil
	}
	if len(args) > 1 && args[1] == "dispatcher" {
		return dispatcherGCPercent, true
	}
	return 0, false
}

// parseGCPercent reads LOA_GC_PERCENT: a whole percentage from 25 to
// 10000, as GOGC takes it. Not "off": without collections the heap would
// grow to the memory limit, or without one, without bound.
func parseGCPercent(v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 25 || n > 10000 {
		return 0, fmt.Errorf("LOA_GC_PERCENT: %q is not a percentage from 25 to 10000", v)
	}
	return n, nil
}

// minMemoryLimit is the least LOA_MEMORY_LIMIT accepted: below it the
// runtime would collect without pause.
const minMemoryLimit = 32 << 20

// parseMemoryLimit reads LOA_MEMORY_LIMIT: "off" (0), or a size in
// GOMEMLIMIT's form — a whole number of bytes, or with a B, KiB, MiB or
// GiB suffix — of at least minMemoryLimit.
func parseMemoryLimit(v string) (int64, error) {
	v = strings.TrimSpace(v)
	if strings.EqualFold(v, "off") {
		return 0, nil
	}
	num, unit := v, int64(1)
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}} {
		if s, ok := strings.CutSuffix(v, u.suffix); ok {
			num, unit = s, u.size
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n <= 0 || n > (1<<50)/unit {
		return 0, fmt.Errorf("LOA_MEMORY_LIMIT: %q is not a size such as 96MiB (or off)", v)
	}
	if n*unit < minMemoryLimit {
		return 0, fmt.Errorf("LOA_MEMORY_LIMIT: %q is under 32MiB", v)
	}
	return n * unit, nil
}
