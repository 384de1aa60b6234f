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
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"syscall"
)

func main() {
	if n, ok := niceness(os.Getenv); ok {
		if err := lowerPriority(n); err != nil {
			fmt.Fprintln(os.Stderr, "loa:", err)
			os.Exit(1)
		}
	}
	if n, ok := memoryLimit(os.Args, os.Getenv); ok {
		debug.SetMemoryLimit(n)
	}
	if n, ok := gcPercent(os.Args, os.Getenv); ok {
		debug.SetGCPercent(n)
	}
	if n, ok := procs(os.Args, os.Getenv); ok {
		runtime.GOMAXPROCS(n)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile, err := startCPUProfile(os.Getenv("LOA_CPUPROFILE"), os.Args)
	if err == nil {
		var stopMem func()
		if stopMem, err = startMemProfile(os.Getenv("LOA_MEMPROFILE"), os.Args); err == nil {
			err = run(ctx, os.Args, os.Getenv, os.Stdout)
			stopMem()
		}
		stopProfile()
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "loa:", err)
		os.Exit(1)
	}
}

// startCPUProfile profiles the whole process into dir (LOA_CPUPROFILE, a
// directory; off when empty), one file per process named by its command and
// pid, written when the process ends normally (SIGTERM included). It serves
// benchmarks, which stop their processes with SIGTERM; a production process
// is profiled through LOA_PPROF_ADDR instead.
func startCPUProfile(dir string, args []string) (func(), error) {
	if dir == "" {
		return func() {}, nil
	}
	command := "loa"
	if len(args) > 1 {
		command = filepath.Base(args[1])
	}
	f, err := os.Create(filepath.Join(dir, "cpu-"+command+"-"+strconv.Itoa(os.Getpid())+".pprof"))
	if err != nil {
		return nil, fmt.Errorf("LOA_CPUPROFILE: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("LOA_CPUPROFILE: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
