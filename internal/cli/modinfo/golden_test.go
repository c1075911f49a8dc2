package modinfo

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/modload/modload/internal/cli"
	"golang.org/x/tools/txtar"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from kmod's modinfo (needs kmod)")

// goldenCases run against testdata/tree; $TREE is the tree's absolute path, $MODS its module
// directory. The golden files hold what kmod 30's modinfo printed for them.
var goldenCases = []struct {
	name string
	args string
}{
	{"path", "$MODS/kernel/drivers/foo-bar.ko"},
	{"path-relative", "testdata/tree/lib/modules/1.0-test/kernel/drivers/foo-bar.ko"},
	{"path-signed", "$MODS/kernel/drivers/signed.ko"},
	{"path-xz", "$MODS/kernel/drivers/xzmod.ko.xz"},
	{"path-zst", "$MODS/kernel/drivers/zstmod.ko.zst"},
	{"path-null", "-0 $MODS/kernel/drivers/signed.ko"},
	{"path-nomodinfo", "$MODS/kernel/drivers/nomodinfo.ko"},
	{"path-nomodinfo-filename", "-n $MODS/kernel/drivers/nomodinfo.ko"},
	{"field-parm", "-p $MODS/kernel/drivers/foo-bar.ko"},
	{"field-parm-null", "-0 -p $MODS/kernel/drivers/foo-bar.ko"},
	{"field-alias", "-F alias $MODS/kernel/drivers/foo-bar.ko"},
	{"field-signature", "--field signature $MODS/kernel/drivers/signed.ko"},
	{"field-sig-key", "--field=sig_key $MODS/kernel/drivers/signed.ko"},
	{"field-last-wins", "-a -d -l $MODS/kernel/drivers/foo-bar.ko"},
	{"field-noequals", "-F noequals $MODS/kernel/drivers/foo-bar.ko"},
	{"options-after", "$MODS/kernel/drivers/foo-bar.ko -F name"},
	{"two-files", "$MODS/kernel/drivers/foo-bar.ko $MODS/kernel/drivers/nomodinfo.ko"},
	{"name", "-b $TREE -k 1.0-test foo_bar"},
	{"name-dash", "-b $TREE -k 1.0-test foo-bar"},
	{"name-m", "-m -b $TREE -k 1.0-test foo-bar.ko"},
	{"name-compressed", "-b $TREE -k 1.0-test xzmod"},
	{"name-missing", "-b $TREE -k 1.0-test nosuch"},
	{"name-m-missing", "-m -b $TREE -k 1.0-test nosuch"},
	{"name-bad-alias", "-b $TREE -k 1.0-test bad[x"},
	{"builtin", "-b $TREE -k 1.0-test builtin_one"},
	{"builtin-dash", "--basedir=$TREE --set-version=1.0-test builtin-one"},
	{"builtin-no-modinfo", "-b $TREE -k 1.0-test builtin_two"},
	{"builtin-name", "-F name -b $TREE -k 1.0-test builtin_one"},
	{"builtin-filename", "-n -b $TREE -k 1.0-test builtin_one"},
	{"builtin-parm", "-p -b $TREE -k 1.0-test builtin_one"},
	{"builtin-null", "-0 -b $TREE -k 1.0-test builtin_one"},
	{"no-args", ""},
	{"help", "-h"},
	{"help-long-prefix", "--he"},
	{"bad-short", "-x"},
	{"bad-long", "--nope"},
	{"ambiguous", "--f x"},
	{"missing-arg", "foo -F"},
	{"arg-not-allowed", "--null=1 x"},
	{"help-before-error", "-h -x"},
	{"double-dash", "-- -a"},
	{"missing-file", "$TREE/missing.ko"},
}

// noNewline marks a golden file whose content has no final newline.
const noNewline = " (no final newline)"

func treeDir(t *testing.T) string {
	abs, err := filepath.Abs("testdata/tree")
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func expand(args, tree string) []string {
	args = strings.ReplaceAll(args, "$MODS", tree+"/lib/modules/1.0-test")
	args = strings.ReplaceAll(args, "$TREE", tree)
	return strings.Fields(args)
}

func TestGolden(t *testing.T) {
	tree := treeDir(t)
	var bin []string
	if *update {
		bin = []string{kmodModinfo(t)}
	}
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			args := expand(tc.args, tree)
			golden := filepath.Join("testdata", "golden", tc.name+".txtar")
			if *update {
				r := runKmod(t, bin, args...)
				a := &txtar.Archive{Comment: []byte("modinfo " + tc.args + "\n")}
				for _, f := range []txtar.File{
					{Name: "stdout", Data: []byte(strings.ReplaceAll(r.stdout, tree, "$TREE"))},
					{Name: "stderr", Data: []byte(strings.ReplaceAll(r.stderr, tree, "$TREE"))},
					{Name: "exit", Data: []byte(strconv.Itoa(r.code) + "\n")},
				} {
					if len(f.Data) > 0 && f.Data[len(f.Data)-1] != '\n' {
						// txtar would add a newline: mark the file and drop it when reading.
						f.Name += noNewline
						f.Data = append(f.Data, '\n')
					}
					a.Files = append(a.Files, f)
				}
				os.MkdirAll(filepath.Dir(golden), 0o755)
				if err := os.WriteFile(golden, txtar.Format(a), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			a, err := txtar.ParseFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			want := result{}
			for _, f := range a.Files {
				s := strings.ReplaceAll(string(f.Data), "$TREE", tree)
				if name, ok := strings.CutSuffix(f.Name, noNewline); ok {
					f.Name, s = name, strings.TrimSuffix(s, "\n")
				}
				switch f.Name {
				case "stdout":
					want.stdout = s
				case "stderr":
					want.stderr = s
				case "exit":
					want.code, _ = strconv.Atoi(strings.TrimSpace(s))
				}
			}
			got := runOurs(args...)
			compare(t, args, want, got)
		})
	}
}

// A tree without modules.builtin.modinfo (kernels before 5.2): kmod shows a builtin module's
// name and filename and succeeds; so must modinfo by name, through Main's resolver.
func TestBuiltinWithoutModinfoFile(t *testing.T) { forReleases(t, testBuiltinWithoutModinfoFile) }

func testBuiltinWithoutModinfoFile(t *testing.T, rel release) {
	bin := rel.kmod(t)
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS(treeDir(t))); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, "lib/modules/1.0-test/modules.builtin.modinfo")); err != nil {
		t.Fatal(err)
	}
	args := []string{"-b", root, "-k", "1.0-test", "builtin_one"}
	want, got := runKmod(t, bin, args...), rel.ours(args...)
	if want.code != 0 || !strings.Contains(want.stdout, "(builtin)") {
		t.Fatalf("kmod: %+v; want success naming a builtin", want)
	}
	compare(t, args, want, got)
}

// modload reads gzip modules (Debian's kmod 30 does not): same output as the plain file.
func TestGzipModule(t *testing.T) {
	tree := treeDir(t)
	plain := tree + "/lib/modules/1.0-test/kernel/drivers/signed.ko"
	data, err := os.ReadFile(plain)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write(data)
	w.Close()
	gz := filepath.Join(t.TempDir(), "signed.ko.gz")
	if err := os.WriteFile(gz, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	want, got := runOurs(plain), runOurs(gz)
	if got.code != 0 || got.stderr != want.stderr || strings.Replace(got.stdout, gz, plain, 1) != want.stdout {
		t.Errorf("gzip module: got %+v\nwant %+v", got, want)
	}
}

// TestKmodReleases: what differs between kmod 30's and kmod 34's modinfo, against each kmod
// when it is there: -V, and the errno of a module file without .modinfo (kmod 30 ENOENT, kmod
// 34 ENODATA, which the other tests' stderr comparison leaves out).
func TestKmodReleases(t *testing.T) {
	nomodinfo := filepath.Join(treeDir(t), "lib/modules/1.0-test/kernel/drivers/nomodinfo.ko")
	for i, tc := range []struct{ version, errno string }{
		{Version30, "No such file or directory"},
		{cli.KmodVersion34, "No data available"},
	} {
		rel := releases[i]
		t.Run(rel.name, func(t *testing.T) {
			got := rel.ours(nomodinfo)
			want := "modinfo: ERROR: could not get modinfo from 'nomodinfo': " + tc.errno + "\n"
			if got.stderr != want || got.code != 1 {
				t.Errorf("modinfo nomodinfo.ko: %+v, want stderr %q", got, want)
			}
			if got := rel.ours("-V"); got.stdout != tc.version || got.code != 0 {
				t.Errorf("modinfo -V: %+v, want %q", got, tc.version)
			}
			k := runKmod(t, rel.kmod(t), nomodinfo)
			if k.stderr != want {
				t.Errorf("kmod's modinfo nomodinfo.ko: %+v, want stderr %q", k, want)
			}
			if rel.name == "kmod34" {
				if k := runKmod(t, rel.kmod(t), "-V"); k.stdout != tc.version {
					t.Errorf("kmod's modinfo -V: %q, want %q", k.stdout, tc.version)
				}
			}
		})
	}
}

// TestBrokenXZ: a .ko.xz that does not decompress, cut short or with a flipped byte. kmod 34
// logs liblzma's words first ("libkmod: ERROR: xz_uncompress_belch: xz: Unexpected end of
// input" or "File is corrupt"), kmod 30 only its own line; both then say EINVAL. Checked
// against each kmod where it is installed.
func TestBrokenXZ(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(treeDir(t), "lib/modules/1.0-test/kernel/drivers/xzmod.ko.xz"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	short := filepath.Join(dir, "short.ko.xz")
	flipped := filepath.Join(dir, "flipped.ko.xz")
	bad := append([]byte(nil), src...)
	bad[len(bad)/2] ^= 0xff
	if err := os.WriteFile(short, src[:len(src)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(flipped, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, rel := range releases[:2] {
		t.Run(rel.name, func(t *testing.T) {
			for _, tc := range []struct{ path, lzma string }{
				{short, "Unexpected end of input"},
				{flipped, "File is corrupt"},
			} {
				name := strings.TrimSuffix(filepath.Base(tc.path), ".ko.xz")
				want := "modinfo: ERROR: could not get modinfo from '" + name + "': Invalid argument\n"
				if rel.name == "kmod34" {
					want = "libkmod: ERROR: xz_uncompress_belch: xz: " + tc.lzma + "\n" + want
				}
				if got := rel.ours(tc.path); got.stderr != want || got.code != 1 {
					t.Errorf("modinfo %s: %+v, want stderr %q", name, got, want)
				}
				if k := runKmod(t, rel.kmod(t), tc.path); k.stderr != want {
					t.Errorf("kmod's modinfo %s: %+v, want stderr %q", name, k, want)
				}
			}
		})
	}
}
