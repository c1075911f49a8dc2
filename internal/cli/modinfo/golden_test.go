package modinfo

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
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
	var bin string
	if *update {
		bin = kmodModinfo(t)
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

// The text resolver on its own: names, builtins, a bad alias, a missing directory.
func TestTextResolver(t *testing.T) {
	tree := treeDir(t)
	dir := tree + "/lib/modules/1.0-test"
	r, err := OpenTextResolver(ResolverOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tests := []struct {
		name string
		want []Module
	}{
		{"foo_bar", []Module{{Name: "foo_bar", Path: dir + "/kernel/drivers/foo-bar.ko"}}},
		{"foo-bar", []Module{{Name: "foo_bar", Path: dir + "/kernel/drivers/foo-bar.ko"}}},
		{"builtin_one", []Module{{Name: "builtin_one", Builtin: true}}},
		{"nosuch", nil},
		{"foo_bar.ko", nil},
	}
	for _, tt := range tests {
		got, err := r.Lookup(tt.name)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("Lookup(%q) = %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
	if _, err := r.Lookup("a]b"); err == nil {
		t.Error("Lookup of an unbalanced alias succeeded")
	}
	if m, ok, err := r.LookupName("foo-bar.ko"); err != nil || !ok || m.Name != "foo_bar" {
		t.Errorf("LookupName(foo-bar.ko) = %v, %v, %v", m, ok, err)
	}
	info, ok, err := r.BuiltinModinfo("builtin_one")
	// The first run of builtin_one strings only: "other." ends it, as in kmod.
	if err != nil || !ok || len(info) != 5 || info[4].Key != "alias" || info[4].Value != "fs-builtin-one" {
		t.Errorf("BuiltinModinfo(builtin_one) = %v, %v, %v", info, ok, err)
	}
	if info, ok, err := r.BuiltinModinfo("builtin_two"); err != nil || ok || info != nil {
		t.Errorf("BuiltinModinfo(builtin_two) = %v, %v, %v; want nothing", info, ok, err)
	}
	empty, err := OpenTextResolver(ResolverOptions{Dir: filepath.Join(t.TempDir(), "none")})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := empty.Lookup("foo_bar"); err != nil || got != nil {
		t.Errorf("Lookup in a missing directory = %v, %v", got, err)
	}
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
