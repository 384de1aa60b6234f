package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/loa-hub/loa/internal/cpugroup"
	"github.com/loa-hub/loa/internal/procstat"
)

// The weights -split's cpu groups get unless flags say otherwise (the
// cgroup v2 / systemd CPUWeight scale; 100 is an autogroup's), chosen by
// the runs in docs/operations.md, "CPU priority".
const (
	defaultUrgentWeight = 1000
	defaultBulkWeight   = 10
	defaultBulkIdle     = false
	// Kafka, Redis and PostgreSQL are left where they run unless
	// -services-weight gives them a group of their own.
	defaultServicesWeight = 0
)

// benchGroups are -split's two CPU scheduling groups: the urgent side
// (the API, the urgent dispatcher, the SMS fake and loa-bench, which
// stands in for the citizens asking for codes) and the bulk side (the bulk
// dispatchers and the reference FCM fake, which serves the broadcast
// alone). Kafka, Redis and PostgreSQL serve both sides: they are left
// where they run, or, with -services-weight, put in a third group of
// that weight for the run — what services on hosts of their own would
// be, never short of CPU because of Loa's processes.
type benchGroups struct {
	host                   cpugroup.Host
	urgent, bulk           *cpugroup.Group
	services               *cpugroup.Group // nil unless -services-weight
	why                    string          // why there are none
	urgentNames, bulkNames []string
	serviceNames           []string
	outside                string // a process serving both sides, left out
	removeErr              error
}

// makeGroups makes the two groups and moves the run's processes into
// them. A host that gives no cpu controller to use gets none, and says
// why; a group that cannot be made or filled is an error.
func (b *bench) makeGroups() (*benchGroups, error) {
	g := &benchGroups{}
	h, err := cpugroup.Find()
	if err != nil {
		g.why = err.Error()
		return g, nil
	}
	g.host = h
	name := "loa-bench-" + b.id
	if g.urgent, err = h.Make(name+"-urgent", b.cfg.urgentWeight, false); err != nil {
		g.why = err.Error()
		return g, nil
	}
	if g.bulk, err = h.Make(name+"-bulk", b.cfg.bulkWeight, b.cfg.bulkIdle); err != nil {
		g.remove()
		g.urgent, g.why = nil, err.Error()
		return g, nil
	}
	type member struct {
		name string
		pid  int
		to   *cpugroup.Group
	}
	ms := []member{{"loa api", b.fl.API.PID(), g.urgent}, {"loa-bench", os.Getpid(), g.urgent}}
	for i, d := range b.fl.Dispatchers {
		to := g.bulk
		if i == 0 {
			to = g.urgent
		}
		ms = append(ms, member{"loa " + d.Name, d.PID(), to})
	}
	if b.ref != nil {
		ms = append(ms, member{"the SMS fake (loa-fakes)", b.fl.Fakes.PID(), g.urgent},
			member{"the FCM fake (reference)", b.ref.PID(), g.bulk})
	} else {
		g.outside = "loa-fakes serves the broadcast's FCM and the codes' SMS alike: left outside both"
	}
	for _, m := range ms {
		if err := m.to.Add(m.pid); err != nil {
			return g, err
		}
		if m.to == g.urgent {
			g.urgentNames = append(g.urgentNames, m.name)
		} else {
			g.bulkNames = append(g.bulkNames, m.name)
		}
	}
	if b.cfg.servicesWeight > 0 {
		if g.services, err = h.Make(name+"-services", b.cfg.servicesWeight, false); err != nil {
			return g, err
		}
		for _, s := range b.servicePIDs() {
			if s.err != nil {
				g.serviceNames = append(g.serviceNames, fmt.Sprintf("%s not found (%v)", s.name, s.err))
				continue
			}
			if err := g.addService(s.name, s.pid, s.tree); err != nil {
				return g, err
			}
		}
	}
	return g, nil
}

// addService moves a service's process — with tree, the process and
// every process under it (PostgreSQL's postmaster and its backends; the
// backends it starts later are born in the group) — into the services'
// group. Only a service of the root cgroup is moved: the group's removal
// puts its processes back in the root, where they then run in their
// autogroups again, as before. A service elsewhere is left there, and the
// report says so.
func (g *benchGroups) addService(name string, pid int, tree bool) error {
	p, err := g.host.Of(pid)
	if err != nil {
		return err
	}
	if p.Group != "/" {
		g.serviceNames = append(g.serviceNames, fmt.Sprintf("%s left in cgroup %s", name, p.Group))
		return nil
	}
	pids := []int{pid}
	if tree {
		if pids, err = procstat.Tree(pid); err != nil {
			return err
		}
	}
	for _, q := range pids {
		// A backend may end between the listing and the move.
		if err := g.services.Add(q); err != nil && q == pid {
			return err
		}
	}
	g.serviceNames = append(g.serviceNames, name)
	return nil
}

func (g *benchGroups) used() bool { return g != nil && g.urgent != nil }

// String is the report's line on the groups.
func (g *benchGroups) String() string {
	if !g.used() {
		return fmt.Sprintf("cpu groups: none (%s); the split runs by nice alone", g.why)
	}
	s := fmt.Sprintf("cpu groups (cgroup v%d, %s): urgent side %s (%s), bulk side %s (%s); ",
		g.host.Version, g.host.Mount, g.urgent.Path, strings.Join(g.urgentNames, ", "), g.bulk.Path, strings.Join(g.bulkNames, ", "))
	if g.services != nil {
		s += fmt.Sprintf("services %s (%s), as on hosts of their own", g.services.Path, strings.Join(g.serviceNames, ", "))
	} else {
		s += "Kafka, Redis and PostgreSQL stay in their own groups and serve both sides"
	}
	if g.outside != "" {
		s += "; " + g.outside
	}
	return s
}

// remove moves what is left in the groups to the root (loa-bench itself)
// and removes them.
func (g *benchGroups) remove() {
	if !g.used() {
		return
	}
	g.removeErr = errors.Join(g.bulk.Remove(), g.urgent.Remove())
	if g.services != nil {
		g.removeErr = errors.Join(g.removeErr, g.services.Remove())
	}
}

// removed says whether the groups are gone.
func (g *benchGroups) removed() string {
	if !g.used() {
		return ""
	}
	paths := g.urgent.Path + ", " + g.bulk.Path
	left := g.urgent.Exists() || g.bulk.Exists()
	if g.services != nil {
		paths += ", " + g.services.Path
		left = left || g.services.Exists()
	}
	if g.removeErr != nil || left {
		return fmt.Sprintf("cpu groups NOT removed: %s (%v)", paths, g.removeErr)
	}
	return fmt.Sprintf("cpu groups removed: %s", paths)
}

// placement is where pid is scheduled as /proc shows it; for a process
// tree (PostgreSQL), its root's, and how many autogroups the tree spans
// (each backend of PostgreSQL starts a session, so an autogroup, of its
// own).
func placement(pid int, tree bool) string {
	h, err := cpugroup.Find()
	if err != nil {
		return ""
	}
	p, err := h.Of(pid)
	if err != nil {
		return ""
	}
	s := p.String()
	if !tree {
		return s
	}
	pids, err := procstat.Tree(pid)
	if err != nil {
		return s
	}
	groups := map[string]bool{}
	for _, q := range pids {
		if pq, err := h.Of(q); err == nil {
			groups[pq.String()] = true
		}
	}
	return fmt.Sprintf("%s; its %d processes in %d groups", s, len(pids), len(groups))
}
