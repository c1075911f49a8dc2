// Command modload is a kernel-module loading system that asks the kernel for each module exactly
// once. It is one multi-call binary, like kmod: invoked as modprobe, insmod, rmmod, lsmod or
// modinfo (by a symlink or hard link) it behaves as that tool; otherwise the first argument names
// the tool or a modload subcommand:
//
//	modload modprobe -D ext4
//	modload stats --json
//
// main only wires: every tool lives in its own package as Main(env, args) int.
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"

	"github.com/modload/modload/internal/cli"
)

// tool is one entry point of the multi-call binary.
type tool struct {
	main func(env *cli.Env, args []string) int
	help string
	// hidden tools are not listed by "modload help".
	hidden bool
}

// tools is filled by the register calls in tools.go.
var tools = map[string]tool{}

func register(name, help string, hidden bool, main func(env *cli.Env, args []string) int) {
	tools[name] = tool{main: main, help: help, hidden: hidden}
}

func main() {
	// The tools are short-lived and wait on the kernel, not on Go code: one P is enough (a
	// goroutine in finit_module or flock holds a thread, not a P, so loads in flight are not
	// bounded by it). On a many-CPU machine in a boot storm, where one process starts per device
	// event, every extra P means threads started, spun and torn down across CPUs: measured in
	// the VM at 64 CPUs, a loader process costs about half as much with one P
	// (internal/vm TestVMDiagProcessCost). Setting GOMAXPROCS=1 in the environment (a udev
	// rule's ENV{GOMAXPROCS}="1") saves the rest, the threads the runtime starts before main.
	// GOMAXPROCS in the environment still decides.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	os.Exit(run(cli.OS(), os.Args))
}

// run dispatches on the base name of args[0], then on args[1].
func run(env *cli.Env, args []string) int {
	if len(args) == 0 {
		usage(env.Stderr)
		return 1
	}
	if t, ok := tools[filepath.Base(args[0])]; ok {
		return t.main(env, args)
	}
	if len(args) < 2 {
		usage(env.Stderr)
		return 1
	}
	switch args[1] {
	case "help", "-h", "--help":
		usage(env.Stdout)
		return 0
	}
	t, ok := tools[args[1]]
	if !ok {
		fmt.Fprintf(env.Stderr, "modload: unknown command %q\n", args[1])
		usage(env.Stderr)
		return 1
	}
	return t.main(env, args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: modload COMMAND [ARGS...]  (or invoke as modprobe, insmod, rmmod, lsmod, modinfo)")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(tools))
	for n, t := range tools {
		if !t.hidden {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, tools[n].help)
	}
}
