// Package onep gives the process one P (GOMAXPROCS 1) from its initialiser, before the
// initialisers of most other packages run, unless GOMAXPROCS is set in the environment. A
// program that needs every CPU for a while gives them back with [AllCPUs].
//
// Why so early: the modload tools wait on the kernel, on files and on other processes' locks,
// not on Go code, and a short-lived process pays for every extra P (the runtime wakes and spins
// threads across CPUs for it). runtime.GOMAXPROCS(1) stops the world and frees the Ps it drops;
// when the goroutine calling it runs on one of those (the main goroutine starts on P0 or P1
// depending on which runtime goroutine readied it last), the P's allocation cache goes back to
// the heap's central lists, a page fault per size class it cached. Called at the start of main,
// after every initialiser has allocated, that was about 40 faults in half of the runs; from
// here, after only the runtime's and a few standard packages' initialisers, it is a handful.
//
// The package imports only runtime and syscall, so that by the specification's initialisation
// order (packages sorted by import path, each initialised once its imports are) it comes right
// after package syscall: TestInitOrder in cmd/modload checks where it lands in the binary.
package onep

import (
	"runtime"
	"syscall"
)

// before is the P count the runtime started with, 0 when init left it alone (GOMAXPROCS set in
// the environment, or AllCPUs already called).
var before int

func init() {
	// syscall.Getenv reads the environment the runtime copied at start-up; the os package is
	// not initialised yet.
	if _, ok := syscall.Getenv("GOMAXPROCS"); !ok {
		before = runtime.GOMAXPROCS(1)
	}
}

// AllCPUs gives back the Ps init took away (one per CPU, the runtime's default), for a program
// whose work is Go code spread over workers. It does nothing when GOMAXPROCS is set in the
// environment or on a second call.
func AllCPUs() {
	if before > 1 {
		runtime.GOMAXPROCS(before)
	}
	before = 0
}
