// Command modloadd is modload's autoloader daemon (package internal/cli/daemoncmd): coldplug,
// hotplug from the kernel's uevents, and the request socket modprobe forwards to. "modload
// daemon" runs it; systemd starts it from dist/modloadd.service.
package main

import (
	"os"

	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/internal/cli/daemoncmd"
)

func main() {
	os.Exit(daemoncmd.Main(cli.OS(), os.Args))
}
