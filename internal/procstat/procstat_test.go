package procstat

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"
)

func TestSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	pid := os.Getpid()
	before, err := CPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
	}
	after, _ := CPU(pid)
	if after <= before {
		t.Errorf("CPU did not grow while spinning: %v → %v", before, after)
	}
	m, err := Mem(pid)
	if err != nil || m.RSS <= 0 || m.Peak < m.RSS || m.Anon <= 0 || m.File <= 0 || m.Anon+m.File > m.RSS {
		t.Errorf("Mem = %+v, %v", m, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if got, err := ListeningPID(ln.Addr().(*net.TCPAddr).Port); err != nil || got != pid {
		t.Errorf("ListeningPID = %d, %v; want %d", got, err, pid)
	}
	ln.Close()
	if _, err := ListeningPID(ln.Addr().(*net.TCPAddr).Port); !errors.Is(err, ErrNotFound) {
		t.Errorf("a closed port: %v", err)
	}
}

func TestTree(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	pids, err := Tree(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range pids {
		found = found || p == cmd.Process.Pid
	}
	if !found {
		t.Errorf("the child %d is not in the tree %v", cmd.Process.Pid, pids)
	}
	if Root(cmd.Process.Pid) != cmd.Process.Pid {
		t.Error("Root of a sleep under go test is not itself")
	}
	if _, err := TreeCPU(os.Getpid()); err != nil {
		t.Error(err)
	}
	if n, err := TreePSS(os.Getpid()); err != nil || n <= 0 {
		t.Errorf("TreePSS = %d, %v", n, err)
	}
	if err := ResetPeak(os.Getpid()); err != nil {
		t.Error(err)
	}
}

// TestNice: a process's threads' nice values, the least and the greatest;
// a thread of this test process set nicer shows as the greatest.
func TestNice(t *testing.T) {
	lo, hi, err := Nice(os.Getpid())
	if err != nil || lo > hi {
		t.Fatalf("Nice: %d, %d, %v", lo, hi, err)
	}
	done := make(chan int)
	go func() {
		runtime.LockOSThread() // the thread ends with the goroutine
		tid := syscall.Gettid()
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, 19); err != nil {
			t.Error(err)
		}
		done <- tid
		<-done
	}()
	tid := <-done
	if n, err := ThreadNice(os.Getpid(), tid); err != nil || n != 19 {
		t.Errorf("ThreadNice of the thread set to 19: %d, %v", n, err)
	}
	if _, hi, err := Nice(os.Getpid()); err != nil || hi != 19 {
		t.Errorf("Nice's greatest: %d, %v; want 19", hi, err)
	}
	done <- 0
}

// TestSwitches puts this test's thread to sleep in the kernel
// (nanosleep, which always gives up the CPU: the switch measured, not a
// wait for anything): the thread's count grows by each sleep, and the
// process's counts include it. (The process's own total may fall: a
// thread that ends takes its count with it.)
func TestSwitches(t *testing.T) {
	if _, err := os.Stat("/proc/self/task"); err != nil {
		t.Skip("no /proc")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pid, tid := os.Getpid(), syscall.Gettid()
	before, err := threadSwitches(pid, tid)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		syscall.Nanosleep(&syscall.Timespec{Nsec: 1000}, nil)
	}
	after, _ := threadSwitches(pid, tid)
	if after < before+3 {
		t.Errorf("the thread's switches %d → %d after three sleeps", before, after)
	}
	all, err := Switches(pid)
	if err != nil || all < after {
		t.Errorf("Switches = %d, %v; the thread alone has %d", all, err, after)
	}
	tree, err := TreeSwitches(pid)
	if err != nil || len(tree) != 1 || tree[pid] < after {
		t.Errorf("TreeSwitches = %v, %v", tree, err)
	}
}
