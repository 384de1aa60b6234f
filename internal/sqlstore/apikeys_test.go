package sqlstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/producer/outage"
)

// TestAPIKeyAreasMigration: migration 0157 gives an outages:write key
// exactly the areas it had published for, and nothing to one that never
// published (refused until an operator sets them); keys of other scopes
// get none. It runs on a schema put back as it was before 0157.
func TestAPIKeyAreasMigration(t *testing.T) {
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			for _, q := range []string{`ALTER TABLE api_keys DROP COLUMN areas`,
				`DELETE FROM schema_migrations WHERE version = '0157_api_key_areas.sql'`} {
				if err := sqlstore.Exec(db, q); err != nil {
					t.Fatal(err)
				}
			}
			now := time.Now()
			for _, k := range []struct{ id, scopes string }{
				{"k-evn", "outages:write"}, {"k-new", "notify:direct outages:write"}, {"k-ops", "ops"}, {"k-near", "outages:writer"},
			} {
				if err := sqlstore.Exec(db, `INSERT INTO api_keys (id, name, key_hash, scopes, created_at) VALUES ($1, $1, $1, $2, $3)`,
					k.id, k.scopes, now.UTC()); err != nil {
					t.Fatal(err)
				}
			}
			for i, areas := range [][]string{{"20497", "20500"}, {"20497", "503"}} {
				o := outage.Record{Client: "k-evn", ID: string(rune('a' + i)), Version: 1, Hash: "h", Areas: areas, Location: "x",
					Start: now.Add(time.Hour), End: now.Add(2 * time.Hour)}
				if err := db.SaveOutage(ctx, o, 0, now); err != nil {
					t.Fatal(err)
				}
			}
			// Another client's outage is not k-ops's.
			if err := db.SaveOutage(ctx, outage.Record{Client: "k-other", ID: "z", Version: 1, Hash: "h", Areas: []string{"49"}, Location: "x",
				Start: now.Add(time.Hour), End: now.Add(2 * time.Hour)}, 0, now); err != nil {
				t.Fatal(err)
			}
			if err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			keys, err := db.APIKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, k := range keys {
				got[k.ID] = strings.Join(k.Areas, " ")
			}
			want := map[string]string{"k-evn": "20497 20500 503", "k-new": "", "k-ops": "", "k-near": ""}
			for id, w := range want {
				if got[id] != w {
					t.Errorf("%s: areas %q; want %q", id, got[id], w)
				}
			}
		})
	}
}

// TestAPIKeyAlertAreasMigration: migration 0160 binds an existing
// alerts:issue key to every top unit loaded, so the province's alerting
// path keeps working, in a column of its own (a key's outage areas are
// unchanged); keys without alerts:issue get none. It runs on a schema
// put back as it was before 0160.
func TestAPIKeyAlertAreasMigration(t *testing.T) {
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			for _, q := range []string{`ALTER TABLE api_keys DROP COLUMN alert_areas`,
				`DELETE FROM schema_migrations WHERE version = '0160_api_key_alert_areas.sql'`} {
				if err := sqlstore.Exec(db, q); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.UpsertAreas(ctx, []accounts.Area{{Code: "49", Name: "Quảng Nam", Level: "province"},
				{Code: "503", Name: "Hội An", Parent: "49", Level: "district"}, {Code: "48", Name: "Đà Nẵng", Level: "province"}}); err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			for _, k := range []struct{ id, scopes, areas string }{
				{"k-pctt", "alerts:issue", ""}, {"k-both", "outages:write alerts:issue", "503"}, {"k-agency", "alerts:write", ""},
				{"k-evn", "outages:write", "503"}, {"k-near", "alerts:issuer", ""},
			} {
				if err := sqlstore.Exec(db, `INSERT INTO api_keys (id, name, key_hash, scopes, areas, created_at) VALUES ($1, $1, $1, $2, $3, $4)`,
					k.id, k.scopes, k.areas, now.UTC()); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			keys, err := db.APIKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, k := range keys {
				got[k.ID] = strings.Join(k.AlertAreas, " ") + "|" + strings.Join(k.Areas, " ")
			}
			want := map[string]string{"k-pctt": "48 49|", "k-both": "48 49|503", "k-agency": "|", "k-evn": "|503", "k-near": "|"}
			for id, w := range want {
				if got[id] != w {
					t.Errorf("%s: alert areas|areas %q; want %q", id, got[id], w)
				}
			}
		})
	}
}
