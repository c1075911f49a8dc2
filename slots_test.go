package modload

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func granted(w *slotWaiter) bool {
	select {
	case <-w.granted:
		return true
	default:
		return false
	}
}

// TestSlotsOrder: a freed slot goes to the waiting module earliest in its plan, the older plan
// first among equals, whatever order they began to wait in.
func TestSlotsOrder(t *testing.T) {
	s := NewSlots(1)
	p1, p2 := s.plan(), s.plan()
	if w := s.enqueue(p1, 9, 0); w != nil {
		t.Fatal("the free slot was not taken at once")
	}
	waiters := []*slotWaiter{s.enqueue(p1, 5, 0), s.enqueue(p2, 1, 0), s.enqueue(p1, 3, 0), s.enqueue(p1, 1, 0)}
	want := []*slotWaiter{waiters[3], waiters[1], waiters[2], waiters[0]} // (1,p1) (1,p2) (3,p1) (5,p1)
	for i, w := range want {
		s.release()
		if !granted(w) {
			t.Fatalf("release %d did not go to plan %d index %d", i, w.plan, w.index)
		}
		for _, o := range want[i+1:] {
			if granted(o) {
				t.Fatalf("release %d also went to plan %d index %d", i, o.plan, o.index)
			}
		}
	}
	s.release()
	if s.free != 1 {
		t.Fatalf("%d free slots after every waiter left, want 1", s.free)
	}
}

// TestSlotsCancel: a waiter whose context ends leaves the queue; one granted as its context
// ended passes the slot on, so no slot is lost.
func TestSlotsCancel(t *testing.T) {
	s := NewSlots(1)
	p := s.plan()
	s.enqueue(p, 0, 0)
	gone, next := s.enqueue(p, 1, 0), s.enqueue(p, 2, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.wait(ctx, gone); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait after cancel: %v", err)
	}
	s.release()
	if !granted(next) {
		t.Fatal("the slot went to a cancelled waiter")
	}
	// next was granted; its context ends before it looks: the slot goes back.
	if err := s.wait(ctx, next); err == nil {
		t.Log("a granted slot was taken despite the cancelled context")
		s.release()
	}
	if s.free != 1 || len(s.waiting) != 0 {
		t.Fatalf("free %d, waiting %d: want the one slot free", s.free, len(s.waiting))
	}
}

// TestSlotsLive: a module said live gives its slot to the next waiting module and runs its live
// callback once; the load's end then gives nothing back twice.
func TestSlotsLive(t *testing.T) {
	s := NewSlots(1)
	p := s.plan()
	lives := 0
	a, err := s.acquire(context.Background(), p, 0, nil, "snd-hda-intel", func() { lives++ })
	if err != nil {
		t.Fatal(err)
	}
	b := s.enqueue(p, 1, 0)
	s.Live("ext4") // holds no slot: nothing happens
	if granted(b) {
		t.Fatal("a module that holds no slot gave one")
	}
	s.Live("snd_hda_intel")
	if !granted(b) || lives != 1 {
		t.Fatalf("after Live: waiter granted %v, live callbacks %d; want true, 1", granted(b), lives)
	}
	a.done()
	s.Live("snd_hda_intel")
	if s.free != 0 || lives != 1 {
		t.Fatalf("after the live load ended: %d free slots, %d callbacks; want 0 (the waiter has it), 1", s.free, lives)
	}
	s.release() // the waiter's
	if s.free != 1 || len(s.held) != 0 {
		t.Fatalf("%d free, %d held; want 1, 0", s.free, len(s.held))
	}
}

// TestSlotsChainFirst: a freed slot goes to the module heading the longest chain, before the
// plan's order.
func TestSlotsChainFirst(t *testing.T) {
	s := NewSlots(1)
	p1, p2 := s.plan(), s.plan()
	s.enqueue(p1, 0, 0)
	short, long, tie := s.enqueue(p1, 1, 10), s.enqueue(p1, 5, 500), s.enqueue(p2, 0, 10)
	for i, w := range []*slotWaiter{long, tie, short} {
		s.release()
		if !granted(w) {
			t.Fatalf("release %d did not go to plan %d index %d chain %d", i, w.plan, w.index, w.chain)
		}
	}
}

// TestChainBytes: a module's chain is its file's size plus the longest chain of the modules
// that need it; a live module's file counts nothing.
func TestChainBytes(t *testing.T) {
	dir := t.TempDir()
	file := func(name string, size int) string {
		p := filepath.Join(dir, name+".ko")
		if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	irq := &execNode{step: &Step{Module: "irqbypass", Path: file("irqbypass", 100)}}
	kvm := &execNode{step: &Step{Module: "kvm", Path: file("kvm", 1000)}, needs: []*execNode{irq}}
	amd := &execNode{step: &Step{Module: "kvm_amd", Path: file("kvm_amd", 300)}, needs: []*execNode{kvm}}
	e1000 := &execNode{step: &Step{Module: "e1000", Path: file("e1000", 500)}}
	live := &execNode{step: &Step{Module: "live", Path: file("live", 9000), Live: true}, needs: []*execNode{e1000}}
	got := chainBytes([]*execNode{e1000, irq, kvm, amd, live})
	want := []int64{500, 1400, 1300, 300, 0}
	if !slices.Equal(got, want) {
		t.Errorf("chainBytes = %v, want %v", got, want)
	}
}

// TestSlotsChainOnlyWhenWaiting: a module that finds a free slot is not asked for its chain (no
// stat of the plan's files); one that has to wait is.
func TestSlotsChainOnlyWhenWaiting(t *testing.T) {
	s := NewSlots(1)
	p := s.plan()
	asked := 0
	chain := func() int64 { asked++; return 1 }
	h, err := s.acquire(context.Background(), p, 0, chain, "a", nil)
	if err != nil || asked != 0 {
		t.Fatalf("acquire of a free slot: %v, chain asked %d times, want 0", err, asked)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.acquire(ctx, p, 1, chain, "b", nil); !errors.Is(err, context.Canceled) || asked != 1 {
		t.Fatalf("acquire with no free slot: %v, chain asked %d times, want once", err, asked)
	}
	h.done()
}
