// Package blobtest is the contract every blob store passes.
package blobtest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/loa-hub/loa/internal/blob"
)

// Store is what the contract exercises.
type Store interface {
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	Open(ctx context.Context, key string) (io.ReadCloser, int64, error)
	Delete(ctx context.Context, key string) error
}

// Run runs the contract against s; prefix isolates the test's keys.
func Run(t *testing.T, s Store, prefix string) {
	ctx := context.Background()
	key := prefix + "/feedback/01a2/0.jpg"
	data := bytes.Repeat([]byte("\xff\xd8\xffloa"), 300<<10) // 1.8 MB: more than one buffer
	if err := s.Put(ctx, key, bytes.NewReader(data), int64(len(data)), "image/jpeg"); err != nil {
		t.Fatal(err)
	}
	rc, n, err := s.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || n != int64(len(data)) || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes (size %d, err %v), want %d", len(got), n, err, len(data))
	}
	// Overwrite.
	if err := s.Put(ctx, key, strings.NewReader("abc"), 3, "image/jpeg"); err != nil {
		t.Fatal(err)
	}
	rc, n, err = s.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(rc)
	rc.Close()
	if string(got) != "abc" || n != 3 {
		t.Errorf("after overwrite: %q (%d)", got, n)
	}
	// A short body is refused and leaves nothing new behind.
	if err := s.Put(ctx, prefix+"/short", strings.NewReader("ab"), 5, "image/png"); err == nil {
		t.Error("a body shorter than its size was stored")
	}
	if _, _, err := s.Open(ctx, prefix+"/short"); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("short put left %v", err)
	}
	if err := s.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Open(ctx, key); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
	if err := s.Delete(ctx, key); err != nil {
		t.Errorf("deleting a missing blob: %v", err)
	}
	for _, bad := range []string{"../etc/passwd", "/abs", "a//b", "A.jpg", ""} {
		if err := s.Put(ctx, bad, strings.NewReader("x"), 1, ""); err == nil {
			t.Errorf("key %q accepted", bad)
		}
	}
}
