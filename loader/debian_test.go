package loader

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/modload/modload/gate"
)

// debianGraph reads modules.dep of the real Debian tree into a load graph.
func debianGraph(t *testing.T) map[string]*Module {
	root, kver := os.Getenv("MODLOAD_DEBIAN_ROOT"), os.Getenv("MODLOAD_DEBIAN_KVER")
	if root == "" || kver == "" {
		t.Skip("MODLOAD_DEBIAN_ROOT and MODLOAD_DEBIAN_KVER unset: no real Debian module tree")
	}
	dir := filepath.Join(root, "lib/modules", kver)
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	name := func(p string) string {
		b := filepath.Base(p)
		b = b[:strings.Index(b, ".ko")]
		return strings.ReplaceAll(b, "-", "_")
	}
	g := map[string]*Module{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		path, deps, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			t.Fatalf("modules.dep: bad line %q", sc.Text())
		}
		m := &Module{Name: name(path), Path: filepath.Join(dir, path)}
		for _, d := range strings.Fields(deps) {
			m.Deps = append(m.Deps, name(d))
		}
		g[m.Name] = m
	}
	return g
}

// TestDebianTree loads real, signed Debian modules into the fake kernel (which names each call
// from the ELF's .modinfo): every module of the targets' closure once, dependencies first.
func TestDebianTree(t *testing.T) {
	g := debianGraph(t)
	w := newWorld(t, gate.ModeWait)
	targets := []string{"ext4", "xfs", "btrfs", "snd_hda_intel", "e1000", "virtio_net"}
	l := w.loader(Options{Workers: 4})
	if err := l.Load(context.Background(), targets, g); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, tg := range targets {
		want[tg] = true
		for _, d := range g[tg].Deps {
			want[d] = true
		}
	}
	calls := w.k.Calls()
	seen := map[string]bool{}
	for _, c := range calls {
		if c.Err != nil {
			t.Errorf("%s: %v", c.Name, c.Err)
		}
		if seen[c.Name] {
			t.Errorf("%s loaded twice", c.Name)
		}
		if !want[c.Name] {
			t.Errorf("%s loaded but not needed", c.Name)
		}
		for _, d := range g[c.Name].Deps {
			if !seen[d] {
				t.Errorf("%s loaded before its dependency %s", c.Name, d)
			}
		}
		seen[c.Name] = true
	}
	if len(seen) != len(want) {
		var missing []string
		for n := range want {
			if !seen[n] {
				missing = append(missing, n)
			}
		}
		slices.Sort(missing)
		t.Errorf("not loaded: %v", missing)
	}
	// A second request is served from sysfs: no kernel call.
	if err := l.Load(context.Background(), targets, g); err != nil || len(w.k.Calls()) != len(calls) {
		t.Errorf("second load: %v, calls %d -> %d", err, len(calls), len(w.k.Calls()))
	}
}
