package main

import (
	"compress/gzip"
	"io"
	"os"
	"strings"
	"testing"
)

// TestMemProfileFollowsThePeak: LOA_MEMPROFILE's files are written at the
// first look and again only when the resident set grows 5 % past the last
// written, so what is left describes the peak.
func TestMemProfileFollowsThePeak(t *testing.T) {
	dir := t.TempDir()
	rss := int64(100 << 20)
	w := newMemWatch(dir, []string{"loa", "dispatcher"}, func() (int64, int64, int64) { return rss, rss - 10<<20, 10 << 20 })
	text := func() string {
		b, err := os.ReadFile(w.text)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	w.check()
	if !strings.Contains(text(), "resident set: 102400 KiB (anonymous 92160, files 10240)") {
		t.Fatalf("first look:\n%s", text())
	}
	rss = 104 << 20 // under 5 % more: the peak file stays
	w.check()
	if !strings.Contains(text(), "resident set: 102400 KiB") {
		t.Fatalf("rewritten for a 4 %% rise:\n%s", text())
	}
	rss = 90 << 20
	w.check()
	rss = 106 << 20
	w.check()
	got := text()
	if !strings.Contains(got, "resident set: 108544 KiB") || !strings.Contains(got, "/memory/classes/heap/objects:bytes") {
		t.Fatalf("new peak:\n%s", got)
	}
	if !strings.HasPrefix(w.heap, dir+"/heap-dispatcher-") {
		t.Fatalf("heap profile at %s", w.heap)
	}
	f, err := os.Open(w.heap)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f) // a pprof profile is a gzipped protocol buffer
	if err != nil {
		t.Fatalf("heap profile: %v", err)
	}
	b, err := io.ReadAll(zr)
	if err != nil || !strings.Contains(string(b), "inuse_space") {
		t.Fatalf("heap profile without inuse_space (%v)", err)
	}
}
