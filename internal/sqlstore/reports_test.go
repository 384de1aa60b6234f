package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/producer"
)

// TestLedgerPrecedence: the ledger keeps the best-known state of a
// delivery whatever order its receipts come in.
func TestLedgerPrecedence(t *testing.T) {
	cases := []struct {
		name  string
		steps []loa.Status
		want  loa.Status
	}{
		{"sent overrides retrying", []loa.Status{"retrying", "sent"}, "sent"},
		{"sent overrides failed", []loa.Status{"failed", "sent"}, "sent"},
		{"failure after sent is ignored", []loa.Status{"sent", "failed"}, "sent"},
		{"retrying after sent is ignored", []loa.Status{"sent", "retrying"}, "sent"},
		{"delivered overrides sent", []loa.Status{"sent", "delivered"}, "delivered"},
		{"undelivered overrides sent", []loa.Status{"sent", "undelivered"}, "undelivered"},
		{"delivered overrides undelivered", []loa.Status{"sent", "undelivered", "delivered"}, "delivered"},
		{"nothing downgrades delivered: undelivered", []loa.Status{"sent", "delivered", "undelivered"}, "delivered"},
		{"nothing downgrades delivered: sent", []loa.Status{"delivered", "sent"}, "delivered"},
		{"nothing downgrades delivered: failed", []loa.Status{"sent", "delivered", "failed"}, "delivered"},
		{"sent after undelivered is ignored", []loa.Status{"undelivered", "sent"}, "undelivered"},
		{"a report before the send receipt", []loa.Status{"delivered", "retrying", "sent"}, "delivered"},
		{"among transient states the latest wins", []loa.Status{"retrying", "failed"}, "failed"},
		{"failed then expired", []loa.Status{"retrying", "expired"}, "expired"},
		{"retry after a permanent failure", []loa.Status{"failed", "retrying"}, "retrying"},
		{"a replayed dead letter is sent", []loa.Status{"retrying", "failed", "sent", "delivered"}, "delivered"},
	}
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
			for i, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					id := fmt.Sprintf("n-prec-%d", i)
					for j, st := range c.steps {
						d := producer.Delivery{NotificationID: id, Channel: "sms", Recipient: "84912345678", Status: st,
							Provider: "esms", ProviderID: "esms-1", Targets: 1, Attempts: j + 1, UpdatedAt: at.Add(time.Duration(j) * time.Second)}
						if err := db.RecordDelivery(ctx, d); err != nil {
							t.Fatal(err)
						}
					}
					got, err := db.Deliveries(ctx, id)
					if err != nil || len(got) != 1 {
						t.Fatalf("deliveries: %v %v", got, err)
					}
					if got[0].Status != c.want {
						t.Errorf("after %v: %s, want %s", c.steps, got[0].Status, c.want)
					}
				})
			}
		})
	}
}

// TestDeliveryByProviderID: a delivery report finds its ledger row by the
// gateway's message id, and a receipt without a provider does not erase it.
func TestDeliveryByProviderID(t *testing.T) {
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
			rec := func(d producer.Delivery) {
				t.Helper()
				d.Channel, d.Targets, d.Attempts, d.UpdatedAt = "sms", 1, 1, at
				if err := db.RecordDelivery(ctx, d); err != nil {
					t.Fatal(err)
				}
			}
			rec(producer.Delivery{NotificationID: "n-a", Recipient: "84912345678", Status: "retrying", Provider: "esms"})
			rec(producer.Delivery{NotificationID: "n-a", Recipient: "84912345678", Status: "sent", Provider: "speedsms", ProviderID: "4711"})
			rec(producer.Delivery{NotificationID: "n-b", Recipient: "84987654321", Status: "sent", Provider: "esms", ProviderID: "4711"})
			rec(producer.Delivery{NotificationID: "n-c", Recipient: "84911111111", Status: "sent", Provider: "sandbox:sms"})

			got, err := db.DeliveryByProviderID(ctx, "speedsms", "4711")
			if err != nil || got.NotificationID != "n-a" || got.Recipient != "84912345678" || got.Status != "sent" {
				t.Errorf("speedsms 4711: %+v %v", got, err)
			}
			if got, err := db.DeliveryByProviderID(ctx, "esms", "4711"); err != nil || got.NotificationID != "n-b" {
				t.Errorf("esms 4711 (same id, another gateway): %+v %v", got, err)
			}
			for _, q := range [][2]string{{"esms", "nope"}, {"webhook", "4711"}, {"sandbox:sms", ""}} {
				if _, err := db.DeliveryByProviderID(ctx, q[0], q[1]); !errors.Is(err, sqlstore.ErrNotFound) {
					t.Errorf("%s %q: %v, want ErrNotFound", q[0], q[1], err)
				}
			}

			// A redelivery that found the delivery already sent carries no
			// provider; the row keeps the id reports are matched by.
			rec(producer.Delivery{NotificationID: "n-b", Recipient: "84987654321", Status: "sent", Reason: "already sent"})
			if got, err := db.DeliveryByProviderID(ctx, "esms", "4711"); err != nil || got.NotificationID != "n-b" {
				t.Errorf("after a duplicate receipt: %+v %v", got, err)
			}
			rec(producer.Delivery{NotificationID: "n-b", Recipient: "84987654321", Status: "delivered", Provider: "esms", ProviderID: "4711"})
			if got, err := db.DeliveryByProviderID(ctx, "esms", "4711"); err != nil || got.Status != "delivered" {
				t.Errorf("after the report: %+v %v", got, err)
			}
		})
	}
}
