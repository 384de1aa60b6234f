package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"slices"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/producer"
)

// The bounds of one compact entry: a receipt batch's sends are cut into
// entries of at most sentEntryMax deliveries and about sentEntryBytes of
// addresses and message ids (a fan-out batch of 500 pushes is one entry
// of about 110 KB), so a batch of absurd size makes more rows, never one
// beyond what PostgreSQL takes or what a reader holds at once.
const (
	sentEntryMax   = 1000
	sentEntryBytes = 256 << 10
)

// sentEntry is one deliveries_sent row: deliveries of one notification in
// status sent at their first attempt, with what they share once and
// each one's address, provider message id and time.
type sentEntry struct {
	notificationID, channel string
	provider, class, reason string
	targets                 int
	digest                  []byte
	firstAt, lastAt         time.Time
	recipients, providerIDs []string
	ats                     []time.Time
	hashes                  []byte // addressHash of each recipient, 4 bytes each
	size                    int    // bytes of recipients and provider ids
}

// insertSentSQL writes one compact entry; an entry already there (the
// same receipts folded again) is left as it is.
const insertSentSQL = `INSERT INTO deliveries_sent (notification_id, channel, digest, provider, class, reason, targets, n,
		first_at, last_at, recipients, provider_ids, ats, recipient_hashes)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::text[], $12::text[], $13::timestamptz[], $14)
	ON CONFLICT (notification_id, channel, digest) DO NOTHING`

// compactable reports whether an outcome goes in a compact entry: a push
// a provider accepted at its first attempt. Only push: SMS and email rows
// are found by their provider ids when a delivery report comes, through
// the deliveries_report_id index.
func compactable(r *producer.Delivery) bool {
	return r.Channel == string(channels.Push) && r.Status == loa.StatusSent && r.Attempts <= 1 && r.Provider != ""
}

// compactSent takes the compactable outcomes of each receipt batch out
// into compact entries, in the batch's order, and returns the others in
// theirs. An address is in one entry of a batch at most (the first
// outcome for it); what a batch's entries hold depends on the batch
// alone, so folding it again makes the same entries.
func compactSent(batches [][]producer.Delivery) ([]sentEntry, []producer.Delivery) {
	var (
		entries []sentEntry
		rest    []producer.Delivery
	)
	type group struct {
		notificationID, channel, provider, class, reason string
		targets                                          int
	}
	type addr struct{ notificationID, channel, recipient string }
	for _, b := range batches {
		n := 0
		for i := range b {
			if compactable(&b[i]) {
				n++
			}
		}
		if n == 0 {
			rest = append(rest, b...)
			continue
		}
		open := map[group]int{} // the group's entry being filled
		seen := make(map[addr]struct{}, n)
		start := len(entries)
		for i := range b {
			r := &b[i]
			if !compactable(r) {
				rest = append(rest, *r)
				continue
			}
			a := addr{r.NotificationID, r.Channel, r.Recipient}
			if _, dup := seen[a]; dup {
				continue // the first outcome for it stands, as the upsert keeps a sent row
			}
			seen[a] = struct{}{}
			g := group{r.NotificationID, r.Channel, r.Provider, r.Class, r.Reason, r.Targets}
			j, ok := open[g]
			if !ok || len(entries[j].recipients) >= sentEntryMax || entries[j].size >= sentEntryBytes {
				j = len(entries)
				open[g] = j
				entries = append(entries, sentEntry{notificationID: g.notificationID, channel: g.channel, provider: g.provider,
					class: g.class, reason: g.reason, targets: g.targets})
			}
			e := &entries[j]
			at := r.UpdatedAt.UTC().Truncate(time.Microsecond) // PostgreSQL's precision: the digest sees what is stored
			e.recipients = append(e.recipients, r.Recipient)
			e.hashes = binary.BigEndian.AppendUint32(e.hashes, addressHash(r.Recipient))
			e.providerIDs = append(e.providerIDs, r.ProviderID)
			e.ats = append(e.ats, at)
			e.size += len(r.Recipient) + len(r.ProviderID)
			if e.firstAt.IsZero() || at.Before(e.firstAt) {
				e.firstAt = at
			}
			if at.After(e.lastAt) {
				e.lastAt = at
			}
		}
		for j := start; j < len(entries); j++ {
			entries[j].digest = entries[j].sum()
		}
	}
	return entries, rest
}

// addressHash is the 32-bit FNV-1a hash of an address: what an entry's
// recipient_hashes holds for each of its recipients. It must never
// change: the hashes are stored.
func addressHash(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// sum is the entry's digest: a hash of everything it holds, each string
// with its length, so that no two different entries share it.
func (e *sentEntry) sum() []byte {
	h := sha256.New()
	var buf [8]byte
	str := func(s string) {
		binary.BigEndian.PutUint64(buf[:], uint64(len(s)))
		h.Write(buf[:])
		h.Write([]byte(s))
	}
	num := func(v int64) {
		binary.BigEndian.PutUint64(buf[:], uint64(v))
		h.Write(buf[:])
	}
	str(e.notificationID)
	str(e.channel)
	str(e.provider)
	str(e.class)
	str(e.reason)
	num(int64(e.targets))
	num(int64(len(e.recipients)))
	for i := range e.recipients {
		str(e.recipients[i])
		str(e.providerIDs[i])
		num(e.ats[i].UnixMicro())
	}
	return h.Sum(nil)[:16]
}

// overrides reports whether a delivery's row wins over its compact entry
// when the ledger has both. The readers take the compact entry as the
// earlier outcome and apply the row after it with RecordDelivery's
// precedence: a sent delivery changes only to a higher rank, so a row
// wins only when it is a carrier's report (delivered, undelivered); a
// redelivery's receipt, a retry's or a failure's outcome leaves the sent
// entry as it is, as the upsert leaves a sent row.
func overrides(row loa.Status) bool { return row.Rank() > loa.StatusSent.Rank() }

// mergeSent is the row a delivery's compact entry and its row make:
// the row when it overrides (keeping the entry's provider and message id
// when it has none, and the higher attempt), else the entry.
func mergeSent(entry, row producer.Delivery) producer.Delivery {
	if !overrides(row.Status) {
		return entry
	}
	if row.Provider == "" {
		row.Provider, row.ProviderID = entry.Provider, entry.ProviderID
	}
	row.Attempts = max(row.Attempts, entry.Attempts)
	return row
}

// sentRowsSQL selects a notification's compact entries as ledger rows,
// with selectDelivery's columns and src 0 (a deliveries row is src 1).
const sentRowsSQL = `SELECT 0 AS src, c.notification_id, c.channel, u.recipient, 'sent' AS status, c.class, c.provider,
		u.provider_id, c.reason, c.targets, 1 AS attempts, u.at AS updated_at
	FROM deliveries_sent c CROSS JOIN LATERAL unnest(c.recipients, c.provider_ids, c.ats) AS u(recipient, provider_id, at)`

// queryLedger reads ledger rows on PostgreSQL: the deliveries rows that
// rowWhere selects and the compact entries' deliveries that sentWhere
// selects (over c, the entry, and u, the delivery: recipient,
// provider_id, at), merged by address, ordered by channel and recipient.
func (d *DB) queryLedger(ctx context.Context, rowWhere, sentWhere string, args ...any) ([]producer.Delivery, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT src, notification_id, channel, recipient, status, class, provider, provider_id,
			reason, targets, attempts, updated_at FROM (
		SELECT 1 AS src, notification_id, channel, recipient, status, class, provider, provider_id, reason, targets, attempts, updated_at
			FROM deliveries WHERE `+rowWhere+`
		UNION ALL `+sentRowsSQL+` WHERE `+sentWhere+`) x
		ORDER BY channel, recipient, notification_id, src`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var (
		out     []producer.Delivery
		lastSrc int
	)
	for rows.Next() {
		var (
			r   producer.Delivery
			src int
		)
		if err := rows.Scan(&src, &r.NotificationID, &r.Channel, &r.Recipient, &r.Status, &r.Class, &r.Provider,
			&r.ProviderID, &r.Reason, &r.Targets, &r.Attempts, &r.UpdatedAt); err != nil {
			return nil, err
		}
		r.UpdatedAt = r.UpdatedAt.UTC()
		if n := len(out); n > 0 && out[n-1].NotificationID == r.NotificationID && out[n-1].Channel == r.Channel &&
			out[n-1].Recipient == r.Recipient {
			// The compact entry comes first (src 0); a second entry
			// for the same address adds nothing.
			if lastSrc == 0 && src == 1 {
				out[n-1] = mergeSent(out[n-1], r)
			}
			lastSrc = src
			continue
		}
		out, lastSrc = append(out, r), src
	}
	return out, rows.Err()
}

// ledgerCount adds up a notification's deliveries by channel, provider
// and status and, when asked, by the second of their present state.
type ledgerCount struct {
	since     int64 // the rate's first second; seconds before it count as 0
	counts    map[statKey]int64
	order     []statKey
	perSecond map[int64]int64
}

type statKey struct {
	channel, provider string
	status            loa.Status
}

func newLedgerCount(since int64) *ledgerCount {
	return &ledgerCount{since: since, counts: map[statKey]int64{}, perSecond: map[int64]int64{}}
}

// add counts n deliveries (n < 0 takes them back) in second s (0: before
// the rate's first second, or no rate).
func (c *ledgerCount) add(k statKey, s, n int64) {
	if _, seen := c.counts[k]; !seen {
		c.order = append(c.order, k)
	}
	c.counts[k] += n
	if s > 0 && s >= c.since && k.status.Final() {
		c.perSecond[s] += n
	}
}

func (c *ledgerCount) stats() []DeliveryStat {
	out := make([]DeliveryStat, 0, len(c.order))
	for _, k := range c.order {
		if n := c.counts[k]; n != 0 {
			out = append(out, DeliveryStat{Channel: k.channel, Provider: k.provider, Status: k.status, Count: n})
		}
	}
	return out
}

// countSent adds a notification's compact entries to c on PostgreSQL:
// their deliveries by channel and provider, by second when rate is set
// (only the entries with a delivery from c.since on are read, and only
// those whose deliveries span more than one second are opened), and
// takes back, for each address that also has a deliveries row
// (rowChannels: the channels with rows), the one of the two that
// mergeSent leaves out.
func (d *DB) countSent(ctx context.Context, id string, c *ledgerCount, rate bool, rowChannels map[string]bool) error {
	rows, err := d.db.QueryContext(ctx, `SELECT channel, provider, SUM(n) FROM deliveries_sent WHERE notification_id = $1
		GROUP BY channel, provider`, id)
	if err != nil {
		return err
	}
	var sentChannels []string
	for rows.Next() {
		var (
			k statKey
			n int64
		)
		if err := rows.Scan(&k.channel, &k.provider, &n); err != nil {
			rows.Close()
			return err
		}
		k.status = loa.StatusSent
		c.add(k, 0, n)
		sentChannels = append(sentChannels, k.channel)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(sentChannels) == 0 {
		return err
	}
	if rate {
		if err := d.sentPerSecond(ctx, id, c); err != nil {
			return err
		}
	}
	var both []string
	for _, ch := range sentChannels {
		if rowChannels[ch] && !slices.Contains(both, ch) {
			both = append(both, ch)
		}
	}
	if len(both) == 0 {
		return nil
	}
	digests, err := d.entriesWithRows(ctx, id, both)
	if d.openHook != nil {
		d.openHook(len(digests))
	}
	if err != nil || len(digests) == 0 {
		return err
	}
	// An address with both: the merged delivery counts once.
	return d.sentJoin(ctx, sentJoinSQL, []any{id, digests}, func(rows *sql.Rows) error {
		return addSentJoin(rows, c, rate)
	})
}

// sentJoin runs query (sentJoinSQL, or a test's EXPLAIN of it) with the
// planner held to a hash join between the rows and the entries'
// addresses. The rows are written lately, so the planner's statistics may
// still say a notification has none, and with a broadcast's redelivered
// receipts (one planned again after a rebalance: 74,000 rows beside
// 100,000 sends) it chose a nested loop that unnested every entry again
// for each row — more than 30 s a call, and a core of PostgreSQL busy for
// a minute while the console or loa-bench asked for the counts. The
// entries' addresses are read once (a materialised CTE) and hashed; JIT
// is off, since the nested loop's disabling cost would make every call
// look worth compiling.
func (d *DB) sentJoin(ctx context.Context, query string, args []any, read func(*sql.Rows) error) error {
	tx, err := d.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SET LOCAL enable_nestloop = off`); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `SET LOCAL jit = off`); err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if err := read(rows); err != nil {
		return err
	}
	return rows.Err()
}

// addSentJoin takes back from c, for each address with both a row and an
// entry, the one of the two that mergeSent leaves out.
func addSentJoin(rows *sql.Rows, c *ledgerCount, rate bool) error {
	for rows.Next() {
		var (
			row, entry             statKey
			rowSecond, entrySecond int64
		)
		if err := rows.Scan(&row.channel, &row.status, &row.provider, &rowSecond, &entry.provider, &entrySecond); err != nil {
			return err
		}
		entry.channel, entry.status = row.channel, loa.StatusSent
		if !rate {
			rowSecond, entrySecond = 0, 0
		}
		if overrides(row.status) {
			c.add(entry, entrySecond, -1)
			if row.provider == "" { // the merged delivery keeps the entry's provider
				c.add(row, rowSecond, -1)
				c.add(statKey{row.channel, entry.provider, row.status}, rowSecond, 1)
			}
		} else {
			c.add(row, rowSecond, -1)
		}
	}
	return rows.Err()
}

// sentJoinSQL pairs a notification's deliveries rows with the addresses
// of the compact entries of digests that hold the same address.
const sentJoinSQL = `WITH x AS MATERIALIZED (SELECT c.channel, c.provider, u.recipient, CAST(floor(extract(epoch FROM u.at)) AS BIGINT) AS s
		FROM deliveries_sent c CROSS JOIN LATERAL unnest(c.recipients, c.ats) AS u(recipient, at)
		WHERE c.notification_id = $1 AND c.digest = ANY($2::bytea[]))
	SELECT d.channel, d.status, d.provider, CAST(floor(extract(epoch FROM d.updated_at)) AS BIGINT), x.provider, x.s
	FROM deliveries d JOIN x ON x.channel = d.channel AND x.recipient = d.recipient
	WHERE d.notification_id = $1`

// sentPerSecond adds to c's seconds the deliveries of a notification's
// compact entries with a delivery from c.since on. An entry whose first
// and last delivery fall in one second (nearly all: an entry is one
// receipt message, sent within milliseconds) counts its n in that
// second without being opened; only the others are unnested.
func (d *DB) sentPerSecond(ctx context.Context, id string, c *ledgerCount) error {
	const (
		first  = `CAST(floor(extract(epoch FROM c.first_at)) AS BIGINT)`
		last   = `CAST(floor(extract(epoch FROM c.last_at)) AS BIGINT)`
		second = `CAST(floor(extract(epoch FROM u.at)) AS BIGINT)`
	)
	rows, err := d.db.QueryContext(ctx, `SELECT `+first+` AS s, SUM(c.n) FROM deliveries_sent c
			WHERE c.notification_id = $1 AND c.last_at >= to_timestamp($2) AND `+first+` = `+last+` GROUP BY 1
		UNION ALL
		SELECT `+second+` AS s, COUNT(*) FROM deliveries_sent c CROSS JOIN LATERAL unnest(c.ats) AS u(at)
			WHERE c.notification_id = $1 AND c.last_at >= to_timestamp($2) AND `+first+` <> `+last+` GROUP BY 1`, id, c.since)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var s, n int64
		if err := rows.Scan(&s, &n); err != nil {
			return err
		}
		if s >= c.since && s > 0 {
			c.perSecond[s] += n
		}
	}
	return rows.Err()
}

// entriesWithRows returns the digests of a notification's compact
// entries in channels that may hold an address that also has a
// deliveries row: those whose recipient_hashes hold the hash of one of
// the rows' addresses, and those written without hashes. The rows are
// few (failures, redeliveries' receipts) and the entries many, so this
// reads 4 bytes an address of the entries instead of unnesting them; a
// hash that matches by chance only opens an entry for nothing.
func (d *DB) entriesWithRows(ctx context.Context, id string, channels []string) ([][]byte, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT channel, recipient FROM deliveries WHERE notification_id = $1 AND channel = ANY($2::text[])`,
		id, channels)
	if err != nil {
		return nil, err
	}
	hashes := map[string]map[uint32]struct{}{} // by channel
	for rows.Next() {
		var ch, r string
		if err := rows.Scan(&ch, &r); err != nil {
			rows.Close()
			return nil, err
		}
		if hashes[ch] == nil {
			hashes[ch] = map[uint32]struct{}{}
		}
		hashes[ch][addressHash(r)] = struct{}{}
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(hashes) == 0 {
		return nil, err
	}
	rows, err = d.db.QueryContext(ctx, `SELECT channel, digest, recipient_hashes FROM deliveries_sent
		WHERE notification_id = $1 AND channel = ANY($2::text[])`, id, channels)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var (
		out         [][]byte
		ch          string
		digest, row []byte
	)
	for rows.Next() {
		if err := rows.Scan(&ch, &digest, &row); err != nil {
			return nil, err
		}
		of := hashes[ch]
		hit := row == nil && len(of) > 0
		for i := 0; !hit && len(of) > 0 && i+4 <= len(row); i += 4 {
			_, hit = of[binary.BigEndian.Uint32(row[i:])]
		}
		if hit {
			out = append(out, slices.Clone(digest))
		}
	}
	return out, rows.Err()
}
