package kafkapub

import (
	"errors"
	"net"
	"syscall"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/loa-hub/loa/producer"
)

// TestWriteErrorSaysWhy: when the broker went away under a write, the
// writer reports kafka.WriteErrors, one per message; Write's error has
// them in its chain (here a refused connection), so the API can tell a
// caller to retry instead of answering an internal error.
func TestWriteErrorSaysWhy(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	err := writeError([]producer.Record{{Topic: "loa.otp"}, {Topic: "loa.otp"}}, kafka.WriteErrors{nil, refused})
	if _, ok := errors.AsType[*net.OpError](err); !ok {
		t.Errorf("no *net.OpError in the chain of %q", err)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("%q is not ECONNREFUSED", err)
	}
	if want := "producer: write to loa.otp: Kafka write errors (1/2), errors: [" + refused.Error() + "]"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}
