package sqlstore_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
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
				{"areas, topic and accounts overlapping", sqlstore.Audience{Areas: []string{"503", "20497"}, Topics: []string{"power"},
					Accounts: []string{"ward-acc-0000003", "dn-acc-0000001", "dn-acc-0000009"}}, 51}, // 48 + 2 by topic + 1 by account
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
					if len(got) != c.want {
						t.Fatalf("%d devices, want %d", len(got), c.want)
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

// TestAudiencePagesReadTheirAudienceOnly: on PostgreSQL, a page of a
// small area's audience reads rows of that area, not of the rest of the
// devices table: with 30,000 devices in another commune, no page of a
// 1,000-device commune (nor of that commune with an account list, nor of
// the empty page that ends it) has its plan examine more than a few rows
// per row it returns. The plans are PostgreSQL's own EXPLAIN ANALYZE of
// the queries the store runs, in the transaction it runs them in.
func TestAudiencePagesReadTheirAudienceOnly(t *testing.T) {
	db := testenv.OpenStore(t, testenv.PostgresURL(t))
	ctx := context.Background()
	now := time.Now()
	if err := db.UpsertAreas(ctx, []accounts.Area{{Code: "49", Name: "Quảng Nam", Level: "province"},
		{Code: "20497", Name: "Minh An", Parent: "49", Level: "commune"}, {Code: "20498", Name: "Cẩm Phô", Parent: "49", Level: "commune"}}); err != nil {
		t.Fatal(err)
	}
	// The small commune's ids sort before the large one's: a walk of the
	// devices in id order that filters by area reads the whole large
	// commune to find the end of the small one.
	if err := db.SeedAudience(ctx, "al", 1_000, 5_000_000, "smart", "20498", now); err != nil {
		t.Fatal(err)
	}
	if err := db.SeedAudience(ctx, "qn", 30_000, 0, "smart", "20497", now); err != nil {
		t.Fatal(err)
	}
	var examined []int
	sqlstore.SetAudienceHook(db, func(ctx context.Context, conn interface {
		QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	}, q string, args []any) {
		// Planned for its arguments, without sorts, workers or JIT.
		rows, err := conn.QueryContext(ctx, `SELECT current_setting('plan_cache_mode') || current_setting('enable_sort') ||
			current_setting('max_parallel_workers_per_gather') || current_setting('jit')`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var set string
			if err := rows.Scan(&set); err != nil || set != "force_custom_planoff0off" {
				t.Fatalf("the page runs with %q (%v)", set, err)
			}
		}
		rows.Close()
		var plan []byte
		rows, err = conn.QueryContext(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			if err := rows.Scan(&plan); err != nil {
				t.Fatal(err)
			}
		}
		rows.Close()
		var doc []struct{ Plan planNode }
		if err := json.Unmarshal(plan, &doc); err != nil || len(doc) != 1 {
			t.Fatalf("explain: %v: %s", err, plan)
		}
		examined = append(examined, doc[0].Plan.examined())
	})
	for _, c := range []struct {
		name  string
		a     sqlstore.Audience
		phone bool
		limit int
		want  int
	}{
		{"devices of the small commune", sqlstore.Audience{Areas: []string{"20498"}}, false, 100, 1_000},
		{"phones of the small commune", sqlstore.Audience{Areas: []string{"20498"}}, true, 100, 1_000},
		{"the commune and two accounts", sqlstore.Audience{Areas: []string{"20498"}, Accounts: []string{"qn-acc-0000007", "al-acc-0000009"}}, false, 100, 1_001},
		// Three parts (the province and its two communes): an account is
		// listed in its first part only, which each row checks by a probe.
		{"the province", sqlstore.Audience{Areas: []string{"49"}}, false, 500, 31_000},
	} {
		t.Run(c.name, func(t *testing.T) {
			examined = examined[:0]
			n, after, limit := 0, "", c.limit
			for {
				var (
					page []sqlstore.Keyed
					err  error
				)
				if c.phone {
					page, err = db.AudiencePhones(ctx, c.a, after, limit)
				} else {
					page, err = db.AudienceDevices(ctx, c.a, "smart", after, limit)
				}
				if err != nil {
					t.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				n, after = n+len(page), page[len(page)-1].Key
			}
			if n != c.want {
				t.Fatalf("%d addresses, want %d", n, c.want)
			}
			for i, e := range examined {
				if e > 8*limit {
					t.Errorf("query %d of %d examined %d rows for a page of at most %d", i+1, len(examined), e, limit)
				}
			}
		})
	}
}

// planNode is a node of PostgreSQL's EXPLAIN (ANALYZE, FORMAT JSON).
type planNode struct {
	NodeType       string     `json:"Node Type"`
	ActualRows     float64    `json:"Actual Rows"`
	ActualLoops    float64    `json:"Actual Loops"`
	RemovedFilter  float64    `json:"Rows Removed by Filter"`
	RemovedJoin    float64    `json:"Rows Removed by Join Filter"`
	RemovedRecheck float64    `json:"Rows Removed by Index Recheck"`
	Plans          []planNode `json:"Plans"`
}

// examined is how many rows the scans under n read: those they returned
// and those their filters removed, over all their loops.
func (n planNode) examined() int {
	total := 0.0
	if strings.Contains(n.NodeType, "Scan") {
		total = (n.ActualRows + n.RemovedFilter + n.RemovedRecheck) * max(n.ActualLoops, 1)
	}
	for _, c := range n.Plans {
		total += float64(c.examined())
	}
	return int(total)
}

// TestAudiencePageOfManyRows: a page as the planner reads it (thousands
// of rows, with quiet hours) gives each row its own account's quiet
// hours — none to the rows after one that has them — and costs a few
// allocations a row: the row's strings and what the driver makes, not
// its destinations again for every row.
func TestAudiencePageOfManyRows(t *testing.T) {
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			now := time.Now()
			if err := db.UpsertAreas(ctx, []accounts.Area{{Code: "49", Name: "Quảng Nam", Level: "province"}}); err != nil {
				t.Fatal(err)
			}
			const n = 2000
			if err := db.SeedAudience(ctx, "many", n, 0, "smart", "49", now); err != nil {
				t.Fatal(err)
			}
			quiet := accounts.QuietHours{Start: "22:30", End: "05:45", TimeZone: "Asia/Ho_Chi_Minh"}
			quietAccounts := map[string]bool{"many-acc-0000010": true, "many-acc-0001500": true}
			for id := range quietAccounts {
				if err := db.SetSubscriptions(ctx, id, accounts.Subscriptions{Areas: []string{"49"}, QuietHours: &quiet}, now); err != nil {
					t.Fatal(err)
				}
			}
			aud := sqlstore.Audience{Areas: []string{"49"}}
			page, err := db.AudienceDevicesQuiet(ctx, aud, "smart", "", n)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) != n {
				t.Fatalf("%d rows, want %d", len(page), n)
			}
			withQuiet := 0
			for _, k := range page {
				acc := strings.Replace(k.Address, "-tok-", "-acc-", 1)
				switch {
				case quietAccounts[acc] && (k.Quiet == nil || *k.Quiet != quiet):
					t.Errorf("%s: quiet hours %+v, want %+v", k.Address, k.Quiet, quiet)
				case !quietAccounts[acc] && k.Quiet != nil:
					t.Errorf("%s: quiet hours %+v of another account", k.Address, *k.Quiet)
				}
				if k.Quiet != nil {
					withQuiet++
				}
			}
			if withQuiet != len(quietAccounts) {
				t.Errorf("%d rows with quiet hours, want %d", withQuiet, len(quietAccounts))
			}
			allocs := testing.AllocsPerRun(3, func() {
				if _, err := db.AudienceDevicesQuiet(ctx, aud, "smart", "", n); err != nil {
					t.Fatal(err)
				}
			})
			perRow := allocs / n
			t.Logf("%.2f allocations a row", perRow)
			if perRow > 7 { // 10 when each row allocated its destinations
				t.Errorf("%.2f allocations a row, want at most 7", perRow)
			}
		})
	}
}
