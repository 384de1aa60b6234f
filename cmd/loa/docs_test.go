package main

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestEveryVariableIsDocumented: every LOA_* variable the binary reads is
// named, in full, in docs/configuration.md, so the table a newcomer reads
// is the whole configuration.
func TestEveryVariableIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`"(LOA_[A-Z0-9_]+)"`)
	seen := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range name.FindAllSubmatch(b, -1) {
			seen[string(m[1])] = true
		}
	}
	if len(seen) < 50 {
		t.Fatalf("found %d variables in cmd/loa; the scan is broken", len(seen))
	}
	var missing []string
	for v := range seen {
		if !strings.Contains(string(doc), "`"+v) {
			missing = append(missing, v)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("not in docs/configuration.md: %s", strings.Join(missing, ", "))
	}
}
