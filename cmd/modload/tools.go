package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/modload/modload"
	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/internal/cli/admin"
	"github.com/modload/modload/internal/cli/depmod"
	"github.com/modload/modload/internal/cli/insmod"
	"github.com/modload/modload/internal/cli/lsmod"
	"github.com/modload/modload/internal/cli/modprobe"
	"github.com/modload/modload/internal/cli/rmmod"
	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/internal/vm/guest"
	"github.com/modload/modload/moddb"
	"github.com/modload/modload/resolve"
)

// lazy opens the loading engine on the first request that needs the kernel.
var lazy = &lazyEngine{}

// version is set at build time with -ldflags "-X main.version=...".
var version = "devel"

func init() {
	register("version", "print modload's version", false, func(env *cli.Env, args []string) int {
		fmt.Fprintf(env.Stdout, "modload %s\n", version)
		return 0
	})
	register("modinfo", "show information about a kernel module (kmod's modinfo)", false, modinfoMain)
	register("modprobe", "add or remove modules, resolving names, aliases and dependencies (kmod's modprobe)", false, modprobeMain)
	register("lsmod", "show the modules the kernel has loaded (kmod's lsmod)", false, lsmod.Main)
	register("depmod", "write the module directory's indexes (kmod's depmod)", false, depmod.Main)
	register("insmod", "insert one module file, through the duplicate gate (kmod's insmod)", false, insmod.Main)
	register("load", "load names, aliases and modaliases as one parallel graph, each module once", false, admin.Load)
	register("stats", "print this boot's load statistics (--json)", false, admin.Stats)
	register("failures", "list the load failures remembered for this boot", false, admin.Failures)
	register("forget", "clear remembered failures (NAME... or --all)", false, admin.Forget)
	register("init", "", true, guestMain)
	register("vm-guest", "", true, guestMain)
	admin.LoadHook = func(env *cli.Env, o modload.Options, dedup *modload.Dedup) (*modload.Engine, error) {
		o.SysRoot, o.Kernel = lazy.Options.SysRoot, lazy.Options.Kernel
		return cli.OpenEngine(env, o, dedup)
	}
	modprobe.Hooks.Loader = lazy
	insmod.Default.Loader = lazy
	rmmod.Default.Kernel = sys.Real()
	rmmod.Default.Builtin = runningBuiltin
	register("rmmod", "remove a module (kmod's rmmod)", false, rmmod.Main)
}

// runningBuiltin reports whether name is built into the running kernel, from its modules.builtin
// index, as kmod decides it.
func runningBuiltin(name string) bool {
	rel, err := sys.Release()
	if err != nil {
		return false
	}
	db, err := moddb.Open(moddb.Dir("/", rel))
	if err != nil {
		return false
	}
	defer db.Close()
	ok, err := db.Builtin(name)
	return err == nil && ok
}

// guestMain is /init inside the test VM (internal/vm): it runs a scenario and powers off.
func guestMain(env *cli.Env, args []string) int {
	return guest.Main(args)
}

// lazyEngine is the loading engine behind modprobe and insmod, opened on first use (so that
// queries never touch the runtime directory).
type lazyEngine struct {
	Options modload.Options
	once    sync.Once
	e       *modload.Engine
	err     error
}

func (z *lazyEngine) engine() (*modload.Engine, error) {
	z.once.Do(func() { z.e, z.err = cli.OpenEngine(cli.OS(), z.Options, nil) })
	return z.e, z.err
}

func (z *lazyEngine) Load(ctx context.Context, steps []resolve.Step, f modload.ProbeOptions) error {
	e, err := z.engine()
	if err != nil {
		return err
	}
	return e.Probe(ctx, steps, f)
}

func (z *lazyEngine) Remove(ctx context.Context, m resolve.Module, f modload.RemoveOptions) error {
	e, err := z.engine()
	if err != nil {
		return err
	}
	return e.Remove(ctx, m, f)
}

func (z *lazyEngine) LoadFile(ctx context.Context, path, params string, flags int) error {
	e, err := z.engine()
	if err != nil {
		return err
	}
	return e.LoadFile(ctx, path, params, flags)
}

func init() {
	register("daemon", "coldplug, then load for uevents and the request socket until SIGTERM", false, admin.Daemon)
	register("coldplug", "load the modules of the devices present, then exit", false, admin.Coldplug)
	register("blame", "module inits of this boot by time taken", false, admin.Blame)
	register("plot", "this boot's loads as an SVG timeline (-o FILE)", false, admin.Plot)
}

// modprobeMain forwards "modprobe [-q] NAME" to the daemon when one runs (one gate for the
// machine), and is kmod's modprobe otherwise.
func modprobeMain(env *cli.Env, args []string) int {
	if code, ok := admin.Forward(env, args); ok {
		return code
	}
	return modprobe.Main(env, args)
}
