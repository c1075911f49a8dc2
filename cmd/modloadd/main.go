// Command modloadd is modload's autoloader daemon (package internal/cli/daemoncmd): coldplug,
// hotplug from the kernel's uevents, and the request socket modprobe forwards to. "modload
// daemon" runs it; systemd starts it from dist/modloadd.service.
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
)

func main() {
	os.Exit(run())
}

func run() int {
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
