package main

import "testing"

func TestProcs(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "GOMAXPROCS" {
				return v
			}
			return ""
		}
	}
	if n := procs(env("")); n != 1 {
		t.Errorf("without GOMAXPROCS: %d Ps, want 1", n)
	}
	if n := procs(env("8")); n != 0 {
		t.Errorf("with GOMAXPROCS=8: %d, want 0 (the runtime's count from the environment)", n)
	}
}
