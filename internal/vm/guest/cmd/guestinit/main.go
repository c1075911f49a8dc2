// Command guestinit is a stand-alone /init for the test VM (package guest), used until
// cmd/modload dispatches argv[0] "init" to guest.Main.
package main

import (
	"os"

	"github.com/modload/modload/internal/vm/guest"
)

func main() { os.Exit(guest.Main(os.Args)) }
