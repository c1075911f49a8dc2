package onep

import (
	"runtime"
	"testing"
)

// TestOneP: the test binary links the package, so its init has run: one P unless the
// environment sets GOMAXPROCS, and AllCPUs gives back the count the runtime started with.
func TestOneP(t *testing.T) {
	if before == 0 {
		t.Skip("GOMAXPROCS is set in the environment: init leaves the runtime's count")
	}
	if runtime.NumCPU() > 1 && before < 2 {
		t.Fatalf("init saw %d Ps on %d CPUs", before, runtime.NumCPU())
	}
	if n := runtime.GOMAXPROCS(0); n != 1 {
		t.Fatalf("after init: %d Ps, want 1", n)
	}
	want := before
	AllCPUs()
	if n := runtime.GOMAXPROCS(0); n != want {
		t.Errorf("after AllCPUs: %d Ps, want the runtime's %d", n, want)
	}
	runtime.GOMAXPROCS(1)
	AllCPUs() // a second call leaves the count alone
	if n := runtime.GOMAXPROCS(0); n != 1 {
		t.Errorf("after a second AllCPUs: %d Ps, want 1", n)
	}
	runtime.GOMAXPROCS(want)
}
