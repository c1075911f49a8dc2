// Package onep gives the process one P (GOMAXPROCS 1) from its initialiser, before the
// initialisers of most other packages run. A program gives the Ps back with [Restore] when it
// needs every CPU, or when GOMAXPROCS is set in its environment.
//
// Why so early: the modload tools wait on the kernel, on files and on other processes' locks,
// not on Go code, and a short-lived process pays for every extra P (the runtime wakes and spins
// threads across CPUs for it). runtime.GOMAXPROCS(1) stops the world and frees the Ps it drops;
// when the goroutine calling it runs on one of those (the main goroutine starts on P0 or P1
// depending on which runtime goroutine readied it last), the P's allocation cache goes back to
// the heap's central lists, a page fault or two per size class it cached. Called at the start
// of main, after every initialiser had allocated, that was about 40 faults in half of the runs;
// from here, after only the runtime's own initialisers, it is a few.
//
// The package imports only runtime, so that by the specification's initialisation order
// (packages sorted by import path, each initialised once its imports are) it comes before
// nearly every other: TestOnePInitOrder in cmd/modload checks where it lands in the binary.
// Not even package syscall, whose Getenv would tell whether GOMAXPROCS is set: the runtime's
// count is compared with the CPU count instead, and [Restore] settles the one case that cannot
// tell apart (GOMAXPROCS set to the CPU count).
package onep

import "runtime"

// before is the P count the runtime started with, 0 when init left it alone (GOMAXPROCS set in
// the environment to another count than the CPUs', or Restore already called).
var before int

func init() {
	if n := runtime.GOMAXPROCS(0); n > 1 && n == runtime.NumCPU() {
		before = runtime.GOMAXPROCS(1)
	}
}

// Restore gives back the Ps init took away (the runtime's count), for a program whose work is
// Go code spread over workers, or whose environment sets GOMAXPROCS (to the CPU count: another
// count init leaves alone). It does nothing on a second call.
func Restore() {
	if before > 1 {
		runtime.GOMAXPROCS(before)
	}
	before = 0
}
