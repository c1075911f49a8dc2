package gate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/modload/modload/internal/sys"
)

// startWaiter starts a request for req in its own goroutine and returns its result channel, with
// a channel that receives each time the request begins a wait for a close of the lock file.
type loadResult struct {
	o   Outcome
	err error
}

func startWaiter(t *testing.T, g *Gate, e *env, req Request) (<-chan loadResult, <-chan struct{}) {
	t.Helper()
	watching := make(chan struct{}, 100)
	testHookLockWatch = func(string) {
		select {
		case watching <- struct{}{}:
		default:
		}
	}
	t.Cleanup(func() { testHookLockWatch = nil })
	done := make(chan loadResult, 1)
	go func() { o, err := g.Load(context.Background(), req, e.finit(req)); done <- loadResult{o, err} }()
	return done, watching
}

// recordFor writes the result a holder would record for req (errno e) before its release.
func recordFor(t *testing.T, g *Gate, req Request, e syscall.Errno) {
	t.Helper()
	fi, _ := sys.Stat(req.Path)
	r := &record{Boot: g.boot, Nonce: "fresh", Name: req.Name, Path: req.Path, Size: fi.Size, Mtime: fi.MtimeNs, Params: paramsDigest(""), Errno: e}
	if err := sys.WriteFileAtomic(g.runtime, fmt.Sprintf("%x-%x.result", fi.Dev, fi.Ino), r.marshal()); err != nil {
		t.Fatal(err)
	}
}

// heldLockEnv is a world in which another process holds module m's lock; timeout is the Gate's
// WaitTimeout (0: the default).
func heldLockEnv(t *testing.T, timeout time.Duration) (*env, *Gate, Request, *sys.Lock) {
	t.Helper()
	e := newEnv(t)
	g, err := New(Options{Root: e.root, Mode: ModeWait, ConfigFile: "-", Sink: e.sink, WaitTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	req := e.module("m")
	l := holdLock(t, g, req, 0x3ffffff)
	t.Cleanup(func() { l.Close() })
	return e, g, req, l
}

// wantServed checks that the waiter was served the holder's recorded result (errno e, 0 for
// success) without calling the kernel.
func wantServed(t *testing.T, e *env, done <-chan loadResult, errno syscall.Errno) {
	t.Helper()
	r := <-done
	if r.o != CoalescedProcess || (errno == 0) != (r.err == nil) || errno != 0 && !errors.Is(r.err, errno) {
		t.Fatalf("got %v, %v; want coalesced-process, errno %d", r.o, r.err, errno)
	}
	if n := e.k.Count("m"); n != 0 {
		t.Errorf("%d kernel calls, want 0", n)
	}
}

// A waiter for another process's lock sleeps until the holder's release and is woken once by it:
// one wait, no re-try, no thread blocked in flock.
func TestLockWaitWakesOnRelease(t *testing.T) {
	e, g, req, l := heldLockEnv(t, 0)
	done, watching := startWaiter(t, g, e, req)
	<-watching
	recordFor(t, g, req, 0)
	e.k.SetState("m", "live")
	l.Close()
	wantServed(t, e, done, 0)
	if n := len(watching); n != 0 {
		t.Errorf("%d more waits after the first, want none (woken once, by the release)", n)
	}
}

// A close of the lock file by another process that does not hold the lock (a waiter giving up,
// a request refused in mode busy) wakes the waiter, which finds the lock still held and waits
// again, until the holder's release.
func TestLockWaitSpuriousClose(t *testing.T) {
	e, g, req, l := heldLockEnv(t, 0)
	done, watching := startWaiter(t, g, e, req)
	<-watching
	recordFor(t, g, req, syscall.ENODEV) // the holder's result, before its release
	other, err := sys.OpenLock(g.runtime, filepath.Base(l.File().Name()))
	if err != nil {
		t.Fatal(err)
	}
	other.Close() // a close of a descriptor opened for writing: the waiter wakes
	<-watching    // and waits again
	select {
	case r := <-done:
		t.Fatalf("the waiter went on while the lock was held: %v, %v", r.o, r.err)
	default:
	}
	l.Close()
	wantServed(t, e, done, syscall.ENODEV)
}

// A holder that never lets go: the wait ends at the process's deadline, in the watch.
func TestLockWaitDeadline(t *testing.T) {
	e, g, req, _ := heldLockEnv(t, 30*time.Millisecond)
	done, watching := startWaiter(t, g, e, req)
	r := <-done
	if !errors.Is(r.err, ErrGaveUp) || !errors.Is(r.err, sys.EBUSY) {
		t.Fatalf("err = %v, want ErrGaveUp (EBUSY)", r.err)
	}
	if len(watching) != 1 {
		t.Errorf("%d waits on the lock file's closes, want 1", len(watching))
	}
	if time.Now().Before(g.waitDeadline()) {
		t.Errorf("gave up before the deadline")
	}
}

// The holder died without a result, with two waiters: both take the lock shared, find nothing,
// and queue for the exclusive lock; the last to let go of its shared lock takes it and loads,
// the other is woken by its release and is served its result. One kernel call.
func TestLockWaitHolderDiedTwoWaiters(t *testing.T) {
	e := newEnv(t)
	g1, g2 := e.gate(ModeWait), e.gate(ModeWait)
	req := e.module("m")
	l := holdLock(t, g1, req, 0x3ffffff)
	var waits atomic.Int32
	both := make(chan struct{})
	testHookLockWatch = func(string) {
		if waits.Add(1) == 2 {
			close(both)
		}
	}
	defer func() { testHookLockWatch = nil }()
	done := make(chan loadResult, 2)
	for _, g := range []*Gate{g1, g2} {
		go func() { o, err := g.Load(context.Background(), req, e.finit(req)); done <- loadResult{o, err} }()
	}
	<-both
	l.Close()
	got := map[Outcome]int{}
	for range 2 {
		r := <-done
		if r.err != nil {
			t.Fatalf("err = %v", r.err)
		}
		got[r.o]++
	}
	if got[Loaded] != 1 || got[CoalescedProcess] != 1 {
		t.Errorf("outcomes %v, want one loaded, one coalesced-process", got)
	}
	if n := e.k.Count("m"); n != 1 {
		t.Errorf("%d kernel calls, want 1", n)
	}
}

// Without inotify (the user's instances used up) a waiter blocks in flock: woken by the release,
// bounded by the deadline.
func TestLockWaitWithoutInotify(t *testing.T) {
	watchClose = func(string) (*sys.CloseWatch, error) { return nil, syscall.EMFILE }
	defer func() { watchClose = sys.WatchClose }()
	e, g, req, l := heldLockEnv(t, 0)
	waiting := make(chan struct{})
	testHookLockWait = func(string) { close(waiting) }
	defer func() { testHookLockWait = nil }()
	done, watching := startWaiter(t, g, e, req)
	<-waiting
	recordFor(t, g, req, syscall.ENODEV)
	l.Close()
	wantServed(t, e, done, syscall.ENODEV)
	if len(watching) != 0 {
		t.Errorf("waited on a watch that could not be made")
	}

	testHookLockWait = nil
	g, err := New(Options{Root: e.root, Mode: ModeWait, ConfigFile: "-", WaitTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	req = e.module("n")
	l = holdLock(t, g, req, 0x3ffffff)
	defer l.Close()
	if _, err := g.Load(context.Background(), req, e.finit(req)); !errors.Is(err, ErrGaveUp) {
		t.Fatalf("err = %v, want ErrGaveUp", err)
	}
}

// fakeLive stands for the kernel's uevent of a module coming live: each Wait says it began
// (waiting), then returns what the test sends (nil: the event; os.ErrDeadlineExceeded: the
// re-check interval ended).
type fakeLive struct {
	waiting chan struct{}
	wake    chan error
	closed  atomic.Bool
}

func (f *fakeLive) Wait(ctx context.Context, deadline time.Time) error {
	f.waiting <- struct{}{}
	select {
	case err := <-f.wake:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeLive) Close() error { f.closed.Store(true); return nil }

// A module coming from a loader outside the gate: the waiter sleeps until the module's uevent
// and then finds it live (one wait); a module whose init fails sends none, and the re-check of
// initstate finds it gone, and the request loads it.
func TestComingWaitsForUevent(t *testing.T) {
	for _, tc := range []struct {
		name  string
		wake  error
		final string // "" removes the module (its init failed)
		want  Outcome
		calls int
	}{
		{"event", nil, "live", WaitedComing, 0},
		{"init failed, re-check", os.ErrDeadlineExceeded, "", Loaded, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeLive{waiting: make(chan struct{}), wake: make(chan error)}
			var watched string
			watchLive = func(name string) (eventWaiter, error) { watched = name; return f, nil }
			defer func() { watchLive = watchUevent }()
			e := newEnv(t)
			g := e.gate(ModeWait)
			req := e.module("m")
			e.k.SetState("m", "coming")
			done := make(chan Outcome, 1)
			go func() { o, _ := g.Load(context.Background(), req, e.finit(req)); done <- o }()
			<-f.waiting
			if tc.final == "" {
				e.k.Unload("m")
			} else {
				e.k.SetState("m", tc.final)
			}
			f.wake <- tc.wake
			if o := <-done; o != tc.want {
				t.Errorf("outcome %v, want %v", o, tc.want)
			}
			if c := e.k.Count("m"); c != tc.calls {
				t.Errorf("kernel calls = %d, want %d", c, tc.calls)
			}
			if watched != "m" || !f.closed.Load() {
				t.Errorf("watched %q, closed %v; want m, closed", watched, f.closed.Load())
			}
		})
	}
}
