// Command loa-chaos is `make chaos`: a large broadcast, an alert and a
// stream of SMS codes through Loa running as real processes, on
// PostgreSQL, Redis and Kafka servers of its own, while a printed
// schedule of faults kills and restarts every part; then a check of what
// arrived against what was promised. It exits 1 when a promise is broken.
// See package internal/chaos, and docs/testing.md, "Chaos".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/loa-hub/loa/internal/chaos"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "loa-chaos:", err)
		os.Exit(1)
	}
}

// errBroken is returned when the run was carried out and a promise broke.
var errBroken = errors.New("a promise was broken (see the report above)")

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("loa-chaos", flag.ContinueOnError)
	fs.SetOutput(stdout)
	loa := fs.String("loa", "bin/loa", "the loa binary to run (make chaos builds it)")
	dir := fs.String("dir", "", "where the processes' logs go (default: a new directory under the system's temporary one)")
	short := fs.Bool("short", false, "CI's short run: 20,000 devices, 300 codes, 150 notifications, one fault of each kind")
	devices := fs.Int("devices", 200_000, "devices of the broadcast")
	alertDevices := fs.Int("alert-devices", 2_000, "devices (each with a phone) of the alert's area")
	codes := fs.Int("codes", 2_000, "SMS codes to request")
	codeRate := fs.Float64("code-rate", 20, "codes a second")
	notices := fs.Int("notices", 1_000, "direct notifications (SMS) an integrating system posts, retrying each with its idempotency key")
	noticeRate := fs.Float64("notice-rate", 10, "notifications a second")
	redisAOF := fs.Bool("redis-aof", false, "run Redis with an append-only file (a restart keeps its data); default without persistence")
	killsFor := fs.Duration("kills-for", 90*time.Second, "kill a dispatcher every 10 s for this long")
	fcmLatency := fs.Duration("fcm-latency", 0, "the FCM fake's answer time")
	deadline := fs.Duration("deadline", 10*time.Minute, "how long after the last fault everything must have arrived")
	quiet := fs.Duration("quiet", 10*time.Second, "how long the fakes must see nothing new before the checks")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg := chaos.Config{
		Loa: *loa, Out: stdout, Devices: *devices, AlertDevices: *alertDevices, Codes: *codes, CodeRate: *codeRate,
		Notices: *notices, NoticeRate: *noticeRate,
		AlertAt: 5 * time.Second, RedisAOF: *redisAOF, Schedule: chaos.FullSchedule(*killsFor),
		FCMLatency: *fcmLatency, Deadline: *deadline, Quiet: *quiet,
	}
	if *short {
		cfg = chaos.Short(cfg)
	}
	abs, err := filepath.Abs(cfg.Loa)
	if err != nil {
		return err
	}
	if _, err := os.Stat(abs); err != nil {
		return fmt.Errorf("--loa: %w (build it: make build)", err)
	}
	cfg.Loa = abs
	if cfg.Dir = *dir; cfg.Dir == "" {
		if cfg.Dir, err = os.MkdirTemp("", "loa-chaos-"); err != nil {
			return err
		}
	}
	rep, err := chaos.Run(ctx, cfg)
	if err != nil {
		return fmt.Errorf("%w (logs in %s)", err, cfg.Dir)
	}
	fmt.Fprintf(stdout, "logs: %s\n", cfg.Dir)
	if len(rep.Broken) > 0 {
		return errBroken
	}
	return nil
}
