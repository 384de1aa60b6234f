package sqlstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
)

// TestAlerts is the alerts contract, on every dialect.
func TestAlerts(t *testing.T) {
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) { testAlerts(t, db) })
	}
}

func testAlerts(t *testing.T, db *sqlstore.DB) {
	ctx := context.Background()
	id := testenv.ID()
	at := time.Date(2026, 11, 20, 2, 0, 0, 0, time.UTC)
	a := sqlstore.StoredAlert{ID: "al-" + id, CAPIdentifier: "VN-" + id, Sender: "pctt@qn", Sent: at, MsgType: "Alert",
		Status: "sent_preauthorised", Priority: "high", Document: json.RawMessage(`{"identifier":"x"}`), Issuer: "key",
		AreaCodes: []string{"20194", "20197"}, Channels: []string{"push"}, ExpiresAt: at.Add(time.Hour), CreatedAt: at}

	// Concurrent posts of one identifier: one row, one creator.
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created int
		ids     = map[string]bool{}
	)
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := a
			x.ID = a.ID + "-" + string(rune('a'+i))
			got, ok, err := db.CreateAlert(ctx, x)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			ids[got.ID] = true
			if ok {
				created++
			}
		}()
	}
	wg.Wait()
	if created != 1 || len(ids) != 1 {
		t.Fatalf("created %d, ids %v", created, ids)
	}
	var origID string
	for k := range ids {
		origID = k
	}
	orig, err := db.Alert(ctx, origID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(orig.AreaCodes, a.AreaCodes) || !orig.ExpiresAt.Equal(a.ExpiresAt) || string(orig.References) != "[]" || !orig.PublishedAt.IsZero() {
		t.Errorf("round trip: %+v", orig)
	}

	upd := a
	upd.ID, upd.CAPIdentifier, upd.MsgType, upd.RefIDs, upd.Status = "up-"+id, "VN-up-"+id, "Update", []string{origID}, "pending_approval"
	upd.CreatedAt = at.Add(time.Minute)
	if _, ok, err := db.CreateAlert(ctx, upd); err != nil || !ok {
		t.Fatalf("update: %v %v", ok, err)
	}
	got, err := db.AlertByIdentifier(ctx, "pctt@qn", "VN-up-"+id)
	if err != nil || !slices.Equal(got.RefIDs, []string{origID}) {
		t.Fatalf("by identifier: %+v %v", got, err)
	}
	links, err := db.AlertsReferring(ctx, origID)
	if err != nil || len(links) != 1 || links[0].ID != upd.ID || links[0].MsgType != "Update" {
		t.Errorf("referring: %v %v", links, err)
	}

	if ok, err := db.DecideAlert(ctx, upd.ID, "pending_approval", "rejected", "session:x", "no", at); err != nil || !ok {
		t.Errorf("decide: %v %v", ok, err)
	}
	if ok, _ := db.DecideAlert(ctx, upd.ID, "pending_approval", "sent_approved", "session:x", "", at); ok {
		t.Error("decided twice")
	}
	if err := db.MarkAlertPublished(ctx, origID, at); err != nil {
		t.Fatal(err)
	}
	got, _ = db.Alert(ctx, upd.ID)
	if got.Status != "rejected" || got.DecidedBy != "session:x" || got.Reason != "no" || !got.DecidedAt.Equal(at) {
		t.Errorf("decided: %+v", got)
	}
	list, err := db.Alerts(ctx, "rejected", 100)
	if err != nil || !slices.ContainsFunc(list, func(x sqlstore.StoredAlert) bool { return x.ID == upd.ID }) {
		t.Errorf("list rejected: %v", err)
	}
	if _, err := db.Alert(ctx, "nope"); !errors.Is(err, sqlstore.ErrNotFound) {
		t.Errorf("missing: %v", err)
	}

	// Shapes select among units without units below them.
	parent, leaf := "p"+id, "l"+id
	if err := db.UpsertAreas(ctx, []accounts.Area{{Code: parent, Name: "p"}, {Code: leaf, Name: "l", Parent: parent}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SQL().ExecContext(ctx, `UPDATE areas SET lat = 15.5, lon = 108.25 WHERE code IN ($1, $2)`, parent, leaf); err != nil {
		t.Fatal(err)
	}
	pts, err := db.LeafAreaCentroids(ctx)
	if err != nil || !slices.Contains(pts, sqlstore.AreaCentroid{Code: leaf, Lat: 15.5, Lon: 108.25}) ||
		slices.ContainsFunc(pts, func(c sqlstore.AreaCentroid) bool { return c.Code == parent }) {
		t.Errorf("leaf centroids %v %v", pts, err)
	}

	// The relay's list: to be sent, not published, not expired.
	lost := a
	lost.ID, lost.CAPIdentifier = "lost-"+id, "VN-lost-"+id
	expired := a
	expired.ID, expired.CAPIdentifier, expired.ExpiresAt = "exp-"+id, "VN-exp-"+id, at.Add(-time.Second)
	for _, x := range []sqlstore.StoredAlert{lost, expired} {
		if _, _, err := db.CreateAlert(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	un, err := db.UnpublishedAlerts(ctx, at.Add(time.Second), at, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var unIDs []string
	for _, x := range un {
		unIDs = append(unIDs, x.ID)
	}
	if !slices.Contains(unIDs, lost.ID) || slices.Contains(unIDs, expired.ID) || slices.Contains(unIDs, origID) || slices.Contains(unIDs, upd.ID) {
		t.Errorf("unpublished %v", unIDs)
	}
}
