// Command testlog is CI's view of `go test -json`: it prints what `make
// test-verbose` always printed (a line per test and subtest, the package
// summaries, panics and the tests' own file:line messages), and, for every
// test that fails, the whole output that test wrote (its last 400 lines),
// multi-line logs included: the log of a server a test started is what
// says why it failed, and a filter of single lines dropped it.
//
//	go test -json ./... 2>&1 | go run ./internal/testlog
//
// Lines that are not JSON (a build error, stderr) are printed as they
// come. It exits 1 when a test or a package failed, or when the input
// ended with a test still running (go test killed), so a pipeline with
// pipefail fails even if go test's own status is lost.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

// event is one line of go test -json (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// keep is the lines always printed.
var keep = regexp.MustCompile(`^( *--- (PASS|FAIL|SKIP)|ok |FAIL|panic:|\s+\S+_test\.go:[0-9]+:)`)

// maxLines is how much of a failed test's output is printed.
const maxLines = 400

func main() {
	failed, err := filter(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testlog:", err)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}

// filter copies in to out as described above and reports whether
// anything failed.
func filter(in io.Reader, out io.Writer) (bool, error) {
	w := bufio.NewWriter(out)
	defer w.Flush()
	type key struct{ pkg, test string }
	buf := map[key][]string{}
	running := map[key]bool{}
	failed := false
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil || e.Action == "" {
			fmt.Fprintf(w, "%s\n", line)
			w.Flush()
			continue
		}
		k := key{e.Package, e.Test}
		switch e.Action {
		case "run":
			running[k] = true
		case "output":
			for _, l := range strings.SplitAfter(e.Output, "\n") {
				if l == "" {
					continue
				}
				if keep.MatchString(l) {
					io.WriteString(w, l)
					if !strings.HasSuffix(l, "\n") {
						io.WriteString(w, "\n")
					}
					w.Flush()
				}
				b := append(buf[k], strings.TrimSuffix(l, "\n"))
				if len(b) > maxLines {
					b = b[len(b)-maxLines:]
				}
				buf[k] = b
			}
		case "pass", "skip":
			delete(buf, k)
			delete(running, k)
		case "fail":
			failed = true
			delete(running, k)
			what := e.Package
			if e.Test != "" {
				what += " " + e.Test
			}
			fmt.Fprintf(w, "=== output of the failed %s (its last %d lines at most):\n", what, maxLines)
			for _, l := range buf[k] {
				fmt.Fprintf(w, "    | %s\n", l)
			}
			fmt.Fprintf(w, "=== end of %s\n", what)
			w.Flush()
			delete(buf, k)
		}
	}
	if err := sc.Err(); err != nil {
		return failed, err
	}
	// go test killed before its tests ended (a timeout prints a panic
	// and the package fails; a kill prints nothing more): say what ran.
	for k := range running {
		failed = true
		fmt.Fprintf(w, "=== %s %s never ended; its last lines:\n", k.pkg, k.test)
		for _, l := range buf[k] {
			fmt.Fprintf(w, "    | %s\n", l)
		}
	}
	return failed, nil
}
