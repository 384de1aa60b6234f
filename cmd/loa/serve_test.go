package main

import (
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"
)

// TestShutdownOrder: serve stops its parts in the shutdown order, whatever
// the order they were started in, each once, and reports every step's
// error.
func TestShutdownOrder(t *testing.T) {
	var (
		down shutdown
		ran  []string
	)
	step := func(i int, err error) {
		down[i] = func() error { ran = append(ran, stopNames[i]); return err }
	}
	// Registered as serve does: connections first, the API's steps, then
	// the providers and the dispatcher; no metrics server.
	step(stopConnections, nil)
	step(stopLoops, errors.New("loop failed"))
	step(stopHTTP, nil)
	step(stopCodes, nil)
	step(stopProviders, nil)
	step(stopDispatcher, nil)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	err := down.run(log)
	want := []string{"http", "codes", "dispatcher", "providers", "loops", "connections"}
	if !slices.Equal(ran, want) {
		t.Errorf("stopped %v, want %v", ran, want)
	}
	if err == nil || err.Error() != "loops: loop failed" {
		t.Errorf("error %v, want the loop's", err)
	}
	if err := down.run(log); err != nil || len(ran) != len(want) {
		t.Errorf("a second run stopped again: %v %v", ran, err)
	}
}
