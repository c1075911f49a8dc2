package depmod_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/modload/modload/depmod"
)

// benchTree returns the module directory base and kernel version of a real
// Debian tree (PREFIX_ROOT, PREFIX_KVER), or skips.
func benchTree(b *testing.B, prefix string) (base, kver string) {
	b.Helper()
	root, kver := os.Getenv(prefix+"_ROOT"), os.Getenv(prefix+"_KVER")
	if root == "" || kver == "" {
		b.Skipf("%s_ROOT and %s_KVER not set: no real Debian module tree", prefix, prefix)
	}
	if _, err := os.Stat(filepath.Join(root, "lib/modules", kver)); err != nil {
		b.Skipf("no lib/modules/%s under %s", kver, root)
	}
	return root, kver
}

// benchCold is one cold run (no cache) over a real tree per iteration,
// every index written to a temporary directory.
func benchCold(b *testing.B, prefix string) {
	base, kver := benchTree(b, prefix)
	out := b.TempDir()
	b.ReportAllocs()
	for b.Loop() {
		err := depmod.Run(&depmod.Options{Base: base, OutBase: out, Version: kver, NoCache: true})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDebian12Cold: Debian 12's tree, 4,023 plain .ko.
func BenchmarkDebian12Cold(b *testing.B) { benchCold(b, "MODLOAD_DEBIAN") }

// BenchmarkDebian13Cold: Debian 13's tree, 4,230 .ko.xz.
func BenchmarkDebian13Cold(b *testing.B) { benchCold(b, "MODLOAD_DEBIAN13") }
