package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"syscall"

	"github.com/modload/modload/internal/probe"
	"github.com/modload/modload/loader"
	"github.com/modload/modload/resolve"
)

// GraphLoader is the Loader of "modload load": every call resolves its requests as modprobe
// does and loads the union of what they need as one graph (independent modules in parallel,
// each module once, through the gate).
type GraphLoader struct {
	System *probe.System
	// Open returns the resolver for one call (opened per call, so that a depmod run between
	// calls is seen).
	Open func() (*resolve.Resolver, error)
	// Blacklist applies the blacklist to modules matched through aliases (modprobe -b, what
	// udev does for device events).
	Blacklist bool
	// Workers bounds the loads in flight (default the CPU count).
	Workers int
	// Gate, when set, is the System's GateSink: flushed after each load, so that a module the
	// gate failed without an outcome (a wait that timed out) still gets its span.
	Gate *GateSink
}

// Load implements Loader.
func (g GraphLoader) Load(ctx context.Context, requests ...string) Report {
	report := make(Report, len(requests))
	fail := func(err error) Report {
		for i, r := range requests {
			report[i] = Result{Request: r, Status: Failed, Err: &LoadError{Module: r, Err: err}}
		}
		return report
	}
	r, err := g.Open()
	if err != nil {
		return fail(err)
	}
	defer r.Close()
	// Which modules each request matched, for its result.
	matched := make([][]string, len(requests))
	for i, req := range requests {
		ms, err := r.Lookup(req)
		if err != nil {
			report[i] = Result{Request: req, Status: Failed, Err: &LoadError{Module: req, Err: fmt.Errorf("resolve %s: %w", req, err)}}
			continue
		}
		for _, m := range ms {
			if g.Blacklist && m.Alias != "" && r.Config().Blacklisted(m.Name) {
				continue
			}
			matched[i] = append(matched[i], m.Name)
		}
	}
	var names []string
	for i, req := range requests {
		if report[i].Status == 0 && len(matched[i]) > 0 {
			names = append(names, req)
		}
	}
	var byModule map[string]error
	if len(names) > 0 {
		targets, graph, _, err := probe.Graph(r, names, g.Blacklist)
		if err != nil {
			return fail(err)
		}
		byModule = moduleErrors(g.System.LoadGraph(ctx, targets, graph, g.Workers))
		if g.Gate != nil {
			g.Gate.Flush(slices.Collect(maps.Keys(graph)), byModule)
		}
	}
	for i, req := range requests {
		switch {
		case report[i].Status != 0:
		case len(matched[i]) == 0:
			report[i] = Result{Request: req, Status: NotFound, Err: fmt.Errorf("%s: %w", req, ErrNotFound)}
		default:
			report[i] = Result{Request: req, Status: Loaded}
			if err := byModule[""]; err != nil {
				report[i] = Result{Request: req, Status: Failed, Err: &LoadError{Module: matched[i][0], Err: err}}
			}
			for _, m := range matched[i] {
				if err := byModule[m]; err != nil {
					report[i] = Result{Request: req, Status: Failed, Err: &LoadError{Module: m, Errno: errnoOf(byModule, m), Err: err}}
					break
				}
			}
		}
	}
	return report
}

// moduleErrors maps LoadGraph's joined error to the module each part is about; an error
// about no module in particular (a cycle, a missing file) is filed under "" and fails every
// request.
func moduleErrors(err error) map[string]error {
	out := make(map[string]error)
	if err == nil {
		return out
	}
	var parts []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		parts = j.Unwrap()
	} else {
		parts = []error{err}
	}
	for _, p := range parts {
		var le *loader.Error
		if errors.As(p, &le) {
			out[le.Module] = p
			continue
		}
		out[""] = p
	}
	return out
}

// errnoOf is the kernel's errno behind module m's failure: its own, or, when a module it
// needs failed, that module's (as kmod reports a target whose dependency failed).
func errnoOf(byModule map[string]error, m string) syscall.Errno {
	for range len(byModule) + 1 {
		err := byModule[m]
		var errno syscall.Errno
		if errors.As(err, &errno) {
			return errno
		}
		var le *loader.Error
		if !errors.As(err, &le) || !errors.Is(le.Err, loader.ErrDependency) {
			return 0
		}
		_, dep, ok := strings.Cut(le.Err.Error(), loader.ErrDependency.Error()+": ")
		if !ok {
			return 0
		}
		m = dep
	}
	return 0
}
