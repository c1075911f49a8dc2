package modload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modload/modload/internal/sys"
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
	sys    *Engine
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
	s, err := Open(Options{SysRoot: root, Kernel: e.kernel, Environ: []string{"PATH=/usr/bin:/bin"}, Stdout: &bytes.Buffer{}, Stderr: &e.stderr})
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
		if err := e.sys.Probe(context.Background(), steps, ProbeOptions{}); err != nil {
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
	if err := e.sys.Probe(context.Background(), steps, ProbeOptions{}); err != nil {
		t.Fatalf("failing softdep failed the load: %v", err)
	}
	e.kernel.SetResult("dep", syscall.ENODEV)
	e.kernel.Unload("target")
	steps = []resolve.Step{e.step("dep", true, false), e.step("target", true, true)}
	for i := 0; i < 2; i++ {
		err := e.sys.Probe(context.Background(), steps, ProbeOptions{})
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
	if err := e.sys.Probe(ctx, steps, ProbeOptions{}); err != nil {
		t.Fatalf("modprobe of a loaded module: %v", err)
	}
	if err := e.sys.Probe(ctx, steps, ProbeOptions{FirstTime: true}); !errors.Is(err, syscall.EEXIST) {
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
			errs <- e.sys.Probe(context.Background(), []resolve.Step{e.step("a", true, false), e.step(tgt, true, true)}, ProbeOptions{})
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
	if err := e.sys.Probe(ctx, []resolve.Step{e.step("dep", true, false), e.step("m", true, true)}, ProbeOptions{}); err != nil {
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
	f := RemoveOptions{Print: func(l string) { printed = append(printed, l) }}
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
	if err := e.sys.Remove(ctx, resolve.Module{Name: "m"}, RemoveOptions{FirstTime: true}); !errors.Is(err, syscall.ENOENT) {
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
	s2, err := Open(Options{SysRoot: e.root, Kernel: e.kernel, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	_ = s2.Probe(context.Background(), []resolve.Step{e.step("m", true, true)}, ProbeOptions{})
	var snap stats.Snapshot
	if snap, err = s2.store.Load(); err != nil {
		t.Fatal(err)
	}
	if snap.Requests != 2 || snap.KernelCalls != 1 {
		t.Fatalf("requests %d kernel calls %d, want 2 and 1", snap.Requests, snap.KernelCalls)
	}
}

// A runtime directory that cannot be trusted (or created) costs the dedup, not the load: the
// module is loaded, and a warning names the directory.
func TestInsecureRuntimeDir(t *testing.T) {
	e := newEnv(t, "m")
	dir := filepath.Join(e.root, "run")
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	var events []Event
	s, err := Open(Options{SysRoot: e.root, RuntimeDir: dir, Kernel: e.kernel, Environ: []string{}, Stderr: &stderr,
		Event: func(ev Event) { events = append(events, ev) }})
	if err != nil {
		t.Fatalf("Open with a world-writable runtime dir: %v, want it done without", err)
	}
	if err := s.LoadFile(context.Background(), e.path("m"), "", 0); err != nil {
		t.Fatalf("world-writable runtime dir: %v, want the module loaded", err)
	}
	if n := e.kernel.Count("m"); n != 1 {
		t.Errorf("%d kernel calls, want 1", n)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr %q, want the warning as an event only", stderr.String())
	}
	if len(events) != 1 || events[0].Kind != EventWarning || !strings.Contains(events[0].Err.Error(), dir) {
		t.Errorf("events %+v, want one EventWarning naming %s", events, dir)
	}
}

// TestFirstTimeKernelEEXIST: with --first-time, the kernel's EEXIST for the target (a load that
// arrived between the in-kernel check and the call) is an error; without it, success.
func TestFirstTimeKernelEEXIST(t *testing.T) {
	e := newEnv(t, "m")
	e.kernel.SetResult("m", syscall.EEXIST)
	steps := []resolve.Step{e.step("m", true, true)}
	if err := e.sys.Probe(context.Background(), steps, ProbeOptions{}); err != nil {
		t.Fatalf("EEXIST without --first-time: %v, want success", err)
	}
	if err := e.sys.Probe(context.Background(), steps, ProbeOptions{FirstTime: true}); !errors.Is(err, syscall.EEXIST) {
		t.Fatalf("EEXIST with --first-time: %v, want EEXIST", err)
	}
}

// busyKernel answers delete_module with err (EAGAIN when nil: in use, O_NONBLOCK) for the first
// fails calls, then as the fake kernel does.
type busyKernel struct {
	*fake.Kernel
	mu      sync.Mutex
	fails   int
	err     error
	deleted []string // every delete_module call's module, in order
}

func (k *busyKernel) DeleteModule(name string, flags int) error {
	k.mu.Lock()
	k.deleted = append(k.deleted, name)
	busy := len(k.deleted) <= k.fails
	err := k.err
	k.mu.Unlock()
	if busy {
		if err == nil {
			err = syscall.EAGAIN
		}
		return err
	}
	return k.Kernel.DeleteModule(name, flags)
}

func (k *busyKernel) calls() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.deleted...)
}

// removeEnv is a System over e's tree with a busyKernel and a test clock: after(d) moves the
// clock by d at once and records d, so nothing really waits. msgs gets the LOG and ERR lines.
type removeEnv struct {
	*env
	k      *busyKernel
	s      *Engine
	clock  time.Time
	delays []time.Duration
	msgs   strings.Builder
}

func newRemoveEnv(t *testing.T, e *env, fails int, err error) *removeEnv {
	t.Helper()
	r := &removeEnv{env: e, k: &busyKernel{Kernel: e.kernel, fails: fails, err: err}, clock: time.Unix(1000, 0)}
	s, oerr := Open(Options{SysRoot: e.root, Kernel: r.k, Environ: []string{"PATH=/usr/bin:/bin"}, Stdout: &bytes.Buffer{}, Stderr: &e.stderr})
	if oerr != nil {
		t.Fatal(oerr)
	}
	s.now = func() time.Time { return r.clock }
	s.after = func(d time.Duration) <-chan time.Time {
		r.delays = append(r.delays, d)
		r.clock = r.clock.Add(d)
		c := make(chan time.Time, 1)
		c <- r.clock
		return c
	}
	r.s = s
	return r
}

func (r *removeEnv) flags(wait uint64) RemoveOptions {
	return RemoveOptions{WaitMsec: wait,
		Logf: func(format string, args ...any) { fmt.Fprintf(&r.msgs, "LOG "+format, args...) },
		Errf: func(format string, args ...any) { fmt.Fprintf(&r.msgs, "ERR "+format, args...) },
		Failed: func(module string, err error, waited bool) {
			fmt.Fprintf(&r.msgs, "FAILED %s %v waited=%v\n", module, err, waited)
		}}
}

func (e *env) setRefcnt(name string, n int) {
	e.t.Helper()
	if err := os.WriteFile(filepath.Join(e.root, "sys/module", name, "refcnt"), []byte(fmt.Sprintf("%d\n", n)), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) loaded(name string) bool {
	_, err := os.Stat(filepath.Join(e.root, "sys/module", name))
	return err == nil
}

func ms(n ...int) []time.Duration {
	var out []time.Duration
	for _, v := range n {
		out = append(out, time.Duration(v)*time.Millisecond)
	}
	return out
}

// modprobe -r -w is kmod 30's rmmod_do_module/rmmod_do_remove_module: no refcount check with a
// wait, delete_module's EAGAIN retried after get_backoff_delta_msec's delays (2 ms doubling,
// never past the deadline) until it goes or the deadline passes, then Failed
// (waited); without -w the count is checked (LOG "in use") and a failed delete_module is Failed.
// Messages go through the tool's logger only. The clock is the test's: no real waiting.
func TestRemoveWait(t *testing.T) {
	for _, tc := range []struct {
		name    string
		refcnt  int
		fails   int
		err     error
		wait    uint64
		wantErr error
		deletes int
		delays  []time.Duration
		msgs    string
	}{
		{name: "goes after two retries", refcnt: 1, fails: 2, wait: 5000, deletes: 3, delays: ms(2, 4)},
		// 0, 2, 6, 14, 30, 46 and 50 ms: the last delays shrink to end at the deadline.
		{name: "deadline passes", refcnt: 1, fails: 1000, wait: 50, wantErr: syscall.EAGAIN, deletes: 7,
			delays: ms(2, 4, 8, 16, 16, 4), msgs: "FAILED m resource temporarily unavailable waited=true\n"},
		{name: "longest wait", refcnt: 1, fails: 2, wait: ^uint64(0), deletes: 3, delays: ms(2, 4)},
		{name: "other errors are not retried", refcnt: 1, fails: 1, err: syscall.EPERM, wait: 5000, wantErr: syscall.EPERM,
			deletes: 1, msgs: "FAILED m operation not permitted waited=true\n"},
		{name: "in use without -w", refcnt: 1, wantErr: syscall.EBUSY, msgs: "LOG Module m is in use.\n"},
		{name: "EAGAIN without -w", fails: 1, wantErr: syscall.EAGAIN, deletes: 1,
			msgs: "FAILED m resource temporarily unavailable waited=false\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "m")
			ctx := context.Background()
			if err := e.sys.Probe(ctx, []resolve.Step{e.step("m", true, true)}, ProbeOptions{}); err != nil {
				t.Fatal(err)
			}
			e.setRefcnt("m", tc.refcnt)
			r := newRemoveEnv(t, e, tc.fails, tc.err)
			start := r.clock
			err := r.s.Remove(ctx, resolve.Module{Name: "m"}, r.flags(tc.wait))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Remove: %v, want %v", err, tc.wantErr)
			}
			if n := len(r.k.calls()); n != tc.deletes {
				t.Errorf("%d delete_module calls, want %d (delays %v)", n, tc.deletes, r.delays)
			}
			if !slices.Equal(r.delays, tc.delays) {
				t.Errorf("delays %v, want %v", r.delays, tc.delays)
			}
			if waited := r.clock.Sub(start); waited > waitDuration(tc.wait) {
				t.Errorf("waited %v, past -w %d ms", waited, tc.wait)
			}
			if r.msgs.String() != tc.msgs {
				t.Errorf("messages %q, want %q", r.msgs.String(), tc.msgs)
			}
			if e.stderr.Len() != 0 {
				t.Errorf("written to stderr directly: %q", e.stderr.String())
			}
			if gone := !e.loaded("m"); gone != (tc.wantErr == nil) {
				t.Errorf("m removed: %v, want %v", gone, tc.wantErr == nil)
			}
		})
	}
}

// A dependency is removed after the module only when its count is 0, with -w too (kmod's step
// 4 checks kmod_module_get_refcnt(dep) == 0 whatever the wait), and its holders are never
// removed for it: --remove-holders is for the named module's holders.
func TestRemoveDependencyStillInUse(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags func(*RemoveOptions)
	}{
		{name: "-w", flags: func(f *RemoveOptions) { f.WaitMsec = 5000 }},
		{name: "--remove-holders", flags: func(f *RemoveOptions) { f.RemoveHolders = true }},
		{name: "-w --remove-holders", flags: func(f *RemoveOptions) { f.WaitMsec, f.RemoveHolders = 5000, true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "dep", "m", "other")
			ctx := context.Background()
			for _, n := range []string{"dep", "m", "other"} {
				if err := e.sys.Probe(ctx, []resolve.Step{e.step(n, true, true)}, ProbeOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			// m and other use dep: dep's count stays 1 (other's) once m is gone.
			for _, h := range []string{"m", "other"} {
				if err := os.MkdirAll(filepath.Join(e.root, "sys/module/dep/holders", h), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			e.setRefcnt("dep", 1)
			e.setRefcnt("m", 0)
			e.setRefcnt("other", 0)
			r := newRemoveEnv(t, e, 0, nil)
			var printed strings.Builder
			f := r.flags(0)
			f.Print = func(l string) { printed.WriteString(l) }
			tc.flags(&f)
			if err := r.s.Remove(ctx, resolve.Module{Name: "m"}, f); err != nil {
				t.Fatal(err)
			}
			if got := r.k.calls(); !slices.Equal(got, []string{"m"}) {
				t.Errorf("delete_module calls %q, want only m", got)
			}
			if e.loaded("m") || !e.loaded("dep") || !e.loaded("other") {
				t.Errorf("loaded after removal: m %v dep %v other %v, want only dep and other", e.loaded("m"), e.loaded("dep"), e.loaded("other"))
			}
			if printed.String() != "rmmod m\n" || r.msgs.Len() != 0 || len(r.delays) != 0 {
				t.Errorf("printed %q, messages %q, delays %v: want rmmod m only, no message, no wait", printed.String(), r.msgs.String(), r.delays)
			}
		})
	}
}

// A failing remove command is kmod's command_do LOG "Error running remove command", not an ERR.
func TestRemoveCommandFails(t *testing.T) {
	e := newEnv(t, "m")
	r := newRemoveEnv(t, e, 0, nil)
	err := r.s.Remove(context.Background(), resolve.Module{Name: "m", Remove: "exit 3"}, r.flags(1000))
	if err == nil {
		t.Fatal("failing remove command: no error")
	}
	if r.msgs.String() != "LOG Error running remove command for m\n" {
		t.Errorf("messages %q", r.msgs.String())
	}
	if len(r.k.calls()) != 0 || len(r.delays) != 0 {
		t.Errorf("delete_module calls %q, delays %v: want none", r.k.calls(), r.delays)
	}
}

// The engine reads neither MODLOAD_DEDUP nor /etc/modload.conf: the mode is what Options
// says; DedupFromEnvironment is the tools' way, reporting a bad line with file and line.
func TestDedupExplicit(t *testing.T) {
	e := newEnv(t)
	if err := os.MkdirAll(filepath.Join(e.root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.root, "etc/modload.conf"), []byte("dedup = off\ndedup = of\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MODLOAD_DEDUP", "busy")
	s, err := Open(Options{SysRoot: e.root, Kernel: e.kernel, Environ: []string{"MODLOAD_DEDUP=busy"}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Dedup() != DedupWait {
		t.Errorf("Open with the zero Dedup: mode %v, want wait (environment and config file not read)", s.Dedup())
	}
	d, warns := DedupFromEnvironment(e.root, func(string) string { return "" })
	if d != DedupOff {
		t.Errorf("DedupFromEnvironment: %v; want off from the file", d)
	}
	if len(warns) != 1 || !strings.Contains(warns[0].Error(), "etc/modload.conf:2:") {
		t.Errorf("warnings %v, want one naming etc/modload.conf line 2", warns)
	}
	if d, warns := DedupFromEnvironment(e.root, os.Getenv); len(warns) != 0 || d != DedupBusy {
		t.Errorf("DedupFromEnvironment with MODLOAD_DEDUP=busy: %v, %v", d, warns)
	}
	// A bad MODLOAD_DEDUP costs the mode, never a load: a warning, and the file decides.
	d, warns = DedupFromEnvironment(e.root, func(string) string { return "bogus" })
	if d != DedupOff || len(warns) != 2 || !strings.Contains(warns[0].Error(), "MODLOAD_DEDUP") {
		t.Errorf("DedupFromEnvironment with MODLOAD_DEDUP=bogus: %v, %v; want off from the file and a warning naming MODLOAD_DEDUP", d, warns)
	}
}

// The public flags are the kernel's.
func TestFlagsAreTheKernels(t *testing.T) {
	if FlagIgnoreModversions != sys.MODULE_INIT_IGNORE_MODVERSIONS || FlagIgnoreVermagic != sys.MODULE_INIT_IGNORE_VERMAGIC || FlagCompressedFile != sys.MODULE_INIT_COMPRESSED_FILE {
		t.Error("Flag* differ from include/uapi/linux/module.h's")
	}
}
