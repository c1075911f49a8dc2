package gate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modload/modload/internal/sys"
)

// An EEXIST caused by a loader outside the gate (udev's libkmod loading the same module at the
// same time) is the module's success, never remembered, only while the module is in the kernel:
// live, or coming and then live. When the module is gone after the call, the EEXIST is
// remembered as the module's own failure (its init returned it) until forgotten: the kernel is
// called once either way.
func TestForeignEEXISTLoads(t *testing.T) {
	for _, tc := range []struct {
		name string
		// foreign runs inside the first kernel call: another loader's module is there.
		foreign func(e *env, load LoadFunc, ctx context.Context) (Call, error)
		// comingDone is what the other loader's init does while the gate waits for it.
		comingDone func(e *env)
		want       Outcome
	}{
		{"live", func(e *env, load LoadFunc, ctx context.Context) (Call, error) {
			e.k.SetState("m", "live") // another loader's load finished first
			return load(ctx)          // the kernel answers EEXIST
		}, nil, Loaded},
		{"coming then live", func(e *env, _ LoadFunc, _ context.Context) (Call, error) {
			e.k.SetState("m", "coming")
			return Call{Bytes: 1}, sys.EEXIST
		}, func(e *env) { e.k.SetState("m", "live") }, Loaded},
		{"live then removed", func(e *env, load LoadFunc, ctx context.Context) (Call, error) {
			e.k.SetState("m", "live")
			c, err := load(ctx)
			e.k.Unload("m") // removed (rmmod) before we look
			return c, err
		}, nil, Failed},
		{"coming then failed", func(e *env, _ LoadFunc, _ context.Context) (Call, error) {
			e.k.SetState("m", "coming")
			return Call{Bytes: 1}, sys.EEXIST
		}, func(e *env) { e.k.Unload("m") }, Failed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			g := e.gate(ModeWait)
			req := e.module("m")
			if tc.comingDone != nil {
				testHookComing = func(string) { tc.comingDone(e) }
				defer func() { testHookComing = nil }()
			}
			calls := 0
			load := func(ctx context.Context) (Call, error) {
				calls++
				if calls == 1 {
					return tc.foreign(e, e.finit(req), ctx)
				}
				return e.finit(req)(ctx)
			}
			o, err := g.Load(context.Background(), req, load)
			if calls != 1 {
				t.Errorf("%d kernel calls, want 1", calls)
			}
			if err != nil && !errors.Is(err, sys.EEXIST) {
				t.Fatalf("Load = %v, %v; want EEXIST or nil", o, err)
			}
			if tc.want == Loaded {
				if s := g.state("m"); s != stateLive {
					t.Fatalf("m is %v after a successful load, want live", s)
				}
				if list, err := g.List(); err != nil || len(list) != 0 {
					t.Errorf("List = %+v, %v; want nothing remembered", list, err)
				}
				return
			}
			if s := g.state("m"); s == stateLive {
				t.Fatalf("m is live")
			}
			// Served as remembered until forgotten; then the kernel is asked again.
			if _, err := e.gate(ModeWait).Load(context.Background(), req, e.finit(req)); !errors.Is(err, sys.EEXIST) {
				t.Fatalf("another process: %v, want the remembered EEXIST", err)
			}
			if n, err := g.Forget("m"); n != 1 || err != nil {
				t.Fatalf("Forget = %d, %v; want 1", n, err)
			}
			if o, err := e.gate(ModeWait).Load(context.Background(), req, e.finit(req)); o != Loaded || err != nil {
				t.Fatalf("after Forget: %v, %v; want a kernel load", o, err)
			}
		})
	}
}

// The known race, made deterministic: a waiter in another process reads the holder's result
// after it was written but before the lock was released. That record is the holder's (its
// nonce is in the lock file), not a stale one: the waiter is served it, without a second
// kernel call.
func TestWaiterReadsResultBeforeRelease(t *testing.T) {
	e := newEnv(t)
	holderGate, waiterGate := e.gate(ModeWait), e.gate(ModeWait) // two processes
	req := e.module("m")
	e.k.SetResult("m", sys.EINVAL) // not remembered: a waiter that thinks it stale calls again
	type res struct {
		o   Outcome
		err error
	}
	waiter := make(chan res, 1)
	waiting := make(chan struct{})
	testHookLockWait = func(string) { close(waiting) }
	first := true
	testHookRecorded = func(string) {
		if !first {
			return
		}
		first = false
		// The holder has written its result and still holds the lock: the waiter arrives,
		// reads that result as the one it saw before waiting, and blocks on the lock.
		go func() { o, err := waiterGate.Load(context.Background(), req, e.finit(req)); waiter <- res{o, err} }()
		<-waiting
	}
	defer func() { testHookLockWait, testHookRecorded = nil, nil }()
	if o, err := holderGate.Load(context.Background(), req, e.finit(req)); o != Loaded || !errors.Is(err, sys.EINVAL) {
		t.Fatalf("holder: %v, %v; want loaded, EINVAL", o, err)
	}
	r := <-waiter
	if r.o != CoalescedProcess || !errors.Is(r.err, sys.EINVAL) {
		t.Errorf("waiter: %v, %v; want coalesced-process, EINVAL", r.o, r.err)
	}
	if n := e.k.Count("m"); n != 1 {
		t.Errorf("%d kernel calls, want 1", n)
	}
}

// A runtime directory that cannot be created (read-only, full or missing /run early in boot;
// here its parent is a file) or a lock file that cannot be created costs the dedup, never the
// load: the gate says so once, naming the directory, and loads.
func TestRuntimeDirUnusable(t *testing.T) {
	t.Run("directory", func(t *testing.T) {
		e := newEnv(t)
		os.WriteFile(filepath.Join(e.root, "run"), nil, 0o644)
		var warns []error
		g, err := New(Options{Root: e.root, Mode: ModeWait, ConfigFile: "-", Warn: func(err error) { warns = append(warns, err) }})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		for _, name := range []string{"a", "b"} {
			req := e.module(name)
			if o, err := g.Load(context.Background(), req, e.finit(req)); o != Loaded || err != nil {
				t.Fatalf("%s: %v, %v; want loaded", name, o, err)
			}
		}
		dir := filepath.Join(e.root, DefaultRuntimeDir)
		if len(warns) != 1 || !errors.Is(warns[0], ErrUnlocked) || !strings.Contains(warns[0].Error(), dir) {
			t.Errorf("warnings %v, want one naming %s", warns, dir)
		}
	})
	t.Run("lock file", func(t *testing.T) {
		e := newEnv(t)
		var warns []error
		g, err := New(Options{Root: e.root, Mode: ModeWait, ConfigFile: "-", Warn: func(err error) { warns = append(warns, err) }})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		req := e.module("m")
		fi, _ := sys.Stat(req.Path)
		if err := os.Mkdir(filepath.Join(g.RuntimeDir(), fileBase(fi.Identity)+".lock"), 0o700); err != nil {
			t.Fatal(err)
		}
		if o, err := g.Load(context.Background(), req, e.finit(req)); o != Loaded || err != nil {
			t.Fatalf("%v, %v; want loaded", o, err)
		}
		if len(warns) != 1 || !errors.Is(warns[0], ErrUnlocked) || !strings.Contains(warns[0].Error(), g.RuntimeDir()) {
			t.Errorf("warnings %v, want one naming %s", warns, g.RuntimeDir())
		}
	})
}

// A failure is remembered with its parameters: ENODEV often depends on them (it87 force_id=,
// parport_pc io=), so a request with other parameters (or a new options line) goes to the
// kernel, and one with the same parameters is served from memory.
func TestParamsKeyRememberedFailure(t *testing.T) {
	e := newEnv(t)
	g := e.gate(ModeWait)
	req := e.module("it87")
	e.k.SetResult("it87", sys.ENODEV)
	if _, err := g.Load(context.Background(), req, e.finit(req)); !errors.Is(err, sys.ENODEV) {
		t.Fatalf("first load: %v, want ENODEV", err)
	}
	forced := req
	forced.Params = "force_id=0x8721"
	e.k.SetResult("it87", nil)
	for _, g := range []*Gate{g, e.gate(ModeWait)} { // this process, and another
		if o, err := g.Load(context.Background(), forced, e.finit(forced)); o != Loaded || err != nil {
			t.Fatalf("new parameters: %v, %v; want a kernel load", o, err)
		}
		e.k.Unload("it87")
	}
	if o, err := g.Load(context.Background(), req, e.finit(req)); o != Loaded || err != nil {
		t.Fatalf("the first parameters again, after another load recorded its own: %v, %v; want a kernel load", o, err)
	}
	e.k.Unload("it87")
	e.k.SetResult("it87", sys.ENODEV)
	bad := req
	bad.Params = "io=0x278"
	g.Load(context.Background(), bad, e.finit(bad))
	if o, err := g.Load(context.Background(), bad, e.finit(bad)); o != RememberedFailure || !errors.Is(err, sys.ENODEV) {
		t.Fatalf("same parameters: %v, %v; want remembered ENODEV", o, err)
	}
	if n := e.k.Count("it87"); n != 5 {
		t.Errorf("%d kernel calls, want 5", n)
	}
}

// insmod ./bad.ko records the file's absolute path: from another directory, List shows the
// failure and Forget clears it.
func TestRelativePathRecordedAbsolute(t *testing.T) {
	e := newEnv(t)
	g := e.gate(ModeWait)
	req := e.module("bad")
	e.k.SetResult("bad", sys.ENODEV)
	abs := req.Path
	t.Chdir(filepath.Dir(abs))
	req.Path = "./" + filepath.Base(abs)
	if _, err := g.Load(context.Background(), req, e.finit(req)); !errors.Is(err, sys.ENODEV) {
		t.Fatalf("load: %v, want ENODEV", err)
	}
	t.Chdir(e.root)
	list, err := g.List()
	if err != nil || len(list) != 1 || list[0].Path != abs {
		t.Fatalf("List = %+v, %v; want bad at %s", list, err, abs)
	}
	if n, err := g.Forget(""); n != 1 || err != nil {
		t.Fatalf("Forget(all) = %d, %v; want 1", n, err)
	}
	req.Path = abs
	g.Load(context.Background(), req, e.finit(req))
	if n := e.k.Count("bad"); n != 2 {
		t.Errorf("after Forget: %d kernel calls, want 2", n)
	}
}

// One deadline per process: once a wait gave up, a later wait of the same process (modprobe -a
// m1 m2 m3 whose shared dependency is stuck coming, or a wait for a coming module after one
// for a lock) does not wait WaitTimeout again: it gives up at once.
func TestOneWaitDeadlinePerProcess(t *testing.T) {
	e := newEnv(t)
	g, err := New(Options{Root: e.root, Mode: ModeWait, ConfigFile: "-", WaitTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	stuck, other := e.module("stuck"), e.module("other")
	e.k.SetState("stuck", "coming") // loaded by something outside the gate, never finishing
	e.k.SetState("other", "coming")
	if _, err := g.Load(context.Background(), stuck, e.finit(stuck)); !errors.Is(err, ErrGaveUp) {
		t.Fatalf("first wait: %v, want ErrGaveUp", err)
	}
	// The second wait must not begin: should it, its context is cancelled at once.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	testHookComing = func(string) { cancel() }
	defer func() { testHookComing = nil }()
	if _, err := g.Load(ctx, other, e.finit(other)); !errors.Is(err, ErrGaveUp) || !errors.Is(err, sys.EBUSY) {
		t.Fatalf("second wait: %v, want ErrGaveUp (EBUSY) at once", err)
	}
	if n := len(e.k.Calls()); n != 0 {
		t.Errorf("%d kernel calls, want none", n)
	}
}

// A /sys/module/<m> without initstate, for a module not known as builtin, is not waited on:
// kmod calls the kernel at once, and so does the gate.
func TestDirectoryWithoutInitstateNotWaited(t *testing.T) {
	e := newEnv(t)
	g := e.gate(ModeWait)
	req := e.module("m")
	e.k.SetState("m", "") // the directory only
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	testHookComing = func(string) { cancel() } // a wait would end cancelled
	defer func() { testHookComing = nil }()
	if o, err := g.Load(ctx, req, e.finit(req)); o != Loaded || err != nil {
		t.Fatalf("%v, %v; want loaded by the kernel", o, err)
	}
}

// A waiter in another process, for a module a modload holder is loading (initstate coming),
// blocks on the holder's lock without polling, and wakes once, when the lock is released.
func TestLockWaiterWakesOnce(t *testing.T) {
	e := newEnv(t)
	holderGate, waiterGate := e.gate(ModeWait), e.gate(ModeWait)
	req := e.module("m")
	h := e.k.Hold("m")
	var polls atomic.Int32
	testHookPoll = func(string) { polls.Add(1) }
	waiting := make(chan struct{})
	testHookLockWait = func(string) { close(waiting) }
	defer func() { testHookPoll, testHookLockWait = nil, nil }()
	holder := make(chan error, 1)
	go func() { _, err := holderGate.Load(context.Background(), req, e.finit(req)); holder <- err }()
	<-h.Entered()
	type res struct {
		o   Outcome
		err error
	}
	waiter := make(chan res, 1)
	go func() { o, err := waiterGate.Load(context.Background(), req, e.finit(req)); waiter <- res{o, err} }()
	<-waiting
	h.Release()
	if err := <-holder; err != nil {
		t.Fatalf("holder: %v", err)
	}
	if r := <-waiter; r.o != CoalescedProcess || r.err != nil {
		t.Fatalf("waiter: %v, %v; want coalesced-process", r.o, r.err)
	}
	if n := polls.Load(); n != 0 {
		t.Errorf("the waiter polled sysfs %d times, want 0", n)
	}
	if n := e.k.Count("m"); n != 1 {
		t.Errorf("%d kernel calls, want 1", n)
	}
}

// A FIFO (or anything not a regular file) in place of a result or lock file does not hang the
// request: files are opened without blocking and checked before they are read; the bad file
// is taken as absent, with a warning naming it, and the module is loaded.
func TestFIFOInRuntimeDir(t *testing.T) {
	for _, suffix := range []string{".result", ".lock"} {
		t.Run(suffix, func(t *testing.T) {
			e := newEnv(t)
			var mu sync.Mutex
			var warns []error
			g, err := New(Options{Root: e.root, Mode: ModeWait, ConfigFile: "-", Warn: func(err error) {
				mu.Lock()
				warns = append(warns, err)
				mu.Unlock()
			}})
			if err != nil {
				t.Fatal(err)
			}
			req := e.module("m")
			fi, _ := sys.Stat(req.Path)
			fifo := filepath.Join(g.RuntimeDir(), fileBase(fi.Identity)+suffix)
			if err := sys.Mkfifo(fifo, 0o600); err != nil {
				t.Fatal(err)
			}
			type res struct {
				o   Outcome
				err error
			}
			done := make(chan res, 1)
			go func() { o, err := g.Load(context.Background(), req, e.finit(req)); done <- res{o, err} }()
			var r res
			select {
			case r = <-done:
			case <-time.After(time.Minute): // a failure detector, not sequencing: the load hangs
				if w, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
					w.Close() // let the reader go
				}
				r = <-done
				t.Fatalf("Load blocked on the FIFO %s (then %v, %v)", fifo, r.o, r.err)
			}
			if r.o != Loaded || r.err != nil {
				t.Fatalf("Load = %v, %v; want loaded", r.o, r.err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(warns) != 1 || !strings.Contains(warns[0].Error(), fifo) {
				t.Errorf("warnings %v, want one naming %s", warns, fifo)
			}
		})
	}
}

// A module whose init asks the kernel's helper for itself: the helper (a process whose parent
// is a kernel thread) finds the module coming, loaded by a modload holder or by something
// outside the gate, and is answered at once (EBUSY), not after the wait deadline.
func TestSelfRequestFromKernelHelper(t *testing.T) {
	for _, holder := range []bool{true, false} {
		t.Run(fmt.Sprintf("modload holder=%v", holder), func(t *testing.T) {
			e := newEnv(t)
			// This process's parent, as the fixture's /proc shows it: a kworker.
			dir := filepath.Join(e.root, "proc", strconv.Itoa(os.Getppid()))
			os.MkdirAll(dir, 0o755)
			os.WriteFile(filepath.Join(dir, "stat"), fmt.Appendf(nil, "%d (kworker/u8:3) I 2 0 0 0 -1 69238880 0 0\n", os.Getppid()), 0o644)
			g := e.gate(ModeWait)
			req := e.module("m")
			e.k.SetState("m", "coming")
			if holder {
				l := holdLock(t, g, req, 0x3ffffff) // the modprobe whose finit_module runs m's init
				defer l.Close()
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			testHookComing = func(string) { cancel() } // a wait would end cancelled
			testHookLockWait = func(string) { cancel() }
			defer func() { testHookComing, testHookLockWait = nil, nil }()
			o, err := g.Load(ctx, req, e.finit(req))
			if o != Busy || !errors.Is(err, ErrSelfRequest) || !errors.Is(err, sys.EBUSY) {
				t.Fatalf("%v, %v; want busy, ErrSelfRequest (EBUSY) at once", o, err)
			}
			if n := len(e.k.Calls()); n != 0 {
				t.Errorf("%d kernel calls, want none", n)
			}
		})
	}
}
