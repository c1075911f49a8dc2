// Package admin holds modload's own subcommands, the ones kmod has no equivalent for:
//
//	modload stats [--json]                  the per-boot statistics, kernel-style
//	modload daemon                          runs modloadd: coldplug, hotplug, the request socket
//	modload coldplug                        one coldplug, then exit
//	modload blame | plot [-o FILE]          the boot timeline: inits by time, an SVG
//	modload failures                        the failures remembered for this boot
//	modload forget [--all | NAME...]        clear remembered failures
//
// Every subcommand takes --root (the base of /proc, /sys and /run, for tests) and
// --runtime-dir (default <root>/run/modload).
package admin

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"path/filepath"

	"github.com/modload/modload/gate"
	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/internal/daemon"
	"github.com/modload/modload/internal/glibc"
	"github.com/modload/modload/modconf"
	"github.com/modload/modload/stats"
)

// common are the flags every subcommand takes.
type common struct {
	root, runtime string
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.root, "root", "/", "base directory of /proc, /sys and /run")
	fs.StringVar(&c.runtime, "runtime-dir", "", "runtime directory (default <root>/run/modload)")
}

func (c *common) dir() string {
	if c.runtime != "" {
		return c.runtime
	}
	return filepath.Join(c.root, "run", "modload")
}

// NewFlags returns a flag set for a subcommand, reporting to env.Stderr.
func NewFlags(env *cli.Env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs
}

// Stats prints the statistics of this boot: the running daemon's answer, else the per-boot
// file. (modloadd metrics prints them for Prometheus.)
func Stats(env *cli.Env, args []string) int {
	var c common
	fs := NewFlags(env, "modload stats")
	c.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	sock := fs.String("socket", "", "the daemon's request socket (default <root>/run/modload.sock)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	snap, err := (&daemon.Client{Path: c.socketPath(*sock)}).Stats(context.Background())
	if errors.Is(err, daemon.ErrNotRunning) {
		snap, err = c.storedStats(func(err error) {
			fmt.Fprintf(env.Stderr, "modload stats: %v\n", err) // the other lines still count
		})
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "modload stats: %v\n", err)
		return 1
	}
	format := stats.FormatText
	if *asJSON {
		format = stats.FormatJSON
	}
	if err := stats.Write(env.Stdout, snap, format); err != nil {
		fmt.Fprintf(env.Stderr, "modload stats: %v\n", err)
		return 1
	}
	return 0
}

// storedStats reads the per-boot statistics file. Unreadable lines are skipped: the error
// (stats.ErrSkippedLines) goes to warn and the other lines still count.
func (c *common) storedStats(warn func(error)) (stats.Snapshot, error) {
	store, err := stats.OpenStore(c.dir(), c.root)
	if err != nil {
		return stats.Snapshot{}, err
	}
	snap, err := store.Load()
	if errors.Is(err, stats.ErrSkippedLines) {
		warn(err)
		err = nil
	}
	return snap, err
}

func openGate(env *cli.Env, c common) (*gate.Gate, error) {
	// An unusable runtime directory is reported by List, naming it; no warning besides.
	g, err := gate.New(gate.Options{Root: c.root, RuntimeDir: c.dir(), Getenv: env.Getenv, Warn: func(error) {}})
	if err != nil {
		return nil, err
	}
	for _, w := range g.Warnings() {
		fmt.Fprintf(env.Stderr, "modload: %v\n", w)
	}
	return g, nil
}

// Failures lists the failures remembered for this boot: module, errno, file.
func Failures(env *cli.Env, args []string) int {
	var c common
	fs := NewFlags(env, "modload failures")
	c.register(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	g, err := openGate(env, c)
	if err != nil {
		fmt.Fprintf(env.Stderr, "modload failures: %v\n", err)
		return 1
	}
	list, err := g.List()
	if err != nil {
		fmt.Fprintf(env.Stderr, "modload failures: %v\n", err)
		return 1
	}
	for _, f := range list {
		fmt.Fprintf(env.Stdout, "%s\t%s\t%s\n", f.Module, glibc.Strerror(f.Errno), f.Path)
	}
	return 0
}

// Forget clears remembered failures: of the named modules, or all with --all.
func Forget(env *cli.Env, args []string) int {
	var c common
	fs := NewFlags(env, "modload forget")
	c.register(fs)
	all := fs.Bool("all", false, "forget every remembered failure")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	names := fs.Args()
	if *all == (len(names) > 0) {
		fmt.Fprintln(env.Stderr, "modload forget: name modules or give --all")
		return 2
	}
	g, err := openGate(env, c)
	if err != nil {
		fmt.Fprintf(env.Stderr, "modload forget: %v\n", err)
		return 1
	}
	if *all {
		names = []string{""}
	}
	total := 0
	for _, n := range names {
		k, err := g.Forget(modconf.NormalizeModname(n))
		total += k
		if err != nil {
			if errors.Is(err, gate.ErrOff) {
				fmt.Fprintln(env.Stderr, "modload forget: dedup mode is off: nothing is remembered")
				return 1
			}
			fmt.Fprintf(env.Stderr, "modload forget: %v\n", err)
			return 1
		}
	}
	fmt.Fprintf(env.Stdout, "forgot %d failure(s)\n", total)
	return 0
}
