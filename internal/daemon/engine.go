package daemon

import (
	"context"
	"errors"
	"fmt"

	"github.com/modload/modload"
)

// EngineLoader is the Loader over the loading engine (package modload), which "modload load"
// runs on too: every call resolves its requests as modprobe does and loads the union of what
// they need as one graph (independent modules in parallel, each module once, through the gate).
type EngineLoader struct {
	// Open returns the engine for one call, closed after it: opened per call, so that a depmod
	// run between calls is seen. Loads of concurrent calls meet in the gate's locks.
	Open func() (*modload.Engine, error)
	// Options are modprobe's flags for every request: Blacklist is udev's semantics (the
	// blacklist applies to every module); without it, modprobe's (to modules matched through
	// an alias only).
	Options modload.PlanOptions
}

// Load implements Loader: each request's engine result becomes a Result. A request every
// match of which is blacklisted is NotFound, as for a device without a driver.
func (l EngineLoader) Load(ctx context.Context, requests ...string) Report {
	out := make(Report, len(requests))
	e, err := l.Open()
	if err != nil {
		for i, r := range requests {
			out[i] = Result{Request: r, Status: Failed, Err: &LoadError{Module: r, Err: err}}
		}
		return out
	}
	defer e.Close()
	reqs := make([]modload.Request, len(requests))
	for i, r := range requests {
		reqs[i] = modload.Request{Name: r}
	}
	rep := e.LoadRequests(ctx, l.Options, reqs...)
	for i, rr := range rep.Requests {
		out[i] = result(rep, rr)
	}
	return out
}

// result maps one request's engine result to the daemon's.
func result(rep *modload.Report, rr modload.RequestResult) Result {
	req := rr.Request.Name
	switch {
	case rr.Status == modload.StatusNotFound, rr.Err == nil && rr.Status == modload.StatusBlacklisted:
		return Result{Request: req, Status: NotFound, Err: fmt.Errorf("%s: %w", req, ErrNotFound)}
	case rr.Err == nil:
		return Result{Request: req, Status: Loaded}
	}
	// The request's error is that of the first module of its probe list that failed (those
	// it needs come first): the one to name, with its errno.
	le := &LoadError{Module: req, Err: rr.Err}
	var me *modload.ModuleError
	if errors.As(rr.Err, &me) {
		le.Module = me.Module
	}
	errors.As(rr.Err, &le.Errno)
	return Result{Request: req, Status: Failed, Err: le}
}
