package lsmod

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/tools/txtar"

	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/internal/difftest"
)

var update = flag.Bool("update", false, "rewrite want.* (kmod 30) and want34.* (kmod 34) in testdata/*.txtar from kmod's lsmod (needs root, unshare, kmod)")

type result = difftest.Result

// release is a kmod release the tests compare with: the prefix of its recorded answers in
// the fixtures, the environment that makes modload reproduce it, and how to run its lsmod.
type release struct {
	name, prefix string
	environ      []string
	argv         func(t *testing.T) []string
}

var releases = []release{
	{name: "kmod30", prefix: "want.", environ: []string{"MODLOAD_KMOD_COMPAT=30"},
		argv: func(*testing.T) []string { return []string{"lsmod"} }},
	{name: "kmod34", prefix: "want34.",
		argv: func(t *testing.T) []string { return difftest.Kmod34Argv(t, "lsmod") }},
}

func forReleases(t *testing.T, f func(t *testing.T, rel release)) {
	for _, rel := range releases {
		t.Run(rel.name, func(t *testing.T) { f(t, rel) })
	}
}

// extract writes the tree of a txtar fixture (every file except want.*) to a temporary
// directory. A name ending in "/" is an empty directory.
func extract(t *testing.T, a *txtar.Archive) string {
	t.Helper()
	dir := t.TempDir()
	isWant := func(name string) bool { return strings.HasPrefix(name, "want") }
	if err := difftest.WriteTree(dir, a, isWant); err != nil {
		t.Fatal(err)
	}
	// /proc/modules and /sys/module must exist as directories to be bind-mount targets.
	for _, d := range []string{"proc", "sys/module"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func want(a *txtar.Archive, prefix string) (result, bool) {
	var r result
	found := false
	for _, f := range a.Files {
		switch f.Name {
		case prefix + "stdout":
			r.Stdout, found = string(f.Data), true
		case prefix + "stderr":
			r.Stderr = string(f.Data)
		case prefix + "code":
			r.Code, _ = strconv.Atoi(strings.TrimSpace(string(f.Data)))
		}
	}
	return r, found
}

func runOurs(rel release, root string, args ...string) result {
	var out, errb bytes.Buffer
	env := &cli.Env{Stdout: &out, Stderr: &errb, Environ: append([]string{"MODLOAD_ROOT=" + root}, rel.environ...), ModloadConf: "-"}
	code := Main(env, args)
	return result{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

// runKmod runs kmod's tool in a private mount namespace where the fixture is bind-mounted
// over /proc and /sys/module, so kmod reads the same tree as we do.
func runKmod(t *testing.T, rel release, root string, args ...string) result {
	t.Helper()
	return difftest.RunInTree(t, root, append(rel.argv(t), args...)...)
}

func fixtures(t *testing.T) []string {
	files, err := filepath.Glob("testdata/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	return files
}

// TestFixtures compares our output with kmod 30's and kmod 34's, recorded in the fixture.
func TestFixtures(t *testing.T) { forReleases(t, testFixtures) }

func testFixtures(t *testing.T, rel release) {
	for _, file := range fixtures(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			a, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			root := extract(t, a)
			if *update {
				got := runKmod(t, rel, root)
				setWant(a, rel.prefix, got)
				if err := os.WriteFile(file, txtar.Format(a), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			w, ok := want(a, rel.prefix)
			if !ok {
				t.Fatalf("%s has no %sstdout (run go test -update as root with kmod installed)", file, rel.prefix)
			}
			if diff := cmp.Diff(w, runOurs(rel, root, "lsmod")); diff != "" {
				t.Errorf("lsmod (-kmod +ours):\n%s", diff)
			}
		})
	}
}

func setWant(a *txtar.Archive, prefix string, r result) {
	var files []txtar.File
	for _, f := range a.Files {
		if !strings.HasPrefix(f.Name, prefix) {
			files = append(files, f)
		}
	}
	a.Files = append(files,
		txtar.File{Name: prefix + "code", Data: []byte(strconv.Itoa(r.Code) + "\n")},
		txtar.File{Name: prefix + "stdout", Data: []byte(r.Stdout)},
		txtar.File{Name: prefix + "stderr", Data: []byte(r.Stderr)})
}

// TestKmodDifferential runs kmod's lsmod (30 and 34) on every fixture (holders in real
// directory order, which a recorded file cannot pin down) and on a missing /proc/modules.
func TestKmodDifferential(t *testing.T) { forReleases(t, testKmodDifferential) }

func testKmodDifferential(t *testing.T, rel release) {
	for _, file := range fixtures(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			a, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			root := extract(t, a)
			// Several holders, in whatever order this filesystem keeps them.
			for _, h := range []string{"zeta", "alpha", "mid-dash", "beta.ko"} {
				p := filepath.Join(root, "sys/module/snd_hda_codec/holders", h)
				if _, err := os.Stat(filepath.Dir(p)); err != nil {
					break
				}
				if err := os.WriteFile(p, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(runKmod(t, rel, root), runOurs(rel, root, "lsmod")); diff != "" {
				t.Errorf("lsmod (-kmod +ours):\n%s", diff)
			}
		})
	}
	t.Run("no /proc/modules", func(t *testing.T) {
		root := extract(t, &txtar.Archive{})
		if diff := cmp.Diff(runKmod(t, rel, root), runOurs(rel, root, "lsmod")); diff != "" {
			t.Errorf("lsmod (-kmod +ours):\n%s", diff)
		}
	})
}

// TestOptionsKmod compares lsmod's options with kmod's: kmod 30 takes none, kmod 34 takes
// -s, -v, -V and -h.
func TestOptionsKmod(t *testing.T) { forReleases(t, testOptionsKmod) }

func testOptionsKmod(t *testing.T, rel release) {
	root := extract(t, &txtar.Archive{Files: []txtar.File{{Name: "proc/modules", Data: []byte("a 16384 0 - Live 0x0\n")}}})
	for _, args := range [][]string{
		{"-h"}, {"--help"}, {"-V"}, {"--vers"}, {"--v"}, {"-x"}, {"--bogus"}, {"x"}, {"--", "x"}, {"-v"},
		{"x", "-h"}, {"-V", "x"}, {"-hV"}, {"--syslog=1"}, {"-s", "x"}, {"-s"},
	} {
		if diff := cmp.Diff(runKmod(t, rel, root, args...), runOurs(rel, root, append([]string{"lsmod"}, args...)...)); diff != "" {
			t.Errorf("lsmod %q (-kmod +ours):\n%s", args, diff)
		}
	}
}

func TestUsageAndMissing(t *testing.T) {
	kmod30 := releases[0]
	got := runOurs(kmod30, t.TempDir(), "/usr/sbin/lsmod", "-h")
	if diff := cmp.Diff(result{Stderr: "Usage: /usr/sbin/lsmod\n", Code: 1}, got); diff != "" {
		t.Errorf("lsmod -h (-want +got):\n%s", diff)
	}
	got = runOurs(kmod30, t.TempDir(), "lsmod")
	w := result{Code: 1, Stderr: "libkmod: ERROR ../libkmod/libkmod-module.c:1725 kmod_module_new_from_loaded: could not open /proc/modules: No such file or directory\n" +
		"Error: could not get list of modules: No such file or directory\n"}
	if diff := cmp.Diff(w, got); diff != "" {
		t.Errorf("lsmod without /proc/modules (-want +got):\n%s", diff)
	}
	got = runOurs(releases[1], t.TempDir(), "lsmod")
	w = result{Code: 1, Stderr: "lsmod: ERROR: could not open /proc/modules: No such file or directory\n" +
		"lsmod: ERROR: could not get list of modules: No such file or directory\n"}
	if diff := cmp.Diff(w, got); diff != "" {
		t.Errorf("kmod 34: lsmod without /proc/modules (-want +got):\n%s", diff)
	}
}

// TestHeaderMatchesKmod checks the header line against the real kmod binary: with no
// /proc/modules on this host kmod fails before printing it, so look for it in the binary.
func TestHeaderMatchesKmod(t *testing.T) {
	path, err := exec.LookPath("kmod")
	if err != nil {
		t.Skip("kmod not installed")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	root := extract(t, &txtar.Archive{Files: []txtar.File{{Name: "proc/modules", Data: nil}}})
	Main(&cli.Env{Stdout: &out, Stderr: &out, Environ: []string{"MODLOAD_ROOT=" + root}, ModloadConf: "-"}, []string{"lsmod"})
	header := strings.TrimSuffix(out.String(), "\n")
	if header != "Module                  Size  Used by" || !bytes.Contains(b, []byte(header+"\x00")) {
		t.Errorf("header %q not found as a string in %s", header, path)
	}
}
