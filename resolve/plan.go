package resolve

import (
	"errors"
	"fmt"
)

// StepKind is what a Step asks the loader to do.
type StepKind int

const (
	// Insmod: load Module.Path with Options.
	Insmod StepKind = iota + 1
	// Builtin: nothing to load, the module is built into the kernel.
	Builtin
	// Install: run Command through /bin/sh (after substituting $CMDLINE_OPTS with Options)
	// instead of loading.
	Install
	// Missing: no file and not builtin; kmod fails with "could not find module by name" when
	// it tries to load it (and prints nothing for it under --show-depends).
	Missing
)

func (k StepKind) String() string {
	switch k {
	case Insmod:
		return "insmod"
	case Builtin:
		return "builtin"
	case Install:
		return "install"
	case Missing:
		return "missing"
	}
	return fmt.Sprintf("StepKind(%d)", int(k))
}

// Step is one entry of kmod's probe list.
type Step struct {
	Kind   StepKind
	Module Module
	// Options: the module's configured options, then, for the target, the request's options.
	Options string
	// Command is the install command (Kind == Install), before $CMDLINE_OPTS substitution.
	Command string
	// Required is false for modules reached only through softdeps: kmod ignores their errors.
	Required bool
	// Target marks the module the plan was made for.
	Target bool
}

// PlanOptions are modprobe's flags that change the plan.
type PlanOptions struct {
	// IgnoreInstall is -i: the target's install command and softdeps are ignored.
	IgnoreInstall bool
	// Blacklist is -b: the blacklist applies to the target even when asked for by name.
	Blacklist bool
	// ExtraOptions are the request's module options (modprobe NAME opt=val ...), for the target.
	ExtraOptions string
}

// Plan looks name up and returns the probe list of every module it resolves to, one after the
// other, as modprobe NAME would execute them. Nothing found is ErrNotFound. Blacklisted
// matches are left out; if every match is blacklisted the result is ErrBlacklisted.
func (r *Resolver) Plan(name string, o PlanOptions) ([]Step, error) {
	ms, err := r.Lookup(name)
	if err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("plan %s: %w", name, ErrNotFound)
	}
	var all []Step
	blocked := 0
	for _, m := range ms {
		steps, err := r.PlanModule(m, o)
		if errors.Is(err, ErrBlacklisted) {
			blocked++
			continue
		}
		if err != nil {
			return nil, err
		}
		all = append(all, steps...)
	}
	if blocked == len(ms) {
		return nil, ErrBlacklisted
	}
	return all, nil
}

// PlanModule returns kmod's probe list for one module returned by Lookup
// (kmod_module_probe_insert_module without the kernel-state checks). A blacklisted module gives
// ErrBlacklisted, as kmod returns early for it.
func (r *Resolver) PlanModule(m Module, o PlanOptions) ([]Step, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.blacklisted(m.Name) && (m.Alias != "" || o.Blacklist) {
		return nil, ErrBlacklisted
	}
	p := r.newPool()
	target := p.adopt(m)
	var list []*mod
	if err := p.probeList(target, true, o.IgnoreInstall, &list); err != nil {
		return nil, err
	}
	steps := make([]Step, 0, len(list))
	for _, x := range list {
		opts := p.getOptions(x)
		extra := ""
		if x == target {
			extra = o.ExtraOptions
		}
		opts = optionsConcat(opts, extra)
		e, err := p.export(x)
		if err != nil {
			return nil, err
		}
		st := Step{Module: e, Options: opts, Required: x.required, Target: x == target}
		cmd, has := p.getInstall(x)
		switch {
		case has && !x.ignorecmd:
			st.Kind, st.Command = Install, cmd
		case e.Path != "":
			st.Kind = Insmod
		case e.Builtin:
			st.Kind = Builtin
		default:
			st.Kind = Missing
		}
		steps = append(steps, st)
	}
	return steps, nil
}

// optionsConcat is kmod's module_options_concat, quirks included: configured options followed
// by a space even when there are no extra options.
func optionsConcat(opt, xopt string) string {
	if opt == "" && xopt == "" {
		return ""
	}
	if opt == "" {
		return xopt
	}
	return opt + " " + xopt
}

// probeList is __kmod_module_get_probe_list.
func (p *pool) probeList(m *mod, required, ignorecmd bool, list *[]*mod) error {
	if m.visited {
		return nil
	}
	m.visited = true
	if err := p.loadDeps(m); err != nil {
		return err
	}
	deps := m.deps
	if required {
		m.required = true
		for _, d := range deps {
			d.required = true
		}
	}
	for _, d := range deps {
		if err := p.fillSoftdep(d, list); err != nil {
			return err
		}
	}
	if ignorecmd {
		*list = append(*list, m)
		m.ignorecmd = true
		return nil
	}
	return p.fillSoftdep(m, list)
}

// fillSoftdep is __kmod_module_fill_softdep: pre softdeps, the module, post softdeps.
func (p *pool) fillSoftdep(m *mod, list *[]*mod) error {
	pre, post, err := p.softdeps(m)
	if err != nil {
		return err
	}
	for _, s := range pre {
		if err := p.probeList(s, false, false, list); err != nil {
			return err
		}
	}
	*list = append(*list, m)
	m.ignorecmd = len(pre) > 0 || len(post) > 0
	for _, s := range post {
		if err := p.probeList(s, false, false, list); err != nil {
			return err
		}
	}
	return nil
}

// softdeps is kmod_module_get_softdeps: the first softdep line whose pattern matches, each
// name looked up in full (a lookup error is reported and skipped).
func (p *pool) softdeps(m *mod) (pre, post []*mod, err error) {
	for _, s := range p.r.cfg.Softdeps {
		if !match(s.Module, m.name) {
			continue
		}
		pre = p.lookupDeps(s.Pre)
		post = p.lookupDeps(s.Post)
		break
	}
	return pre, post, nil
}

func (p *pool) lookupDeps(names []string) []*mod {
	var out []*mod
	for _, n := range names {
		ms, err := p.lookup(n)
		if err != nil {
			p.r.warn(fmt.Sprintf("failed to lookup soft dependency '%s', continuing anyway.", n))
			continue
		}
		out = append(out, ms...)
	}
	return out
}
