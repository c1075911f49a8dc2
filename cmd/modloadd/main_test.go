package main

import (
	"os"
	"runtime"
	"testing"
)

// TestOneP: the daemon's binary runs on one P (package onep's initialiser) when GOMAXPROCS is
// not set.
func TestOneP(t *testing.T) {
	if os.Getenv("GOMAXPROCS") != "" || runtime.NumCPU() == 1 {
		t.Skip("GOMAXPROCS set, or one CPU: onep leaves the count alone")
	}
	if n := runtime.GOMAXPROCS(0); n != 1 {
		t.Errorf("%d Ps on %d CPUs, want 1", n, runtime.NumCPU())
	}
}
