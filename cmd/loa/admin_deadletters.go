package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/loa-hub/loa/dispatcher"
	"github.com/loa-hub/loa/internal/kafkaadmin"
	"github.com/loa-hub/loa/internal/phone"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/kafkapub"
)

const deadLettersUsage = `usage:
  loa admin deadletters list [--limit N]        newest first (default 20, at most 500)
  loa admin deadletters replay [--by NAME] ID   send one back to its lane, once

list reads LOA_DATABASE_URL (default: dev mode's SQLite in LOA_DATA_DIR);
replay also publishes to LOA_KAFKA_BROKERS, which it requires`

// runAdminDeadLetters lists dead letters or replays one, from the shell.
func runAdminDeadLetters(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(deadLettersUsage)
	}
	switch args[0] {
	case "list":
		fs := flag.NewFlagSet("deadletters list", flag.ContinueOnError)
		fs.SetOutput(stdout)
		limit := fs.Int("limit", 20, "how many, newest first (1 to 500)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *limit < 1 || *limit > 500 || fs.NArg() > 0 {
			return errors.New(deadLettersUsage)
		}
		db, err := openAdminStore(ctx, cfg)
		if err != nil {
			return err
		}
		defer db.Close()
		rows, err := db.DeadLetters(ctx, time.Time{}, "", *limit)
		if err != nil {
			return err
		}
		printDeadLetters(stdout, rows)
		return nil
	case "replay":
		fs := flag.NewFlagSet("deadletters replay", flag.ContinueOnError)
		fs.SetOutput(stdout)
		by := fs.String("by", "loa admin", "who replays it, recorded with the dead letter")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 || strings.TrimSpace(*by) == "" {
			return errors.New(deadLettersUsage)
		}
		return replayDeadLetter(ctx, cfg, fs.Arg(0), *by, stdout)
	}
	return errors.New(deadLettersUsage)
}

// openAdminStore opens and migrates the store admin commands work on:
// LOA_DATABASE_URL, or dev mode's SQLite file.
func openAdminStore(ctx context.Context, cfg config) (*sqlstore.DB, error) {
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = "sqlite:" + filepath.Join(cfg.DataDir, "loa.db")
	}
	db, err := sqlstore.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func printDeadLetters(w io.Writer, rows []producer.DeadLetterRecord) {
	if len(rows) == 0 {
		fmt.Fprintln(w, "No dead letters.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tID\tCHANNEL\tRECIPIENT\tPROVIDER\tATTEMPTS\tSTATE\tREASON")
	for _, r := range rows {
		state := "replayable"
		switch {
		case !r.ReplayedAt.IsZero():
			state = "replayed " + r.ReplayedAt.UTC().Format(time.RFC3339) + " by " + r.ReplayedBy
		case r.Envelope == "":
			state = "not replayable"
		}
		to := r.Recipient
		if _, err := phone.Normalize(to); err == nil {
			to = phone.Mask(to)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.At.UTC().Format(time.RFC3339), r.ID, dash(r.Channel), dash(to),
			dash(r.Provider), r.Attempts, state, truncateText(r.Reason, 80))
	}
	tw.Flush()
	fmt.Fprintf(w, "%d dead letter(s), newest first. Replay one with: loa admin deadletters replay ID\n", len(rows))
}

func replayDeadLetter(ctx context.Context, cfg config, id, by string, stdout io.Writer) error {
	if len(cfg.KafkaBrokers) == 0 {
		return errors.New("deadletters replay publishes to Kafka: set LOA_KAFKA_BROKERS " +
			"(loa dev's in-process broker cannot be reached from another process; use POST /v1/ops/deadletters/{id}/replay there)")
	}
	db, err := openAdminStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := kafkaadmin.Ping(pctx, cfg.KafkaBrokers); err != nil {
		return err
	}
	pub, err := kafkapub.NewPublisher(kafkapub.Config{Brokers: cfg.KafkaBrokers, Names: topics.Names{Prefix: cfg.TopicPrefix}})
	if err != nil {
		return err
	}
	defer pub.Close()
	env, err := dispatcher.NewDeadLetters(db, pub).Replay(ctx, id, by)
	switch {
	case errors.Is(err, sqlstore.ErrNotFound):
		return fmt.Errorf("no dead letter has the id %q (loa admin deadletters list shows them)", id)
	case errors.Is(err, dispatcher.ErrAlreadyReplayed):
		if row, lerr := db.DeadLetter(ctx, id); lerr == nil {
			return fmt.Errorf("dead letter %s was already replayed at %s by %s; a dead letter is replayed once",
				id, row.ReplayedAt.UTC().Format(time.RFC3339), row.ReplayedBy)
		}
		return fmt.Errorf("dead letter %s was already replayed; a dead letter is replayed once", id)
	case errors.Is(err, dispatcher.ErrNotReplayable):
		return fmt.Errorf("dead letter %s cannot be replayed: its bytes were never an event", id)
	case err != nil:
		return err
	}
	if err := cliAudit(ctx, db, by, "deadletters replay", "deadletter.replay", id,
		map[string]string{"event_id": env.ID, "lane": string(env.Lane)}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Replayed dead letter %s: event %s is back on the %s lane (%s).\n",
		id, env.ID, env.Lane, topics.Names{Prefix: cfg.TopicPrefix}.Lane(env.Lane))
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func truncateText(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
