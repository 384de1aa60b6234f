package sqlstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/producer"
)

// TestRecordDeliveriesMatchesOneByOne: a batch (with several receipts for
// one delivery, in any order of ranks) leaves the ledger as applying the
// receipts one by one does.
func TestRecordDeliveriesMatchesOneByOne(t *testing.T) {
	seqs := [][]loa.Status{
		{"retrying", "sent", "failed"},
		{"sent", "delivered", "sent", "undelivered"},
		{"failed", "retrying", "expired"},
		{"token_dead"},
		{"sent", "retrying", "delivered"},
	}
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
			var batch []producer.Delivery
			for i, seq := range seqs {
				for j, st := range seq {
					provider := "p"
					if j == len(seq)-1 {
						provider = "" // a redelivery's receipt carries no provider
					}
					d := producer.Delivery{Channel: "push", Recipient: fmt.Sprintf("tok-%d", i), Status: st, Provider: provider,
						ProviderID: fmt.Sprintf("id-%d-%d", i, j), Targets: 1, Attempts: j + 1, UpdatedAt: at.Add(time.Duration(j) * time.Second)}
					one := d
					one.NotificationID = "one-by-one"
					if err := db.RecordDelivery(ctx, one); err != nil {
						t.Fatal(err)
					}
					d.NotificationID = "batched"
					batch = append(batch, d)
				}
			}
			if err := db.RecordDeliveries(ctx, batch); err != nil {
				t.Fatal(err)
			}
			a, _ := db.Deliveries(ctx, "one-by-one")
			b, _ := db.Deliveries(ctx, "batched")
			if len(a) != len(seqs) || len(b) != len(seqs) {
				t.Fatalf("%d and %d rows, want %d", len(a), len(b), len(seqs))
			}
			for i := range a {
				a[i].NotificationID, b[i].NotificationID = "", ""
				if fmt.Sprint(a[i]) != fmt.Sprint(b[i]) {
					t.Errorf("row %d:\n one by one %+v\n batched    %+v", i, a[i], b[i])
				}
			}
		})
	}
}
