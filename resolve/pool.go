package resolve

import (
	"fmt"
	"strings"
)

// builtin states of a module object, as kmod's enum kmod_module_builtin.
const (
	builtinUnknown = iota
	builtinNo
	builtinYes
)

// mod is one kmod_module of a pool: identity is name, or name + "\" + alias.
type mod struct {
	name, alias string
	path        string
	hasPath     bool

	depInit bool
	deps    []*mod

	options     string
	optionsInit bool

	install     string
	hasInstall  bool
	installInit bool

	builtin int

	visited, ignorecmd, required bool
}

// pool is kmod's per-context module hash, one per query.
type pool struct {
	r    *Resolver
	mods map[string]*mod
}

func (r *Resolver) newPool() *pool { return &pool{r: r, mods: make(map[string]*mod)} }

func (p *pool) get(name, alias string) *mod {
	key := name
	if alias != "" {
		key = name + "\\" + alias
	}
	if m := p.mods[key]; m != nil {
		return m
	}
	m := &mod{name: name, alias: alias}
	p.mods[key] = m
	return m
}

// joinPath is kmod's path_join over the module directory.
func (p *pool) joinPath(rel string) string {
	if strings.HasPrefix(rel, "/") {
		return rel
	}
	return p.r.dir + "/" + rel
}

// fromPath is kmod_module_new_from_path for a dependency path of modules.dep.
func (p *pool) fromPath(path string) (*mod, error) {
	m := p.get(NameFromPath(path), "")
	if !m.hasPath {
		m.path, m.hasPath = path, true
	} else if m.path != path {
		return nil, fmt.Errorf("kmod_module '%s' already exists with different path: new-path='%s' old-path='%s'", m.name, path, m.path)
	}
	m.builtin = builtinNo
	return m, nil
}

// loadDeps is kmod_module_parse_depline on the modules.dep entry of m (lazy, once).
func (p *pool) loadDeps(m *mod) error {
	if m.depInit {
		return nil
	}
	path, deps, ok, err := p.r.idx.Dep(m.name)
	if err != nil {
		return err
	}
	if !ok {
		return nil
	}
	m.depInit = true
	if !m.hasPath {
		m.path, m.hasPath = p.joinPath(path), true
	}
	if !p.setDeps(m, deps) {
		m.depInit = false
	}
	return nil
}

// setDeps fills m's dependencies from a modules.dep line's paths; false if kmod would give up
// on the line.
func (p *pool) setDeps(m *mod, deps []string) bool {
	list := make([]*mod, 0, len(deps))
	// kmod prepends each dependency: the load order is the reverse of the file's.
	for i := len(deps) - 1; i >= 0; i-- {
		d, err := p.fromPath(p.joinPath(deps[i]))
		if err != nil {
			p.r.warn(err.Error())
			return false
		}
		list = append(list, d)
	}
	m.deps = list
	return true
}

// getPath is kmod_module_get_path.
func (p *pool) getPath(m *mod) (string, error) {
	if m.hasPath || m.depInit {
		return m.path, nil
	}
	if err := p.loadDeps(m); err != nil {
		return "", err
	}
	return m.path, nil
}

// isBuiltin is kmod_module_is_builtin.
func (p *pool) isBuiltin(m *mod) (bool, error) {
	if m.builtin == builtinUnknown {
		ok, err := p.r.idx.Builtin(m.name)
		if err != nil {
			return false, err
		}
		m.builtin = builtinNo
		if ok {
			m.builtin = builtinYes
		}
	}
	return m.builtin == builtinYes, nil
}

// getOptions is kmod_module_get_options: every "options" line for the name or the alias,
// non-empty ones joined by a space.
func (p *pool) getOptions(m *mod) string {
	if m.optionsInit {
		return m.options
	}
	var b strings.Builder
	for _, o := range p.r.cfg.Options {
		if o.Module != m.name && (m.alias == "" || o.Module != m.alias) {
			continue
		}
		if o.Options == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(o.Options)
	}
	m.options, m.optionsInit = b.String(), true
	return m.options
}

// getInstall is kmod_module_get_install_commands: the first install command whose pattern
// matches the name.
func (p *pool) getInstall(m *mod) (string, bool) {
	if !m.installInit {
		m.installInit = true
		for _, c := range p.r.cfg.Installs {
			if match(c.Module, m.name) {
				m.install, m.hasInstall = c.Command, true
				break
			}
		}
	}
	return m.install, m.hasInstall
}

// getRemove is kmod_module_get_remove_commands.
func (p *pool) getRemove(m *mod) (string, bool) {
	for _, c := range p.r.cfg.Removes {
		if match(c.Module, m.name) {
			return c.Command, true
		}
	}
	return "", false
}

// blacklisted is module_is_blacklisted: an exact name in a blacklist line.
func (r *Resolver) blacklisted(name string) bool {
	for _, b := range r.cfg.Blacklist {
		if b == name {
			return true
		}
	}
	return false
}

// export turns a pool object into plain data.
func (p *pool) export(m *mod) (Module, error) {
	path, err := p.getPath(m)
	if err != nil {
		return Module{}, err
	}
	bi, err := p.isBuiltin(m)
	if err != nil {
		return Module{}, err
	}
	inst, _ := p.getInstall(m)
	rm, _ := p.getRemove(m)
	return Module{
		Name: m.name, Alias: m.alias, Path: path, Builtin: bi,
		Install: inst, Remove: rm, Options: p.getOptions(m),
	}, nil
}

// adopt turns plain data back into a pool object, keeping what Lookup decided.
func (p *pool) adopt(m Module) *mod {
	o := p.get(m.Name, m.Alias)
	if m.Path != "" && !o.hasPath {
		o.path, o.hasPath = m.Path, true
	}
	if o.builtin == builtinUnknown {
		o.builtin = builtinNo
		if m.Builtin {
			o.builtin = builtinYes
		}
	}
	if !o.installInit {
		o.installInit = true
		o.install, o.hasInstall = m.Install, m.Install != ""
	}
	return o
}
