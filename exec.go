package modload

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/modload/modload/gate"
	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/loader"
)

// Load resolves requests (module names, aliases, device modaliases, symbol:NAME) as modprobe
// does and loads everything they need as one parallel graph, each module once, every kernel
// load through the duplicate gate. Per request the semantics are kmod's: hard dependencies
// must load first and succeed; softdeps load first (pre) or after (post) but their failure
// does not block; the blacklist applies to modules matched through an alias; install commands
// run where kmod runs them. The report has every request and module once; Report.Err is what
// kmod's exit status would say. One difference from kmod's sequential walk, by design of the
// graph: a failure stops only what needs the failed module (its dependents, and the post
// softdeps of a required module), not modules that merely come later in the walk.
func (e *Engine) Load(ctx context.Context, requests ...string) *Report {
	return e.LoadRequests(ctx, PlanOptions{}, toRequests(requests)...)
}

// LoadRequests is Load with modprobe's flags and per-request parameters.
func (e *Engine) LoadRequests(ctx context.Context, o PlanOptions, requests ...Request) *Report {
	p, err := e.PlanRequests(o, requests...)
	if err != nil {
		rep := &Report{index: map[string]int{}}
		for _, q := range requests {
			rep.Requests = append(rep.Requests, RequestResult{Request: q, Status: StatusFailed, Err: &RequestError{Request: q.Name, Err: err}})
		}
		return rep
	}
	return e.Exec(ctx, p)
}

type execNode struct {
	step  *Step
	needs []*execNode
	after []*execNode
	done  chan struct{} // closed once res is set
	// live is closed when the module may be relied on: done, or live in the kernel while its
	// finit_module call still waits there (Slots.Live).
	live     chan struct{}
	liveOnce sync.Once
	res      ModuleResult
	start    time.Time // when its load began (EventStart)
	end      time.Duration
}

// Exec loads a Plan: independent modules in parallel (at most Options.Workers at once, or as
// PlanOptions.Slots allow), each after the modules it needs and its softdeps.
func (e *Engine) Exec(ctx context.Context, p *Plan) *Report {
	defer e.Flush()
	start := time.Now()
	lo := loader.Options{ForceModversion: p.Options.ForceModversion, ForceVermagic: p.Options.ForceVermagic,
		IgnoreInstall: p.Options.IgnoreInstall, FirstTime: p.Options.FirstTime, Workers: 1}
	l, err := e.loader(lo)
	rep := &Report{index: make(map[string]int, len(p.Steps))}
	nodes := make([]*execNode, len(p.Steps))
	for i := range p.Steps {
		nodes[i] = &execNode{step: &p.Steps[i], done: make(chan struct{}), live: make(chan struct{})}
		rep.index[p.Steps[i].Module] = i
	}
	for _, n := range nodes {
		for _, d := range n.step.Needs {
			n.needs = append(n.needs, nodes[p.index[d]])
		}
		for _, d := range n.step.After {
			n.after = append(n.after, nodes[p.index[d]])
		}
	}
	// Only a module that has to wait for a slot needs its chain: the files are stat'ed then,
	// once for the plan, not for a plan whose loads all find a free slot.
	chains := sync.OnceValue(func() []int64 { return chainBytes(nodes) })
	slots := p.Options.Slots
	if slots == nil {
		workers := e.opts.Workers
		if workers <= 0 {
			workers = defaultWorkers()
		}
		slots = NewSlots(workers)
	}
	plan := slots.plan()
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			defer n.markLive()
			defer close(n.done)
			t := time.Now()
			n.res = e.run(ctx, l, err, slots, plan, i, func() int64 { return chains()[i] }, p.Options, n)
			n.res.Duration = time.Since(t)
			n.end = time.Since(start)
			e.event(Event{Kind: EventDone, Module: n.res.Module, Status: n.res.Status, Err: n.res.Err, Duration: n.res.Duration, Start: n.start})
		})
	}
	wg.Wait()
	for _, n := range nodes {
		rep.Modules = append(rep.Modules, n.res)
	}
	for _, pr := range p.Requests {
		rep.Requests = append(rep.Requests, requestResult(pr, p.Options, rep, nodes, p.index))
	}
	rep.Duration = time.Since(start)
	return rep
}

func (n *execNode) markLive() { n.liveOnce.Do(func() { close(n.live) }) }

// chainBytes gives each node the bytes of module files on the longest chain from it through
// the modules that need it or load after it (itself included): what Slots serves first.
func chainBytes(nodes []*execNode) []int64 {
	index := make(map[*execNode]int, len(nodes))
	next := make([][]int, len(nodes)) // the nodes that wait for node i
	for i, n := range nodes {
		index[n] = i
	}
	for i, n := range nodes {
		for _, list := range [][]*execNode{n.needs, n.after} {
			for _, d := range list {
				next[index[d]] = append(next[index[d]], i)
			}
		}
	}
	chain := make([]int64, len(nodes))
	done := make([]bool, len(nodes))
	var walk func(i int) int64
	walk = func(i int) int64 {
		if done[i] {
			return chain[i]
		}
		done[i] = true // a plan is acyclic; a cycle would end here, not loop
		var longest int64
		for _, j := range next[i] {
			longest = max(longest, walk(j))
		}
		var size int64
		if st := nodes[i].step; st.Path != "" && !st.Live {
			if fi, err := sys.Stat(st.Path); err == nil {
				size = fi.Size
			}
		}
		chain[i] = size + longest
		return chain[i]
	}
	for i := range nodes {
		walk(i)
	}
	return chain
}

// run serves one node.
func (e *Engine) run(ctx context.Context, l *loader.Loader, lerr error, slots *Slots, plan uint64, index int, chain func() int64, o PlanOptions, n *execNode) ModuleResult {
	st := n.step
	res := ModuleResult{Module: st.Module, Path: st.Path, Required: st.Required}
	fail := func(s Status, err error) ModuleResult {
		res.Status, res.Err = s, &ModuleError{Module: st.Module, Path: st.Path, Err: err}
		return res
	}
	for _, list := range [][]*execNode{n.needs, n.after} {
		for _, d := range list {
			select {
			case <-d.live:
			case <-ctx.Done():
				return fail(StatusFailed, ctx.Err())
			}
		}
	}
	for _, d := range n.needs {
		select {
		case <-d.done:
			if d.res.Err != nil {
				return fail(StatusSkipped, fmt.Errorf("%w: %s", ErrDependency, d.res.Module))
			}
		default: // live while its call is still in the kernel: loaded (Slots.Live)
		}
	}
	if !o.IgnoreLoaded && e.inKernel(st.mod) {
		e.alreadyLive(st.mod)
		res.Status = StatusAlreadyLive
		if st.mod.Builtin {
			res.Status = StatusBuiltin
		}
		return res
	}
	switch st.Action {
	case Builtin:
		res.Status = StatusBuiltin
		return res
	case Missing:
		return fail(StatusFailed, notFound(fmt.Sprintf("could not find module by name='%s'", st.Module)))
	}
	if lerr != nil {
		return fail(StatusFailed, lerr)
	}
	h, err := slots.acquire(ctx, plan, index, chain, st.Module, n.markLive)
	if err != nil {
		return fail(StatusFailed, err)
	}
	defer h.done()
	n.start = time.Now()
	e.event(Event{Kind: EventStart, Module: st.Module, Line: st.String(), Start: n.start})
	m := &loader.Module{Name: st.Module, Path: st.Path, Params: st.Params, Builtin: st.mod.Builtin}
	if st.Action == Install {
		m.Install = st.Command
	}
	out, installed, err := l.LoadModule(ctx, m, st.Target)
	res.Status = statusOf(out, installed)
	if err != nil {
		var le *loader.Error
		if errors.As(err, &le) {
			err = le.Err
		}
		if res.Status == StatusLoaded || res.Status == StatusInstalled {
			res.Status = StatusFailed
		}
		return fail(res.Status, err)
	}
	return res
}

// statusOf maps how the gate served a load to a Status.
func statusOf(o gate.Outcome, installed bool) Status {
	if installed {
		return StatusInstalled
	}
	switch o {
	case gate.Loaded:
		return StatusLoaded
	case gate.AlreadyLive:
		return StatusAlreadyLive
	case gate.WaitedComing, gate.CoalescedProcess:
		return StatusCoalescedCrossProcess
	case gate.CoalescedLocal:
		return StatusCoalescedInProcess
	case gate.RememberedFailure:
		return StatusRememberedFailure
	case gate.Busy:
		return StatusBusy
	}
	return StatusFailed
}

// requestResult is kmod's answer for one request: per match, the first failure of a required
// step of its probe list (softdeps' failures are ignored), EEXIST for a target already loaded
// with FirstTime; the request answers with its last match's result.
func requestResult(pr PlannedRequest, o PlanOptions, rep *Report, nodes []*execNode, index map[string]int) RequestResult {
	rr := RequestResult{Request: pr.Request, Targets: pr.Targets, Err: pr.Err}
	switch {
	case pr.Err != nil:
		rr.Status = StatusFailed
		if errors.Is(pr.Err, ErrNotFound) {
			rr.Status = StatusNotFound
		}
		return rr
	case len(pr.matches) == 0:
		rr.Status = StatusNotFound
		return rr
	}
	var err error
	status := StatusBlacklisted
	for _, mt := range pr.matches {
		err = nil
		switch {
		case mt.blacklisted:
			status = StatusBlacklisted
			continue
		case mt.live:
			status = StatusAlreadyLive
			if mt.builtin {
				status = StatusBuiltin
			}
			if o.FirstTime {
				err = &ModuleError{Module: mt.target, Err: fmt.Errorf("module already in kernel: %w", syscall.EEXIST)}
			}
			continue
		}
		for _, ref := range mt.steps {
			n := nodes[index[ref.name]]
			rr.Duration = max(rr.Duration, n.end)
			if ref.required && n.res.Err != nil && err == nil {
				err = n.res.Err
			}
		}
		t := nodes[index[mt.target]].res
		status = t.Status
		if err == nil && o.FirstTime && t.Status != StatusLoaded && t.Status != StatusInstalled {
			err = &ModuleError{Module: mt.target, Path: t.Path, Err: fmt.Errorf("module already in kernel: %w", syscall.EEXIST)}
		}
	}
	if err != nil {
		rr.Status, rr.Err = StatusFailed, &RequestError{Request: pr.Request.Name, Err: err}
	} else {
		rr.Status = status
	}
	return rr
}

func defaultWorkers() int { return runtime.NumCPU() }
