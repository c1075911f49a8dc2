package main

import (
	"fmt"

	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/internal/cli/lsmod"
	"github.com/modload/modload/internal/cli/modprobe"
	"github.com/modload/modload/internal/cli/rmmod"
	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/moddb"
)

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
