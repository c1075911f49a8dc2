package moddb

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const synthVersion = "6.1.0-test"

// Tiny modules: gcc -c on a .modinfo section gives a .ko kmod reads.
var synthSources = map[string]string{
	"mod-a.ko": `static const char ks[] __attribute__((section("__ksymtab_strings"),used,aligned(1))) = "foo_fn\0bar_fn";
static const char m1[] __attribute__((section(".modinfo"),used,aligned(1))) = "alias=pci:v00001234d*";
static const char m2[] __attribute__((section(".modinfo"),used,aligned(1))) = "alias=pci:v0000123?d0000*";
static const char m3[] __attribute__((section(".modinfo"),used,aligned(1))) = "alias=devname:foo-ctl";
static const char m4[] __attribute__((section(".modinfo"),used,aligned(1))) = "alias=char-major-10-123";
`,
	"mod_b.ko": `extern void foo_fn(void);
void *ref = foo_fn;
static const char m1[] __attribute__((section(".modinfo"),used,aligned(1))) = "alias=pci:v00001234d[0-9]*";
static const char m2[] __attribute__((section(".modinfo"),used,aligned(1))) = "alias=usb:v*p*";
`,
}

// synthTree builds a module tree with gcc and kmod's depmod and returns
// its base directory.
func synthTree(t *testing.T) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not found: cannot build synthetic modules")
	}
	depmod := needKmod(t, "depmod")
	base := t.TempDir()
	dir := Dir(base, synthVersion)
	drv := filepath.Join(dir, "kernel", "drivers")
	if err := os.MkdirAll(drv, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, src := range synthSources {
		c := filepath.Join(base, name+".c")
		if err := os.WriteFile(c, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(gcc, "-c", c, "-o", filepath.Join(drv, name)).CombinedOutput(); err != nil {
			t.Fatalf("gcc: %v\n%s", err, out)
		}
	}
	files := map[string]string{
		FileOrder:   "kernel/drivers/mod_b.ko\nkernel/drivers/mod-a.ko\n",
		FileBuiltin: "kernel/fs/ext4/ext4.ko\nkernel/drivers/usb/usbcore.ko\n",
		FileModinfo: "ext4.alias=fs-ext4\x00ext4.description=Fourth Extended Filesystem\x00" +
			"usbcore.alias=usb:v*p*d*\x00usbcore.license=GPL\x00" +
			"ext4.alias=foo:*\x00usbcore.alias=foo:a*\x00usbcore.alias=foo:?b*\x00",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command(depmod, "-b", base, synthVersion).CombinedOutput(); err != nil {
		t.Fatalf("depmod: %v\n%s", err, out)
	}
	return base
}

func kmodLines(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command(needKmod(t, "modprobe"), append([]string{"-C", "/dev/null"}, args...)...).Output()
	if err != nil {
		t.Fatalf("modprobe %q: %v", args, err)
	}
	return strings.Fields(string(out))
}

func TestSyntheticTree(t *testing.T) {
	base := synthTree(t)
	dir := Dir(base, synthVersion)
	bin, text := openBoth(t, dir)
	resolve := func(key string) []string { return kmodLines(t, "-d", base, "-S", synthVersion, "-R", key) }

	for name, db := range map[string]*DB{"bin": bin, "text": text} {
		t.Run(name, func(t *testing.T) {
			dep, err := db.Dep("mod_b")
			if err != nil {
				t.Fatal(err)
			}
			want := Dep{Name: "mod_b", Path: "kernel/drivers/mod_b.ko", Deps: []string{"kernel/drivers/mod-a.ko"}}
			if diff := cmp.Diff(want, dep); diff != "" {
				t.Errorf("Dep(mod_b) (-want +got):\n%s", diff)
			}
			if got, want := db.Abs(dep.Deps[0]), dir+"/kernel/drivers/mod-a.ko"; got != want {
				t.Errorf("Abs = %q, want %q", got, want)
			}
			// Two patterns of mod_a and one of mod_b match: kmod's order.
			for _, key := range []string{"pci:v00001234d00001111", "pci:v00001234dX", "usb:v1p2d3", "char_major_10_123", "devname:foo_ctl"} {
				got, err := db.Aliases(key)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(resolve(key), got); diff != "" {
					t.Errorf("Aliases(%q) vs modprobe -R (-kmod +moddb):\n%s", key, diff)
				}
			}
			if got, _ := db.Aliases("pci:v00005678d1"); len(got) != 0 {
				t.Errorf("Aliases(no match) = %q", got)
			}
			sym, err := db.Symbol("foo_fn")
			if err != nil || !cmp.Equal(sym, []string{"mod_a"}) {
				t.Errorf("Symbol(foo_fn) = %q, %v; want [mod_a]", sym, err)
			}
			for mod, want := range map[string]bool{"ext4": true, "usbcore": true, "mod_a": false, "ext": false} {
				if got, err := db.Builtin(mod); err != nil || got != want {
					t.Errorf("Builtin(%q) = %v, %v; want %v", mod, got, err, want)
				}
			}
			if got, err := db.BuiltinAliases("fs_ext4"); err != nil || !cmp.Equal(got, resolve("fs-ext4")) {
				t.Errorf("BuiltinAliases(fs_ext4) = %q, %v; kmod says %q", got, err, resolve("fs-ext4"))
			}
			// Equal priorities (all builtin aliases have 0): kmod's order.
			for _, key := range []string{"foo:abc", "foo:zbc", "foo:z"} {
				got, err := db.BuiltinAliases(key)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(resolve(key), got); diff != "" {
					t.Errorf("BuiltinAliases(%q) vs modprobe -R (-kmod +moddb):\n%s", key, diff)
				}
			}
			if got, _ := db.BuiltinAliases("usb:v1p2d3"); !cmp.Equal(got, []string{"usbcore"}) {
				t.Errorf("BuiltinAliases(usb:v1p2d3) = %q, want [usbcore]", got)
			}
			info, err := db.BuiltinModinfo("ext4")
			// kmod's modinfo reads a builtin's first run of records: "ext4.alias=foo:*",
			// after other modules' records, is an alias (BuiltinAliases) but not modinfo.
			wantInfo := []Info{{"alias", "fs-ext4"}, {"description", "Fourth Extended Filesystem"}}
			if err != nil || !cmp.Equal(info, wantInfo) {
				t.Errorf("BuiltinModinfo(ext4) = %v, %v; want %v", info, err, wantInfo)
			}
			devs, err := db.Devnames()
			wantDevs := []Devname{{Module: "mod_a", Name: "foo-ctl", Type: 'c', Major: 10, Minor: 123}}
			if diff := cmp.Diff(wantDevs, devs); err != nil || diff != "" {
				t.Errorf("Devnames: %v (-want +got):\n%s", err, diff)
			}
			order, err := db.Order()
			if err != nil || !cmp.Equal(order, []string{"kernel/drivers/mod_b.ko", "kernel/drivers/mod-a.ko"}) {
				t.Errorf("Order() = %q, %v", order, err)
			}
			if diff := cmp.Diff(kmodDumpIndexes(t, base, synthVersion), dumpIndexes(t, db)); diff != "" {
				t.Errorf("dump vs modprobe -c (-kmod +moddb):\n%s", diff)
			}
		})
	}
}

// TestWriterMatchesDepmod proves the trie built from text is the one depmod
// builds: laid out children-first (kmod 30's order) it is byte-identical to
// the .bin files depmod wrote, for the indexes whose priorities the text
// determines completely.
func TestWriterMatchesDepmod(t *testing.T) {
	t.Run("synthetic", func(t *testing.T) { checkWriter(t, Dir(synthTree(t), synthVersion)) })
	t.Run("debian", func(t *testing.T) {
		root, kver := debianTree(t)
		checkWriter(t, Dir(root, kver))
	})
}

func checkWriter(t *testing.T, dir string) {
	for _, c := range []struct {
		bin, text string
		parse     func(r *os.File, f string) (*trie, error)
	}{
		{"modules.dep.bin", FileDep, func(r *os.File, f string) (*trie, error) { return parseDep(r, f) }},
		{"modules.builtin.bin", FileBuiltin, func(r *os.File, f string) (*trie, error) { return parseBuiltin(r, f) }},
		{"modules.builtin.alias.bin", FileModinfo, func(r *os.File, f string) (*trie, error) { return parseBuiltinAlias(r, f) }},
	} {
		want, err := os.ReadFile(filepath.Join(dir, c.bin))
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(filepath.Join(dir, c.text))
		if err != nil {
			t.Fatal(err)
		}
		tr, err := c.parse(f, f.Name())
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := tr.encode(false); !bytes.Equal(got, want) {
			t.Errorf("%s: post-order encoding of %s differs from depmod's (%d vs %d bytes)", c.bin, c.text, len(got), len(want))
		}
	}
}

// TestMissingBin: without .bin files kmod answers nothing and dumps nothing;
// moddb's lookups fall back to text while its dumps stay empty like kmod's.
func TestMissingBin(t *testing.T) {
	base := synthTree(t)
	dir := Dir(base, synthVersion)
	bins, _ := filepath.Glob(filepath.Join(dir, "*.bin"))
	if len(bins) != 5 {
		t.Fatalf("depmod wrote %d .bin files, want 5", len(bins))
	}
	for _, b := range bins {
		if err := os.Remove(b); err != nil {
			t.Fatal(err)
		}
	}
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if s := db.Source(FileAlias); s != filepath.Join(dir, FileAlias) {
		t.Errorf("Source(alias) = %q", s)
	}
	got, err := db.Aliases("pci:v00001234d00001111")
	if err != nil || !cmp.Equal(got, []string{"mod_b", "mod_a", "mod_a"}) {
		t.Errorf("text fallback Aliases = %q, %v", got, err)
	}
	if dump, wantDump := dumpIndexes(t, db), kmodDumpIndexes(t, base, synthVersion); dump != wantDump {
		t.Errorf("dump without .bin = %q, kmod prints %q", dump, wantDump)
	}
}
