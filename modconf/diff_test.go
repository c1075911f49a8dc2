package modconf

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/tools/txtar"

	"github.com/modload/modload/internal/debian"
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
	// kmod30: the case holds weakdep, which kmod 30 (the oracle) does not know, so Load runs
	// with Kmod30 to be compared with it; TestWeakdepShowConfig covers kmod 33's weakdep.
	kmod30 bool
}

func setupCase(t *testing.T, file, root string) diffCase {
	t.Helper()
	ar, err := txtar.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := diffCase{name: filepath.Base(file), dir: dir}
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
		if bytes.Contains(data, []byte("weakdep")) {
			c.kmod30 = true
		}
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
func emptyRoot(t *testing.T, depmod string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "lib/modules", diffKver), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(depmod, "-b", root, diffKver).CombinedOutput(); err != nil {
		t.Fatalf("depmod: %v\n%s", err, out)
	}
	return root
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// runKmod runs modprobe -c for c (modprobe is the oracle's command line: the host's modprobe, or
// kmod 34 through its loader) and returns its configuration part and stderr.
func runKmod(t *testing.T, modprobe []string, root string, c diffCase, ns bool) (string, string) {
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
			for _, d := range DefaultPaths {
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
		for _, a := range append(append([]string(nil), modprobe...), args...) {
			q = append(q, shellQuote(a))
		}
		script += "exec " + strings.Join(q, " ")
		cmd = exec.Command("unshare", "-m", "sh", "-c", script)
	} else {
		cmd = exec.Command(modprobe[0], append(append([]string(nil), modprobe[1:]...), args...)...)
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

func runOurs(t *testing.T, root string, c diffCase, ns bool) (string, string) {
	t.Helper()
	var warns strings.Builder
	o := LoadOptions{
		ModuleDir: filepath.Join(root, "lib/modules", diffKver),
		Cmdline:   filepath.Join(c.dir, "cmdline"),
		Kmod30:    c.kmod30,
		Warn:      func(err error) { warns.WriteString(KmodMessage(err)) },
	}
	if !ns {
		o.Cmdline = "/proc/cmdline"
	}
	if c.defaults {
		o.Base = c.dir
	} else {
		for _, p := range c.paths {
			o.Paths = append(o.Paths, c.dir+"/"+p)
		}
	}
	cfg, err := Load(o)
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

func TestDiffShowConfig(t *testing.T) {
	modprobe := findTool(t, "modprobe")
	depmod := findTool(t, "depmod")
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
	template := emptyRoot(t, depmod)
	// The oracles: the host's kmod 30 and, where debtree prepared it, kmod 34, whose answers
	// modload's default (kmod 33+) configuration reading gives; Kmod30 only against kmod 30.
	oracles := []struct {
		name   string
		argv   []string
		kmod30 bool
	}{{"kmod30", []string{modprobe}, true}}
	if root := os.Getenv("MODLOAD_KMOD34_ROOT"); root != "" {
		oracles = append(oracles, struct {
			name   string
			argv   []string
			kmod30 bool
		}{"kmod34", debian.KmodCommand(context.Background(), root, "modprobe").Args, false})
	} else if os.Getenv("MODLOAD_TEST_REQUIRE_DEBIAN") == "1" {
		t.Fatal("MODLOAD_KMOD34_ROOT unset (MODLOAD_TEST_REQUIRE_DEBIAN=1): no kmod 34 oracle")
	}
	for _, oracle := range oracles {
		t.Run(oracle.name, func(t *testing.T) { diffShowConfig(t, oracle.argv, oracle.kmod30, template, files, ns) })
	}
}

// kmod34Pending are the cases whose -c output differs from kmod 34's by what modload's kmod 34
// mode is still to change (config reading is that work's, not the test machinery's): case ->
// what differs. Set MODLOAD_KMOD34_STRICT=1 to fail on them.
var kmod34PendingCases = map[string]string{
	"14-names":         "kmod 34 drops an alias whose name holds a dot (alias dot_alias)",
	"21-backslash-eof": "kmod 34 drops a lone byte after a backslash-newline at the end of the file",
	"34-symlinks":      "kmod 34 reports a dangling configuration symlink ('Cannot stat directory entry')",
}

// libkmodLoc is the file:line that kmod 30's libkmod messages carry and kmod 34's do not.
var libkmodLoc = regexp.MustCompile(`libkmod: ([A-Z]+) \.\./libkmod/[a-z-]+\.c:[0-9]+ `)

// kmod34Pending reports (and logs) whether case name's difference from kmod 34 is pending
// modload's kmod 34 mode: a case listed in kmod34PendingCases, or libkmod's messages differing
// only by kmod 30's file:line.
func kmod34Pending(t *testing.T, name, wantOut, gotOut, wantErr, gotErr string) bool {
	if os.Getenv("MODLOAD_KMOD34_STRICT") == "1" || (wantOut == gotOut && wantErr == gotErr) {
		return false
	}
	if why, ok := kmod34PendingCases[name]; ok {
		t.Logf("differs from kmod 34, pending modload's kmod 34 mode: %s", why)
		return true
	}
	if wantOut == gotOut && libkmodLoc.ReplaceAllString(gotErr, "libkmod: $1: ") == wantErr {
		t.Logf("differs from kmod 34, pending modload's kmod 34 mode: libkmod messages without kmod 30's file:line")
		return true
	}
	return false
}

func diffShowConfig(t *testing.T, modprobe []string, kmod30 bool, template string, files []string, ns bool) {
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			root := t.TempDir()
			if err := os.CopyFS(root, os.DirFS(template)); err != nil {
				t.Fatal(err)
			}
			c := setupCase(t, file, root)
			c.kmod30 = c.kmod30 && kmod30
			if !ns && (c.cmdline || c.defaults) {
				t.Skip("needs a mount namespace to give kmod this kernel command line or these directories")
			}
			wantOut, wantErr := runKmod(t, modprobe, root, c, ns)
			gotOut, gotErr := runOurs(t, root, c, ns)
			t.Logf("kmod stdout:\n%s\nkmod stderr:\n%s", wantOut, wantErr)
			if !kmod30 && kmod34Pending(t, strings.TrimSuffix(c.name, ".txtar"), wantOut, gotOut, wantErr, gotErr) {
				return
			}
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
func TestDiffModprobeOptions(t *testing.T) {
	modprobe := findTool(t, "modprobe")
	depmod := findTool(t, "depmod")
	root := emptyRoot(t, depmod)
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
		o := LoadOptions{Paths: paths, Cmdline: cmdline}
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

		kargs := []string{modprobe, "-c", "-d", root, "-S", diffKver}
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
func TestDiffHostDefaults(t *testing.T) {
	modprobe := findTool(t, "modprobe")
	depmod := findTool(t, "depmod")
	root, kver := os.Getenv("MODLOAD_DEBIAN_ROOT"), os.Getenv("MODLOAD_DEBIAN_KVER")
	if root == "" || kver == "" {
		t.Log("MODLOAD_DEBIAN_ROOT/MODLOAD_DEBIAN_KVER unset: using an empty module tree")
		root, kver = emptyRoot(t, depmod), diffKver
	}
	cmd := exec.Command(modprobe, "-c", "-d", root, "-S", kver)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("modprobe -c: %v\n%s", err, stderr.String())
	}
	var warns strings.Builder
	cfg, err := Load(LoadOptions{
		ModuleDir: filepath.Join(root, "lib/modules", kver),
		Warn:      func(err error) { warns.WriteString(KmodMessage(err)) },
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
func TestDiffFuzzCorpus(t *testing.T) {
	modprobe := findTool(t, "modprobe")
	depmod := findTool(t, "depmod")
	root := emptyRoot(t, depmod)
	ns := unshareOK()

	t.Run("FuzzParse", func(t *testing.T) {
		dir := t.TempDir()
		c := diffCase{dir: dir, paths: []string{"conf"}}
		if err := os.MkdirAll(filepath.Join(dir, "conf"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cmdline"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		corpus := readCorpus(t, "FuzzParse")
		for name, data := range corpus {
			if bytes.Contains(data, []byte("weakdep")) {
				c.kmod30 = true
			}
			if err := os.WriteFile(filepath.Join(dir, "conf", name+".conf"), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		wantOut, wantErr := runKmod(t, []string{modprobe}, root, c, ns)
		gotOut, gotErr := runOurs(t, root, c, ns)
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
			c := diffCase{dir: dir, paths: []string{"none"}}
			if err := os.WriteFile(filepath.Join(dir, "cmdline"), data, 0o644); err != nil {
				t.Fatal(err)
			}
			wantOut, wantErr := runKmod(t, []string{modprobe}, root, c, ns)
			gotOut, gotErr := runOurs(t, root, c, ns)
			if wantOut != gotOut || wantErr != gotErr {
				t.Errorf("%s: cmdline %q\nkmod: %q %q\nours: %q %q", name, data, wantOut, wantErr, gotOut, gotErr)
			}
		}
	})
}

// TestDiffPathTooLong: a file whose path reaches PATH_MAX is reported and skipped.
func TestDiffPathTooLong(t *testing.T) {
	modprobe := findTool(t, "modprobe")
	depmod := findTool(t, "depmod")
	root := emptyRoot(t, depmod)
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
	c := diffCase{dir: dir, paths: []string{rel}}
	ns := unshareOK()
	wantOut, wantErr := runKmod(t, []string{modprobe}, root, c, ns)
	gotOut, gotErr := runOurs(t, root, c, ns)
	if wantOut != gotOut || wantErr != gotErr {
		t.Errorf("kmod: %q %q\nours: %q %q", wantOut, wantErr, gotOut, gotErr)
	}
	if !strings.Contains(wantErr, "path too long") {
		t.Errorf("kmod did not report the long path: %q", wantErr)
	}
}
