package main

import (
	"fmt"

	"github.com/modload/modload/internal/cli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "devel"

func init() {
	register("version", "print modload's version", false, func(env *cli.Env, args []string) int {
		fmt.Fprintf(env.Stdout, "modload %s\n", version)
		return 0
	})
}
