package resolve

import (
	"fmt"
	"strings"

	"github.com/modload/modload/moddb"
)

// Lookup resolves name (a module name, an alias, "symbol:NAME") to modules in kmod's order of
// sources; see the package documentation. It returns (nil, nil) when nothing matches.
func (r *Resolver) Lookup(name string) ([]Module, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.newPool()
	ms, err := p.lookup(name)
	if err != nil || len(ms) == 0 {
		return nil, err
	}
	return p.exportAll(ms)
}

// lookup is kmod_module_new_from_lookup.
func (p *pool) lookup(given string) ([]*mod, error) {
	alias, ok := moddb.NormalizeAlias(given)
	if !ok {
		return nil, fmt.Errorf("lookup %q: %w", given, ErrInvalidName)
	}
	// 1. aliases from the configuration.
	var list []*mod
	for _, a := range p.r.cfg.Aliases {
		if match(a.Pattern, alias) {
			list = append(list, p.get(a.Module, a.Pattern))
		}
	}
	if len(list) > 0 {
		return list, nil
	}
	// 2. modules.dep, by name.
	if !strings.Contains(alias, ":") {
		path, deps, ok, err := p.r.idx.Dep(alias)
		if err != nil {
			return nil, fmt.Errorf("lookup %s: %w", alias, err)
		}
		if ok {
			// kmod parses the line it found at once; loadDeps asks the index again, once.
			m := p.get(alias, "")
			if !m.depInit {
				m.depInit = true
				if !m.hasPath {
					m.path, m.hasPath = p.joinPath(path), true
				}
				if !p.setDeps(m, deps) {
					m.depInit = false
				}
			}
			return []*mod{m}, nil
		}
	}
	// 3. modules.symbols, only for "symbol:" requests.
	if strings.HasPrefix(alias, "symbol:") {
		names, err := p.r.idx.Symbols(alias)
		if err != nil {
			return nil, fmt.Errorf("lookup %s: %w", alias, err)
		}
		for _, n := range names {
			list = append(list, p.get(n, alias))
		}
		if len(list) > 0 {
			return list, nil
		}
	}
	// 4. install, then remove commands, by exact name.
	for _, c := range p.r.cfg.Installs {
		if c.Module == alias {
			m := p.get(alias, "")
			m.installInit, m.install, m.hasInstall = true, c.Command, true
			return []*mod{m}, nil
		}
	}
	for _, c := range p.r.cfg.Removes {
		if c.Module == alias {
			return []*mod{p.get(alias, "")}, nil
		}
	}
	// 5. modules.alias.
	names, err := p.r.idx.Aliases(alias)
	if err != nil {
		return nil, fmt.Errorf("lookup %s: %w", alias, err)
	}
	for _, n := range names {
		list = append(list, p.get(n, alias))
	}
	if len(list) > 0 {
		return list, nil
	}
	// 6. modules.builtin.
	ok, err = p.r.idx.Builtin(alias)
	if err != nil {
		return nil, fmt.Errorf("lookup %s: %w", alias, err)
	}
	if ok {
		m := p.get(NormalizeName(alias), "")
		m.builtin = builtinYes
		return []*mod{m}, nil
	}
	// 7. modules.builtin.alias.
	names, err = p.r.idx.BuiltinAliases(alias)
	if err != nil {
		return nil, fmt.Errorf("lookup %s: %w", alias, err)
	}
	for _, n := range names {
		m := p.get(n, alias)
		m.builtin = builtinYes
		list = append(list, m)
	}
	return list, nil
}

// Deps returns m's hard dependencies (modules.dep) in load order.
func (r *Resolver) Deps(m Module) ([]Module, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.newPool()
	o := p.adopt(m)
	if err := p.loadDeps(o); err != nil {
		return nil, err
	}
	return p.exportAll(o.deps)
}

// Softdeps returns m's soft dependencies as kmod_module_get_softdeps gives them: the pre and
// post modules of the first softdep line matching m, each name looked up in full (a name that
// cannot be looked up is reported to Options.Warn and skipped).
func (r *Resolver) Softdeps(m Module) (pre, post []Module, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.newPool()
	ps, qs, err := p.softdeps(p.adopt(m))
	if err != nil {
		return nil, nil, err
	}
	if pre, err = p.exportAll(ps); err != nil {
		return nil, nil, err
	}
	if post, err = p.exportAll(qs); err != nil {
		return nil, nil, err
	}
	return pre, post, nil
}

func (p *pool) exportAll(ms []*mod) ([]Module, error) {
	out := make([]Module, 0, len(ms))
	for _, m := range ms {
		e, err := p.export(m)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}
