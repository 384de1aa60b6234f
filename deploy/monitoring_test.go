// Package deploy_test checks the monitoring files in deploy/ against the
// code: every alert rule and dashboard query parses (promtool, from
// Debian's prometheus package) and names only metrics Loa registers.
package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/loa-hub/loa/internal/metrics"
	"github.com/loa-hub/loa/internal/testenv"
)

// registered is every metric name Loa's processes register.
func registered() []string {
	m := metrics.New()
	m.RegisterOps(func(context.Context) metrics.Ops { return metrics.Ops{} })
	m.RegisterAnonymousBudget(1, func(context.Context) (int, error) { return 0, nil })
	return m.Names()
}

// metricName matches the metric names of Loa's namespaces in PromQL
// (label names and functions never start with these).
var metricName = regexp.MustCompile(`\b(?:loa|go|process)_[a-zA-Z0-9_]+\b`)

func checkNames(t *testing.T, where, text string, names []string) int {
	t.Helper()
	n := 0
	for _, name := range metricName.FindAllString(text, -1) {
		n++
		base := name
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if s, ok := strings.CutSuffix(name, suf); ok && slices.Contains(names, s) {
				base = s
			}
		}
		if !slices.Contains(names, base) {
			t.Errorf("%s: %s is not a metric Loa registers (registered: %s)", where, name, strings.Join(names, ", "))
		}
	}
	return n
}

func promtool(t *testing.T, rulesFile string) {
	t.Helper()
	tool := testenv.Tool(t, "LOA_TEST_PROMTOOL")
	out, err := exec.Command(tool, "check", "rules", rulesFile).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules %s: %v\n%s", rulesFile, err, out)
	}
	t.Logf("promtool: %s", strings.TrimSpace(string(out)))
}

func TestAlertRules(t *testing.T) {
	b, err := os.ReadFile("prometheus/rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	if n := checkNames(t, "prometheus/rules.yml", string(b), registered()); n == 0 {
		t.Fatal("prometheus/rules.yml names no metric")
	}
	for _, alert := range []string{"LoaConsumerLagGrowing", "LoaBreakerOpen", "LoaDeadLettersGrowing", "LoaOTPSlow"} {
		if !strings.Contains(string(b), "alert: "+alert+"\n") {
			t.Errorf("prometheus/rules.yml lacks the alert %s", alert)
		}
	}
	promtool(t, "prometheus/rules.yml")
}

type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func TestDashboardQueries(t *testing.T) {
	b, err := os.ReadFile("grafana/dashboards/loa.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana/dashboards/loa.json: %v", err)
	}
	names := registered()
	// Each query becomes a recording rule, so promtool parses it as
	// Prometheus would.
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	n := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q: a query without an expression", p.Title)
				continue
			}
			checkNames(t, fmt.Sprintf("panel %q", p.Title), tg.Expr, names)
			q, _ := json.Marshal(tg.Expr) // a JSON string is a YAML string
			fmt.Fprintf(&rules, "      - record: dashboard:query_%d\n        expr: %s\n", n, q)
			n++
		}
	}
	if n == 0 {
		t.Fatal("the dashboard has no query")
	}
	f := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(f, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	promtool(t, f)
}

// TestComposeProvisionsMonitoring: the compose file mounts the files these
// tests check, where Prometheus and Grafana read them.
func TestComposeProvisionsMonitoring(t *testing.T) {
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, mount := range []string{
		"./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml",
		"./prometheus/rules.yml:/etc/prometheus/rules.yml",
		"./grafana/provisioning:/etc/grafana/provisioning",
		"./grafana/dashboards:/var/lib/grafana/dashboards",
	} {
		if !strings.Contains(string(b), mount) {
			t.Errorf("compose.yaml does not mount %s", mount)
		}
	}
	p, err := os.ReadFile("prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(p), "/etc/prometheus/rules.yml") {
		t.Error("prometheus.yml does not load the rules")
	}
}
