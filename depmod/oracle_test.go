package depmod_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/modload/modload/internal/cli"
	clidepmod "github.com/modload/modload/internal/cli/depmod"
)

// kmodDepmod is an oracle: kmod 30's depmod of the host, or kmod 34's
// unpacked under MODLOAD_KMOD34_ROOT and run through its own loader.
type kmodDepmod struct {
	name   string
	argv   []string // before depmod's own arguments
	kmod30 bool
}

// findKmod30 returns the host's kmod 30 depmod, or why there is none.
func findKmod30() (kmodDepmod, string) {
	for _, p := range []string{"/sbin/depmod", "/usr/sbin/depmod"} {
		if out, err := exec.Command(p, "-V").Output(); err == nil && strings.HasPrefix(string(out), "kmod version 30\n") {
			return kmodDepmod{name: "kmod 30", argv: []string{p}, kmod30: true}, ""
		}
	}
	return kmodDepmod{}, "kmod 30's depmod not installed (/sbin/depmod -V is not kmod version 30)"
}

// findKmod34 returns kmod 34's depmod unpacked under MODLOAD_KMOD34_ROOT,
// run through its own dynamic loader, or why there is none.
func findKmod34(t *testing.T) (kmodDepmod, string) {
	r := os.Getenv("MODLOAD_KMOD34_ROOT")
	if r == "" {
		return kmodDepmod{}, "MODLOAD_KMOD34_ROOT not set: no kmod 34 to compare with"
	}
	argv := []string{r + "/usr/lib64/ld-linux-x86-64.so.2", "--library-path", r + "/usr/lib/x86_64-linux-gnu", "--argv0", "depmod", r + "/usr/bin/kmod"}
	out, err := exec.Command(argv[0], append(argv[1:], "-V")...).Output()
	if err != nil || !strings.HasPrefix(string(out), "kmod version 34") {
		t.Fatalf("kmod 34 under MODLOAD_KMOD34_ROOT=%s: %v, %q", r, err, out)
	}
	return kmodDepmod{name: "kmod 34", argv: argv}, ""
}

// oracles returns every kmod available; it skips when there is none and
// logs which one is missing.
func oracles(t *testing.T) []kmodDepmod {
	t.Helper()
	var out []kmodDepmod
	k30, why30 := findKmod30()
	k34, why34 := findKmod34(t)
	for _, c := range []struct {
		k   kmodDepmod
		why string
	}{{k30, why30}, {k34, why34}} {
		if c.why != "" {
			t.Log(c.why)
			continue
		}
		out = append(out, c.k)
	}
	if len(out) == 0 {
		t.Skip("no kmod depmod to compare with: " + why30 + "; " + why34)
	}
	return out
}

// result is what one depmod run did: its streams, exit code, and the
// files of the output directory afterwards.
type result struct {
	Stdout, Stderr string
	Code           int
	Files          map[string]string
}

func (k kmodDepmod) run(t *testing.T, args []string) result {
	t.Helper()
	cmd := exec.Command(k.argv[0], append(k.argv[1:], args...)...)
	if k.kmod30 {
		cmd.Args[0] = "depmod" // as a user runs it: messages name "depmod"
	}
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatal(err)
		}
		code = ee.ExitCode()
	}
	return result{Stdout: so.String(), Stderr: se.String(), Code: code}
}

func ours(kmod30 bool, args []string, extraEnv ...string) result {
	var so, se bytes.Buffer
	env := &cli.Env{Stdout: &so, Stderr: &se, Environ: extraEnv}
	if kmod30 {
		env.Environ = append(env.Environ, "MODLOAD_KMOD_COMPAT=30")
	}
	code := clidepmod.Main(env, append([]string{"depmod"}, args...))
	return result{Stdout: so.String(), Stderr: se.String(), Code: code}
}

// indexFiles reads the index files of dir (every modules.* but the inputs).
func indexFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		switch n := e.Name(); {
		case !strings.HasPrefix(n, "modules."), n == "modules.order", n == "modules.builtin", n == "modules.builtin.modinfo":
		default:
			b, err := os.ReadFile(filepath.Join(dir, n))
			if err != nil {
				t.Fatal(err)
			}
			out[n] = string(b)
		}
	}
	return out
}

// copyTree copies src to dst with cp -a (hard links with link), keeping
// mtimes and readdir-relevant structure.
func copyTree(t *testing.T, src, dst string, link bool) {
	t.Helper()
	os.RemoveAll(dst)
	flag := "-a"
	if link {
		flag = "-al"
	}
	if out, err := exec.Command("cp", flag, src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
}

// compare runs kmod and modload's depmod with args on fresh copies of
// tree placed at the same path (so messages name the same files), and
// reports any difference in streams, exit code or output files. "@W" in
// args stands for that path. modload runs twice, the second time on the
// cache of the first; both must agree with kmod.
func compare(t *testing.T, k kmodDepmod, tree, outSub string, link bool, args ...string) {
	t.Helper()
	work := filepath.Join(t.TempDir(), "w")
	a := make([]string, len(args))
	for i, s := range args {
		a[i] = strings.ReplaceAll(s, "@W", work)
	}
	outDir := filepath.Join(work, outSub)
	copyTree(t, tree, work, link)
	expandW(t, work)
	want := k.run(t, a)
	want.Files = indexFiles(t, outDir)
	copyTree(t, tree, work, link)
	expandW(t, work)
	before := snapshot(t, outDir)
	for _, name := range []string{"cold", "cached"} {
		got := ours(k.kmod30, a)
		got.Files = indexFiles(t, outDir)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("depmod %s (%s run): %s and modload differ (-kmod +modload):\n%s", strings.Join(a, " "), name, k.name, diff)
		}
		// The second run starts from the same files (same inodes, so
		// the cache of the first serves them) and the same indexes.
		before.restore(t, outDir)
	}
}

// expandW replaces "@W" with work in the configuration files under
// work/etc (external directories are absolute paths).
func expandW(t *testing.T, work string) {
	t.Helper()
	filepath.WalkDir(filepath.Join(work, "etc"), func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if s := string(b); strings.Contains(s, "@W") {
			os.Remove(p)
			if err := os.WriteFile(p, []byte(strings.ReplaceAll(s, "@W", work)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return nil
	})
}

type savedFile struct {
	data  []byte
	mtime time.Time
}

type dirSnapshot map[string]savedFile

// snapshot saves the modules.* files of dir.
func snapshot(t *testing.T, dir string) dirSnapshot {
	t.Helper()
	s := dirSnapshot{}
	ms, _ := filepath.Glob(filepath.Join(dir, "modules.*"))
	for _, m := range ms {
		st, err := os.Stat(m)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		s[filepath.Base(m)] = savedFile{b, st.ModTime()}
	}
	return s
}

// restore puts dir's modules.* files back as snapshot saw them.
func (s dirSnapshot) restore(t *testing.T, dir string) {
	t.Helper()
	ms, _ := filepath.Glob(filepath.Join(dir, "modules.*"))
	for _, m := range ms {
		if err := os.Remove(m); err != nil {
			t.Fatal(err)
		}
	}
	for name, f := range s {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, f.mtime, f.mtime); err != nil {
			t.Fatal(err)
		}
	}
}
