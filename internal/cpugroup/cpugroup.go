// Package cpugroup puts processes in CPU scheduling groups of their own —
// cgroups of Linux's cpu controller, version 1 or 2 — with a weight, and
// reads where a process is scheduled as /proc shows it.
//
// A nice value orders the threads of one scheduling group only. With
// autogroup on (/proc/sys/kernel/sched_autogroup_enabled = 1) every
// session of the root cgroup is a group of its own, and the kernel shares
// the cores between groups by their weights whatever the nice values
// inside them. A cgroup made here is a sibling of those autogroups and of
// the other top-level cgroups, so its weight decides its share against
// them; a process in it is in no autogroup. loa-bench's -split uses it to
// give the codes' processes the CPU before the broadcast's.
//
// Weights are on the scale of cgroup v2's cpu.weight and systemd's
// CPUWeight= (1 to 10000, 100 a nice-0 process's or autogroup's);
// version 1 gets cpu.shares = weight × 1024 / 100, as systemd writes it.
// Idle groups (cpu.idle = 1) run only on CPU the others leave, and a
// waking task of a group that is not idle preempts theirs at once.
package cpugroup

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DefaultWeight is a nice-0 process's weight, and an autogroup's.
const DefaultWeight = 100

// Host is where the cpu controller is mounted.
type Host struct {
	// Version is 1 or 2.
	Version int
	// Mount is the hierarchy's root directory.
	Mount string
}

// ErrUnavailable says the host gives no cpu controller to use.
var ErrUnavailable = errors.New("cpugroup: no cpu controller to use")

// Find finds the cpu controller: a version-1 hierarchy that has it, or
// the version-2 hierarchy when "cpu" is one of its controllers. The
// error says why neither can be used (not Linux, not mounted, not root).
func Find() (Host, error) {
	f, err := os.Open("/proc/mounts")
	if err != nil {
		return Host{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer f.Close()
	var v2 string
	sc := bufio.NewScanner(f)
	var h Host
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 {
			continue
		}
		switch fields[2] {
		case "cgroup":
			for _, o := range strings.Split(fields[3], ",") {
				if o == "cpu" && h.Mount == "" {
					h = Host{Version: 1, Mount: fields[1]}
				}
			}
		case "cgroup2":
			if v2 == "" {
				v2 = fields[1]
			}
		}
	}
	if h.Mount == "" && v2 != "" {
		b, err := os.ReadFile(filepath.Join(v2, "cgroup.controllers"))
		if err == nil && hasWord(string(b), "cpu") {
			h = Host{Version: 2, Mount: v2}
		}
	}
	if h.Mount == "" {
		return Host{}, fmt.Errorf("%w: neither a cgroup v1 hierarchy with cpu nor cgroup v2 with cpu in cgroup.controllers is mounted", ErrUnavailable)
	}
	if err := access(h.Mount); err != nil {
		return Host{}, fmt.Errorf("%w: %s: %v", ErrUnavailable, h.Mount, err)
	}
	return h, nil
}

func hasWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}

// access checks that groups can be made under dir: write permission on
// it and on its cgroup.procs (root's, in practice).
func access(dir string) error {
	f, err := os.OpenFile(filepath.Join(dir, "cgroup.procs"), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	return f.Close()
}

// Group is a cgroup made by Make.
type Group struct {
	host Host
	// Path is the group's path within the hierarchy, as
	// /proc/<pid>/cgroup shows it.
	Path string
	dir  string
}

// Shares is cgroup v1's cpu.shares for a weight, as systemd maps it.
func Shares(weight int) int {
	return min(max(weight*1024/DefaultWeight, 2), 262144)
}

// Make makes a top-level group named name with weight (1 to 10000) and,
// when idle, cpu.idle set. A group of that name must not exist.
func (h Host) Make(name string, weight int, idle bool) (*Group, error) {
	if weight < 1 || weight > 10000 {
		return nil, fmt.Errorf("cpugroup: weight %d: want 1 to 10000", weight)
	}
	if name == "" || strings.ContainsAny(name, "/.") {
		return nil, fmt.Errorf("cpugroup: name %q: want one path element", name)
	}
	if h.Version == 2 {
		// The root's children get the cpu controller only when the root
		// passes it on.
		b, err := os.ReadFile(filepath.Join(h.Mount, "cgroup.subtree_control"))
		if err != nil {
			return nil, fmt.Errorf("cpugroup: %w", err)
		}
		if !hasWord(string(b), "cpu") {
			if err := os.WriteFile(filepath.Join(h.Mount, "cgroup.subtree_control"), []byte("+cpu"), 0); err != nil {
				return nil, fmt.Errorf("cpugroup: enabling cpu for the root's children: %w", err)
			}
		}
	}
	g := &Group{host: h, Path: "/" + name, dir: filepath.Join(h.Mount, name)}
	if err := os.Mkdir(g.dir, 0o755); err != nil {
		return nil, fmt.Errorf("cpugroup: %w", err)
	}
	file, value := "cpu.shares", strconv.Itoa(Shares(weight))
	if h.Version == 2 {
		file, value = "cpu.weight", strconv.Itoa(weight)
	}
	err := os.WriteFile(filepath.Join(g.dir, file), []byte(value), 0)
	if err == nil && idle {
		err = os.WriteFile(filepath.Join(g.dir, "cpu.idle"), []byte("1"), 0)
	}
	if err != nil {
		os.Remove(g.dir)
		return nil, fmt.Errorf("cpugroup: %s: %w", g.Path, err)
	}
	return g, nil
}

// Add moves process pid, every thread of it, into the group. Threads and
// children it starts later are born in the group.
func (g *Group) Add(pid int) error {
	if err := os.WriteFile(filepath.Join(g.dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		return fmt.Errorf("cpugroup: adding %d to %s: %w", pid, g.Path, err)
	}
	return nil
}

// Remove moves the processes still in the group back to the root and
// removes the group.
func (g *Group) Remove() error {
	var last error
	for range 3 { // a process may fork while it is moved
		b, err := os.ReadFile(filepath.Join(g.dir, "cgroup.procs"))
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		for _, p := range strings.Fields(string(b)) {
			_ = os.WriteFile(filepath.Join(g.host.Mount, "cgroup.procs"), []byte(p), 0)
		}
		if last = os.Remove(g.dir); last == nil || errors.Is(last, os.ErrNotExist) {
			return nil
		}
	}
	return fmt.Errorf("cpugroup: removing %s: %w", g.Path, last)
}

// Exists reports whether the group's directory is still there.
func (g *Group) Exists() bool {
	_, err := os.Stat(g.dir)
	return err == nil
}

// Placement is where a process is scheduled, read from /proc and the
// group's files.
type Placement struct {
	// Group is its cgroup's path in the cpu hierarchy ("/" the root).
	Group string
	// Weight is the group's weight (DefaultWeight for an autogroup of
	// nice 0); Shares the cpu.shares of version 1 (0 on version 2).
	Weight, Shares int
	Idle           bool
	// Autogroup is /proc/<pid>/autogroup, for a process of the root
	// group with autogroup on ("" otherwise).
	Autogroup string
}

// String is the placement as the report prints it, e.g.
// "cgroup /loa-bench-x-bulk, cpu.shares 102, cpu.idle 1" or
// "autogroup-120815 nice 0".
func (p Placement) String() string {
	if p.Autogroup != "" {
		return strings.TrimPrefix(p.Autogroup, "/")
	}
	s := "cgroup " + p.Group
	if p.Shares > 0 {
		s += fmt.Sprintf(", cpu.shares %d", p.Shares)
	} else {
		s += fmt.Sprintf(", cpu.weight %d", p.Weight)
	}
	if p.Idle {
		s += ", cpu.idle 1"
	}
	return s
}

// Of reads where pid is scheduled.
func (h Host) Of(pid int) (Placement, error) {
	path, err := cgroupOf(pid, h.Version)
	if err != nil {
		return Placement{}, err
	}
	p := Placement{Group: path}
	if path == "/" {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/autogroup", pid)); err == nil {
			p.Autogroup = strings.TrimSpace(string(b))
			p.Weight = DefaultWeight
			if i := strings.LastIndex(p.Autogroup, "nice "); i >= 0 {
				if n, err := strconv.Atoi(p.Autogroup[i+5:]); err == nil {
					p.Weight = niceWeight(n)
				}
			}
			return p, nil
		}
	}
	dir := filepath.Join(h.Mount, path)
	read := func(file string) int {
		b, _ := os.ReadFile(filepath.Join(dir, file))
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}
	if h.Version == 1 {
		p.Shares = read("cpu.shares")
		p.Weight = (p.Shares*DefaultWeight + 512) / 1024
	} else {
		p.Weight = read("cpu.weight")
	}
	p.Idle = read("cpu.idle") == 1
	return p, nil
}

// niceWeight is a nice value's scheduling weight on the weight scale
// (the kernel's sched_prio_to_weight, relative to nice 0's 1024).
func niceWeight(n int) int {
	w := 1024.0
	for ; n > 0; n-- {
		w /= 1.25
	}
	for ; n < 0; n++ {
		w *= 1.25
	}
	return max(int(w*DefaultWeight/1024+0.5), 1)
}

// cgroupOf is pid's cgroup in the cpu controller's hierarchy.
func cgroupOf(pid, version int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "", fmt.Errorf("cpugroup: %w", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if version == 2 && parts[0] == "0" && parts[1] == "" {
			return parts[2], nil
		}
		if version == 1 {
			for _, c := range strings.Split(parts[1], ",") {
				if c == "cpu" {
					return parts[2], nil
				}
			}
		}
	}
	return "", fmt.Errorf("cpugroup: /proc/%d/cgroup names no cpu hierarchy", pid)
}
