package admin

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modload/modload"
	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/internal/daemon"
	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/internal/sys/fake"
	"github.com/modload/modload/stats"
)

// deviceTree adds /sys/devices with uevent files, and their /sys/bus/pci links: a PCI device
// whose alias matches b and c, a device without a module, and the host bridge above them,
// which has a uevent file but no subsystem (not listed).
func deviceTree(t *testing.T, root string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(root, "sys/bus/pci/devices"), 0o755); err != nil {
		t.Fatal(err)
	}
	for dir, content := range map[string]string{
		"sys/devices/pci0000:00":              "",
		"sys/devices/pci0000:00/0000:00:03.0": "PCI_CLASS=20000\nMODALIAS=pci:v00001234d00000001sv0sd0bc02sc00i00\n",
		"sys/devices/pci0000:00/0000:00:04.0": "MODALIAS=pci:v0000FFFFd00000001sv0sd0bc02sc00i00\n",
	} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, dir, "uevent"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(dir)
		if name == "pci0000:00" {
			continue // the host bridge belongs to no subsystem: no device to coldplug
		}
		if err := os.Symlink("../../../devices/pci0000:00/"+name, filepath.Join(root, "sys/bus/pci/devices", name)); err != nil {
			t.Fatal(err)
		}
	}
}

// withKernel makes the daemon commands use k.
func withKernel(t *testing.T, k sys.Kernel) {
	old := DaemonHooks.Kernel
	DaemonHooks.Kernel = func() sys.Kernel { return k }
	t.Cleanup(func() { DaemonHooks.Kernel = old })
}

func TestColdplugCommand(t *testing.T) {
	root := fakeRoot(t)
	k := fake.New(root)
	loadTree(t, root, k)
	deviceTree(t, root)
	withKernel(t, k)
	code, _, errs := run(t, Coldplug, "coldplug", "--root", root, "-d", root, "-S", "1.0", "--no-trigger", "--progress", "off")
	if code != 0 {
		t.Fatalf("coldplug: exit %d\n%s", code, errs)
	}
	if k.Count("b") != 1 || k.Count("c") != 1 || k.Count("a") != 1 {
		t.Fatalf("kernel calls a=%d b=%d c=%d, want one each", k.Count("a"), k.Count("b"), k.Count("c"))
	}
	if !strings.Contains(errs, "coldplug done") || !strings.Contains(errs, "loaded=1 not_found=1 failed=0") {
		t.Fatalf("coldplug's log:\n%s", errs)
	}
	// The timeline it left is what blame and plot read without a daemon.
	code, out, errs := run(t, Blame, "blame", "--root", root, "--socket", filepath.Join(root, "none.sock"))
	if code != 0 || len(strings.Split(strings.TrimSpace(out), "\n")) != 3 || !strings.Contains(out, " b\n") {
		t.Fatalf("blame: exit %d\n%s%s", code, out, errs)
	}
	code, svg, errs := run(t, Plot, "plot", "--root", root, "--socket", filepath.Join(root, "none.sock"))
	if code != 0 || !strings.HasPrefix(svg, "<?xml") || !strings.Contains(svg, "init b") {
		t.Fatalf("plot: exit %d\n%.300s%s", code, svg, errs)
	}
}

// TestColdplugProgress: with a progress line, log lines clear it first and the last counts
// stay on screen.
func TestColdplugProgress(t *testing.T) {
	root := fakeRoot(t)
	k := fake.New(root)
	loadTree(t, root, k)
	deviceTree(t, root)
	withKernel(t, k)
	code, _, errs := run(t, Coldplug, "coldplug", "--root", root, "-d", root, "-S", "1.0", "--no-trigger", "--progress", "on", "--log-level", "warn")
	want := "\r\x1b[Kmodload: 2 devices, 0 requests: 0 loaded, 0 without module, 0 failed" +
		"\r\x1b[Kmodload: 2 devices, 2 requests: 1 loaded, 1 without module, 0 failed\r\x1b[Kmodload: 2 devices, 2 requests: 1 loaded, 1 without module, 0 failed\n"
	if code != 0 || errs != want {
		t.Fatalf("coldplug --progress on: exit %d, stderr %q, want %q", code, errs, want)
	}
	if code, _, _ := run(t, Coldplug, "coldplug", "--root", root, "--progress", "sometimes"); code != 2 {
		t.Fatalf("bad --progress: exit %d, want 2", code)
	}
}

func TestBlameWithoutTimeline(t *testing.T) {
	root := fakeRoot(t)
	code, _, errs := run(t, Blame, "blame", "--root", root)
	if code != 1 || !strings.Contains(errs, "no timeline: no daemon answers on") {
		t.Fatalf("blame without a timeline: exit %d: %s", code, errs)
	}
}

// TestForward: "modprobe NAME" goes to the daemon when one answers and says what kmod says
// when the daemon's load fails; other forms and a dead socket fall back.
func TestForward(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("modprobe forwards only for root")
	}
	root := fakeRoot(t)
	k := fake.New(root)
	loadTree(t, root, k)
	withKernel(t, k)
	var e Engine
	fs := NewFlags(&cli.Env{Stderr: os.Stderr}, "test")
	e.Register(fs)
	if err := fs.Parse([]string{"--root", root, "-d", root, "-S", "1.0"}); err != nil {
		t.Fatal(err)
	}
	if err := e.Open(&cli.Env{Stderr: os.Stderr, Environ: []string{}}); err != nil {
		t.Fatal(err)
	}
	sock := serveSocket(t, root, &daemon.Server{Loader: e.Requests, Logger: e.Log})

	k.SetResult("c", sys.ENODEV)
	env := []string{SocketEnv + "=" + sock}
	for _, tc := range []struct {
		args    []string
		handled bool
		code    int
		stderr  string
	}{
		{[]string{"modprobe", "-q", "--", "b"}, true, 0, ""},
		{[]string{"modprobe", "c"}, true, 1, "modprobe: ERROR: could not insert 'c': No such device\n"},
		{[]string{"modprobe", "-q", "c"}, true, 1, ""},
		{[]string{"modprobe", "nosuch"}, true, 1, "modprobe: FATAL: Module nosuch not found in directory /lib/modules/"},
		{[]string{"modprobe", "-r", "b"}, false, 0, ""},
		{[]string{"modprobe", "b", "param=1"}, false, 0, ""},
	} {
		var out, errb strings.Builder
		code, handled := Forward(&cli.Env{Stdout: &out, Stderr: &errb, Environ: env}, tc.args)
		if handled != tc.handled || code != tc.code || !strings.HasPrefix(errb.String(), tc.stderr) {
			t.Errorf("%q: handled %v exit %d stderr %q; want %v %d %q", tc.args, handled, code, errb.String(), tc.handled, tc.code, tc.stderr)
		}
	}
	if k.Count("b") != 1 || k.Count("a") != 1 {
		t.Errorf("the daemon loaded a %d, b %d times; want once", k.Count("a"), k.Count("b"))
	}
	for _, kv := range []string{NoDaemonEnv + "=1", "MODPROBE_OPTIONS=-v", "MODLOAD_INSTALL_CHAIN=x", "MODLOAD_ROOT=/tmp"} {
		if _, handled := Forward(&cli.Env{Environ: append(slices.Clone(env), kv)}, []string{"modprobe", "b"}); handled {
			t.Errorf("forwarded with %s", kv)
		}
	}
	if _, handled := Forward(&cli.Env{Environ: []string{SocketEnv + "=" + filepath.Join(root, "none.sock")}}, []string{"modprobe", "b"}); handled {
		t.Error("handled with no daemon")
	}
}

// TestInsertError: a failure that is not the kernel's errno (an install command's, a module
// without a file) is said once with its module: the engine's error already says "could not
// insert".
func TestInsertError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&daemon.LoadError{Module: "m", Err: &modload.RequestError{Request: "alias",
			Err: &modload.ModuleError{Module: "m", Err: errors.New("install command failed")}}},
			"could not insert 'm': install command failed"},
		{&daemon.LoadError{Module: "m", Errno: syscall.ENODEV, Err: &modload.ModuleError{Module: "m", Err: syscall.ENODEV}},
			"could not insert 'm': No such device"},
		{&daemon.LoadError{Module: "alias", Err: errors.New("bad index")}, "could not insert 'alias': bad index"},
	} {
		if got := insertError("alias", tc.err); got != tc.want {
			t.Errorf("insertError(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// TestStatsAsksDaemon: with a daemon answering, modload stats prints its snapshot, not the
// per-boot file's.
func TestStatsAsksDaemon(t *testing.T) {
	root := fakeRoot(t)
	serveSocket(t, root, &daemon.Server{Stats: func() (stats.Snapshot, error) { return stats.Snapshot{Requests: 4242}, nil }})
	code, out, errs := run(t, Stats, "stats", "--root", root, "--json")
	if code != 0 || !strings.Contains(out, `"requests": 4242`) {
		t.Fatalf("stats with a daemon: exit %d\n%s%s", code, out, errs)
	}
}

// serveSocket serves srv on <root>/run/modload.sock until the test ends, and returns the path.
func serveSocket(t *testing.T, root string, srv *daemon.Server) string {
	t.Helper()
	sock := filepath.Join(root, "run/modload.sock")
	l, err := daemon.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return sock
}

// TestDaemonExecs: modload daemon runs modloadd from PATH with its arguments, and says so
// when there is none.
func TestDaemonExecs(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "modloadd")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var got []string
	old := ExecHook
	ExecHook = func(path string, argv, env []string) error {
		got = append([]string{path}, argv...)
		return sys.ENOEXEC
	}
	defer func() { ExecHook = old }()
	var errb strings.Builder
	code := Daemon(&cli.Env{Stderr: &errb, Environ: []string{"PATH=/nonexistent:" + dir}}, []string{"daemon", "--queue", "8"})
	if code != 1 || strings.Join(got, " ") != bin+" "+bin+" --queue 8" {
		t.Fatalf("exit %d, exec %q", code, got)
	}
	errb.Reset()
	got = nil
	if code := Daemon(&cli.Env{Stderr: &errb, Environ: []string{"PATH=/nonexistent"}}, []string{"daemon"}); code != 1 || got != nil || !strings.Contains(errb.String(), "modloadd not found") {
		t.Fatalf("without modloadd: exit %d, exec %q, %s", code, got, errb.String())
	}
}

// TestBlameLive: an init the kernel announced live before its call returned is blamed for the
// time to that announcement, and the line says how much later the call returned.
func TestBlameLive(t *testing.T) {
	root := fakeRoot(t)
	t0 := time.Unix(1000, 0).UTC()
	spans := []daemon.Span{
		{Kind: daemon.Init, Name: "e1000e", Call: "finit_module", Start: t0, End: t0.Add(3 * time.Second), Live: t0.Add(200 * time.Millisecond)},
		{Kind: daemon.Init, Name: "kvm", Call: "finit_module", Start: t0, End: t0.Add(time.Second)},
	}
	b, err := json.Marshal(spans)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "run/modload/timeline.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := run(t, Blame, "blame", "--root", root, "--socket", filepath.Join(root, "none.sock"))
	want := "      1.000s kvm\n   200.000ms e1000e (finit_module returned 2.800s after live)\n"
	if code != 0 || out != want {
		t.Fatalf("blame: exit %d\n%q\nwant\n%q\n%s", code, out, want, errs)
	}
}
