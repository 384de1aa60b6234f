package sqlstore_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/producer"
)

// TestBackupRestore: the documented procedure (deploy/backup/pg-backup.sh,
// then pg-restore.sh into an empty database) brings back the ledger,
// accounts with their roles and factors, and the audit log equal, row for
// row in every table and as Loa reads them; the restored database takes
// new writes.
func TestBackupRestore(t *testing.T) {
	pg := testenv.OwnPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	src := testenv.OpenStore(t, pg.URL("loa"))
	now := time.Now().UTC().Truncate(time.Microsecond)

	// Accounts: an audience, an official with roles, a password history
	// and an active authenticator with recovery codes.
	if err := src.UpsertAreas(ctx, []accounts.Area{{Code: "49", Name: "Tỉnh Quảng Nam", Level: "province"}}); err != nil {
		t.Fatal(err)
	}
	if err := src.SeedAudience(ctx, "bk", 500, 40_000_000, "smart", "49", now); err != nil {
		t.Fatal(err)
	}
	off := accounts.Account{ID: "off-1", Kind: accounts.KindOfficial, Status: accounts.StatusActive, FullName: "Trần Thị Ánh Tuyết",
		Username: "tran.thi.anh", Phone: "84911222333", Unit: "sotttt", PasswordHash: "$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA",
		PasswordChangedAt: now, CreatedAt: now}
	if err := src.CreateAccount(ctx, off); err != nil {
		t.Fatal(err)
	}
	if err := src.SetPassword(ctx, off.ID, "$argon2id$v=19$m=65536,t=3,p=1$c2FsdDI$aGFzaDI", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	for _, g := range []accounts.RoleGrant{{Unit: "sotttt", Role: accounts.RoleBroadcastApprover}, {Unit: "sotttt", Role: accounts.RoleOps}} {
		if err := src.GrantRole(ctx, off.ID, g, "admin", now); err != nil {
			t.Fatal(err)
		}
	}
	f := accounts.TOTPFactor{ID: "f-1", AccountID: off.ID, SecretSealed: []byte{0, 1, 2, 0xfe, 0xff}, Status: "pending", CreatedAt: now}
	if err := src.CreateTOTPFactor(ctx, f); err != nil {
		t.Fatal(err)
	}
	if err := src.ActivateTOTPFactor(ctx, f.ID, []string{"h1", "h2", "h3"}, now); err != nil {
		t.Fatal(err)
	}
	// The audit log, with Vietnamese text.
	for i := range 200 {
		if err := src.AppendAudit(ctx, accounts.AuditEntry{ID: fmt.Sprintf("au-%03d", i), At: now.Add(time.Duration(i) * time.Second),
			Actor: off.ID, Action: "broadcast.approve", Subject: fmt.Sprintf("bk-acc-%07d", i%50+1),
			Detail: map[string]string{"reason": "Phê duyệt thông báo số " + fmt.Sprint(i), "from": "submitted"}, IP: "10.0.0.1"}); err != nil {
			t.Fatal(err)
		}
	}
	// The ledger.
	var ds []producer.Delivery
	statuses := []loa.Status{"sent", "delivered", "failed", "retrying", "token_dead", "expired"}
	for i := range 600 {
		ds = append(ds, producer.Delivery{NotificationID: fmt.Sprintf("n-%d", i%7), Channel: "push", Recipient: fmt.Sprintf("bk-tok-%07d", i+1),
			Status: statuses[i%len(statuses)], Provider: "fcm:p", ProviderID: fmt.Sprintf("projects/p/messages/%d", i),
			Reason: "lý do", Targets: 600, Attempts: 1 + i%3, UpdatedAt: now})
	}
	if err := src.RecordDeliveries(ctx, ds); err != nil {
		t.Fatal(err)
	}

	// The procedure, as docs/operations.md gives it.
	file := filepath.Join(t.TempDir(), "loa.dump")
	_, here, _, _ := runtime.Caller(0)
	script := func(name string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join(filepath.Dir(here), "../../deploy/backup", name)}, args...)...)
		cmd.Env = append(cmd.Environ(), "PG_BIN="+filepath.Dir(pg.Bin("pg_dump")))
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := script("pg-backup.sh", file, pg.URL("loa")); err != nil {
		t.Fatalf("pg-backup.sh: %v\n%s", err, out)
	} else {
		t.Log(out)
	}
	if err := pg.CreateDatabase(ctx, "restored"); err != nil {
		t.Fatal(err)
	}
	if out, err := script("pg-restore.sh", file, pg.URL("restored")); err != nil {
		t.Fatalf("pg-restore.sh: %v\n%s", err, out)
	} else {
		t.Log(out)
	}
	// Restoring over data is refused.
	if out, err := script("pg-restore.sh", file, pg.URL("restored")); err == nil || !strings.Contains(out, "empty database") {
		t.Errorf("a restore over a non-empty database: %v\n%s", err, out)
	}

	// Every table, row for row.
	before, after := tableRows(t, ctx, pg.URL("loa")), tableRows(t, ctx, pg.URL("restored"))
	if len(before) < 10 {
		t.Fatalf("only %d tables in the source", len(before))
	}
	for table, rows := range before {
		if !reflect.DeepEqual(rows, after[table]) {
			t.Errorf("table %s: %d rows before, %d after the restore, or different", table, len(rows), len(after[table]))
		}
	}
	for table := range after {
		if _, ok := before[table]; !ok {
			t.Errorf("table %s appeared in the restore", table)
		}
	}
	for _, table := range []string{"deliveries", "accounts", "audit_log", "role_grants", "totp_factors", "recovery_codes", "devices"} {
		t.Logf("%s: %d rows restored", table, len(after[table]))
		if len(after[table]) == 0 {
			t.Errorf("table %s is empty after the restore", table)
		}
	}

	// As Loa reads them.
	dst := testenv.OpenStore(t, pg.URL("restored")) // migrating again is a no-op
	for _, id := range []string{off.ID, "bk-acc-0000001", "bk-acc-0000500"} {
		a, _ := src.Account(ctx, id)
		b, err := dst.Account(ctx, id)
		if err != nil || !reflect.DeepEqual(a, b) {
			t.Errorf("account %s: %+v / %+v, %v", id, a, b, err)
		}
	}
	ga, _ := src.RoleGrants(ctx, off.ID)
	if gb, err := dst.RoleGrants(ctx, off.ID); err != nil || !reflect.DeepEqual(ga, gb) || len(gb) != 2 {
		t.Errorf("roles: %v / %v, %v", ga, gb, err)
	}
	fa, _ := src.TOTPFactor(ctx, off.ID, "active")
	if fb, err := dst.TOTPFactor(ctx, off.ID, "active"); err != nil || !reflect.DeepEqual(fa, fb) {
		t.Errorf("factor: %+v / %+v, %v", fa, fb, err)
	}
	for _, subject := range []string{"bk-acc-0000001", "bk-acc-0000050"} {
		la, _ := src.AuditLog(ctx, subject, 100)
		if lb, err := dst.AuditLog(ctx, subject, 100); err != nil || !reflect.DeepEqual(la, lb) || len(lb) != 4 {
			t.Errorf("audit log of %s: %d / %d entries, %v", subject, len(la), len(lb), err)
		}
	}
	for i := range 7 {
		id := fmt.Sprintf("n-%d", i)
		la, _ := src.Deliveries(ctx, id)
		if lb, err := dst.Deliveries(ctx, id); err != nil || !reflect.DeepEqual(la, lb) || len(lb) == 0 {
			t.Errorf("ledger of %s: %d / %d rows, %v", id, len(la), len(lb), err)
		}
	}
	// The restored database takes new writes.
	if err := dst.AppendAudit(ctx, accounts.AuditEntry{ID: "au-after", At: now, Actor: "system", Action: "restore.check"}); err != nil {
		t.Errorf("append to the restored audit log: %v", err)
	}
}

// tableRows returns every row of every table of the public schema as
// text, sorted.
func tableRows(t *testing.T, ctx context.Context, url string) map[string][]string {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, table := range tables {
		rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT t::text FROM %s AS t`, pgx.Identifier{table}.Sanitize()))
		if err != nil {
			t.Fatal(err)
		}
		all, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(all)
		out[table] = all
	}
	return out
}
