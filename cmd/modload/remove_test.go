package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/internal/cli/modprobe"
	"github.com/modload/modload/internal/difftest"
)

// softdepModules are the modules of the tree's modules.softdep.
func softdepModules(t *testing.T, tr difftest.Tree) map[string]bool {
	t.Helper()
	f, err := os.Open(filepath.Join(tr.Dir(), "modules.softdep"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) > 1 && fs[0] == "softdep" {
			out[fs[1]] = true
		}
	}
	return out
}

// TestRemoveShowAgainstKmod: modprobe -r -D, through the loader the binary wires, prints what
// kmod 30 prints: -D ignores whether the module is loaded, so a module that is not prints
// "rmmod m" (modload printed nothing). Modules with softdeps are left out: modload's -r does
// not remove softdeps.
func TestRemoveShowAgainstKmod(t *testing.T) {
	tr := difftest.DebianTree(t)
	kmod := difftest.Kmod(t)
	names, err := difftest.ModuleNames(tr)
	if err != nil {
		t.Fatal(err)
	}
	soft := softdepModules(t, tr)
	names = slices.DeleteFunc(names, func(n string) bool { return soft[n] })
	queries := []string{"no_such_module", "pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00", "unix"}
	for i := 0; i < len(names); i += len(names) / 40 {
		queries = append(queries, names[i])
	}
	conf := t.TempDir()
	for _, q := range queries {
		args := []string{"-C", conf, "-d", tr.Root, "-S", tr.Version, "-r", "-D", q}
		want, err := difftest.Run(exec.Command(kmod, args...))
		if err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		code := modprobe.Main(&cli.Env{Stdout: &out, Stderr: &errb}, append([]string{"modprobe"}, args...))
		got := difftest.Result{Stdout: out.String(), Stderr: errb.String(), Code: code}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("modprobe -r -D %s (-kmod +ours):\n%s", q, diff)
		}
	}
}
