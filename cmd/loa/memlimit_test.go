package main

import (
	"strings"
	"testing"
)

// TestMemoryLimit: `loa dispatcher` runs under a soft memory limit by
// default; LOA_MEMORY_LIMIT sets another (for any command) or none, and
// GOMEMLIMIT, which the runtime reads itself, is left to win.
func TestMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		name string
		cmd  string
		env  map[string]string
		want int64 // -1: no limit set
	}{
		{"the dispatcher's default", "dispatcher", nil, dispatcherMemoryLimit},
		{"the API keeps Go's default", "api", nil, -1},
		{"set for the dispatcher", "dispatcher", map[string]string{"LOA_MEMORY_LIMIT": "96MiB"}, 96 << 20},
		{"set for the API", "api", map[string]string{"LOA_MEMORY_LIMIT": "1GiB"}, 1 << 30},
		{"in bytes", "dispatcher", map[string]string{"LOA_MEMORY_LIMIT": "100000000"}, 100000000},
		{"off", "dispatcher", map[string]string{"LOA_MEMORY_LIMIT": "off"}, -1},
		{"GOMEMLIMIT wins", "dispatcher", map[string]string{"GOMEMLIMIT": "200MiB", "LOA_MEMORY_LIMIT": "96MiB"}, -1},
		{"malformed sets none", "dispatcher", map[string]string{"LOA_MEMORY_LIMIT": "lots"}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, ok := memoryLimit([]string{"loa", tc.cmd}, func(k string) string { return tc.env[k] })
			if !ok {
				n = -1
			}
			if n != tc.want {
				t.Errorf("limit %d; want %d", n, tc.want)
			}
		})
	}
}

// TestMemoryLimitMalformed: a LOA_MEMORY_LIMIT that is not a size, or is
// too small to run on, is a configuration error naming the variable.
func TestMemoryLimitMalformed(t *testing.T) {
	for _, v := range []string{"lots", "96 MB", "-5MiB", "0", "16MiB", "1KiB"} {
		_, err := loadConfig(func(k string) string {
			if k == "LOA_MEMORY_LIMIT" {
				return v
			}
			return ""
		})
		if err == nil {
			t.Errorf("LOA_MEMORY_LIMIT=%q accepted", v)
		}
	}
	for _, v := range []string{"off", "64MiB", "2GiB", "134217728", "65536KiB"} {
		if _, err := loadConfig(func(k string) string {
			if k == "LOA_MEMORY_LIMIT" {
				return v
			}
			return ""
		}); err != nil {
			t.Errorf("LOA_MEMORY_LIMIT=%q refused: %v", v, err)
		}
	}
}

// TestGCPercent: `loa dispatcher` collects at GOGC 200 by default, under
// its soft memory limit; LOA_GC_PERCENT sets another (for any command),
// and GOGC, which the runtime reads itself, is left to win.
func TestGCPercent(t *testing.T) {
	for _, tc := range []struct {
		name string
		cmd  string
		env  map[string]string
		want int // 0: none set
	}{
		{"the dispatcher's default", "dispatcher", nil, dispatcherGCPercent},
		{"the API keeps Go's default", "api", nil, 0},
		{"set for the dispatcher", "dispatcher", map[string]string{"LOA_GC_PERCENT": "100"}, 100},
		{"set for the API", "api", map[string]string{"LOA_GC_PERCENT": "150"}, 150},
		{"GOGC wins", "dispatcher", map[string]string{"GOGC": "50", "LOA_GC_PERCENT": "300"}, 0},
		{"malformed sets none", "dispatcher", map[string]string{"LOA_GC_PERCENT": "lots"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, ok := gcPercent([]string{"loa", tc.cmd}, func(k string) string { return tc.env[k] })
			if !ok {
				n = 0
			}
			if n != tc.want {
				t.Errorf("GOGC %d; want %d", n, tc.want)
			}
		})
	}
	if dispatcherGCPercent <= 100 {
		t.Errorf("the dispatcher's GOGC is %d, Go's default or less", dispatcherGCPercent)
	}
}

// TestGCPercentMalformed: a LOA_GC_PERCENT that is not a percentage the
// dispatcher can run on is a configuration error naming the variable.
func TestGCPercentMalformed(t *testing.T) {
	for _, v := range []string{"lots", "off", "-1", "0", "10", "200%", "100000"} {
		_, err := loadConfig(func(k string) string {
			if k == "LOA_GC_PERCENT" {
				return v
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), "LOA_GC_PERCENT") {
			t.Errorf("LOA_GC_PERCENT=%q: %v", v, err)
		}
	}
	for _, v := range []string{"25", "100", " 200 ", "10000"} {
		if _, err := loadConfig(func(k string) string {
			if k == "LOA_GC_PERCENT" {
				return v
			}
			return ""
		}); err != nil {
			t.Errorf("LOA_GC_PERCENT=%q refused: %v", v, err)
		}
	}
}
