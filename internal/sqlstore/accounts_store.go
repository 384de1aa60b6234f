package sqlstore

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/otp"
)

// The store implements the accounts domain's Store and the otp package's
// FactorStore.
var (
	_ accounts.Store  = (*DB)(nil)
	_ otp.FactorStore = (*DB)(nil)
)

const selectAccount = `SELECT id, kind, status, full_name, COALESCE(citizen_id, ''), COALESCE(tax_code, ''),
	COALESCE(username, ''), COALESCE(phone, ''), COALESCE(email, ''), unit, password_hash,
	password_changed_at, phone_verified_at, created_at, closed_at, created_by FROM accounts`

func scanAccount(s scanner) (accounts.Account, error) {
	var (
		a                                   accounts.Account
		kind, status                        string
		changed, verified, created, closedT timeValue
	)
	err := s.Scan(&a.ID, &kind, &status, &a.FullName, &a.CitizenID, &a.TaxCode, &a.Username, &a.Phone, &a.Email,
		&a.Unit, &a.PasswordHash, &changed, &verified, &created, &closedT, &a.CreatedBy)
	if errors.Is(err, sql.ErrNoRows) {
		return accounts.Account{}, accounts.ErrNotFound
	}
	if err != nil {
		return accounts.Account{}, err
	}
	a.Kind, a.Status = accounts.Kind(kind), accounts.Status(status)
	a.PasswordChangedAt, a.PhoneVerifiedAt, a.CreatedAt, a.ClosedAt = changed.t, verified.t, created.t, closedT.t
	return a, nil
}

// nullTime stores the zero time as NULL.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}

// conflict translates a unique-index violation on accounts into the
// domain's accounts.Taken error, naming the identifier that is taken.
func conflict(err error) error {
	var pg *pgconn.PgError
	text := err.Error()
	if errors.As(err, &pg) {
		if pg.Code != "23505" {
			return err
		}
		text = pg.ConstraintName
	} else if !strings.Contains(text, "UNIQUE constraint failed") {
		return err
	}
	for _, f := range []string{"citizen_id", "tax_code", "username", "phone"} {
		if strings.Contains(text, f) {
			return accounts.Taken(f)
		}
	}
	return err
}

// CreateAccount implements accounts.Store.
func (d *DB) CreateAccount(ctx context.Context, a accounts.Account) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: create account: %w", err)
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, `INSERT INTO accounts (id, kind, status, full_name, citizen_id, tax_code, username, phone, email,
		unit, password_hash, password_changed_at, phone_verified_at, created_at, created_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		a.ID, string(a.Kind), string(a.Status), a.FullName, nullIfEmpty(a.CitizenID), nullIfEmpty(a.TaxCode), nullIfEmpty(a.Username),
		nullIfEmpty(a.Phone), nullIfEmpty(a.Email), a.Unit, a.PasswordHash, nullTime(a.PasswordChangedAt), nullTime(a.PhoneVerifiedAt),
		a.CreatedAt.UTC(), a.CreatedBy)
	if err != nil {
		return conflict(fmt.Errorf("sqlstore: create account: %w", err))
	}
	if a.PasswordHash != "" {
		if _, err := tx.ExecContext(ctx, `INSERT INTO password_history (account_id, password_hash, set_at) VALUES ($1, $2, $3)`,
			a.ID, a.PasswordHash, a.CreatedAt.UTC()); err != nil {
			return fmt.Errorf("sqlstore: create account: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return conflict(fmt.Errorf("sqlstore: create account: %w", err))
	}
	return nil
}

// Account implements accounts.Store.
func (d *DB) Account(ctx context.Context, id string) (accounts.Account, error) {
	a, err := scanAccount(d.db.QueryRowContext(ctx, selectAccount+` WHERE id = $1`, id))
	if err != nil {
		return accounts.Account{}, fmt.Errorf("sqlstore: account: %w", err)
	}
	return a, nil
}

// FindAccount implements accounts.Store: the first of FindAccounts.
func (d *DB) FindAccount(ctx context.Context, l accounts.Login) (accounts.Account, error) {
	as, err := d.FindAccounts(ctx, l)
	if err != nil {
		return accounts.Account{}, err
	}
	if len(as) == 0 {
		return accounts.Account{}, fmt.Errorf("sqlstore: find account: %w", accounts.ErrNotFound)
	}
	return as[0], nil
}

// FindAccounts implements accounts.Store: the active accounts matching
// an identifier of l, a user name before a citizen ID before a tax code
// before a phone. Pending and closed accounts never match.
func (d *DB) FindAccounts(ctx context.Context, l accounts.Login) ([]accounts.Account, error) {
	rows, err := d.db.QueryContext(ctx, selectAccount+`
		WHERE status = 'active' AND (($1 <> '' AND username = $1) OR ($2 <> '' AND citizen_id = $2) OR ($3 <> '' AND tax_code = $3)
			OR ($4 <> '' AND phone = $4 AND phone_verified_at IS NOT NULL))
		ORDER BY CASE WHEN username = $1 THEN 0 WHEN citizen_id = $2 THEN 1 WHEN tax_code = $3 THEN 2 ELSE 3 END, id
		LIMIT 4`, l.Username, l.CitizenID, l.TaxCode, l.Phone)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find accounts: %w", err)
	}
	defer rows.Close()
	var out []accounts.Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: find accounts: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// DeletePendingAccounts implements accounts.Store: pending registrations
// created before before are removed with their password history.
func (d *DB) DeletePendingAccounts(ctx context.Context, before time.Time) (int, error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: delete pending accounts: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM password_history WHERE account_id IN
		(SELECT id FROM accounts WHERE status = 'pending' AND created_at < $1)`, before.UTC()); err != nil {
		return 0, fmt.Errorf("sqlstore: delete pending accounts: %w", err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM accounts WHERE status = 'pending' AND created_at < $1`, before.UTC())
	if err != nil {
		return 0, fmt.Errorf("sqlstore: delete pending accounts: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("sqlstore: delete pending accounts: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// ActivateAccount implements accounts.Store.
func (d *DB) ActivateAccount(ctx context.Context, id string, at time.Time) error {
	res, err := d.db.ExecContext(ctx, `UPDATE accounts SET status = 'active', phone_verified_at = $2 WHERE id = $1 AND status = 'pending'`,
		id, at.UTC())
	if err != nil {
		return conflict(fmt.Errorf("sqlstore: activate account: %w", err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("sqlstore: activate account: %w", accounts.ErrNotFound)
	}
	return nil
}

// SetPassword implements accounts.Store.
func (d *DB) SetPassword(ctx context.Context, id, hash string, at time.Time) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: set password: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE accounts SET password_hash = $2, password_changed_at = $3 WHERE id = $1`, id, hash, at.UTC())
	if err != nil {
		return fmt.Errorf("sqlstore: set password: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("sqlstore: set password: %w", accounts.ErrNotFound)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO password_history (account_id, password_hash, set_at) VALUES ($1, $2, $3)`,
		id, hash, at.UTC()); err != nil {
		return fmt.Errorf("sqlstore: set password: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: set password: %w", err)
	}
	return nil
}

// PasswordHistory implements accounts.Store.
func (d *DB) PasswordHistory(ctx context.Context, id string, n int) ([]string, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT password_hash FROM password_history WHERE account_id = $1 ORDER BY set_at DESC LIMIT $2`, id, n)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: password history: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, fmt.Errorf("sqlstore: password history: %w", err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// CloseAccount implements accounts.Store.
func (d *DB) CloseAccount(ctx context.Context, id string, at time.Time) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: close account: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE accounts SET status = 'closed', closed_at = $2 WHERE id = $1`, id, at.UTC())
	if err != nil {
		return fmt.Errorf("sqlstore: close account: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("sqlstore: close account: %w", accounts.ErrNotFound)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE devices SET active = FALSE WHERE account_id = $1`, id); err != nil {
		return fmt.Errorf("sqlstore: close account: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: close account: %w", err)
	}
	return nil
}

// GrantRole implements accounts.Store; granting a held role again is a
// no-op.
func (d *DB) GrantRole(ctx context.Context, accountID string, g accounts.RoleGrant, by string, at time.Time) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO role_grants (account_id, unit, role, granted_by, granted_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (account_id, unit, role) DO NOTHING`, accountID, g.Unit, string(g.Role), by, at.UTC())
	if err != nil {
		return fmt.Errorf("sqlstore: grant role: %w", err)
	}
	return nil
}

// RevokeRole implements accounts.Store.
func (d *DB) RevokeRole(ctx context.Context, accountID string, g accounts.RoleGrant) (bool, error) {
	res, err := d.db.ExecContext(ctx, `DELETE FROM role_grants WHERE account_id = $1 AND unit = $2 AND role = $3`, accountID, g.Unit, string(g.Role))
	if err != nil {
		return false, fmt.Errorf("sqlstore: revoke role: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// RoleGrants implements accounts.Store, ordered by unit and role.
func (d *DB) RoleGrants(ctx context.Context, accountID string) ([]accounts.RoleGrant, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT unit, role FROM role_grants WHERE account_id = $1 ORDER BY unit, role`, accountID)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: role grants: %w", err)
	}
	defer rows.Close()
	out := []accounts.RoleGrant{}
	for rows.Next() {
		var g accounts.RoleGrant
		var role string
		if err := rows.Scan(&g.Unit, &role); err != nil {
			return nil, fmt.Errorf("sqlstore: role grants: %w", err)
		}
		g.Role = accounts.Role(role)
		out = append(out, g)
	}
	return out, rows.Err()
}

// RoleGrantRecords implements accounts.Store: the grants with who gave
// them and when, ordered by unit and role.
func (d *DB) RoleGrantRecords(ctx context.Context, accountID string) ([]accounts.GrantRecord, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT unit, role, granted_by, granted_at FROM role_grants WHERE account_id = $1 ORDER BY unit, role`, accountID)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: role grant records: %w", err)
	}
	defer rows.Close()
	out := []accounts.GrantRecord{}
	for rows.Next() {
		var (
			g    accounts.GrantRecord
			role string
			at   timeValue
		)
		if err := rows.Scan(&g.Unit, &role, &g.GrantedBy, &at); err != nil {
			return nil, fmt.Errorf("sqlstore: role grant records: %w", err)
		}
		g.Role, g.GrantedAt = accounts.Role(role), at.t
		out = append(out, g)
	}
	return out, rows.Err()
}

// CreateTOTPFactor implements accounts.Store.
func (d *DB) CreateTOTPFactor(ctx context.Context, f accounts.TOTPFactor) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: create totp factor: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM totp_factors WHERE account_id = $1 AND status = 'pending'`, f.AccountID); err != nil {
		return fmt.Errorf("sqlstore: create totp factor: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO totp_factors (id, account_id, secret_sealed, status, created_at) VALUES ($1, $2, $3, 'pending', $4)`,
		f.ID, f.AccountID, base64.StdEncoding.EncodeToString(f.SecretSealed), f.CreatedAt.UTC()); err != nil {
		return fmt.Errorf("sqlstore: create totp factor: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: create totp factor: %w", err)
	}
	return nil
}

// TOTPFactor implements accounts.Store.
func (d *DB) TOTPFactor(ctx context.Context, accountID, status string) (accounts.TOTPFactor, error) {
	var (
		f       accounts.TOTPFactor
		sealed  string
		created timeValue
	)
	err := d.db.QueryRowContext(ctx, `SELECT id, account_id, secret_sealed, status, created_at FROM totp_factors
		WHERE account_id = $1 AND status = $2 ORDER BY created_at DESC LIMIT 1`, accountID, status).
		Scan(&f.ID, &f.AccountID, &sealed, &f.Status, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return accounts.TOTPFactor{}, fmt.Errorf("sqlstore: totp factor: %w", accounts.ErrNotFound)
	}
	if err != nil {
		return accounts.TOTPFactor{}, fmt.Errorf("sqlstore: totp factor: %w", err)
	}
	if f.SecretSealed, err = base64.StdEncoding.DecodeString(sealed); err != nil {
		return accounts.TOTPFactor{}, fmt.Errorf("sqlstore: totp factor %s: corrupt secret: %w", f.ID, err)
	}
	f.CreatedAt = created.t
	return f, nil
}

// ActivateTOTPFactor implements accounts.Store.
func (d *DB) ActivateTOTPFactor(ctx context.Context, factorID string, recoveryHashes []string, at time.Time) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: activate totp factor: %w", err)
	}
	defer tx.Rollback()
	var accountID string
	err = tx.QueryRowContext(ctx, `SELECT account_id FROM totp_factors WHERE id = $1 AND status = 'pending'`, factorID).Scan(&accountID)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlstore: activate totp factor: %w", accounts.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: activate totp factor: %w", err)
	}
	for _, q := range []string{
		`DELETE FROM totp_factors WHERE account_id = $1 AND status = 'active'`,
		`DELETE FROM recovery_codes WHERE account_id = $1`,
	} {
		if _, err := tx.ExecContext(ctx, q, accountID); err != nil {
			return fmt.Errorf("sqlstore: activate totp factor: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE totp_factors SET status = 'active', activated_at = $2 WHERE id = $1`, factorID, at.UTC()); err != nil {
		return fmt.Errorf("sqlstore: activate totp factor: %w", err)
	}
	for _, h := range recoveryHashes {
		if _, err := tx.ExecContext(ctx, `INSERT INTO recovery_codes (id, account_id, code_hash, created_at) VALUES ($1, $2, $3, $4)`,
			uuid.NewString(), accountID, h, at.UTC()); err != nil {
			return fmt.Errorf("sqlstore: activate totp factor: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: activate totp factor: %w", err)
	}
	return nil
}

// AdvanceStep implements otp.FactorStore: one compare-and-set statement,
// so of two racing verifications of one code exactly one advances.
func (d *DB) AdvanceStep(ctx context.Context, factorID string, step int64) (bool, error) {
	res, err := d.db.ExecContext(ctx, `UPDATE totp_factors SET last_step = $1 WHERE id = $2 AND (last_step IS NULL OR last_step < $1)`,
		step, factorID)
	if err != nil {
		return false, fmt.Errorf("sqlstore: advance step: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlstore: advance step: %w", err)
	}
	return n == 1, nil
}

// RecoveryCodes implements accounts.Store.
func (d *DB) RecoveryCodes(ctx context.Context, accountID string) ([]accounts.RecoveryCode, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT id, code_hash FROM recovery_codes WHERE account_id = $1 AND used_at IS NULL ORDER BY id`, accountID)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: recovery codes: %w", err)
	}
	defer rows.Close()
	var out []accounts.RecoveryCode
	for rows.Next() {
		var c accounts.RecoveryCode
		if err := rows.Scan(&c.ID, &c.Hash); err != nil {
			return nil, fmt.Errorf("sqlstore: recovery codes: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// UseRecoveryCode implements accounts.Store; of two racing uses one wins.
func (d *DB) UseRecoveryCode(ctx context.Context, id string, at time.Time) (bool, error) {
	res, err := d.db.ExecContext(ctx, `UPDATE recovery_codes SET used_at = $2 WHERE id = $1 AND used_at IS NULL`, id, at.UTC())
	if err != nil {
		return false, fmt.Errorf("sqlstore: use recovery code: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// UpsertDevice implements accounts.Store: a token active on another
// account moves only when move is set (accounts.ErrDeviceHeld
// otherwise); the conflict's update is conditional, so a check and a
// move cannot be split by a concurrent registration.
func (d *DB) UpsertDevice(ctx context.Context, dev accounts.Device, move bool) (accounts.Device, error) {
	var (
		out     accounts.Device
		created timeValue
	)
	err := d.db.QueryRowContext(ctx, `INSERT INTO devices (id, account_id, token, app, platform, active, created_at)
		VALUES ($1, $2, $3, $4, $5, TRUE, $6)
		ON CONFLICT (token) DO UPDATE SET account_id = excluded.account_id, app = excluded.app,
			platform = excluded.platform, active = TRUE, created_at = excluded.created_at
		WHERE devices.account_id = excluded.account_id OR NOT devices.active OR $7
		RETURNING id, account_id, token, app, platform, active, created_at`,
		dev.ID, dev.AccountID, dev.Token, dev.App, dev.Platform, dev.CreatedAt.UTC(), move).
		Scan(&out.ID, &out.AccountID, &out.Token, &out.App, &out.Platform, &out.Active, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return accounts.Device{}, fmt.Errorf("sqlstore: upsert device: %w", accounts.ErrDeviceHeld)
	}
	if err != nil {
		return accounts.Device{}, fmt.Errorf("sqlstore: upsert device: %w", err)
	}
	out.CreatedAt = created.t
	return out, nil
}

// TrimDevices implements accounts.Store. Ties in created_at are broken by
// id, so the same devices stay whichever replica trims.
func (d *DB) TrimDevices(ctx context.Context, accountID string, keep int) (int, error) {
	res, err := d.db.ExecContext(ctx, `DELETE FROM devices WHERE account_id = $1 AND id NOT IN
		(SELECT id FROM devices WHERE account_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2)`, accountID, keep)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: trim devices: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// DeleteDevice implements accounts.Store.
func (d *DB) DeleteDevice(ctx context.Context, accountID, deviceID string) (bool, error) {
	res, err := d.db.ExecContext(ctx, `DELETE FROM devices WHERE id = $1 AND account_id = $2`, deviceID, accountID)
	if err != nil {
		return false, fmt.Errorf("sqlstore: delete device: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// Devices returns an account's devices, oldest first.
func (d *DB) Devices(ctx context.Context, accountID string) ([]accounts.Device, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT id, account_id, token, app, platform, active, created_at FROM devices
		WHERE account_id = $1 ORDER BY created_at, id`, accountID)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: devices: %w", err)
	}
	defer rows.Close()
	var out []accounts.Device
	for rows.Next() {
		var (
			dev     accounts.Device
			created timeValue
		)
		if err := rows.Scan(&dev.ID, &dev.AccountID, &dev.Token, &dev.App, &dev.Platform, &dev.Active, &created); err != nil {
			return nil, fmt.Errorf("sqlstore: devices: %w", err)
		}
		dev.CreatedAt = created.t
		out = append(out, dev)
	}
	return out, rows.Err()
}

// ExistingAreas implements accounts.Store.
func (d *DB) ExistingAreas(ctx context.Context, codes []string) ([]string, error) {
	if len(codes) == 0 {
		return nil, nil
	}
	ph := make([]string, len(codes))
	args := make([]any, len(codes))
	for i, c := range codes {
		ph[i], args[i] = fmt.Sprintf("$%d", i+1), c
	}
	rows, err := d.db.QueryContext(ctx, `SELECT code FROM areas WHERE code IN (`+strings.Join(ph, ", ")+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: existing areas: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("sqlstore: existing areas: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// UpsertAreas adds administrative areas, leaving existing codes alone. It
// exists for dev-mode sample data and tests; the real tree is loaded by
// its own tool.
func (d *DB) UpsertAreas(ctx context.Context, areas []accounts.Area) error {
	defer d.trees.reset()
	for _, a := range areas {
		if _, err := d.db.ExecContext(ctx, `INSERT INTO areas (code, name, parent, level) VALUES ($1, $2, $3, $4) ON CONFLICT (code) DO NOTHING`,
			a.Code, a.Name, nullIfEmpty(a.Parent), a.Level); err != nil {
			return fmt.Errorf("sqlstore: upsert areas: %w", err)
		}
	}
	return nil
}

// SetSubscriptions implements accounts.Store.
func (d *DB) SetSubscriptions(ctx context.Context, accountID string, s accounts.Subscriptions, at time.Time) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: set subscriptions: %w", err)
	}
	defer tx.Rollback()
	stmts := []struct {
		q    string
		args []any
	}{
		{`INSERT INTO subscriptions (account_id, updated_at, quiet_start, quiet_end, quiet_tz) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (account_id) DO UPDATE SET updated_at = excluded.updated_at, quiet_start = excluded.quiet_start,
			quiet_end = excluded.quiet_end, quiet_tz = excluded.quiet_tz`,
			append([]any{accountID, at.UTC()}, quietColumns(s.QuietHours)...)},
		{`DELETE FROM subscription_areas WHERE account_id = $1`, []any{accountID}},
		{`DELETE FROM subscription_topics WHERE account_id = $1`, []any{accountID}},
	}
	for _, a := range s.Areas {
		stmts = append(stmts, struct {
			q    string
			args []any
		}{`INSERT INTO subscription_areas (account_id, area_code) VALUES ($1, $2) ON CONFLICT DO NOTHING`, []any{accountID, a}})
	}
	for _, t := range s.Topics {
		stmts = append(stmts, struct {
			q    string
			args []any
		}{`INSERT INTO subscription_topics (account_id, topic) VALUES ($1, $2) ON CONFLICT DO NOTHING`, []any{accountID, t}})
	}
	for _, st := range stmts {
		if _, err := tx.ExecContext(ctx, st.q, st.args...); err != nil {
			return fmt.Errorf("sqlstore: set subscriptions: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: set subscriptions: %w", err)
	}
	return nil
}

// quietColumns are the quiet_start, quiet_end and quiet_tz of q.
func quietColumns(q *accounts.QuietHours) []any {
	if q == nil {
		return []any{nil, nil, ""}
	}
	s, e, err := q.Minutes()
	if err != nil {
		return []any{nil, nil, ""}
	}
	return []any{s, e, q.TimeZone}
}

// Subscriptions implements accounts.Store; both lists are sorted.
func (d *DB) Subscriptions(ctx context.Context, accountID string) (accounts.Subscriptions, error) {
	out := accounts.Subscriptions{Areas: []string{}, Topics: []string{}}
	var (
		qs, qe sql.NullInt64
		tz     string
	)
	err := d.db.QueryRowContext(ctx, `SELECT quiet_start, quiet_end, quiet_tz FROM subscriptions WHERE account_id = $1`, accountID).Scan(&qs, &qe, &tz)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return accounts.Subscriptions{}, fmt.Errorf("sqlstore: subscriptions: %w", err)
	}
	if qs.Valid && qe.Valid {
		q := accounts.QuietHoursFromMinutes(int(qs.Int64), int(qe.Int64), tz)
		out.QuietHours = &q
	}
	for _, q := range []struct {
		sql string
		dst *[]string
	}{
		{`SELECT area_code FROM subscription_areas WHERE account_id = $1 ORDER BY area_code`, &out.Areas},
		{`SELECT topic FROM subscription_topics WHERE account_id = $1 ORDER BY topic`, &out.Topics},
	} {
		rows, err := d.db.QueryContext(ctx, q.sql, accountID)
		if err != nil {
			return accounts.Subscriptions{}, fmt.Errorf("sqlstore: subscriptions: %w", err)
		}
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return accounts.Subscriptions{}, fmt.Errorf("sqlstore: subscriptions: %w", err)
			}
			*q.dst = append(*q.dst, v)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return accounts.Subscriptions{}, fmt.Errorf("sqlstore: subscriptions: %w", err)
		}
	}
	return out, nil
}
