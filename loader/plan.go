package loader

import (
	"slices"
)

// plan builds the nodes reachable from targets. Missing modules are an *Error matching
// ErrNotFound; a cycle of hard dependencies is a *CycleError. A cycle that involves a softdep
// is broken by dropping the edge that closes it, as kmod breaks softdep loops.
func plan(targets []string, graph map[string]*Module) ([]*node, error) {
	nodes := map[string]*node{}
	var order []*node
	var collect func(name string) error
	collect = func(name string) error {
		if _, ok := nodes[name]; ok {
			return nil
		}
		m, ok := graph[name]
		if !ok || m == nil {
			return &Error{Module: name, Err: ErrNotFound}
		}
		n := &node{m: m, done: make(chan struct{})}
		nodes[name] = n
		order = append(order, n)
		for _, list := range [][]string{m.Deps, m.Pre, m.Post} {
			for _, d := range list {
				if err := collect(d); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, t := range targets {
		if err := collect(t); err != nil {
			return nil, err
		}
		nodes[t].target = true
	}
	if err := hardCycle(order, nodes); err != nil {
		return nil, err
	}
	// Prerequisite edges: hard deps first, always kept; then pre softdeps and reversed post
	// softdeps, each dropped when it would close a cycle (the module it should wait for
	// already waits for it), so a softdep can never override a hard dependency.
	prereqs := map[*node][]*node{}
	for _, n := range order {
		for _, d := range n.m.Deps {
			if p := nodes[d]; !slices.Contains(prereqs[n], p) {
				prereqs[n] = append(prereqs[n], p)
			}
		}
	}
	waitsFor := func(from, to *node) bool {
		seen := map[*node]bool{}
		stack := []*node{from}
		for len(stack) > 0 {
			n := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if n == to {
				return true
			}
			if seen[n] {
				continue
			}
			seen[n] = true
			stack = append(stack, prereqs[n]...)
		}
		return false
	}
	soft := func(n, p *node) {
		if n == p || slices.Contains(prereqs[n], p) || waitsFor(p, n) {
			return
		}
		prereqs[n] = append(prereqs[n], p)
	}
	for _, n := range order {
		for _, d := range n.m.Pre {
			soft(n, nodes[d])
		}
		for _, d := range n.m.Post {
			soft(nodes[d], n)
		}
	}
	for _, n := range order {
		n.prereqs = prereqs[n]
	}
	return order, nil
}

// hardCycle finds a cycle of hard dependencies.
func hardCycle(order []*node, nodes map[string]*node) error {
	const white, gray, black = 0, 1, 2
	color := map[*node]int{}
	var stack []string
	var visit func(n *node) error
	visit = func(n *node) error {
		color[n] = gray
		stack = append(stack, n.m.Name)
		for _, d := range n.m.Deps {
			p := nodes[d]
			switch color[p] {
			case gray:
				i := slices.Index(stack, d)
				return &CycleError{Cycle: append(slices.Clone(stack[i:]), d)}
			case white:
				if err := visit(p); err != nil {
					return err
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		return nil
	}
	for _, n := range order {
		if color[n] == white {
			if err := visit(n); err != nil {
				return err
			}
		}
	}
	return nil
}
