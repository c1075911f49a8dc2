package admin

import (
	"bufio"
	"context"
	"fmt"
	"strings"

	"github.com/modload/modload/gate"
	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/internal/probe"
	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/resolve"
)

// LoadHook opens the loading machinery for Load; tests replace it to use a fake kernel.
var LoadHook = func(env *cli.Env, mode gate.Mode) (*probe.System, error) {
	return probe.Open(probe.Options{Environ: env.Environ, Stdout: env.Stdout, Stderr: env.Stderr, Mode: mode})
}

// Load is "modload load [-b] [-q] [-j N] [-d BASE] [-S VERSION] [-dedup MODE] NAME... | -": modload's
// one-process loader. Every name (module name, alias, device modalias, symbol:NAME; "-" reads
// names from standard input, one per line) is resolved as modprobe resolves it, and the union of
// what they need is loaded as one graph: independent modules in parallel, each module once.
// -dedup (wait, busy or off) overrides MODLOAD_DEDUP and /etc/modload.conf; -j bounds the loads
// in flight (default the CPU count).
func Load(env *cli.Env, args []string) int {
	fs := NewFlags(env, "modload load")
	blacklist := fs.Bool("b", false, "apply the blacklist to modules matched through aliases (modprobe -b)")
	quiet := fs.Bool("q", false, "do not report names that match no module")
	base := fs.String("d", "/", "base directory of lib/modules (modprobe -d)")
	version := fs.String("S", "", "kernel version (default: the running kernel's)")
	dedup := fs.String("dedup", "", "duplicate handling: wait, busy or off (default: MODLOAD_DEDUP, /etc/modload.conf, wait)")
	jobs := fs.Int("j", 0, "load at most this many modules at once (default: the CPU count)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *jobs < 0 {
		fmt.Fprintf(env.Stderr, "modload load: -j: %d is not a number of jobs\n", *jobs)
		return 2
	}
	mode := gate.ModeDefault
	if *dedup != "" {
		m, err := gate.ParseMode(*dedup)
		if err != nil {
			fmt.Fprintf(env.Stderr, "modload load: -dedup: %v\n", err)
			return 2
		}
		mode = m
	}
	names := fs.Args()
	if len(names) == 1 && names[0] == "-" {
		names = nil
		sc := bufio.NewScanner(env.Stdin)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			if l := strings.TrimSpace(sc.Text()); l != "" {
				names = append(names, l)
			}
		}
		if err := sc.Err(); err != nil {
			fmt.Fprintf(env.Stderr, "modload load: standard input: %v\n", err)
			return 1
		}
	}
	if len(names) == 0 {
		fmt.Fprintln(env.Stderr, "modload load: no module names")
		return 2
	}
	if *version == "" {
		rel, err := sys.Release()
		if err != nil {
			fmt.Fprintf(env.Stderr, "modload load: %v\n", err)
			return 1
		}
		*version = rel
	}
	r, err := resolve.New(resolve.Options{Base: *base, Version: *version})
	if err != nil {
		fmt.Fprintf(env.Stderr, "modload load: %v\n", err)
		return 1
	}
	defer r.Close()
	targets, graph, missing, err := probe.Graph(r, names, *blacklist)
	if err != nil {
		fmt.Fprintf(env.Stderr, "modload load: %v\n", err)
		return 1
	}
	if !*quiet {
		for _, m := range missing {
			fmt.Fprintf(env.Stderr, "modload load: module %s not found in directory %s\n", m, r.Dir())
		}
	}
	s, err := LoadHook(env, mode)
	if err != nil {
		fmt.Fprintf(env.Stderr, "modload load: %v\n", err)
		return 1
	}
	if err := s.LoadGraph(context.Background(), targets, graph, *jobs); err != nil {
		fmt.Fprintf(env.Stderr, "modload load: %v\n", err)
		return 1
	}
	return 0
}
