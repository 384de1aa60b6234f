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
	"github.com/loa-hub/loa/internal/areas"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/alert"
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
	a := alert.StoredAlert{ID: "al-" + id, CAPIdentifier: "VN-" + id, Sender: "pctt@qn", Sent: at, MsgType: "Alert",
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
	list, err := db.Alerts(ctx, "rejected", "", 100)
	if err != nil || !slices.ContainsFunc(list, func(x alert.StoredAlert) bool { return x.ID == upd.ID }) {
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
	if err != nil || !slices.Contains(pts, areas.Centroid{Code: leaf, Lat: 15.5, Lon: 108.25}) ||
		slices.ContainsFunc(pts, func(c areas.Centroid) bool { return c.Code == parent }) {
		t.Errorf("leaf centroids %v %v", pts, err)
	}

	// An alert stored with its outbox item: due after its grace until the
	// alert is marked published, which marks the item too.
	lost := a
	lost.ID, lost.CAPIdentifier = "lost-"+id, "VN-lost-"+id
	env, err := producer.NewEnvelope(lost.ID, producer.KindPlan, topics.LaneAlert, lost.ID, at, lost.ExpiresAt, "",
		producer.Plan{NotificationID: lost.ID, Audience: producer.Audience{Areas: []string{leaf}}, Channels: []string{"push"}})
	if err != nil {
		t.Fatal(err)
	}
	item, err := producer.NewOutboxItem("alert:"+lost.ID, lost.ID, at.Add(30*time.Second), env)
	if err != nil {
		t.Fatal(err)
	}
	item.Record = producer.RecordAlert
	if _, _, err := db.CreateAlert(ctx, lost, item); err != nil {
		t.Fatal(err)
	}
	dueIDs := func(now time.Time) []string {
		due, err := db.Due(ctx, now, 1000)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, it := range due {
			ids = append(ids, it.ID)
		}
		return ids
	}
	if ids := dueIDs(at.Add(29 * time.Second)); slices.Contains(ids, item.ID) {
		t.Errorf("due before its grace: %v", ids)
	}
	if ids := dueIDs(at.Add(30 * time.Second)); !slices.Contains(ids, item.ID) {
		t.Errorf("not due after its grace: %v", ids)
	}
	if err := db.MarkAlertPublished(ctx, lost.ID, at.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if ids := dueIDs(at.Add(time.Hour)); slices.Contains(ids, item.ID) {
		t.Errorf("due after the alert was published: %v", ids)
	}
	if got, _ := db.Alert(ctx, lost.ID); got.PublishedAt.IsZero() {
		t.Error("not marked published")
	}
}

// TestAlertSemantics: an alert's audience beyond areas round-trips, a
// reference to an alert not received yet is linked when it arrives, and
// audiences of roles and accounts reach every app's devices only when
// asked.
func TestAlertSemantics(t *testing.T) {
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) { testAlertSemantics(t, db) })
	}
}

func testAlertSemantics(t *testing.T, db *sqlstore.DB) {
	ctx := context.Background()
	id := testenv.ID()
	at := time.Date(2026, 11, 20, 2, 0, 0, 0, time.UTC)
	upd := alert.StoredAlert{ID: "upd-" + id, CAPIdentifier: "U-" + id, Sender: "s-" + id, Sent: at, MsgType: "Update",
		Status: "no_recipients", Priority: "high", Document: json.RawMessage(`{}`), Issuer: "key", ExpiresAt: at.Add(time.Hour), CreatedAt: at,
		Distribution: "restricted", ChainKey: "A-" + id, Audience: alert.Audience{Roles: []string{"alert_responder"}, App: "*"},
		Notes:       alert.Notes{UnmatchedRefs: []string{"s-" + id + ",A-" + id}, Restriction: "Cứu hộ"},
		PendingRefs: []alert.Ref{{Sender: "s-" + id, Identifier: "A-" + id}}}
	got, created, err := db.CreateAlert(ctx, upd)
	if err != nil || !created {
		t.Fatalf("create update: %v %v", created, err)
	}
	if got.Distribution != "restricted" || got.ChainKey != "A-"+id || !slices.Equal(got.Audience.Roles, []string{"alert_responder"}) ||
		got.Audience.App != "*" || got.Notes.Restriction != "Cứu hộ" || len(got.PendingRefs) != 1 {
		t.Fatalf("update round trip: %+v", got)
	}
	waiting, err := db.AlertsAwaiting(ctx, "s-"+id, "A-"+id)
	if err != nil || len(waiting) != 1 || waiting[0].ID != upd.ID || waiting[0].Status != "no_recipients" || waiting[0].Distribution != "restricted" {
		t.Fatalf("awaiting: %v %v", waiting, err)
	}
	orig := alert.StoredAlert{ID: "orig-" + id, CAPIdentifier: "A-" + id, Sender: "s-" + id, Sent: at.Add(-time.Minute), MsgType: "Alert",
		Status: "superseded", Priority: "high", Document: json.RawMessage(`{}`), Issuer: "key", ExpiresAt: at.Add(time.Hour), CreatedAt: at.Add(time.Second)}
	if _, created, err := db.CreateAlert(ctx, orig); err != nil || !created {
		t.Fatalf("create original: %v %v", created, err)
	}
	u, err := db.Alert(ctx, upd.ID)
	if err != nil || !slices.Equal(u.RefIDs, []string{orig.ID}) || len(u.PendingRefs) != 0 {
		t.Fatalf("update after its original arrived: refs %v pending %v %v", u.RefIDs, u.PendingRefs, err)
	}
	if links, err := db.AlertsReferring(ctx, orig.ID); err != nil || len(links) != 1 || links[0].ID != upd.ID {
		t.Errorf("original's links %v %v", links, err)
	}

	// A role holder's Egov device is reached by a role audience on any
	// app, not by one limited to the Smart app; a citizen with no role is
	// not reached at all.
	if err := db.SeedAccountApp(ctx, "resp-"+id, "official", "", "", "egov", []string{"tok-resp-" + id}, at); err != nil {
		t.Fatal(err)
	}
	if err := db.SeedAccountApp(ctx, "cit-"+id, "citizen", "", "", "smart", []string{"tok-cit-" + id}, at); err != nil {
		t.Fatal(err)
	}
	if err := db.GrantRole(ctx, "resp-"+id, accounts.RoleGrant{Unit: "u", Role: "alert_responder"}, "t", at); err != nil {
		t.Fatal(err)
	}
	roles := sqlstore.Audience{Roles: []string{"alert_responder"}}
	page, err := db.AudienceDevices(ctx, roles, sqlstore.AnyApp, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	var toks []string
	for _, k := range page {
		toks = append(toks, k.Address)
	}
	if !slices.Contains(toks, "tok-resp-"+id) || slices.Contains(toks, "tok-cit-"+id) {
		t.Errorf("role audience on any app reaches %v", toks)
	}
	if page, _ := db.AudienceDevices(ctx, roles, "smart", "", 1000); slices.ContainsFunc(page, func(k sqlstore.Keyed) bool { return k.Address == "tok-resp-"+id }) {
		t.Error("role audience on the Smart app reached an Egov device")
	}
	byAddr, err := db.AccountsByAddress(ctx, []string{"cit-" + id, "nobody-" + id}, []string{"", ""})
	if err != nil || byAddr["cit-"+id] != "cit-"+id || len(byAddr) != 1 {
		t.Errorf("accounts by address: %v %v", byAddr, err)
	}
}
