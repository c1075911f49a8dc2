package moddb

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var fixture = map[string]string{
	FileDep: "kernel/drivers/mod_b.ko: kernel/drivers/mod-a.ko kernel/lib/crc.ko\n" +
		"kernel/drivers/mod-a.ko: kernel/lib/crc.ko\nkernel/lib/crc.ko:\n/abs/extra/ext.ko:\n",
	FileAlias: "# Aliases extracted from modules themselves.\n" +
		"alias pci:v00001234d[0-9]* mod_b\nalias usb:v*p* mod_b\n" +
		"alias pci:v00001234d* mod_a\nalias pci:v0000123?d0000* mod_a\nalias fs-foo mod_a\nalias bad]x mod_a\n",
	FileSymbols: "# Aliases for symbols, used by symbol_request().\n" +
		"alias symbol:crc_fn crc\nalias symbol:foo_fn mod_a\n",
	FileBuiltin:   "kernel/fs/ext4/ext4.ko\nkernel/drivers/usb/usb-core.ko\n",
	FileModinfo:   "ext4.alias=fs-ext4\x00ext4.license=GPL\x00usb_core.alias=usb:v*p*d*\x00",
	FileDevname:   "# Device nodes to trigger on-demand module loading.\nmod_a foo c10:123\ncrc crcdev b7:0\n",
	FileOrder:     "kernel/drivers/mod_b.ko\nkernel/drivers/mod-a.ko\nkernel/lib/crc.ko\n",
	FileSoftdep:   "# Soft dependencies extracted from modules themselves.\n",
	"dummy.empty": "",
}

// fixtureDir writes the text files and, when bins is set, the .bin files
// in kmod 30's layout (children first) built from them.
func fixtureDir(t *testing.T, bins bool) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range fixture {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !bins {
		return dir
	}
	db, err := OpenOptions(dir, Options{Text: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range db.slots() {
		f, err := os.Open(filepath.Join(dir, s.text))
		if err != nil {
			t.Fatal(err)
		}
		tr, err := s.parse(f, f.Name())
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, s.name+".bin"), tr.encode(false), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// answers collects every lookup of the fixture.
func answers(t *testing.T, db *DB) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, n := range []string{"mod_b", "mod_a", "crc", "ext", "nomod"} {
		d, err := db.Dep(n)
		out["dep "+n] = []any{d, errors.Is(err, ErrNotFound)}
	}
	out["abs"] = []string{db.Abs("kernel/lib/crc.ko"), db.Abs("/abs/extra/ext.ko")}
	for _, k := range []string{"pci:v00001234d00001111", "pci:v00001234dX", "usb:v1p2", "fs_foo", "fs-foo", "none"} {
		v, err := db.Aliases(k)
		if err != nil {
			t.Fatal(err)
		}
		out["alias "+k] = v
		v, err = db.BuiltinAliases(k)
		if err != nil {
			t.Fatal(err)
		}
		out["builtin alias "+k] = v
	}
	for _, s := range []string{"crc_fn", "foo_fn", "nope", "*"} {
		v, err := db.Symbol(s)
		if err != nil {
			t.Fatal(err)
		}
		out["symbol "+s] = v
	}
	for _, m := range []string{"ext4", "usb_core", "usb-core", "crc"} {
		v, err := db.Builtin(m)
		if err != nil {
			t.Fatal(err)
		}
		out["builtin "+m] = v
	}
	out["dump"] = dumpIndexes(t, db)
	return out
}

// dumpIndexes is DumpAliases then DumpSymbols: what modprobe -c prints after its configuration.
func dumpIndexes(t testing.TB, db *DB) string {
	t.Helper()
	var dump bytes.Buffer
	if err := db.DumpAliases(&dump); err != nil {
		t.Fatal(err)
	}
	if err := db.DumpSymbols(&dump); err != nil {
		t.Fatal(err)
	}
	return dump.String()
}

// kmodDumpIndexes is the index dump of kmod's modprobe -c (no configuration) on the module
// directory of version under base.
func kmodDumpIndexes(t testing.TB, base, version string) string {
	t.Helper()
	out, err := exec.Command(needKmod(t, "modprobe"), "-C", "/dev/null", "-d", base, "-S", version, "-c").Output()
	if err != nil {
		t.Fatalf("modprobe -c: %v", err)
	}
	const sep = "# End of configuration files. Dumping indexes now:\n\n"
	_, dump, ok := bytes.Cut(out, []byte(sep))
	if !ok {
		t.Fatalf("modprobe -c output lacks %q", sep)
	}
	return string(dump)
}

func TestFixtureTextEqualsBin(t *testing.T) {
	dir := fixtureDir(t, true)
	bin, text := openBoth(t, dir)
	a, b := answers(t, bin), answers(t, text)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Fatalf("bin vs text (-bin +text):\n%s", diff)
	}
	// Spot checks that make the comparison meaningful.
	want := map[string]any{
		"dep mod_b": []any{Dep{Name: "mod_b", Path: "kernel/drivers/mod_b.ko",
			Deps: []string{"kernel/drivers/mod-a.ko", "kernel/lib/crc.ko"}}, false},
		"dep nomod":                    []any{Dep{}, true},
		"dep ext":                      []any{Dep{Name: "ext", Path: "/abs/extra/ext.ko"}, false},
		"abs":                          []string{dir + "/kernel/lib/crc.ko", "/abs/extra/ext.ko"},
		"alias pci:v00001234d00001111": []string{"mod_b", "mod_a", "mod_a"},
		"alias fs_foo":                 []string{"mod_a"},
		"alias fs-foo":                 []string(nil),
		"builtin alias usb:v1p2":       []string(nil),
		"symbol *":                     []string(nil),
		"builtin usb_core":             true,
		"builtin usb-core":             false,
		"dump": "alias fs_foo mod_a\nalias pci:v00001234d* mod_a\nalias pci:v00001234d[0-9]* mod_b\n" +
			"alias pci:v0000123?d0000* mod_a\nalias usb:v*p* mod_b\n" +
			"alias symbol:crc_fn crc\nalias symbol:foo_fn mod_a\n",
	}
	for k, w := range want {
		if diff := cmp.Diff(w, a[k]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", k, diff)
		}
	}
	info, err := bin.BuiltinModinfo("ext4")
	if err != nil || !cmp.Equal(info, []Info{{"alias", "fs-ext4"}, {"license", "GPL"}}) {
		t.Errorf("BuiltinModinfo(ext4) = %v, %v", info, err)
	}
	if _, err := bin.BuiltinModinfo("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("BuiltinModinfo(nope) error %v, want ErrNotFound", err)
	}
	devs, err := bin.Devnames()
	if err != nil || len(devs) != 2 || devs[1] != (Devname{"crc", "crcdev", 'b', 7, 0}) {
		t.Errorf("Devnames = %+v, %v", devs, err)
	}
	if got := bin.SoftdepFile(); got != filepath.Join(dir, FileSoftdep) {
		t.Errorf("SoftdepFile = %q", got)
	}
}

// TestConcurrentLookups: one DB serves many goroutines; text indexes are
// built once. Run with -race.
func TestConcurrentLookups(t *testing.T) {
	dir := fixtureDir(t, false)
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	want := answers(t, mustOpenText(t, dir))
	start := make(chan struct{})
	var wg sync.WaitGroup
	results := make([]map[string]any, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i] = answers(t, db)
		}()
	}
	close(start)
	wg.Wait()
	for i, r := range results {
		// db has no .bin files: its dumps are empty, as kmod's are.
		if r["dump"] != "" {
			t.Errorf("goroutine %d: dump without .bin = %q, want empty", i, r["dump"])
		}
		delete(r, "dump")
		w := maps(want)
		delete(w, "dump")
		if diff := cmp.Diff(w, r); diff != "" {
			t.Errorf("goroutine %d (-want +got):\n%s", i, diff)
		}
	}
}

func maps(m map[string]any) map[string]any {
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func mustOpenText(t *testing.T, dir string) *DB {
	db, err := OpenOptions(dir, Options{Text: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestOpenErrorsAndEmptyBin(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(missing) error %v, want ErrNotExist", err)
	}
	dir := fixtureDir(t, true)
	// A zero-length .bin maps to an empty slice and is a format error.
	if err := os.WriteFile(filepath.Join(dir, "modules.alias.bin"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = db.Aliases("x")
	var fe *FormatError
	if !errors.As(err, &fe) || fe.File != filepath.Join(dir, "modules.alias.bin") {
		t.Errorf("Aliases on empty .bin: %v, want *FormatError for the file", err)
	}
	// Other indexes still answer.
	if _, err := db.Dep("crc"); err != nil {
		t.Errorf("Dep(crc): %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Dep("crc"); err == nil {
		t.Error("Dep after Close succeeded")
	}
}

// TestWarnDegrades: with Options.Warn, an index that cannot be read is reported once, naming
// the file and the cause, and answers nothing, while the other indexes keep answering (kmod
// logs the magic error and loads); a dump writes the lines before a corrupt node and the next
// dump still runs.
func TestWarnDegrades(t *testing.T) {
	dir := fixtureDir(t, true)
	builtin := filepath.Join(dir, FileBuiltin+".bin")
	data, err := os.ReadFile(builtin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(builtin, put32(data, 0, 0xdeadbeef), 0o644); err != nil {
		t.Fatal(err)
	}
	// modules.alias.bin with the root moved past the end: kmod 30's layout puts the root last,
	// so a truncated file loses it.
	alias := filepath.Join(dir, FileAlias+".bin")
	if data, err = os.ReadFile(alias); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(alias, data[:len(data)-1], 0o644); err != nil {
		t.Fatal(err)
	}
	var warned []string
	db, err := OpenOptions(dir, Options{Warn: func(err error) { warned = append(warned, err.Error()) }})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for range 2 {
		if ok, err := db.Builtin("ext4"); ok || err != nil {
			t.Errorf("Builtin(ext4) on a bad magic = %v, %v; want false, nil", ok, err)
		}
		if v, err := db.Aliases("fs-foo"); v != nil || err != nil {
			t.Errorf("Aliases(fs-foo) on a truncated index = %q, %v; want nothing", v, err)
		}
	}
	if d, err := db.Dep("crc"); err != nil || d.Path != "kernel/lib/crc.ko" {
		t.Errorf("Dep(crc) beside the bad indexes = %+v, %v", d, err)
	}
	if v, err := db.Symbol("foo_fn"); err != nil || len(v) != 1 || v[0] != "mod_a" {
		t.Errorf("Symbol(foo_fn) beside the bad indexes = %q, %v", v, err)
	}
	if len(warned) != 2 || warned[0] != builtin+": offset 0x0: magic check fail: deadbeef instead of b007f457" ||
		!strings.HasPrefix(warned[1], alias+": offset ") {
		t.Errorf("warnings %q, want the bad magic of %s and the corrupt node of %s, once each", warned, builtin, alias)
	}
	var dump bytes.Buffer
	if err := db.DumpAliases(&dump); err != nil {
		t.Errorf("DumpAliases on a broken index: %v", err)
	}
	if err := db.DumpSymbols(&dump); err != nil {
		t.Fatal(err)
	}
	if got := dump.String(); got != "alias symbol:crc_fn crc\nalias symbol:foo_fn mod_a\n" {
		t.Errorf("dump = %q, want the symbols only", got)
	}
}

func TestLayout(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"lib/modules/both", "usr/lib/modules/both", "usr/lib/modules/usr", "lib/modules/lib"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "lib/modules/file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for version, want := range map[string]string{
		"both": root + "/lib/modules/both",
		"usr":  root + "/usr/lib/modules/usr",
		"lib":  root + "/lib/modules/lib",
		"none": root + "/lib/modules/none",
		"file": root + "/lib/modules/file", // not a directory in either: kmod's spelling
	} {
		if got := Layout(root, version); got != want {
			t.Errorf("Layout(%q) = %q, want %q", version, got, want)
		}
	}
	if got, want := Dir(root+"/", "usr"), root+"/usr/lib/modules/usr"; got != want {
		t.Errorf("Dir = %q, want %q", got, want)
	}
	if got, want := Dir("/", "none-such"), "/lib/modules/none-such"; got != want {
		t.Errorf("Dir = %q, want %q", got, want)
	}
}

// TestPreload: Preload reads every index at once: after it the files can go and the lookups
// still answer from what it read; a corrupt index is its error, naming the file, and the
// lookups that need it report it as before.
func TestPreload(t *testing.T) {
	// The answers of an untouched tree, from its .bin files and from its text.
	refBin, refText := openBoth(t, fixtureDir(t, true))
	for _, bins := range []bool{true, false} {
		dir := fixtureDir(t, bins)
		db, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		ref := refText
		if bins {
			ref = refBin
		}
		want := answers(t, ref)
		if err := db.Preload(); err != nil {
			t.Fatalf("bins %v: Preload: %v", bins, err)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		got := answers(t, db)
		// The directories differ; a dump checks that the .bin is still there (kmod's
		// modprobe -c dumps only a .bin index).
		for _, k := range []string{"abs", "dump"} {
			delete(want, k)
			delete(got, k)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("bins %v: lookups after Preload and the files removed (-want +got):\n%s", bins, d)
		}
		db.Close()
	}
	dir := fixtureDir(t, true)
	alias := filepath.Join(dir, FileAlias+".bin")
	if err := os.WriteFile(alias, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var fe *FormatError
	if err := db.Preload(); !errors.As(err, &fe) || fe.File != alias {
		t.Errorf("Preload with an empty %s: %v, want its *FormatError", alias, err)
	}
	if _, err := db.Aliases("x"); !errors.As(err, &fe) {
		t.Errorf("Aliases after Preload: %v, want the *FormatError", err)
	}
	if _, err := db.Dep("crc"); err != nil {
		t.Errorf("Dep(crc) beside the broken index: %v", err)
	}
}
