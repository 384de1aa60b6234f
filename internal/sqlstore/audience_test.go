package sqlstore_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
)

// TestAudience: areas include every unit below them; topics, accounts and
// everyone select what they say; closed accounts and inactive devices are
// never in an audience; keyset pages cover the audience exactly once.
func TestAudience(t *testing.T) {
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			now := time.Now()
			if err := db.UpsertAreas(ctx, []accounts.Area{
				{Code: "49", Name: "Quảng Nam", Level: "province"},
				{Code: "503", Name: "Hội An", Parent: "49", Level: "district"},
				{Code: "20497", Name: "Minh An", Parent: "503", Level: "ward"},
				{Code: "48", Name: "Đà Nẵng", Level: "province"},
			}); err != nil {
				t.Fatal(err)
			}
			if err := db.SeedAudience(ctx, "ward", 30, 10000, "smart", "20497", now); err != nil {
				t.Fatal(err)
			}
			if err := db.SeedAudience(ctx, "dist", 20, 20000, "smart", "503", now); err != nil {
				t.Fatal(err)
			}
			if err := db.SeedAudience(ctx, "dn", 25, 30000, "smart", "48", now); err != nil {
				t.Fatal(err)
			}
			if err := db.SeedAudience(ctx, "egov", 5, 40000, "egov", "20497", now); err != nil {
				t.Fatal(err)
			}
			db.DeactivateDevice(ctx, "ward-tok-0000001")
			if _, err := db.SQL().ExecContext(ctx, `UPDATE accounts SET status = 'closed' WHERE id = 'ward-acc-0000002'`); err != nil {
				t.Fatal(err)
			}
			if _, err := db.SQL().ExecContext(ctx, `INSERT INTO subscription_topics (account_id, topic) VALUES ('dn-acc-0000001', 'power'), ('dn-acc-0000002', 'power')`); err != nil {
				t.Fatal(err)
			}
			all := func(a sqlstore.Audience, page int) []string {
				var out []string
				after := ""
				for {
					ks, err := db.AudienceDevices(ctx, a, "smart", after, page)
					if err != nil {
						t.Fatal(err)
					}
					if len(ks) == 0 {
						return out
					}
					for _, k := range ks {
						out = append(out, k.Address)
					}
					after = ks[len(ks)-1].Key
				}
			}
			for _, c := range []struct {
				name string
				a    sqlstore.Audience
				want int
			}{
				{"province includes districts and wards", sqlstore.Audience{Areas: []string{"49"}}, 48}, // 30+20 less one inactive, one closed
				{"district", sqlstore.Audience{Areas: []string{"503"}}, 48},
				{"ward only", sqlstore.Audience{Areas: []string{"20497"}}, 28},
				{"other province", sqlstore.Audience{Areas: []string{"48"}}, 25},
				{"topic", sqlstore.Audience{Topics: []string{"power"}}, 2},
				{"accounts", sqlstore.Audience{Accounts: []string{"ward-acc-0000003", "dn-acc-0000009"}}, 2},
				{"union without double counting", sqlstore.Audience{Areas: []string{"48"}, Topics: []string{"power"}}, 25},
				{"everyone", sqlstore.Audience{Everyone: true}, 73},
				{"nobody", sqlstore.Audience{}, 0},
			} {
				t.Run(c.name, func(t *testing.T) {
					got := all(c.a, 7)
					seen := map[string]bool{}
					for _, tok := range got {
						if seen[tok] {
							t.Fatalf("%s listed twice", tok)
						}
						seen[tok] = true
					}
					if len(got) != c.want || !sort.StringsAreSorted(got) {
						t.Fatalf("%d devices (sorted %v), want %d", len(got), sort.StringsAreSorted(got), c.want)
					}
					devices, _, err := db.CountAudience(ctx, c.a, "smart")
					if err != nil || devices != c.want {
						t.Errorf("count %d %v, want %d", devices, err, c.want)
					}
				})
			}
			_, phones, err := db.CountAudience(ctx, sqlstore.Audience{Areas: []string{"20497"}}, "smart")
			if err != nil || phones != 34 { // 30 ward + 5 egov accounts, less one closed
				t.Errorf("phones in the ward: %d %v, want 34", phones, err)
			}
			ps, err := db.AudiencePhones(ctx, sqlstore.Audience{Areas: []string{"20497"}}, "", 100)
			if err != nil || len(ps) != 34 {
				t.Errorf("phone pages: %d %v", len(ps), err)
			}
		})
	}
}
