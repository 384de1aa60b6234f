package sandbox_test

import (
	"fmt"
	"testing"

	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/channels/channeltest"
	"github.com/loa-hub/loa/channels/sandbox"
)

type sink struct {
	o  *sandbox.Outbox
	ch channels.Name
}

func (s sink) Count(to string) int {
	n := 0
	for _, e := range s.o.Entries("", 0) {
		if e.To == to && e.Channel == s.ch {
			n++
		}
	}
	return n
}

func (s sink) Address(i int) string { return fmt.Sprintf("8491%07d", i) }

// TestContract: the sandbox keeps the same contract as every real channel.
func TestContract(t *testing.T) {
	channeltest.Run(t, func(t *testing.T) (channels.Channel, channeltest.Sink) {
		o := sandbox.NewOutbox(1000)
		return sandbox.New(channels.SMS, o), sink{o: o, ch: channels.SMS}
	})
}

func TestOutboxKeepsTheNewestWithinCapacity(t *testing.T) {
	o := sandbox.NewOutbox(3)
	c := sandbox.New(channels.Push, o)
	for i := range 5 {
		if _, err := c.Send(t.Context(), channels.Message{NotificationID: fmt.Sprint(i), To: "tok"}); err != nil {
			t.Fatal(err)
		}
	}
	got := o.Entries("", 0)
	if len(got) != 3 || got[0].NotificationID != "2" || got[2].NotificationID != "4" || o.Total() != 5 {
		t.Fatalf("entries %v total %d; want the newest 3 of 5, oldest first", got, o.Total())
	}
	if o.Count("0", channels.Push, "tok") != 1 {
		t.Error("a delivery dropped from the window must still be counted")
	}
}
