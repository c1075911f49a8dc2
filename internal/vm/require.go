package vm

import (
	"os"
	"os/exec"
	"testing"

	"github.com/modload/modload/internal/debian"
)

// Require returns the Debian tree for a VM test, or skips the test with the reason it cannot run
// (qemu, kmod, busybox, go or the tree missing). With MODLOAD_TEST_REQUIRE_VM=1 (CI) a missing
// piece fails the test instead.
func Require(tb testing.TB) debian.Tree {
	tb.Helper()
	miss := func(reason string) {
		tb.Helper()
		if os.Getenv("MODLOAD_TEST_REQUIRE_VM") == "1" {
			tb.Fatalf("VM test cannot run (MODLOAD_TEST_REQUIRE_VM=1): %s", reason)
		}
		tb.Skipf("VM test skipped: %s (set MODLOAD_TEST_REQUIRE_VM=1 to fail instead)", reason)
	}
	for _, bin := range []string{"qemu-system-x86_64", "go", "ldd", "depmod", "modprobe"} {
		if _, err := exec.LookPath(bin); err != nil {
			miss(bin + " not found in PATH")
		}
	}
	for _, f := range []string{"/usr/bin/kmod", "/bin/busybox"} {
		if _, err := os.Stat(f); err != nil {
			miss(f + " missing (apt-get install kmod busybox-static)")
		}
	}
	t, ok := debian.FromEnv()
	if !ok {
		miss("MODLOAD_DEBIAN_ROOT/MODLOAD_DEBIAN_KVER unset (eval \"$(go run ./internal/debian/cmd/debtree)\")")
	}
	if _, err := os.Stat(t.Vmlinuz); err != nil {
		miss("kernel image: " + err.Error())
	}
	return t
}
