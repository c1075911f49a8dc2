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

var update = flag.Bool("update", false, "rewrite testdata/want.txtar from kmod's insmod")

type result = difftest.Result

// cases are insmod command lines that kmod 30 accepts or rejects in the same way we do.
var cases = [][]string{
	{},
	{"-"},
	{"/nonexist.ko"},
	{"testdata/files/"},
	{"testdata/files"},
	{"testdata/files/short.ko"},
	{"testdata/files/a.ko"},
	{"testdata/files/a.ko", "x=1", "y=2"},
	{"-f", "testdata/files/a.ko"},
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

func runOurs(l Loader, args ...string) result {
	var out, errb bytes.Buffer
	code := Command{Loader: l}.Main(&cli.Env{Stdout: &out, Stderr: &errb}, append([]string{"insmod"}, args...))
	return result{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

func runKmod(t *testing.T, args ...string) result {
	t.Helper()
	if _, err := exec.LookPath("insmod"); err != nil {
		t.Skipf("kmod's insmod is not installed: %v", err)
	}
	r, err := difftest.Run(exec.Command("insmod", args...))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRecorded compares with kmod 30's output recorded on a host without module support.
func TestRecorded(t *testing.T) {
	if *update {
		if _, err := os.Stat("/proc/modules"); err == nil {
			t.Fatal("record on a host without module support: kmod must not load anything")
		}
		var names []string
		var got []result
		for _, args := range cases {
			names = append(names, caseName(args))
			got = append(got, runKmod(t, args...))
		}
		comment := "Output of Debian's kmod 30 insmod, on a host without module support (go test -update).\n"
		if err := difftest.WriteRecorded("testdata/want.txtar", comment, names, got); err != nil {
			t.Fatal(err)
		}
	}
	want, err := difftest.ReadRecorded("testdata/want.txtar")
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range cases {
		n := caseName(args)
		t.Run(n, func(t *testing.T) {
			if want[n] == nil {
				t.Fatalf("no recorded output for %q (run go test -update)", n)
			}
			// The recording host had no module support: its kernel said ENOSYS.
			got := runOurs(recordedHost{}, args...)
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
func TestKmodDifferential(t *testing.T) {
	for _, args := range cases {
		t.Run(caseName(args), func(t *testing.T) {
			k := runKmod(t, args...)
			if diff := cmp.Diff(k, runOurs(hostLoader{}, args...)); diff != "" {
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
		{[]string{"--force-modversion", "testdata/files/a.ko"}, "testdata/files/a.ko [] 1"},
		{[]string{"--force-vermagic", "-v", "-s", "testdata/files/a.ko", "p"}, "testdata/files/a.ko [p] 2"},
	} {
		l := &recordingLoader{}
		if got := runOurs(l, tc.args...); got.Code != 0 || got.Stderr != "" || got.Stdout != "" {
			t.Errorf("insmod %v = %+v, want silent success", tc.args, got)
		}
		if diff := cmp.Diff([]string{tc.call}, l.calls); diff != "" {
			t.Errorf("insmod %v calls (-want +got):\n%s", tc.args, diff)
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
