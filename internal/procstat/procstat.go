// Package procstat reads what a process has used from Linux's /proc: CPU
// time (its own, and its whole tree's, for servers such as PostgreSQL
// that run a process per connection) and resident memory, and finds the
// process listening on a TCP port. Benchmarks and the chaos run use it to
// report Loa's processes apart from the fakes' and the services'.
//
// Every function reads /proc afresh and is safe for concurrent use. On a
// system without /proc they return errors.
package procstat

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of /proc/<pid>/stat's times: USER_HZ, 100 on every
// Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// stat is the part of /proc/<pid>/stat used here.
type stat struct {
	ppid                         int
	utime, stime, cutime, cstime int64 // clock ticks
	rssPages                     int64
}

func readStat(pid int) (stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, fmt.Errorf("procstat: %w", err)
	}
	// The command name is in parentheses and may hold spaces: the fields
	// start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return stat{}, fmt.Errorf("procstat: /proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, so f[11].
	if len(f) < 22 {
		return stat{}, fmt.Errorf("procstat: /proc/%d/stat: %d fields", pid, len(f))
	}
	n := func(k int) int64 { v, _ := strconv.ParseInt(f[k], 10, 64); return v }
	return stat{ppid: int(n(1)), utime: n(11), stime: n(12), cutime: n(13), cstime: n(14), rssPages: n(21)}, nil
}

// CPU returns the CPU time (user + system) pid has used, and the time of
// its children it has waited for.
func CPU(pid int) (time.Duration, error) {
	s, err := readStat(pid)
	if err != nil {
		return 0, err
	}
	return time.Duration(s.utime+s.stime+s.cutime+s.cstime) * clockTick, nil
}

// TreeCPU returns CPU for pid and every live descendant: a PostgreSQL
// postmaster with its backends (whose time, when they exit, moves into
// the postmaster's own count).
func TreeCPU(pid int) (time.Duration, error) {
	pids, err := Tree(pid)
	if err != nil {
		return 0, err
	}
	var total time.Duration
	for _, p := range pids {
		if c, err := CPU(p); err == nil {
			total += c
		} else if p == pid {
			return 0, err
		}
	}
	return total, nil
}

// Tree returns pid and its live descendants.
func Tree(pid int) ([]int, error) {
	if _, err := readStat(pid); err != nil {
		return nil, err
	}
	children := map[int][]int{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("procstat: %w", err)
	}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		s, err := readStat(p)
		if err != nil {
			continue // it ended meanwhile
		}
		children[s.ppid] = append(children[s.ppid], p)
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out, nil
}

// Memory is a process's resident memory in bytes.
type Memory struct {
	RSS  int64 // now (VmRSS)
	Peak int64 // the most since it started, or since its peak was reset (VmHWM)
	// RSS's parts now: the process's own pages (RssAnon: heap, stacks —
	// what only it holds) and the pages of files it maps that are in its
	// page tables (RssFile: its executable's code and tables above all;
	// clean copies of the page cache's, shared with every process that
	// maps the same file, and dropped before anonymous memory when memory
	// is short). RSS also counts RssShmem.
	Anon, File int64
}

// Mem reads pid's resident memory from /proc/<pid>/status.
func Mem(pid int) (Memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, fmt.Errorf("procstat: %w", err)
	}
	defer f.Close()
	var m Memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		for _, kv := range []struct {
			key string
			dst *int64
		}{{"VmRSS:", &m.RSS}, {"VmHWM:", &m.Peak}, {"RssAnon:", &m.Anon}, {"RssFile:", &m.File}} {
			if rest, ok := strings.CutPrefix(line, kv.key); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				*kv.dst = kb << 10
			}
		}
	}
	return m, sc.Err()
}

// PSS returns pid's proportional set size in bytes: its resident memory
// with each shared page divided among the processes sharing it, so that
// a tree's sum counts PostgreSQL's shared buffers once.
func PSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, fmt.Errorf("procstat: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Pss:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("procstat: /proc/%d/smaps_rollup has no Pss", pid)
}

// TreePSS returns the proportional set size of pid and its live
// descendants, summed.
func TreePSS(pid int) (int64, error) {
	pids, err := Tree(pid)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, p := range pids {
		if n, err := PSS(p); err == nil {
			total += n
		}
	}
	return total, nil
}

// ResetPeak starts pid's VmHWM again from its present resident memory
// (writing 5 to /proc/<pid>/clear_refs; the process must be this user's,
// or this user root).
func ResetPeak(pid int) error {
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		return fmt.Errorf("procstat: %w", err)
	}
	return nil
}

// ErrNotFound is returned by ListeningPID when no process of this machine
// that /proc lets us see listens on the port.
var ErrNotFound = errors.New("procstat: no process found")

// ListeningPID returns the process that listens on TCP port of 127.0.0.1
// or any address, IPv4 or IPv6. Seeing other users' processes needs root.
func ListeningPID(port int) (int, error) {
	inodes := map[string]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" { // 0A: LISTEN
				continue
			}
			local := f[1]
			j := strings.LastIndexByte(local, ':')
			p, err := strconv.ParseInt(local[j+1:], 16, 32)
			if err != nil || int(p) != port {
				continue
			}
			inodes[f[9]] = true
		}
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("%w listening on port %d", ErrNotFound, port)
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("procstat: %w", err)
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fds, err := os.ReadDir(filepath.Join("/proc", e.Name(), "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join("/proc", e.Name(), "fd", fd.Name()))
			if err != nil {
				continue
			}
			if ino, ok := strings.CutPrefix(link, "socket:["); ok && inodes[strings.TrimSuffix(ino, "]")] {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("%w listening on port %d (not root?)", ErrNotFound, port)
}

// Root returns the eldest ancestor of pid with the same command name: the
// postmaster for a PostgreSQL backend. Usually pid itself.
func Root(pid int) int {
	name := func(p int) string {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p))
		return strings.TrimSpace(string(b))
	}
	n := name(pid)
	for {
		s, err := readStat(pid)
		if err != nil || s.ppid <= 1 || name(s.ppid) != n {
			return pid
		}
		pid = s.ppid
	}
}

// ThreadNice returns the nice value of thread tid of process pid (field
// 19 of its stat). Linux keeps a nice value per thread.
func ThreadNice(pid, tid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid))
	if err != nil {
		return 0, fmt.Errorf("procstat: %w", err)
	}
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 17 {
		return 0, fmt.Errorf("procstat: /proc/%d/task/%d/stat: malformed", pid, tid)
	}
	return strconv.Atoi(f[16])
}

// Nice returns the least and the greatest nice value of pid's threads.
func Nice(pid int) (lo, hi int, err error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("procstat: %w", err)
	}
	seen := false
	for _, e := range tasks {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		n, err := ThreadNice(pid, tid)
		if err != nil {
			continue // the thread ended
		}
		if !seen || n < lo {
			lo = n
		}
		if !seen || n > hi {
			hi = n
		}
		seen = true
	}
	if !seen {
		return 0, 0, fmt.Errorf("procstat: process %d has no threads left", pid)
	}
	return lo, hi, nil
}

// Switches returns how many times pid's threads have been switched off a
// CPU (voluntary and involuntary context switches, summed over
// /proc/<pid>/task/*/status). Threads that have ended are not counted.
func Switches(pid int) (int64, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, fmt.Errorf("procstat: %w", err)
	}
	var n int64
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if v, err := threadSwitches(pid, tid); err == nil {
			n += v
		} // else it ended meanwhile
	}
	return n, nil
}

// threadSwitches is one thread's voluntary and involuntary context
// switches.
func threadSwitches(pid, tid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/status", pid, tid))
	if err != nil {
		return 0, err
	}
	var n int64
	for line := range strings.Lines(string(b)) {
		for _, key := range []string{"voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"} {
			if rest, ok := strings.CutPrefix(line, key); ok {
				v, _ := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
				n += v
			}
		}
	}
	return n, nil
}

// TreeSwitches is Switches of pid and of each of its live descendants,
// by process: a caller diffing two readings takes the processes in both,
// as an ended process's switches are not kept anywhere (unlike its CPU
// time).
func TreeSwitches(pid int) (map[int]int64, error) {
	pids, err := Tree(pid)
	if err != nil {
		return nil, err
	}
	out := make(map[int]int64, len(pids))
	for _, p := range pids {
		if n, err := Switches(p); err == nil {
			out[p] = n
		} else if p == pid {
			return nil, err
		}
	}
	return out, nil
}
