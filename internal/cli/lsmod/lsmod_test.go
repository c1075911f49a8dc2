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

var update = flag.Bool("update", false, "rewrite want.* in testdata/*.txtar from kmod's lsmod (needs root, unshare, kmod)")

type result = difftest.Result

// extract writes the tree of a txtar fixture (every file except want.*) to a temporary
// directory. A name ending in "/" is an empty directory.
func extract(t *testing.T, a *txtar.Archive) string {
	t.Helper()
	dir := t.TempDir()
	isWant := func(name string) bool { return strings.HasPrefix(name, "want.") }
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

func want(a *txtar.Archive) (result, bool) {
	var r result
	found := false
	for _, f := range a.Files {
		switch f.Name {
		case "want.stdout":
			r.Stdout, found = string(f.Data), true
		case "want.stderr":
			r.Stderr = string(f.Data)
		case "want.code":
			r.Code, _ = strconv.Atoi(strings.TrimSpace(string(f.Data)))
		}
	}
	return r, found
}

func runOurs(root string, args ...string) result {
	var out, errb bytes.Buffer
	env := &cli.Env{Stdout: &out, Stderr: &errb, Environ: []string{"MODLOAD_ROOT=" + root}}
	code := Main(env, args)
	return result{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

// runKmod runs kmod's tool in a private mount namespace where the fixture is bind-mounted
// over /proc and /sys/module, so kmod reads the same tree as we do.
func runKmod(t *testing.T, root string, args ...string) result {
	t.Helper()
	return difftest.RunInTree(t, root, args...)
}

func fixtures(t *testing.T) []string {
	files, err := filepath.Glob("testdata/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	return files
}

// TestFixtures compares our output with kmod's, recorded in the fixture.
func TestFixtures(t *testing.T) {
	for _, file := range fixtures(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			a, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			root := extract(t, a)
			if *update {
				got := runKmod(t, root, "lsmod")
				setWant(a, got)
				if err := os.WriteFile(file, txtar.Format(a), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			w, ok := want(a)
			if !ok {
				t.Fatalf("%s has no want.stdout (run go test -update as root with kmod installed)", file)
			}
			if diff := cmp.Diff(w, runOurs(root, "lsmod")); diff != "" {
				t.Errorf("lsmod (-kmod +ours):\n%s", diff)
			}
		})
	}
}

func setWant(a *txtar.Archive, r result) {
	var files []txtar.File
	for _, f := range a.Files {
		if !strings.HasPrefix(f.Name, "want.") {
			files = append(files, f)
		}
	}
	a.Files = append(files,
		txtar.File{Name: "want.code", Data: []byte(strconv.Itoa(r.Code) + "\n")},
		txtar.File{Name: "want.stdout", Data: []byte(r.Stdout)},
		txtar.File{Name: "want.stderr", Data: []byte(r.Stderr)})
}

// TestKmodDifferential runs kmod's lsmod on every fixture (holders in real directory
// order, which a recorded file cannot pin down) and on a missing /proc/modules.
func TestKmodDifferential(t *testing.T) {
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
			if diff := cmp.Diff(runKmod(t, root, "lsmod"), runOurs(root, "lsmod")); diff != "" {
				t.Errorf("lsmod (-kmod +ours):\n%s", diff)
			}
		})
	}
	t.Run("no /proc/modules", func(t *testing.T) {
		root := extract(t, &txtar.Archive{})
		if diff := cmp.Diff(runKmod(t, root, "lsmod"), runOurs(root, "lsmod")); diff != "" {
			t.Errorf("lsmod (-kmod +ours):\n%s", diff)
		}
	})
}

func TestUsageAndMissing(t *testing.T) {
	got := runOurs(t.TempDir(), "/usr/sbin/lsmod", "-h")
	if diff := cmp.Diff(result{Stderr: "Usage: /usr/sbin/lsmod\n", Code: 1}, got); diff != "" {
		t.Errorf("lsmod -h (-want +got):\n%s", diff)
	}
	got = runOurs(t.TempDir(), "lsmod")
	w := result{Code: 1, Stderr: "libkmod: ERROR ../libkmod/libkmod-module.c:1725 kmod_module_new_from_loaded: could not open /proc/modules: No such file or directory\n" +
		"Error: could not get list of modules: No such file or directory\n"}
	if diff := cmp.Diff(w, got); diff != "" {
		t.Errorf("lsmod without /proc/modules (-want +got):\n%s", diff)
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
	Main(&cli.Env{Stdout: &out, Stderr: &out, Environ: []string{"MODLOAD_ROOT=" + root}}, []string{"lsmod"})
	header := strings.TrimSuffix(out.String(), "\n")
	if header != "Module                  Size  Used by" || !bytes.Contains(b, []byte(header+"\x00")) {
		t.Errorf("header %q not found as a string in %s", header, path)
	}
}
