// Command loa-bench measures Loa end to end on running services:
//
//	loa-bench broadcast [flags]
//
// seeds N devices, starts `loa api`, one or more `loa dispatcher`
// processes and an FCM fake in its own process (Loa's own, or the
// reference fake of ../shared/tools/fakefcm), sends a broadcast through
// the API as a submitter and an approver do, shows a progress bar with the
// live rate, and prints pushes/s and the CPU time per push and peak RSS of
// each process: Loa's apart from the fake's and from Kafka's, Redis's and
// PostgreSQL's (read from /proc). With two dispatchers it also shows how
// the work was shared. `make bench-e2e` runs it; see docs/testing.md,
// "Benchmarks".
//
//	loa-bench alert [flags]
//
// times an alert's pushes from its POST to the FCM fake, on the idle
// system and while a large broadcast is being sent (see runAlert).
//
//	loa-bench floor [flags]
//
// runs a minimal program that makes the hops an SMS code makes in Loa
// with the same libraries and nothing else, at the codes' rate, and
// prints its latency and each process's CPU (see floor.go).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "loa-bench:", err)
		os.Exit(1)
	}
}

const usage = `loa-bench — Loa's end-to-end benchmarks on running services

Usage:
  loa-bench broadcast [flags]   a broadcast to N devices through the API; -h lists the flags
  loa-bench alert [flags]       an alert's push latency, idle and while a broadcast is in flight
  loa-bench floor [flags]       the floor of an SMS code's hops: a minimal api, dispatcher and gateway with Loa's libraries
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) < 2 {
		fmt.Fprint(stdout, usage)
		return fmt.Errorf("no benchmark named")
	}
	switch args[1] {
	case "broadcast":
		return runBroadcast(ctx, args[2:], getenv, stdout)
	case "alert":
		return runAlert(ctx, args[2:], getenv, stdout)
	case "floor":
		return runFloor(ctx, args[2:], getenv, stdout)
	case "floor-api", "floor-dispatcher", "floor-gateway":
		return runFloorRole(ctx, args[1], args[2:], stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stdout, usage)
	return fmt.Errorf("unknown benchmark %q", args[1])
}
