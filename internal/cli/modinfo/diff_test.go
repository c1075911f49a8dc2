package modinfo

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/internal/difftest"
)

// kmodModinfo finds kmod's modinfo or skips.
func kmodModinfo(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/usr/sbin/modinfo", "/sbin/modinfo", "/usr/bin/modinfo", "/bin/modinfo"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("kmod's modinfo is not installed (apt-get install kmod)")
	return ""
}

type result struct {
	stdout, stderr string
	code           int
}

func runKmod(t testing.TB, bin string, args ...string) result {
	cmd := exec.Command(bin, args...)
	cmd.Args[0] = "modinfo" // glibc's getopt messages start with argv[0]
	return runCmd(t, cmd)
}

func runCmd(t testing.TB, cmd *exec.Cmd) result {
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	r, err := difftest.Run(cmd)
	if err != nil {
		t.Fatalf("run %q: %v", cmd.Args, err)
	}
	return result{r.Stdout, r.Stderr, r.Code}
}

// runOracle runs the modinfo of p's kmod (kmod 30: the host's).
func runOracle(t testing.TB, p difftest.Pair, args ...string) result {
	if p.Kmod34 == "" {
		return runKmod(t, kmodModinfo(t), args...)
	}
	return runCmd(t, difftest.Kmod34Cmd(p.Kmod34, "modinfo", args...))
}

// runOurs runs modload's modinfo as kmod 30 (MODLOAD_KMOD_COMPAT=30), the oracle of the tests
// that do not run over difftest's pairs.
func runOurs(args ...string) result { return runOursAs(difftest.Pair{}, args...) }

// runOursAs runs modload's modinfo in the compatibility mode p wants.
func runOursAs(p difftest.Pair, args ...string) result {
	var so, se bytes.Buffer
	env := &cli.Env{Stdin: strings.NewReader(""), Stdout: &so, Stderr: &se, Environ: p.Environ([]string{"LC_ALL=C"})}
	code := Main(env, append([]string{"modinfo"}, args...))
	return result{so.String(), se.String(), code}
}

// stderrClass keeps what identifies an error and drops the strerror text kmod appends after
// the module name (its errno for corrupt compressed streams depends on libzstd/liblzma).
var strerrorTail = regexp.MustCompile(`(could not get modinfo from '[^']*'): .*`)

func stderrClass(s string) string { return strerrorTail.ReplaceAllString(s, "$1") }

func compare(t testing.TB, args []string, want, got result) bool {
	t.Helper()
	ok := true
	if want.stdout != got.stdout {
		t.Errorf("modinfo %q: stdout differs\nkmod:\n%q\nours:\n%q", args, want.stdout, got.stdout)
		ok = false
	}
	if stderrClass(want.stderr) != stderrClass(got.stderr) {
		t.Errorf("modinfo %q: stderr differs\nkmod: %q\nours: %q", args, want.stderr, got.stderr)
		ok = false
	}
	if want.code != got.code {
		t.Errorf("modinfo %q: exit code kmod %d, ours %d", args, want.code, got.code)
		ok = false
	}
	return ok
}

// parallel runs f over items with 2*NumCPU workers; kmod processes are what costs.
func parallel(items [][]string, f func(args []string)) {
	ch := make(chan []string)
	var wg sync.WaitGroup
	for range 2 * runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for args := range ch {
				f(args)
			}
		}()
	}
	for _, it := range items {
		ch <- it
	}
	close(ch)
	wg.Wait()
}

func moduleFiles(t testing.TB, root, kver string) []string {
	t.Helper()
	var files []string
	dir := filepath.Join(root, "lib/modules", kver)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && strings.Contains(d.Name(), ".ko") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	if len(files) == 0 {
		t.Fatalf("no module files under %s", dir)
	}
	return files
}

func diffAll(t *testing.T, p difftest.Pair, items [][]string) {
	var mu sync.Mutex
	failures := 0
	parallel(items, func(args []string) {
		want := runOracle(t, p, args...)
		got := runOursAs(p, args...)
		if want != got && len(args) == 1 && strings.HasPrefix(filepath.Base(args[0]), "trunc") && strings.HasSuffix(args[0], ".xz") &&
			difftest.Pending(t, p, "modinfo truncated .ko.xz") {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if failures < 20 && !compare(t, args, want, got) {
			failures++
		}
	})
}

// TestDiffEveryModule: `modinfo PATH` for every module file of the Debian tree, kmod vs ours.
func TestDiffEveryModule(t *testing.T) {
	difftest.ForEachPair(t, func(t *testing.T, p difftest.Pair) {
		root, kver := p.Tree.Root, p.Tree.Version
		files := moduleFiles(t, root, kver)
		if testing.Short() {
			files = sample(files, 100)
		}
		// One process per batch of files keeps the run short; a batch that differs is compared
		// file by file to name the culprit.
		const batch = 40
		var items [][]string
		for i := 0; i < len(files); i += batch {
			items = append(items, files[i:min(i+batch, len(files))])
		}
		start := time.Now()
		var mu sync.Mutex
		failures := 0
		parallel(items, func(args []string) {
			want := runOracle(t, p, args...)
			got := runOursAs(p, args...)
			if want == got {
				return
			}
			culprit := false
			for _, f := range args {
				want, got := runOracle(t, p, f), runOursAs(p, f)
				mu.Lock()
				if !compare(t, []string{f}, want, got) {
					culprit = true
					failures++
				}
				mu.Unlock()
				if failures >= 20 {
					break
				}
			}
			if !culprit {
				// Each file alone agrees, the batch does not: the difference is in how several
				// files are printed together.
				mu.Lock()
				failures++
				compare(t, args, want, got)
				mu.Unlock()
			}
		})
		t.Logf("compared modinfo on %d module files in %v", len(files), time.Since(start).Round(time.Millisecond))
	})
}

func sample(files []string, n int) []string {
	if len(files) <= n {
		return files
	}
	out := make([]string, 0, n)
	step := len(files) / n
	for i := 0; i < len(files) && len(out) < n; i += step {
		out = append(out, files[i])
	}
	return out
}

// TestDiffFlags: field selection and output flags on a sample of modules.
func TestDiffFlags(t *testing.T) {
	difftest.ForEachPair(t, func(t *testing.T, p difftest.Pair) {
		root, kver := p.Tree.Root, p.Tree.Version
		files := sample(moduleFiles(t, root, kver), 60)
		flagSets := [][]string{
			{"-F", "alias"}, {"-F", "parm"}, {"-F", "signature"}, {"-F", "sig_key"}, {"-F", "signer"},
			{"-F", "depends"}, {"-F", "name"}, {"-F", "nonexistent"}, {"--field=vermagic"}, {"-0"},
			{"-a"}, {"-d"}, {"-l"}, {"-p"}, {"-n"}, {"-0", "-p"}, {"--null", "-F", "alias"}, {"-p", "-0", "-a"},
		}
		var items [][]string
		for i, f := range files {
			fl := flagSets[i%len(flagSets)]
			items = append(items, append(append([]string{}, fl...), f))
			fl2 := flagSets[(i+7)%len(flagSets)]
			items = append(items, append([]string{f}, fl2...)) // options after operands (permutation)
		}
		// several files in one invocation
		items = append(items, files[:5], append([]string{"-0"}, files[5:9]...))
		diffAll(t, p, items)
	})
}

// TestDiffByName: names resolved through the module directory with -b and -k, and builtins
// (every one, those that are also a module alias included), through Main's resolver, which is
// the modload binary's.
func TestDiffByName(t *testing.T) {
	difftest.ForEachPair(t, func(t *testing.T, p difftest.Pair) {
		root, kver := p.Tree.Root, p.Tree.Version
		files := sample(moduleFiles(t, root, kver), 80)
		var items [][]string
		for i, f := range files {
			name := strings.ReplaceAll(strings.SplitN(filepath.Base(f), ".", 2)[0], "_", "-")
			if i%2 == 0 {
				name = modnameFromPath(f)
			}
			items = append(items, []string{"-b", root, "-k", kver, name})
			if i%5 == 0 {
				items = append(items, []string{"-m", "-b", root, "-k", kver, name})
				items = append(items, []string{"-F", "filename", "--basedir=" + root, "--set-version", kver, name})
			}
		}
		builtin, err := os.ReadFile(filepath.Join(root, "lib/modules", kver, "modules.builtin"))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Fields(string(builtin)) {
			name := modnameFromPath(line)
			items = append(items, []string{"-b", root, "-k", kver, name})
			if i%10 == 0 {
				items = append(items, []string{"-b", root, "-k", kver, "-F", "name", name},
					[]string{"-b", root, "-k", kver, "-0", name}, []string{"-b", root, "-k", kver, "-p", name},
					[]string{"-m", "-b", root, "-k", kver, name})
			}
		}
		items = append(items,
			[]string{"-b", root, "-k", kver, "no_such_module"},
			[]string{"-m", "-b", root, "-k", kver, "no_such_module"},
			[]string{"-b", root, "-k", kver, "bad[alias"},
			[]string{"-b", root, "-k", kver, "ext4", "no_such_module", "jbd2"},
			[]string{"-b", root, "-k", "0.0.0-none", "ext4"},
			[]string{"-b", root + "/", "-k", kver, "ext4"},
			[]string{"-k", kver, "ext4"}, // the host's /lib/modules
			[]string{"-b", relativeTo(t, root), "-k", kver, "ext4", "zswap"},
		)
		diffAll(t, p, items)
	})
}

// TestDiffErrors: usage errors, missing files, files that are not modules, corrupt files.
func TestDiffErrors(t *testing.T) {
	difftest.ForEachPair(t, func(t *testing.T, p difftest.Pair) {
		dir := t.TempDir()
		write := func(name string, data []byte) string {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			return p
		}
		items := [][]string{
			{}, {"-h"}, {"--help"}, {"-F"}, {"-k"}, {"-x"}, {"--bogus"}, {"--bogus=1"}, {"--f"}, {"--fi=name", "x"},
			{"--author=3", "x"}, {"--field"}, {"--", "-a"}, {"-h", "-x"}, {"-x", "-h"}, {"--he"},
			{"-Fname", "-0n", "nosuch"}, {"-aFx"}, {"--fil", "x"}, {"-"}, {"--=x"}, {"--"},
			{"--f=x"}, {"-x", "-y"}, {"--bogus", "-x"}, {"-a", "--f"}, {"x", "-k"}, {"-W", "foo"}, {"-:"}, {"--ver=1"},
			{filepath.Join(dir, "missing.ko")}, {"/etc/hostname"},
			{write("notelf.ko", []byte("hello world, this is not an ELF file\n"))},
			{write("tiny.ko", []byte("abc"))},
			{write("empty.ko", nil)},
			{"-n", write("notelf2.ko", []byte("hello world\n"))},
			{write("elfhdr.ko", append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 100)...))},
			{write("badclass.ko", append([]byte("\x7fELF\x07\x01\x01"), make([]byte, 100)...))},
		}
		// Truncated copies of ext4 (of its .ko or .ko.xz, as the tree has it).
		ext4, err := filepath.Glob(filepath.Join(p.Tree.Dir(), "kernel/fs/ext4/ext4.ko*"))
		if err != nil || len(ext4) != 1 {
			t.Fatalf("ext4 in %s: %q %v", p.Tree.Dir(), ext4, err)
		}
		b, err := os.ReadFile(ext4[0])
		if err != nil {
			t.Fatal(err)
		}
		ext := strings.TrimPrefix(filepath.Base(ext4[0]), "ext4")
		for _, n := range []int{17, 64, 65, 1000, len(b) / 2, len(b) - 100} {
			items = append(items, []string{write(fmt.Sprintf("trunc%d%s", n, ext), b[:n])})
		}
		diffAll(t, p, items)
	})
}

// relativeTo returns p relative to the working directory.
func relativeTo(t testing.TB, p string) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(wd, p)
	if err != nil {
		t.Fatal(err)
	}
	return rel
}
