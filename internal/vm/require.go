package vm

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modload/modload/internal/debian"
)

// Require returns Debian 12's tree for a VM test, or skips the test with the reason it cannot
// run (qemu, kmod, busybox, go or the tree missing). With MODLOAD_TEST_REQUIRE_VM=1 (CI) a
// missing piece fails the test instead.
func Require(tb testing.TB) debian.Tree {
	tb.Helper()
	requireTools(tb)
	t, ok := debian.FromEnv()
	if !ok {
		missVM(tb, "MODLOAD_DEBIAN_ROOT/MODLOAD_DEBIAN_KVER unset (go run ./internal/debian/cmd/debtree)")
	}
	if _, err := os.Stat(t.Vmlinuz); err != nil {
		missVM(tb, "kernel image: "+err.Error())
	}
	return t
}

// Kernels returns the kernels every VM test runs on: Debian 12's 6.1 (with the host's kmod 30
// in the guest) and Debian 13's 6.12 (kmod 34), or skips (fails under MODLOAD_TEST_REQUIRE_VM=1)
// when one is missing. MODLOAD_VM_KERNELS=6.1 (or 6.12) narrows the list for a quick run.
func Kernels(tb testing.TB) []debian.Tree {
	tb.Helper()
	var out []debian.Tree
	for _, name := range kernelNames() {
		switch name {
		case "6.1":
			out = append(out, Require(tb))
		case "6.12":
			requireTools(tb)
			t, ok := debian.FromEnv13()
			if !ok {
				missVM(tb, "MODLOAD_DEBIAN13_ROOT/MODLOAD_DEBIAN13_KVER/MODLOAD_KMOD34_ROOT unset (go run ./internal/debian/cmd/debtree)")
			}
			if _, err := os.Stat(t.Vmlinuz); err != nil {
				missVM(tb, "Debian 13 kernel image: "+err.Error())
			}
			out = append(out, t)
		default:
			tb.Fatalf("MODLOAD_VM_KERNELS: unknown kernel %q (want 6.1 or 6.12)", name)
		}
	}
	return out
}

func kernelNames() []string {
	if s := os.Getenv("MODLOAD_VM_KERNELS"); s != "" {
		return strings.Split(s, ",")
	}
	return []string{"6.1", "6.12"}
}

// KernelName is a tree's kernel as the VM tests name their subtests: "6.1", "6.12".
func KernelName(t debian.Tree) string {
	f := strings.SplitN(t.KVer, ".", 3)
	if len(f) < 2 {
		return t.KVer
	}
	n := f[1]
	if i := strings.IndexFunc(n, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		n = n[:i]
	}
	return f[0] + "." + n
}

// GuestEnv is the environment modload's tools get in a guest of t: MODLOAD_KMOD_COMPAT=30 where
// the guest's kmod (the baseline) is kmod 30, nothing where it is kmod 34.
func GuestEnv(t debian.Tree) []string {
	if t.Kmod == "" {
		return []string{"MODLOAD_KMOD_COMPAT=30"}
	}
	return nil
}

// KernelDecompresses returns the module compression t's kernel decompresses itself ("xz",
// "zstd", "gzip"; "" for none), from its boot/config-KVER.
func KernelDecompresses(t debian.Tree) string {
	f, err := os.Open(filepath.Join(t.Root, "boot", "config-"+t.KVer))
	if err != nil {
		return ""
	}
	defer f.Close()
	return configDecompresses(bufio.NewScanner(f))
}

// configDecompresses reads a kernel .config: with CONFIG_MODULE_DECOMPRESS=y, the format of the
// CONFIG_MODULE_COMPRESS_* choice.
func configDecompresses(s *bufio.Scanner) string {
	on, format := false, ""
	for s.Scan() {
		switch s.Text() {
		case "CONFIG_MODULE_DECOMPRESS=y":
			on = true
		case "CONFIG_MODULE_COMPRESS_XZ=y":
			format = "xz"
		case "CONFIG_MODULE_COMPRESS_ZSTD=y":
			format = "zstd"
		case "CONFIG_MODULE_COMPRESS_GZIP=y":
			format = "gzip"
		}
	}
	if !on {
		return ""
	}
	return format
}

func requireTools(tb testing.TB) {
	tb.Helper()
	for _, bin := range []string{"qemu-system-x86_64", "go", "ldd", "depmod", "modprobe"} {
		if _, err := exec.LookPath(bin); err != nil {
			missVM(tb, bin+" not found in PATH")
		}
	}
	for _, f := range []string{"/usr/bin/kmod", "/bin/busybox"} {
		if _, err := os.Stat(f); err != nil {
			missVM(tb, f+" missing (apt-get install kmod busybox-static)")
		}
	}
}

func missVM(tb testing.TB, reason string) {
	tb.Helper()
	if os.Getenv("MODLOAD_TEST_REQUIRE_VM") == "1" {
		tb.Fatalf("VM test cannot run (MODLOAD_TEST_REQUIRE_VM=1): %s", reason)
	}
	tb.Skipf("VM test skipped: %s (set MODLOAD_TEST_REQUIRE_VM=1 to fail instead)", reason)
}
