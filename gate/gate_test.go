package gate

import (
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

	"github.com/google/go-cmp/cmp"

	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/internal/sys/fake"
	"github.com/modload/modload/stats"
)

// env is a test world: a root with a fake sysfs, a boot id, module files, and a fake kernel.
type env struct {
	t    testing.TB
	root string
	k    *fake.Kernel
	sink *recSink
}

func newBenchEnv(b *testing.B) *env { return newEnv(b) }

func newEnv(t testing.TB) *env {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "proc/sys/kernel/random"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "proc/sys/kernel/random/boot_id"), []byte("0123-abcd\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "sys/module"), 0o755); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, root: root, k: fake.New(root), sink: &recSink{}}
}

// module writes a module file whose .modinfo-like content names it.
func (e *env) module(name string) Request {
	e.t.Helper()
	dir := filepath.Join(e.root, "lib/modules")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	p := filepath.Join(dir, name+".ko")
	if err := os.WriteFile(p, []byte("\x00name="+name+"\x00padding"), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return Request{Name: name, Path: p}
}

func (e *env) gate(mode Mode) *Gate {
	e.t.Helper()
	g, err := New(Options{Root: e.root, Mode: mode, Sink: e.sink, ConfigFile: "-"})
	if err != nil {
		e.t.Fatal(err)
	}
	return g
}

// finit is the LoadFunc a loader would pass: open the file, one finit_module.
func (e *env) finit(req Request) LoadFunc {
	return func(ctx context.Context) (Call, error) {
		f, err := os.Open(req.Path)
		if err != nil {
			return Call{}, err
		}
		defer f.Close()
		fi, _ := f.Stat()
		return Call{Bytes: fi.Size()}, e.k.FinitModule(f, "", 0)
	}
}

type recSink struct {
	mu     sync.Mutex
	events []stats.Event
}

func (s *recSink) Record(ev stats.Event) {
	s.mu.Lock()
	s.events = append(s.events, ev)
	s.mu.Unlock()
}

func (s *recSink) count(k stats.Kind) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, ev := range s.events {
		if ev.Kind == k {
			n++
		}
	}
	return n
}

func TestAlreadyLiveAndBuiltin(t *testing.T) {
	e := newEnv(t)
	g := e.gate(ModeWait)
	req := e.module("live_mod")
	if err := e.k.SetState("live_mod", "live"); err != nil {
		t.Fatal(err)
	}
	called := false
	o, err := g.Load(context.Background(), req, func(context.Context) (Call, error) { called = true; return Call{}, nil })
	if err != nil || o != AlreadyLive || called {
		t.Fatalf("live: outcome %v err %v called %v; want already-live, nil, false", o, err, called)
	}
	o, err = g.Load(context.Background(), Request{Name: "bi", Builtin: true}, func(context.Context) (Call, error) { called = true; return Call{}, nil })
	if err != nil || o != AlreadyLive || called {
		t.Fatalf("builtin: outcome %v err %v called %v", o, err, called)
	}
	if got := e.sink.count(stats.AlreadyLive); got != 2 {
		t.Errorf("AlreadyLive events = %d, want 2", got)
	}
}

func TestLoadThenLive(t *testing.T) {
	e := newEnv(t)
	g := e.gate(ModeWait)
	req := e.module("a")
	for i, want := range []Outcome{Loaded, AlreadyLive} {
		o, err := g.Load(context.Background(), req, e.finit(req))
		if err != nil || o != want {
			t.Fatalf("load %d: %v, %v; want %v", i, o, err, want)
		}
	}
	if n := e.k.Count("a"); n != 1 {
		t.Errorf("kernel calls = %d, want 1", n)
	}
}

func TestMissingFile(t *testing.T) {
	e := newEnv(t)
	g := e.gate(ModeWait)
	_, err := g.Load(context.Background(), Request{Name: "nope", Path: filepath.Join(e.root, "nope.ko")}, e.finit(Request{}))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want ErrNotExist", err)
	}
	var ge *Error
	if !errors.As(err, &ge) || ge.Module != "nope" {
		t.Fatalf("err = %#v, want *Error naming module nope", err)
	}
	if len(e.k.Calls()) != 0 {
		t.Errorf("kernel called for a missing file")
	}
}

// TestCoalescedLocal: concurrent requests for one identity wait for the first and receive its
// result; the kernel sees one call.
func TestCoalescedLocal(t *testing.T) {
	for _, kres := range []error{nil, sys.ENODEV} {
		t.Run(fmt.Sprint(kres), func(t *testing.T) {
			e := newEnv(t)
			g := e.gate(ModeWait)
			req := e.module("m")
			e.k.SetResult("m", kres)
			h := e.k.Hold("m")
			const n = 20
			joined := make(chan struct{}, n)
			testHookJoin = func(string) { joined <- struct{}{} }
			defer func() { testHookJoin = nil }()
			type res struct {
				o   Outcome
				err error
			}
			results := make(chan res, n)
			go func() {
				o, err := g.Load(context.Background(), req, e.finit(req))
				results <- res{o, err}
			}()
			<-h.Entered()
			for range n - 1 {
				go func() {
					o, err := g.Load(context.Background(), req, e.finit(req))
					results <- res{o, err}
				}()
			}
			for range n - 1 {
				<-joined
			}
			h.Release()
			counts := map[Outcome]int{}
			for range n {
				r := <-results
				counts[r.o]++
				if !errors.Is(r.err, kres) || (kres == nil) != (r.err == nil) {
					t.Errorf("outcome %v err %v, want errno %v", r.o, r.err, kres)
				}
			}
			if d := cmp.Diff(map[Outcome]int{Loaded: 1, CoalescedLocal: n - 1}, counts); d != "" {
				t.Errorf("outcomes (-want +got):\n%s", d)
			}
			if c := e.k.Count("m"); c != 1 {
				t.Errorf("kernel calls = %d, want 1", c)
			}
		})
	}
}

func TestCancelWaiter(t *testing.T) {
	e := newEnv(t)
	g := e.gate(ModeWait)
	req := e.module("m")
	h := e.k.Hold("m")
	joined := make(chan struct{}, 1)
	testHookJoin = func(string) { joined <- struct{}{} }
	defer func() { testHookJoin = nil }()
	leader := make(chan error, 1)
	go func() { _, err := g.Load(context.Background(), req, e.finit(req)); leader <- err }()
	<-h.Entered()
	ctx, cancel := context.WithCancel(context.Background())
	waiter := make(chan error, 1)
	go func() { _, err := g.Load(ctx, req, e.finit(req)); waiter <- err }()
	<-joined
	cancel()
	if err := <-waiter; !errors.Is(err, context.Canceled) {
		t.Fatalf("waiter err = %v, want context.Canceled", err)
	}
	h.Release()
	if err := <-leader; err != nil {
		t.Fatalf("leader err = %v", err)
	}
	if c := e.k.Count("m"); c != 1 {
		t.Errorf("kernel calls = %d, want 1", c)
	}
}

// TestManyRequests: 10,000 concurrent requests over 50 modules, one kernel call per module.
func TestManyRequests(t *testing.T) {
	e := newEnv(t)
	g := e.gate(ModeWait)
	const mods, reqs = 50, 10000
	var rs []Request
	for i := range mods {
		rs = append(rs, e.module(fmt.Sprintf("m%02d", i)))
		if i%10 == 0 {
			e.k.SetResult(rs[i].Name, sys.ENODEV)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, reqs)
	for i := range reqs {
		r := rs[i%mods]
		wg.Go(func() {
			_, err := g.Load(context.Background(), r, e.finit(r))
			if (i%mods)%10 == 0 {
				if !errors.Is(err, sys.ENODEV) {
					errs <- fmt.Errorf("%s: err %v, want ENODEV", r.Name, err)
				}
			} else if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, r := range rs {
		if c := e.k.Count(r.Name); c != 1 {
			t.Errorf("%s: kernel calls = %d, want 1", r.Name, c)
		}
	}
	if got := e.sink.count(stats.Request); got != reqs {
		t.Errorf("Request events = %d, want %d", got, reqs)
	}
}

func TestFailureMemory(t *testing.T) {
	e := newEnv(t)
	g := e.gate(ModeWait)
	bad, flaky := e.module("bad"), e.module("flaky")
	e.k.SetResult("bad", sys.ENODEV)
	e.k.SetResult("flaky", sys.EBUSY)
	for range 3 {
		g.Load(context.Background(), bad, e.finit(bad))
		g.Load(context.Background(), flaky, e.finit(flaky))
	}
	if c := e.k.Count("bad"); c != 1 {
		t.Errorf("bad: kernel calls = %d, want 1 (remembered)", c)
	}
	if c := e.k.Count("flaky"); c != 3 {
		t.Errorf("flaky: kernel calls = %d, want 3 (EBUSY is transient)", c)
	}
	o, err := g.Load(context.Background(), bad, e.finit(bad))
	if o != RememberedFailure || !errors.Is(err, ErrRemembered) || !errors.Is(err, sys.ENODEV) {
		t.Fatalf("bad again: %v %v; want remembered ENODEV", o, err)
	}
	// A second gate (another process) remembers too.
	g2 := e.gate(ModeWait)
	if o, _ := g2.Load(context.Background(), bad, e.finit(bad)); o != RememberedFailure {
		t.Errorf("second gate: outcome %v, want remembered-failure", o)
	}
	list, err := g.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range list {
		names = append(names, fmt.Sprintf("%s %s %d", f.Module, f.Path, f.Errno))
	}
	if d := cmp.Diff([]string{fmt.Sprintf("bad %s %d", bad.Path, sys.ENODEV)}, names); d != "" {
		t.Errorf("List (-want +got):\n%s", d)
	}
	if n, err := g.Forget("other"); n != 0 || err != nil {
		t.Errorf("Forget(other) = %d, %v", n, err)
	}
	if n, err := g.Forget(""); n != 1 || err != nil {
		t.Errorf("Forget(all) = %d, %v; want 1", n, err)
	}
	g.Load(context.Background(), bad, e.finit(bad))
	if c := e.k.Count("bad"); c != 2 {
		t.Errorf("after Forget: kernel calls = %d, want 2", c)
	}
	// Another boot forgets.
	g3, err := New(Options{Root: e.root, Mode: ModeWait, ConfigFile: "-", BootID: "ffff"})
	if err != nil {
		t.Fatal(err)
	}
	g3.Load(context.Background(), bad, e.finit(bad))
	if c := e.k.Count("bad"); c != 3 {
		t.Errorf("new boot: kernel calls = %d, want 3", c)
	}
	// A rewritten file (new size) is a new file.
	if err := os.WriteFile(bad.Path, []byte("\x00name=bad\x00longer padding"), 0o644); err != nil {
		t.Fatal(err)
	}
	g.Load(context.Background(), bad, e.finit(bad))
	if c := e.k.Count("bad"); c != 4 {
		t.Errorf("rewritten file: kernel calls = %d, want 4", c)
	}
}

func TestBusyMode(t *testing.T) {
	e := newEnv(t)
	g := e.gate(ModeBusy)
	req := e.module("m")
	h := e.k.Hold("m")
	leader := make(chan error, 1)
	go func() { _, err := g.Load(context.Background(), req, e.finit(req)); leader <- err }()
	<-h.Entered()
	o, err := g.Load(context.Background(), req, e.finit(req))
	if o != Busy || !errors.Is(err, sys.EBUSY) || !errors.Is(err, ErrBusy) {
		t.Fatalf("duplicate: %v %v; want busy EBUSY", o, err)
	}
	// Another process (another gate: separate lock file descriptions) sees the module coming.
	g2 := e.gate(ModeBusy)
	if o, err := g2.Load(context.Background(), req, e.finit(req)); o != Busy || !errors.Is(err, sys.EBUSY) {
		t.Fatalf("other gate: %v %v; want busy", o, err)
	}
	h.Release()
	if err := <-leader; err != nil {
		t.Fatal(err)
	}
	if c := e.k.Count("m"); c != 1 {
		t.Errorf("kernel calls = %d, want 1", c)
	}
	if o, err := g.Load(context.Background(), req, e.finit(req)); o != AlreadyLive || err != nil {
		t.Errorf("after load: %v %v; want already-live", o, err)
	}
}

func TestBusyModeLockHeld(t *testing.T) {
	e := newEnv(t)
	g := e.gate(ModeBusy)
	req := e.module("m")
	l := holdLock(t, g, req, 0x3ffffff)
	defer l.Close()
	if o, err := g.Load(context.Background(), req, e.finit(req)); o != Busy || !errors.Is(err, sys.EBUSY) {
		t.Fatalf("%v %v; want busy", o, err)
	}
	if len(e.k.Calls()) != 0 {
		t.Errorf("kernel called")
	}
}

func TestOffMode(t *testing.T) {
	e := newEnv(t)
	g := e.gate(ModeOff)
	req := e.module("m")
	h := e.k.Hold("m")
	leader := make(chan error, 1)
	go func() { _, err := g.Load(context.Background(), req, e.finit(req)); leader <- err }()
	<-h.Entered()
	// Like kmod: a second request goes to the kernel (which answers EBUSY while coming).
	if o, err := g.Load(context.Background(), req, e.finit(req)); o != Loaded || !errors.Is(err, sys.EBUSY) {
		t.Fatalf("duplicate: %v %v; want loaded with kernel EBUSY", o, err)
	}
	h.Release()
	<-leader
	bad := e.module("bad")
	e.k.SetResult("bad", sys.ENODEV)
	g.Load(context.Background(), bad, e.finit(bad))
	g.Load(context.Background(), bad, e.finit(bad))
	if c, cb := e.k.Count("m"), e.k.Count("bad"); c != 2 || cb != 2 {
		t.Errorf("kernel calls m=%d bad=%d, want 2 and 2", c, cb)
	}
	if _, err := g.List(); !errors.Is(err, ErrOff) {
		t.Errorf("List in off mode: %v, want ErrOff", err)
	}
	if _, err := os.Stat(g.RuntimeDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("off mode created the runtime dir: %v", err)
	}
}

func TestRecursionInProcess(t *testing.T) {
	e := newEnv(t)
	g := e.gate(ModeWait)
	req := e.module("m")
	var inner error
	o, err := g.Load(context.Background(), req, func(ctx context.Context) (Call, error) {
		_, inner = g.Load(ctx, req, e.finit(req))
		return Call{}, inner
	})
	if !errors.Is(inner, ErrRecursive) || !errors.Is(inner, sys.EDEADLK) {
		t.Fatalf("inner = %v, want ErrRecursive", inner)
	}
	if o != Loaded || !errors.Is(err, ErrRecursive) {
		t.Fatalf("outer = %v %v", o, err)
	}
}

// holdLock takes req's lock through another open file description, as another process would,
// recording holder pid.
func holdLock(t *testing.T, g *Gate, req Request, pid int) *sys.Lock {
	t.Helper()
	id, err := sys.StatIdentity(req.Path)
	if err != nil {
		t.Fatal(err)
	}
	l, err := sys.OpenLock(g.runtime, fmt.Sprintf("%x-%x.lock", id.Dev, id.Ino))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := l.TryLock(); !ok || err != nil {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	l.File().Truncate(0)
	l.File().WriteAt(holder{pid, "0"}.marshal(), 0)
	return l
}

// TestAncestorHoldsLock: a lock held by an ancestor process (an in-process loader running as
// /init whose children are modprobe processes) is waited for, not taken for recursion.
func TestAncestorHoldsLock(t *testing.T) {
	e := newEnv(t)
	g := e.gate(ModeWait)
	req := e.module("m")
	l := holdLock(t, g, req, os.Getppid())
	waiting := make(chan struct{})
	testHookLockWait = func(string) { close(waiting) }
	defer func() { testHookLockWait = nil }()
	done := make(chan error, 1)
	go func() { _, err := g.Load(context.Background(), req, e.finit(req)); done <- err }()
	<-waiting
	l.Close()
	if err := <-done; err != nil {
		t.Fatalf("err = %v", err)
	}
	if c := e.k.Count("m"); c != 1 {
		t.Errorf("kernel calls = %d, want 1", c)
	}
}

func TestCrossProcessRecordedResult(t *testing.T) {
	for _, tc := range []struct {
		name    string
		record  bool // the holder records ENODEV before releasing; else it dies without one
		want    Outcome
		calls   int
		wantErr error
	}{
		{"recorded", true, CoalescedProcess, 0, sys.ENODEV},
		{"holder died", false, Loaded, 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			g := e.gate(ModeWait)
			req := e.module("m")
			l := holdLock(t, g, req, 0x3ffffff)
			waiting := make(chan struct{})
			testHookLockWait = func(string) { close(waiting) }
			defer func() { testHookLockWait = nil }()
			type res struct {
				o   Outcome
				err error
			}
			done := make(chan res, 1)
			go func() { o, err := g.Load(context.Background(), req, e.finit(req)); done <- res{o, err} }()
			<-waiting
			if tc.record {
				fi, _ := sys.Stat(req.Path)
				r := &record{Boot: g.boot, Nonce: "fresh", Name: "m", Path: req.Path, Size: fi.Size, Mtime: fi.MtimeNs, Params: paramsDigest(""), Errno: sys.ENODEV}
				if err := sys.WriteFileAtomic(g.runtime, fmt.Sprintf("%x-%x.result", fi.Dev, fi.Ino), r.marshal()); err != nil {
					t.Fatal(err)
				}
			}
			l.Close()
			r := <-done
			if r.o != tc.want || !errors.Is(r.err, tc.wantErr) || (tc.wantErr == nil) != (r.err == nil) {
				t.Fatalf("got %v %v; want %v %v", r.o, r.err, tc.want, tc.wantErr)
			}
			if c := e.k.Count("m"); c != tc.calls {
				t.Errorf("kernel calls = %d, want %d", c, tc.calls)
			}
		})
	}
}

func TestLockWaitCancelAndTimeout(t *testing.T) {
	e := newEnv(t)
	g, err := New(Options{Root: e.root, Mode: ModeWait, ConfigFile: "-", WaitTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	req := e.module("m")
	l := holdLock(t, g, req, 0x3ffffff)
	defer l.Close()
	_, err = g.Load(context.Background(), req, e.finit(req))
	if !errors.Is(err, ErrGaveUp) || !errors.Is(err, sys.EBUSY) {
		t.Fatalf("timeout: err = %v, want ErrGaveUp/EBUSY", err)
	}
	// The process's wait deadline has passed: a new process (gate) waits and is cancelled.
	g, err = New(Options{Root: e.root, Mode: ModeWait, ConfigFile: "-", WaitTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	waiting := make(chan struct{})
	testHookLockWait = func(string) { close(waiting) }
	defer func() { testHookLockWait = nil }()
	done := make(chan error, 1)
	go func() { _, err := g.Load(ctx, req, e.finit(req)); done <- err }()
	<-waiting
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel: err = %v", err)
	}
	if len(e.k.Calls()) != 0 {
		t.Errorf("kernel called")
	}
}

func TestComing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		final string // "" removes the module (its init failed)
		want  Outcome
		calls int
	}{
		{"becomes live", "live", WaitedComing, 0},
		{"goes away", "", Loaded, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			g := e.gate(ModeWait)
			req := e.module("m")
			if err := e.k.SetState("m", "coming"); err != nil {
				t.Fatal(err)
			}
			waiting := make(chan struct{})
			testHookComing = func(string) { close(waiting) }
			defer func() { testHookComing = nil }()
			done := make(chan Outcome, 1)
			go func() { o, _ := g.Load(context.Background(), req, e.finit(req)); done <- o }()
			<-waiting
			if tc.final == "" {
				e.k.Unload("m")
			} else {
				e.k.SetState("m", tc.final)
			}
			if o := <-done; o != tc.want {
				t.Errorf("outcome %v, want %v", o, tc.want)
			}
			if c := e.k.Count("m"); c != tc.calls {
				t.Errorf("kernel calls = %d, want %d", c, tc.calls)
			}
		})
	}
}

// An insecure runtime directory or lock file is not trusted: the gate does without it (and
// says so once, naming the directory), and the module is loaded.
func TestInsecureRuntimeDir(t *testing.T) {
	root := t.TempDir()
	real := filepath.Join(root, "real")
	os.Mkdir(real, 0o700)
	os.Symlink(real, filepath.Join(root, "link"))
	os.Mkdir(filepath.Join(root, "open"), 0o777)
	os.Chmod(filepath.Join(root, "open"), 0o777)
	os.WriteFile(filepath.Join(root, "file"), nil, 0o600)
	k := fake.New(root)
	mod := filepath.Join(root, "m.ko")
	os.WriteFile(mod, []byte("\x00name=m\x00"), 0o644)
	finit := func(context.Context) (Call, error) {
		f, err := os.Open(mod)
		if err != nil {
			return Call{}, err
		}
		defer f.Close()
		return Call{}, k.FinitModule(f, "", 0)
	}
	for _, tc := range []struct {
		dir  string
		want error
	}{
		{"link", sys.ErrInsecure},
		{"open", sys.ErrInsecure},
		{"file", sys.ErrInsecure},
		{"file/sub", sys.ENOTDIR},
	} {
		var warns []error
		dir := filepath.Join(root, tc.dir)
		g, err := New(Options{Root: root, RuntimeDir: dir, Mode: ModeWait, ConfigFile: "-", Warn: func(err error) { warns = append(warns, err) }})
		if err != nil {
			t.Fatalf("%s: New: %v", tc.dir, err)
		}
		if len(warns) != 1 || !errors.Is(warns[0], tc.want) || !errors.Is(warns[0], ErrUnlocked) || !strings.Contains(warns[0].Error(), dir) {
			t.Errorf("%s: warnings %v, want one naming %s, matching %v", tc.dir, warns, dir, tc.want)
		}
		if _, err := g.List(); !errors.Is(err, tc.want) {
			t.Errorf("%s: List: %v, want %v", tc.dir, err, tc.want)
		}
		if o, err := g.Load(context.Background(), Request{Name: "m", Path: mod}, finit); o != Loaded || err != nil {
			t.Errorf("%s: Load = %v, %v; want loaded", tc.dir, o, err)
		}
		k.Unload("m")
	}
	// A symlinked lock file is not used either.
	var warns []error
	g, err := New(Options{Root: root, RuntimeDir: real, Mode: ModeWait, ConfigFile: "-", Warn: func(err error) { warns = append(warns, err) }})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := sys.StatIdentity(mod)
	os.Symlink(filepath.Join(root, "file"), filepath.Join(real, fmt.Sprintf("%x-%x.lock", id.Dev, id.Ino)))
	for range 2 {
		if o, err := g.Load(context.Background(), Request{Name: "m", Path: mod}, finit); o != Loaded || err != nil {
			t.Errorf("symlinked lock: Load = %v, %v; want loaded", o, err)
		}
		k.Unload("m")
	}
	if len(warns) != 1 || !errors.Is(warns[0], sys.ErrInsecure) || !strings.Contains(warns[0].Error(), real) {
		t.Errorf("symlinked lock: warnings %v, want one, ErrInsecure naming %s", warns, real)
	}
}

func TestModeResolution(t *testing.T) {
	root := t.TempDir()
	conf := filepath.Join(root, "modload.conf")
	os.WriteFile(conf, []byte("# comment\ndedup = busy\nbogus line\n"), 0o644)
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == EnvDedup {
				return v
			}
			return ""
		}
	}
	for _, tc := range []struct {
		name string
		opt  Mode
		env  string
		conf string
		want Mode
	}{
		{"default", ModeDefault, "", "-", ModeWait},
		{"config", ModeDefault, "", conf, ModeBusy},
		{"env beats config", ModeDefault, "off", conf, ModeOff},
		{"option beats env", ModeWait, "off", conf, ModeWait},
		{"missing config", ModeDefault, "", filepath.Join(root, "none"), ModeWait},
	} {
		g, err := New(Options{Root: root, Mode: tc.opt, Getenv: env(tc.env), ConfigFile: tc.conf})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if g.Mode() != tc.want {
			t.Errorf("%s: mode %v, want %v", tc.name, g.Mode(), tc.want)
		}
		if tc.conf == conf && tc.env == "" && tc.opt == ModeDefault && len(g.Warnings()) != 1 {
			t.Errorf("%s: warnings %v, want the bogus line", tc.name, g.Warnings())
		}
	}
	// A bad MODLOAD_DEDUP costs the mode, not the gate: a warning, then the next source.
	g, err := New(Options{Root: root, Getenv: env("fast"), ConfigFile: "-"})
	if err != nil || g.Mode() != ModeWait || len(g.Warnings()) != 1 || !errors.Is(g.Warnings()[0], ErrBadMode) {
		t.Errorf("bad env mode: err = %v, mode %v, warnings %v; want wait and one ErrBadMode warning", err, g.Mode(), g.Warnings())
	}
}

func TestParseConfig(t *testing.T) {
	c, warns, err := parseConfig(stringsReader("dedup=off\n  dedup = wait # trailing\nx\nfoo = 1\ndedup = nope\nkmod = 30\nkmod=33\n"), "f.conf")
	if err != nil {
		t.Fatal(err)
	}
	if c.Dedup != ModeWait {
		t.Errorf("dedup = %v, want wait", c.Dedup)
	}
	if c.Kmod != "30" {
		t.Errorf("kmod = %q, want 30", c.Kmod)
	}
	var got []string
	for _, w := range warns {
		got = append(got, w.Error())
	}
	want := []string{
		`f.conf:3: no '=' in "x"`,
		`f.conf:4: unknown key "foo"`,
		`f.conf:5: bad dedup mode "nope": want wait, busy or off`,
		`f.conf:7: kmod "33": want 30 or 34`,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("warnings (-want +got):\n%s", d)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	r := &record{Boot: "b-1", Nonce: "00ff", Name: "snd_hda", Path: "/lib/modules/x y/a.ko", Size: 12, Mtime: -3, Params: paramsDigest("io=0x378"), Errno: sys.ENODEV}
	got, err := parseRecord(bytesReader(r.marshal()))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(r, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	v1 := "modload-result 1\nboot b\nnonce n\nname m\npath /p\nsize 1\nmtime 2\nerrno 19\n" // before params
	for _, bad := range []string{"", "modload-result 3\n", v1, recordMagic + "\nboot x\n", recordMagic + "\nerrno 99999\n", recordMagic + "\nboot a\nboot b\n"} {
		if _, err := parseRecord(stringsReader(bad)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%q: err = %v, want ErrCorrupt", bad, err)
		}
	}
}

func TestParseHolder(t *testing.T) {
	for in, want := range map[string]holder{"12 ab01\n": {12, "ab01"}, "12 ab01": {}, "12\n": {}, "12 \n": {},
		"12 AB\n": {}, "12 a b\n": {}, "-1 ab\n": {}, "012 ab\n": {}, "\n": {}, "x ab\n": {}} {
		got, err := parseHolder([]byte(in))
		if got != want || (want == holder{}) != (err != nil) {
			t.Errorf("parseHolder(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
}

// TestLeaderCancelled: a waiter whose leader gave up because of the leader's own context does
// not inherit that cancellation; it takes over.
func TestLeaderCancelled(t *testing.T) {
	e := newEnv(t)
	g := e.gate(ModeWait)
	req := e.module("m")
	l := holdLock(t, g, req, 0x3ffffff)
	lockWait := make(chan struct{}, 2)
	testHookLockWait = func(string) { lockWait <- struct{}{} }
	joined := make(chan struct{}, 1)
	testHookJoin = func(string) { joined <- struct{}{} }
	defer func() { testHookLockWait, testHookJoin = nil, nil }()
	ctx, cancel := context.WithCancel(context.Background())
	leader := make(chan error, 1)
	go func() { _, err := g.Load(ctx, req, e.finit(req)); leader <- err }()
	<-lockWait
	waiter := make(chan error, 1)
	go func() { _, err := g.Load(context.Background(), req, e.finit(req)); waiter <- err }()
	<-joined
	cancel()
	if err := <-leader; !errors.Is(err, context.Canceled) {
		t.Fatalf("leader: %v", err)
	}
	<-lockWait // the waiter now leads and waits for the other process's lock
	l.Close()
	if err := <-waiter; err != nil {
		t.Fatalf("waiter: %v", err)
	}
	if c := e.k.Count("m"); c != 1 {
		t.Errorf("kernel calls = %d, want 1", c)
	}
}

func TestInvalidName(t *testing.T) {
	e := newEnv(t)
	g := e.gate(ModeWait)
	req := e.module("m")
	for _, name := range []string{"", "..", "a/b", "x\n"} {
		req.Name = name
		if _, err := g.Load(context.Background(), req, e.finit(req)); !errors.Is(err, sys.EINVAL) {
			t.Errorf("name %q: err = %v, want EINVAL", name, err)
		}
	}
}

func TestEvents(t *testing.T) {
	e := newEnv(t)
	g := e.gate(ModeWait)
	req := e.module("m")
	bad := e.module("bad")
	e.k.SetResult("bad", sys.ENODEV)
	g.Load(context.Background(), req, e.finit(req))
	g.Load(context.Background(), req, e.finit(req))
	g.Load(context.Background(), bad, e.finit(bad))
	g.Load(context.Background(), bad, e.finit(bad))
	type ev struct {
		Kind  stats.Kind
		Name  string
		Bytes int64
		Errno error
	}
	var got []ev
	for _, x := range e.sink.events {
		var errno error
		var en syscall.Errno
		if errors.As(x.Err, &en) {
			errno = en
		}
		got = append(got, ev{x.Kind, x.Module, x.Bytes, errno})
	}
	size := int64(len("\x00name=m\x00padding"))
	bsize := int64(len("\x00name=bad\x00padding"))
	want := []ev{
		{stats.Request, "m", 0, nil}, {stats.KernelCall, "m", size, nil},
		{stats.Request, "m", 0, nil}, {stats.AlreadyLive, "m", size, nil},
		{stats.Request, "bad", 0, nil}, {stats.KernelCall, "bad", bsize, sys.ENODEV},
		{stats.Request, "bad", 0, nil}, {stats.RememberedFailure, "bad", bsize, sys.ENODEV},
	}
	if d := cmp.Diff(want, got, cmp.Comparer(func(a, b error) bool { return a == b })); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
}

// TestInitEEXISTRemembered: a module whose own init returns EEXIST (pcc_cpufreq when another
// cpufreq driver is registered) is not in the kernel afterwards: that is its failure, sent to the
// kernel once (a second call to confirm it was a duplicate in every boot where it happened), and
// callers still see EEXIST.
func TestInitEEXISTRemembered(t *testing.T) {
	e := newEnv(t)
	g := e.gate(ModeWait)
	req := e.module("pcc")
	e.k.SetResult("pcc", sys.EEXIST)
	for i := 0; i < 3; i++ {
		_, err := g.Load(context.Background(), req, e.finit(req))
		if !errors.Is(err, sys.EEXIST) {
			t.Fatalf("load %d: %v, want EEXIST", i, err)
		}
	}
	if n := e.k.Count("pcc"); n != 1 {
		t.Fatalf("%d kernel calls, want 1", n)
	}
	// Another process is served the remembered failure too.
	if _, err := e.gate(ModeWait).Load(context.Background(), req, e.finit(req)); !errors.Is(err, sys.EEXIST) {
		t.Fatalf("another process: %v, want EEXIST", err)
	}
	if n := e.k.Count("pcc"); n != 1 {
		t.Fatalf("%d kernel calls after another process asked, want 1", n)
	}
}

// The EEXIST a module's own init returned is listed and cleared like any remembered failure:
// List and Forget see what loading serves.
func TestInitEEXISTListedAndForgotten(t *testing.T) {
	e := newEnv(t)
	g := e.gate(ModeWait)
	req := e.module("pcc")
	e.k.SetResult("pcc", sys.EEXIST)
	g.Load(context.Background(), req, e.finit(req))
	list, err := g.List()
	if err != nil || len(list) != 1 || list[0].Module != "pcc" || list[0].Errno != sys.EEXIST {
		t.Fatalf("List = %+v, %v; want pcc EEXIST", list, err)
	}
	if n, err := g.Forget("pcc"); n != 1 || err != nil {
		t.Fatalf("Forget(pcc) = %d, %v; want 1", n, err)
	}
	g.Load(context.Background(), req, e.finit(req))
	if n := e.k.Count("pcc"); n != 2 {
		t.Errorf("after Forget: %d kernel calls, want 2 (one per load)", n)
	}
}

// A forced load (modprobe -f after a vermagic failure) is not served the failure that forcing
// is meant to get past; an unforced one after it still is.
func TestForceBypassesMemory(t *testing.T) {
	e := newEnv(t)
	g := e.gate(ModeWait)
	req := e.module("vm")
	e.k.SetResult("vm", sys.ENOEXEC)
	if _, err := g.Load(context.Background(), req, e.finit(req)); !errors.Is(err, sys.ENOEXEC) {
		t.Fatalf("first load: %v, want ENOEXEC", err)
	}
	if o, _ := g.Load(context.Background(), req, e.finit(req)); o != RememberedFailure {
		t.Fatalf("unforced retry: %v, want remembered-failure", o)
	}
	forced := req
	forced.Force = true
	o, err := g.Load(context.Background(), forced, e.finit(forced))
	if o != Loaded || !errors.Is(err, sys.ENOEXEC) || errors.Is(err, ErrRemembered) {
		t.Fatalf("forced: %v %v; want a kernel call that fails with ENOEXEC", o, err)
	}
	if n := e.k.Count("vm"); n != 2 {
		t.Errorf("%d kernel calls, want 2 (the first and the forced one)", n)
	}
	if o, _ := g.Load(context.Background(), req, e.finit(req)); o != RememberedFailure {
		t.Errorf("unforced after forced: %v, want remembered-failure", o)
	}
}
