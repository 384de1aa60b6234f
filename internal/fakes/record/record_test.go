package record

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestLog(t *testing.T) {
	var l Log[string]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	var waitErr error
	go func() { defer wg.Done(); waitErr = l.WaitCount(ctx, 3) }()
	l.Add("a", "k1")
	l.Add("b", "k2")
	l.Add("c", "k1", "k3")
	wg.Wait()
	if waitErr != nil {
		t.Fatal(waitErr)
	}
	if l.Count() != 3 || l.CountFor("k1") != 2 || l.CountFor("k3") != 1 {
		t.Errorf("counts = %v", l.Counts())
	}
	if d := l.Duplicates(); len(d) != 1 || d["k1"] != 2 {
		t.Errorf("Duplicates = %v", d)
	}
	if m := l.Messages(); len(m) != 3 || m[2] != "c" {
		t.Errorf("Messages = %v", m)
	}
	l.Reset()
	if l.Count() != 0 || l.CountFor("k1") != 0 {
		t.Errorf("after Reset: %d", l.Count())
	}
	short, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := l.WaitCount(short, 1); err == nil {
		t.Error("WaitCount on a cancelled context returned nil")
	}
}

func TestLogDiscard(t *testing.T) {
	l := Log[int]{Discard: true}
	l.Add(1, "a")
	l.Add(2, "a")
	if l.Count() != 2 || l.CountFor("a") != 2 || len(l.Messages()) != 0 {
		t.Errorf("Count %d CountFor %d Messages %v", l.Count(), l.CountFor("a"), l.Messages())
	}
	if err := l.WaitCount(context.Background(), 2); err != nil {
		t.Error(err)
	}
}
