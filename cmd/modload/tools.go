package main

import (
	"fmt"

	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/internal/cli/admin"
	"github.com/modload/modload/internal/cli/insmod"
	"github.com/modload/modload/internal/cli/lsmod"
	"github.com/modload/modload/internal/cli/modprobe"
	"github.com/modload/modload/internal/cli/rmmod"
	"github.com/modload/modload/internal/probe"
	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/internal/vm/guest"
	"github.com/modload/modload/moddb"
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
	register("insmod", "insert one module file, through the duplicate gate (kmod's insmod)", false, insmod.Main)
	register("load", "load names, aliases and modaliases as one parallel graph, each module once", false, admin.Load)
	register("stats", "print this boot's load statistics (--json)", false, admin.Stats)
	register("failures", "list the load failures remembered for this boot", false, admin.Failures)
	register("forget", "clear remembered failures (NAME... or --all)", false, admin.Forget)
	register("init", "", true, guestMain)
	register("vm-guest", "", true, guestMain)
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
func guestMain(env *cli.Env, args []string) int { return guest.Main(args) }
