package onep

import (
	"runtime"
	"testing"
)

// TestOneP: the test binary links the package, so its init has run: one P when the runtime
// started with one per CPU, and Restore gives back that count, once.
func TestOneP(t *testing.T) {
	if before == 0 {
		t.Skip("the runtime did not start with one P per CPU (GOMAXPROCS set, or one CPU)")
	}
	if before != runtime.NumCPU() {
		t.Fatalf("init took %d Ps away on %d CPUs", before, runtime.NumCPU())
	}
	if n := runtime.GOMAXPROCS(0); n != 1 {
		t.Fatalf("after init: %d Ps, want 1", n)
	}
	want := before
	Restore()
	if n := runtime.GOMAXPROCS(0); n != want {
		t.Errorf("after Restore: %d Ps, want the runtime's %d", n, want)
	}
	runtime.GOMAXPROCS(1)
	Restore() // a second call leaves the count alone
	if n := runtime.GOMAXPROCS(0); n != 1 {
		t.Errorf("after a second Restore: %d Ps, want 1", n)
	}
	runtime.GOMAXPROCS(want)
}
