package sqlstore

import (
	"fmt"
	"testing"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/producer"
)

// TestSplitProbablyNew: a broadcast's batch of first sends is written by
// COPY as it is, without a copy of its rows; a batch with rows that
// probably exist is divided, each part in its order.
func TestSplitProbablyNew(t *testing.T) {
	at := time.Date(2026, 11, 29, 22, 0, 0, 0, time.UTC)
	rs := make([]producer.Delivery, 500)
	for i := range rs {
		rs[i] = producer.Delivery{NotificationID: "bc", Channel: "push", Recipient: fmt.Sprintf("tok-%03d", i), Status: loa.StatusSent,
			Provider: "fcm", ProviderID: fmt.Sprint(i), Targets: 500, Attempts: 1, UpdatedAt: at}
	}
	fresh, known := splitProbablyNew(rs)
	if len(fresh) != len(rs) || &fresh[0] != &rs[0] || known != nil {
		t.Errorf("a broadcast's batch: %d fresh (the batch itself: %v), %d known", len(fresh), len(fresh) > 0 && &fresh[0] == &rs[0], len(known))
	}
	if allocs := testing.AllocsPerRun(1000, func() { splitProbablyNew(rs) }); allocs != 0 {
		t.Errorf("a broadcast's batch: %v allocations, want 0", allocs)
	}

	mixed := append([]producer.Delivery(nil), rs[:4]...)
	mixed[1].Status = loa.StatusDelivered // a carrier's report
	mixed[3].Provider = ""                // a redelivery's receipt
	fresh, known = splitProbablyNew(mixed)
	if len(fresh) != 2 || fresh[0].Recipient != "tok-000" || fresh[1].Recipient != "tok-002" ||
		len(known) != 2 || known[0].Recipient != "tok-001" || known[1].Recipient != "tok-003" {
		t.Errorf("mixed: fresh %v, known %v", fresh, known)
	}
}
