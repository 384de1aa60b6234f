package main

import (
	"strings"
	"testing"
)

// TestProcs: a `loa dispatcher` that consumes the bulk lane runs on one
// processor by default; one of the urgent lanes alone, and every other
// command, keeps Go's default; LOA_PROCS sets another (for any command),
// and GOMAXPROCS, which the runtime reads itself, is left to win.
func TestProcs(t *testing.T) {
	for _, tc := range []struct {
		name string
		cmd  string
		env  map[string]string
		want int // 0: none set
	}{
		{"every lane keeps Go's default", "dispatcher", nil, 0},
		{"bulk beside the alerts", "dispatcher", map[string]string{"LOA_DISPATCHER_LANES": "bulk,alert"}, 0},
		{"bulk beside the codes", "dispatcher", map[string]string{"LOA_DISPATCHER_LANES": "OTP, bulk"}, 0},
		{"the bulk lane", "dispatcher", map[string]string{"LOA_DISPATCHER_LANES": "bulk"}, bulkDispatcherProcs},
		{"bulk among others", "dispatcher", map[string]string{"LOA_DISPATCHER_LANES": "direct, BULK"}, bulkDispatcherProcs},
		{"the urgent lanes", "dispatcher", map[string]string{"LOA_DISPATCHER_LANES": "otp,alert,direct"}, 0},
		{"the API keeps Go's default", "api", nil, 0},
		{"dev keeps Go's default", "dev", nil, 0},
		{"set for the dispatcher", "dispatcher", map[string]string{"LOA_PROCS": "2"}, 2},
		{"set for the urgent lanes", "dispatcher", map[string]string{"LOA_PROCS": "1", "LOA_DISPATCHER_LANES": "otp"}, 1},
		{"set for the API", "api", map[string]string{"LOA_PROCS": "4"}, 4},
		{"GOMAXPROCS wins", "dispatcher", map[string]string{"GOMAXPROCS": "2", "LOA_PROCS": "3"}, 0},
		{"malformed sets none", "dispatcher", map[string]string{"LOA_PROCS": "all"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, ok := procs([]string{"loa", tc.cmd}, func(k string) string { return tc.env[k] })
			if !ok {
				n = 0
			}
			if n != tc.want {
				t.Errorf("GOMAXPROCS %d; want %d", n, tc.want)
			}
		})
	}
}

// TestProcsMalformed: a LOA_PROCS that is not a number of processors is a
// configuration error naming the variable.
func TestProcsMalformed(t *testing.T) {
	for _, v := range []string{"all", "0", "-1", "1.5", "2 cores", "100000"} {
		_, err := loadConfig(func(k string) string {
			if k == "LOA_PROCS" {
				return v
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), "LOA_PROCS") {
			t.Errorf("LOA_PROCS=%q: %v", v, err)
		}
	}
	for _, v := range []string{"1", " 2 ", "64", "1024"} {
		if _, err := loadConfig(func(k string) string {
			if k == "LOA_PROCS" {
				return v
			}
			return ""
		}); err != nil {
			t.Errorf("LOA_PROCS=%q refused: %v", v, err)
		}
	}
}
