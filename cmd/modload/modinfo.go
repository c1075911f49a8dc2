package main

import (
	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/internal/cli/modinfo"
)

// modinfoMain is modinfo with package resolve behind name lookups, so aliases, symbols and
// builtin aliases resolve exactly as for modprobe.
func modinfoMain(env *cli.Env, args []string) int {
	return modinfo.Run(env, args, modinfo.OpenResolve)
}
