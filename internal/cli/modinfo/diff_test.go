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

// debianTree returns the Debian module tree root and kernel version or skips.
func debianTree(t testing.TB) (root, kver string) {
	t.Helper()
	root, kver = os.Getenv("MODLOAD_DEBIAN_ROOT"), os.Getenv("MODLOAD_DEBIAN_KVER")
	if root == "" || kver == "" {
		t.Skip("MODLOAD_DEBIAN_ROOT and MODLOAD_DEBIAN_KVER are not set (the Debian module tree is needed)")
	}
	return root, kver
}

type result struct {
	stdout, stderr string
	code           int
}

// release is a kmod release the differential tests compare with: the environment that makes
// modload reproduce it, and the command that runs its modinfo (or skips).
type release struct {
	name    string
	environ []string
	kmod    func(t testing.TB) []string
	// tree is the module tree the tests that need one use (debianTree's, or Debian 13's).
	tree func(t testing.TB) (root, kver string)
}

var releases = []release{
	{name: "kmod30", environ: []string{"MODLOAD_KMOD_COMPAT=30"}, kmod: func(t testing.TB) []string { return []string{kmodModinfo(t)} }, tree: debianTree},
	{name: "kmod34", kmod: kmod34, tree: debianTree},
	{name: "kmod34-debian13", kmod: kmod34, tree: func(t testing.TB) (string, string) {
		tr := difftest.Debian13Tree(t)
		return tr.Root, tr.Version
	}},
}

func kmod34(t testing.TB) []string { return difftest.Kmod34Argv(t, "modinfo") }

// moduleDir is the tree's module directory, in either layout.
func moduleDir(root, kver string) string { return difftest.Tree{Root: root, Version: kver}.Dir() }

func forReleases(t *testing.T, f func(t *testing.T, rel release)) {
	for _, rel := range releases {
		t.Run(rel.name, func(t *testing.T) { f(t, rel) })
	}
}

func (rel release) ours(args ...string) result {
	var so, se bytes.Buffer
	env := &cli.Env{Stdin: strings.NewReader(""), Stdout: &so, Stderr: &se, Environ: append([]string{"LC_ALL=C"}, rel.environ...), ModloadConf: "-"}
	code := Main(env, append([]string{"modinfo"}, args...))
	return result{so.String(), se.String(), code}
}

func runKmod(t testing.TB, bin []string, args ...string) result {
	cmd := exec.Command(bin[0], append(bin[1:], args...)...)
	if len(bin) == 1 {
		cmd.Args[0] = "modinfo" // glibc's getopt messages start with argv[0] (kmod 34's is set by --argv0)
	}
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	r, err := difftest.Run(cmd)
	if err != nil {
		t.Fatalf("run %s %q: %v", bin, args, err)
	}
	return result{r.Stdout, r.Stderr, r.Code}
}

// runOurs is modinfo as kmod 30, which the recorded goldens hold.
func runOurs(args ...string) result { return releases[0].ours(args...) }

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
	dir := moduleDir(root, kver)
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

func diffAll(t *testing.T, rel release, bin []string, items [][]string) {
	var mu sync.Mutex
	failures := 0
	parallel(items, func(args []string) {
		want := runKmod(t, bin, args...)
		got := rel.ours(args...)
		mu.Lock()
		defer mu.Unlock()
		if failures < 20 && !compare(t, args, want, got) {
			failures++
		}
	})
}

// TestDiffEveryModule: `modinfo PATH` for every module file of the Debian tree, kmod vs ours.
func TestDiffEveryModule(t *testing.T) { forReleases(t, testDiffEveryModule) }

func testDiffEveryModule(t *testing.T, rel release) {
	bin := rel.kmod(t)
	root, kver := rel.tree(t)
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
		want := runKmod(t, bin, args...)
		got := rel.ours(args...)
		if want == got {
			return
		}
		culprit := false
		for _, f := range args {
			want, got := runKmod(t, bin, f), rel.ours(f)
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
func TestDiffFlags(t *testing.T) { forReleases(t, testDiffFlags) }

func testDiffFlags(t *testing.T, rel release) {
	bin := rel.kmod(t)
	root, kver := rel.tree(t)
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
	diffAll(t, rel, bin, items)
}

// TestDiffByName: names resolved through the module directory with -b and -k, and builtins
// (every one, those that are also a module alias included), through Main's resolver, which is
// the modload binary's.
func TestDiffByName(t *testing.T) { forReleases(t, testDiffByName) }

func testDiffByName(t *testing.T, rel release) {
	bin := rel.kmod(t)
	root, kver := rel.tree(t)
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
	builtin, err := os.ReadFile(filepath.Join(moduleDir(root, kver), "modules.builtin"))
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
	diffAll(t, rel, bin, items)
}

// TestDiffErrors: usage errors, missing files, files that are not modules, corrupt files.
func TestDiffErrors(t *testing.T) { forReleases(t, testDiffErrors) }

func testDiffErrors(t *testing.T, rel release) {
	bin := rel.kmod(t)
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
	if root, kver := os.Getenv("MODLOAD_DEBIAN_ROOT"), os.Getenv("MODLOAD_DEBIAN_KVER"); root != "" && kver != "" {
		ext4, err := os.ReadFile(filepath.Join(root, "lib/modules", kver, "kernel/fs/ext4/ext4.ko"))
		if err == nil {
			for _, n := range []int{17, 64, 65, 1000, len(ext4) / 2, len(ext4) - 100} {
				items = append(items, []string{write(fmt.Sprintf("trunc%d.ko", n), ext4[:n])})
			}
		}
	}
	diffAll(t, rel, bin, items)
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
