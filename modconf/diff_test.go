package modconf

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/modload/modload/internal/difftest"
	"golang.org/x/tools/txtar"
)

// The differential test runs kmod's "modprobe -c" and Load+WriteTo over the cases in
// testdata/diff/*.txtar and wants the same stdout (up to ShowConfigTrailer) and stderr.
//
// A case is a txtar archive. Files named conf/..., a/..., b/... are written under a fresh
// directory; "cmdline" is the kernel command line (an empty one when absent); "modules.softdep"
// goes into the module directory. The comment holds directives, one a line:
//
//	paths: DIR...        -C arguments relative to the case directory (default: conf)
//	defaults             use kmod's default directories instead of -C: files under
//	                     etc/modprobe.d, run/modprobe.d, usr/local/lib/modprobe.d and
//	                     lib/modprobe.d are mounted there for kmod, and Base is the case
//	                     directory for Load
//	decode: FILE         replace <NUL> <FF> <CR> <TAB> <VT> <BS> in FILE by their bytes
//	nonl: FILE           drop FILE's final newline
//	long: FILE N TEXT    append a line made of TEXT followed by N 'x' bytes and a newline
//	mkdir: DIR           create an empty directory
//	symlink: TARGET LINK create LINK (relative to the case directory) pointing at TARGET
//
// Every test runs against each kmod found: Debian 12's kmod 30 on the host (Load with Kmod30)
// and Debian 13's kmod 34 from MODLOAD_KMOD34_ROOT (Load as it is by default).
//
// kmod always reads /proc/cmdline, so kmod runs in a mount namespace (unshare -m) with the
// case's cmdline bind-mounted on /proc/cmdline. Without namespaces, cases with a cmdline or
// defaults are skipped and the others compare against the host's /proc/cmdline.

const diffKver = "0.0.0-modconf"

func findTool(t *testing.T, name string) string {
	t.Helper()
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skipf("kmod's %s not installed (apt-get install kmod)", name)
	return ""
}

// oracle is one kmod release to compare with.
type oracle struct {
	name string
	// argv runs a tool of this kmod: the tool's path, or a loader command ending in kmod.
	argv   func(tool string) []string
	kmod30 bool
}

func (o oracle) paths() []string {
	if o.kmod30 {
		return DefaultPaths30
	}
	return DefaultPaths
}

func (o oracle) message(err error) string {
	if o.kmod30 {
		return KmodMessage30(err)
	}
	return KmodMessage(err)
}

// oracles runs f against the host's kmod 30 and kmod 34 from MODLOAD_KMOD34_ROOT, each a
// subtest that skips with its reason when that kmod is missing.
func oracles(t *testing.T, f func(t *testing.T, o oracle)) {
	t.Run("kmod30", func(t *testing.T) {
		modprobe, depmod := findTool(t, "modprobe"), findTool(t, "depmod")
		f(t, oracle{name: "kmod30", kmod30: true, argv: func(tool string) []string {
			if tool == "depmod" {
				return []string{depmod}
			}
			return []string{modprobe}
		}})
	})
	t.Run("kmod34", func(t *testing.T) {
		difftest.Kmod34Argv(t, "modprobe")
		f(t, oracle{name: "kmod34", argv: func(tool string) []string { return difftest.Kmod34Argv(t, tool) }})
	})
}

var unshareOK = sync.OnceValue(func() bool {
	err := exec.Command("unshare", "-m", "sh", "-c", "mount --bind /dev/null /proc/cmdline").Run()
	return err == nil
})

type diffCase struct {
	name     string
	dir      string
	paths    []string
	defaults bool
	cmdline  bool
	softdep  bool
	// kmod30: Load runs as kmod 30 (the oracle is kmod 30).
	kmod30 bool
}

func setupCase(t *testing.T, file, root string, o oracle) diffCase {
	t.Helper()
	ar, err := txtar.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := diffCase{name: filepath.Base(file), dir: dir, kmod30: o.kmod30}
	contents := map[string][]byte{}
	var order []string
	for _, f := range ar.Files {
		contents[f.Name] = f.Data
		order = append(order, f.Name)
	}
	var mkdirs []string
	var symlinks [][2]string
	for _, line := range strings.Split(string(ar.Comment), "\n") {
		key, val, _ := strings.Cut(strings.TrimSpace(line), ":")
		val = strings.TrimSpace(val)
		switch key {
		case "paths":
			c.paths = strings.Fields(val)
		case "defaults":
			c.defaults = true
		case "decode":
			r := strings.NewReplacer("<NUL>", "\x00", "<FF>", "\xff", "<CR>", "\r", "<TAB>", "\t", "<VT>", "\v", "<BS>", "\\")
			contents[val] = []byte(r.Replace(string(contents[val])))
		case "nonl":
			contents[val] = bytes.TrimSuffix(contents[val], []byte("\n"))
		case "long":
			f := strings.SplitN(val, " ", 3)
			n, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatalf("%s: bad long directive %q", file, val)
			}
			if _, ok := contents[f[0]]; !ok {
				order = append(order, f[0])
			}
			contents[f[0]] = append(contents[f[0]], []byte(f[2]+strings.Repeat("x", n)+"\n")...)
		case "mkdir":
			mkdirs = append(mkdirs, val)
		case "symlink":
			f := strings.Fields(val)
			if len(f) != 2 {
				t.Fatalf("%s: bad symlink directive %q", file, val)
			}
			symlinks = append(symlinks, [2]string{f[0], f[1]})
		}
	}
	if len(c.paths) == 0 {
		c.paths = []string{"conf"}
	}
	for _, d := range mkdirs {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range symlinks {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, l[1])), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(l[0], filepath.Join(dir, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range order {
		data := contents[name]
		dst := filepath.Join(dir, name)
		switch name {
		case "cmdline":
			c.cmdline = true
		case "modules.softdep":
			c.softdep = true
			dst = filepath.Join(root, "lib/modules", diffKver, "modules.softdep")
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !c.cmdline {
		if err := os.WriteFile(filepath.Join(dir, "cmdline"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// emptyRoot builds a module tree with empty indexes made by kmod's depmod.
func emptyRoot(t *testing.T, o oracle) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "lib/modules", diffKver), 0o755); err != nil {
		t.Fatal(err)
	}
	depmod := o.argv("depmod")
	if out, err := exec.Command(depmod[0], append(depmod[1:], "-b", root, diffKver)...).CombinedOutput(); err != nil {
		t.Fatalf("depmod: %v\n%s", err, out)
	}
	return root
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// runKmod runs modprobe -c for c and returns its configuration part and stderr.
func runKmod(t *testing.T, o oracle, root string, c diffCase, ns bool) (string, string) {
	t.Helper()
	args := []string{"-c", "-d", root, "-S", diffKver}
	if !c.defaults {
		for _, p := range c.paths {
			args = append(args, "-C", c.dir+"/"+p)
		}
	}
	var cmd *exec.Cmd
	if ns {
		script := "set -e; mount --bind " + shellQuote(filepath.Join(c.dir, "cmdline")) + " /proc/cmdline\n"
		if c.defaults {
			for _, d := range o.paths() {
				src := filepath.Join(c.dir, d)
				if err := os.MkdirAll(src, 0o755); err != nil {
					t.Fatal(err)
				}
				parent := filepath.Dir(d)
				// a tmpfs over the parent makes the mount point without touching the host
				if _, err := os.Stat(d); err != nil {
					script += "mount -t tmpfs none " + parent + "; mkdir -p " + d + "\n"
				}
				script += "mount --bind " + shellQuote(src) + " " + d + "\n"
			}
		}
		var q []string
		for _, a := range append(o.argv("modprobe"), args...) {
			q = append(q, shellQuote(a))
		}
		script += "exec " + strings.Join(q, " ")
		cmd = exec.Command("unshare", "-m", "sh", "-c", script)
	} else {
		argv := append(o.argv("modprobe"), args...)
		cmd = exec.Command(argv[0], argv[1:]...)
	}
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("modprobe -c: %v\nstderr:\n%s", err, stderr.String())
	}
	out := stdout.String()
	if !strings.HasSuffix(out, ShowConfigTrailer) {
		t.Fatalf("modprobe -c output does not end with the trailer (indexes not empty?):\n%q", out)
	}
	return strings.TrimSuffix(out, ShowConfigTrailer), stderr.String()
}

func runOurs(t *testing.T, o oracle, root string, c diffCase, ns bool) (string, string) {
	t.Helper()
	var warns strings.Builder
	lo := LoadOptions{
		ModuleDir: filepath.Join(root, "lib/modules", diffKver),
		Cmdline:   filepath.Join(c.dir, "cmdline"),
		Kmod30:    c.kmod30,
		Warn:      func(err error) { warns.WriteString(o.message(err)) },
	}
	if !ns {
		lo.Cmdline = "/proc/cmdline"
	}
	if c.defaults {
		lo.Base = c.dir
	} else {
		for _, p := range c.paths {
			lo.Paths = append(lo.Paths, c.dir+"/"+p)
		}
	}
	cfg, err := Load(lo)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	var out bytes.Buffer
	n, err := cfg.WriteTo(&out)
	if err != nil || n != int64(out.Len()) {
		t.Fatalf("WriteTo = %d, %v; wrote %d bytes", n, err, out.Len())
	}
	stderr := warns.String()
	if c.defaults {
		stderr = strings.ReplaceAll(stderr, c.dir, "")
	}
	return out.String(), stderr
}

func TestDiffShowConfig(t *testing.T) { oracles(t, testDiffShowConfig) }

func testDiffShowConfig(t *testing.T, o oracle) {
	files, err := filepath.Glob("testdata/diff/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 25 {
		t.Fatalf("only %d differential cases in testdata/diff", len(files))
	}
	ns := unshareOK()
	if !ns {
		t.Log("no mount namespaces (unshare -m): cmdline and defaults cases are skipped, the rest read the host's /proc/cmdline")
	}
	template := emptyRoot(t, o)
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			root := t.TempDir()
			if err := os.CopyFS(root, os.DirFS(template)); err != nil {
				t.Fatal(err)
			}
			c := setupCase(t, file, root, o)
			if !ns && (c.cmdline || c.defaults) {
				t.Skip("needs a mount namespace to give kmod this kernel command line or these directories")
			}
			wantOut, wantErr := runKmod(t, o, root, c, ns)
			gotOut, gotErr := runOurs(t, o, root, c, ns)
			t.Logf("kmod stdout:\n%s\nkmod stderr:\n%s", wantOut, wantErr)
			if wantOut != gotOut {
				t.Errorf("stdout differs\nkmod: %q\nours: %q", wantOut, gotOut)
			}
			if wantErr != gotErr {
				t.Errorf("stderr differs\nkmod: %q\nours: %q", wantErr, gotErr)
			}
			if wantOut == "\n" && wantErr == "" {
				t.Errorf("case %s produces nothing: it tests nothing", c.name)
			}
		})
	}
}

// TestDiffModprobeOptions checks SplitOptions against kmod: MODPROBE_OPTIONS carries -C
// arguments naming directories with spaces and quotes; kmod must read exactly the
// directories SplitOptions finds.
func TestDiffModprobeOptions(t *testing.T) { oracles(t, testDiffModprobeOptions) }

func testDiffModprobeOptions(t *testing.T, or oracle) {
	root := emptyRoot(t, or)
	d := t.TempDir()
	for i, name := range []string{"a b", `q"r`, "plain", "s'q", "x"} {
		if err := os.MkdirAll(filepath.Join(d, name), 0o755); err != nil {
			t.Fatal(err)
		}
		conf := "alias dir-" + strconv.Itoa(i) + " m\n"
		if err := os.WriteFile(filepath.Join(d, name, "a.conf"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmdline := filepath.Join(d, "cmdline")
	if err := os.WriteFile(cmdline, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ns := unshareOK()
	for _, env := range []string{
		`-C "D/a b"`,
		`-C D/pl"ai"n`,
		`-C 'D/q"r'`,
		`-C "D/s'q" -C D/plain`,
		`-C D/'a b' -C D/x`,
		`-C "D/plain"`,
		`-C D/x"" -C D/p'l'ain`,
	} {
		env = strings.ReplaceAll(env, "D/", d+"/")
		args := SplitOptions(env)
		var paths []string
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "-C" {
				paths = append(paths, args[i+1])
				i++
			}
		}
		o := LoadOptions{Paths: paths, Cmdline: cmdline, Kmod30: or.kmod30}
		if !ns {
			o.Cmdline = "/proc/cmdline"
		}
		cfg, err := Load(o)
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg.Aliases) == 0 {
			t.Errorf("MODPROBE_OPTIONS=%s: SplitOptions %q names no directory that exists", env, args)
		}
		var ours bytes.Buffer
		cfg.WriteTo(&ours)

		kargs := append(or.argv("modprobe"), "-c", "-d", root, "-S", diffKver)
		var cmd *exec.Cmd
		if ns {
			q := make([]string, len(kargs))
			for i, a := range kargs {
				q[i] = shellQuote(a)
			}
			cmd = exec.Command("unshare", "-m", "sh", "-c", "set -e; mount --bind "+shellQuote(cmdline)+" /proc/cmdline; exec "+strings.Join(q, " "))
		} else {
			cmd = exec.Command(kargs[0], kargs[1:]...)
		}
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "MODPROBE_OPTIONS=" + env}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("MODPROBE_OPTIONS=%s modprobe -c: %v", env, err)
		}
		want := strings.TrimSuffix(string(out), ShowConfigTrailer)
		if want != ours.String() {
			t.Errorf("MODPROBE_OPTIONS=%s: SplitOptions gave %q\nkmod read: %q\nwe read:   %q", env, args, want, ours.String())
		}
	}
}

// showConfigPart cuts "modprobe -c" output before its trailer and index dumps.
func showConfigPart(t *testing.T, out string) string {
	t.Helper()
	i := strings.Index(out, ShowConfigTrailer)
	if i < 0 {
		t.Fatalf("modprobe -c output has no %q line", ShowConfigTrailer)
	}
	return out[:i]
}

// TestDiffHostDefaults compares the running system's configuration (kmod's default
// directories, the host's /proc/cmdline) and, when MODLOAD_DEBIAN_ROOT and
// MODLOAD_DEBIAN_KVER are set, the real Debian tree's modules.softdep.
func TestDiffHostDefaults(t *testing.T) { oracles(t, testDiffHostDefaults) }

func testDiffHostDefaults(t *testing.T, o oracle) {
	root, kver := os.Getenv("MODLOAD_DEBIAN_ROOT"), os.Getenv("MODLOAD_DEBIAN_KVER")
	if root == "" || kver == "" {
		t.Log("MODLOAD_DEBIAN_ROOT/MODLOAD_DEBIAN_KVER unset: using an empty module tree")
		root, kver = emptyRoot(t, o), diffKver
	}
	argv := append(o.argv("modprobe"), "-c", "-d", root, "-S", kver)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("modprobe -c: %v\n%s", err, stderr.String())
	}
	var warns strings.Builder
	cfg, err := Load(LoadOptions{
		ModuleDir: filepath.Join(root, "lib/modules", kver),
		Kmod30:    o.kmod30,
		Warn:      func(err error) { warns.WriteString(o.message(err)) },
	})
	if err != nil {
		t.Fatal(err)
	}
	var ours bytes.Buffer
	cfg.WriteTo(&ours)
	want := showConfigPart(t, stdout.String())
	if want != ours.String() {
		t.Errorf("stdout differs\nkmod: %q\nours: %q", want, ours.String())
	}
	if stderr.String() != warns.String() {
		t.Errorf("stderr differs\nkmod: %q\nours: %q", stderr.String(), warns.String())
	}
	if len(cfg.Options)+len(cfg.Softdeps)+len(cfg.Aliases)+len(cfg.Blacklist) == 0 {
		t.Errorf("the host configuration is empty: this test compares nothing")
	}
}

// readCorpus decodes the []byte inputs of a committed fuzz corpus.
func readCorpus(t *testing.T, fuzzer string) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata/fuzz", fuzzer, "*"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitN(string(data), "\n", 3)
		if len(lines) < 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") {
			t.Fatalf("%s: not a go test fuzz v1 []byte entry", f)
		}
		lit := strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")")
		s, err := strconv.Unquote(lit)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = []byte(s)
	}
	return out
}

// TestDiffFuzzCorpus runs every committed FuzzParse and FuzzCmdline input through kmod and
// through Load: the fuzzers' hostile inputs must give kmod's output and messages too.
func TestDiffFuzzCorpus(t *testing.T) { oracles(t, testDiffFuzzCorpus) }

func testDiffFuzzCorpus(t *testing.T, o oracle) {
	root := emptyRoot(t, o)
	ns := unshareOK()

	t.Run("FuzzParse", func(t *testing.T) {
		dir := t.TempDir()
		c := diffCase{dir: dir, paths: []string{"conf"}, kmod30: o.kmod30}
		if err := os.MkdirAll(filepath.Join(dir, "conf"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cmdline"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		corpus := readCorpus(t, "FuzzParse")
		for name, data := range corpus {
			if err := os.WriteFile(filepath.Join(dir, "conf", name+".conf"), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		wantOut, wantErr := runKmod(t, o, root, c, ns)
		gotOut, gotErr := runOurs(t, o, root, c, ns)
		if wantOut != gotOut {
			t.Errorf("stdout differs over %d corpus files\nkmod: %q\nours: %q", len(corpus), wantOut, gotOut)
		}
		if wantErr != gotErr {
			t.Errorf("stderr differs\nkmod: %q\nours: %q", wantErr, gotErr)
		}
	})
	t.Run("FuzzCmdline", func(t *testing.T) {
		if !ns {
			t.Skip("needs a mount namespace to give kmod a kernel command line")
		}
		for name, data := range readCorpus(t, "FuzzCmdline") {
			dir := t.TempDir()
			c := diffCase{dir: dir, paths: []string{"none"}, kmod30: o.kmod30}
			if err := os.WriteFile(filepath.Join(dir, "cmdline"), data, 0o644); err != nil {
				t.Fatal(err)
			}
			wantOut, wantErr := runKmod(t, o, root, c, ns)
			gotOut, gotErr := runOurs(t, o, root, c, ns)
			if wantOut != gotOut || wantErr != gotErr {
				t.Errorf("%s: cmdline %q\nkmod: %q %q\nours: %q %q", name, data, wantOut, wantErr, gotOut, gotErr)
			}
		}
	})
}

// TestDiffPathTooLong: a file whose path reaches PATH_MAX is reported and skipped.
func TestDiffPathTooLong(t *testing.T) { oracles(t, testDiffPathTooLong) }

func testDiffPathTooLong(t *testing.T, o oracle) {
	root := emptyRoot(t, o)
	dir := t.TempDir()
	rel := "conf"
	for len(dir)+len(rel) < 3900 {
		rel += "/" + strings.Repeat("d", 200)
	}
	long := filepath.Join(dir, rel)
	if err := os.MkdirAll(long, 0o755); err != nil {
		t.Skipf("cannot make a deep directory: %v", err)
	}
	// dir + "/" + name is PATH_MAX long; write it through openat, open(2) refuses the path
	name := strings.Repeat("n", 4096-len(long)-1-5) + ".conf"
	r, err := os.OpenRoot(long)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.WriteFile(name, []byte("alias too-long m\n"), 0o644); err != nil {
		t.Fatalf("cannot write the long file: %v", err)
	}
	if err := os.WriteFile(filepath.Join(long, "ok.conf"), []byte("alias fits m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cmdline"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c := diffCase{dir: dir, paths: []string{rel}, kmod30: o.kmod30}
	ns := unshareOK()
	wantOut, wantErr := runKmod(t, o, root, c, ns)
	gotOut, gotErr := runOurs(t, o, root, c, ns)
	if wantOut != gotOut || wantErr != gotErr {
		t.Errorf("kmod: %q %q\nours: %q %q", wantOut, wantErr, gotOut, gotErr)
	}
	if !strings.Contains(wantErr, "path too long") {
		t.Errorf("kmod did not report the long path: %q", wantErr)
	}
}
