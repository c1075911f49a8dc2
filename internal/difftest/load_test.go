package difftest

import (
	"bytes"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/internal/cli/admin"
	"github.com/modload/modload/resolve"
)

// loadBatch is how many names one modload load -n -v compares against kmod's per-name answers.
const loadBatch = 100

// TestDebianLoadDryRun: for batches of module names and generated aliases, "modload load -n -v
// NAME..." (the engine's Plan) prints exactly the union of what kmod's "modprobe -n -v NAME"
// prints for each name alone, in order of first appearance: each module once, every module after
// its modules.dep dependencies; with and without -b; against kmod 30 (compat mode) and kmod 34.
func TestDebianLoadDryRun(t *testing.T) { forSuites(t, testDebianLoadDryRun) }

func testDebianLoadDryRun(t *testing.T, s *suite) {
	names, err := ModuleNames(s.tree)
	if err != nil {
		t.Fatal(err)
	}
	queries := append(Unique(names), aliasQueries(t, s)...)
	// Mixed batches: names and aliases shuffled together (a fixed seed: the oracle's cache
	// stays valid), so that batches share modules as a coldplug pass does.
	rand.New(rand.NewPCG(7, 7)).Shuffle(len(queries), func(i, j int) { queries[i], queries[j] = queries[j], queries[i] })
	if testing.Short() {
		queries = queries[:3000]
	}
	deps := modulesDep(t, s.tree)
	for _, b := range []bool{false, true} {
		mode := []string{"-n", "-v"}
		if b {
			mode = append(mode, "-b")
		}
		perName := s.kmodPerName(t, mode, queries)
		lines, batches := 0, 0
		for i, group := range Chunks(queries, loadBatch) {
			var want []string
			seen := map[string]bool{}
			for _, q := range group {
				for _, l := range perName[q] {
					if !seen[l] {
						seen[l] = true
						want = append(want, l)
					}
				}
			}
			got := s.oursLoad(t, b, group)
			if !slices.Equal(want, got) {
				t.Errorf("modload load %v batch %d (%q...): union of kmod's per-name -n -v lines:\n%s\nours:\n%s",
					mode, i, group[0], strings.Join(want, "\n"), strings.Join(got, "\n"))
				continue
			}
			checkOrder(t, got, deps)
			lines += len(got)
			batches++
		}
		t.Logf("%v: %d names in %d batches, %d lines", mode, len(queries), batches, lines)
		if lines < len(queries)/10 {
			t.Errorf("%v: only %d lines for %d names: the comparison must be able to fail", mode, lines, len(queries))
		}
	}
}

// kmodPerName answers every query with kmod's modprobe MODE, in batches (-a with separators),
// and returns each query's output lines.
func (s *suite) kmodPerName(t *testing.T, mode, queries []string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, c := range Chunks(queries, batchSize) {
		args := append(append(append(append([]string{}, s.common...), "-a"), mode...), BatchArgs(c)...)
		k, err := s.oracle(args)
		if err != nil {
			t.Fatal(err)
		}
		parts := SplitOutput(k.Stdout, sepD)
		if len(parts) != len(c) {
			t.Fatalf("kmod %v: %d answers for %d queries", mode, len(parts), len(c))
		}
		for i, q := range c {
			if p := strings.TrimSuffix(parts[i], "\n"); p != "" {
				out[q] = strings.Split(p, "\n")
			}
		}
	}
	return out
}

// oursLoad runs modload load -n -v [-b] over the group, in process.
func (s *suite) oursLoad(t *testing.T, blacklist bool, group []string) []string {
	t.Helper()
	args := []string{"load", "-n", "-v", "-q", "-d", s.tree.Root, "-S", s.tree.Version, "-C", s.conf}
	if blacklist {
		args = append(args, "-b")
	}
	var stdout, stderr bytes.Buffer
	env := &cli.Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Environ: append([]string{}, s.environ...)}
	if code := admin.Load(env, append(args, group...)); code > 1 {
		t.Fatalf("modload load: exit %d: %s", code, stderr.String())
	}
	o := strings.TrimSuffix(stdout.String(), "\n")
	if o == "" {
		return nil
	}
	return strings.Split(o, "\n")
}

// modulesDep returns each module file's modules.dep dependencies (absolute paths).
func modulesDep(t *testing.T, tr Tree) map[string][]string {
	t.Helper()
	names, err := ModuleNames(tr)
	if err != nil {
		t.Fatal(err)
	}
	r, err := resolve.New(resolve.Options{Base: tr.Root, Version: tr.Version, ConfigPaths: []string{"/dev/null"}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := map[string][]string{}
	for _, n := range names {
		ms, err := r.Lookup(n)
		if err != nil || len(ms) == 0 {
			continue
		}
		ds, err := r.Deps(ms[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			out[ms[0].Path] = append(out[ms[0].Path], d.Path)
		}
	}
	return out
}

// checkOrder fails when a module file is printed twice or before one of its modules.dep
// dependencies that the output also loads.
func checkOrder(t *testing.T, lines []string, deps map[string][]string) {
	t.Helper()
	pos := map[string]int{}
	for i, l := range lines {
		if p, ok := strings.CutPrefix(l, "insmod "); ok {
			p, _, _ = strings.Cut(p, " ")
			if _, dup := pos[p]; dup {
				t.Errorf("%s printed twice", filepath.Base(p))
			}
			pos[p] = i
		}
	}
	for p, i := range pos {
		for _, d := range deps[p] {
			if j, ok := pos[d]; ok && j > i {
				t.Errorf("%s printed before its dependency %s", filepath.Base(p), filepath.Base(d))
			}
		}
	}
}
