package depmod_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// debianSource returns a base directory holding only lib/modules/<kver>
// of a real Debian tree (hard links; a merged-/usr tree's usr/lib/modules
// too), or skips. prefix names the environment variables: PREFIX_ROOT and
// PREFIX_KVER.
func debianSource(t *testing.T, prefix string) (base, kver, sysmap string) {
	t.Helper()
	root, kver := os.Getenv(prefix+"_ROOT"), os.Getenv(prefix+"_KVER")
	if root == "" || kver == "" {
		t.Skipf("%s_ROOT and %s_KVER not set: no real Debian module tree", prefix, prefix)
	}
	base = filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(filepath.Join(base, "lib/modules"), 0o755); err != nil {
		t.Fatal(err)
	}
	mods := filepath.Join(root, "lib/modules", kver)
	if _, err := os.Stat(mods); err != nil {
		mods = filepath.Join(root, "usr/lib/modules", kver)
	}
	if out, err := exec.Command("cp", "-al", mods, filepath.Join(base, "lib/modules")).CombinedOutput(); err != nil {
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
	src, kver, sysmap := debianSource(t, "MODLOAD_DEBIAN")
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

// TestDebian13: on Debian 13's tree (4,230 .ko.xz), every index and
// message equals kmod 34's, cold and from the cache.
func TestDebian13(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the real tree takes seconds per run")
	}
	src, kver, _ := debianSource(t, "MODLOAD_DEBIAN13")
	k, why := findKmod34(t)
	if why != "" {
		t.Skip(why)
	}
	compare(t, k, src, "lib/modules/"+kver, true, "-b", "@W", kver)
}
