package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

// startMemProfile watches the process's resident memory (LOA_MEMPROFILE, a
// directory; off when empty) and, each time it reaches a new high (5 % over
// the last one written), writes there a heap profile
// (heap-<command>-<pid>.pprof) and the runtime's memory classes with the
// resident set (mem-<command>-<pid>.txt), replacing the previous pair: the
// files describe the process at its peak. For benchmarks, like
// LOA_CPUPROFILE.
func startMemProfile(dir string, args []string) (func(), error) {
	if dir == "" {
		return func() {}, nil
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("LOA_MEMPROFILE: %s is not a directory", dir)
	}
	w := newMemWatch(dir, args, selfRSS)
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			w.check()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-stopped }, nil
}

// memWatch writes a heap profile whenever rss reaches a new high.
type memWatch struct {
	heap, text string
	rss        func() (rss, anon, file int64)
	last       int64 // the resident set when the files were last written
}

func newMemWatch(dir string, args []string, rss func() (int64, int64, int64)) *memWatch {
	command := "loa"
	if len(args) > 1 {
		command = filepath.Base(args[1])
	}
	base := command + "-" + strconv.Itoa(os.Getpid())
	return &memWatch{heap: filepath.Join(dir, "heap-"+base+".pprof"), text: filepath.Join(dir, "mem-"+base+".txt"), rss: rss}
}

// check writes the files when the resident set is 5 % over the last
// written one (or on the first call).
func (w *memWatch) check() {
	rss, anon, file := w.rss()
	if rss <= 0 || w.last > 0 && rss < w.last+w.last/20 {
		return
	}
	w.last = rss
	var heap bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&heap, 0); err == nil {
		writeReplace(w.heap, heap.Bytes())
	}
	var b strings.Builder
	fmt.Fprintf(&b, "at %s\nresident set: %d KiB (anonymous %d, files %d)\n", time.Now().UTC().Format(time.RFC3339), rss>>10, anon>>10, file>>10)
	var samples []metrics.Sample
	for _, d := range metrics.All() {
		if strings.HasPrefix(d.Name, "/memory/classes/") || d.Name == "/gc/heap/goal:bytes" || d.Name == "/gc/gogc:percent" ||
			d.Name == "/gc/gomemlimit:bytes" || d.Name == "/sched/goroutines:goroutines" || d.Name == "/gc/cycles/total:gc-cycles" {
			samples = append(samples, metrics.Sample{Name: d.Name})
		}
	}
	metrics.Read(samples)
	for _, s := range samples {
		if s.Value.Kind() != metrics.KindUint64 {
			continue
		}
		v := s.Value.Uint64()
		if strings.HasSuffix(s.Name, ":bytes") {
			fmt.Fprintf(&b, "%-45s %10d KiB\n", s.Name, v>>10)
		} else {
			fmt.Fprintf(&b, "%-45s %10d\n", s.Name, v)
		}
	}
	writeReplace(w.text, []byte(b.String()))
}

// writeReplace writes data to path through a temporary file, so a reader
// never sees half a profile.
func writeReplace(path string, data []byte) {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err == nil {
		os.Rename(tmp, path)
	}
}

// selfRSS reads this process's resident set, its anonymous and its
// file-backed parts, from /proc/self/status (0 where it cannot).
func selfRSS() (rss, anon, file int64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss = kb << 10
		case "RssAnon":
			anon = kb << 10
		case "RssFile":
			file = kb << 10
		}
	}
	return rss, anon, file
}
