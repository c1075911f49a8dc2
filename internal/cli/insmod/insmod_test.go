package insmod

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/internal/difftest"
)

var update = flag.Bool("update", false, "rewrite testdata/want.txtar (kmod 30) and want34.txtar (kmod 34) from kmod's insmod")

type result = difftest.Result

// release is a kmod release the tests compare with: its recorded answers, the environment
// that makes modload reproduce it, how to run its insmod, and the cases it is compared on.
type release struct {
	name, want string
	environ    []string
	argv       func(t *testing.T) []string
	cases      [][]string
}

var releases = []release{
	{name: "kmod30", want: "testdata/want.txtar", environ: []string{"MODLOAD_KMOD_COMPAT=30"},
		argv: func(t *testing.T) []string {
			if _, err := exec.LookPath("insmod"); err != nil {
				t.Skipf("kmod's insmod is not installed: %v", err)
			}
			return []string{"insmod"}
		},
		cases: append(cases, []string{"-f", "testdata/files/a.ko"})},
	// kmod 34 strips a forced module itself before the kernel sees it and fails on a.ko,
	// which has no __versions: loading, not the tool (docs/compat.md).
	{name: "kmod34", want: "testdata/want34.txtar",
		argv:  func(t *testing.T) []string { return difftest.Kmod34Argv(t, "insmod") },
		cases: append(cases, []string{"-v", "testdata/files/a.ko"}, []string{"--force-vermagic", "testdata/files/a.ko"}, []string{"-s", "-"}, []string{"--v"})},
}

func forReleases(t *testing.T, f func(t *testing.T, rel release)) {
	for _, rel := range releases {
		t.Run(rel.name, func(t *testing.T) { f(t, rel) })
	}
}

// cases are insmod command lines that kmod accepts or rejects in the same way we do.
var cases = [][]string{
	{},
	{"-"},
	{"/nonexist.ko"},
	{"testdata/files/"},
	{"testdata/files"},
	{"testdata/files/short.ko"},
	{"testdata/files/a.ko"},
	{"testdata/files/a.ko", "x=1", "y=2"},
	{"-p", "-s", "testdata/files/a.ko"},
	{"testdata/files/a.ko", "--", "-x"},
	{"-h"},
	{"--help"},
	{"-h", "-x"},
	{"-V"},
	{"--vers"},
	{"-x"},
	{"--bogus", "a.ko"},
	{"--help=1"},
}

func caseName(args []string) string {
	if len(args) == 0 {
		return "(none)"
	}
	return strings.Join(args, " ")
}

// hostLoader stands in for the loader on this host: it opens and reads the file's magic
// as kmod_file_open does (short file: EINVAL), then answers as this host's kernel would
// for a bogus module (ENOSYS without module support, else ENOEXEC).
type hostLoader struct{}

func (hostLoader) LoadFile(_ context.Context, path, _ string, _ int) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 6)
	n, err := io.ReadFull(f, buf)
	if err != nil && n == 0 && !errors.Is(err, io.EOF) {
		return err
	}
	if n < 6 {
		return syscall.EINVAL
	}
	if _, err := os.Stat("/proc/modules"); err != nil {
		return syscall.ENOSYS
	}
	return syscall.ENOEXEC
}

type recordingLoader struct {
	calls []string
	err   error
}

func (l *recordingLoader) LoadFile(_ context.Context, path, params string, flags int) error {
	l.calls = append(l.calls, fmt.Sprintf("%s [%s] %d", path, params, flags))
	return l.err
}

func runOurs(l Loader, args ...string) result { return runOursIn(releases[1], l, args...) }

func runOursIn(rel release, l Loader, args ...string) result {
	var out, errb bytes.Buffer
	env := &cli.Env{Stdout: &out, Stderr: &errb, Environ: rel.environ, ModloadConf: "-"}
	code := Command{Loader: l}.Main(env, append([]string{"insmod"}, args...))
	return result{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

func runKmod(t *testing.T, rel release, args ...string) result {
	t.Helper()
	argv := append(rel.argv(t), args...)
	r, err := difftest.Run(exec.Command(argv[0], argv[1:]...))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRecorded compares with kmod 30's and kmod 34's output recorded on a host without
// module support.
func TestRecorded(t *testing.T) { forReleases(t, testRecorded) }

func testRecorded(t *testing.T, rel release) {
	if *update {
		if _, err := os.Stat("/proc/modules"); err == nil {
			t.Fatal("record on a host without module support: kmod must not load anything")
		}
		var names []string
		var got []result
		for _, args := range rel.cases {
			names = append(names, caseName(args))
			got = append(got, runKmod(t, rel, args...))
		}
		comment := "Output of Debian's " + rel.name + " insmod, on a host without module support (go test -update).\n"
		if err := difftest.WriteRecorded(rel.want, comment, names, got); err != nil {
			t.Fatal(err)
		}
	}
	want, err := difftest.ReadRecorded(rel.want)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range rel.cases {
		n := caseName(args)
		t.Run(n, func(t *testing.T) {
			if want[n] == nil {
				t.Fatalf("no recorded output for %q (run go test -update)", n)
			}
			// The recording host had no module support: its kernel said ENOSYS.
			got := runOursIn(rel, recordedHost{}, args...)
			if diff := cmp.Diff(*want[n], got); diff != "" {
				t.Errorf("insmod %s (-kmod +ours):\n%s", n, diff)
			}
		})
	}
}

// recordedHost is hostLoader on the recording host (no module support).
type recordedHost struct{}

func (recordedHost) LoadFile(ctx context.Context, path, params string, flags int) error {
	err := hostLoader{}.LoadFile(ctx, path, params, flags)
	if errors.Is(err, syscall.ENOEXEC) {
		return syscall.ENOSYS
	}
	return err
}

// TestKmodDifferential runs the live kmod insmod on every case. Loading bogus files is
// harmless: the kernel rejects them (or has no module support at all).
func TestKmodDifferential(t *testing.T) { forReleases(t, testKmodDifferential) }

func testKmodDifferential(t *testing.T, rel release) {
	for _, args := range rel.cases {
		t.Run(caseName(args), func(t *testing.T) {
			k := runKmod(t, rel, args...)
			if diff := cmp.Diff(k, runOursIn(rel, hostLoader{}, args...)); diff != "" {
				t.Errorf("insmod %s (-kmod +ours):\n%s", caseName(args), diff)
			}
		})
	}
}

func TestLoaderCalls(t *testing.T) {
	for _, tc := range []struct {
		args []string
		call string
	}{
		{[]string{"testdata/files/a.ko", "x=1", "y=2 3"}, "testdata/files/a.ko [x=1 y=2 3] 0"},
		{[]string{"-f", "testdata/files/a.ko"}, "testdata/files/a.ko [] 3"},
		{[]string{"-v", "-s", "testdata/files/a.ko", "p"}, "testdata/files/a.ko [p] 0"},
	} {
		l := &recordingLoader{}
		if got := runOurs(l, tc.args...); got.Code != 0 || got.Stderr != "" || got.Stdout != "" {
			t.Errorf("insmod %v = %+v, want silent success", tc.args, got)
		}
		if diff := cmp.Diff([]string{tc.call}, l.calls); diff != "" {
			t.Errorf("insmod %v calls (-want +got):\n%s", tc.args, diff)
		}
	}
	// kmod 30 had the force variants as long options.
	for _, tc := range []struct {
		args []string
		call string
	}{
		{[]string{"--force-modversion", "testdata/files/a.ko"}, "testdata/files/a.ko [] 1"},
		{[]string{"--force-vermagic", "-v", "-s", "testdata/files/a.ko", "p"}, "testdata/files/a.ko [p] 2"},
	} {
		l := &recordingLoader{}
		if got := runOursIn(releases[0], l, tc.args...); got.Code != 0 || got.Stderr != "" || got.Stdout != "" {
			t.Errorf("kmod 30: insmod %v = %+v, want silent success", tc.args, got)
		}
		if diff := cmp.Diff([]string{tc.call}, l.calls); diff != "" {
			t.Errorf("kmod 30: insmod %v calls (-want +got):\n%s", tc.args, diff)
		}
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("finit_module: %w", syscall.ENOEXEC), "Invalid module format"},
		{syscall.ENOENT, "Unknown symbol in module"},
		{syscall.ESRCH, "Module has wrong symbol version"},
		{syscall.EINVAL, "Invalid parameters"},
		{syscall.EEXIST, "File exists"},
		{syscall.EKEYREJECTED, "Key was rejected by service"},
		{errors.New("a.ko: bad ELF header at offset 0x0"), "a.ko: bad ELF header at offset 0x0"},
	} {
		got := runOurs(&recordingLoader{err: tc.err}, "testdata/files/a.ko")
		want := result{Code: 1, Stderr: "insmod: ERROR: could not insert module testdata/files/a.ko: " + tc.want + "\n"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("error %v (-want +got):\n%s", tc.err, diff)
		}
	}
	if got := runOurs(nil, "testdata/files/a.ko"); !strings.HasSuffix(got.Stderr, "Function not implemented\n") {
		t.Errorf("nil Loader: %+v", got)
	}
}

// logged collects what insmod sends to syslog in these tests.
var logged []string

func init() {
	// -s must not reach the test machine's syslog.
	openSyslog = func(tag string) (func(string), error) {
		return func(m string) { logged = append(logged, tag+": "+m) }, nil
	}
}

// TestSyslog: kmod 34's -s sends the messages to syslog; kmod 30 ignores -s.
func TestSyslog(t *testing.T) {
	for i, want := range []struct {
		stderr string
		log    []string
	}{
		{stderr: "insmod: ERROR: this tool does not support loading from stdin!\n"},
		{log: []string{"insmod: ERROR: this tool does not support loading from stdin!\n"}},
	} {
		logged = nil
		got := runOursIn(releases[i], nil, "-s", "-")
		if diff := cmp.Diff(result{Stderr: want.stderr, Code: 1}, got); diff != "" {
			t.Errorf("%s: insmod -s - (-want +got):\n%s", releases[i].name, diff)
		}
		if diff := cmp.Diff(want.log, logged); diff != "" {
			t.Errorf("%s: syslog (-want +got):\n%s", releases[i].name, diff)
		}
	}
}
