package modprobe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/resolve"
)

func TestPrependEnvOptions(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want []string
	}{
		{"-q", []string{"p", "-q", "x"}},
		{"-d /r  -S v", []string{"p", "-d", "/r", "", "-S", "v", "x"}},
		{`"-d" /r`, []string{"p", "-d", "", "/r", "x"}}, // kmod quirk: empty word after a quoted one
		{`-S'1.0' -v`, []string{"p", "-S1.0", "-v", "x"}},
		{`a"b c"d e`, []string{"p", "ab cd", "e", "x"}},
		{`"unterminated x`, []string{"p", `"unterminated x`, "x"}},
		{"", []string{"p", "x"}},
		{"trailing ", []string{"p", "trailing", "x"}},
	} {
		got := prependEnvOptions([]string{"p", "x"}, tc.env, true)
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("prependEnvOptions(%q) (-want +got):\n%s", tc.env, diff)
		}
	}
	if got := prependEnvOptions([]string{"p", "x"}, "-q", false); len(got) != 2 {
		t.Errorf("without MODPROBE_OPTIONS: %q", got)
	}
}

func TestOptionsFromArgs(t *testing.T) {
	got := optionsFromArgs([]string{"m", "a=1", "b=x y", `c="q r"`, "flag", "d="})
	want := `a=1 b="x y" c="q r" flag d=`
	if got != want {
		t.Errorf("optionsFromArgs = %q, want %q", got, want)
	}
}

// writeTree writes a module directory with text indexes only (moddb reads them).
func writeTree(t *testing.T) (root, version string) {
	t.Helper()
	root, version = t.TempDir(), "1.0"
	dir := filepath.Join(root, "lib/modules", version)
	files := map[string]string{
		"modules.dep":     "kernel/a.ko:\nkernel/b.ko: kernel/a.ko\n",
		"modules.alias":   "alias pci:v00001234d* b\n",
		"modules.symbols": "alias symbol:a_fn a\n",
		"modules.builtin": "kernel/bi.ko\n",
	}
	for name, content := range files {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root, version
}

func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	env := &cli.Env{Stdin: strings.NewReader(""), Stdout: &o, Stderr: &e}
	code = Main(env, append([]string{"/sbin/modprobe"}, args...))
	return o.String(), e.String(), code
}

func TestMainQueries(t *testing.T) {
	root, ver := writeTree(t)
	conf := filepath.Join(t.TempDir(), "c.conf")
	os.WriteFile(conf, []byte("options b x=1\nsoftdep b post: bi\n"), 0o644)
	dir := root + "/lib/modules/" + ver
	common := []string{"-d", root, "-S", ver, "-C", conf}
	for _, tc := range []struct {
		args           []string
		stdout, stderr string
		code           int
	}{
		{[]string{"-D", "pci:v00001234d0001"}, "insmod " + dir + "/kernel/a.ko \ninsmod " + dir + "/kernel/b.ko x=1 \nbuiltin bi\n", "", 0},
		{[]string{"-R", "pci:v00001234d0001"}, "b\n", "", 0},
		{[]string{"-D", "symbol:a_fn", "o=2"}, "insmod " + dir + "/kernel/a.ko o=2\n", "", 0},
		{[]string{"-D", "nope"}, "", "modprobe: FATAL: Module nope not found in directory " + dir + "\n", 1},
		{[]string{"-q", "-D", "nope"}, "", "", 1},
		{[]string{"-a", "-R", "nope", "a"}, "a\n", "modprobe: WARNING: Module nope not found in directory " + dir + "\n", 1},
		{[]string{}, "", "modprobe: ERROR: missing parameters. See -h.\n", 1},
		{[]string{"-V"}, Version, "", 0},
	} {
		stdout, stderr, code := run(t, append(append([]string{}, common...), tc.args...)...)
		if stdout != tc.stdout || stderr != tc.stderr || code != tc.code {
			t.Errorf("modprobe %q:\n got %d %q %q\nwant %d %q %q", tc.args, code, stdout, stderr, tc.code, tc.stdout, tc.stderr)
		}
	}
}

// fakeLoader records plans and answers with a chosen error, sequenced by the test alone.
type fakeLoader struct {
	plans   [][]string
	envOpts []string
	err     error
}

func (f *fakeLoader) Load(_ context.Context, steps []resolve.Step, fl LoadFlags) error {
	var names []string
	for _, s := range steps {
		names = append(names, s.Kind.String()+":"+s.Module.Name+":"+s.Options)
		if fl.Print != nil {
			fl.Print(s)
		}
	}
	f.plans = append(f.plans, names)
	f.envOpts = append(f.envOpts, fl.ModprobeOptions)
	return f.err
}

func (f *fakeLoader) Remove(context.Context, resolve.Module, RemoveFlags) error { return f.err }

func TestMainLoadsThroughLoader(t *testing.T) {
	root, ver := writeTree(t)
	fl := &fakeLoader{}
	Hooks.Loader = fl
	defer func() { Hooks.Loader = nil }()
	common := []string{"-d", root, "-S", ver, "-C", os.DevNull}
	if _, stderr, code := run(t, append(common, "b", "p=1")...); code != 0 || stderr != "" {
		t.Fatalf("modprobe b: code %d stderr %q", code, stderr)
	}
	want := [][]string{{"insmod:a:", "insmod:b:p=1"}}
	if diff := cmp.Diff(want, fl.plans); diff != "" {
		t.Errorf("plans (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"-C " + os.DevNull}, fl.envOpts); diff != "" {
		t.Errorf("MODPROBE_OPTIONS for install commands (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{syscall.EEXIST, "modprobe: ERROR: could not insert 'b': Module already in kernel\n"},
		{syscall.ENOENT, "modprobe: ERROR: could not insert 'b': Unknown symbol in module, or unknown parameter (see dmesg)\n"},
		{syscall.EPERM, "modprobe: ERROR: could not insert 'b': Operation not permitted\n"},
	} {
		fl.err = tc.err
		_, stderr, code := run(t, append(common, "b")...)
		if code != 1 || stderr != tc.want {
			t.Errorf("load error %v: code %d stderr %q, want 1 %q", tc.err, code, stderr, tc.want)
		}
	}
}

func TestMainWithoutLoader(t *testing.T) {
	root, ver := writeTree(t)
	_, stderr, code := run(t, "-d", root, "-S", ver, "-C", os.DevNull, "b")
	if code != 1 || stderr != "modprobe: ERROR: could not insert 'b': Function not implemented\n" {
		t.Errorf("load without a loader: code %d stderr %q", code, stderr)
	}
	stdout, stderr, code := run(t, "-d", root, "-S", ver, "-C", os.DevNull, "-n", "-v", "bi")
	if code != 0 || stdout != "" || stderr != "" {
		t.Errorf("-n -v of a builtin: code %d stdout %q stderr %q, want nothing", code, stdout, stderr)
	}
}

func FuzzPrependEnvOptions(f *testing.F) {
	for _, s := range []string{"-q", `"-d" /r -S'v'`, `a"b c"d`, `'x`, "  "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, env string) {
		out := prependEnvOptions([]string{"p", "tail"}, env, true)
		if len(out) < 2 || out[0] != "p" || out[len(out)-1] != "tail" {
			t.Fatalf("prependEnvOptions(%q) = %q: program name or original arguments lost", env, out)
		}
		// Words never carry more bytes than the value had.
		n := 0
		for _, w := range out[1 : len(out)-1] {
			n += len(w)
		}
		if n > len(env) {
			t.Fatalf("prependEnvOptions(%q) = %q: more bytes than the input", env, out)
		}
		if !strings.ContainsAny(env, `"'`) && strings.Join(out[1:len(out)-1], " ") != strings.TrimSuffix(env, " ") && env != "" {
			t.Fatalf("prependEnvOptions(%q) = %q: unquoted input is not split on spaces", env, out)
		}
	})
}

type fakeSyslog struct {
	tag    string
	msgs   []string
	closed bool
}

func (f *fakeSyslog) Write(prio int, msg string) error {
	f.msgs = append(f.msgs, fmt.Sprintf("%d %s", prio, msg))
	return nil
}
func (f *fakeSyslog) Close() error { f.closed = true; return nil }

// TestSyslogOption: -s sends the log to syslog as "<LEVEL>: <msg>" (kmod's log_printf), not
// stderr; with no syslog daemon the messages are not on stderr either (kmod's syslog(3) tries
// the console).
func TestSyslogOption(t *testing.T) {
	root, ver := writeTree(t)
	dir := root + "/lib/modules/" + ver
	old := OpenSyslog
	defer func() { OpenSyslog = old }()
	var fs *fakeSyslog
	OpenSyslog = func(tag string) (Syslogger, error) { fs = &fakeSyslog{tag: tag}; return fs, nil }
	stdout, stderr, code := run(t, "-s", "-d", root, "-S", ver, "-D", "nope")
	if stdout != "" || stderr != "" || code != 1 {
		t.Errorf("modprobe -s -D nope: %d %q %q, want 1 and nothing on stdout/stderr", code, stdout, stderr)
	}
	want := []string{"2 FATAL: Module nope not found in directory " + dir + "\n"}
	if fs == nil || fs.tag != "modprobe" || !fs.closed || !cmp.Equal(fs.msgs, want) {
		t.Errorf("syslog got %+v, want tag modprobe, closed, messages %q", fs, want)
	}
	OpenSyslog = func(string) (Syslogger, error) { return nil, errors.New("no daemon") }
	_, stderr, code = run(t, "-s", "-d", root, "-S", ver, "-D", "nope")
	if stderr != "" || code != 1 {
		t.Errorf("without a daemon: %d %q, want 1 and nothing on stderr", code, stderr)
	}
}

// A root whose module directory is under usr/lib/modules only (an extracted Debian 13 kernel
// package; a distribution whose kmod is built with /usr/lib/modules) works with -d.
func TestUsrLibModulesLayout(t *testing.T) {
	root, ver := writeTree(t)
	if err := os.MkdirAll(filepath.Join(root, "usr/lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(root, "lib/modules"), filepath.Join(root, "usr/lib/modules")); err != nil {
		t.Fatal(err)
	}
	out, errs, code := run(t, "-d", root, "-S", ver, "-C", os.DevNull, "-D", "b")
	dir := root + "/usr/lib/modules/" + ver
	want := "insmod " + dir + "/kernel/a.ko \ninsmod " + dir + "/kernel/b.ko \n"
	if out != want || errs != "" || code != 0 {
		t.Errorf("-D b: %q %q %d, want %q", out, errs, code, want)
	}
	// Where neither exists, kmod's /lib/modules is what the message names.
	_, errs, code = run(t, "-d", root, "-S", "2.0", "-C", os.DevNull, "-D", "b")
	if wantErr := "modprobe: FATAL: Module b not found in directory " + root + "/lib/modules/2.0\n"; errs != wantErr || code != 1 {
		t.Errorf("-D b in a missing version: %q %d, want %q", errs, code, wantErr)
	}
}

// A softdep that cannot be looked up is reported through modprobe's logger: kmod 30 with
// libkmod's location, kmod 34 (whose lookup_dep serves weakdep too) without, and in other words.
func TestSoftdepLookupMessage(t *testing.T) {
	root, ver := writeTree(t)
	conf := filepath.Join(t.TempDir(), "s.conf")
	if err := os.WriteFile(conf, []byte("softdep a pre: bad]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		environ []string
		want    string
	}{
		{[]string{"MODLOAD_KMOD_COMPAT=30"}, "modprobe: ERROR: ../libkmod/libkmod-module.c:1567 lookup_softdep() failed to lookup soft dependency 'bad]', continuing anyway.\n"},
		{nil, "modprobe: ERROR: failed to lookup dependency 'bad]', continuing anyway.\n"},
	} {
		var o, e bytes.Buffer
		env := &cli.Env{Stdin: strings.NewReader(""), Stdout: &o, Stderr: &e, Environ: tc.environ, ModloadConf: "-"}
		code := Main(env, []string{"modprobe", "-d", root, "-S", ver, "-C", conf, "-D", "a"})
		if e.String() != tc.want || code != 0 {
			t.Errorf("%q: stderr %q code %d, want %q", tc.environ, e.String(), code, tc.want)
		}
	}
}
