package metrics

import (
	"regexp"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// Names lists the name of every metric family the registry describes,
// sorted: what dashboards and alert rules may query (a histogram's
// series add _bucket, _sum and _count to its name).
func (m *Metrics) Names() []string {
	if m == nil {
		return nil
	}
	ch := make(chan *prometheus.Desc)
	go func() { m.reg.Describe(ch); close(ch) }()
	var out []string
	for d := range ch {
		if s := fqName.FindStringSubmatch(d.String()); s != nil && !slices.Contains(out, s[1]) {
			out = append(out, s[1])
		}
	}
	slices.Sort(out)
	return out
}
