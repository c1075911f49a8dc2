package difftest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPairEnviron(t *testing.T) {
	env := []string{"PATH=/bin", CompatEnv + "=99"}
	if got := (Pair{}).Environ(env); !cmp.Equal(got, []string{"PATH=/bin", CompatEnv + "=30"}) {
		t.Errorf("kmod 30 pair: %q", got)
	}
	if got := (Pair{Kmod34: "/k"}).Environ(env); !cmp.Equal(got, []string{"PATH=/bin"}) {
		t.Errorf("kmod 34 pair: %q", got)
	}
	if env[1] != CompatEnv+"=99" {
		t.Error("Environ changed its argument")
	}
}

func TestPairCommand(t *testing.T) {
	if got := (Pair{}).Command("/sbin/modprobe", "-D", "x").Args; !cmp.Equal(got, []string{"/sbin/modprobe", "-D", "x"}) {
		t.Errorf("kmod 30: %q", got)
	}
	got := (Pair{Kmod34: "/k"}).Command("/sbin/modprobe", "-D", "x").Args
	want := []string{"/k/usr/lib64/ld-linux-x86-64.so.2", "--library-path", "/k/usr/lib/x86_64-linux-gnu", "--argv0", "/sbin/modprobe", "/k/usr/bin/kmod", "-D", "x"}
	if !cmp.Equal(got, want) {
		t.Errorf("kmod 34 (-want +got):\n%s", cmp.Diff(want, got))
	}
}

// fakeTB records what Pairs does instead of skipping or failing.
type fakeTB struct{ skipped, failed string }

func (f *fakeTB) Helper()                   {}
func (f *fakeTB) Skip(args ...any)          { f.skipped = args[0].(string) }
func (f *fakeTB) Skipf(string, ...any)      { f.skipped = "skipf" }
func (f *fakeTB) Fatalf(s string, a ...any) { f.failed = s }

func TestPairs(t *testing.T) {
	k34 := t.TempDir()
	if err := os.MkdirAll(filepath.Join(k34, "usr/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(k34, "usr/bin/kmod"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MODLOAD_DEBIAN_ROOT", "/d12")
	t.Setenv("MODLOAD_DEBIAN_KVER", "6.1.0-1-amd64")
	t.Setenv("MODLOAD_DEBIAN13_ROOT", "/d13")
	t.Setenv("MODLOAD_DEBIAN13_KVER", "6.12.1+deb13-amd64")
	t.Setenv("MODLOAD_KMOD34_ROOT", k34)
	t.Setenv("MODLOAD_ORACLES", "")
	t.Setenv("MODLOAD_TEST_REQUIRE_DEBIAN", "1")
	d12, d13 := Tree{"/d12", "6.1.0-1-amd64"}, Tree{"/d13", "6.12.1+deb13-amd64"}
	f := &fakeTB{}
	want := []Pair{{PairKmod34Deb13, d13, k34}, {PairKmod34Deb12, d12, k34}, {PairKmod30Deb12, d12, ""}}
	if got := Pairs(f); !cmp.Equal(got, want) || f.failed != "" {
		t.Errorf("all three: %+v (failed %q)", got, f.failed)
	}
	t.Setenv("MODLOAD_ORACLES", PairKmod30Deb12)
	if got := Pairs(f); !cmp.Equal(got, want[2:]) {
		t.Errorf("MODLOAD_ORACLES=%s: %+v", PairKmod30Deb12, got)
	}
	// Without kmod 34, the pairs that need it fail the test where the trees are required...
	t.Setenv("MODLOAD_ORACLES", "")
	t.Setenv("MODLOAD_KMOD34_ROOT", "")
	f = &fakeTB{}
	if got := Pairs(f); !cmp.Equal(got, want[2:]) || f.failed == "" {
		t.Errorf("without kmod 34: %+v, failed %q", got, f.failed)
	}
	// ... and skip it elsewhere.
	t.Setenv("MODLOAD_TEST_REQUIRE_DEBIAN", "")
	f = &fakeTB{}
	if Pairs(f); f.skipped == "" || f.failed != "" {
		t.Errorf("without kmod 34, not required: skipped %q failed %q", f.skipped, f.failed)
	}
}

// TestRunInTreeAs runs kmod 34's lsmod over a fixture /proc/modules in a mount namespace.
func TestRunInTreeAs(t *testing.T) {
	root34 := os.Getenv("MODLOAD_KMOD34_ROOT")
	if root34 == "" {
		t.Skip("MODLOAD_KMOD34_ROOT unset")
	}
	root := t.TempDir()
	for _, d := range []string{"proc", "sys/module/e1000/holders"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "proc/modules"), []byte("e1000 180224 0 - Live 0x0000000000000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for f, v := range map[string]string{"sys/module/e1000/refcnt": "0\n", "sys/module/e1000/initstate": "live\n"} {
		if err := os.WriteFile(filepath.Join(root, f), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := RunInTreeAs(t, Pair{Kmod34: root34}, root, "lsmod")
	want := "Module                  Size  Used by\ne1000                 180224  0\n"
	if r.Stdout != want || r.Code != 0 {
		t.Errorf("kmod 34 lsmod = %+v, want stdout %q", r, want)
	}
}
