package gate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/stats"
)

// A forced load's own failure (EKEYREJECTED: a forced module's signature is not checked) is not
// served to a later unforced request, which would have succeeded; it is not listed either.
func TestForcedFailureNotServedUnforced(t *testing.T) {
	e := newEnv(t)
	g := e.gate(ModeWait)
	req := e.module("sig")
	forced := req
	forced.Force = true
	e.k.SetResult("sig", sys.EKEYREJECTED)
	if o, err := g.Load(context.Background(), forced, e.finit(forced)); o != Loaded || !errors.Is(err, sys.EKEYREJECTED) {
		t.Fatalf("forced: %v %v; want loaded, EKEYREJECTED", o, err)
	}
	if list, err := g.List(); err != nil || len(list) != 0 {
		t.Errorf("List after a forced failure = %+v, %v; want none", list, err)
	}
	e.k.SetResult("sig", nil)
	if o, err := g.Load(context.Background(), req, e.finit(req)); o != Loaded || err != nil {
		t.Fatalf("unforced after forced failure: %v %v; want loaded by the kernel", o, err)
	}
	if n := e.k.Count("sig"); n != 2 {
		t.Errorf("%d kernel calls, want 2", n)
	}
}

// A forced request does not join an unforced load in flight in this process (it would receive
// the failure forcing is meant to get past): it waits for the lock and calls the kernel itself.
func TestForcedDoesNotJoinUnforcedFlight(t *testing.T) {
	e := newEnv(t)
	g := e.gate(ModeWait)
	req := e.module("vm")
	forced := req
	forced.Force = true
	e.k.SetResult("vm", sys.ENOEXEC)
	h := e.k.Hold("vm")
	joined, lockWait := make(chan struct{}, 1), make(chan struct{}, 1)
	testHookJoin = func(string) { joined <- struct{}{} }
	testHookLockWait = func(string) { lockWait <- struct{}{} }
	defer func() { testHookJoin, testHookLockWait = nil, nil }()
	type res struct {
		o   Outcome
		err error
	}
	unforced, force := make(chan res, 1), make(chan res, 1)
	go func() { o, err := g.Load(context.Background(), req, e.finit(req)); unforced <- res{o, err} }()
	<-h.Entered()
	e.k.SetResult("vm", nil) // the forced call gets past the vermagic check
	go func() { o, err := g.Load(context.Background(), forced, e.finit(forced)); force <- res{o, err} }()
	select {
	case <-joined:
		t.Error("the forced request joined the unforced flight")
	case <-lockWait:
	}
	h.Release()
	if r := <-unforced; r.o != Loaded || !errors.Is(r.err, sys.ENOEXEC) {
		t.Errorf("unforced: %v %v; want loaded, ENOEXEC", r.o, r.err)
	}
	if r := <-force; r.o != Loaded || r.err != nil {
		t.Errorf("forced: %v %v; want loaded by the kernel, success", r.o, r.err)
	}
	if n := e.k.Count("vm"); n != 2 {
		t.Errorf("%d kernel calls, want 2", n)
	}
}

// A forced request waiting for another process's unforced load is not handed its recorded
// failure: it calls the kernel.
func TestForcedIgnoresUnforcedRecord(t *testing.T) {
	e := newEnv(t)
	g := e.gate(ModeWait)
	req := e.module("vm")
	forced := req
	forced.Force = true
	l := holdLock(t, g, req, 0x3ffffff)
	waiting := make(chan struct{})
	testHookLockWait = func(string) { close(waiting) }
	defer func() { testHookLockWait = nil }()
	type res struct {
		o   Outcome
		err error
	}
	done := make(chan res, 1)
	go func() { o, err := g.Load(context.Background(), forced, e.finit(forced)); done <- res{o, err} }()
	<-waiting
	fi, _ := sys.Stat(req.Path)
	r := &record{Boot: g.boot, Nonce: "fresh", Name: "vm", Path: req.Path, Size: fi.Size, Mtime: fi.MtimeNs, Params: paramsDigest(""), Errno: sys.ENOEXEC}
	if err := sys.WriteFileAtomic(g.runtime, fmt.Sprintf("%x-%x.result", fi.Dev, fi.Ino), r.marshal()); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if r := <-done; r.o != Loaded || r.err != nil {
		t.Fatalf("forced: %v %v; want loaded by the kernel", r.o, r.err)
	}
	if n := e.k.Count("vm"); n != 1 {
		t.Errorf("%d kernel calls, want 1", n)
	}
}

// List and Forget see what loading serves: not the failure of a file since rewritten or
// replaced, nor of a module now live.
func TestListMatchesServed(t *testing.T) {
	e := newEnv(t)
	g := e.gate(ModeWait)
	listed := func() int {
		t.Helper()
		list, err := g.List()
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}
	bad := e.module("bad")
	e.k.SetResult("bad", sys.ENODEV)
	g.Load(context.Background(), bad, e.finit(bad))
	if n := listed(); n != 1 {
		t.Fatalf("listed %d, want 1", n)
	}
	// Live (loaded since by other means): served already-live, so not listed; listed again
	// once it is gone.
	if err := e.k.SetState("bad", "live"); err != nil {
		t.Fatal(err)
	}
	if n := listed(); n != 0 {
		t.Errorf("module live: listed %d, want 0", n)
	}
	if err := e.k.Unload("bad"); err != nil {
		t.Fatal(err)
	}
	if n := listed(); n != 1 {
		t.Errorf("module gone again: listed %d, want 1", n)
	}
	// Rewritten in place (new size): loading calls the kernel, so nothing is listed.
	if err := os.WriteFile(bad.Path, []byte("\x00name=bad\x00longer padding"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n := listed(); n != 0 {
		t.Errorf("rewritten file: listed %d, want 0", n)
	}
	if n, err := g.Forget("bad"); n != 0 || err != nil {
		t.Errorf("Forget(bad) = %d, %v; want 0", n, err)
	}
	if o, _ := g.Load(context.Background(), bad, e.finit(bad)); o != Loaded {
		t.Errorf("rewritten file: %v, want loaded", o)
	}
	// Replaced by another inode of the same size and mtime: a new identity, not listed.
	fi, _ := os.Stat(bad.Path)
	repl := bad.Path + ".new"
	if err := os.WriteFile(repl, []byte("\x00name=bad\x00longer padding"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(repl, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if n := listed(); n != 1 {
		t.Fatalf("before replacing: listed %d, want 1", n)
	}
	if err := os.Rename(repl, bad.Path); err != nil {
		t.Fatal(err)
	}
	if n := listed(); n != 0 {
		t.Errorf("replaced file: listed %d, want 0", n)
	}
}

// A failure before the kernel call is not remembered, even when it carries an errno, and is no
// kernel call.
func TestNotCalledNotRemembered(t *testing.T) {
	e := newEnv(t)
	g := e.gate(ModeWait)
	req := e.module("m")
	o, err := g.Load(context.Background(), req, func(context.Context) (Call, error) {
		return Call{NotCalled: true}, fmt.Errorf("strip: %w", sys.ENOEXEC)
	})
	if o != Loaded || !errors.Is(err, sys.ENOEXEC) {
		t.Fatalf("first: %v %v", o, err)
	}
	if list, _ := g.List(); len(list) != 0 {
		t.Errorf("List = %+v, want none", list)
	}
	if o, err := g.Load(context.Background(), req, e.finit(req)); o != Loaded || err != nil {
		t.Fatalf("second: %v %v; want loaded by the kernel", o, err)
	}
	if n := e.sink.count(stats.KernelCall); n != 1 {
		t.Errorf("%d KernelCall events, want 1", n)
	}
}

// A request coalesced with a load that never reached the kernel spared the kernel nothing.
func TestCoalescedWithNotCalledSparesNothing(t *testing.T) {
	e := newEnv(t)
	c := &stats.Counter{}
	g, err := New(Options{Root: e.root, Mode: ModeWait, Sink: c, ConfigFile: "-"})
	if err != nil {
		t.Fatal(err)
	}
	req := e.module("m")
	entered, release := make(chan struct{}), make(chan struct{})
	joined := make(chan struct{}, 1)
	testHookJoin = func(string) { joined <- struct{}{} }
	defer func() { testHookJoin = nil }()
	failing := func(context.Context) (Call, error) {
		close(entered)
		<-release
		return Call{NotCalled: true}, errors.New("corrupt xz stream")
	}
	leader := make(chan error, 1)
	go func() { _, err := g.Load(context.Background(), req, failing); leader <- err }()
	<-entered
	waiter := make(chan error, 1)
	go func() { _, err := g.Load(context.Background(), req, e.finit(req)); waiter <- err }()
	<-joined
	close(release)
	<-leader
	if err := <-waiter; err == nil {
		t.Fatal("waiter succeeded; want the leader's error")
	}
	s := c.Snapshot()
	if s.CoalescedLocal != 1 || s.SavedBytes != 0 || s.KernelCalls != 0 {
		t.Errorf("coalesced %d, saved %d, kernel calls %d; want 1, 0, 0", s.CoalescedLocal, s.SavedBytes, s.KernelCalls)
	}
}

// The LoadFunc learns the stat identity in every mode, off included.
func TestLoadingIdentity(t *testing.T) {
	for _, mode := range []Mode{ModeWait, ModeBusy, ModeOff} {
		t.Run(mode.String(), func(t *testing.T) {
			e := newEnv(t)
			g := e.gate(mode)
			req := e.module("m")
			id, _ := sys.StatIdentity(req.Path)
			want := Identity(id)
			var got Identity
			var ok bool
			g.Load(context.Background(), req, func(ctx context.Context) (Call, error) {
				got, ok = LoadingIdentity(ctx)
				return Call{NotCalled: true}, errors.New("stop")
			})
			if !ok || got != want {
				t.Errorf("LoadingIdentity = %v, %v; want %v", got, ok, want)
			}
		})
	}
}
