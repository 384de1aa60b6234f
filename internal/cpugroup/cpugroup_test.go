package cpugroup

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestShares(t *testing.T) {
	for w, want := range map[int]int{100: 1024, 1: 10, 10: 102, 1000: 10240, 10000: 102400} {
		if got := Shares(w); got != want {
			t.Errorf("Shares(%d) = %d, want %d", w, got, want)
		}
	}
}

func TestNiceWeight(t *testing.T) {
	for n, want := range map[int]int{0: 100, 10: 11, -5: 305, 19: 1} {
		if got := niceWeight(n); got != want {
			t.Errorf("niceWeight(%d) = %d, want %d", n, got, want)
		}
	}
}

// TestGroupHoldsAProcessAndIsRemoved: on a host with a cpu controller it
// may use, a group made with a weight and cpu.idle takes a running
// process, /proc shows the process in it with that weight, and Remove
// moves the process back to the root and removes the group.
func TestGroupHoldsAProcessAndIsRemoved(t *testing.T) {
	h, err := Find()
	if errors.Is(err, ErrUnavailable) {
		t.Skipf("this host: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("cat") // runs until its input closes
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); cmd.Wait() })

	name := fmt.Sprintf("loa-cpugroup-test-%d", time.Now().UnixNano())
	g, err := h.Make(name, 10, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Remove() })
	if _, err := h.Make(name, 10, false); err == nil {
		t.Error("a second group of the same name was made")
	}
	idle, err := h.Make(name+"-idle", 10, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idle.Remove() })

	// In the idle group the process has its lowest weight.
	if err := idle.Add(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if p, err := h.Of(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	} else if p.Group != "/"+name+"-idle" || !p.Idle || p.Autogroup != "" {
		t.Errorf("placement %+v, want group /%s-idle, idle", p, name)
	}
	if err := g.Add(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	p, err := h.Of(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if p.Group != "/"+name || p.Weight != 10 || p.Idle || p.Autogroup != "" {
		t.Errorf("placement %+v, want group /%s, weight 10", p, name)
	}
	want := "cgroup /" + name + ", cpu.weight 10"
	if h.Version == 1 {
		want = "cgroup /" + name + ", cpu.shares 102"
	}
	if p.String() != want {
		t.Errorf("String() = %q, want %q", p, want)
	}
	if err := idle.Remove(); err != nil || idle.Exists() {
		t.Errorf("an empty group was not removed: %v", err)
	}

	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	if g.Exists() {
		t.Error("the group is still there")
	}
	if _, err := os.Stat(h.Mount + "/" + name); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat after Remove: %v", err)
	}
	p, err = h.Of(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if p.Group != "/" {
		t.Errorf("after Remove the process is in %q, want the root", p.Group)
	}
}

func TestMakeRefusesBadArguments(t *testing.T) {
	h := Host{Version: 1, Mount: t.TempDir()}
	for _, c := range []struct {
		name   string
		weight int
	}{{"x", 0}, {"x", 10001}, {"", 100}, {"a/b", 100}, {"..", 100}} {
		if _, err := h.Make(c.name, c.weight, false); err == nil {
			t.Errorf("Make(%q, %d) made a group", c.name, c.weight)
		}
	}
}
