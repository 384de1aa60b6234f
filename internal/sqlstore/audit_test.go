package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
)

// TestAuditLogIsAppendOnly: the database itself refuses to change or
// remove audit rows, whatever SQL reaches it; only the purge deletes, and
// only rows older than its cutoff.
func TestAuditLogIsAppendOnly(t *testing.T) {
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			old := time.Now().UTC().AddDate(0, 0, -40)
			fresh := time.Now().UTC().Add(-time.Hour)
			for i, at := range []time.Time{old, fresh} {
				if err := db.AppendAudit(ctx, accounts.AuditEntry{ID: fmt.Sprintf("e%d", i), At: at, Actor: "apikey:k1", Action: "call",
					Subject: "n1", Route: "GET /v1/notifications/{id}", Status: 200, RequestID: "r1", IP: "203.0.113.7"}); err != nil {
					t.Fatal(err)
				}
			}
			raw := db.SQL()
			for _, stmt := range []string{
				`UPDATE audit_log SET actor = 'someone-else' WHERE id = 'e0'`,
				`UPDATE audit_log SET status = 500`,
				`DELETE FROM audit_log WHERE id = 'e0'`,
				`DELETE FROM audit_log`,
			} {
				if _, err := raw.ExecContext(ctx, stmt); err == nil || !strings.Contains(err.Error(), "append-only") {
					t.Errorf("%s: err %v, want the append-only refusal", stmt, err)
				}
			}
			if db.Dialect() == sqlstore.Postgres {
				if _, err := raw.ExecContext(ctx, `TRUNCATE audit_log`); err == nil || !strings.Contains(err.Error(), "append-only") {
					t.Errorf("TRUNCATE: %v", err)
				}
				// Opening the gate by hand inside a transaction still
				// cannot reach a row of the last day.
				tx, err := raw.BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				tx.ExecContext(ctx, `SELECT set_config('loa.audit_purge_before', '2100-01-01', true)`)
				if _, err := tx.ExecContext(ctx, `DELETE FROM audit_log WHERE id = 'e1'`); err == nil {
					t.Error("a hand-opened gate deleted a fresh row")
				}
				tx.Rollback()
				if _, err := raw.ExecContext(ctx, `SELECT loa_audit_purge(now())`); err == nil || !strings.Contains(err.Error(), "last day") {
					t.Errorf("purge of the last day through the function: %v", err)
				}
			} else {
				if _, err := raw.ExecContext(ctx, `INSERT INTO audit_purge_gate (cutoff) VALUES ($1)`, time.Now().UTC()); err == nil {
					t.Error("a gate within the last day was opened")
				}
			}
			got, err := db.AuditLog(ctx, "", 10)
			if err != nil || len(got) != 2 || got[0].Actor != "apikey:k1" || got[0].Status != 200 || got[0].Route != "GET /v1/notifications/{id}" || got[0].RequestID != "r1" {
				t.Fatalf("after the refused statements: %+v %v", got, err)
			}

			// The purge: refused within the last day; otherwise it deletes
			// only older rows and records itself.
			entry := accounts.AuditEntry{At: time.Now().UTC(), Actor: "cli:ops", Action: "audit.purge", Route: "loa admin audit purge"}
			if _, err := db.PurgeAudit(ctx, time.Now().Add(-time.Hour), entry); !errors.Is(err, sqlstore.ErrAuditRetention) {
				t.Errorf("purge within the last day: %v", err)
			}
			n, err := db.PurgeAudit(ctx, time.Now().AddDate(0, 0, -30), entry)
			if err != nil || n != 1 {
				t.Fatalf("purge: %d %v", n, err)
			}
			got, _ = db.AuditLog(ctx, "", 10)
			if len(got) != 2 || got[0].ID != "e1" || got[1].Action != "audit.purge" || got[1].Detail["deleted"] != "1" || got[1].Detail["cutoff"] == "" {
				t.Errorf("after the purge: %+v", got)
			}
			// The gate is closed again once the purge has committed.
			if _, err := raw.ExecContext(ctx, `DELETE FROM audit_log WHERE id = 'e1'`); err == nil {
				t.Error("a DELETE after the purge went through")
			}
		})
	}
}

func TestListAudit(t *testing.T) {
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			base := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
			for i := range 25 {
				actor, route := "apikey:a", "GET /v1/notifications/{id}"
				if i%5 == 0 {
					actor, route = "off-1", "POST /v1/broadcasts"
				}
				// Two entries share each second, so the cursor must break ties by id.
				at := base.Add(time.Duration(i/2) * time.Second)
				if err := db.AppendAudit(ctx, accounts.AuditEntry{ID: fmt.Sprintf("id-%02d", i), At: at, Actor: actor, Action: "call",
					Subject: fmt.Sprintf("t%d", i%3), Route: route, Status: 200}); err != nil {
					t.Fatal(err)
				}
			}
			var all []string
			var cur sqlstore.AuditCursor
			for page := 0; ; page++ {
				got, next, err := db.ListAudit(ctx, sqlstore.AuditFilter{Before: cur, Limit: 7})
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range got {
					all = append(all, e.ID)
				}
				if next.IsZero() {
					break
				}
				if page > 10 {
					t.Fatal("pagination does not end")
				}
				cur = next
			}
			if len(all) != 25 || all[0] != "id-24" || all[24] != "id-00" {
				t.Fatalf("pages gave %d entries: %v", len(all), all)
			}
			for i := 1; i < len(all); i++ {
				if all[i] >= all[i-1] {
					t.Fatalf("not newest first at %d: %v", i, all)
				}
			}
			for _, c := range []struct {
				name string
				f    sqlstore.AuditFilter
				want int
			}{
				{"actor", sqlstore.AuditFilter{Actor: "off-1"}, 5},
				{"route", sqlstore.AuditFilter{Route: "GET /v1/notifications/{id}"}, 20},
				{"target", sqlstore.AuditFilter{Target: "t0"}, 9},
				{"since", sqlstore.AuditFilter{Since: base.Add(10 * time.Second)}, 5},
				{"until", sqlstore.AuditFilter{Until: base.Add(time.Second)}, 2},
				{"all together", sqlstore.AuditFilter{Actor: "off-1", Target: "t0", Since: base, Until: base.Add(time.Hour)}, 2},
			} {
				got, _, err := db.ListAudit(ctx, c.f)
				if err != nil || len(got) != c.want {
					t.Errorf("%s: %d entries, want %d (%v)", c.name, len(got), c.want, err)
				}
			}
		})
	}
}

func TestAPIKeyRevokeAndLastUse(t *testing.T) {
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			created := time.Now().UTC().AddDate(0, 0, -100)
			for _, id := range []string{"k1", "k2"} {
				if err := db.CreateAPIKey(ctx, sqlstore.APIKey{ID: id, Name: "sys " + id, Hash: "h-" + id, Scopes: []string{"ops"}, CreatedAt: created}); err != nil {
					t.Fatal(err)
				}
			}
			used := time.Now().UTC().AddDate(0, 0, -60).Truncate(time.Millisecond)
			db.AppendAudit(ctx, accounts.AuditEntry{At: used, Actor: "apikey:k1", Action: "call", Route: "GET /v1/ops/deadletters", Status: 200})
			keys, err := db.APIKeys(ctx)
			if err != nil || len(keys) != 2 || !keys[0].LastUsedAt.Equal(used) || !keys[1].LastUsedAt.IsZero() {
				t.Fatalf("keys %+v %v", keys, err)
			}
			// The last use outlives the purge of the row that recorded it.
			if _, err := db.PurgeAudit(ctx, time.Now().AddDate(0, 0, -30), accounts.AuditEntry{At: time.Now(), Actor: "cli:t", Action: "audit.purge"}); err != nil {
				t.Fatal(err)
			}
			keys, _ = db.APIKeys(ctx)
			if !keys[0].LastUsedAt.Equal(used) {
				t.Errorf("last use after the purge: %v, want %v", keys[0].LastUsedAt, used)
			}
			revokedAt := time.Now().UTC().Truncate(time.Millisecond)
			if ok, err := db.RevokeAPIKey(ctx, "k1", revokedAt); !ok || err != nil {
				t.Fatalf("revoke: %v %v", ok, err)
			}
			if ok, err := db.RevokeAPIKey(ctx, "k1", revokedAt.Add(time.Hour)); ok || err != nil {
				t.Errorf("revoke again: %v %v", ok, err)
			}
			if _, err := db.RevokeAPIKey(ctx, "nope", revokedAt); !errors.Is(err, sqlstore.ErrNotFound) {
				t.Errorf("revoke unknown: %v", err)
			}
			if _, err := db.APIKeyByHash(ctx, "h-k1"); !errors.Is(err, sqlstore.ErrNotFound) {
				t.Errorf("a revoked key still authenticates: %v", err)
			}
			keys, _ = db.APIKeys(ctx)
			if !keys[0].RevokedAt.Equal(revokedAt) || !keys[1].RevokedAt.IsZero() {
				t.Errorf("revoked at %v / %v", keys[0].RevokedAt, keys[1].RevokedAt)
			}
		})
	}
}
