package modload

import (
	"container/heap"
	"context"
	"strings"
	"sync"
)

// Slots bounds how many modules are being loaded at once. Exec takes a slot for every module
// file it loads and gives it back when the kernel has answered, or earlier when the module is
// live (below). When slots run out, the modules wait, and a freed slot goes to the waiting
// module that heads the longest chain: the most bytes of module files from it to the end of the
// longest chain of modules that need it (the file's size is the one cost known before loading:
// a big module takes long to lay out and patch, and kvm then kvm_amd, last in device order,
// ended a coldplug seconds after everything else). Among equals it goes to the module earliest
// in its plan's order (the order of its requests, each module after those it needs), then to
// the older plan: not to whichever goroutine asked first.
//
// A module holds its slot until it is live, not until finit_module returns: once its init has
// run, the kernel marks it live, announces it (a "module" add uevent) and then, in the same
// call, waits for every asynchronous probe in the system to finish (async_synchronize_full),
// which in a parallel coldplug is other drivers' probing (ATA ports, SCSI scans) and can keep a
// finished module in the kernel for seconds. Whoever hears the uevent (the daemon) says so with
// Live: the slot goes on to the next module, and the modules that need the live one may load.
//
// Plans that share one Slots (PlanOptions.Slots) are bounded together; without it, each Exec
// has its own, of Options.Workers slots. A load that a module's init is waiting for (a kernel
// helper's request, forwarded to a daemon) must not share the init's slots: the init would
// hold a slot its own request needs.
type Slots struct {
	mu      sync.Mutex
	free    int
	plans   uint64
	waiting slotQueue
	// held are the slots held now, by module name.
	held map[string][]*slotHold
}

// NewSlots returns Slots for n loads at once (at least one).
func NewSlots(n int) *Slots {
	return &Slots{free: max(n, 1)}
}

// plan numbers a new plan: lower numbers are older.
func (s *Slots) plan() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.plans++
	return s.plans
}

// acquire waits for a slot for module, at index of plan, or for ctx to end. chain is asked
// only when the module has to wait (its place in the queue): a free slot costs nothing more.
// live is called once if Live says the module is live before the hold is done.
func (s *Slots) acquire(ctx context.Context, plan uint64, index int, chain func() int64, module string, live func()) (*slotHold, error) {
	if !s.take() {
		if w := s.enqueue(plan, index, chain()); w != nil {
			if err := s.wait(ctx, w); err != nil {
				return nil, err
			}
		}
	}
	h := &slotHold{s: s, module: moduleKey(module), live: live}
	s.mu.Lock()
	if s.held == nil {
		s.held = make(map[string][]*slotHold)
	}
	s.held[h.module] = append(s.held[h.module], h)
	s.mu.Unlock()
	return h, nil
}

// Live says that module is live (its init has run): the slots its loads hold go to the next
// waiting modules, and those loads' live callbacks run. A module no load holds a slot for is
// ignored.
func (s *Slots) Live(module string) {
	s.mu.Lock()
	hs := s.held[moduleKey(module)]
	delete(s.held, moduleKey(module))
	s.mu.Unlock()
	for _, h := range hs {
		h.release(true)
	}
}

// slotHold is one load's slot.
type slotHold struct {
	s      *Slots
	module string
	live   func()
	once   sync.Once
}

// release gives the slot back once, running the live callback when Live called it.
func (h *slotHold) release(live bool) {
	h.once.Do(func() {
		h.s.release()
		if live && h.live != nil {
			h.live()
		}
	})
}

// done ends the hold when the load is over: the slot goes back if Live did not already give it.
func (h *slotHold) done() {
	h.s.mu.Lock()
	hs := h.s.held[h.module]
	for i, o := range hs {
		if o == h {
			hs = append(hs[:i:i], hs[i+1:]...)
			break
		}
	}
	if len(hs) == 0 {
		delete(h.s.held, h.module)
	} else {
		h.s.held[h.module] = hs
	}
	h.s.mu.Unlock()
	h.release(false)
}

// moduleKey is a module name as the kernel spells it (dashes are underscores).
func moduleKey(name string) string { return strings.ReplaceAll(name, "-", "_") }

// take takes a free slot if there is one.
func (s *Slots) take() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.free > 0 {
		s.free--
		return true
	}
	return false
}

// enqueue takes a free slot (nil) or puts the module in the queue of waiters.
func (s *Slots) enqueue(plan uint64, index int, chain int64) *slotWaiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.free > 0 { // free slots mean nothing waits
		s.free--
		return nil
	}
	w := &slotWaiter{plan: plan, index: index, chain: chain, granted: make(chan struct{})}
	heap.Push(&s.waiting, w)
	return w
}

// wait waits until w is granted a slot or ctx ends; a slot granted as ctx ended is passed on.
func (s *Slots) wait(ctx context.Context, w *slotWaiter) error {
	select {
	case <-w.granted:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	if w.pos < 0 {
		s.mu.Unlock()
		s.release()
		return ctx.Err()
	}
	heap.Remove(&s.waiting, w.pos)
	s.mu.Unlock()
	return ctx.Err()
}

// release gives a slot back: to the first waiting module, or to the free count.
func (s *Slots) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.waiting) == 0 {
		s.free++
		return
	}
	w := heap.Pop(&s.waiting).(*slotWaiter)
	close(w.granted)
}

type slotWaiter struct {
	plan    uint64
	index   int
	chain   int64
	granted chan struct{}
	pos     int // in the heap; -1 once granted
}

// slotQueue is a heap of waiting modules: the one heading the longest chain first, then the
// earliest in its plan, then the older plan.
type slotQueue []*slotWaiter

func (q slotQueue) Len() int { return len(q) }
func (q slotQueue) Less(i, j int) bool {
	if q[i].chain != q[j].chain {
		return q[i].chain > q[j].chain
	}
	if q[i].index != q[j].index {
		return q[i].index < q[j].index
	}
	return q[i].plan < q[j].plan
}
func (q slotQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].pos, q[j].pos = i, j
}
func (q *slotQueue) Push(x any) {
	w := x.(*slotWaiter)
	w.pos = len(*q)
	*q = append(*q, w)
}
func (q *slotQueue) Pop() any {
	old := *q
	w := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	w.pos = -1
	return w
}
