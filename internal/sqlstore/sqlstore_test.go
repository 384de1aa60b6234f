package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/direct"
)

// TestStore is the contract every dialect passes.
func TestStore(t *testing.T) {
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			t.Run("notification round trip", func(t *testing.T) { testNotificationRoundTrip(t, db) })
			t.Run("idempotency under concurrency", func(t *testing.T) { testIdempotency(t, db) })
			t.Run("ledger never downgrades sent", func(t *testing.T) { testLedger(t, db) })
			t.Run("api keys", func(t *testing.T) { testAPIKeys(t, db) })
			t.Run("contacts", func(t *testing.T) { testContacts(t, db) })
			t.Run("migrate is idempotent", func(t *testing.T) {
				if err := db.Migrate(context.Background()); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

func sample(id, key string) direct.Notification {
	now := time.Date(2026, 11, 22, 10, 0, 0, 123456000, time.UTC)
	return direct.Notification{
		ID: id, ClientID: "client-1", IdempotencyKey: key, RequestHash: "h1",
		Kind: "notification.direct", Lane: "direct", RecipientType: "phone", Recipient: "84912345678",
		Title: "Thông báo", Body: "Nội dung", Data: map[string]string{"k": "v"}, Channels: []string{"sms", "push"},
		Priority: "normal", CreatedAt: now, ExpiresAt: now.Add(5 * time.Minute),
	}
}

func testNotificationRoundTrip(t *testing.T, db *sqlstore.DB) {
	ctx := context.Background()
	in := sample("n-rt", "")
	if _, created, err := db.CreateNotification(ctx, in); err != nil || !created {
		t.Fatalf("create: created=%v err=%v", created, err)
	}
	got, err := db.Notification(ctx, "n-rt")
	if err != nil {
		t.Fatal(err)
	}
	if !got.CreatedAt.Equal(in.CreatedAt) || !got.ExpiresAt.Equal(in.ExpiresAt) || !got.PublishedAt.IsZero() {
		t.Errorf("times: got created %v expires %v published %v", got.CreatedAt, got.ExpiresAt, got.PublishedAt)
	}
	if got.Title != in.Title || got.Body != in.Body || got.Data["k"] != "v" || len(got.Channels) != 2 || got.Channels[1] != "push" {
		t.Errorf("got %+v", got)
	}
	unpub, err := db.Unpublished(ctx, in.CreatedAt.Add(time.Second), 10)
	if err != nil || len(unpub) != 1 {
		t.Fatalf("unpublished before mark: %d %v", len(unpub), err)
	}
	pubAt := in.CreatedAt.Add(time.Second)
	if err := db.MarkPublished(ctx, "n-rt", pubAt); err != nil {
		t.Fatal(err)
	}
	got, _ = db.Notification(ctx, "n-rt")
	if !got.PublishedAt.Equal(pubAt) {
		t.Errorf("published at %v, want %v", got.PublishedAt, pubAt)
	}
	if unpub, _ := db.Unpublished(ctx, in.CreatedAt.Add(time.Hour), 10); len(unpub) != 0 {
		t.Errorf("still unpublished: %d", len(unpub))
	}
	if _, err := db.Notification(ctx, "missing"); !errors.Is(err, sqlstore.ErrNotFound) {
		t.Errorf("missing: %v", err)
	}
	kinds, err := db.NotificationKinds(ctx, []string{"missing", "n-rt"})
	if err != nil || len(kinds) != 1 || kinds["n-rt"] != (sqlstore.NotificationKind{Kind: in.Kind, Lane: in.Lane}) {
		t.Errorf("NotificationKinds = %v, %v; want n-rt's only", kinds, err)
	}
}

func testIdempotency(t *testing.T, db *sqlstore.DB) {
	ctx := context.Background()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		ids     = map[string]int{}
		created int
	)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, c, err := db.CreateNotification(ctx, sample(fmt.Sprintf("n-idem-%d", i), "same-key"))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			ids[n.ID]++
			if c {
				created++
			}
		}()
	}
	wg.Wait()
	if len(ids) != 1 || created != 1 {
		t.Fatalf("ids %v created %d; want one id created once", ids, created)
	}
}

func testLedger(t *testing.T, db *sqlstore.DB) {
	ctx := context.Background()
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	d := producer.Delivery{NotificationID: "n-l", Channel: "sms", Recipient: "84912345678", Status: "failed", Class: "transient", Targets: 1, Attempts: 1, UpdatedAt: at}
	for _, step := range []struct{ status loa.Status }{{"failed"}, {"sent"}, {"failed"}} {
		d.Status = step.status
		d.Attempts++
		if err := db.RecordDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.Deliveries(ctx, "n-l")
	if err != nil || len(got) != 1 {
		t.Fatalf("deliveries: %v %v", got, err)
	}
	if got[0].Status != "sent" || got[0].Attempts != 3 || !got[0].UpdatedAt.Equal(at) {
		t.Errorf("got %+v; want sent, attempts 3", got[0])
	}
}

func testAPIKeys(t *testing.T, db *sqlstore.DB) {
	ctx := context.Background()
	k := sqlstore.APIKey{ID: "k1", Name: "reporting", Hash: "abc", Scopes: []string{"notify:direct", "ops"}, CreatedAt: time.Now()}
	if err := db.CreateAPIKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	got, err := db.APIKeyByHash(ctx, "abc")
	if err != nil || got.Name != "reporting" || len(got.Scopes) != 2 {
		t.Fatalf("got %+v %v", got, err)
	}
	if _, err := db.APIKeyByHash(ctx, "nope"); !errors.Is(err, sqlstore.ErrNotFound) {
		t.Errorf("unknown key: %v", err)
	}
}

func testContacts(t *testing.T, db *sqlstore.DB) {
	ctx := context.Background()
	if err := db.SeedAccount(ctx, "acc-1", "citizen", "84912345678", "a@example.vn", []string{"tok-1", "tok-2"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := db.DeactivateDevice(ctx, "tok-1"); err != nil {
		t.Fatal(err)
	}
	c, err := db.Contact(ctx, "acc-1", "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Phone != "84912345678" || c.Email != "a@example.vn" || len(c.Tokens) != 1 || c.Tokens[0] != "tok-2" {
		t.Errorf("contact %+v", c)
	}
	if ok, _ := db.AccountExists(ctx, "acc-1"); !ok {
		t.Error("acc-1 should exist")
	}
	if err := db.SeedAccountApp(ctx, "acc-2", "official", "84987654321", "", "egov", []string{"egov-tok"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if c, _ := db.Contact(ctx, "acc-2", "smart"); len(c.Tokens) != 0 {
		t.Errorf("smart devices of an egov-only account: %v", c.Tokens)
	}
	if c, _ := db.Contact(ctx, "acc-2", "egov"); len(c.Tokens) != 1 {
		t.Errorf("egov devices: %v", c.Tokens)
	}
	if _, err := db.Contact(ctx, "nobody", ""); !errors.Is(err, sqlstore.ErrNotFound) {
		t.Errorf("unknown: %v", err)
	}
}
