package gate

import (
	"context"
	"testing"

	"github.com/modload/modload/internal/sys"
)

// The fast paths: what a duplicate costs once modload has seen a module.

func BenchmarkAlreadyLive(b *testing.B) {
	e := newBenchEnv(b)
	g := e.gate(ModeWait)
	req := e.module("m")
	e.k.SetState("m", "live")
	load := e.finit(req)
	b.ReportAllocs()
	for b.Loop() {
		if o, _ := g.Load(context.Background(), req, load); o != AlreadyLive {
			b.Fatal(o)
		}
	}
}

func BenchmarkBuiltin(b *testing.B) {
	e := newBenchEnv(b)
	g := e.gate(ModeWait)
	req := Request{Name: "bi", Builtin: true}
	b.ReportAllocs()
	for b.Loop() {
		if o, _ := g.Load(context.Background(), req, nil); o != AlreadyLive {
			b.Fatal(o)
		}
	}
}

func BenchmarkRememberedFailure(b *testing.B) {
	e := newBenchEnv(b)
	g := e.gate(ModeWait)
	req := e.module("bad")
	e.k.SetResult("bad", sys.ENODEV)
	load := e.finit(req)
	g.Load(context.Background(), req, load)
	b.ReportAllocs()
	for b.Loop() {
		if o, _ := g.Load(context.Background(), req, load); o != RememberedFailure {
			b.Fatal(o)
		}
	}
}

// BenchmarkLoadUncontended: the full leader path (stat, lock, record) with a kernel that
// always fails transiently, so every iteration reaches the kernel.
func BenchmarkLoadUncontended(b *testing.B) {
	e := newBenchEnv(b)
	g := e.gate(ModeWait)
	req := e.module("flaky")
	e.k.SetResult("flaky", sys.EAGAIN)
	load := func(context.Context) (Call, error) { return Call{}, sys.EAGAIN }
	b.ReportAllocs()
	for b.Loop() {
		if o, _ := g.Load(context.Background(), req, load); o != Loaded {
			b.Fatal(o)
		}
	}
}
