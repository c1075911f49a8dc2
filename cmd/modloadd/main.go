// Command modloadd is modload's autoloader daemon (package internal/cli/daemoncmd): coldplug,
// hotplug from the kernel's uevents, and the request socket modprobe forwards to. "modload
// daemon" runs it; systemd starts it from dist/modloadd.service.
//
// It runs Go code on one P (package onep) unless GOMAXPROCS is set in its environment. The
// daemon's own work is small beside the kernel's, and it waits (in finit_module, on its
// sockets, for uevents) on threads that hold no P; what more Ps buy is the runtime waking and
// spinning threads across CPUs whenever a goroutine becomes runnable. In the VM on 6.1 at 16 CPUs
// (2026-12-07, one boot each, then with the daemon's Ps one per CPU against GOMAXPROCS=1; now
// go run ./cmd/stormbench -kernels 6.1 -smp 16 -boots 1 -loaders
// kmod,list,modload-daemon,modload-daemon-allp), one P took the coldplug from 16.49 s to
// 14.09 s and the daemon's CPU from 36.8 s to 27.1 s, for the same 84 kernel calls.
//
// With MODLOAD_CPUPROFILE=FILE in its environment it writes a CPU profile of its whole run
// (runtime/pprof, read with "go tool pprof"): what stormbench -profile asks for in the VM.
package main

import (
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/internal/cli/daemoncmd"
	"github.com/modload/modload/internal/onep"
)

func main() {
	os.Exit(run())
}

func run() int {
	if os.Getenv("GOMAXPROCS") != "" {
		onep.Restore()
	}
	if p := os.Getenv("MODLOAD_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "modloadd: MODLOAD_CPUPROFILE: %v\n", err)
		} else {
			defer func() {
				pprof.StopCPUProfile()
				f.Close()
			}()
		}
	}
	return daemoncmd.Main(cli.OS(), os.Args)
}
