package rmmod

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzCheckInUse feeds arbitrary initstate and refcnt files to rmmod's checks: it never
// panics, never calls the kernel for a module it reported as not removable, and what it
// prints is kmod's ERROR messages.
func FuzzCheckInUse(f *testing.F) {
	f.Add([]byte("live\n"), []byte("0\n"), true)
	f.Add([]byte("coming\n"), []byte(" -3\n"), false)
	f.Add([]byte("weird"), []byte("12abc\n"), true)
	f.Fuzz(func(t *testing.T, initstate, refcnt []byte, holders bool) {
		root := t.TempDir()
		dir := filepath.Join(root, "sys/module/m")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if holders {
			if err := os.Mkdir(filepath.Join(dir, "holders"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "initstate"), initstate, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "refcnt"), refcnt, 0o644); err != nil {
			t.Fatal(err)
		}
		k := &fakeKernel{}
		got := runOurs(root, k, nil, "m")
		if (got.Code == 0) != (len(k.calls) == 1) {
			t.Fatalf("exit %d with calls %v; stderr %q", got.Code, k.calls, got.Stderr)
		}
		if got.Stderr != "" && !strings.HasPrefix(got.Stderr, "rmmod: ERROR: ") {
			t.Fatalf("stray stderr %q", got.Stderr)
		}
	})
}
