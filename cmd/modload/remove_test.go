package main

import (
	"bufio"
	"bytes"
	"maps"
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
// "rmmod m" (modload printed nothing), and softdeps are removed as kmod removes them (post
// before the module, pre after, each list last first; modload removed none), from the tree's
// modules.softdep and from a configuration; -i leaves them.
func TestRemoveShowAgainstKmod(t *testing.T) {
	tr := difftest.DebianTree(t)
	kmod := difftest.Kmod(t)
	names, err := difftest.ModuleNames(tr)
	if err != nil {
		t.Fatal(err)
	}
	queries := []string{"no_such_module", "pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00", "unix", "fs-ext4"}
	for i := 0; i < len(names); i += len(names) / 40 {
		queries = append(queries, names[i])
	}
	soft := slices.Sorted(maps.Keys(softdepModules(t, tr)))
	for i := 0; i < len(soft); i += max(1, len(soft)/10) {
		queries = append(queries, soft[i])
	}
	empty, conf := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(conf, "soft.conf"), []byte("softdep e1000e pre: xfs ext4 post: dummy crc32c\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runs := [][]string{{"-C", conf, "-r", "-D", "e1000e"}, {"-C", conf, "-r", "-D", "-i", "e1000e"}}
	for _, q := range queries {
		runs = append(runs, []string{"-C", empty, "-r", "-D", q})
	}
	for _, args := range runs {
		args = append([]string{"-d", tr.Root, "-S", tr.Version}, args...)
		want, err := difftest.Run(exec.Command(kmod, args...))
		if err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		code := modprobe.Main(&cli.Env{Stdout: &out, Stderr: &errb}, append([]string{"modprobe"}, args...))
		got := difftest.Result{Stdout: out.String(), Stderr: errb.String(), Code: code}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("modprobe %q (-kmod +ours):\n%s", args[4:], diff)
		}
	}
}
