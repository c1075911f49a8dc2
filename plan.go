package modload

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/modload/modload/resolve"
)

// Request is one thing to load: a module name, an alias, a device modalias or "symbol:NAME",
// with the request's own module parameters (modprobe NAME PARAM=VALUE...), which apply to what
// the name resolves to.
type Request struct {
	Name   string
	Params string
}

// PlanOptions are modprobe's flags that change what a request loads.
type PlanOptions struct {
	// Blacklist is modprobe -b: a blacklisted module is not loaded even when asked for by name.
	// Without it the blacklist applies, as in kmod, to modules matched through an alias.
	Blacklist bool
	// IgnoreInstall is modprobe -i: files are loaded instead of install commands run, and a
	// target's softdeps are not loaded.
	IgnoreInstall bool
	// IgnoreLoaded plans as if nothing were in the kernel (modprobe -D).
	IgnoreLoaded bool
	// FirstTime is modprobe --first-time: a target already in the kernel fails with EEXIST.
	FirstTime bool
	// ForceModversion and ForceVermagic are modprobe --force-modversion, --force-vermagic.
	ForceModversion, ForceVermagic bool
	// MissingOK: a request that resolves to nothing is StatusNotFound without an error (as
	// udev's module loading treats a device without a driver). Coldplug sets it.
	MissingOK bool
	// Slots, when set, bounds this plan's loads together with those of every plan that shares
	// it (the daemon's coldplug and hotplug), instead of Options.Workers per Exec.
	Slots *Slots
}

// Action is what a Step does.
type Action int

const (
	// Insmod loads the module file.
	Insmod Action = iota + 1
	// Install runs the module's install command instead.
	Install
	// Builtin: the module is built into the kernel; nothing to load.
	Builtin
	// Missing: the module has no file and is not builtin; loading it fails (ErrNotFound).
	Missing
)

func (a Action) String() string {
	switch a {
	case Insmod:
		return "insmod"
	case Install:
		return "install"
	case Builtin:
		return "builtin"
	case Missing:
		return "missing"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Step is one module of a Plan.
type Step struct {
	Module string // module name
	Path   string // module file ("" for builtin or missing modules)
	Params string // parameters: configuration, kernel command line, then the request's
	Action Action
	// Command is the install command (Action Install), before $CMDLINE_OPTS substitution.
	Command string
	// Required: a target or hard dependency of some request; its failure fails the request.
	// A module reached only through softdeps is not required (kmod ignores its failure).
	Required bool
	// Target: some request resolved to this module.
	Target bool
	// Live: in the kernel when planned (and PlanOptions.IgnoreLoaded unset): nothing to do.
	Live bool
	// Needs are the modules that must load first and succeed: the hard dependencies
	// (modules.dep), and the required module this one is a softdep post of.
	Needs []string
	// After are the modules tried first whose failure does not matter: softdeps.
	After []string

	mod resolve.Module
}

// String is the step as modprobe -n -v prints it, without the newline: "insmod PATH PARAMS",
// "install COMMAND PARAMS" or "builtin NAME" ("" for a missing module, which kmod does not
// print).
func (s Step) String() string {
	switch s.Action {
	case Install:
		return "install " + s.Command + " " + s.Params
	case Insmod:
		return "insmod " + s.Path + " " + s.Params
	case Builtin:
		return "builtin " + s.Module
	}
	return ""
}

// PlannedRequest is what one request resolved to.
type PlannedRequest struct {
	Request Request
	// Targets are the modules the name matched, in kmod's order, blacklisted ones included.
	Targets []string
	// Err is a resolution failure: ErrNotFound when nothing matched (unless MissingOK), or a
	// bad name or unreadable index.
	Err     error
	matches []match
}

// match is one module a request resolved to, with its kmod probe list.
type match struct {
	target      string
	blacklisted bool
	live        bool // the target was in the kernel when planned: the walk ends at once
	builtin     bool // ... because it is built in
	steps       []probeRef
}

type probeRef struct {
	name     string
	required bool
}

// Plan is the dry run of a set of requests: every module they need, each once, in a valid
// load order. Its lines (WriteTo) are what modprobe -n -v prints for each request alone,
// without repeats.
type Plan struct {
	Requests []PlannedRequest
	Steps    []Step
	Options  PlanOptions
	index    map[string]int
}

// Step returns the step of a module.
func (p *Plan) Step(module string) (Step, bool) {
	i, ok := p.index[module]
	if !ok {
		return Step{}, false
	}
	return p.Steps[i], true
}

// WriteTo writes the plan in modprobe -n -v's format: one line per step that is not live.
func (p *Plan) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	for _, s := range p.Steps {
		if l := s.String(); l != "" && !s.Live {
			b.WriteString(l + "\n")
		}
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// Plan resolves requests (names, aliases, modaliases, symbol:NAME) as modprobe does, without
// loading anything.
func (e *Engine) Plan(requests ...string) (*Plan, error) {
	return e.PlanRequests(PlanOptions{}, toRequests(requests)...)
}

func toRequests(names []string) []Request {
	rs := make([]Request, len(names))
	for i, n := range names {
		rs[i] = Request{Name: n}
	}
	return rs
}

// PlanRequests resolves requests with modprobe's flags. Each request is kmod's probe of the
// name: the modules it matches, in kmod's order, each with its probe list (softdeps pre, hard
// dependencies, the module, softdeps post); the Plan is their union in request order, which is
// a valid load order. A request that matches nothing, or a bad name, is reported in its
// PlannedRequest; the error is for a module directory or configuration that cannot be read.
func (e *Engine) PlanRequests(o PlanOptions, requests ...Request) (*Plan, error) {
	r, err := e.Resolver()
	if err != nil {
		return nil, err
	}
	p := &Plan{Options: o, index: map[string]int{}}
	for _, req := range requests {
		pr := PlannedRequest{Request: req}
		pr.Err = e.planRequest(r, p, &pr)
		p.Requests = append(p.Requests, pr)
	}
	if err := e.edges(r, p); err != nil {
		return nil, err
	}
	return p, nil
}

func (e *Engine) planRequest(r *resolve.Resolver, p *Plan, pr *PlannedRequest) error {
	o := p.Options
	ms, err := r.Lookup(pr.Request.Name)
	if err != nil {
		return &RequestError{Request: pr.Request.Name, Err: err}
	}
	if len(ms) == 0 {
		if o.MissingOK {
			return nil
		}
		return &RequestError{Request: pr.Request.Name, Err: notFound(fmt.Sprintf("module %s not found in directory %s", pr.Request.Name, r.Dir()))}
	}
	for _, m := range ms {
		pr.Targets = append(pr.Targets, m.Name)
		mt := match{target: m.Name}
		steps, err := r.PlanModule(m, resolve.PlanOptions{IgnoreInstall: o.IgnoreInstall, Blacklist: o.Blacklist, ExtraOptions: pr.Request.Params})
		switch {
		case errors.Is(err, resolve.ErrBlacklisted):
			mt.blacklisted = true
		case err != nil:
			return &RequestError{Request: pr.Request.Name, Err: err}
		case !o.IgnoreLoaded && e.targetInKernel(steps):
			mt.live, mt.builtin = true, m.Builtin
		default:
			for _, s := range steps {
				mt.steps = append(mt.steps, probeRef{name: s.Module.Name, required: s.Required})
				p.add(e, s)
			}
		}
		pr.matches = append(pr.matches, mt)
	}
	return nil
}

// targetInKernel is the first check of kmod_module_probe_insert_module: a target already in
// the kernel ends its probe at once.
func (e *Engine) targetInKernel(steps []resolve.Step) bool {
	for _, s := range steps {
		if s.Target {
			return e.inKernel(s.Module)
		}
	}
	return false
}

// add puts a probe-list step in the plan, once per module.
func (p *Plan) add(e *Engine, s resolve.Step) {
	if i, ok := p.index[s.Module.Name]; ok {
		st := &p.Steps[i]
		st.Required = st.Required || s.Required
		st.Target = st.Target || s.Target
		return
	}
	st := Step{Module: s.Module.Name, Path: s.Module.Path, Params: s.Options, Required: s.Required, Target: s.Target, mod: s.Module}
	switch s.Kind {
	case resolve.Insmod:
		st.Action = Insmod
	case resolve.Install:
		st.Action, st.Command = Install, s.Command
	case resolve.Builtin:
		st.Action = Builtin
	default:
		st.Action = Missing
	}
	st.Live = !p.Options.IgnoreLoaded && e.inKernel(s.Module)
	p.index[st.Module] = len(p.Steps)
	p.Steps = append(p.Steps, st)
}

// edges fills Needs and After. Only modules earlier in the plan are waited for, so the graph
// has no cycle and the plan order is one of its load orders.
func (e *Engine) edges(r *resolve.Resolver, p *Plan) error {
	earlier := func(name string, i int) bool {
		j, ok := p.index[name]
		return ok && j < i
	}
	for i := range p.Steps {
		st := &p.Steps[i]
		if st.Path != "" {
			deps, err := r.Deps(st.mod)
			if err != nil {
				return fmt.Errorf("dependencies of %s: %w", st.Module, err)
			}
			for _, d := range deps {
				if d.Name != st.Module && earlier(d.Name, i) {
					st.Needs = appendOnce(st.Needs, d.Name)
				}
			}
		}
		pre, post := r.Config().Softdep(st.Module)
		for _, n := range softNames(r, pre) {
			if earlier(n, i) {
				st.After = appendOnce(st.After, n)
			}
		}
		for _, n := range softNames(r, post) {
			j, ok := p.index[n]
			if !ok || j <= i {
				continue
			}
			// kmod's walk stops at a required module's failure: its post softdeps are not
			// loaded then. A softdep's failure is ignored, and so is its post's dependence.
			if st.Required {
				p.Steps[j].Needs = appendOnce(p.Steps[j].Needs, st.Module)
			} else {
				p.Steps[j].After = appendOnce(p.Steps[j].After, st.Module)
			}
		}
	}
	return nil
}

// softNames resolves softdep names as kmod does (each looked up; failures skipped).
func softNames(r *resolve.Resolver, names []string) []string {
	var out []string
	for _, n := range names {
		ms, err := r.Lookup(n)
		if err != nil {
			continue
		}
		for _, m := range ms {
			out = append(out, m.Name)
		}
	}
	return out
}

func appendOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
