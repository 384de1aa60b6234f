// Package fleet runs Loa as an operator does: `loa api`, one or more `loa
// dispatcher` replicas and the provider fakes (`loa-fakes`), each its own
// OS process, on services given by URL. A member can be killed with
// SIGKILL and started again with the same configuration, so chaos runs,
// process-level tests and the end-to-end benchmark see what a crash
// really does. The package also drives the running fleet as its users
// would: officials who sign in with a code, an integrating system with an
// API key, and the fakes' control server.
//
// A Fleet is controlled from one goroutine at a time; its Client and the
// fakes' control calls are safe for concurrent use.
package fleet

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/loa-hub/loa/internal/instance"
)

// ApprovalUnit is the unit whose broadcast approvers may approve
// (LOA_APPROVAL_UNIT) unless Options.Env names another.
const ApprovalUnit = "sotttt"

// Options configures Start.
type Options struct {
	// Loa is the path of the loa binary.
	Loa string
	// FakesCommand is the command that runs the provider fakes, without
	// its flags: when nil, loa-fakes beside Loa (make build and Build put
	// it there).
	FakesCommand []string
	// Dir is where logs and generated files go; it is created.
	Dir string
	// DatabaseURL, RedisURL and KafkaBrokers are the services.
	DatabaseURL, RedisURL, KafkaBrokers string
	// TopicPrefix and RedisKeyPrefix isolate this fleet on shared
	// services (LOA_KAFKA_TOPIC_PREFIX, LOA_REDIS_KEY_PREFIX).
	TopicPrefix, RedisKeyPrefix string
	// Dispatchers is how many `loa dispatcher` replicas run; 1 when 0.
	Dispatchers int
	// FCMRecord is `loa-fakes --fcm-record`: "counts" when "".
	FCMRecord string
	// FCM, when set, replaces the FCM fake of `loa-fakes` with another
	// FCM endpoint (a fake in its own process): the LOA_FCM_* variables.
	FCM map[string]string
	// Env are more LOA_* variables for the API and the dispatchers (they
	// win over everything above).
	Env map[string]string
	// DispatcherEnv are variables for the dispatchers alone.
	DispatcherEnv map[string]string
	// DispatcherEnvs are variables for dispatcher i alone (they win over
	// DispatcherEnv): dispatchers of different lanes or CPU priority. With
	// more entries than Dispatchers, one dispatcher runs for each.
	DispatcherEnvs []map[string]string
}

// Fleet is a running set of Loa processes.
type Fleet struct {
	API         *Member
	Dispatchers []*Member
	Fakes       *Member
	// Base is the API's base URL, Control the fakes' control server.
	Base, Control string
	// FakesEnv are the LOA_* variables `loa-fakes` printed.
	FakesEnv map[string]string
	// MetricsURLs are the dispatchers' /metrics, in Dispatchers' order;
	// APIMetricsURL the API's (its LOA_METRICS_ADDR: the API port asks
	// for a key with metrics:read).
	MetricsURLs   []string
	APIMetricsURL string

	opts Options
	env  []string // the variables every Loa process gets
}

// Member is one process of the fleet, started again with the same
// arguments and variables after a kill. Its methods are safe for
// concurrent use (a fault schedule and a supervisor may act at once).
type Member struct {
	Name    string
	LogPath string

	argv  []string
	env   []string
	ready func(context.Context) error

	mu     sync.Mutex
	p      *instance.Process
	wantUp bool
	starts int
	exits  int // ended without being killed or stopped
}

// Start starts the member and waits until it is ready. It does nothing
// but wait when the member is running.
func (m *Member) Start(ctx context.Context) error {
	p, err := m.Up()
	if err != nil || m.ready == nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return p.WaitReady(ctx, m.Name, m.LogPath, m.ready)
}

// Up starts the member unless it is running, without waiting for it to
// be ready, and returns its process.
func (m *Member) Up() (*instance.Process, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.wantUp = true
	if m.p != nil && !m.p.Exited() {
		return m.p, nil
	}
	fmt.Fprintf(appendFile(m.LogPath), "---- %s start %d at %s\n", m.Name, m.starts+1, time.Now().Format(time.RFC3339Nano))
	p, err := instance.StartProcess(m.LogPath, nil, m.env, m.argv...)
	if err != nil {
		return nil, err
	}
	m.p = p
	m.starts++
	return p, nil
}

// appendFile opens path for each write; errors make writes vanish.
func appendFile(path string) *closingWriter {
	return &closingWriter{path: path}
}

type closingWriter struct{ path string }

func (w *closingWriter) Write(p []byte) (int, error) {
	f, err := os.OpenFile(w.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return len(p), nil
	}
	defer f.Close()
	return f.Write(p)
}

// Kill ends the member with SIGKILL, as a crash or the OOM killer would.
// The supervisor leaves it down until Up or Start.
func (m *Member) Kill() {
	m.mu.Lock()
	m.wantUp = false
	p := m.p
	m.mu.Unlock()
	if p != nil {
		fmt.Fprintf(appendFile(m.LogPath), "---- %s SIGKILL at %s\n", m.Name, time.Now().Format(time.RFC3339Nano))
		p.Kill()
	}
}

// Stop asks the member to stop (SIGTERM) and waits up to grace, then
// kills it.
func (m *Member) Stop(grace time.Duration) {
	m.mu.Lock()
	m.wantUp = false
	p := m.p
	m.mu.Unlock()
	if p != nil {
		p.Stop(syscall.SIGTERM, grace)
	}
}

// Running reports whether the process is alive.
func (m *Member) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.p != nil && !m.p.Exited()
}

// PID is the process id, 0 when it is not running.
func (m *Member) PID() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.p == nil || m.p.Exited() {
		return 0
	}
	return m.p.PID()
}

// Starts is how many times the member was started; Exits how many times
// it ended by itself (a start that failed, a crash) and was started again
// by the supervisor.
func (m *Member) Starts() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.starts
}

// Exits is how many times the member ended without being killed or
// stopped.
func (m *Member) Exits() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.exits
}

// Supervise starts again, after a second, every member that ended by
// itself (as systemd's Restart=always or a Kubernetes pod would: a
// dispatcher that cannot reach Kafka at start exits), until ctx ends.
func (f *Fleet) Supervise(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		for _, m := range f.Members() {
			m.mu.Lock()
			p := m.p
			down := m.wantUp && p != nil && p.Exited()
			if down {
				m.exits++
			}
			m.mu.Unlock()
			if down {
				fmt.Fprintf(appendFile(m.LogPath), "---- %s exited by itself (%v); started again by the supervisor\n", m.Name, p.Err())
				_, _ = m.Up()
			}
		}
	}
}

// Start runs `loa migrate`, then the fakes, the API and the dispatchers,
// each waited for until ready. On error whatever started is stopped.
func Start(ctx context.Context, opts Options) (_ *Fleet, err error) {
	if opts.Loa == "" {
		return nil, errors.New("fleet: Options.Loa (the loa binary) is required")
	}
	opts.Dispatchers = max(opts.Dispatchers, len(opts.DispatcherEnvs), 1)
	if opts.FCMRecord == "" {
		opts.FCMRecord = "counts"
	}
	if opts.FakesCommand == nil {
		p := filepath.Join(filepath.Dir(opts.Loa), "loa-fakes")
		if !fileExists(p) {
			return nil, fmt.Errorf("fleet: no loa-fakes beside %s: build ./cmd/loa-fakes there (make build does)", opts.Loa)
		}
		opts.FakesCommand = []string{p}
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	f := &Fleet{opts: opts}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()

	key := make([]byte, 32)
	rand.Read(key)
	keyFile := filepath.Join(opts.Dir, "secret.key")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	apiPort, err := instance.FreePort()
	if err != nil {
		return nil, err
	}
	f.Base = "http://127.0.0.1:" + strconv.Itoa(apiPort)
	base := map[string]string{
		// The approvers Official makes are of this unit.
		"LOA_APPROVAL_UNIT":      ApprovalUnit,
		"LOA_DATABASE_URL":       opts.DatabaseURL,
		"LOA_REDIS_URL":          opts.RedisURL,
		"LOA_KAFKA_BROKERS":      opts.KafkaBrokers,
		"LOA_KAFKA_TOPIC_PREFIX": opts.TopicPrefix,
		"LOA_SECRET_KEY_FILE":    keyFile,
	}
	if opts.RedisKeyPrefix != "" {
		base["LOA_REDIS_KEY_PREFIX"] = opts.RedisKeyPrefix
	}
	if _, err := f.run(ctx, envList(base), "migrate"); err != nil {
		return nil, err
	}

	// The fakes first: the API and the dispatchers are pointed at them.
	info := filepath.Join(opts.Dir, "fakes.json")
	os.Remove(info)
	fakesArgv := append(append([]string{}, opts.FakesCommand...), "--loa", f.Base, "--info-file", info, "--fcm-record", opts.FCMRecord)
	f.Fakes = &Member{Name: "fakes", LogPath: filepath.Join(opts.Dir, "fakes.log"), argv: fakesArgv,
		env: envList(map[string]string{"LOA_LOG_LEVEL": "warn"}),
		ready: func(context.Context) error {
			b, err := os.ReadFile(info)
			if err != nil {
				return err
			}
			var in struct {
				URLs struct {
					Control string `json:"control"`
				} `json:"urls"`
				Env map[string]string `json:"env"`
			}
			if err := json.Unmarshal(b, &in); err != nil {
				return err
			}
			f.Control, f.FakesEnv = in.URLs.Control, in.Env
			return nil
		}}
	if err := f.Fakes.Start(ctx); err != nil {
		return nil, err
	}

	vars := map[string]string{}
	for k, v := range f.FakesEnv {
		vars[k] = v
	}
	if opts.FCM != nil {
		for k := range vars {
			if strings.HasPrefix(k, "LOA_FCM_") {
				delete(vars, k)
			}
		}
		for k, v := range opts.FCM {
			vars[k] = v
		}
	}
	for k, v := range base {
		vars[k] = v
	}
	for k, v := range opts.Env {
		vars[k] = v
	}
	f.env = envList(vars)

	metricsPort, err := instance.FreePort()
	if err != nil {
		return nil, err
	}
	apiVars := map[string]string{"LOA_HTTP_ADDR": "127.0.0.1:" + strconv.Itoa(apiPort), "LOA_METRICS_ADDR": "127.0.0.1:" + strconv.Itoa(metricsPort)}
	f.APIMetricsURL = "http://127.0.0.1:" + strconv.Itoa(metricsPort) + "/metrics"
	f.API = &Member{Name: "api", LogPath: filepath.Join(opts.Dir, "api.log"), argv: []string{opts.Loa, "api"},
		env: append(append([]string{}, f.env...), envList(apiVars)...), ready: httpReady(f.Base + "/readyz")}
	if err := f.API.Start(ctx); err != nil {
		return nil, err
	}
	for i := range opts.Dispatchers {
		port, err := instance.FreePort()
		if err != nil {
			return nil, err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		dv := map[string]string{"LOA_METRICS_ADDR": addr}
		for k, v := range opts.DispatcherEnv {
			dv[k] = v
		}
		if i < len(opts.DispatcherEnvs) {
			for k, v := range opts.DispatcherEnvs[i] {
				dv[k] = v
			}
		}
		name := fmt.Sprintf("dispatcher-%d", i+1)
		m := &Member{Name: name, LogPath: filepath.Join(opts.Dir, name+".log"), argv: []string{opts.Loa, "dispatcher"},
			env: append(append([]string{}, f.env...), envList(dv)...), ready: httpReady("http://" + addr + "/healthz")}
		f.Dispatchers = append(f.Dispatchers, m)
		f.MetricsURLs = append(f.MetricsURLs, "http://"+addr+"/metrics")
		if err := m.Start(ctx); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// Build builds Loa's commands (cmd/loa and cmd/loa-fakes) into dir with
// the go tool, and returns the loa binary's path. It runs in the module
// that holds this package's source.
func Build(ctx context.Context, dir string) (string, error) {
	root, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("fleet: go list -m: %w", err)
	}
	mod := strings.TrimSpace(string(root))
	args := []string{"build", "-o", dir + string(filepath.Separator), "./cmd/loa"}
	if _, err := os.Stat(filepath.Join(mod, "cmd", "loa-fakes")); err == nil {
		args = append(args, "./cmd/loa-fakes")
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = mod
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("fleet: go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return filepath.Join(dir, "loa"), nil
}

// Env returns the variables every Loa process of the fleet runs with,
// for `loa admin` and other commands.
func (f *Fleet) Env() []string { return append([]string{}, f.env...) }

// Admin runs `loa admin args…` with the fleet's configuration and returns
// what it printed.
func (f *Fleet) Admin(ctx context.Context, args ...string) (string, error) {
	return f.run(ctx, f.env, append([]string{"admin"}, args...)...)
}

func (f *Fleet) run(ctx context.Context, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, f.opts.Loa, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("fleet: loa %s: %w\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String(), nil
}

// Members returns every process of the fleet.
func (f *Fleet) Members() []*Member {
	var ms []*Member
	for _, m := range append([]*Member{f.API, f.Fakes}, f.Dispatchers...) {
		if m != nil {
			ms = append(ms, m)
		}
	}
	return ms
}

// Close stops every process: Loa's first (SIGTERM, then SIGKILL after
// 15 s), then the fakes.
func (f *Fleet) Close() {
	for _, m := range append([]*Member{f.API}, f.Dispatchers...) {
		if m != nil {
			m.Stop(15 * time.Second)
		}
	}
	if f.Fakes != nil {
		f.Fakes.Stop(5 * time.Second)
	}
}

// envList turns variables into KEY=value lines, sorted.
func envList(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// httpReady is ready when GET url answers 200.
func httpReady(url string) func(context.Context) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	return func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}
