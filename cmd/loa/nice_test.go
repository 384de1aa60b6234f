package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/loa-hub/loa/internal/procstat"
)

// TestNiceLowersEveryThread: LOA_NICE's lowering reaches every thread of
// the process — those running when it is applied and those the runtime
// starts afterwards — not only the thread that applied it, which is all a
// setpriority on the process id does on Linux. It runs in a child
// process, since a process cannot raise its priority back.
func TestNiceLowersEveryThread(t *testing.T) {
	if os.Getenv("LOA_TEST_NICE_CHILD") != "" {
		niceChild()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestNiceLowersEveryThread$", "-test.count", "1")
	cmd.Env = append(os.Environ(), "LOA_TEST_NICE_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var threads int
	for _, line := range strings.Split(string(out), "\n") {
		tid, nice, ok := strings.Cut(strings.TrimPrefix(line, "thread "), " nice ")
		if !ok || !strings.HasPrefix(line, "thread ") {
			continue
		}
		threads++
		if nice != "7" {
			t.Errorf("thread %s runs at nice %s, want 7", tid, nice)
		}
	}
	if threads < 10 {
		t.Fatalf("the child reported %d threads, want the 8 it held and more:\n%s", threads, out)
	}
}

// niceChild holds eight threads, lowers the process to nice 7, holds
// eight more started afterwards, and prints every thread's nice value.
func niceChild() {
	var started, release sync.WaitGroup
	release.Add(1)
	hold := func(n int) {
		for range n {
			started.Add(1)
			go func() {
				runtime.LockOSThread()
				started.Done()
				release.Wait()
			}()
		}
		started.Wait()
	}
	hold(8)
	if err := lowerPriority(7); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	hold(8)
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	for _, e := range tasks {
		tid, _ := strconv.Atoi(e.Name())
		if n, err := procstat.ThreadNice(os.Getpid(), tid); err == nil {
			fmt.Printf("thread %d nice %d\n", tid, n)
		}
	}
	release.Done()
}

// TestNiceness: LOA_NICE from 1 to 19 is applied, 0 and unset apply
// nothing, and anything else is a configuration error naming it.
func TestNiceness(t *testing.T) {
	for v, want := range map[string]int{"": -1, "0": -1, "10": 10, "19": 19} {
		n, ok := niceness(func(string) string { return v })
		if !ok {
			n = -1
		}
		if n != want {
			t.Errorf("LOA_NICE=%q: %d, want %d", v, n, want)
		}
	}
	for _, v := range []string{"-5", "20", "low", "1.5"} {
		if _, ok := niceness(func(string) string { return v }); ok {
			t.Errorf("LOA_NICE=%q applied", v)
		}
		_, err := loadConfig(func(k string) string {
			if k == "LOA_NICE" {
				return v
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), "LOA_NICE") {
			t.Errorf("LOA_NICE=%q: %v", v, err)
		}
	}
}
