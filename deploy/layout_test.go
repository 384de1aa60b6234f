package deploy_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/loa-hub/loa/internal/topics"
)

// workload is one kind of Loa process in a deployment file: its command,
// its variables and the CPU weight it is given against its neighbours
// (Kubernetes' CPU request in millicores, from which the node derives
// cpu.shares / cpu.weight; compose's cpu_shares).
type workload struct {
	name     string
	command  string // "api", "dispatcher", …
	env      map[string]string
	weight   float64
	cpuLimit bool
}

// lanes are the lanes a dispatcher consumes (every lane when
// LOA_DISPATCHER_LANES is unset, as loa dispatcher reads it).
func (w workload) lanes(t *testing.T) []topics.Lane {
	v, ok := w.env["LOA_DISPATCHER_LANES"]
	if !ok {
		return topics.Lanes
	}
	var ls []topics.Lane
	for _, s := range strings.Split(v, ",") {
		l := topics.Lane(strings.ToLower(strings.TrimSpace(s)))
		if !l.Valid() {
			t.Errorf("%s: LOA_DISPATCHER_LANES names %q, not a lane", w.name, s)
		}
		ls = append(ls, l)
	}
	return ls
}

func (w workload) ledger() bool {
	v, ok := w.env["LOA_DISPATCHER_LEDGER"]
	return !ok || v == "on" || v == "true" || v == "1"
}

// k8sWorkloads reads the Deployments of a Kubernetes manifest.
func k8sWorkloads(t *testing.T, path string) []workload {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type container struct {
		Args []string `yaml:"args"`
		Env  []struct {
			Name  string `yaml:"name"`
			Value *string
		} `yaml:"env"`
		Resources struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
	}
	var ws []workload
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var doc struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
			Spec struct {
				Template struct {
					Spec struct {
						Containers []container `yaml:"containers"`
					} `yaml:"spec"`
				} `yaml:"template"`
			} `yaml:"spec"`
		}
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if doc.Kind != "Deployment" {
			continue
		}
		for _, c := range doc.Spec.Template.Spec.Containers {
			w := workload{name: doc.Metadata.Name, env: map[string]string{}}
			if len(c.Args) > 0 {
				w.command = c.Args[0]
			}
			for _, e := range c.Env {
				if e.Value != nil {
					w.env[e.Name] = *e.Value
				}
			}
			w.weight = millicores(t, w.name, c.Resources.Requests["cpu"])
			_, w.cpuLimit = c.Resources.Limits["cpu"]
			ws = append(ws, w)
		}
	}
	return ws
}

// millicores parses a Kubernetes CPU quantity ("250m", "1", "0.5").
func millicores(t *testing.T, where, q string) float64 {
	if q == "" {
		t.Errorf("%s: no CPU request, so no weight of its own", where)
		return 0
	}
	if v, ok := strings.CutSuffix(q, "m"); ok {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Errorf("%s: CPU request %q", where, q)
		}
		return n
	}
	n, err := strconv.ParseFloat(q, 64)
	if err != nil {
		t.Errorf("%s: CPU request %q", where, q)
	}
	return n * 1000
}

// composeWorkloads reads the services of a compose file.
func composeWorkloads(t *testing.T, path string) []workload {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Services map[string]struct {
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			CPUShares   *float64          `yaml:"cpu_shares"`
			CPUs        any               `yaml:"cpus"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var ws []workload
	for name, s := range f.Services {
		w := workload{name: name, env: s.Environment, weight: 1024, cpuLimit: s.CPUs != nil}
		if len(s.Command) > 0 {
			w.command = s.Command[0]
		}
		if s.CPUShares != nil {
			w.weight = *s.CPUShares
		}
		ws = append(ws, w)
	}
	slices.SortFunc(ws, func(a, b workload) int { return strings.Compare(a.name, b.name) })
	return ws
}

// checkSplitLayout: the dispatchers run docs/operations.md's layout —
// every lane consumed, the urgent lanes (otp, alert) never in a process
// that also consumes the bulk lane, the ledger in the bulk kind only — and
// their CPU weights give the API and the urgent dispatchers priority over
// the bulk ones by at least ten to one, with no CPU limit on any.
func checkSplitLayout(t *testing.T, where string, ws []workload) {
	t.Helper()
	var api, urgent, bulk []workload
	consumed := map[topics.Lane]bool{}
	for _, w := range ws {
		switch w.command {
		case "api":
			api = append(api, w)
		case "dispatcher":
			ls := w.lanes(t)
			for _, l := range ls {
				consumed[l] = true
			}
			hasBulk := slices.Contains(ls, topics.LaneBulk)
			if hasBulk && (slices.Contains(ls, topics.LaneOTP) || slices.Contains(ls, topics.LaneAlert)) {
				t.Errorf("%s: %s consumes the codes' or alerts' lane and the bulk lane in one process", where, w.name)
			}
			if hasBulk {
				bulk = append(bulk, w)
				if !w.ledger() {
					t.Errorf("%s: %s, a bulk dispatcher, does not run the ledger", where, w.name)
				}
			} else {
				urgent = append(urgent, w)
				if w.ledger() {
					t.Errorf("%s: %s, an urgent dispatcher, runs the ledger at the urgent lanes' priority", where, w.name)
				}
			}
		default:
			continue
		}
		if w.cpuLimit {
			t.Errorf("%s: %s has a CPU limit, which throttles it on an idle machine", where, w.name)
		}
	}
	for _, l := range topics.Lanes {
		if !consumed[l] {
			t.Errorf("%s: no dispatcher consumes the %s lane", where, l)
		}
	}
	if len(api) == 0 || len(urgent) == 0 || len(bulk) == 0 {
		t.Fatalf("%s: want the API, urgent and bulk dispatchers; got %d, %d, %d", where, len(api), len(urgent), len(bulk))
	}
	for _, b := range bulk {
		for _, u := range append(api, urgent...) {
			if u.weight < 10*b.weight {
				t.Errorf("%s: %s's CPU weight %g is not ten times %s's %g", where, u.name, u.weight, b.name, b.weight)
			}
		}
	}
	conf, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		for k := range w.env {
			if strings.HasPrefix(k, "LOA_") && !strings.Contains(string(conf), "`"+k+"`") {
				t.Errorf("%s: %s sets %s, which docs/configuration.md does not describe", where, w.name, k)
			}
		}
	}
}

// TestKubernetesRunsUrgentAndBulkDispatchersApart: deploy/k8s/loa.yaml
// runs the split layout, with CPU requests that encode the priority.
func TestKubernetesRunsUrgentAndBulkDispatchersApart(t *testing.T) {
	checkSplitLayout(t, "k8s/loa.yaml", k8sWorkloads(t, "k8s/loa.yaml"))
}

// TestComposeRunsUrgentAndBulkDispatchersApart: deploy/compose.yaml runs
// the split layout with cpu_shares that encode the priority, and
// Prometheus scrapes every dispatcher and API it runs on their
// LOA_METRICS_ADDR (the API port asks for a key).
func TestComposeRunsUrgentAndBulkDispatchersApart(t *testing.T) {
	ws := composeWorkloads(t, "compose.yaml")
	checkSplitLayout(t, "compose.yaml", ws)
	p, err := os.ReadFile("prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		if w.command != "dispatcher" && w.command != "api" {
			continue
		}
		_, port, _ := strings.Cut(w.env["LOA_METRICS_ADDR"], ":")
		if target := `"` + w.name + ":" + port + `"`; port == "" || !strings.Contains(string(p), target) {
			t.Errorf("prometheus.yml does not scrape %s (%s)", w.name, target)
		}
	}
}
