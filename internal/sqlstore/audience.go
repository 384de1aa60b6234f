package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/producer"
)

// Audience is loa.Audience (who a planned notification is for) with the
// queries that select it.
type Audience loa.Audience

// Empty reports whether the audience names nobody.
func (a Audience) Empty() bool { return loa.Audience(a).Empty() }

// Keyed is one address of an audience with the key it is ordered by.
type Keyed struct {
	Key     string
	Address string
	// Quiet are the quiet hours of the address's account, when asked for
	// (AudienceDevicesQuiet, AudiencePhonesQuiet) and set.
	Quiet *accounts.QuietHours
}

// predicate returns the SQL condition on an account id column (and the
// WITH clause it needs) selecting the audience, with its arguments
// numbered from next.
func (a Audience) predicate(accountCol string, next int) (with, cond string, args []any) {
	if a.Everyone && a.Unacknowledged == "" {
		return "", "TRUE", nil
	}
	list := func(vals []string) string {
		ph := make([]string, len(vals))
		for i, v := range vals {
			ph[i] = fmt.Sprintf("$%d", next)
			args = append(args, v)
			next++
		}
		return strings.Join(ph, ", ")
	}
	var parts []string
	if a.Everyone {
		parts = append(parts, "TRUE")
	}
	if len(a.Areas) > 0 {
		with = `WITH RECURSIVE area_tree(code) AS (
			SELECT code FROM areas WHERE code IN (` + list(a.Areas) + `)
			UNION SELECT areas.code FROM areas JOIN area_tree ON areas.parent = area_tree.code) `
		parts = append(parts, `EXISTS (SELECT 1 FROM subscription_areas sa WHERE sa.account_id = `+accountCol+
			` AND sa.area_code IN (SELECT code FROM area_tree))`)
	}
	if len(a.Topics) > 0 {
		parts = append(parts, `EXISTS (SELECT 1 FROM subscription_topics st WHERE st.account_id = `+accountCol+
			` AND st.topic IN (`+list(a.Topics)+`))`)
	}
	if len(a.Accounts) > 0 {
		parts = append(parts, accountCol+` IN (`+list(a.Accounts)+`)`)
	}
	if len(a.Roles) > 0 {
		parts = append(parts, `EXISTS (SELECT 1 FROM role_grants rg WHERE rg.account_id = `+accountCol+
			` AND rg.role IN (`+list(a.Roles)+`))`)
	}
	if len(parts) == 0 {
		return "", "FALSE", nil
	}
	cond = "(" + strings.Join(parts, " OR ") + ")"
	if a.Unacknowledged != "" {
		cond += fmt.Sprintf(` AND NOT EXISTS (SELECT 1 FROM alert_acks k WHERE k.chain = $%d AND k.account_id = %s)`, next, accountCol)
		args = append(args, a.Unacknowledged)
	}
	return with, cond, args
}

// AnyApp, as the app of AudienceDevices and CountAudience, selects the
// devices of every app.
const AnyApp = producer.AnyApp

// AudienceDevices returns up to limit active devices of app (AnyApp for
// all) in the audience whose key sorts after `after` ("" for the first
// page), in key order (keyset pagination: the planner streams an audience
// of any size in flat memory). Keys are opaque; see audienceParts.
func (d *DB) AudienceDevices(ctx context.Context, a Audience, app, after string, limit int) ([]Keyed, error) {
	return d.audiencePage(ctx, a, app, after, limit, false)
}

// AudienceDevicesQuiet is AudienceDevices with each device's quiet hours
// (those of its account's subscription).
func (d *DB) AudienceDevicesQuiet(ctx context.Context, a Audience, app, after string, limit int) ([]Keyed, error) {
	return d.audiencePage(ctx, a, app, after, limit, true)
}

// AudiencePhones returns up to limit verified phone numbers of accounts in
// the audience whose key sorts after `after`, in key order.
func (d *DB) AudiencePhones(ctx context.Context, a Audience, after string, limit int) ([]Keyed, error) {
	return d.audiencePage(ctx, a, phonesApp, after, limit, false)
}

// AudiencePhonesQuiet is AudiencePhones with each phone's quiet hours
// (those of its account's subscription).
func (d *DB) AudiencePhonesQuiet(ctx context.Context, a Audience, after string, limit int) ([]Keyed, error) {
	return d.audiencePage(ctx, a, phonesApp, after, limit, true)
}

// phonesApp, as the app of audiencePage, asks for phones, not devices.
const phonesApp = "\x00phones"

// quietSelect are the quiet-hours columns of the subscription joined as qs.
const quietSelect = `, qs.quiet_start, qs.quiet_end, COALESCE(qs.quiet_tz, '')`

// An audience other than everyone is read part by part: each area of its
// area tree, its account list, each role and each topic is a part, read
// in account order through an index that leads with the part (for
// example subscription_areas (area_code, account_id), then the account's
// devices through devices (account_id, id)). A page of a small area so
// reads that area's rows and never walks the rest of the devices table,
// and a page's cost does not depend on what else the table holds. An
// account in several parts is listed in the first one only.
//
// A key is partKeyMark, the part's id, then the account and (for a
// device) the device id, separated by partKeySep. Parts are ordered by
// id, so the key order is the order of the pages.
const (
	partKeyMark = "\x1e"
	partKeySep  = "\x1f"
)

// audiencePart is one part of an audience: an area code ('a'), the
// account list ('k'), a role ('r') or a topic ('t').
type audiencePart struct {
	kind  byte
	value string
}

func (p audiencePart) id() string { return string(p.kind) + ":" + p.value }

// audienceParts lists the parts of a, in id order.
func (d *DB) audienceParts(ctx context.Context, a Audience) ([]audiencePart, error) {
	var parts []audiencePart
	if len(a.Areas) > 0 {
		codes, err := d.subtree(ctx, a.Areas)
		if err != nil {
			return nil, err
		}
		for _, c := range codes {
			parts = append(parts, audiencePart{'a', c})
		}
	}
	if len(a.Accounts) > 0 {
		parts = append(parts, audiencePart{'k', ""})
	}
	for _, r := range sortedSet(a.Roles) {
		parts = append(parts, audiencePart{'r', r})
	}
	for _, t := range sortedSet(a.Topics) {
		parts = append(parts, audiencePart{'t', t})
	}
	// In byte order, as keys compare (audiencePage skips the parts before
	// a key's by comparing ids).
	slices.SortFunc(parts, func(x, y audiencePart) int { return strings.Compare(x.id(), y.id()) })
	return parts, nil
}

// areaTreeTTL is how long an audience's area tree is reused: a plan
// reads it once rather than once a page. Areas loaded by this process
// are seen at once; by another (loa admin areas load), within the TTL.
const areaTreeTTL = 30 * time.Second

// areaTreeCache holds area trees by the codes they are of.
type areaTreeCache struct {
	mu sync.Mutex
	m  map[string]areaTree
}

type areaTree struct {
	codes []string
	at    time.Time
}

// reset forgets every tree: areas were loaded.
func (c *areaTreeCache) reset() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}

// subtree is AreaSubtree, cached for areaTreeTTL.
func (d *DB) subtree(ctx context.Context, codes []string) ([]string, error) {
	key := strings.Join(codes, "\x00")
	now := time.Now()
	d.trees.mu.Lock()
	t, ok := d.trees.m[key]
	d.trees.mu.Unlock()
	if ok && now.Sub(t.at) < areaTreeTTL {
		return t.codes, nil
	}
	tree, err := d.AreaSubtree(ctx, codes)
	if err != nil {
		return nil, err
	}
	d.trees.mu.Lock()
	if d.trees.m == nil || len(d.trees.m) >= 1000 {
		d.trees.m = map[string]areaTree{}
	}
	d.trees.m[key] = areaTree{codes: tree, at: now}
	d.trees.mu.Unlock()
	return tree, nil
}

func sortedSet(vals []string) []string {
	out := slices.Clone(vals)
	slices.Sort(out)
	return slices.Compact(out)
}

// partKey encodes a key; parsePartKey decodes one (ok false for a key of
// another form, such as a page of everyone's).
func partKey(part, account, device string) string {
	return partKeyMark + part + partKeySep + account + partKeySep + device
}

func parsePartKey(key string) (part, account, device string, ok bool) {
	rest, ok := strings.CutPrefix(key, partKeyMark)
	if !ok {
		return "", "", "", false
	}
	i := strings.LastIndex(rest, partKeySep)
	if i < 0 {
		return "", "", "", false
	}
	rest, device = rest[:i], rest[i+1:]
	i = strings.LastIndex(rest, partKeySep)
	if i < 0 {
		return "", "", "", false
	}
	return rest[:i], rest[i+1:], device, true
}

// sqlArgs numbers the arguments of a query as they are added.
type sqlArgs struct{ vals []any }

func (s *sqlArgs) add(v any) string {
	s.vals = append(s.vals, v)
	return fmt.Sprintf("$%d", len(s.vals))
}

func (s *sqlArgs) list(vals []string) string {
	ph := make([]string, len(vals))
	for i, v := range vals {
		ph[i] = s.add(v)
	}
	return strings.Join(ph, ", ")
}

func (d *DB) audiencePage(ctx context.Context, a Audience, app, after string, limit int, quiet bool) ([]Keyed, error) {
	if a.Everyone {
		return d.everyonePage(ctx, a, app, after, limit, quiet)
	}
	parts, err := d.audienceParts(ctx, a)
	if err != nil {
		return nil, err
	}
	// A key of another form (a plan begun before audiences were read by
	// part) starts over; the senders' claims keep it from sending twice.
	fromPart, fromAccount, fromDevice, _ := parsePartKey(after)
	var out []Keyed
	for i, p := range parts {
		if len(out) >= limit {
			break
		}
		if p.id() < fromPart {
			continue
		}
		account, device := "", ""
		if p.id() == fromPart {
			account, device = fromAccount, fromDevice
		}
		q, args := d.partQuery(a, parts[:i], p, app, account, device, limit-len(out), quiet)
		page, err := d.keyed(ctx, q, args, limit-len(out), quiet)
		if err != nil {
			return nil, err
		}
		for i := range page {
			acc, dev, _ := strings.Cut(page[i].Key, partKeySep)
			page[i].Key = partKey(p.id(), acc, dev)
		}
		out = append(out, page...)
	}
	return out, nil
}

// partQuery is the query of a page of part p of a: up to limit rows of
// account||sep||device (the key within the part) and address, after
// (account, device), leaving out the accounts of the parts before it.
func (d *DB) partQuery(a Audience, before []audiencePart, p audiencePart, app, account, device string, limit int, quiet bool) (string, []any) {
	var args sqlArgs
	var src string
	switch p.kind {
	case 'a':
		src = `(SELECT account_id FROM subscription_areas WHERE area_code = ` + args.add(p.value) + `)`
	case 'k':
		src = `(SELECT id AS account_id FROM accounts WHERE id IN (` + args.list(a.Accounts) + `))`
	case 'r':
		src = `(SELECT DISTINCT account_id FROM role_grants WHERE role = ` + args.add(p.value) + `)`
	case 't':
		src = `(SELECT account_id FROM subscription_topics WHERE topic = ` + args.add(p.value) + `)`
	}
	acc := args.add(account)
	devices := app != phonesApp
	var cols, from, order string
	conds := []string{`acc.status <> 'closed'`}
	if devices {
		dev := args.add(device)
		cols = `src.account_id || '` + partKeySep + `' || d.id, d.token`
		from = src + ` src JOIN devices d ON d.account_id = src.account_id JOIN accounts acc ON acc.id = src.account_id`
		// The account bound is stated on every table so that whichever
		// join PostgreSQL picks starts each index at the key.
		ap := args.add(app)
		conds = append(conds, `d.active`, `(`+ap+` = '*' OR d.app = `+ap+`)`,
			`src.account_id >= `+acc, `d.account_id >= `+acc, `acc.id >= `+acc,
			`(src.account_id > `+acc+` OR d.id > `+dev+`)`)
		order = `src.account_id, d.id`
	} else {
		cols = `src.account_id || '` + partKeySep + `', acc.phone`
		from = src + ` src JOIN accounts acc ON acc.id = src.account_id`
		conds = append(conds, `acc.phone_verified_at IS NOT NULL`, `src.account_id > `+acc, `acc.id > `+acc)
		order = `src.account_id`
	}
	if quiet {
		cols += quietSelect
		from += ` LEFT JOIN subscriptions qs ON qs.account_id = src.account_id`
	}
	// An account in an earlier part was listed there. The earlier parts
	// are named one by one (the first part of a kind checks nothing of
	// that kind), each check a probe of the account's own rows.
	var earlier [4][]string // areas, the account list, roles, topics
	for _, e := range before {
		k := strings.IndexByte("akrt", e.kind)
		earlier[k] = append(earlier[k], e.value)
	}
	if codes := earlier[0]; len(codes) > 0 {
		conds = append(conds, `NOT EXISTS (SELECT 1 FROM subscription_areas e WHERE e.account_id = src.account_id AND e.area_code IN (`+
			args.list(codes)+`)`+d.fence()+`)`)
	}
	if len(earlier[1]) > 0 {
		conds = append(conds, `src.account_id NOT IN (`+args.list(a.Accounts)+`)`)
	}
	if roles := earlier[2]; len(roles) > 0 {
		conds = append(conds, `NOT EXISTS (SELECT 1 FROM role_grants e WHERE e.account_id = src.account_id AND e.role IN (`+
			args.list(roles)+`)`+d.fence()+`)`)
	}
	if topics := earlier[3]; len(topics) > 0 {
		conds = append(conds, `NOT EXISTS (SELECT 1 FROM subscription_topics e WHERE e.account_id = src.account_id AND e.topic IN (`+
			args.list(topics)+`)`+d.fence()+`)`)
	}
	if a.Unacknowledged != "" {
		conds = append(conds, `NOT EXISTS (SELECT 1 FROM alert_acks k WHERE k.chain = `+args.add(a.Unacknowledged)+` AND k.account_id = src.account_id`+d.fence()+`)`)
	}
	q := `SELECT ` + cols + ` FROM ` + from + `
		WHERE ` + strings.Join(conds, " AND ") + `
		ORDER BY ` + order + ` LIMIT ` + args.add(limit)
	return q, args.vals
}

// fence keeps PostgreSQL from turning a NOT EXISTS into an anti join:
// it stays a probe of the index for each row. As a join, PostgreSQL may
// merge it with a walk of the whole index (0.8 s a page of a 1,000,000-
// device commune in a province, against 40 ms).
func (d *DB) fence() string {
	if d.dialect == Postgres {
		return ` OFFSET 0`
	}
	return ""
}

// everyonePage is a page of everyone's devices (in device id order) or
// phones (in phone order): a walk of the whole table by its key.
func (d *DB) everyonePage(ctx context.Context, a Audience, app, after string, limit int, quiet bool) ([]Keyed, error) {
	if app == phonesApp {
		with, cond, args := a.predicate("acc.id", 3)
		cols, join := "", ""
		if quiet {
			cols, join = quietSelect, ` LEFT JOIN subscriptions qs ON qs.account_id = acc.id`
		}
		// A verified phone belongs to one account (a unique index), so its
		// row is one whatever the join.
		q := with + `SELECT DISTINCT acc.phone, acc.phone` + cols + ` FROM accounts acc` + join + `
		WHERE acc.phone_verified_at IS NOT NULL AND acc.status <> 'closed' AND acc.phone > $1 AND ` + cond + `
		ORDER BY acc.phone LIMIT $2`
		return d.keyed(ctx, q, append([]any{after, limit}, args...), limit, quiet)
	}
	with, cond, args := a.predicate("d.account_id", 4)
	cols, join := "", ""
	if quiet {
		cols, join = quietSelect, ` LEFT JOIN subscriptions qs ON qs.account_id = d.account_id`
	}
	q := with + `SELECT d.id, d.token` + cols + ` FROM devices d JOIN accounts acc ON acc.id = d.account_id` + join + `
		WHERE d.active AND ($1 = '*' OR d.app = $1) AND d.id > $2 AND acc.status <> 'closed' AND ` + cond + `
		ORDER BY d.id LIMIT $3`
	return d.keyed(ctx, q, append([]any{app, after, limit}, args...), limit, quiet)
}

// AccountInAudience reports whether the account, not closed, is in the
// audience (by the same predicate the audience's pages select with).
func (d *DB) AccountInAudience(ctx context.Context, a loa.Audience, accountID string) (bool, error) {
	if loa.Audience(a).Empty() {
		return false, nil
	}
	with, cond, args := Audience(a).predicate("acc.id", 2)
	var in bool
	q := with + `SELECT EXISTS (SELECT 1 FROM accounts acc WHERE acc.id = $1 AND acc.status <> 'closed' AND ` + cond + `)`
	if err := d.db.QueryRowContext(ctx, q, append([]any{accountID}, args...)...).Scan(&in); err != nil {
		return false, fmt.Errorf("sqlstore: account in audience: %w", err)
	}
	return in, nil
}

// CountAudience returns how many active devices of app and verified
// phones the audience holds.
func (d *DB) CountAudience(ctx context.Context, a Audience, app string) (devices, phones int, err error) {
	with, cond, args := a.predicate("d.account_id", 2)
	q := with + `SELECT COUNT(*) FROM devices d JOIN accounts acc ON acc.id = d.account_id
		WHERE d.active AND ($1 = '*' OR d.app = $1) AND acc.status <> 'closed' AND ` + cond
	if err := d.db.QueryRowContext(ctx, q, append([]any{app}, args...)...).Scan(&devices); err != nil {
		return 0, 0, fmt.Errorf("sqlstore: count audience: %w", err)
	}
	with, cond, args = a.predicate("acc.id", 1)
	q = with + `SELECT COUNT(DISTINCT acc.phone) FROM accounts acc
		WHERE acc.phone_verified_at IS NOT NULL AND acc.status <> 'closed' AND ` + cond
	if err := d.db.QueryRowContext(ctx, q, args...).Scan(&phones); err != nil {
		return 0, 0, fmt.Errorf("sqlstore: count audience: %w", err)
	}
	return devices, phones, nil
}

// keyed runs an audience page query. On PostgreSQL it must walk the
// index in key order and stop at the page's end; left to its estimates,
// PostgreSQL sometimes sorts everything after the key instead, up to
// 200 ms a page three quarters through 100,000 devices, against 3 ms. So
// the query is planned for its actual arguments (not a prepared
// statement's generic plan), without sorting where an index gives the
// order, without parallel workers and without JIT compilation: near the
// end of a large area the estimates shrink, the estimated cost passes
// jit_above_cost, and compiling (or starting workers) cost a page 100 ms
// to a second, against 10 ms.
func (d *DB) keyed(ctx context.Context, q string, args []any, limit int, quiet bool) ([]Keyed, error) {
	var db queryer = d.db
	if d.dialect == Postgres {
		tx, err := d.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return nil, fmt.Errorf("sqlstore: audience: %w", err)
		}
		defer tx.Rollback()
		// One round trip for the four settings, for this transaction only.
		if _, err := tx.ExecContext(ctx, `SELECT set_config('plan_cache_mode', 'force_custom_plan', true),
			set_config('enable_sort', 'off', true), set_config('max_parallel_workers_per_gather', '0', true),
			set_config('jit', 'off', true)`); err != nil {
			return nil, fmt.Errorf("sqlstore: audience: %w", err)
		}
		db = tx
	}
	if d.audienceHook != nil {
		d.audienceHook(ctx, db, q, args)
	}
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: audience: %w", err)
	}
	defer rows.Close()
	// A page is a planner's batches (thousands of rows): the row's
	// destinations are scanned into again for each row, and the page is
	// sized for limit, rather than allocating both a row at a time.
	out := make([]Keyed, 0, max(0, min(limit, maxPagePrealloc)))
	var (
		k      Keyed
		qs, qe sql.NullInt64
		tz     string
	)
	dst := []any{&k.Key, &k.Address, &qs, &qe, &tz}
	if !quiet {
		dst = dst[:2]
	}
	for rows.Next() {
		qs, qe = sql.NullInt64{}, sql.NullInt64{}
		if err := rows.Scan(dst...); err != nil {
			return nil, fmt.Errorf("sqlstore: audience: %w", err)
		}
		k.Quiet = nil
		if qs.Valid && qe.Valid {
			q := accounts.QuietHoursFromMinutes(int(qs.Int64), int(qe.Int64), tz)
			k.Quiet = &q
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// PlanProgress is how far the planner got through one channel of a plan.
type PlanProgress struct {
	LastKey   string
	Batches   int
	Targeted  int64
	Done      bool
	Cancelled bool
}

// Plan returns the progress of a plan's channel, creating it when new.
func (d *DB) Plan(ctx context.Context, notificationID, channel string, now time.Time) (PlanProgress, error) {
	if _, err := d.db.ExecContext(ctx, `INSERT INTO plans (notification_id, channel, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (notification_id, channel) DO NOTHING`, notificationID, channel, now.UTC()); err != nil {
		return PlanProgress{}, fmt.Errorf("sqlstore: plan: %w", err)
	}
	var p PlanProgress
	err := d.db.QueryRowContext(ctx, `SELECT last_key, batches, targeted, done, cancelled FROM plans
		WHERE notification_id = $1 AND channel = $2`, notificationID, channel).Scan(&p.LastKey, &p.Batches, &p.Targeted, &p.Done, &p.Cancelled)
	if errors.Is(err, sql.ErrNoRows) {
		return PlanProgress{}, ErrNotFound
	}
	if err != nil {
		return PlanProgress{}, fmt.Errorf("sqlstore: plan: %w", err)
	}
	return p, nil
}

// AdvancePlan records that batches up to lastKey were published.
func (d *DB) AdvancePlan(ctx context.Context, notificationID, channel string, p PlanProgress, now time.Time) error {
	_, err := d.db.ExecContext(ctx, `UPDATE plans SET last_key = $1, batches = $2, targeted = $3, done = $4, updated_at = $5
		WHERE notification_id = $6 AND channel = $7`, p.LastKey, p.Batches, p.Targeted, p.Done, now.UTC(), notificationID, channel)
	if err != nil {
		return fmt.Errorf("sqlstore: advance plan: %w", err)
	}
	return nil
}

// CancelPlan marks every channel of a plan cancelled (creating the rows
// if planning has not started), so the planner stops at its next batch.
func (d *DB) CancelPlan(ctx context.Context, notificationID string, channels []string, now time.Time) error {
	for _, ch := range channels {
		if _, err := d.db.ExecContext(ctx, `INSERT INTO plans (notification_id, channel, cancelled, updated_at) VALUES ($1, $2, TRUE, $3)
			ON CONFLICT (notification_id, channel) DO UPDATE SET cancelled = TRUE, updated_at = excluded.updated_at`,
			notificationID, ch, now.UTC()); err != nil {
			return fmt.Errorf("sqlstore: cancel plan: %w", err)
		}
	}
	return nil
}

// PlanTargeted returns how many addresses were planned for a notification,
// per channel.
func (d *DB) PlanTargeted(ctx context.Context, notificationID string) (map[string]int64, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT channel, targeted FROM plans WHERE notification_id = $1`, notificationID)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: plan targeted: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var (
			ch string
			n  int64
		)
		if err := rows.Scan(&ch, &n); err != nil {
			return nil, fmt.Errorf("sqlstore: plan targeted: %w", err)
		}
		out[ch] = n
	}
	return out, rows.Err()
}

// DeliveryStat is producer's: a count of deliveries in one status.
type DeliveryStat = producer.DeliveryStat

// DeliveryStats returns the delivery counts of a notification by channel,
// provider and status: the live counters of a broadcast or an alert. The
// rows are read from the counters the ledger keeps (countRows), so a
// call costs a few index reads however many rows the notification has.
func (d *DB) DeliveryStats(ctx context.Context, notificationID string) ([]DeliveryStat, error) {
	c := newLedgerCount(0)
	rowChannels, err := d.countRows(ctx, notificationID, c, false)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: delivery stats: %w", err)
	}
	if d.dialect == Postgres {
		if err := d.countSent(ctx, notificationID, c, false, rowChannels); err != nil {
			return nil, fmt.Errorf("sqlstore: delivery stats: %w", err)
		}
	}
	return c.stats(), nil
}

// countRows adds a notification's deliveries rows to c by channel,
// provider and status and, when rate is set, their final outcomes by
// second from c.since on. It reads the counters that the ledger's
// triggers keep in the statements that write the rows (migration 0149:
// delivery_counts, delivery_seconds), not the rows: a few rows a status
// (one per writing connection) and one a second of the rate, where
// grouping the rows cost 1.0-1.1 s of PostgreSQL at 1,000,000. It
// returns the channels that have rows.
//
// Only notifications with a plan have counters (migration 0150: a
// one-time code's would cost more to keep than its one row to count);
// the rows of the others are grouped.
func (d *DB) countRows(ctx context.Context, id string, c *ledgerCount, rate bool) (map[string]bool, error) {
	var planned bool
	if err := d.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM plans WHERE notification_id = $1)`, id).Scan(&planned); err != nil {
		return nil, err
	}
	if !planned {
		return d.groupRows(ctx, id, c)
	}
	rows, err := d.db.QueryContext(ctx, `SELECT channel, provider, status, CAST(SUM(n) AS BIGINT) FROM delivery_counts
		WHERE notification_id = $1 GROUP BY channel, provider, status ORDER BY channel, provider, status`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	rowChannels := map[string]bool{}
	for rows.Next() {
		var (
			k statKey
			n int64
		)
		if err := rows.Scan(&k.channel, &k.provider, &k.status, &n); err != nil {
			return nil, err
		}
		if n != 0 {
			c.add(k, 0, n)
			rowChannels[k.channel] = true
		}
	}
	if err := rows.Err(); err != nil || !rate {
		return rowChannels, err
	}
	rows.Close()
	rows, err = d.db.QueryContext(ctx, `SELECT second, status, CAST(SUM(n) AS BIGINT) FROM delivery_seconds
		WHERE notification_id = $1 AND second >= $2 GROUP BY second, status`, id, c.since)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			s, n int64
			st   loa.Status
		)
		if err := rows.Scan(&s, &st, &n); err != nil {
			return nil, err
		}
		if s > 0 && s >= c.since && st.Final() {
			c.perSecond[s] += n
		}
	}
	return rowChannels, rows.Err()
}

// groupRows adds a notification's deliveries rows to c by grouping
// them: countRows for a notification without counters.
func (d *DB) groupRows(ctx context.Context, id string, c *ledgerCount) (map[string]bool, error) {
	second := `CAST(strftime('%s', substr(updated_at, 1, 19)) AS INTEGER)`
	if d.dialect == Postgres {
		second = `CAST(floor(extract(epoch FROM updated_at)) AS BIGINT)`
	}
	rows, err := d.db.QueryContext(ctx, `SELECT channel, provider, status, CASE WHEN `+second+` >= $2 THEN `+second+` ELSE 0 END AS s, COUNT(*)
		FROM deliveries WHERE notification_id = $1 GROUP BY channel, provider, status, s ORDER BY channel, provider, status`, id, c.since)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	rowChannels := map[string]bool{}
	for rows.Next() {
		var (
			k    statKey
			s, n int64
		)
		if err := rows.Scan(&k.channel, &k.provider, &k.status, &s, &n); err != nil {
			return nil, err
		}
		c.add(k, s, n)
		rowChannels[k.channel] = true
	}
	return rowChannels, rows.Err()
}

// PlanCancelled reports whether a notification's plan was cancelled.
func (d *DB) PlanCancelled(ctx context.Context, notificationID string) (bool, error) {
	var n int
	err := d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM plans WHERE notification_id = $1 AND cancelled`, notificationID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("sqlstore: plan cancelled: %w", err)
	}
	return n > 0, nil
}

// DeliveriesTo returns the ledger rows of one notification for the given
// recipient addresses (a phone and the device tokens of its accounts, for
// support).
func (d *DB) DeliveriesTo(ctx context.Context, notificationID string, recipients []string) ([]producer.Delivery, error) {
	if len(recipients) == 0 {
		return nil, nil
	}
	if d.dialect == Postgres {
		// A broadcast's pushes are compact entries: the entries holding
		// one of the addresses (&&, a scan of each entry's array) are
		// the only ones unnested. On a 1,000,000-push broadcast, 0.1 s
		// instead of 1.3 s with every entry unnested.
		out, err := d.queryLedger(ctx, `notification_id = $1 AND recipient = ANY($2::text[])`,
			`c.notification_id = $1 AND c.recipients && $2::text[] AND u.recipient = ANY($2::text[])`, notificationID, recipients)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: deliveries to: %w", err)
		}
		return out, nil
	}
	ph := make([]string, len(recipients))
	args := []any{notificationID}
	for i, r := range recipients {
		ph[i] = fmt.Sprintf("$%d", i+2)
		args = append(args, r)
	}
	out, err := d.queryDeliveries(ctx, selectDelivery+`
		WHERE notification_id = $1 AND recipient IN (`+strings.Join(ph, ", ")+`) ORDER BY channel, recipient`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: deliveries to: %w", err)
	}
	return out, nil
}

// TokensOfPhone returns the device tokens of the accounts with a phone.
func (d *DB) TokensOfPhone(ctx context.Context, phone string) ([]string, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT d.token FROM devices d JOIN accounts a ON a.id = d.account_id WHERE a.phone = $1`, phone)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: tokens of phone: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, fmt.Errorf("sqlstore: tokens of phone: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// AreaSubtree returns the codes of the areas and of every unit below
// them, in code order: the FCM topics ("area-<code>") that reach an area's
// subscribers whatever unit of it they chose.
func (d *DB) AreaSubtree(ctx context.Context, codes []string) ([]string, error) {
	if len(codes) == 0 {
		return nil, nil
	}
	ph := make([]string, len(codes))
	args := make([]any, len(codes))
	for i, c := range codes {
		ph[i], args[i] = fmt.Sprintf("$%d", i+1), c
	}
	rows, err := d.db.QueryContext(ctx, `WITH RECURSIVE area_tree(code) AS (
		SELECT code FROM areas WHERE code IN (`+strings.Join(ph, ", ")+`)
		UNION SELECT areas.code FROM areas JOIN area_tree ON areas.parent = area_tree.code)
		SELECT code FROM area_tree ORDER BY code`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: area subtree: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("sqlstore: area subtree: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// maxPagePrealloc bounds the rows keyed makes room for ahead: a page is
// at most a planner's group of batches, but a caller may ask for more.
const maxPagePrealloc = 8192
