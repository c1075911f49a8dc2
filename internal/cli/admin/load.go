package admin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/modload/modload"
	"github.com/modload/modload/internal/cli"
)

// LoadHook opens the loading engine for Load (dedup nil: chosen from the environment);
// cmd/modload and tests replace it (a fake kernel, one P).
var LoadHook = func(env *cli.Env, o modload.Options, dedup *modload.Dedup) (*modload.Engine, error) {
	return cli.OpenEngine(env, o, dedup)
}

// Load is "modload load [-n] [-v] [-b] [-q] [-j N] [-d BASE] [-S VERSION] [-C CONFIG] [-dedup MODE] NAME... | -":
// modload's one-process loader, on the engine (package modload). Every name (module name,
// alias, device modalias, symbol:NAME; "-" reads names from standard input, one per line) is
// resolved as modprobe resolves it, and the union of what they need is loaded as one graph:
// independent modules in parallel, each module once. -n -v prints the plan instead, in
// modprobe -n -v's format: the union of what modprobe -n -v prints for each name. -dedup (wait,
// busy or off) overrides MODLOAD_DEDUP and /etc/modload.conf; -j bounds the loads in flight
// (default the CPU count). The exit status is 1 when modprobe would fail for some name.
func Load(env *cli.Env, args []string) int {
	fs := NewFlags(env, "modload load")
	blacklist := fs.Bool("b", false, "apply the blacklist to modules asked for by name too (modprobe -b)")
	quiet := fs.Bool("q", false, "do not report names that match no module")
	dryRun := fs.Bool("n", false, "do not load; with -v print what would be loaded (modprobe -n)")
	verbose := fs.Bool("v", false, "print each module's insmod or install line (modprobe -v)")
	base := fs.String("d", "/", "base directory of lib/modules (modprobe -d)")
	version := fs.String("S", "", "kernel version (default: the running kernel's)")
	dedup := fs.String("dedup", "", "duplicate handling: wait, busy or off (default: MODLOAD_DEDUP, /etc/modload.conf, wait)")
	jobs := fs.Int("j", 0, "load at most this many modules at once (default: the CPU count)")
	var configPaths []string
	fs.Func("C", "read this configuration file or directory instead of modprobe.d (modprobe -C; repeatable)", func(v string) error {
		configPaths = append(configPaths, v)
		return nil
	})
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *jobs < 0 {
		fmt.Fprintf(env.Stderr, "modload load: -j: %d is not a number of jobs\n", *jobs)
		return 2
	}
	var mode *modload.Dedup
	if *dedup != "" {
		m, err := modload.ParseDedup(*dedup)
		if err != nil {
			fmt.Fprintf(env.Stderr, "modload load: -dedup: %v\n", err)
			return 2
		}
		mode = &m
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
	o := modload.Options{ModuleBase: *base, KernelVersion: *version, ConfigPaths: configPaths, Workers: *jobs,
		Kmod30: env.Kmod() == cli.Kmod30,
		Event: func(ev modload.Event) {
			if ev.Kind == modload.EventWarning {
				fmt.Fprintf(env.Stderr, "modload load: %v\n", ev.Err)
			}
		}}
	if *dryRun {
		// A dry run never loads: no runtime directory, no dedup mode needed.
		off := modload.DedupOff
		mode = &off
	}
	e, err := LoadHook(env, o, mode)
	if err != nil {
		fmt.Fprintf(env.Stderr, "modload load: %v\n", err)
		return 1
	}
	defer e.Close()
	reqs := make([]modload.Request, len(names))
	for i, n := range names {
		reqs[i] = modload.Request{Name: n}
	}
	p, err := e.PlanRequests(modload.PlanOptions{Blacklist: *blacklist}, reqs...)
	if err != nil {
		fmt.Fprintf(env.Stderr, "modload load: %v\n", err)
		return 1
	}
	if *verbose {
		p.WriteTo(env.Stdout)
	}
	if *dryRun {
		return report(env, planErrors(p), *quiet)
	}
	return report(env, loadErrors(e.Exec(context.Background(), p)), *quiet)
}

// failure is one failed request: notFound when it matched nothing.
type failure struct {
	err      error
	notFound bool
}

// planErrors is what a dry run can fail on: requests that resolve to nothing or not at all.
func planErrors(p *modload.Plan) []failure {
	var fs []failure
	for _, r := range p.Requests {
		if r.Err != nil {
			fs = append(fs, failure{r.Err, len(r.Targets) == 0 && errors.Is(r.Err, modload.ErrNotFound)})
		}
	}
	return fs
}

// loadErrors are the failed requests of a load.
func loadErrors(rep *modload.Report) []failure {
	var fs []failure
	for _, r := range rep.Requests {
		if r.Err != nil {
			fs = append(fs, failure{r.Err, r.Status == modload.StatusNotFound})
		}
	}
	return fs
}

// report prints each failed request (names that match nothing only without -q) and returns
// the exit status: 1 when some request failed; a name that matches nothing is reported but, as
// for udev's loading of a device without a driver, does not fail the command.
func report(env *cli.Env, fs []failure, quiet bool) int {
	code := 0
	for _, f := range fs {
		if !f.notFound {
			code = 1
		}
		if quiet && f.notFound {
			continue
		}
		fmt.Fprintf(env.Stderr, "modload load: %v\n", f.err)
	}
	return code
}
