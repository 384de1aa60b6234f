package accounts

import (
	"errors"
	"testing"
	"time"
)

// TestHashLimit: with every slot taken and the queue full, a hash is
// refused at once with ErrBusy; one that waits in the queue past Wait is
// refused too; a freed slot serves the next. Hash, Verify and DummyVerify
// share the slots.
func TestHashLimit(t *testing.T) {
	h := &Argon2Hasher{Params: Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLength: 16, KeyLength: 32},
		Limit: HashLimit{Concurrency: 1, Queue: 0, Wait: time.Millisecond}}
	h.init()
	h.slots <- struct{}{} // the only slot is busy
	if _, err := h.Hash("Mật-khẩu-1"); !errors.Is(err, ErrBusy) {
		t.Errorf("hash with the queue full: %v", err)
	}
	if _, err := h.Verify(h.dummy, "x"); !errors.Is(err, ErrBusy) {
		t.Errorf("verify with the queue full: %v", err)
	}
	if err := h.DummyVerify("x"); !errors.Is(err, ErrBusy) {
		t.Errorf("dummy verify with the queue full: %v", err)
	}
	h.Limit.Queue = 1
	if _, err := h.Hash("Mật-khẩu-1"); !errors.Is(err, ErrBusy) {
		t.Errorf("hash past the wait: %v", err)
	}
	h.release()
	hash, err := h.Hash("Mật-khẩu-1")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := h.Verify(hash, "Mật-khẩu-1"); err != nil || !ok {
		t.Errorf("verify: %v %v", ok, err)
	}
	if len(h.slots) != 0 || h.waiting.Load() != 0 {
		t.Errorf("slots %d, waiting %d after use", len(h.slots), h.waiting.Load())
	}
}
