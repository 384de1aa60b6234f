// Command loa-fakes runs the provider fakes the tests use — FCM, the eSMS
// and SpeedSMS gateways, a webhook gateway, SMTP and an SMPP SMSC, over
// their real protocols — and prints the LOA_* variables that point
// `loa dev` at them. It is a command of its own so that the fakes never
// ship in the loa binary.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/loa-hub/loa/internal/fakes/fakescmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	addr := os.Getenv("LOA_HTTP_ADDR")
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	log := slog.New(slog.NewTextHandler(os.Stdout, nil))
	err := fakescmd.Run(ctx, os.Args[1:], "http://"+addr, log, os.Stdout)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loa-fakes:", err)
		os.Exit(1)
	}
}
