package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/loa-hub/loa/internal/topics"
)

// workCounts is what the services were asked to do, read from their own
// counters: messages on each of the run's Kafka topics (end offsets),
// PostgreSQL's commits and row changes (pg_stat_database for the
// database, pg_stat_user_tables for the run's schema) and Redis's
// commands (INFO commandstats). Taken at approval and when the ledger is
// complete, the difference divided by the pushes is the work a push
// costs each service.
type workCounts struct {
	kafka   map[string]int64 // messages by topic
	commits int64
	tables  map[string]tableCounts
	redis   map[string]redisCmd
}

type tableCounts struct{ ins, upd, del, scans int64 }

type redisCmd struct{ calls, usec int64 }

// pgStatsDelay is how long PostgreSQL may keep a backend's counts before
// they show in its statistics views: a backend that goes idle reports
// what it has within 10 s (PGSTAT_IDLE_INTERVAL), a busy one every second.
const pgStatsDelay = 11 * time.Second

func (b *bench) workCounts(ctx context.Context) (*workCounts, error) {
	w := &workCounts{kafka: map[string]int64{}, tables: map[string]tableCounts{}, redis: map[string]redisCmd{}}
	client := &kafka.Client{Addr: kafka.TCP(strings.Split(b.cfg.brokers, ",")...), Timeout: 10 * time.Second}
	names := topics.Names{Prefix: b.prefix}
	var all []string
	for _, s := range topics.Specs() {
		all = append(all, names.Topic(s.Name))
	}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: all})
	if err != nil {
		return nil, fmt.Errorf("kafka metadata: %w", err)
	}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, t := range md.Topics {
		if t.Error != nil {
			continue
		}
		for _, p := range t.Partitions {
			req.Topics[t.Name] = append(req.Topics[t.Name], kafka.LastOffsetOf(p.ID))
		}
	}
	offs, err := client.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("kafka offsets: %w", err)
	}
	for t, ps := range offs.Topics {
		for _, p := range ps {
			w.kafka[strings.TrimPrefix(t, b.prefix)] += p.LastOffset
		}
	}

	conn, err := pgx.Connect(ctx, b.cfg.databaseURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").Scan(&w.commits); err != nil {
		return nil, fmt.Errorf("pg_stat_database: %w", err)
	}
	rows, err := conn.Query(ctx, "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del, seq_scan + COALESCE(idx_scan, 0) FROM pg_stat_user_tables WHERE schemaname = $1", b.schema)
	if err != nil {
		return nil, fmt.Errorf("pg_stat_user_tables: %w", err)
	}
	for rows.Next() {
		var name string
		var c tableCounts
		if err := rows.Scan(&name, &c.ins, &c.upd, &c.del, &c.scans); err != nil {
			return nil, err
		}
		w.tables[name] = c
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}

	opt, err := redis.ParseURL(b.cfg.redisURL)
	if err != nil {
		return nil, err
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, fmt.Errorf("redis info: %w", err)
	}
	w.redis = parseCommandStats(info)
	return w, nil
}

// parseCommandStats reads INFO commandstats' lines:
// cmdstat_get:calls=1,usec=2,usec_per_call=2.00,...
func parseCommandStats(info string) map[string]redisCmd {
	out := map[string]redisCmd{}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		name, fields, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		var c redisCmd
		for _, f := range strings.Split(fields, ",") {
			k, v, _ := strings.Cut(f, "=")
			n, _ := strconv.ParseInt(v, 10, 64)
			switch k {
			case "calls":
				c.calls = n
			case "usec":
				c.usec = n
			}
		}
		out[strings.TrimPrefix(name, "cmdstat_")] = c
	}
	return out
}

// printWork prints what changed between w0 and w1, per unit (a push, or
// with -stop-after-codes a code) of n.
func printWork(w io.Writer, w0, w1 *workCounts, n float64, unit string) {
	until := "ledger complete"
	if unit != "push" {
		until = "the codes collected"
	}
	fmt.Fprintf(w, "\nwork a %s asked of the services (approval → %s; PostgreSQL's counts read %v later):\n", unit, until, pgStatsDelay)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "service\twhat\tcount\tper %s\t\n", unit)
	var kt []string
	for t := range w1.kafka {
		if w1.kafka[t] != w0.kafka[t] {
			kt = append(kt, t)
		}
	}
	sort.Strings(kt)
	var kall int64
	for _, t := range kt {
		d := w1.kafka[t] - w0.kafka[t]
		kall += d
		fmt.Fprintf(tw, "kafka\tmessages on %s\t%d\t%.4f\t\n", t, d, float64(d)/n)
	}
	fmt.Fprintf(tw, "kafka\tmessages, all topics\t%d\t%.4f\t\n", kall, float64(kall)/n)
	dc := w1.commits - w0.commits
	fmt.Fprintf(tw, "postgresql\tcommits (the whole database)\t%d\t%.4f\t\n", dc, float64(dc)/n)
	var pt []string
	for t := range w1.tables {
		if w1.tables[t] != w0.tables[t] {
			pt = append(pt, t)
		}
	}
	sort.Strings(pt)
	for _, t := range pt {
		a, z := w0.tables[t], w1.tables[t]
		for _, c := range []struct {
			what string
			d    int64
		}{{"rows inserted", z.ins - a.ins}, {"rows updated", z.upd - a.upd}, {"rows deleted", z.del - a.del}, {"scans (sequential and index: look-ups, updates' and deletes' searches)", z.scans - a.scans}} {
			if c.d != 0 {
				fmt.Fprintf(tw, "postgresql\t%s %s\t%d\t%.4f\t\n", t, c.what, c.d, float64(c.d)/n)
			}
		}
	}
	type rc struct {
		name string
		redisCmd
	}
	var cmds []rc
	var calls, usec int64
	for name, z := range w1.redis {
		a := w0.redis[name]
		d := rc{name, redisCmd{z.calls - a.calls, z.usec - a.usec}}
		if d.calls > 0 && name != "info" {
			cmds = append(cmds, d)
			calls += d.calls
			usec += d.usec
		}
	}
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].usec > cmds[j].usec })
	for _, c := range cmds {
		fmt.Fprintf(tw, "redis\t%s (%.1f µs a %s inside Redis)\t%d\t%.4f\t\n", c.name, float64(c.usec)/n, unit, c.calls, float64(c.calls)/n)
	}
	fmt.Fprintf(tw, "redis\tcommands, all (%.1f µs a %s; a script's own commands count too)\t%d\t%.4f\t\n", float64(usec)/n, unit, calls, float64(calls)/n)
	tw.Flush()
}
