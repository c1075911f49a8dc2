package modload

import (
	"errors"
	"fmt"

	"github.com/modload/modload/loader"
	"github.com/modload/modload/resolve"
)

// ErrNoMatch is returned by Graph for a name that resolves to no module.
var ErrNoMatch = errors.New("module not found")

// Graph resolves names (module names, aliases, modaliases, symbol:NAME) as modprobe does and
// returns the load graph of everything they need: hard dependencies from modules.dep, softdeps
// from the configuration and modules.softdep, options from the configuration and the kernel
// command line, install commands. targets are the modules the names matched, in order, each
// once. With blacklist (modprobe -b), blacklisted modules matched through an alias are
// dropped. A name that matches nothing is reported in missing, not as an error.
func Graph(r *resolve.Resolver, names []string, blacklist bool) (targets []string, g map[string]*loader.Module, missing []string, err error) {
	g = make(map[string]*loader.Module)
	seen := make(map[string]bool)
	for _, name := range names {
		ms, err := r.Lookup(name)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("resolve %s: %w", name, err)
		}
		n := 0
		for _, m := range ms {
			if blacklist && m.Alias != "" && r.Config().Blacklisted(m.Name) {
				continue
			}
			n++
			if err := add(r, g, m); err != nil {
				return nil, nil, nil, err
			}
			if !seen[m.Name] {
				seen[m.Name] = true
				targets = append(targets, m.Name)
			}
		}
		if n == 0 {
			missing = append(missing, name)
		}
	}
	return targets, g, missing, nil
}

func add(r *resolve.Resolver, g map[string]*loader.Module, m resolve.Module) error {
	if _, ok := g[m.Name]; ok {
		return nil
	}
	node := &loader.Module{Name: m.Name, Path: m.Path, Params: m.Options, Install: m.Install, Remove: m.Remove, Builtin: m.Builtin}
	g[m.Name] = node
	if m.Builtin {
		return nil
	}
	deps, err := r.Deps(m)
	if err != nil {
		return fmt.Errorf("dependencies of %s: %w", m.Name, err)
	}
	for _, d := range deps {
		if d.Name == m.Name {
			continue
		}
		if err := add(r, g, d); err != nil {
			return err
		}
		node.Deps = append(node.Deps, d.Name)
	}
	pre, post := r.Config().Softdep(m.Name)
	soft := func(names []string) ([]string, error) {
		var out []string
		for _, s := range names {
			ms, err := r.Lookup(s)
			if err != nil {
				return nil, err
			}
			for _, sm := range ms {
				if err := add(r, g, sm); err != nil {
					return nil, err
				}
				out = append(out, sm.Name)
			}
		}
		return out, nil
	}
	if node.Pre, err = soft(pre); err != nil {
		return err
	}
	node.Post, err = soft(post)
	return err
}
