package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"

	"github.com/modload/modload/gate"
	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/internal/cli/admin"
	"github.com/modload/modload/internal/cli/depmod"
	"github.com/modload/modload/internal/cli/insmod"
	"github.com/modload/modload/internal/cli/lsmod"
	"github.com/modload/modload/internal/cli/modprobe"
	"github.com/modload/modload/internal/cli/rmmod"
	"github.com/modload/modload/internal/probe"
	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/internal/vm/guest"
	"github.com/modload/modload/moddb"
	"github.com/modload/modload/resolve"
)

// lazy opens the loading machinery on the first request that needs the kernel.
var lazy = &probe.Lazy{}

// version is set at build time with -ldflags "-X main.version=...".
var version = "devel"

func init() {
	register("version", "print modload's version", false, func(env *cli.Env, args []string) int {
		fmt.Fprintf(env.Stdout, "modload %s\n", version)
		return 0
	})
	register("modinfo", "show information about a kernel module (kmod's modinfo)", false, modinfoMain)
	register("modprobe", "add or remove modules, resolving names, aliases and dependencies (kmod's modprobe)", false, modprobe.Main)
	register("lsmod", "show the modules the kernel has loaded (kmod's lsmod)", false, lsmod.Main)
	register("depmod", "write the module directory's indexes (kmod's depmod)", false, depmod.Main)
	register("insmod", "insert one module file, through the duplicate gate (kmod's insmod)", false, insmod.Main)
	register("load", "load names, aliases and modaliases as one parallel graph, each module once", false, admin.Load)
	register("stats", "print this boot's load statistics (--json)", false, admin.Stats)
	register("failures", "list the load failures remembered for this boot", false, admin.Failures)
	register("forget", "clear remembered failures (NAME... or --all)", false, admin.Forget)
	register("init", "", true, guestMain)
	register("vm-guest", "", true, guestMain)
	openSystem := admin.LoadHook
	admin.LoadHook = func(env *cli.Env, mode gate.Mode) (*probe.System, error) {
		setOneP()
		return openSystem(env, mode)
	}
	modprobe.Hooks.Loader = oneP{lazy}
	insmod.Default.Loader = oneP{lazy}
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
	setOneP()
	return guest.Main(args)
}

// setOneP gives the process one P unless GOMAXPROCS is set. The loading tools wait on the
// kernel and on other processes' locks, not on Go code: a goroutine in finit_module or flock
// holds a thread, not a P. On a many-CPU machine in a boot storm, where a process starts per
// device event, every idle P means threads started, spun and torn down across CPUs; the VM's
// /init (this binary) with 64 Ps made its loaders compete with its idle threads. It is set
// when loading starts, not in main: the stop-the-world it costs (about 1 ms) is not worth
// paying for queries (modprobe -D, modinfo). GOMAXPROCS=1 in the environment saves the threads
// the runtime starts before main too (a udev rule's ENV{GOMAXPROCS}="1").
func setOneP() {
	oncePOnce.Do(func() {
		if os.Getenv("GOMAXPROCS") == "" {
			runtime.GOMAXPROCS(1)
		}
	})
}

var oncePOnce sync.Once

// oneP is the loading machinery behind modprobe and insmod, with one P from the first load.
type oneP struct{ z *probe.Lazy }

func (o oneP) Load(ctx context.Context, steps []resolve.Step, f modprobe.LoadFlags) error {
	setOneP()
	return o.z.Load(ctx, steps, f)
}

func (o oneP) Remove(ctx context.Context, m resolve.Module, f modprobe.RemoveFlags) error {
	setOneP()
	return o.z.Remove(ctx, m, f)
}

func (o oneP) LoadFile(ctx context.Context, path, params string, flags int) error {
	setOneP()
	return o.z.LoadFile(ctx, path, params, flags)
}
