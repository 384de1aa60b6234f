package instance

import (
	"net"
	"strconv"
	"testing"
)

// TestFreePortIsNoClientsPort: the port FreePort gives a server about to
// start is outside the range the kernel hands to outgoing connections,
// so no client of another test process can take it first (CI once lost
// a run to a loa api that found its port taken), and it is free.
func TestFreePortIsNoClientsPort(t *testing.T) {
	lo, hi := freePortRange()
	if hi <= lo {
		t.Skip("the ephemeral range starts too low to leave ports below it")
	}
	seen := map[int]bool{}
	for range 20 {
		port, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if port < lo || port >= hi {
			t.Fatalf("FreePort gave %d, want one of [%d, %d), below the ephemeral range", port, lo, hi)
		}
		seen[port] = true
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			t.Fatalf("FreePort's port %d is not free: %v", port, err)
		}
		ln.Close()
	}
	if len(seen) < 10 {
		t.Errorf("20 calls gave %d ports; two callers at once would share one", len(seen))
	}
}
