package main

import (
	"fmt"

	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/internal/cli/lsmod"
	"github.com/modload/modload/internal/cli/modinfo"
	"github.com/modload/modload/internal/cli/rmmod"
	"github.com/modload/modload/internal/sys"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "devel"

func init() {
	register("version", "print modload's version", false, func(env *cli.Env, args []string) int {
		fmt.Fprintf(env.Stdout, "modload %s\n", version)
		return 0
	})
	register("modinfo", "show information about a kernel module (kmod's modinfo)", false, modinfo.Main)
	register("lsmod", "show the modules the kernel has loaded (kmod's lsmod)", false, lsmod.Main)
	rmmod.Default.Kernel = sys.Real()
	register("rmmod", "remove a module (kmod's rmmod)", false, rmmod.Main)
}
