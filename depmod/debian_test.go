package depmod_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// debianSource returns a base directory holding only lib/modules/<kver>
// of the real Debian tree (hard links), or skips.
func debianSource(t *testing.T) (base, kver, sysmap string) {
	t.Helper()
	root, kver := os.Getenv("MODLOAD_DEBIAN_ROOT"), os.Getenv("MODLOAD_DEBIAN_KVER")
	if root == "" || kver == "" {
		t.Skip("MODLOAD_DEBIAN_ROOT and MODLOAD_DEBIAN_KVER not set: no real Debian module tree")
	}
	base = filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(filepath.Join(base, "lib/modules"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-al", filepath.Join(root, "lib/modules", kver), filepath.Join(base, "lib/modules")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	return base, kver, filepath.Join(root, "boot", "System.map-"+kver)
}

// TestDebian: on the real Debian 12 tree, every index and message of
// modload's depmod equals kmod 30's (compat mode) and kmod 34's, cold and
// from the cache.
func TestDebian(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the real tree takes seconds per run")
	}
	src, kver, sysmap := debianSource(t)
	for _, k := range oracles(t) {
		t.Run(k.name, func(t *testing.T) {
			compare(t, k, src, "lib/modules/"+kver, true, "-b", "@W", kver)
			compare(t, k, src, "lib/modules/"+kver, true, "-n", "-b", "@W", kver)
			if _, err := os.Stat(sysmap); err == nil {
				compare(t, k, src, "lib/modules/"+kver, true, "-e", "-F", sysmap, "-b", "@W", kver)
			}
		})
	}
}
