package daemoncmd

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/internal/cli/admin"
	"github.com/modload/modload/internal/daemon"
	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/internal/sys/fake"
)

// root writes a root with a boot id, a module tree the fake kernel knows (b needs a; the PCI
// alias matches b) and one PCI device with that alias.
func root(t *testing.T, k **fake.Kernel) string {
	t.Helper()
	r := t.TempDir()
	*k = fake.New(r)
	files := map[string]string{
		"proc/sys/kernel/random/boot_id":             "0f4e2f0e-1111-4222-8333-444455556666\n",
		"lib/modules/1.0/modules.dep":                "kernel/a.ko:\nkernel/b.ko: kernel/a.ko\n",
		"lib/modules/1.0/modules.alias":              "alias pci:v00001234d* b\n",
		"lib/modules/1.0/kernel/a.ko":                "module a",
		"lib/modules/1.0/kernel/b.ko":                "module b",
		"sys/devices/pci0000:00/0000:00:03.0/uevent": "MODALIAS=pci:v00001234d00000001sv0sd0bc02sc00i00\n",
	}
	for name, content := range files {
		p := filepath.Join(r, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(r, "sys/bus/pci/devices"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../devices/pci0000:00/0000:00:03.0", filepath.Join(r, "sys/bus/pci/devices/0000:00:03.0")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(r, "run/modload"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"a", "b"} {
		(*k).SetName(filepath.Join(r, "lib/modules/1.0/kernel", m+".ko"), m)
	}
	return r
}

// TestDaemon runs modloadd on a fixture root: coldplug loads the device's modules, the socket
// serves loads and statistics, SIGTERM (the context) stops it, and it leaves the timeline and
// the textfile behind.
func TestDaemon(t *testing.T) {
	var k *fake.Kernel
	r := root(t, &k)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	old := admin.DaemonHooks
	admin.DaemonHooks.Kernel = func() sys.Kernel { return k }
	admin.DaemonHooks.Context = func() (context.Context, context.CancelFunc) { return ctx, cancel }
	admin.DaemonHooks.Ready = func() { close(ready) }
	t.Cleanup(func() { admin.DaemonHooks = old })

	// systemd's notification socket: READY=1 comes once coldplug is done.
	notifyPath := filepath.Join(r, "notify")
	nl, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	sock := filepath.Join(r, "run/modload.sock")
	textfile := filepath.Join(r, "modload.prom")
	var stderr bytes.Buffer
	done := make(chan int)
	go func() {
		done <- Main(&cli.Env{Stdout: &bytes.Buffer{}, Stderr: &stderr, Environ: []string{"NOTIFY_SOCKET=" + notifyPath}},
			[]string{"modloadd", "--root", r, "-d", r, "-S", "1.0", "--no-hotplug", "--no-trigger", "--progress", "off", "--textfile", textfile})
	}()
	<-ready
	buf := make([]byte, 512)
	n, err := nl.Read(buf)
	if err != nil || !strings.HasPrefix(string(buf[:n]), "READY=1\nSTATUS=coldplug done: 1 devices, 1 loaded") {
		t.Fatalf("notification %q, %v", buf[:n], err)
	}
	c := &daemon.Client{Path: sock}
	rep, err := c.Load(ctx, "a")
	if err != nil || rep[0].Status != daemon.Loaded {
		t.Fatalf("load over the socket: %+v, %v", rep, err)
	}
	if _, err := c.Timeline(ctx); err != nil {
		t.Fatal(err)
	}
	var loadErr bytes.Buffer
	if code := Main(&cli.Env{Stdout: os.Stdout, Stderr: &loadErr}, []string{"modloadd", "load", "--root", r, "b", "nosuch"}); code != 1 ||
		loadErr.String() != "modloadd load: nosuch: nosuch: module not found\n" {
		t.Fatalf("modloadd load b nosuch: exit %d, stderr %q; want 1 and nosuch not found", code, loadErr.String())
	}
	if code := Main(&cli.Env{Stdout: os.Stdout, Stderr: os.Stderr}, []string{"modloadd", "load", "--root", r, "a", "b"}); code != 0 {
		t.Fatalf("modloadd load a b: exit %d", code)
	}
	if code := Main(&cli.Env{Stdout: os.Stdout, Stderr: os.Stderr}, []string{"modloadd", "coldplug", "--root", r}); code != 0 {
		t.Fatalf("modloadd coldplug: exit %d", code)
	}
	if code := Main(&cli.Env{Stdout: os.Stdout, Stderr: os.Stderr}, []string{"modloadd", "settle", "--root", r, "-timeout", "1m"}); code != 0 {
		t.Fatalf("modloadd settle after coldplug: exit %d", code)
	}
	var metrics bytes.Buffer
	if code := Main(&cli.Env{Stdout: &metrics, Stderr: os.Stderr}, []string{"modloadd", "metrics", "--root", r, "--socket", sock}); code != 0 {
		t.Fatalf("modloadd metrics: exit %d", code)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("modloadd: exit %d\n%s", code, stderr.String())
	}
	if n, err := nl.Read(buf); err != nil || string(buf[:n]) != "STOPPING=1" {
		t.Fatalf("notification at stop %q, %v", buf[:n], err)
	}
	if k.Count("a") != 1 || k.Count("b") != 1 {
		t.Fatalf("kernel calls a=%d b=%d, want 1 each (coldplug loads b and a; the socket's a and the requested coldplug find them live)", k.Count("a"), k.Count("b"))
	}
	// The timeline left behind has both inits, whichever of coldplug and the socket came first.
	b, err := os.ReadFile(filepath.Join(r, "run/modload/timeline.json"))
	if err != nil {
		t.Fatalf("no timeline left: %v", err)
	}
	var spans []daemon.Span
	if err := json.Unmarshal(b, &spans); err != nil || len(daemon.Blame(spans)) != 2 {
		t.Fatalf("timeline inits (%v): %+v", err, spans)
	}
	if !strings.Contains(metrics.String(), "modload_kernel_calls_total ") {
		t.Fatalf("modloadd metrics:\n%s", metrics.String())
	}
	tf, err := os.ReadFile(textfile)
	// The device's request, loaded by the first coldplug and again by the requested one.
	if err != nil || !strings.Contains(string(tf), `modload_daemon_requests_total{result="loaded"} 2`) {
		t.Fatalf("textfile (%v):\n%s", err, tf)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket left behind: %v", err)
	}
	for _, want := range []string{"modloadd started", "coldplug pass", "modloadd stopped"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, stderr.String())
		}
	}
}

// TestSettleCommand: settle without a daemon fails and says so; flags that leave nothing to
// load devices' modules are refused.
func TestSettleCommand(t *testing.T) {
	r := t.TempDir()
	var stderr bytes.Buffer
	if code := Main(&cli.Env{Stdout: os.Stdout, Stderr: &stderr}, []string{"modloadd", "settle", "--root", r}); code != 1 ||
		!strings.Contains(stderr.String(), "modload daemon not running") {
		t.Fatalf("settle without a daemon: exit %d, stderr %q", code, stderr.String())
	}
	stderr.Reset()
	if code := Main(&cli.Env{Stdout: os.Stdout, Stderr: &stderr}, []string{"modloadd", "coldplug", "--root", r}); code != 1 ||
		!strings.Contains(stderr.String(), "modload daemon not running") {
		t.Fatalf("coldplug without a daemon: exit %d, stderr %q", code, stderr.String())
	}
	stderr.Reset()
	if code := Main(&cli.Env{Stdout: os.Stdout, Stderr: &stderr}, []string{"modloadd", "settle", "--root", r, "-timeout", "0s"}); code != 2 {
		t.Fatalf("settle -timeout 0s: exit %d, stderr %q", code, stderr.String())
	}
	stderr.Reset()
	if code := Main(&cli.Env{Stdout: os.Stdout, Stderr: &stderr}, []string{"modloadd", "--root", r, "--no-coldplug", "--no-hotplug"}); code != 2 ||
		!strings.Contains(stderr.String(), "leave nothing") {
		t.Fatalf("modloadd --no-coldplug --no-hotplug: exit %d, stderr %q", code, stderr.String())
	}
}
