package modprobe

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/modload/modload/resolve"
)

// barrierLoader holds every Load until `want` of them are in flight at once, so it only
// returns if the matches of one alias are inserted concurrently; with -v it must never be
// asked to (kmod's sequential output).
type barrierLoader struct {
	mu      sync.Mutex
	entered int
	want    int
	all     chan struct{}
	targets []string
}

func (b *barrierLoader) Load(ctx context.Context, steps []resolve.Step, f LoadFlags) error {
	b.mu.Lock()
	b.entered++
	for _, s := range steps {
		if s.Target {
			b.targets = append(b.targets, s.Module.Name)
		}
	}
	if b.entered == b.want {
		close(b.all)
	}
	b.mu.Unlock()
	select {
	case <-b.all:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *barrierLoader) Remove(context.Context, resolve.Module, RemoveFlags) error { return nil }

func TestAliasMatchesLoadConcurrently(t *testing.T) {
	root, ver := t.TempDir(), "1.0"
	dir := filepath.Join(root, "lib/modules", ver)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"modules.dep":   "kernel/a.ko:\nkernel/b.ko:\nkernel/c.ko:\n",
		"modules.alias": "alias cpu:type:x86* a\nalias cpu:type:x86* b\nalias cpu:type:x86* c\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bl := &barrierLoader{want: 3, all: make(chan struct{})}
	Hooks.Loader = bl
	defer func() { Hooks.Loader = nil }()
	Hooks.MatchWidth = 3
	defer func() { Hooks.MatchWidth = 0 }()
	// Deadlocks (and the test times out) unless the three matches are in flight together.
	if _, stderr, code := run(t, "-d", root, "-S", ver, "-C", os.DevNull, "cpu:type:x86,ven0000"); code != 0 || stderr != "" {
		t.Fatalf("code %d stderr %q", code, stderr)
	}
	if len(bl.targets) != 3 {
		t.Fatalf("targets %q, want a, b and c", bl.targets)
	}

}

// widthLoader records how many loads were in flight at most.
type widthLoader struct {
	mu       sync.Mutex
	now, max int
	targets  []string
}

func (w *widthLoader) Load(ctx context.Context, steps []resolve.Step, f LoadFlags) error {
	w.mu.Lock()
	w.now++
	w.max = max(w.max, w.now)
	for _, s := range steps {
		if s.Target {
			w.targets = append(w.targets, s.Module.Name)
		}
	}
	w.mu.Unlock()
	runtime.Gosched()
	w.mu.Lock()
	w.now--
	w.mu.Unlock()
	return nil
}

func (w *widthLoader) Remove(context.Context, resolve.Module, RemoveFlags) error { return nil }

// TestAliasMatchesInOrderByDefault: with MatchWidth unset the matches load one after another,
// in kmod's order.
func TestAliasMatchesInOrderByDefault(t *testing.T) {
	root, ver := t.TempDir(), "1.0"
	dir := filepath.Join(root, "lib/modules", ver)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"modules.dep":   "kernel/a.ko:\nkernel/b.ko:\nkernel/c.ko:\n",
		"modules.alias": "alias cpu:type:x86* a\nalias cpu:type:x86* b\nalias cpu:type:x86* c\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w := &widthLoader{}
	Hooks.Loader = w
	defer func() { Hooks.Loader = nil }()
	if _, stderr, code := run(t, "-d", root, "-S", ver, "-C", os.DevNull, "cpu:type:x86,ven0000"); code != 0 || stderr != "" {
		t.Fatalf("code %d stderr %q", code, stderr)
	}
	if w.max != 1 || len(w.targets) != 3 {
		t.Errorf("at most %d loads in flight for targets %q; want 1 at a time for a, b and c", w.max, w.targets)
	}
}

// TestParallelMatchesOnlyWhenSilent: kmod's per-step output (-v, -n, -D, --show) keeps its
// order because those modes insert one match after another.
func TestParallelMatchesOnlyWhenSilent(t *testing.T) {
	Hooks.Loader = &barrierLoader{}
	defer func() { Hooks.Loader = nil }()
	for _, tc := range []struct {
		name string
		st   state
		n    int
		want bool
	}{
		{"silent", state{verbose: logErr}, 3, true},
		{"one match", state{verbose: logErr}, 1, false},
		{"verbose", state{verbose: logNotice}, 3, false},
		{"dry run", state{verbose: logErr, dryRun: true}, 3, false},
		{"show", state{verbose: logErr, doShow: true}, 3, false},
		{"resolve alias", state{verbose: logErr, lookupOnly: true}, 3, false},
	} {
		if got := tc.st.parallelMatches(tc.n); got != tc.want {
			t.Errorf("%s: parallelMatches(%d) = %v, want %v", tc.name, tc.n, got, tc.want)
		}
	}
	Hooks.Loader = nil
	if (&state{verbose: logErr}).parallelMatches(3) {
		t.Error("parallel without a loader")
	}
}

// TestNoParallelMatchesWithInstallCommands: install commands bypass the gate, so matches are
// inserted one after another as soon as the configuration has any.
func TestNoParallelMatchesWithInstallCommands(t *testing.T) {
	Hooks.Loader = &barrierLoader{}
	defer func() { Hooks.Loader = nil }()
	root, ver := writeTree(t)
	for _, tc := range []struct {
		conf string
		want bool
	}{{"", true}, {"install b /bin/true\n", false}} {
		conf := filepath.Join(t.TempDir(), "c.conf")
		if err := os.WriteFile(conf, []byte(tc.conf), 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := resolve.New(resolve.Options{Base: root, Version: ver, ConfigPaths: []string{conf}})
		if err != nil {
			t.Fatal(err)
		}
		st := &state{verbose: logErr, r: r}
		if got := st.parallelMatches(3); got != tc.want {
			t.Errorf("config %q: parallelMatches = %v, want %v", tc.conf, got, tc.want)
		}
		r.Close()
	}
}
