package difftest

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/internal/cli/modprobe"
)

// batchSize is how many queries one kmod process answers.
const batchSize = 1500

// suite is what every differential test needs.
type suite struct {
	pair   Pair
	tree   Tree
	kmod   string // argv[0] of both sides: the host's modprobe path
	conf   string
	cache  string
	common []string // -d ROOT -S VER -C CONF
}

func newSuite(t *testing.T, p Pair) *suite {
	t.Helper()
	tr := p.Tree
	kmod := Kmod(t)
	conf, err := filepath.Abs("testdata/debian.conf")
	if err != nil {
		t.Fatal(err)
	}
	bins := p.Binaries(kmod)
	key, err := TreeKey(bins[0], tr, append(bins[1:], conf)...)
	if err != nil {
		t.Fatal(err)
	}
	return &suite{
		pair: p, tree: tr, kmod: kmod, conf: conf,
		cache:  filepath.Join(CacheDir(), p.Name+"-"+tr.Version, key),
		common: []string{"-d", tr.Root, "-S", tr.Version, "-C", conf},
	}
}

// oracle is kmod's answer to args, from the cache when it was asked before.
func (s *suite) oracle(args []string) (Result, error) { return s.pair.Oracle(s.kmod, s.cache, args) }

// ours runs modload's modprobe in process, invoked under kmod's path (getopt's messages name
// argv[0] as given), in the compatibility mode of the pair.
func (s *suite) ours(args []string) Result {
	var stdout, stderr bytes.Buffer
	env := &cli.Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Environ: s.pair.Environ([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"})}
	code := modprobe.Main(env, append([]string{s.kmod}, args...))
	return Result{Stdout: stdout.String(), Stderr: stderr.String(), Code: code}
}

// compareBatched answers queries with "-a MODE" in batches, on both sides, and reports the
// queries whose output differs. sepLine is the separator's output under mode.
func (s *suite) compareBatched(t *testing.T, mode, sepLine string, queries []string) {
	t.Helper()
	start := time.Now()
	chunks := Chunks(queries, batchSize)
	type outcome struct {
		k, o Result
		q    []string
		err  error
	}
	results := make([]outcome, len(chunks))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i, c := range chunks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			args := append(append(append([]string{}, s.common...), "-a", mode), BatchArgs(c)...)
			k, err := s.oracle(args)
			results[i] = outcome{k: k, o: s.ours(args), q: c, err: err}
		}()
	}
	wg.Wait()
	bad := 0
	for _, r := range results {
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.k == r.o {
			continue
		}
		if r.k.Code != r.o.Code {
			t.Errorf("%s batch starting %q: exit code kmod %d, ours %d", mode, r.q[0], r.k.Code, r.o.Code)
		}
		if r.k.Stderr != r.o.Stderr {
			t.Errorf("%s batch starting %q: stderr differs:\nkmod: %.600s\nours: %.600s", mode, r.q[0], r.k.Stderr, r.o.Stderr)
		}
		ks, os := SplitOutput(r.k.Stdout, sepLine), SplitOutput(r.o.Stdout, sepLine)
		if len(ks) != len(r.q) || len(os) != len(r.q) {
			t.Errorf("%s batch starting %q: %d queries, kmod answered %d, ours %d", mode, r.q[0], len(r.q), len(ks), len(os))
			continue
		}
		for i := range r.q {
			if ks[i] != os[i] {
				bad++
				if bad <= 20 {
					t.Errorf("modprobe %s %q:\nkmod:\n%sours:\n%s", mode, r.q[i], ks[i], os[i])
				}
			}
		}
	}
	if bad > 20 {
		t.Errorf("%d queries differ in all", bad)
	}
	t.Logf("%s: %d queries in %d batches compared in %v", mode, len(queries), len(chunks), time.Since(start).Round(time.Millisecond))
}

const (
	sepD = "install /bin/true \n"
	sepR = Sep + "\n"
)

func TestDebianShowDependsModules(t *testing.T) {
	ForEachPair(t, func(t *testing.T, p Pair) {
		s := newSuite(t, p)
		names, err := ModuleNames(s.tree)
		if err != nil {
			t.Fatal(err)
		}
		if len(names) < 100 {
			t.Fatalf("only %d modules in %s", len(names), s.tree.Dir())
		}
		// Every name as in modules.dep, plus its dashed and underscored spellings.
		var qs []string
		for _, n := range names {
			qs = append(qs, n, strings.ReplaceAll(n, "_", "-"), strings.ReplaceAll(n, "-", "_"))
		}
		s.compareBatched(t, "-D", sepD, Unique(qs))
	})
}

func aliasQueries(t *testing.T, s *suite) []string {
	keys, err := IndexKeys(s.tree.Dir() + "/modules.alias")
	if err != nil {
		t.Fatal(err)
	}
	var qs []string
	for _, k := range keys {
		qs = append(qs, Instantiate(k, 0), Instantiate(k, 1))
	}
	return Unique(qs)
}

func TestDebianAliasesResolve(t *testing.T) {
	ForEachPair(t, func(t *testing.T, p Pair) {
		s := newSuite(t, p)
		s.compareBatched(t, "-R", sepR, aliasQueries(t, s))
	})
}

func TestDebianAliasesShowDepends(t *testing.T) {
	ForEachPair(t, func(t *testing.T, p Pair) {
		s := newSuite(t, p)
		s.compareBatched(t, "-D", sepD, aliasQueries(t, s))
	})
}

func readModaliases(t *testing.T) []string {
	b, err := os.ReadFile("testdata/modaliases.txt")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

func TestDebianModaliases(t *testing.T) {
	ForEachPair(t, func(t *testing.T, p Pair) {
		s := newSuite(t, p)
		qs := Unique(readModaliases(t))
		s.compareBatched(t, "-R", sepR, qs)
		s.compareBatched(t, "-D", sepD, qs)
	})
}

func TestDebianSymbols(t *testing.T) {
	ForEachPair(t, func(t *testing.T, p Pair) {
		s := newSuite(t, p)
		keys, err := IndexKeys(s.tree.Dir() + "/modules.symbols")
		if err != nil {
			t.Fatal(err)
		}
		// Also the bare names, which kmod does not look up in modules.symbols.
		qs := append([]string(nil), keys...)
		for i, k := range keys {
			if i%10 == 0 {
				qs = append(qs, strings.TrimPrefix(k, "symbol:"))
			}
		}
		s.compareBatched(t, "-D", sepD, Unique(qs))
	})
}

func TestDebianBuiltins(t *testing.T) {
	ForEachPair(t, func(t *testing.T, p Pair) {
		s := newSuite(t, p)
		names, aliases, err := BuiltinNames(s.tree)
		if err != nil {
			t.Fatal(err)
		}
		if len(names) == 0 {
			t.Fatal("no builtin modules")
		}
		qs := Unique(append(names, aliases...))
		s.compareBatched(t, "-R", sepR, qs)
		s.compareBatched(t, "-D", sepD, qs)
	})
}

// TestDebianSingle runs single, unbatched invocations: the non -a messages and exit codes, the
// configuration dump and the ELF queries.
func TestDebianSingle(t *testing.T) {
	ForEachPair(t, func(t *testing.T, p Pair) {
		s := newSuite(t, p)
		// Debian 12's modules are .ko, Debian 13's .ko.xz.
		var ko, dummy string
		filepath.Walk(s.tree.Dir()+"/kernel", func(p string, info os.FileInfo, err error) error {
			switch name, _, _ := strings.Cut(filepath.Base(p), ".ko"); {
			case err != nil || !strings.Contains(filepath.Base(p), ".ko"):
			case name == "ext4":
				ko = p
			case name == "dummy" && strings.Contains(p, "/drivers/net/"):
				dummy = p
			}
			return nil
		})
		if ko == "" || dummy == "" {
			t.Fatalf("ext4 (%q) or dummy (%q) not found under %s", ko, dummy, s.tree.Dir())
		}
		cases := [][]string{
			{"-D", "ext4"},
			{"-D", "nonexistent_module"},
			{"-R", "nonexistent_module"},
			{"-q", "-D", "nonexistent_module"},
			{"-D", "bad]name"},
			{"-D", "ext4", "a=1", "b=x y", "c"},
			{"-D", "dummy", "numdummies=2"},
			{"-D", "floppy"},
			{"-D", "-b", "floppy"},
			{"-D", "pnp:dPNP0700"},
			{"-R", "pnp:dPNP0700"},
			{"-D", "-i", "dummy"},
			{"-D", "-i", "e1000e"},
			{"-n", "-v", "ext4"},
			{"-n", "-v", "-i", "e1000e"},
			{"--show", "ext4"},
			{"-c"},
			{"--show-modversions", ko},
			{"--show-exports", ko},
			{"--show-modversions", "/nonexistent.ko"},
			{"--show-exports", s.conf},
			{"--show-exports", dummy},
			{"-D"},
			{"--show-d", "ext4"},
			{"--ignore", "-D", "ext4"},
			{"-Z"},
			{"--wait"},
			{"-r", "nonexistent_module"},
			{"-r", "-n", "-v", "ext4"},
		}
		for _, c := range cases {
			args := append(append([]string{}, s.common...), c...)
			k, err := s.oracle(args)
			if err != nil {
				t.Fatal(err)
			}
			o := s.ours(args)
			if k != o && !(c[0] == "--show-exports" && Pending(t, p, "modprobe --show-exports")) {
				t.Errorf("modprobe %q:\nkmod: code %d stdout %.400q stderr %.400q\nours: code %d stdout %.400q stderr %.400q",
					c, k.Code, k.Stdout, k.Stderr, o.Code, o.Stdout, o.Stderr)
			}
		}
	})
}

// TestDebianModuleSample runs the per-file queries (--show-modversions, --show-exports) and
// the dry run (-n -v) on every 20th module of modules.dep, one invocation each: what
// TestDebianSingle checks on ext4 and dummy, over about 200 modules of every kind.
func TestDebianModuleSample(t *testing.T) {
	ForEachPair(t, func(t *testing.T, p Pair) {
		s := newSuite(t, p)
		f, err := os.Open(filepath.Join(s.tree.Dir(), "modules.dep"))
		if err != nil {
			t.Fatal(err)
		}
		var paths []string
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if p, _, ok := strings.Cut(sc.Text(), ":"); ok {
				paths = append(paths, p)
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		var cases [][]string
		for i := 0; i < len(paths); i += 20 {
			full := filepath.Join(s.tree.Dir(), paths[i])
			name := filepath.Base(paths[i])
			name = name[:strings.IndexByte(name, '.')]
			cases = append(cases, []string{"--show-modversions", full}, []string{"--show-exports", full}, []string{"-n", "-v", name})
		}
		if len(cases) < 300 {
			t.Fatalf("only %d cases from %d modules", len(cases), len(paths))
		}
		nonEmpty := 0
		for _, c := range cases {
			args := append(append([]string{}, s.common...), c...)
			k, err := s.oracle(args)
			if err != nil {
				t.Fatal(err)
			}
			if k.Code == 0 && k.Stdout != "" {
				nonEmpty++
			}
			if o := s.ours(args); k != o && !(c[0] == "--show-exports" && Pending(t, p, "modprobe --show-exports")) {
				t.Errorf("modprobe %q:\nkmod: code %d stdout %.400q stderr %.400q\nours: code %d stdout %.400q stderr %.400q",
					c, k.Code, k.Stdout, k.Stderr, o.Code, o.Stdout, o.Stderr)
			}
		}
		t.Logf("%d invocations, %d non-empty successes", len(cases), nonEmpty)
		// The comparison must be able to fail: most of kmod's answers print something.
		if nonEmpty < len(cases)/2 {
			t.Errorf("only %d of %d kmod answers were non-empty successes", nonEmpty, len(cases))
		}
	})
}
