// Command loa is Loa's single binary: `loa dev` runs everything in one
// process on embedded defaults; `loa api`, `loa dispatcher` and
// `loa migrate` run on real Kafka, Redis and PostgreSQL; `loa admin`
// holds operator commands. `loa help` lists them.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "loa:", err)
		os.Exit(1)
	}
}
