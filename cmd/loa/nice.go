package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/loa-hub/loa/internal/procstat"
)

// niceness is the nice value LOA_NICE asks the process to run at, and
// whether to apply one. A malformed value applies none here; loadConfig
// reports it.
func niceness(getenv func(string) string) (int, bool) {
	v := strings.TrimSpace(getenv("LOA_NICE"))
	if v == "" {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 19 {
		return 0, false
	}
	return n, n > 0
}

// lowerPriority runs the whole process at nice n at least, so that the
// kernel gives the CPU to the processes beside it first when both want
// it (a bulk dispatcher beside the urgent lanes' and the API). Linux keeps
// a nice value per thread, and a new thread takes its creator's: each
// thread is set, pass after pass until one finds none left below n (one
// started during a pass is set in the next), and every thread the Go
// runtime starts afterwards is created at n. A thread already nicer is
// left as it is: an unprivileged process may lower its priority, not raise
// it.
func lowerPriority(n int) error {
	for {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("LOA_NICE: %w", err)
		}
		changed := false
		for _, e := range tasks {
			tid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			cur, err := procstat.ThreadNice(os.Getpid(), tid)
			if err != nil || cur >= n {
				continue // ended, or nice enough
			}
			if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, n); err != nil {
				if errors.Is(err, syscall.ESRCH) {
					continue
				}
				return fmt.Errorf("LOA_NICE: setting thread %d to nice %d: %w", tid, n, err)
			}
			changed = true
		}
		if !changed {
			return nil
		}
	}
}
