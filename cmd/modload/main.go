// Command modload is a kernel-module loading system that asks the kernel for each module exactly
// once. It is one multi-call binary, like kmod: invoked as modprobe, insmod, rmmod, lsmod or
// modinfo (by a symlink or hard link) it behaves as that tool; otherwise the first argument names
// the tool or a modload subcommand:
//
//	modload modprobe -D ext4
//	modload stats --json
//
// main only wires: every tool lives in its own package as Main(env, args) int.
//
// The runtime does not read cgroup CPU limits at start-up or poll them later: a tool lives for
// milliseconds, and every process of a boot storm would pay the extra opens and reads.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/internal/onep"
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
	// A GOMAXPROCS in the environment is the user's count: onep's initialiser could not tell it
	// from the runtime's default when it is the CPU count.
	if allCPUs(os.Args) || os.Getenv("GOMAXPROCS") != "" {
		onep.Restore()
	}
	os.Exit(run(cli.OS(), os.Args))
}

// parallelTools are the tools whose work is Go code spread over workers (depmod decompresses and
// parses every module of a tree): they get a P per CPU back; every other tool keeps the one P
// package onep's initialiser left (see there why one, and why from an initialiser).
var parallelTools = map[string]bool{"depmod": true}

// allCPUs reports whether the tool that args name (as run dispatches) is one of parallelTools.
func allCPUs(args []string) bool {
	name, _ := toolName(args)
	return parallelTools[name]
}

// toolName is the tool args ask for, as run dispatches: the base name of args[0] when it is a
// tool (a link named modprobe), else args[1] ("modload modprobe ..."), with the arguments the
// tool is given; "" when args name none.
func toolName(args []string) (string, []string) {
	if len(args) == 0 {
		return "", nil
	}
	if base := filepath.Base(args[0]); tools[base].main != nil {
		return base, args
	}
	if len(args) < 2 {
		return "", nil
	}
	return args[1], args[1:]
}

// run dispatches on the base name of args[0], then on args[1].
func run(env *cli.Env, args []string) int {
	name, rest := toolName(args)
	switch name {
	case "":
		usage(env.Stderr)
		return 1
	case "help", "-h", "--help":
		usage(env.Stdout)
		return 0
	}
	t, ok := tools[name]
	if !ok {
		fmt.Fprintf(env.Stderr, "modload: unknown command %q\n", name)
		usage(env.Stderr)
		return 1
	}
	return t.main(env, rest)
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
