package probe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modload/modload/internal/cli/modprobe"
	"github.com/modload/modload/internal/sys/fake"
	"github.com/modload/modload/resolve"
	"github.com/modload/modload/stats"
)

const bootID = "3d7c1c56-0000-4000-8000-000000000001"

type env struct {
	t      *testing.T
	root   string
	kernel *fake.Kernel
	stderr bytes.Buffer
	sys    *System
}

// newEnv makes a fixture root (boot id, sysfs, runtime dir) with one fake module file per name.
func newEnv(t *testing.T, names ...string) *env {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"proc/sys/kernel/random", "sys/module", "run/modload", "mods"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "proc/sys/kernel/random/boot_id"), []byte(bootID+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, root: root, kernel: fake.New(root)}
	for _, n := range names {
		p := e.path(n)
		if err := os.WriteFile(p, []byte("fake module "+n), 0o644); err != nil {
			t.Fatal(err)
		}
		e.kernel.SetName(p, n)
	}
	s, err := Open(Options{Root: root, Kernel: e.kernel, Environ: []string{"PATH=/usr/bin:/bin"}, Stdout: &bytes.Buffer{}, Stderr: &e.stderr})
	if err != nil {
		t.Fatal(err)
	}
	e.sys = s
	return e
}

func (e *env) path(name string) string { return filepath.Join(e.root, "mods", name+".ko") }

func (e *env) step(name string, required, target bool) resolve.Step {
	return resolve.Step{Kind: resolve.Insmod, Module: resolve.Module{Name: name, Path: e.path(name)}, Required: required, Target: target}
}

func TestLoadProbeListOnce(t *testing.T) {
	e := newEnv(t, "dep", "soft", "target")
	steps := []resolve.Step{e.step("soft", false, false), e.step("dep", true, false), e.step("target", true, true)}
	for i := 0; i < 3; i++ {
		if err := e.sys.Load(context.Background(), steps, modprobe.LoadFlags{}); err != nil {
			t.Fatalf("load %d: %v", i, err)
		}
	}
	var order []string
	for _, c := range e.kernel.Calls() {
		order = append(order, c.Name)
	}
	if got := strings.Join(order, " "); got != "soft dep target" {
		t.Fatalf("kernel calls %q, want %q (once each, in probe order)", got, "soft dep target")
	}
	snap, err := e.sys.store.Load()
	if err != nil {
		t.Fatal(err)
	}
	if snap.KernelCalls != 3 || snap.AlreadyLive != 2 {
		t.Fatalf("per-boot stats: kernel calls %d already live %d, want 3 and 2 (the later loads stop at the live target)", snap.KernelCalls, snap.AlreadyLive)
	}
}

func TestSoftdepFailureIgnoredRequiredFailureStops(t *testing.T) {
	e := newEnv(t, "soft", "dep", "target")
	e.kernel.SetResult("soft", syscall.ENODEV)
	steps := []resolve.Step{e.step("soft", false, false), e.step("target", true, true)}
	if err := e.sys.Load(context.Background(), steps, modprobe.LoadFlags{}); err != nil {
		t.Fatalf("failing softdep failed the load: %v", err)
	}
	e.kernel.SetResult("dep", syscall.ENODEV)
	e.kernel.Unload("target")
	steps = []resolve.Step{e.step("dep", true, false), e.step("target", true, true)}
	for i := 0; i < 2; i++ {
		err := e.sys.Load(context.Background(), steps, modprobe.LoadFlags{})
		if !errors.Is(err, syscall.ENODEV) {
			t.Fatalf("load %d with failing dependency: %v, want ENODEV", i, err)
		}
	}
	if n := e.kernel.Count("dep"); n != 1 {
		t.Fatalf("failing dependency sent to the kernel %d times, want 1 (remembered)", n)
	}
	if n := e.kernel.Count("target"); n != 1 {
		t.Fatalf("target loaded %d times after its dependency failed, want only the first load", n)
	}
}

func TestFirstTimeAndInsmod(t *testing.T) {
	e := newEnv(t, "m")
	ctx := context.Background()
	if err := e.sys.LoadFile(ctx, e.path("m"), "", 0); err != nil {
		t.Fatal(err)
	}
	if err := e.sys.LoadFile(ctx, e.path("m"), "", 0); !errors.Is(err, syscall.EEXIST) {
		t.Fatalf("insmod of a loaded module: %v, want EEXIST", err)
	}
	steps := []resolve.Step{e.step("m", true, true)}
	if err := e.sys.Load(ctx, steps, modprobe.LoadFlags{}); err != nil {
		t.Fatalf("modprobe of a loaded module: %v", err)
	}
	if err := e.sys.Load(ctx, steps, modprobe.LoadFlags{FirstTime: true}); !errors.Is(err, syscall.EEXIST) {
		t.Fatalf("modprobe --first-time of a loaded module: %v, want EEXIST", err)
	}
	if n := e.kernel.Count("m"); n != 1 {
		t.Fatalf("%d kernel calls, want 1", n)
	}
}

func TestConcurrentLoadsOneCallEach(t *testing.T) {
	names := []string{"a", "b", "c", "d"}
	e := newEnv(t, names...)
	hold := e.kernel.Hold("a")
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			tgt := names[1+i%3]
			errs <- e.sys.Load(context.Background(), []resolve.Step{e.step("a", true, false), e.step(tgt, true, true)}, modprobe.LoadFlags{})
		}(i)
	}
	<-hold.Entered()
	hold.Release()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range names {
		if c := e.kernel.Count(n); c != 1 {
			t.Errorf("%s: %d kernel calls, want 1", n, c)
		}
	}
}

func TestRemove(t *testing.T) {
	e := newEnv(t, "dep", "m")
	ctx := context.Background()
	if err := e.sys.Load(ctx, []resolve.Step{e.step("dep", true, false), e.step("m", true, true)}, modprobe.LoadFlags{}); err != nil {
		t.Fatal(err)
	}
	// m uses dep: dep's holders/ names m, as the kernel shows it.
	if err := os.MkdirAll(filepath.Join(e.root, "sys/module/dep/holders/m"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.root, "sys/module/m/refcnt"), []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var printed []string
	f := modprobe.RemoveFlags{Print: func(l string) { printed = append(printed, l) }}
	if err := e.sys.Remove(ctx, resolve.Module{Name: "m"}, f); !errors.Is(err, syscall.EBUSY) {
		t.Fatalf("remove of a module in use: %v, want EBUSY", err)
	}
	if !strings.Contains(e.stderr.String(), "Module m is in use.") {
		t.Fatalf("stderr %q lacks kmod's in-use message", e.stderr.String())
	}
	if err := os.WriteFile(filepath.Join(e.root, "sys/module/m/refcnt"), []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.sys.Remove(ctx, resolve.Module{Name: "m"}, f); err != nil {
		t.Fatal(err)
	}
	if strings.Join(printed, "") != "rmmod m\nrmmod dep\n" {
		t.Fatalf("printed %q, want m then its unused dependency", printed)
	}
	for _, n := range []string{"m", "dep"} {
		if _, err := os.Stat(filepath.Join(e.root, "sys/module", n)); !os.IsNotExist(err) {
			t.Errorf("%s still loaded: %v", n, err)
		}
	}
	e.stderr.Reset()
	if err := e.sys.Remove(ctx, resolve.Module{Name: "m"}, modprobe.RemoveFlags{FirstTime: true}); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("remove --first-time of an absent module: %v, want ENOENT", err)
	}
	if e.stderr.String() != "modprobe: FATAL: Module m is not in kernel.\n" {
		t.Fatalf("stderr %q", e.stderr.String())
	}
}

func TestStatsAddUpAcrossSystems(t *testing.T) {
	e := newEnv(t, "m")
	if err := e.sys.LoadFile(context.Background(), e.path("m"), "", 0); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(Options{Root: e.root, Kernel: e.kernel, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	_ = s2.Load(context.Background(), []resolve.Step{e.step("m", true, true)}, modprobe.LoadFlags{})
	var snap stats.Snapshot
	if snap, err = s2.store.Load(); err != nil {
		t.Fatal(err)
	}
	if snap.Requests != 2 || snap.KernelCalls != 1 {
		t.Fatalf("requests %d kernel calls %d, want 2 and 1", snap.Requests, snap.KernelCalls)
	}
}

func TestInsecureRuntimeDir(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "run")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	z := &Lazy{Options: Options{Root: root, RuntimeDir: dir, Kernel: fake.New(root), Environ: []string{}}}
	err := z.LoadFile(context.Background(), "/nonexistent.ko", "", 0)
	if err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("world-writable runtime dir: %v, want an error naming it", err)
	}
}

// TestFirstTimeKernelEEXIST: with --first-time, the kernel's EEXIST for the target (a load that
// arrived between the in-kernel check and the call) is an error; without it, success.
func TestFirstTimeKernelEEXIST(t *testing.T) {
	e := newEnv(t, "m")
	e.kernel.SetResult("m", syscall.EEXIST)
	steps := []resolve.Step{e.step("m", true, true)}
	if err := e.sys.Load(context.Background(), steps, modprobe.LoadFlags{}); err != nil {
		t.Fatalf("EEXIST without --first-time: %v, want success", err)
	}
	if err := e.sys.Load(context.Background(), steps, modprobe.LoadFlags{FirstTime: true}); !errors.Is(err, syscall.EEXIST) {
		t.Fatalf("EEXIST with --first-time: %v, want EEXIST", err)
	}
}

// busyKernel answers delete_module with EAGAIN (in use, O_NONBLOCK) a number of times first.
type busyKernel struct {
	*fake.Kernel
	mu      sync.Mutex
	eagain  int
	deletes int
}

func (k *busyKernel) DeleteModule(name string, flags int) error {
	k.mu.Lock()
	k.deletes++
	busy := k.deletes <= k.eagain
	k.mu.Unlock()
	if busy {
		return syscall.EAGAIN
	}
	return k.Kernel.DeleteModule(name, flags)
}

// modprobe -r -w: no refcount check (kmod skips it with a wait), delete_module's EAGAIN is
// retried with a growing delay until it goes or the deadline passes; messages go through the
// tool's logger. The clock is the test's: no real waiting.
func TestRemoveWait(t *testing.T) {
	for _, tc := range []struct {
		name    string
		eagain  int
		wait    uint64
		wantErr error
		deletes int
		errs    string
	}{
		{name: "goes after two retries", eagain: 2, wait: 5000, deletes: 3},
		{name: "deadline passes", eagain: 1000, wait: 50, wantErr: syscall.EAGAIN, deletes: 4,
			errs: "ERR could not remove 'm': Resource temporarily unavailable\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "m")
			ctx := context.Background()
			if err := e.sys.Load(ctx, []resolve.Step{e.step("m", true, true)}, modprobe.LoadFlags{}); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(e.root, "sys/module/m/refcnt"), []byte("1\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			k := &busyKernel{Kernel: e.kernel, eagain: tc.eagain}
			s, err := Open(Options{Root: e.root, Kernel: k, Environ: []string{"PATH=/usr/bin:/bin"}, Stdout: &bytes.Buffer{}, Stderr: &e.stderr})
			if err != nil {
				t.Fatal(err)
			}
			clock := time.Unix(0, 0)
			var delays []time.Duration
			s.now = func() time.Time { return clock }
			s.after = func(d time.Duration) <-chan time.Time {
				delays = append(delays, d)
				clock = clock.Add(d)
				c := make(chan time.Time, 1)
				c <- clock
				return c
			}
			var msgs strings.Builder
			f := modprobe.RemoveFlags{WaitMsec: tc.wait,
				Logf: func(format string, args ...any) { fmt.Fprintf(&msgs, "LOG "+format, args...) },
				Errf: func(format string, args ...any) { fmt.Fprintf(&msgs, "ERR "+format, args...) }}
			err = s.Remove(ctx, resolve.Module{Name: "m"}, f)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Remove: %v, want %v", err, tc.wantErr)
			}
			if k.deletes != tc.deletes {
				t.Errorf("%d delete_module calls, want %d (delays %v)", k.deletes, tc.deletes, delays)
			}
			for i := 1; i < len(delays); i++ {
				if delays[i] < delays[i-1] {
					t.Errorf("delays %v do not grow", delays)
				}
			}
			if msgs.String() != tc.errs {
				t.Errorf("messages %q, want %q", msgs.String(), tc.errs)
			}
			if e.stderr.Len() != 0 {
				t.Errorf("written to stderr directly: %q", e.stderr.String())
			}
		})
	}
}

// A typo in /etc/modload.conf is reported (file and line), not silently taken as the default.
func TestConfigWarning(t *testing.T) {
	e := newEnv(t)
	if err := os.MkdirAll(filepath.Join(e.root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.root, "etc/modload.conf"), []byte("dedup = of\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if _, err := Open(Options{Root: e.root, Kernel: e.kernel, Environ: []string{}, Stdout: &bytes.Buffer{}, Stderr: &stderr}); err != nil {
		t.Fatal(err)
	}
	if got := stderr.String(); !strings.Contains(got, "etc/modload.conf:1:") || !strings.Contains(got, "line skipped") {
		t.Errorf("stderr %q, want a warning naming etc/modload.conf line 1", got)
	}
}
