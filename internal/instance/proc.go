package instance

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrMissing is returned (wrapped) when a server's programs or files are
// not on this machine, so callers can skip instead of fail.
var ErrMissing = errors.New("instance: not installed")

// Process is one running child process with its output in a log file:
// a server here, or a Loa process of a chaos run. Control it from one
// goroutine at a time.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // the exit status, after done
}

// StartProcess starts argv with stdout and stderr appended to logPath, in
// its own process group, killed if this process dies. cred, when not nil,
// is the user to run as; env is added to this process's environment.
func StartProcess(logPath string, cred *syscall.Credential, env []string, argv ...string) (*Process, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("instance: %w", err)
	}
	defer f.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("instance: start %s: %w", filepath.Base(argv[0]), err)
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// PID is the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Signal sends sig to the process alone.
func (p *Process) Signal(sig syscall.Signal) {
	if !p.Exited() {
		_ = syscall.Kill(p.PID(), sig)
	}
}

// Kill sends SIGKILL to the whole process group and waits for the process
// to end.
func (p *Process) Kill() {
	if !p.Exited() {
		_ = syscall.Kill(-p.PID(), syscall.SIGKILL)
	}
	<-p.done
}

// Stop sends sig and waits up to grace for the process to end, then kills
// its group.
func (p *Process) Stop(sig syscall.Signal, grace time.Duration) {
	p.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.Kill()
	}
	// Whatever the leader left in its group goes too.
	_ = syscall.Kill(-p.PID(), syscall.SIGKILL)
}

// Done is closed when the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is the process's exit status once Done is closed.
func (p *Process) Err() error {
	<-p.done
	return p.err
}

// WaitReady polls ready until it returns nil, the process exits, or ctx
// ends; its errors quote the end of the log at logPath.
func (p *Process) WaitReady(ctx context.Context, what, logPath string, ready func(context.Context) error) error {
	var last error
	for {
		if last = ready(ctx); last == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("instance: %s exited during start (%v); log %s:\n%s", what, p.err, logPath, tail(logPath, 20))
		case <-ctx.Done():
			return fmt.Errorf("instance: %s not ready: %v (last: %v); log %s:\n%s", what, ctx.Err(), last, logPath, tail(logPath, 20))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// FreePort returns a TCP port of 127.0.0.1 that nothing listens on now,
// for a server started next. It is chosen below the kernel's ephemeral
// range (ip_local_port_range), at random: a port from the range itself,
// as listening on :0 gives, is free only until any client of any process
// on the machine connects somewhere and is given it as its own end, and
// CI runs several packages' tests, each with clients of PostgreSQL,
// Redis and Kafka, at once. So a port handed to a server starting a
// moment later is no longer taken by the machine's outgoing connections,
// only, and rarely, by another FreePort's caller.
func FreePort() (int, error) {
	lo, hi := freePortRange()
	if hi > lo {
		for range 64 {
			port := lo + rand.IntN(hi-lo)
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
			if err != nil {
				continue
			}
			ln.Close()
			return port, nil
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("instance: free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// freePortRange is where FreePort looks: from 10000 to the start of the
// ephemeral range, or nothing when that range starts too low to leave
// room (FreePort then takes one of the range's).
func freePortRange() (lo, hi int) {
	const floor = 10000
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0
	}
	start, err := strconv.Atoi(f[0])
	if err != nil || start < floor+1000 {
		return 0, 0
	}
	return floor, start
}

// portOpen reports whether something accepts connections on port.
func portOpen(port int) bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// tempDir makes a directory for one server, owned by cred's user when
// given.
func tempDir(prefix string, cred *syscall.Credential) (string, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", fmt.Errorf("instance: %w", err)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("instance: %w", err)
		}
	}
	return dir, nil
}

// userCredential returns the credential of the named user, for running a
// server as that user when this process is root.
func userCredential(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("instance: user %s: %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// repoFile finds rel under the nearest directory above the working
// directory that holds go.mod, the module root.
func repoFile(rel string) (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, rel)
			_, err := os.Stat(p)
			return p, err == nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}
