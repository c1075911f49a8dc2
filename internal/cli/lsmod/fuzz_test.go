package lsmod

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLsmod feeds arbitrary /proc/modules, refcnt and coresize files to lsmod: it never
// panics, always succeeds, prints the header first and one line per module name.
func FuzzLsmod(f *testing.F) {
	f.Add("ext4 1007616 1 - Live 0x0\nmbcache 16384 1 ext4, Live 0x0\n", []byte("1\n"), []byte("1007616\n"))
	f.Add("x 1\n\n  word", []byte(" -3"), []byte("abc\n"))
	f.Fuzz(func(t *testing.T, procs string, refcnt, coresize []byte) {
		root := t.TempDir()
		for _, d := range []string{"proc", "sys/module/ext4"} {
			if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for name, data := range map[string][]byte{"proc/modules": []byte(procs), "sys/module/ext4/refcnt": refcnt, "sys/module/ext4/coresize": coresize} {
			if err := os.WriteFile(filepath.Join(root, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got := runOurs(releases[1], root, "lsmod")
		if got30 := runOurs(releases[0], root, "lsmod"); got30.Stdout != got.Stdout || got30.Code != got.Code {
			t.Fatalf("kmod 30 and kmod 34 lsmod print different tables:\n%+v\n%+v", got30, got)
		}
		if got.Code != 0 || !strings.HasPrefix(got.Stdout, "Module                  Size  Used by\n") {
			t.Fatalf("lsmod = %+v", got)
		}
		names := firstWords(procs)
		lines := 1 + len(names)
		for _, n := range names {
			lines += strings.Count(n, "\n")
		}
		if c := strings.Count(got.Stdout, "\n"); c != lines {
			t.Fatalf("%d output lines for %d names %q:\n%s", c, len(names), names, got.Stdout)
		}
	})
}
