package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/modload/modload"
	"github.com/modload/modload/internal/sys"
)

// Engines keeps one loading engine (package modload) for every load the daemon makes: the
// module indexes and the configuration are read once, not once per request, and loads of the
// coldplug, of hotplug batches and of the request socket meet in one process's gate. The
// engine is reopened when what it read changes: depmod replaced an index of the module
// directory (indexFiles), or a file of Config was added, removed or rewritten. Loads already
// running finish on the engine they started with, which is closed after the last of them.
type Engines struct {
	// Open returns a new engine. It is called once, and again after a change.
	Open func() (*modload.Engine, error)
	// Config are the configuration directories (modprobe.d) or files the engine reads.
	Config []string

	mu     sync.Mutex
	cur    *engineRef
	opened int
}

// engineRef is one open engine and the loads using it.
type engineRef struct {
	e     *modload.Engine
	dir   string // the module directory
	stamp stamp  // what the engine read, before it read it
	users int
	stale bool // replaced: closed when users drops to 0
}

// stamp is what stat says about the files an engine reads: depmod writes each index anew and
// renames it into place (a new identity and mtime); adding or removing a configuration file
// changes its directory's mtime, rewriting it its own. A missing file is the zero FileInfo,
// itself a state.
type stamp []sys.FileInfo

// indexFiles are the module directory's files in the stamp: the binary indexes the resolver
// reads, modules.dep (read where there is no binary index) and modules.softdep. depmod
// replaces them one after another: a stamp taken before the engine reads them sees the ones
// replaced after its read at the next acquire.
var indexFiles = [...]string{"modules.dep.bin", "modules.alias.bin", "modules.symbols.bin", "modules.builtin.bin", "modules.dep", "modules.softdep"}

func (c *Engines) stampOf(dir string) stamp {
	var s stamp
	for _, f := range indexFiles {
		fi, _ := sys.Stat(filepath.Join(dir, f))
		s = append(s, fi)
	}
	for _, p := range c.Config {
		fi, _ := sys.Stat(p)
		s = append(s, fi)
		ents, _ := os.ReadDir(p) // a file or a missing path: no entries
		for _, e := range ents {
			fi, _ := sys.Stat(filepath.Join(p, e.Name()))
			s = append(s, fi)
		}
	}
	return s
}

// acquire returns the current engine, opening one when there is none or what it read changed;
// release gives it back.
func (c *Engines) acquire() (*engineRef, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var st stamp
	dir := ""
	if r := c.cur; r != nil {
		st = c.stampOf(r.dir)
		if slices.Equal(st, r.stamp) {
			r.users++
			return r, nil
		}
		// Reopen: the stamp is taken before the new engine reads.
		dir = r.dir
		c.cur = nil
		c.retire(r)
	}
	e, err := c.Open()
	if err != nil {
		return nil, err
	}
	c.opened++
	res, err := e.Resolver()
	if err != nil {
		// No module directory (yet): this load fails with the engine's own error, and the
		// next one opens again.
		return &engineRef{e: e, users: 1, stale: true}, nil
	}
	if res.Dir() != dir {
		// The first open: the directory is known only now, after the read.
		st = c.stampOf(res.Dir())
	}
	r := &engineRef{e: e, dir: res.Dir(), stamp: st, users: 1}
	c.cur = r
	return r, nil
}

// release gives back an engine acquire returned; a replaced one is closed after its last load.
func (c *Engines) release(r *engineRef) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r.users--
	if r.stale && r.users == 0 {
		r.e.Close()
	}
}

// retire marks a replaced engine, closing it now when no load uses it (c.mu held).
func (c *Engines) retire(r *engineRef) {
	r.stale = true
	if r.users == 0 {
		r.e.Close()
	}
}

// Warm opens the engine now and has it read the configuration (its Resolver) and every module
// index (resolve.Resolver.Preload), as udevd's kmod builtin loads libkmod's resources at its
// start, so that the first load does not: the daemon calls it at its start. An error is only
// said: the loads meet it again and report it.
func (c *Engines) Warm() error {
	r, err := c.acquire()
	if err != nil {
		return err
	}
	defer c.release(r)
	res, err := r.e.Resolver()
	if err != nil {
		return err
	}
	return res.Preload()
}

// Opened is the number of engines opened so far.
func (c *Engines) Opened() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opened
}

// Close closes the current engine once the loads using it are done (the daemon's exit).
func (c *Engines) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.cur; r != nil {
		c.cur = nil
		c.retire(r)
	}
}

// EngineLoader is the Loader over the loading engine (package modload), which "modload load"
// runs on too: every call resolves its requests as modprobe does and loads the union of what
// they need as one graph (independent modules in parallel, each module once, through the gate).
type EngineLoader struct {
	// Engines is the engine every call uses (loaders with different Options share one).
	Engines *Engines
	// Options are modprobe's flags for every request: Blacklist is udev's semantics (the
	// blacklist applies to every module); without it, modprobe's (to modules matched through
	// an alias only).
	Options modload.PlanOptions
}

// Load implements Loader: each request's engine result becomes a Result. A request every
// match of which is blacklisted is NotFound, as for a device without a driver.
func (l EngineLoader) Load(ctx context.Context, requests ...string) Report {
	out := make(Report, len(requests))
	r, err := l.Engines.acquire()
	if err != nil {
		for i, req := range requests {
			out[i] = Result{Request: req, Status: Failed, Err: &LoadError{Module: req, Err: err}}
		}
		return out
	}
	defer l.Engines.release(r)
	reqs := make([]modload.Request, len(requests))
	for i, req := range requests {
		reqs[i] = modload.Request{Name: req}
	}
	rep := r.e.LoadRequests(ctx, l.Options, reqs...)
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
