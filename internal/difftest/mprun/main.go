// Command mprun runs modload's modprobe in process, for comparing it with kmod's by hand:
//
//	go run ./internal/difftest/mprun -d ROOT -S VERSION -D ext4
package main

import (
	"os"

	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/internal/cli/modprobe"
)

func main() {
	os.Exit(modprobe.Main(cli.OS(), append([]string{"modprobe"}, os.Args[1:]...)))
}
